"""
`AMIProtocol`: one AMI session over one connection.

Framing: after the banner line, every AMI message ends with a blank line, so a
`LineReceiver` whose delimiter is ``b"\\r\\n\\r\\n"`` hands `lineReceived` one
whole message at a time.  `dataReceived` is overridden only to split each read
once (Twisted's own loop re-copies the buffer for every message) and to take
the banner; the pre-14 ``Response: Follows`` Command body, which may hold blank
lines, is re-assembled in `lineReceived`.

Requests: every action gets an ActionID (a random per-process prefix plus a
counter) and a Deferred kept in one dict of pending actions, as AMP keeps its
boxes.  The Deferred fires exactly once: with the response (or, for a list
action, the response carrying its items), with `AMIError`, with
`ActionTimeout`, or with `ConnectionLost`.  Once the connection is gone, new
actions fail at once with `NotConnected`.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Final

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from txami.actions import EVENT, LISTING, RAW, RESPONSE, AMIActions
from txami.compat import MODERN, AMIVersion, ServerRules, rules_for
from txami.dispatch import EventDispatcher, EventHandler
from txami.errors import (
    ActionTimeout,
    AMIError,
    AuthenticationError,
    ConnectionLost,
    NotConnected,
    OriginateError,
    ProtocolError,
)
from txami.message import (
    _EMPTY,
    _UNKNOWN,
    Message,
    _check_safe,
    _from_pairs,
    _from_text,
    _next_action_id,
    _parse_lines,
    encode_action,
)

__all__ = ["AMIProtocol"]

_log = Logger(namespace="txami.protocol")
#: Builds records without running ``__init__``, where the hot paths set every slot inline.
_new = object.__new__


# What a pending action is waiting for, besides RESPONSE (its response), EVENT (an
# event with its ActionID: async Originate's OriginateResponse) and RAW (pre-15
# ``Queues``: bare text blocks, up to a following Ping):
_LIST: Final = 1  # the rest of its list: events with its ActionID up to ``EventList: Complete``
_LATE: Final = 5  # timed out before its response: a late list must still be swallowed
_DRAIN: Final = 4  # timed out mid-list: swallow the rest of the list
_TIMED_OUT: Final = frozenset({_LATE, _DRAIN})
_DONE: Final = 7  # answered, failed or forgotten: its place in the deadline queue is stale
_NEVER: Final = float("inf")
#: The modes of an action whose response has not arrived (see `_unmatched_response`).
_AWAITING_RESPONSE: Final = frozenset({RESPONSE, LISTING, _LATE})

_SUCCESS: Final = frozenset({"success", "goodbye", "follows"})
#: How most responses start: a success, and the ActionID on the second line.
_SUCCESS_HEAD: Final = b"Response: Success\r\nActionID: "
_DELIMITER: Final = b"\r\n\r\n"
_END_COMMAND: Final = "--END COMMAND--"
_BANNER_MAX: Final = 1024  # the longest banner line read
#: The header lines of a pre-14 Command answer, in the order Asterisk writes them.
_FOLLOWS_HEADERS: Final = ("response", "privilege", "actionid")
#: How the CLI of every release answers an unknown command.
_NO_SUCH_COMMAND: Final = "No such command '"


class _NoTransport:
    """`AMIProtocol._receive`'s stand-in for a missing transport: never disconnecting."""

    disconnecting = False


_NO_TRANSPORT: Final = _NoTransport()


def abort_connection(transport: Any) -> None:
    """Close ``transport`` at once: ``abortConnection`` if it has one, else ``loseConnection``."""
    if transport is None:
        return
    abort = getattr(transport, "abortConnection", None)
    if abort is not None:
        abort()
    else:
        transport.loseConnection()


class _Pending:
    """
    The state of one action that has been sent and not yet answered (kept small:
    thousands may be pending at once; what only some actions need is in `_More`).
    `AMIProtocol._send` builds it, setting every slot.
    """

    __slots__ = ("action", "action_id", "deadline", "deferred", "mode", "more", "timeout")

    action: str
    action_id: str
    deferred: Deferred[Message]
    #: Seconds allowed, and when they run out (`AMIProtocol.clock`'s time).
    timeout: float
    deadline: float
    #: What it waits for: RESPONSE, LISTING, EVENT, RAW, _LIST, _LATE, _DRAIN or _DONE.
    mode: int
    more: _More | None


class _More:
    """What an action waiting for more than its response keeps (lists, events, text)."""

    __slots__ = ("awaited", "items", "response", "untagged")

    def __init__(
        self, awaited: str | tuple[str, ...] | None = None, untagged: str | None = None
    ) -> None:
        # EVENT: the lower-case event name awaited; LISTING/_LIST: the lower-case
        # names of the events that may end the list besides ``EventList: Complete``.
        self.awaited = awaited
        #: The lower-case name of list items that come without ActionID.
        self.untagged = untagged
        #: The response, once it came (a list's, or an async Originate's).
        self.response: Message | None = None
        #: A list's items (or a Queues answer's blocks) so far.
        self.items: list[Message] | None = None


def _more(entry: _Pending) -> _More:
    """``entry.more``, made when missing (an action whose answer starts a list)."""
    more = entry.more
    if more is None:
        more = entry.more = _More()
    return more


def _parse_follows(text: str) -> Message:
    """
    Turn a pre-14 ``Response: Follows`` Command answer into a message whose
    output lines are ``Output`` headers, as Asterisk 14+ sends them.

    Asterisk writes ``Response: Follows``, ``Privilege: Command`` and the
    ActionID (when the action had one) in that order, then the CLI's text:
    only those lines are headers, so output that looks like a header (a first
    line ``Message: ...``) stays output.
    """
    pairs: list[tuple[str, str]] = []
    pos = 0
    for expected in _FOLLOWS_HEADERS:
        end = text.find("\r\n", pos)
        if end < 0:
            break
        name, colon, value = text[pos:end].partition(":")
        if colon and name.lower() == expected:
            pairs.append((name, value[1:] if value.startswith(" ") else value))
            pos = end + 2
        elif expected != "privilege":  # without Privilege, the ActionID may come second
            break
    body = text[pos:]
    marker = body.rfind(_END_COMMAND)
    if marker >= 0:
        body = body[:marker]
    if body:
        lines = body.split("\n")
        if lines[-1] == "":
            lines.pop()
        pairs.extend(("Output", line[:-1] if line.endswith("\r") else line) for line in lines)
    return _from_pairs(pairs)


#: ``b"Action: NAME\r\nActionID: "`` by action name, for names found safe (bounded).
_ACTION_HEADS: dict[str, bytes] = {}


def _action_head(name: str) -> bytes:
    """The start of an action without headers; `ValueError` for an unsafe ``name``."""
    head = encode_action(name, "", ())[:-4]  # refuses CR, LF and NUL the one way it is done
    if len(_ACTION_HEADS) < 1024:
        _ACTION_HEADS[name] = head
    return head


def _no_such_command(response: Message) -> bool:
    """Whether a pre-14 Command answer is the CLI's complaint about an unknown command."""
    for name, value in response.pairs():
        if name == "Output" and value.strip():
            return value.startswith(_NO_SUCH_COMMAND)
    return False


class AMIProtocol(AMIActions, LineReceiver):
    """
    An Asterisk Manager Interface session.

    ``clock`` schedules the per-action timeouts (the reactor, or a `Clock` in
    tests).  ``dispatcher`` is the event handler registry; `AMIFactory` passes
    its own so that handlers outlive a connection.

    Limits (class defaults, settable per instance): ``MAX_LENGTH`` bytes per
    message (``max_message_size``), ``max_headers`` lines per message,
    ``max_list_items`` items per list action.  Exceeding one closes the
    connection with a logged `ProtocolError` rather than growing memory.
    """

    # Slots for the connection's own state, and for what Protocol and LineReceiver
    # keep as class attributes read on every message (``paused``, ``_buffer``...):
    # past 30 attributes in its ``__dict__`` CPython stops sharing an instance's
    # keys and reads each through a dict lookup.  Subclasses' attributes (and
    # per-instance limits such as ``MAX_LENGTH``) still live in the ``__dict__``.
    __slots__ = (
        "_banner_pending",
        "_buffer",
        "_busyReceiving",
        "_cached",
        "_canceller",
        "_claimers",
        "_close_reason",
        "_deadlines",
        "_disconnect_waiters",
        "_dispatch",
        "_fifo",
        "_fifo_limit",
        "_follows",
        "_follows_size",
        "_list_ends",
        "_not_connected",
        "_pending",
        "_plain_lines",
        "_raw",
        "_raw_size",
        "_reentered",
        "_rules",
        "_seconds",
        "_stopped",
        "_timer",
        "_timer_at",
        "_untagged",
        "actions_sent",
        "clock",
        "connected",
        "dispatcher",
        "events_received",
        "logged_in",
        "paused",
        "transport",
        "username",
    )

    delimiter = _DELIMITER
    MAX_LENGTH = 1024 * 1024
    max_headers = 100_000
    max_list_items = 200_000
    #: The default per-action timeout in seconds.
    timeout = 30.0

    #: The AMI protocol version from the banner (``"9.0.0"`` for Asterisk 20), once
    #: read: a `str` that compares by its numbers (``protocol.ami_version < "2.7"``).
    ami_version: AMIVersion | None = None
    #: The whole banner line, once read.
    banner: str | None = None

    def __init__(
        self,
        clock: IReactorTime,
        *,
        dispatcher: EventDispatcher | None = None,
        timeout: float | None = None,
        max_message_size: int | None = None,
    ) -> None:
        # What Protocol and LineReceiver keep as class attributes, here in slots.
        self.transport = None
        self.connected = 0
        self.paused = False
        self._buffer = b""
        self._busyReceiving = False
        self.clock = clock
        self._seconds = clock.seconds
        self.dispatcher = dispatcher if dispatcher is not None else EventDispatcher()
        self._dispatch = self.dispatcher.dispatch
        self._cached = self.dispatcher._cache  # the reading loop's dispatch, inline
        if timeout is not None:
            self.timeout = timeout
        if max_message_size is not None:
            self.MAX_LENGTH = max_message_size
        self._pending: dict[str, _Pending] = {}
        # One bound method for every Deferred, not a new one per action.
        self._canceller = self._cancel
        # Deadlines: actions whose deadline is no earlier than the last one queued
        # (all of them, while the timeout stays the same) wait in a FIFO, the
        # others in a heap; one timer fires at the earliest of both heads.
        self._fifo: deque[_Pending] = deque()
        self._fifo_limit = 256
        self._deadlines: list[tuple[float, str]] = []
        self._timer: IDelayedCall | None = None
        self._timer_at = _NEVER  # when `_timer` fires
        self._claimers = 0
        # The old-server rules the banner calls for (txami.compat); the table of
        # list actions is kept apart as `_send` reads it for every action.
        self._rules: ServerRules = MODERN
        self._list_ends: Mapping[str, tuple[str, ...]] | None = None
        self._untagged: list[_Pending] = []
        self._raw: list[_Pending] = []
        self._raw_size = 0
        self._follows: list[str] | None = None
        self._follows_size = 0
        self._banner_pending = True
        # Whether `lineReceived` is this class's own, so `_receive` may do its work inline.
        self._plain_lines = type(self).lineReceived is AMIProtocol.lineReceived
        self._stopped = False
        self._reentered = False
        self._not_connected = "not connected yet"
        self._close_reason: Failure | None = None
        self._disconnect_waiters: list[Deferred[None]] = []
        #: True between a successful `login` and the end of the connection.
        self.logged_in = False
        #: The user name of the last successful `login`.
        self.username: str | None = None
        self.actions_sent = 0
        self.events_received = 0

    # --- connection --------------------------------------------------------------------------

    def connectionMade(self) -> None:
        self._not_connected = ""

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Fail every pending action with `ConnectionLost`, and all later ones at once."""
        self._stopped = True
        self.logged_in = False
        if self._close_reason is not None:
            reason = self._close_reason
        self._not_connected = f"the connection was lost ({reason.getErrorMessage()})"
        pending, self._pending = self._pending, {}
        self._fifo = deque()
        self._deadlines = []
        self._untagged = []
        self._raw = []
        self._claimers = 0
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._timer_at = _NEVER
        for entry in pending.values():
            if entry.mode not in _TIMED_OUT:
                entry.deferred.errback(ConnectionLost(entry.action, entry.action_id, reason))
        waiters, self._disconnect_waiters = self._disconnect_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def when_disconnected(self) -> Deferred[None]:
        """A new Deferred that fires (with `None`) once this connection is gone."""
        if self._stopped:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._disconnect_waiters.append(waiter)
        return waiter

    @property
    def connected_and_open(self) -> bool:
        """Whether actions can be sent now."""
        return not self._not_connected and not self._stopped

    # --- reading -----------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._busyReceiving:
            self._buffer += data
            self._reentered = True
            return
        self._busyReceiving = True
        try:
            self._receive(data)
            while self._reentered and not self._stopped and not self.paused:
                self._reentered = False
                self._receive(b"")
        finally:
            self._busyReceiving = False
        if self.dispatcher.read_ends:
            self.dispatcher.read_ended()

    def _receive(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        if self._stopped:
            return
        if self.paused:
            # pauseProducing: keep the bytes until resumeProducing reads them.
            self._buffer = buffer
            return
        if self._banner_pending:
            buffer = self._take_banner(buffer)
            if self._banner_pending:
                self._buffer = buffer
                return
        size = len(buffer)
        parts = buffer.split(_DELIMITER)
        tail = parts.pop()
        self._buffer = tail
        limit = self.MAX_LENGTH
        if parts:
            # The read's length (or else its longest message's) tells whether any
            # message needs the per-message limit checks of `_read`; if none does (and
            # `lineReceived` is this class's own), its work is done here, inline: no
            # call per message.
            if (
                size > limit
                or size >= 2 * self.max_headers
                or not self._plain_lines
                or self._follows is not None
            ) and self._needs_read(parts):
                if self._read(parts, 0):
                    return
            else:
                # A stand-in when there is none, so the check after each message
                # needs no test for `None`.
                transport: Any = self.transport
                if transport is None:
                    transport = _NO_TRANSPORT
                dispatcher = self.dispatcher
                cached = self._cached
                pending = self._pending
                # What is left of ``parts`` is what `rest` has not yielded yet.
                rest = iter(parts)
                for part in rest:
                    if part[:7] == b"Event: ":  # `lineReceived`'s event branch
                        try:
                            text = part.decode()
                        except UnicodeDecodeError:
                            text = part.decode("utf-8", "surrogateescape")
                        name = text.partition("\r\n")[0][7:]
                        if "\n" in name:  # a bare LF, which Asterisk accepts too
                            name = name[: name.find("\n")]
                        event = _new(Message)  # _from_text(text, "event", name), inline
                        event._text = text
                        event._low = None
                        event._pairs = None
                        event._action_id = _UNKNOWN
                        event.kind = "event"
                        event.name = name
                        event.events = _EMPTY
                        event.list_complete = None
                        self.events_received += 1
                        if not self._claimers or not self._claim(event, name):
                            # EventDispatcher.dispatch, inline.
                            try:
                                handlers = cached[name]
                            except KeyError:
                                handlers = dispatcher.handlers_for(name)
                            for handler in handlers:
                                try:
                                    result = handler(event)
                                except Exception:
                                    dispatcher._raised(handler, name)
                                else:
                                    if result is not None and isinstance(result, Deferred):
                                        dispatcher._watch(result, handler, name)
                    elif part[:29] == _SUCCESS_HEAD:
                        # `_response_received`'s common case, inline: a success whose
                        # ActionID, on the second line as Asterisk writes it, is that of
                        # an action waiting for nothing more.
                        try:
                            text = part.decode()
                        except UnicodeDecodeError:
                            text = part.decode("utf-8", "surrogateescape")
                        end = text.find("\r\n", 29)
                        found = text[29:end] if end >= 0 else text[29:]
                        entry = pending.get(found)
                        if (
                            entry is None
                            or entry.mode != RESPONSE
                            or entry.more is not None
                            or "vent" in text  # maybe ``EventList: start``
                        ):
                            self._response_received(text)  # not a Follows: no body to read
                        else:
                            response = _new(Message)  # _from_text(text, "response", ...)
                            response._text = text
                            response._low = None
                            response._pairs = None
                            response._action_id = found
                            response.kind = "response"
                            response.name = "Success"
                            response.events = _EMPTY
                            response.list_complete = None
                            del pending[found]
                            fifo = self._fifo
                            if fifo and fifo[0] is entry:
                                fifo.popleft()
                            else:
                                entry.mode = _DONE  # its place in the FIFO is now stale
                            entry.deferred.callback(response)
                    else:
                        if part.startswith(b"Response: "):
                            self._response_received(part.decode("utf-8", "surrogateescape"))
                        else:
                            self._unusual_received(part.decode("utf-8", "surrogateescape"))
                        if self._follows is not None and not self._stopped and not self.paused:
                            # A pre-14 Command answer's body may hold blank lines: read
                            # the rest message by message, through `lineReceived`.
                            if self._read(list(rest), 0):
                                return
                            break
                    if self._stopped or self.paused or transport.disconnecting:
                        self._keep(list(rest), 0)
                        return
        if tail and len(tail) > limit:
            # Up to 3 bytes may begin the blank line that ends a message of the full size.
            partial = next((k for k in (3, 2, 1) if tail.endswith(_DELIMITER[:k])), 0)
            if len(tail) - partial > limit:
                self.lineLengthExceeded(tail)

    def _needs_read(self, parts: list[bytes]) -> bool:
        """Whether ``parts`` must go through `_read` (limit checks, `lineReceived`)."""
        if not self._plain_lines or self._follows is not None:
            return True
        longest = max(map(len, parts))
        return longest > self.MAX_LENGTH or longest >= 2 * self.max_headers

    def _read(self, parts: list[bytes], start: int) -> bool:
        """
        Hand ``parts[start:]`` to `lineReceived` one by one, checking each
        against the limits; `True` if reading must stop here (what is left
        goes back to the buffer unless the connection is stopped).
        """
        limit = self.MAX_LENGTH
        transport: Any = self.transport
        for index in range(start, len(parts)):
            part = parts[index]
            if len(part) > limit:
                self.lineLengthExceeded(part)
                return True
            self.lineReceived(part)
            if self._stopped or self.paused or (transport is not None and transport.disconnecting):
                self._keep(parts, index + 1)
                return True
        return False

    def _keep(self, parts: list[bytes], start: int) -> None:
        """Put ``parts[start:]`` back in front of the buffer (unless the connection stopped)."""
        if not self._stopped:
            rest = parts[start:]
            rest.append(self._buffer)
            self._buffer = _DELIMITER.join(rest)

    def _take_banner(self, buffer: bytes) -> bytes:
        """Read the ``Asterisk Call Manager/X.Y.Z`` line that opens every session."""
        # Look for the line end only where a banner may end, so that how the
        # bytes were cut into reads cannot change what counts as the banner.
        end = buffer.find(b"\r\n", 0, _BANNER_MAX + 2)
        if end < 0:
            if len(buffer) > _BANNER_MAX + 1:
                self._banner_pending = False
                _log.warn("no AMI banner line in the first {size} bytes", size=_BANNER_MAX)
            return buffer
        self._banner_pending = False
        line = buffer[:end]
        if b":" in line:
            _log.warn("the server sent no banner; reading messages at once")
            return buffer
        self.banner = line.decode("utf-8", "replace")
        version = self.banner.rpartition("/")[2]
        self.ami_version = AMIVersion(version) if version else None
        rules = rules_for(self.ami_version)
        if not rules.modern:
            self._use_rules(rules)
        return buffer[end + 2 :]

    # --- old servers (txami.compat) ------------------------------------------------------

    def _use_rules(self, rules: ServerRules) -> None:
        """
        Follow the old-server ``rules``.  Most of them act only where a modern
        server's traffic never goes (an error status, a response nobody waits
        for, a block that is neither a response nor an event); the one that
        looks at every block is installed here, for the servers that need it.
        """
        _log.debug("AMI {version}: following the rules of older servers", version=rules.version)
        self._rules = rules
        ends = rules.list_ends
        self._list_ends = ends or None
        for entry in self._pending.values():  # actions sent before the banner arrived
            if entry.mode == RESPONSE and entry.action.lower() in ends:
                entry.mode = LISTING
                _more(entry).awaited = ends[entry.action.lower()]
        if rules.unterminated_answers:
            self._plain_lines = False
            self.lineReceived = self._unterminated_line_received  # type: ignore[method-assign]
            self._receive = self._unterminated_receive  # type: ignore[method-assign]
            # The read that brought the banner goes on in the plain `_receive`:
            # have `dataReceived` pass once more, through the new one.
            self._reentered = True

    def _unterminated_line_received(self, line: bytes) -> None:
        """
        `lineReceived` for servers whose short answers may lack their blank
        line: each answer cut off goes to the class's `lineReceived` (a
        subclass's own, if it has one) as a message of its own.
        """
        line_received = type(self).lineReceived
        while self._follows is None and not self._stopped:
            shape = self._unterminated_start(line)
            if shape is None or len(line) == len(shape):
                break
            line = line[len(shape) :]
            line_received(self, shape[:-2])
        if not self._stopped:
            line_received(self, line)

    def _unterminated_receive(self, data: bytes) -> None:
        """
        `_receive`, then take the unterminated answers that start what is left
        in the buffer: each is a whole answer, so waiting for more cannot
        change it, and the server may send nothing more for a while.
        """
        AMIProtocol._receive(self, data)
        while self._follows is None and not self._stopped and not self.paused:
            buffer = self._buffer
            shape = self._unterminated_start(buffer)
            if shape is None:
                return
            self._buffer = buffer[len(shape) :]
            type(self).lineReceived(self, shape[:-2])

    def _unterminated_start(self, data: bytes) -> bytes | None:
        """
        The unterminated answer ``data`` starts with, and the line ends left
        before it by the answer ahead (taken at once, before its blank line
        came): ``data``'s prefix to cut off, or `None`.
        """
        stripped = data.lstrip(b"\r\n")
        for shape in self._rules.unterminated_answers:
            if stripped.startswith(shape):
                return data[: len(data) - len(stripped) + len(shape)]
        return None

    def _unmatched_response(self, response: Message) -> _Pending | None:
        """
        The action a response with no pending ActionID answers: on servers
        that answer some actions without ActionID, a response without any is
        the oldest action's still waiting for its response; else none.
        """
        action_id = response.action_id
        if action_id is None:
            if self._rules.untagged_answers:
                for entry in self._pending.values():
                    mode = entry.mode
                    if mode in _AWAITING_RESPONSE or (
                        mode == EVENT and _more(entry).response is None
                    ):
                        return entry
            _log.warn("skipping a response without ActionID: {response!r}", response=response)
        else:
            _log.debug(
                "dropping a response to ActionID {action_id!r}, which is not pending",
                action_id=action_id,
            )
        return None

    def _start_listing(self, entry: _Pending, response: Message) -> None:
        """A list action that may answer without ``EventList: start`` has succeeded."""
        entry.mode = _LIST
        more = _more(entry)
        more.response = response
        more.items = []
        self._claimers += 1
        eventlist = response.get("EventList")
        if (eventlist is None or eventlist.lower() != "start") and (
            entry.action.lower() in self._rules.closing_ping
        ):
            self._close_with_ping(entry)

    def _close_with_ping(self, entry: _Pending) -> None:
        """
        End ``entry``'s list when a Ping sent now is answered: the server
        writes an action's whole answer before it reads the next action.
        """

        def answered(result: Message | Failure) -> None:
            if isinstance(result, Failure) and not isinstance(result.value, AMIError):
                return  # no answer: the list ends by its own timeout or the connection's loss
            if self._pending.get(entry.action_id) is entry and entry.mode == _LIST:
                self._complete_list(entry, None)

        self._send("Ping", []).addBoth(answered)

    def _loose_block(self, text: str) -> bool:
        """
        Take a block that does not start with Response or Event, on servers
        that send such blocks: by the Response or Event header it holds, or as
        the bare-text answer to the pending action whose ActionID it holds.
        Returns whether the block was taken.
        """
        pairs = _parse_lines(text, quiet=True)
        for name, value in pairs:
            low = name.lower()
            if low == "response":
                self._response_received(text, value)
                return True
            if low == "event":
                self._event_received(_from_text(text, "event", value), value)
                return True
        action_id = next((v for k, v in pairs if k.lower() == "actionid"), None)
        entry = self._pending.get(action_id) if action_id is not None else None
        if entry is None:
            return False
        if entry.mode in _TIMED_OUT:
            self._forget(entry)
            return True
        lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
        answer_pairs: list[tuple[str, str]] = []
        for line in lines:
            key, colon, value = line.partition(":")
            if colon and action_id is not None and key.lower() == "actionid":
                answer_pairs.append((key, value[1:] if value.startswith(" ") else value))
                action_id = None  # only the first ActionID line is a header
            else:
                answer_pairs.append(("Output", line))
        answer = _from_pairs(answer_pairs)
        answer.kind = "response"
        self._succeed(entry, answer)
        return True

    def lineLengthExceeded(self, line: bytes) -> None:
        self._protocol_error(
            f"a message of more than {self.MAX_LENGTH} bytes (max_message_size) arrived"
        )

    def lineReceived(self, line: bytes) -> None:
        """Handle one whole message (the bytes between two blank lines)."""
        if self._follows is not None:
            self._continue_follows(line.decode("utf-8", "surrogateescape"))
            return
        if len(line) >= 2 * self.max_headers and line.count(b"\n") >= self.max_headers:
            self._protocol_error(f"a message with more than {self.max_headers} lines arrived")
            return
        text = line.decode("utf-8", "surrogateescape")
        if text.startswith("Event: "):
            end = text.find("\n", 7)
            if end < 0:
                name = text[7:]
            elif text[end - 1] == "\r":
                name = text[7 : end - 1]
            else:  # a bare LF, which Asterisk accepts too
                name = text[7:end]
            event = _from_text(text, "event", name)
            self.events_received += 1
            if not self._claimers or not self._claim(event, name):
                self._dispatch(name, event)
        elif text.startswith("Response: "):
            self._response_received(text)
        else:
            self._unusual_received(text)

    def _event_received(self, event: Message, name: str) -> None:
        self.events_received += 1
        if not self._claimers or not self._claim(event, name):
            self._dispatch(name, event)

    def _response_received(self, text: str, status: str | None = None) -> None:
        """
        Handle a response: ``text`` starts with ``Response: ``, unless its
        Response value is given as ``status``.
        """
        followed: Message | None = None
        if status is None and text.startswith("Response: Success\r\n"):
            status, low = "Success", "success"  # most responses: no status to cut out
        else:
            if status is None:
                end = text.find("\n", 10)
                if end < 0:
                    status = text[10:]
                elif text[end - 1] == "\r":
                    status = text[10 : end - 1]
                else:
                    status = text[10:end]
            low = status.lower()
        if low == "follows" and text.startswith("Response: Follows"):
            if not text.rstrip().endswith(_END_COMMAND):
                self._follows = [text]
                self._follows_size = len(text)
                return
            followed = _parse_follows(text)
            # Before 14 an unknown command still "follows": its text tells.
            low = "error" if _no_such_command(followed) else "follows"
        if followed is not None:
            response = followed
        else:
            start = text.find("\r\nActionID: ")
            if start >= 0:
                start += 12
                end = text.find("\n", start)
                if end < 0:
                    found: str | None = text[start:]
                elif text[end - 1] == "\r":
                    found = text[start : end - 1]
                else:
                    found = text[start:end]
            else:
                found = None
            response = _new(Message)  # _from_text(text, "response", status, found), inline
            response._text = text
            response._low = None
            response._pairs = None
            response._action_id = _UNKNOWN if found is None else found
            response.kind = "response"
            response.name = status
            response.events = _EMPTY
            response.list_complete = None
        action_id = found if followed is None and found is not None else response.action_id
        entry = self._pending.get(action_id) if action_id is not None else None
        if entry is None:
            entry = self._unmatched_response(response)
            if entry is None:
                return
        mode = entry.mode
        if mode in _TIMED_OUT:
            self._late_response(entry, response)
        elif low not in _SUCCESS and low not in self._rules.success_words:
            self._fail(entry, AMIError(entry.action, response))
        elif mode == RESPONSE:
            # The substring tests spare most responses a header search.
            eventlist = response.get("EventList") if "vent" in text else None
            if eventlist is not None and eventlist.lower() == "start":
                entry.mode = _LIST
                more = _more(entry)
                more.response = response
                more.items = []
                self._claimers += 1
            else:
                if low == "goodbye":
                    self.logged_in = False
                del self._pending[entry.action_id]
                fifo = self._fifo
                if fifo and fifo[0] is entry:
                    fifo.popleft()
                else:
                    entry.mode = _DONE  # its place in the FIFO (if any) is now stale
                if entry.more is not None and entry.more.untagged is not None:
                    self._untagged.remove(entry)
                entry.deferred.callback(response)
        elif mode == EVENT:
            _more(entry).response = response
        elif mode == RAW:
            self._succeed(entry, response)
        elif mode == LISTING:
            self._start_listing(entry, response)
        else:
            _log.debug("dropping a second response to {action_id!r}", action_id=action_id)

    def _late_response(self, entry: _Pending, response: Message) -> None:
        """A response to an action that already timed out: drop it, and any list it starts."""
        _log.debug(
            "dropping a late answer to {action} (ActionID {action_id!r})",
            action=entry.action,
            action_id=entry.action_id,
        )
        eventlist = response.get("EventList")
        if entry.mode != _LATE:
            return
        if (eventlist is not None and eventlist.lower() == "start") or (
            # An old server's list action answers without EventList: its items follow all the same.
            entry.more is not None
            and entry.more.awaited is not None
            and (response.name or "").lower() in _SUCCESS | self._rules.success_words
        ):
            entry.mode = _DRAIN
            self._claimers += 1
        else:
            self._forget(entry)

    def _continue_follows(self, text: str) -> None:
        follows = self._follows
        assert follows is not None
        follows.append(text)
        self._follows_size += len(text) + 4
        if self._follows_size > self.MAX_LENGTH:
            self._follows = None
            self._protocol_error("a Command answer (Response: Follows) exceeded max_message_size")
        elif text.rstrip().endswith(_END_COMMAND):
            self._follows = None
            self._response_received("\r\n\r\n".join(follows))

    def _unusual_received(self, text: str) -> None:
        """Everything that is not ``Event: `` or ``Response: `` at the very start."""
        # Line ends before the first header: a stray blank line ran into the message.
        text = text.lstrip("\r\n")
        if not text:
            _log.debug("skipping a stray blank line")
            return
        message = _from_text(text)
        kind = message.kind
        if kind == "event":
            self._event_received(message, message.name or "")
        elif kind == "response" and message.name is not None:
            self._response_received(text, message.name)
        elif self._rules.loose_blocks and self._loose_block(text):
            pass
        elif self._raw:
            self._raw_size += len(text)
            if self._raw_size > self.MAX_LENGTH:
                self._protocol_error("a Queues answer exceeded max_message_size")
                return
            items = _more(self._raw[0]).items
            assert items is not None
            items.append(message)
        else:
            _log.warn(
                "skipping a message that is neither a response nor an event: {text!r}",
                text=text[:200],
            )

    def _claim(self, event: Message, name: str) -> bool:
        """Take ``event`` for a pending action if it belongs to one; `True` if taken."""
        action_id = event.action_id
        if action_id is None:
            if self._untagged:
                low = name.lower()
                for entry in self._untagged:
                    if _more(entry).untagged == low and entry.mode in (_LIST, _DRAIN):
                        if entry.mode == _LIST:
                            self._add_item(entry, event)
                        return True
            return False
        owner = self._pending.get(action_id)
        if owner is None:
            return False
        entry = owner
        mode = entry.mode
        if mode in (_LIST, _DRAIN):
            eventlist = event.get("EventList")
            ends = _more(entry).awaited
            if (eventlist is not None and eventlist.lower() == "complete") or (
                ends is not None and name.lower() in ends
            ):
                self._complete_list(entry, event)
            elif mode == _LIST:
                self._add_item(entry, event)
            return True
        if mode == EVENT and name.lower() == _more(entry).awaited:
            if (event.get("Response") or "").lower() == "success":
                self._succeed(entry, event)
            else:
                self._fail(entry, OriginateError(entry.action, event))
        return False

    def _add_item(self, entry: _Pending, event: Message) -> None:
        items = _more(entry).items
        assert items is not None
        if len(items) >= self.max_list_items:
            self._protocol_error(f"{entry.action} sent more than {self.max_list_items} list items")
            return
        items.append(event)

    def _complete_list(self, entry: _Pending, complete: Message | None) -> None:
        """End ``entry``'s list with the event ``complete`` (`None`: it has none)."""
        if entry.mode == _DRAIN:
            self._forget(entry)
            return
        more = _more(entry)
        response = more.response
        items = more.items
        assert response is not None and items is not None
        announced = complete.get("ListItems") if complete is not None else None
        if announced is not None and announced.strip() != str(len(items)):
            _log.warn(
                "{action} list announced {announced} items but {received} arrived",
                action=entry.action,
                announced=announced,
                received=len(items),
            )
        response.events = items
        response.list_complete = complete
        self._succeed(entry, response)

    # --- the table of pending actions ----------------------------------------------------------

    def _forget(self, entry: _Pending) -> None:
        del self._pending[entry.action_id]
        mode = entry.mode
        entry.mode = _DONE
        # Let go of forgotten actions (and so of their Deferreds and results) at the
        # FIFO's head at once; others wait for the timer or `_compact`.
        fifo = self._fifo
        while fifo and fifo[0].mode == _DONE:
            fifo.popleft()
        if mode in (_LIST, _DRAIN, EVENT):
            self._claimers -= 1
        if entry.more is not None and entry.more.untagged is not None and entry in self._untagged:
            self._untagged.remove(entry)
        if mode == RAW and entry in self._raw:
            self._raw.remove(entry)
            if not self._raw:
                self._raw_size = 0

    def _succeed(self, entry: _Pending, result: Message) -> None:
        self._forget(entry)
        entry.deferred.callback(result)

    def _fail(self, entry: _Pending, error: Exception) -> None:
        self._forget(entry)
        entry.deferred.errback(error)

    def _cancel(self, deferred: Deferred[Message]) -> None:
        """Canceller of every action's Deferred: forget the action (a late answer is dropped)."""
        for entry in self._pending.values():
            if entry.deferred is deferred:
                if (self._rules.untagged_answers or self._banner_pending) and entry.mode in (
                    RESPONSE,
                    LISTING,
                ):
                    # Its answer may come without ActionID (or the banner, still to come,
                    # may say so): keep its place in line until its deadline.
                    entry.mode = _LATE
                else:
                    self._forget(entry)
                return

    def _expire(self) -> None:
        """Time out every action whose deadline has passed; re-arm for the next one."""
        self._timer = None
        self._timer_at = _NEVER
        now = self.clock.seconds()
        fifo = self._fifo
        while fifo:
            entry = fifo[0]
            if entry.mode == _DONE:
                fifo.popleft()
            elif entry.deadline <= now:
                fifo.popleft()
                self._time_out(entry, now)
            else:
                break
        heap = self._deadlines
        pending = self._pending
        while heap:
            deadline, action_id = heap[0]
            entry = pending.get(action_id)  # type: ignore[assignment]
            if entry is None or entry.deadline != deadline:
                heapq.heappop(heap)  # answered, or queued again with a later deadline
            elif deadline <= now:
                heapq.heappop(heap)
                self._time_out(entry, now)
            else:
                break
        # Callbacks run above may have armed the timer already: `_arm` keeps the earlier.
        if fifo:
            self._arm(fifo[0].deadline, now)
        if heap:
            self._arm(heap[0][0], now)

    def _time_out(self, entry: _Pending, now: float) -> None:
        """``entry``'s deadline has passed (it is out of the deadline queues)."""
        mode = entry.mode
        if mode in (_LIST, RESPONSE, LISTING):
            # Keep the ActionID for one more period, so that a late answer or
            # list is swallowed instead of reaching the handlers.
            entry.mode = _DRAIN if mode == _LIST else _LATE
            self._queue(entry, now + entry.timeout)
            entry.deferred.errback(ActionTimeout(entry.action, entry.action_id, entry.timeout))
        elif mode in _TIMED_OUT:
            self._forget(entry)
        else:
            self._fail(entry, ActionTimeout(entry.action, entry.action_id, entry.timeout))

    def _queue(self, entry: _Pending, deadline: float) -> None:
        """Set ``entry``'s deadline: in the FIFO if that keeps it in order, else in the heap."""
        entry.deadline = deadline
        fifo = self._fifo
        if not fifo or deadline >= fifo[-1].deadline:
            fifo.append(entry)
            if len(fifo) > self._fifo_limit:
                self._compact()
            self._arm(deadline, self.clock.seconds())
        else:
            heap = self._deadlines
            heapq.heappush(heap, (deadline, entry.action_id))
            if len(heap) > 2 * len(self._pending) + 256:
                self._compact()
            self._arm(deadline, self.clock.seconds())

    def _compact(self) -> None:
        """Drop the stale places of answered actions from the deadline queues (amortised)."""
        self._fifo = fifo = deque(e for e in self._fifo if e.mode != _DONE)
        self._fifo_limit = 2 * len(fifo) + 256
        pending = self._pending
        heap = [
            (deadline, action_id)
            for deadline, action_id in self._deadlines
            if (e := pending.get(action_id)) is not None and e.deadline == deadline
        ]
        heapq.heapify(heap)
        self._deadlines = heap

    def _arm(self, deadline: float, now: float) -> None:
        """Have the timer fire at ``deadline`` unless it fires earlier already."""
        if deadline < self._timer_at:
            timer = self._timer
            if timer is None:
                self._timer = self.clock.callLater(deadline - now, self._expire)
            else:
                timer.reset(deadline - now)
            self._timer_at = deadline

    # --- sending ---------------------------------------------------------------------------

    def _send(
        self,
        name: str,
        pairs: list[tuple[str, str]],
        timeout: float | None = None,
        *,
        mode: int = RESPONSE,
        awaited: str | tuple[str, ...] | None = None,
        untagged: str | None = None,
    ) -> Deferred[Message]:
        action_id = None
        if pairs:
            for index, (key, value) in enumerate(pairs):
                if key.lower() == "actionid":
                    action_id = value
                    del pairs[index]
                    break
        if action_id is not None:
            earlier = self._pending.get(action_id)
            if earlier is not None:
                if earlier.mode not in _TIMED_OUT:
                    raise ValueError(f"ActionID {action_id!r} is already pending")
                self._forget(earlier)
            data = encode_action(name, action_id, pairs)
        else:
            action_id = _next_action_id()
            if pairs:
                data = encode_action(name, action_id, pairs)
            else:
                # A generated ActionID is safe: only the action's name needs its check.
                head = _ACTION_HEADS.get(name) or _action_head(name)
                data = head + action_id.encode() + b"\r\n\r\n"
        if self._not_connected:  # also set when the connection stops (see _protocol_error)
            return fail(NotConnected(name, self._not_connected))
        transport: Any = self.transport
        if transport is None or transport.disconnecting:
            return fail(NotConnected(name, "the connection is closing"))
        if timeout is None:
            timeout = self.timeout
        if mode == RESPONSE and self._list_ends is not None:  # only before 13.2
            ends = self._list_ends.get(name.lower())
            if ends is not None:
                mode = LISTING
                awaited = ends
        deferred: Deferred[Message] = Deferred(self._canceller)
        entry = _new(_Pending)  # no __init__ call: the slots are set right here
        entry.action = name
        entry.action_id = action_id
        entry.deferred = deferred
        entry.timeout = timeout
        entry.mode = RESPONSE
        entry.more = None
        if mode != RESPONSE or untagged is not None:
            entry.mode = mode
            entry.more = more = _More(awaited, untagged.lower() if untagged is not None else None)
            if mode == EVENT:
                self._claimers += 1
            elif mode == RAW:
                more.items = []
                self._raw.append(entry)
            if untagged is not None:
                self._untagged.append(entry)
        self._pending[action_id] = entry
        now = self._seconds()
        deadline = now + timeout
        fifo = self._fifo
        if not fifo or (deadline >= fifo[-1].deadline and len(fifo) < self._fifo_limit):
            # `_queue`'s common case, inline.
            entry.deadline = deadline
            fifo.append(entry)
            if deadline < self._timer_at:
                self._arm(deadline, now)
        else:
            self._queue(entry, deadline)
        self.actions_sent += 1
        transport.write(data)
        return deferred

    def _send_bare(self, name: str) -> Deferred[Message]:
        """
        `_send` for an action without headers, with the default timeout and a
        generated ActionID (``Ping``, ``Logoff``, ...): its common case with
        none of the general checks; any other case goes to `_send`.
        """
        transport: Any = self.transport
        if (
            self._not_connected
            or self._list_ends is not None
            or transport is None
            or transport.disconnecting
        ):
            return self._send(name, [])
        head = _ACTION_HEADS.get(name) or _action_head(name)
        action_id = _next_action_id()
        deferred: Deferred[Message] = Deferred(self._canceller)
        entry = _new(_Pending)
        entry.action = name
        entry.action_id = action_id
        entry.deferred = deferred
        entry.timeout = timeout = self.timeout
        entry.mode = RESPONSE
        entry.more = None
        self._pending[action_id] = entry
        now = self._seconds()
        deadline = now + timeout
        fifo = self._fifo
        if not fifo or (deadline >= fifo[-1].deadline and len(fifo) < self._fifo_limit):
            entry.deadline = deadline
            fifo.append(entry)
            if deadline < self._timer_at:
                self._arm(deadline, now)
        else:
            self._queue(entry, deadline)
        self.actions_sent += 1
        transport.write(head + action_id.encode() + b"\r\n\r\n")
        return deferred

    def _finish_raw(self, action_id: str) -> None:
        """End a pre-15 ``Queues`` wait: its text is every bare block received so far."""
        entry = self._pending.get(action_id)
        if entry is None or entry.mode != RAW:
            return
        blocks = _more(entry).items or ()
        text = "\r\n\r\n".join(block._text or "" for block in blocks)
        self._succeed(
            entry, _from_pairs([("Output", line) for line in text.split("\r\n")] if text else [])
        )

    # --- events ----------------------------------------------------------------------------

    def add_event_handler(self, name: str, handler: EventHandler) -> None:
        """
        Call ``handler(event)`` for every event named ``name``: matched without
        regard to case, a glob such as ``"Queue*"``, or ``"*"`` for all.

        Events that are items of a pending list action go to that action only.
        """
        self.dispatcher.add(name, handler)

    def remove_event_handler(self, name: str, handler: EventHandler) -> None:
        """Undo `add_event_handler` (`ValueError` if it was not registered)."""
        self.dispatcher.remove(name, handler)

    # --- failure -----------------------------------------------------------------------------

    def _protocol_error(self, reason: str) -> None:
        error = ProtocolError(reason)
        _log.error("closing the AMI connection: {error}", error=error)
        self._close_reason = Failure(error)  # type: ignore[no-untyped-call]
        self._stopped = True
        self._not_connected = "the connection is closing"
        self._buffer = b""
        self._follows = None
        self.abort()

    def abort(self) -> None:
        """Drop the connection at once, without waiting for buffered writes."""
        abort_connection(self.transport)

    # --- login -----------------------------------------------------------------------------

    def login(
        self,
        username: str,
        secret: str,
        events: str | bool | Sequence[str] = "on",
        auth: str = "plain",
    ) -> Deferred[Message]:
        """
        Log in; fires with the ``Authentication accepted`` response.

        ``auth="plain"`` sends the secret; ``auth="md5"`` asks for a
        ``Challenge`` and sends ``Key`` = md5(challenge + secret) instead, so
        the secret never crosses the wire.  ``events`` is the session's event
        mask: ``"on"``, ``"off"`` or a class list such as ``"call,system"``
        (a list of classes or a bool also do).  A refused login errbacks
        `AuthenticationError`.
        """
        if isinstance(events, bool):
            mask = "on" if events else "off"
        elif isinstance(events, str):
            mask = events
        else:
            mask = ",".join(events)
        if auth == "plain":
            d = self._send("Login", [("Username", username), ("Secret", secret), ("Events", mask)])
        elif auth == "md5":

            def with_key(challenge: str) -> Deferred[Message]:
                key = hashlib.md5((challenge + secret).encode("utf-8")).hexdigest()
                return self._send(
                    "Login",
                    [("AuthType", "MD5"), ("Username", username), ("Key", key), ("Events", mask)],
                )

            # Refuse an unsafe user name or mask now, before the Challenge goes out.
            _check_safe([("Username", username), ("Events", mask)])
            d = self.challenge().addCallback(with_key)
        else:
            raise ValueError(f"auth must be 'plain' or 'md5', not {auth!r}")

        def accepted(response: Message) -> Message:
            self.logged_in = True
            self.username = username
            return response

        def refused(failure: Failure) -> Failure:
            error = failure.value
            if type(error) is AMIError and error.action == "Login":
                return Failure(AuthenticationError("Login", error.response, username))  # type: ignore[no-untyped-call]
            return failure

        return d.addCallbacks(accepted, refused)

    def challenge(self, auth_type: str = "MD5") -> Deferred[str]:
        """Ask for an authentication challenge; fires with the challenge string."""
        return self._send("Challenge", [("AuthType", auth_type)]).addCallback(
            lambda response: response.get("Challenge", "") or ""
        )
