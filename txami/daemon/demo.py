"""
``twistd txami --demo``: the daemon against an embedded fake Asterisk.

`DemoPBXService` starts txami's own fake server (`txami.testing.FakeAsterisk`)
in the daemon's process, on a free port of 127.0.0.1, and keeps its PBX
busy with the fake's demo scenario (``fake.pbx.start_demo``): two
long calls (each a phone bridged to extension 1000), callers waiting in
queue ``support`` while Agent One takes them and Agent Two is paused, and a
hint lamp changing at every ``interval``.  On top of that, a short call
every two intervals (it rings, answers and hangs up after a few seconds),
and two members in conference 680.  The daemon connects to it like to any
PBX, so a fresh machine shows the bridge and the board with no Asterisk, and
every button of the board can be tried: hang up, redirect (to 1001, the
echo test, in context ``txami-test``), click to call, unpause Agent Two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall, IListeningPort
from twisted.logger import Logger

if TYPE_CHECKING:
    from txami.testing import FakeAsterisk
    from txami.testing.pbx import Channel
    from txami.testing.pbx.scenarios import DemoTraffic

__all__ = ["DEMO_SECRET", "DEMO_USERNAME", "DemoPBXService"]

_log = Logger(namespace="txami.daemon.demo")

#: The fake server's built-in administrator (the capture server's ``admin`` user).
DEMO_USERNAME = "admin"
DEMO_SECRET = "adminsecret"
#: The demo's dialplan context (the fake's default dialplan).
DEMO_CONTEXT = "txami-test"
#: The queue member the demo starts paused, so that callers wait.
PAUSED_MEMBER = "Local/1001@txami-test/n"


class DemoPBXService(Service):
    """
    Runs a `FakeAsterisk` on 127.0.0.1 (any free port) with demo traffic
    (see the module doc): a step every ``interval`` seconds, long calls of
    ``long_call_seconds``, short ones of ``short_call_seconds``.

    `port_number` is the port once started; the AMI client reads it at its
    own start, which comes after this service's.
    """

    def __init__(
        self,
        reactor: Any,
        interval: float = 2.0,
        *,
        long_call_seconds: float = 120.0,
        short_call_seconds: float = 5.0,
        conference_members: int = 2,
    ) -> None:
        self.reactor = reactor
        self.interval = interval
        self.long_call_seconds = long_call_seconds
        self.short_call_seconds = short_call_seconds
        self.conference_members = conference_members
        self.fake: FakeAsterisk | None = None
        self.listening: IListeningPort | None = None
        self.traffic: DemoTraffic | None = None
        self._step: IDelayedCall | None = None
        self._steps = 0
        self._conference: list[Channel] = []

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
            "long calls, queue 'support', conference 680 and a short call every {every:g} s",
            port=self.port_number(),
            username=DEMO_USERNAME,
            every=2 * self.interval,
        )
        self.traffic = self.fake.pbx.start_demo(
            self.interval,
            long_calls=2,
            long_call_seconds=self.long_call_seconds,
            queue_callers=2,
            paused_members=(PAUSED_MEMBER,),
            context=DEMO_CONTEXT,
        )
        self._step = self.reactor.callLater(self.interval / 2, self._more)

    def _more(self) -> None:
        """One step of the demo's own calls: a short call every other step, the conference."""
        self._step = None
        fake = self.fake
        if fake is None:
            return
        pbx = fake.pbx
        self._steps += 1
        if self._steps % 2 == 1:
            number = 5550300 + self._steps % 100
            call = pbx.incoming_call(
                "1000", DEMO_CONTEXT, caller_id=f'"Demo Short {self._steps}" <{number}>'
            )
            pbx.hangup_later(call, self.short_call_seconds)
        self._conference = [c for c in self._conference if not c.hungup]
        if len(self._conference) < self.conference_members:
            number = 5550400 + self._steps % 100
            member = pbx.incoming_call(
                "680", DEMO_CONTEXT, caller_id=f'"Demo Conference {self._steps}" <{number}>'
            )
            self._conference.append(member)
            pbx.hangup_later(member, self.long_call_seconds)
        self._step = self.reactor.callLater(self.interval, self._more)

    def stopService(self) -> Any:
        """Stop the traffic and the server (after the AMI client has logged off)."""
        super().stopService()  # type: ignore[no-untyped-call]
        step, self._step = self._step, None
        if step is not None and step.active():
            step.cancel()
        if self.traffic is not None:
            self.traffic.stop()
            self.traffic = None
        if self.fake is not None:
            self.fake.stop()
            self.fake.drop_all()
            self.fake = None
        port, self.listening = self.listening, None
        return port.stopListening() if port is not None else None
