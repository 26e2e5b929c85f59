"""
FastAGI: Asterisk's ``AGI(agi://host:port/script,args)`` connects here.

`FastAGIFactory(handler, reactor=...)` listens; each connection is a
`FastAGIProtocol`, a `LineReceiver` on ``\\n`` (Asterisk ends every line with a
bare LF).  It reads the ``agi_*`` environment up to its blank line into an
`AGIEnvironment`, then calls ``handler(agi)`` with itself, and closes the
connection when the handler is done: the channel then carries on in the
dialplan.

Commands are written one at a time: each is sent once the previous one is
answered, so every reply belongs to the command in flight, and a hangup never
finds commands already on the wire.  A reply is one line, or a ``520-`` block
up to its ``520 `` line.  ``HANGUP`` (sent by Asterisk when the channel hangs
up, unless the dialplan set ``AGISIGHUP=no``) and a ``511`` reply end the
session: the command in flight and every later one fail at once with
`AGIHangup`, and whatever Asterisk still sends is ignored.  The connection
closing fails them with `AGIConnectionLost`.  A line longer than
``MAX_LENGTH``, an environment or a usage block of more than ``MAX_LENGTH``
bytes in all, or of more than ``max_environment_lines`` / ``max_reply_lines``
lines, closes the connection: memory stays bounded whatever the peer sends.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.protocol import ServerFactory, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from txami.agi.commands import AGICommands
from txami.agi.environment import AGIEnvironment
from txami.agi.errors import AGIConnectionLost, AGIHangup
from txami.agi.handler import AGIHandler, run_handler
from txami.agi.results import AGIResult, outcome, reply_code
from txami.errors import NotConnected, ProtocolError
from txami.protocol import abort_connection

__all__ = ["FastAGIFactory", "FastAGIProtocol"]

_log = Logger(namespace="txami.agi")


class _Command:
    """One command: its line, its Deferred, and whether the caller cancelled it."""

    __slots__ = ("cancelled", "data", "deferred", "line")

    def __init__(self, line: str, data: bytes, deferred: Deferred[AGIResult]) -> None:
        self.line = line
        self.data = data
        self.deferred = deferred
        self.cancelled = False


class FastAGIProtocol(AGICommands, LineReceiver):
    """
    One FastAGI session: Asterisk's side of the socket talks to ``handler``.

    ``clock`` and ``environment_timeout`` bound how long a peer may take to
    send the environment before the connection is dropped (no bound when
    either is `None`).  The handler receives this protocol: the commands of
    `AGICommands`, `env`, `hung_up`.
    """

    delimiter = b"\n"
    #: The longest line read (a variable's value comes back on one line), and the
    #: most bytes of the environment or of one reply block in all.
    MAX_LENGTH = 1024 * 1024
    #: The most environment lines read (Asterisk sends about 25, plus one per argument).
    max_environment_lines = 1024
    #: The most lines of one reply (a ``520-`` usage block).
    max_reply_lines = 1024
    #: The longest command line written: Asterisk reads 8191 bytes at a time and
    #: would run the rest of a longer line as a second command.
    max_command_length = 8190

    def __init__(
        self,
        handler: AGIHandler,
        *,
        clock: IReactorTime | None = None,
        environment_timeout: float | None = None,
    ) -> None:
        self.handler = handler
        self.clock = clock
        self.environment_timeout = environment_timeout
        #: The session's variables (empty until Asterisk has sent them).
        self.env = AGIEnvironment({})
        self._env_lines: list[str] | None = []
        self._env_timer: IDelayedCall | None = None
        self._queue: deque[_Command] = deque()
        self._current: _Command | None = None
        self._reply: list[str] | None = None
        self._block_size = 0
        self._hangup_reason: str | None = None
        self._lost: Failure | None = None
        self._close_reason: Failure | None = None
        self._finished: list[Deferred[None]] = []
        self._done = False

    # --- state -------------------------------------------------------------------------------

    @property
    def hung_up(self) -> bool:
        """Whether the channel hung up (``HANGUP`` or ``511`` seen): commands now fail at once."""
        return self._hangup_reason is not None

    def when_finished(self) -> Deferred[None]:
        """A new Deferred that fires (with `None`) once the connection has closed."""
        waiter: Deferred[None] = Deferred()
        if self._done:
            waiter.callback(None)
        else:
            self._finished.append(waiter)
        return waiter

    # --- connection --------------------------------------------------------------------------

    def connectionMade(self) -> None:
        if self.clock is not None and self.environment_timeout is not None:
            self._env_timer = self.clock.callLater(
                self.environment_timeout, self._environment_too_slow
            )

    def _environment_too_slow(self) -> None:
        self._env_timer = None
        self._protocol_error(f"no complete AGI environment within {self.environment_timeout:g} s")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._close_reason is not None:
            reason = self._close_reason
        self._lost = reason
        self._done = True
        self._cancel_env_timer()
        if self._hangup_reason is None:
            self._fail_all(lambda line: AGIConnectionLost(line, reason))
        waiters, self._finished = self._finished, []
        for waiter in waiters:
            waiter.callback(None)

    def _cancel_env_timer(self) -> None:
        timer, self._env_timer = self._env_timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _protocol_error(self, reason: str) -> None:
        error = ProtocolError(reason)
        _log.error("closing the FastAGI connection: {error}", error=error)
        self._close_reason = Failure(error)  # type: ignore[no-untyped-call]
        abort_connection(self.transport)

    # --- reading -----------------------------------------------------------------------------

    def lineLengthExceeded(self, line: bytes) -> None:
        self._protocol_error(f"a line of more than {self.MAX_LENGTH} bytes arrived")

    def lineReceived(self, line: bytes) -> None:
        if self._close_reason is not None or self._done:
            return  # closing after a protocol error: read nothing more
        if line.endswith(b"\r"):
            line = line[:-1]
        text = line.decode("utf-8", "surrogateescape")
        if self._env_lines is not None:
            self._environment_line(text)
        elif self._hangup_reason is not None:
            _log.debug("ignoring {line!r} after the hangup", line=text[:200])
        elif self._reply is not None:
            self._reply.append(text)
            self._block_size += len(line) + 1
            if text.startswith("520 "):
                lines, self._reply = self._reply, None
                self._complete(lines)
            elif len(self._reply) > self.max_reply_lines or self._block_size > self.MAX_LENGTH:
                self._protocol_error(
                    f"a reply of more than {self.max_reply_lines} lines "
                    f"or {self.MAX_LENGTH} bytes arrived"
                )
        elif text == "HANGUP":
            self._hang_up("HANGUP")
        elif reply_code(text) is None:
            _log.warn("skipping a line that is no AGI reply: {line!r}", line=text[:200])
        elif self._current is None:
            _log.warn("skipping a reply with no AGI command pending: {line!r}", line=text[:200])
        elif text.startswith("520-"):
            self._reply = [text]
            self._block_size = len(line) + 1
        else:
            self._complete([text])

    def _environment_line(self, text: str) -> None:
        lines = self._env_lines
        assert lines is not None
        if text:
            lines.append(text)
            self._block_size += len(text) + 1
            if len(lines) > self.max_environment_lines or self._block_size > self.MAX_LENGTH:
                self._protocol_error(
                    f"an AGI environment of more than {self.max_environment_lines} lines "
                    f"or {self.MAX_LENGTH} bytes arrived"
                )
            return
        self._env_lines = None
        self._cancel_env_timer()
        self.env = AGIEnvironment.from_lines(lines)
        _log.debug(
            "FastAGI session for {channel} ({request})",
            channel=self.env.channel,
            request=self.env.request,
        )
        run_handler(self.handler, self).addCallback(self._handler_done)
        # The handler's first command waits in the queue until now.
        self._write_next()

    def _handler_done(self, _: None) -> None:
        transport: Any = self.transport
        if transport is not None and not self._done:
            transport.loseConnection()

    def _complete(self, lines: list[str]) -> None:
        """The whole reply to the command in flight has arrived."""
        command = self._current
        assert command is not None
        self._current = None
        result = outcome(command.line, lines)
        if isinstance(result, AGIHangup):
            self._current = command
            self._hang_up(result.reason)
            return
        self._write_next()
        if command.cancelled:
            return
        if isinstance(result, AGIResult):
            command.deferred.callback(result)
        else:
            command.deferred.errback(result)

    def _hang_up(self, reason: str) -> None:
        """The channel is gone: fail the command in flight and every queued one."""
        _log.debug(
            "the AGI channel {channel} hung up ({reason})", channel=self.env.channel, reason=reason
        )
        self._hangup_reason = reason
        self._reply = None
        self._fail_all(lambda line: AGIHangup(line, reason))

    def _fail_all(self, error: Any) -> None:
        current, self._current = self._current, None
        queued = list(self._queue)
        self._queue.clear()
        for command in [current, *queued] if current is not None else queued:
            if not command.cancelled:
                command.deferred.errback(error(command.line))

    # --- writing -----------------------------------------------------------------------------

    def _execute(self, line: str) -> Deferred[AGIResult]:
        data = line.encode("utf-8")
        if len(data) > self.max_command_length:
            raise ValueError(
                f"an AGI command line of {len(data)} bytes is longer than Asterisk reads "
                f"at once ({self.max_command_length}): {line[:60]!r}..."
            )
        if self._hangup_reason is not None:
            return fail(AGIHangup(line, self._hangup_reason))
        if self._lost is not None:
            return fail(AGIConnectionLost(line, self._lost))
        if self.transport is None:
            return fail(NotConnected(line, "the FastAGI connection is not made yet"))
        deferred: Deferred[AGIResult] = Deferred(self._cancel)
        self._queue.append(_Command(line, data, deferred))
        self._write_next()
        return deferred

    def _write_next(self) -> None:
        if self._current is not None or not self._queue or self._env_lines is not None:
            return
        transport: Any = self.transport
        if transport is None or self._done:
            return
        command = self._current = self._queue.popleft()
        transport.write(command.data + b"\n")

    def _cancel(self, deferred: Deferred[AGIResult]) -> None:
        """A caller cancelled a command: drop it if queued, else ignore its reply."""
        current = self._current
        if current is not None and current.deferred is deferred:
            current.cancelled = True
            return
        for command in self._queue:
            if command.deferred is deferred:
                self._queue.remove(command)
                return

    def __repr__(self) -> str:
        return f"<FastAGIProtocol channel={self.env.channel!r}>"


class FastAGIFactory(ServerFactory):
    """
    Serve FastAGI: every connection from Asterisk runs ``handler(agi)``.

    ``reactor`` times ``environment_timeout``: a peer that has not sent its
    whole environment within that many seconds is dropped (`None`: never).
    """

    noisy = False

    def __init__(
        self,
        handler: AGIHandler,
        *,
        reactor: IReactorTime,
        environment_timeout: float | None = 10.0,
    ) -> None:
        self.handler = handler
        self.reactor = reactor
        self.environment_timeout = environment_timeout

    def buildProtocol(self, addr: IAddress | None) -> FastAGIProtocol:
        protocol = FastAGIProtocol(
            self.handler, clock=self.reactor, environment_timeout=self.environment_timeout
        )
        protocol.factory = self
        return protocol
