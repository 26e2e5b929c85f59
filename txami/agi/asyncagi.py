"""
AsyncAGI: AGI over an AMI session, for channels in ``AGI(agi:async)``.

`AsyncAGIServer(ami, handler)` watches an `AMIFactory` or `AMIProtocol` for
``AsyncAGIStart`` (a channel entered AsyncAGI; its ``Env`` header holds the
URL-encoded environment) and runs ``handler(agi)`` with an `AsyncAGI`
session for it: the same command methods as FastAGI.  Each command is an AMI
``AGI`` action (``Channel``, ``Command``, ``CommandID``; the CommandID is
also the action's ActionID); its answer is the ``AsyncAGIExec`` event with
that ``CommandId`` and the URL-encoded reply in ``Result``.  ``AsyncAGIEnd``
ends the session: commands still waiting, and every later one, fail with
`AGIHangup`.  When the handler is done, the session sends ``ASYNCAGI BREAK``
so the channel carries on in the dialplan.

The AMI user needs the ``agi`` class (read, for the events; write, for the
action) and the session's event mask must let ``agi`` events through.  If the
AMI connection drops, every session it carried is lost: its commands fail
with `AGIConnectionLost` (Asterisk's results would go unseen).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from txami.agi.commands import AGICommands
from txami.agi.environment import AGIEnvironment
from txami.agi.errors import AGIConnectionLost, AGIHangup
from txami.agi.handler import AGIHandler, run_handler
from txami.agi.results import AGIResult, outcome
from txami.errors import AMIError, ConnectionLost, NotConnected
from txami.factory import AMIFactory
from txami.message import Message, new_action_id
from txami.protocol import AMIProtocol

__all__ = ["AsyncAGI", "AsyncAGIServer"]

_log = Logger(namespace="txami.agi")

#: Asterisk's answers to an AGI action for a channel that is gone or no longer in AsyncAGI.
_GONE = ("does not exist", "Failed to add AGI command")


class _Command:
    __slots__ = ("deferred", "line")

    def __init__(self, line: str, deferred: Deferred[AGIResult]) -> None:
        self.line = line
        self.deferred = deferred


class AsyncAGI(AGICommands):
    """
    One channel in AsyncAGI, driven over AMI: the `AGICommands` methods, plus
    `asyncagi_break`.  ``channel`` and ``uniqueid`` name the channel and
    ``start`` is its ``AsyncAGIStart`` event.
    """

    def __init__(self, server: AsyncAGIServer, start: Message) -> None:
        self.server = server
        self.start = start
        self.channel: str = start.get("Channel", "") or ""
        self.uniqueid: str = start.get("Uniqueid", "") or ""
        #: The session's variables, from the event's ``Env`` header.
        self.env = AGIEnvironment.from_url_encoded(start.get("Env", "") or "")
        self._pending: dict[str, _Command] = {}
        self._hangup_reason: str | None = None
        self._lost: Failure | None = None
        self._ended: list[Deferred[None]] = []

    @property
    def hung_up(self) -> bool:
        """Whether the session ended (``AsyncAGIEnd``, or the channel is gone)."""
        return self._hangup_reason is not None

    @property
    def ended(self) -> bool:
        """Whether the session is over: hung up, or its AMI connection lost."""
        return self._hangup_reason is not None or self._lost is not None

    def when_ended(self) -> Deferred[None]:
        """A new Deferred that fires (with `None`) once the session is over."""
        if self.ended:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._ended.append(waiter)
        return waiter

    def asyncagi_break(self) -> Deferred[AGIResult]:
        """
        Leave AsyncAGI (``ASYNCAGI BREAK``): the channel carries on in the
        dialplan, and the session ends.  The handler's end does this itself.
        """
        return self._execute("ASYNCAGI BREAK")

    # --- commands ------------------------------------------------------------------------------

    def _execute(self, line: str) -> Deferred[AGIResult]:
        if self._hangup_reason is not None:
            return fail(AGIHangup(line, self._hangup_reason))
        if self._lost is not None:
            return fail(AGIConnectionLost(line, self._lost))
        command_id = new_action_id()
        sent = self.server.ami.send_action(
            "AGI",
            [
                ("ActionID", command_id),
                ("Channel", self.channel),
                ("Command", line),
                ("CommandID", command_id),
            ],
        )
        deferred: Deferred[AGIResult] = Deferred(self._cancel)
        self._pending[command_id] = _Command(line, deferred)
        self.server._commands[command_id] = self
        sent.addErrback(self._refused, command_id)
        return deferred

    def _take(self, command_id: str) -> _Command | None:
        self.server._commands.pop(command_id, None)
        return self._pending.pop(command_id, None)

    def _cancel(self, deferred: Deferred[AGIResult]) -> None:
        for command_id, command in list(self._pending.items()):
            if command.deferred is deferred:
                self._take(command_id)
                return

    def _refused(self, failure: Failure, command_id: str) -> None:
        """The ``AGI`` action failed: the command cannot run."""
        if command_id not in self._pending:
            return  # already answered, or the session ended
        error = failure.value
        if isinstance(error, AMIError) and any(text in error.message for text in _GONE):
            self._hang_up(f"AMI refused the AGI action: {error.message}")
        elif isinstance(error, (ConnectionLost, NotConnected)):
            self._connection_lost(failure)
        else:
            refused = self._take(command_id)
            assert refused is not None
            refused.deferred.errback(failure)

    def _exec_received(self, command_id: str, event: Message) -> None:
        """The ``AsyncAGIExec`` event that answers command ``command_id``."""
        command = self._take(command_id)
        if command is None:
            return
        text = unquote(event.get("Result", "") or "", errors="surrogateescape")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for index, line in enumerate(lines):
            if line.endswith("\r"):
                lines[index] = line[:-1]
        result = outcome(command.line, lines or [""])
        if isinstance(result, AGIResult):
            command.deferred.callback(result)
            return
        command.deferred.errback(result)
        if isinstance(result, AGIHangup):
            self._hang_up(result.reason)

    # --- the end -------------------------------------------------------------------------------

    def _hang_up(self, reason: str) -> None:
        if self.ended:
            return
        _log.debug("AsyncAGI on {channel} ended: {reason}", channel=self.channel, reason=reason)
        self._hangup_reason = reason
        self._finish(lambda line: AGIHangup(line, reason))

    def _connection_lost(self, reason: Failure) -> None:
        if self.ended:
            return
        self._lost = reason
        self._finish(lambda line: AGIConnectionLost(line, reason))

    def _finish(self, error: Any) -> None:
        pending = list(self._pending.items())
        for command_id, _ in pending:
            self._take(command_id)
        for _, command in pending:
            command.deferred.errback(error(command.line))
        waiters, self._ended = self._ended, []
        for waiter in waiters:
            waiter.callback(None)
        self.server._session_ended(self)

    def _handler_done(self, _: None) -> None:
        if not self.ended:
            self.asyncagi_break().addErrback(self._break_failed)

    def _break_failed(self, failure: Failure) -> None:
        if not isinstance(failure.value, (AGIHangup, AGIConnectionLost)):
            _log.warn(
                "ASYNCAGI BREAK on {channel} failed: {why}",
                channel=self.channel,
                why=failure.getErrorMessage(),
            )

    def __repr__(self) -> str:
        return f"<AsyncAGI channel={self.channel!r}>"


class AsyncAGIServer:
    """
    Run ``handler(agi)`` for every channel that enters ``AGI(agi:async)``,
    as seen by ``ami`` (an `AMIFactory` or a logged-in `AMIProtocol`).

    `start` registers the event handlers; `stop` takes no new channels and
    fires once the sessions in progress have ended.  One server per PBX:
    two would both drive every channel.
    """

    def __init__(self, ami: AMIFactory | AMIProtocol, handler: AGIHandler) -> None:
        self.ami = ami
        self.handler = handler
        #: The sessions in progress, by the channel's Uniqueid.
        self.sessions: dict[str, AsyncAGI] = {}
        self._commands: dict[str, AsyncAGI] = {}
        self._started = False
        self._accepting = False
        self._stopping: list[Deferred[None]] = []

    def start(self) -> None:
        """Begin taking channels that enter AsyncAGI."""
        if self._started:
            return
        self._started = self._accepting = True
        self.ami.add_event_handler("AsyncAGIStart", self._start_received)
        self.ami.add_event_handler("AsyncAGIExec", self._exec_received)
        self.ami.add_event_handler("AsyncAGIEnd", self._end_received)
        if isinstance(self.ami, AMIFactory):
            self.ami.add_connection_listener(self)
        else:
            self.ami.when_disconnected().addCallback(self._protocol_gone)

    def stop(self) -> Deferred[None]:
        """Take no new channels; fires once every session in progress has ended."""
        self._accepting = False
        if self._started:
            self.ami.remove_event_handler("AsyncAGIStart", self._start_received)
        if not self.sessions:
            self._detach()
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._stopping.append(waiter)
        return waiter

    def _detach(self) -> None:
        if not self._started:
            return
        self._started = False
        self.ami.remove_event_handler("AsyncAGIExec", self._exec_received)
        self.ami.remove_event_handler("AsyncAGIEnd", self._end_received)
        if isinstance(self.ami, AMIFactory):
            self.ami.remove_connection_listener(self)
        waiters, self._stopping = self._stopping, []
        for waiter in waiters:
            waiter.callback(None)

    # --- events --------------------------------------------------------------------------------

    def _start_received(self, event: Message) -> None:
        if not self._accepting:
            return
        session = AsyncAGI(self, event)
        earlier = self.sessions.get(session.uniqueid)
        if earlier is not None:
            earlier._hang_up("the channel entered AsyncAGI again")
        self.sessions[session.uniqueid] = session
        _log.debug("AsyncAGI session for {channel}", channel=session.channel)
        run_handler(self.handler, session).addCallback(session._handler_done)

    def _exec_received(self, event: Message) -> None:
        command_id = event.get("CommandId")
        session = self._commands.get(command_id) if command_id else None
        if session is not None and command_id is not None:
            session._exec_received(command_id, event)

    def _end_received(self, event: Message) -> None:
        session = self.sessions.get(event.get("Uniqueid", "") or "")
        if session is not None:
            session._hang_up("AsyncAGIEnd")

    def _session_ended(self, session: AsyncAGI) -> None:
        if self.sessions.get(session.uniqueid) is session:
            del self.sessions[session.uniqueid]
        if not self.sessions and not self._accepting and self._started:
            self._detach()

    def _protocol_gone(self, _: None) -> None:
        self.disconnected(Failure(ConnectionDone("the AMI connection closed")))  # type: ignore[no-untyped-call]

    # --- IConnectionListener -------------------------------------------------------------------

    def disconnected(self, reason: Failure) -> None:
        """The AMI connection ended: every session it carried is lost."""
        for session in list(self.sessions.values()):
            session._connection_lost(reason)
