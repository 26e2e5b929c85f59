"""
``twistd txami --demo``: the daemon against an embedded fake Asterisk.

`DemoPBXService` starts txami's own fake server (`txami.testing.FakeAsterisk`)
in the daemon's process, on a free port of 127.0.0.1, with the fake's demo
call traffic: every ``interval`` seconds a short call that answers, waits a
moment and hangs up, raising the events a real Asterisk raises for it
(``Newchannel``, ``Newstate``, ``Newexten``, ``DialBegin``, ``Hangup``,
``OriginateResponse``, ...).  The daemon then connects to it like to any
PBX, so a fresh machine shows the whole bridge working with no Asterisk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger

if TYPE_CHECKING:
    from txami.testing import FakeAsterisk

__all__ = ["DEMO_SECRET", "DEMO_USERNAME", "DemoPBXService"]

_log = Logger(namespace="txami.daemon.demo")

#: The fake server's built-in administrator (the capture server's ``admin`` user).
DEMO_USERNAME = "admin"
DEMO_SECRET = "adminsecret"


class DemoPBXService(Service):
    """
    Runs a `FakeAsterisk` on 127.0.0.1 (any free port) with demo traffic.

    `port_number` is the port once started; the AMI client reads it at its
    own start, which comes after this service's.
    """

    def __init__(self, reactor: Any, interval: float = 2.0) -> None:
        self.reactor = reactor
        self.interval = interval
        self.fake: FakeAsterisk | None = None
        self.listening: IListeningPort | None = None

    def port_number(self) -> int:
        """The port the fake server listens on (only valid once started)."""
        if self.listening is None:
            raise RuntimeError("the demo PBX is not listening")
        port: int = self.listening.getHost().port  # type: ignore[attr-defined]
        return port

    def startService(self) -> None:
        """Start the fake server and the call traffic."""
        from txami.testing import FakeAsterisk, listen  # imported only when --demo runs

        super().startService()  # type: ignore[no-untyped-call]
        self.fake = FakeAsterisk(self.reactor)
        self.listening = listen(self.fake, self.reactor)
        _log.info(
            "demo: a fake Asterisk listens on 127.0.0.1:{port} (user {username!r}); "
            "a demo call every {interval:g} s",
            port=self.port_number(),
            username=DEMO_USERNAME,
            interval=self.interval,
        )
        self.fake.start_demo_traffic(self.interval)

    def stopService(self) -> Any:
        """Stop the traffic and the server (after the AMI client has logged off)."""
        super().stopService()  # type: ignore[no-untyped-call]
        if self.fake is not None:
            self.fake.stop()
            self.fake.drop_all()
        port, self.listening = self.listening, None
        return port.stopListening() if port is not None else None
