"""
`Keepalive`: notice a silent, half-open AMI connection and drop it.

A TCP connection whose peer vanished (a PBX powered off, a NAT entry expired)
can stay "open" for hours while nothing arrives.  While a session is logged
in, `Keepalive` sends a ``Ping`` every ``interval`` seconds; if the Ping gets
no answer within ``timeout`` seconds *and* nothing at all was read in that
time, it aborts the connection, so a reconnecting factory starts over.

Any traffic counts as life: whoever reads the connection sets `heard` on
every read (`AMIFactory`'s protocols do, once per read), so a server slow to
answer a Ping while it streams events is not cut off.
"""

from __future__ import annotations

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from txami.errors import ActionTimeout, AMIError
from txami.message import Message
from txami.protocol import AMIProtocol

__all__ = ["Keepalive"]

_log = Logger(namespace="txami.keepalive")


class Keepalive:
    """
    Ping ``protocol`` every ``interval`` seconds; abort its connection when a
    Ping gets no answer and nothing else was read within ``timeout`` seconds
    (default: ``interval``).
    """

    def __init__(
        self,
        protocol: AMIProtocol,
        clock: IReactorTime,
        interval: float,
        timeout: float | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"keepalive interval must be positive, not {interval!r}")
        self.protocol = protocol
        self.clock = clock
        self.interval = interval
        self.timeout = timeout if timeout is not None else interval
        #: Set to True by the reader on every read; cleared when a Ping is sent.
        self.heard = False
        self.running = False
        #: Pings sent, and connections dropped for silence.
        self.pings = 0
        self.drops = 0
        self._call: IDelayedCall | None = None

    def start(self) -> None:
        """Start pinging (the first Ping goes out ``interval`` seconds from now)."""
        if not self.running:
            self.running = True
            self._schedule()

    def stop(self) -> None:
        """Stop pinging; a Ping in flight is left to its own answer or failure."""
        self.running = False
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def _schedule(self) -> None:
        self._call = self.clock.callLater(self.interval, self._ping)

    def _ping(self) -> None:
        self._call = None
        self.heard = False
        self.pings += 1
        d = self.protocol.send_action("Ping", action_timeout=self.timeout)
        d.addCallbacks(self._answered, self._failed)

    def _answered(self, response: Message) -> None:
        if self.running:
            self._schedule()

    def _failed(self, failure: Failure) -> None:
        if not self.running:
            return
        error = failure.value
        if isinstance(error, ActionTimeout) and not self.heard:
            self.running = False
            self.drops += 1
            _log.warn(
                "no answer to Ping and nothing else read within {timeout:g} s: "
                "dropping the AMI connection",
                timeout=self.timeout,
            )
            self.protocol.abort()
        elif isinstance(error, (ActionTimeout, AMIError)):
            # The server is alive (it sent something, or refused the Ping): go on.
            self._schedule()
        else:
            # ConnectionLost or NotConnected: the connection is gone anyway.
            self.running = False
