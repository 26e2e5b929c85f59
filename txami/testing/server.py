"""
`FakeAsterisk`, a server factory that speaks AMI as Asterisk 20 does, and its `FakeSession`.

A session reads client bytes with Asterisk's own parser rules, refuses
everything but ``Login``, ``Challenge`` and ``Logoff`` before a login, checks
each action's write classes, and answers with Asterisk's wording (``Permission
denied``, ``Missing action in request``, ``Invalid/unknown command: X. Use
Action: ListCommands to show available commands.``).  Events reach every
logged-in session whose read classes, event mask and filters admit them.  As
in Asterisk, events raised while a session is handling an action (a
synchronous Originate's channel events, the ``SuccessfulAuth`` of a Login)
reach that session right after the action's response.

As in Asterisk, a session handles one action at a time: while an action's
answer is pending (a ringing synchronous Originate, a scripted handler's
Deferred), the session reads no further action and holds its events, which
follow the answer.  ``delay_action`` is fault injection, not that: a delayed
action lets the others be answered meanwhile.  Events raised before a login
are never delivered (Asterisk drops them too, unless they race the login).

The test hooks (`FakeAsterisk.add_action`, ``emit_event``, ``drop_all``,
``stall``/``resume``, ``delay_action``, ``send_raw``) and the `PBX` model
(``fake.pbx``) are what tests script it with.
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol, ServerFactory, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from txami.message import Headers, HeaderValue, Message
from txami.protocol import abort_connection
from txami.testing import permissions as perm
from txami.testing import releases
from txami.testing.actions import BUILTIN
from txami.testing.handler import Action, ActionEntry, Pairs, Session
from txami.testing.parser import RequestParser, header
from txami.testing.pbx import PBX, Channel, load_capture_defaults
from txami.testing.permissions import AMIUser
from txami.testing.timers import Timers

__all__ = ["ActionHandler", "FakeAsterisk", "FakeSession"]

_log = Logger(namespace="txami.testing")

#: What a scripted action handler returns: a response, a response and its
#: events, a Deferred of either, or `None` for no answer at all.
ActionResult = Message | list[Message] | None
#: A scripted action handler: ``handler(session, action)``.
ActionHandler = Callable[["FakeSession", Message], "ActionResult | Deferred[ActionResult]"]

_PRE_LOGIN: Final = frozenset({"login", "logoff", "challenge"})
_NO_TIME: Final = "1970-01-01T00:00:00.000+0000"


def _render(pairs: Iterable[tuple[str, str]]) -> bytes:
    """A header block as Asterisk writes it (values are not checked: they may echo input)."""
    text = "".join(f"{name}: {value}\r\n" for name, value in pairs) + "\r\n"
    return text.encode("utf-8", "surrogateescape")


def _event_time(seconds: float) -> str:
    """Asterisk's ``EventTV`` format: ``2026-11-26T12:03:24.899+0000``."""
    millis = int(seconds * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}+0000"


def _address(address: IAddress | None, fallback_port: int) -> str:
    """An address as Asterisk's security events print it: ``IPV4/TCP/127.0.0.1/5038``."""
    if isinstance(address, IPv4Address):
        return f"IPV4/{address.type}/{address.host}/{address.port}"
    if isinstance(address, IPv6Address):
        return f"IPV6/{address.type}/{address.host}/{address.port}"
    return f"IPV4/TCP/127.0.0.1/{fallback_port}"


def default_users() -> dict[str, AMIUser]:
    """The manager users of the server the transcripts were captured from."""
    return {
        "admin": AMIUser("admin", "adminsecret", "all", "all"),
        "reader": AMIUser("reader", "readersecret", "call,system", ""),
        "caller": AMIUser("caller", "callersecret", "call", "originate,call"),
    }


class FakeSession(Protocol):
    """
    One client connection to a `FakeAsterisk`.

    ``username`` and ``logged_in`` tell who logged in; ``event_mask`` is the
    session's event class bitmask (`permissions.ALL` for ``on``, 0 for
    ``off``), ``read_mask``/``write_mask`` the user's classes.
    `send_message` and `send_raw` write to the client at once, whatever the
    session is doing.
    """

    factory: FakeAsterisk

    def __init__(self, factory: FakeAsterisk, address: IAddress | None = None) -> None:
        self.factory = factory
        self.address = address
        self.username: str | None = None
        self.logged_in = False
        self.event_mask = perm.ALL
        self.read_mask = 0
        self.write_mask = 0
        #: The MD5 challenge this session was given ("" until it asks).
        self.challenge = ""
        self.white_filters: list[re.Pattern[str]] = []
        self.black_filters: list[re.Pattern[str]] = []
        self.session_id = f"0x{id(self):x}"
        self.login_time: float | None = None
        self._parser = RequestParser()
        self._timers = Timers(factory.clock)
        self._auth_timer: IDelayedCall | None = None
        self._held: list[bytes] = []
        self._hold = 0
        self._busy = False
        self._draining = False
        self._closing = False
        self._closed = False
        self._output_closed = False
        self._close_after = False

    def __repr__(self) -> str:
        return f"<FakeSession {self.session_id} user={self.username!r} logged_in={self.logged_in}>"

    # --- connection ------------------------------------------------------------------------

    def connectionMade(self) -> None:
        fake = self.factory
        fake.sessions.append(self)
        self._out(f"Asterisk Call Manager/{fake.ami_version}\r\n".encode())
        if fake.auth_timeout > 0:
            self._auth_timer = self._timers.call_later(fake.auth_timeout, self._auth_expired)
        if fake.stalled:
            self._pause()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._closed = self._output_closed = True
        self.logged_in = False
        self._held = []
        self._timers.cancel_all()
        if self in self.factory.sessions:
            self.factory.sessions.remove(self)

    def _auth_expired(self) -> None:
        self._auth_timer = None
        if not self.logged_in:
            self.disconnect()

    def disconnect(self) -> None:
        """Close the connection after what was written (what Asterisk does on Logoff)."""
        self._closing = self._output_closed = True
        self._held = []
        if self.transport is not None:
            self.transport.loseConnection()

    def abort(self) -> None:
        """Drop the connection at once."""
        self._closing = self._output_closed = True
        self._held = []
        abort_connection(self.transport)

    def _pause(self) -> None:
        pause = getattr(self.transport, "pauseProducing", None)
        if pause is not None:
            pause()

    def _unpause(self) -> None:
        resume = getattr(self.transport, "resumeProducing", None)
        if resume is not None:
            resume()

    # --- writing ---------------------------------------------------------------------------

    def send_message(self, message: Message) -> None:
        """Write ``message`` to the client now (`ValueError` if a header holds CR, LF or NUL)."""
        data = message.to_bytes()
        if self.transport is not None and not self._closed:
            self.transport.write(data)

    def send_raw(self, data: bytes) -> None:
        """Write ``data`` to the client now, unframed and unchecked."""
        if self.transport is not None and not self._closed:
            self.transport.write(data)

    def _out(self, data: bytes, event: bool = False) -> None:
        if self._output_closed or self.transport is None:
            return
        if self.factory.stalled or (event and self._hold):
            self._held.append(data)
        else:
            self.transport.write(data)

    def _flush(self) -> None:
        transport = self.transport
        if self._hold or self.factory.stalled or self._output_closed or transport is None:
            return
        held, self._held = self._held, []
        for data in held:
            transport.write(data)

    def write_response(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Write a response (or a list item) made of ``pairs``; for action handlers."""
        self._out(_render(pairs))

    def write_raw_response(self, text: str) -> None:
        """Write ``text`` as an answer, unframed (Follows output, IAXnetstats' lone CRLF)."""
        self._out(text.encode("utf-8", "surrogateescape"))

    def deliver(self, data: bytes) -> None:
        """Write an event (held while this session handles an action)."""
        self._out(data, event=True)

    def admits(self, category: int, text: str) -> bool:
        """Whether an event of ``category`` with wire ``text`` reaches this session."""
        if not self.logged_in or self._output_closed:
            return False
        if self.read_mask & category != category or self.event_mask & category != category:
            return False
        if self.white_filters and not any(p.search(text) for p in self.white_filters):
            return False
        return not (self.black_filters and any(p.search(text) for p in self.black_filters))

    # --- reading ---------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._closed or self._closing:
            return
        self._parser.feed(data)
        try:
            self._drain()
        except Exception:
            _log.failure("the fake Asterisk failed to read from {session!r}", session=self)

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while not (self._closed or self._closing or self.factory.stalled or self._busy):
                request = self._parser.next_request()
                if request is None:
                    break
                if request.error is not None:
                    action_id = header(request.lines, "ActionID")
                    self.write_response(
                        [("Response", "Error")]
                        + ([("ActionID", action_id)] if action_id else [])
                        + [("Message", request.error)]
                    )
                    continue
                self._received(request.lines)
        finally:
            self._draining = False

    def _received(self, lines: list[str]) -> None:
        fake = self.factory
        message = Message.parse("\r\n".join(lines))
        fake.actions_received.append((self, message))
        name = header(lines, "Action", skip_empty=True)
        if name and name.lower() in fake.delays:
            delay = fake.delays[name.lower()]
            if delay is not None:
                self._timers.call_later(delay, self._process, lines, message, name)
            return
        self._process(lines, message, name)

    def _process(self, lines: list[str], message: Message, name: str) -> None:
        if self._closed or self._closing:
            return
        self._hold += 1
        pending: Deferred[None] | None = None
        try:
            pending = self._dispatch(lines, message, name)
        except Exception:
            _log.failure("the fake Asterisk failed to handle {action}", action=name)
        if pending is not None:
            # The answer comes later: until then the session reads nothing and holds
            # its events, as Asterisk's session thread does in a slow action.
            answered: list[bool] = []
            pending.addBoth(lambda _: answered.append(True))
            if not answered:
                self._busy = True
                pending.addBoth(self._answered_late)
                return
        self._finish_action()

    def _answered_late(self, _: object) -> None:
        self._busy = False
        self._finish_action()
        if not self._closed:
            self._drain()

    def _finish_action(self) -> None:
        self._hold -= 1
        if self._close_after:
            self.disconnect()
        else:
            self._flush()

    def _dispatch(self, lines: list[str], message: Message, name: str) -> Deferred[None] | None:
        action = Action(lines, message, name)
        action_id = action.action_id
        refusal: Pairs = [("Response", "Error")] + ([("ActionID", action_id)] if action_id else [])
        if not name:
            self.security_event("RequestBadFormat", "Error", 1, request="Action: NONE")
            self.write_response([*refusal, ("Message", "Missing action in request")])
            return None
        if not self.logged_in and name.lower() not in _PRE_LOGIN:
            self.security_event("RequestNotAllowed", "Error", 1, request=f"Action: {name}")
            self.write_response([*refusal, ("Message", "Permission denied")])
            return None
        entry = self.factory.action_entry(name)
        if entry is None:
            self.security_event("RequestBadFormat", "Error", 1, request=f"Action: {name}")
            text = (
                f"Invalid/unknown command: {name}. "
                "Use Action: ListCommands to show available commands."
            )
            self.write_response([*refusal, ("Message", text)])
            return None
        if entry.authority and not self.write_mask & entry.authority:
            self.security_event("RequestNotAllowed", "Error", 1, request=f"Action: {name}")
            self.write_response([*refusal, ("Message", "Permission denied")])
            return None
        result = entry.handler(self, action)
        if isinstance(result, Deferred):
            result.addErrback(self._handler_failed, name)
            return result
        return None

    def _handler_failed(self, failure: Failure, name: str) -> None:
        _log.failure("the fake Asterisk's handler for {action} failed", failure, action=name)

    def send_result(self, result: ActionResult) -> None:
        """Write what a scripted handler returned (a message, a list of them, or nothing)."""
        if result is None:
            return
        messages = result if isinstance(result, list) else [result]
        try:
            data = [message.to_bytes() for message in messages]
        except ValueError:
            _log.failure("a scripted action answered with a message that cannot be sent")
            return
        for chunk in data:
            self._out(chunk)

    # --- login -----------------------------------------------------------------------------

    def accept_login(self, user: AMIUser, events: str) -> None:
        """Log ``user`` in with the ``Events:`` mask given (empty keeps all events)."""
        self.logged_in = True
        self.username = user.username
        self.read_mask = user.read_mask
        self.write_mask = user.write_mask
        mask = perm.event_mask(events)
        if mask is not None:
            self.event_mask = mask
        self.login_time = self.factory.pbx.now()
        self._timers.cancel(self._auth_timer)
        self._auth_timer = None

    def refuse_login(self, action_id: str) -> None:
        """Answer ``Authentication failed`` after Asterisk's pause, then close."""
        self._closing = True
        pairs: Pairs = [("Response", "Error")]
        if action_id:
            pairs.append(("ActionID", action_id))
        pairs.append(("Message", "Authentication failed"))

        def finish() -> None:
            self.write_response(pairs)
            self.disconnect()

        delay = self.factory.auth_failure_delay
        if delay > 0:
            self._timers.call_later(delay, finish)
        else:
            finish()

    def close_after_answer(self) -> None:
        """Close the connection once the current answer is written (Logoff)."""
        self._close_after = True

    def security_event(
        self,
        name: str,
        severity: str,
        version: int,
        *,
        account: str | None = None,
        request: str | None = None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Raise one of Asterisk's security events about this session."""
        fake = self.factory
        now = fake.pbx.now()
        account = (self.username or "") if account is None else account
        host = self.transport.getHost() if self.transport is not None else None
        peer = self.transport.getPeer() if self.transport is not None else self.address
        session_tv = _event_time(self.login_time) if self.login_time is not None else _NO_TIME
        pairs: Pairs = [
            ("EventTV", _event_time(now)),
            ("Severity", severity),
            ("Service", "AMI"),
            ("EventVersion", str(version)),
        ]
        where = [
            ("SessionID", self.session_id),
            ("LocalAddress", _address(host, 5038)),
            ("RemoteAddress", _address(peer, 40000)),
        ]
        if name == "RequestBadFormat":
            pairs += [*where, ("RequestType", request or ""), ("SessionTV", session_tv)]
            pairs.append(("AccountID", account))
        else:
            pairs += [("AccountID", account), *where, *extra]
            if request is not None:
                pairs.append(("RequestType", request))
            pairs.append(("SessionTV", session_tv))
        fake.pbx.emit(name, pairs)


#: The actions Asterisk 20 answers while it boots, before its modules load
#: (``ListCommands`` at the first login a fresh Asterisk 20.20.1 accepted; lower-cased):
#: the rest (``QueueStatus``, ``DeviceStateList``, ``PresenceStateList``,
#: applications' and resources' actions) are unknown commands until then.
# fmt: off
BOOTING_ACTIONS = frozenset({
    "aocmessage", "absolutetimeout", "atxfer", "blindtransfer", "bridge", "bridgedestroy",
    "bridgeinfo", "bridgekick", "bridgelist", "bridgetechnologylist",
    "bridgetechnologysuspend", "bridgetechnologyunsuspend", "cancelatxfer", "challenge",
    "command", "coresettings", "coreshowchannelmap", "coreshowchannels", "corestatus",
    "createconfig", "dbdel", "dbdeltree", "dbget", "dbgettree", "dbput", "events",
    "extensionstate", "extensionstatelist", "filter", "getconfig", "getconfigjson", "getvar",
    "hangup", "listcategories", "listcommands", "localoptimizeaway", "loggerrotate", "login",
    "logoff", "mailboxcount", "mailboxstatus", "messagesend", "modulecheck", "moduleload",
    "originate", "ping", "presencestate", "redirect", "reload", "sendtext", "setvar",
    "showdialplan", "sorcerymemorycacheexpire", "sorcerymemorycacheexpireobject",
    "sorcerymemorycachepopulate", "sorcerymemorycachestale", "sorcerymemorycachestaleobject",
    "status", "updateconfig", "userevent", "waitevent",
})
# fmt: on


class FakeAsterisk(ServerFactory):
    """
    A fake Asterisk Manager Interface server (a Twisted server factory).

    ``clock`` schedules every delay (login failure pauses, simulated call
    progress, late answers); with a `Clock` nothing happens until the test
    advances it.  ``users`` maps names to `AMIUser` (default: the capture
    server's ``admin``, ``reader`` and ``caller``).  ``release`` (such as
    ``"1.4"``, ``"1.6.0.2"``, ``"1.8.4"``, ``"13.1"``) makes it answer as that
    Asterisk release did (see `txami.testing.releases`); by default it answers
    as Asterisk 20.  ``ami_version`` is the banner's version (default: the
    release's), ``command_framing`` ``"modern"`` (``Output:`` headers) or
    ``"follows"`` (default before 14).  ``fake.pbx`` starts configured like
    the server the transcripts were captured from.

    `stop` cancels every timer the fake scheduled; call it (and close the
    connections and the listening port) at the end of a test on the real
    reactor.
    """

    protocol = FakeSession  # type: ignore[assignment]

    #: Seconds Asterisk pauses before answering a failed Login (it then closes).
    auth_failure_delay = 1.0
    #: Seconds a connection may stay without logging in (Asterisk's authtimeout).
    auth_timeout = 30.0

    def __init__(
        self,
        clock: IReactorTime,
        users: dict[str, AMIUser] | None = None,
        ami_version: str | None = None,
        command_framing: str | None = None,
        release: str | None = None,
    ) -> None:
        if release is not None:
            old = releases.release_numbers(release) < (14,)
            ami_version = ami_version or releases.ami_version_of(release)
            command_framing = command_framing or ("follows" if old else "modern")
        ami_version = ami_version or "9.0.0"
        command_framing = command_framing or "modern"
        if command_framing not in ("modern", "follows"):
            raise ValueError(f"command_framing must be 'modern' or 'follows': {command_framing!r}")
        self.clock = clock
        self.users: dict[str, AMIUser] = default_users() if users is None else dict(users)
        self.ami_version = ami_version
        self.command_framing = command_framing
        #: The Asterisk release answered as (`None`: Asterisk 20).
        self.release = release
        #: Connected sessions, in the order they connected.
        self.sessions: list[FakeSession] = []
        #: Every action received: ``(session, message)`` in order of arrival.
        self.actions_received: list[tuple[FakeSession, Message]] = []
        #: Late answers: lower-cased action name -> seconds (`None`: never).
        self.delays: dict[str, float | None] = {}
        self.stalled = False
        #: The fake's own timers (demo traffic); the PBX and each session have theirs.
        self._timers = Timers(clock)
        self.pbx = PBX(Timers(clock), self._emit)
        load_capture_defaults(self.pbx)
        self._actions: dict[str, ActionEntry] = dict(BUILTIN)
        if release is not None:
            self._actions.update(releases.release_actions(release, self._actions))
        self._random = random.Random()
        #: Makes each MD5 challenge (Asterisk: up to 9 random digits).
        self.challenge_source: Callable[[], str] = lambda: str(self._random.randrange(2**31))[:9]
        self._demo: IDelayedCall | None = None
        self._demo_count = 0
        #: Whether Asterisk is still booting (see `restart`): only the
        #: `BOOTING_ACTIONS` answer, no hints yet, no ``FullyBooted`` at login.
        self.booting = False
        self._boot: IDelayedCall | None = None

    def buildProtocol(self, addr: IAddress | None) -> FakeSession:  # type: ignore[override]
        return FakeSession(self, addr)

    # --- configuration ---------------------------------------------------------------------

    def add_user(self, name: str, secret: str, read: str = "all", write: str = "all") -> AMIUser:
        """Add (or replace) a user; ``read``/``write`` are class lists as in manager.conf."""
        user = AMIUser(name, secret, read, write)
        self.users[name] = user
        return user

    def find_user(self, name: str) -> AMIUser | None:
        """The user called ``name`` (case does not matter, as in Asterisk)."""
        if not name:
            return None
        found = self.users.get(name)
        if found is None:
            low = name.lower()
            found = next((u for key, u in self.users.items() if key.lower() == low), None)
        return found

    def add_action(
        self, name: str, handler: ActionHandler, *, privilege: str = "", synopsis: str = ""
    ) -> None:
        """
        Answer action ``name`` with ``handler(session, action)``, which returns
        the response `Message`, a list (the response, then events or list
        items), a Deferred of either, or `None` to answer nothing.  Replaces a
        built-in action of the same name.  ``privilege`` is the write class
        list a user needs (default: none).
        """

        def run(session: Session, action: Action) -> Deferred[None] | None:
            assert isinstance(session, FakeSession)
            result = handler(session, action.message)
            if isinstance(result, Deferred):
                return result.addCallback(session.send_result)
            session.send_result(result)
            return None

        authority = perm.class_mask(privilege) if privilege else 0
        self._actions[name.lower()] = ActionEntry(name, run, authority, synopsis or name)

    def action_entry(self, name: str) -> ActionEntry | None:
        """The action called ``name`` (any case), or `None`."""
        low = name.lower()
        if self.booting and low not in BOOTING_ACTIONS:
            return None
        return self._actions.get(low)

    def actions(self) -> list[ActionEntry]:
        """Every action the server answers now (while `booting`, the core's only)."""
        if self.booting:
            return [e for key, e in self._actions.items() if key in BOOTING_ACTIONS]
        return list(self._actions.values())

    def action_info(self, name: str) -> tuple[str, str] | None:
        """``(synopsis, privilege text)`` of action ``name``, for ``manager show command``."""
        entry = self.action_entry(name)
        if entry is None:
            return None
        return entry.synopsis, perm.class_string(entry.authority)

    def new_challenge(self) -> str:
        """A fresh MD5 login challenge."""
        return self.challenge_source()

    # --- events ----------------------------------------------------------------------------

    def _emit(self, name: str, pairs: list[tuple[str, str]], category: int) -> None:
        head = [("Event", name), ("Privilege", perm.class_string(category))]
        data = _render(head + pairs)
        self.broadcast(category, data.decode("utf-8", "surrogateescape"), data)

    def broadcast(self, category: int, text: str, data: bytes | None = None) -> int:
        """Send the event ``text`` (a whole block) to every session that admits it."""
        if data is None:
            data = text.encode("utf-8", "surrogateescape")
        reached = 0
        for session in list(self.sessions):
            if session.admits(category, text):
                session.deliver(data)
                reached += 1
        return reached

    def emit_event(self, name: str, headers: Headers | None = None, /, **more: HeaderValue) -> int:
        """
        Raise event ``name`` with ``headers`` (pairs or a mapping, for names
        that are not Python identifiers) then keyword headers; returns how many
        sessions it reached.  The class is taken from a ``Privilege`` header if given,
        else from the events Asterisk raises (``Newchannel``: call, ``UserEvent``:
        user, ...), else ``call``; a ``Privilege`` header is added if missing.
        Raises `ValueError` if a header holds CR, LF or NUL.
        """
        given = Message([*Message(headers).pairs(), *Message(more).pairs()])
        privilege = given.get("Privilege")
        category = perm.event_class(name, privilege)
        pairs = [("Event", name)]
        if privilege is None:
            pairs.append(("Privilege", perm.class_string(category)))
        message = Message(pairs + given.pairs())
        data = message.to_bytes()
        return self.broadcast(category, data.decode("utf-8", "surrogateescape"), data)

    # --- faults ----------------------------------------------------------------------------

    def drop_all(self) -> None:
        """Abort every connection at once (the server keeps accepting new ones)."""
        for session in list(self.sessions):
            session.abort()

    def restart(self, boot_seconds: float = 0.0) -> None:
        """
        Restart Asterisk: every connection is dropped and every call is gone;
        the PBX starts afresh as configured at the start (uptime 0, channel
        numbers from 0, new Uniqueids), without events for what vanished.
        Demo traffic goes on, into the new PBX.

        With ``boot_seconds``, the new Asterisk takes logins at once but is
        `booting` for that long, as a real one is while its modules load:
        only `BOOTING_ACTIONS` answer (``QueueStatus`` is an unknown
        command), ``ExtensionStateList`` lists no hints, and a login gets no
        ``FullyBooted``; then every session reading ``system`` gets the
        ``FullyBooted`` event (`finish_boot` ends the boot sooner).
        """
        self.pbx.stop()
        self.drop_all()
        self.pbx = PBX(Timers(self.clock), self._emit)
        load_capture_defaults(self.pbx)
        self._timers.cancel(self._boot)
        self._boot = None
        self.booting = boot_seconds > 0
        if self.booting:
            self._boot = self._timers.call_later(boot_seconds, self.finish_boot)

    def finish_boot(self) -> None:
        """End the boot `restart` began, now: ``FullyBooted`` to sessions reading ``system``."""
        if not self.booting:
            return
        self._timers.cancel(self._boot)
        self._boot = None
        self.booting = False
        uptime = str(int(self.pbx.uptime))
        pairs = [("Status", "Fully Booted"), ("Uptime", uptime), ("LastReload", uptime)]
        self._emit("FullyBooted", pairs, perm.SYSTEM)

    def stall(self) -> None:
        """Stop reading and answering (and sending events) on every connection."""
        self.stalled = True
        for session in self.sessions:
            session._pause()

    def resume(self) -> None:
        """Undo `stall`: send what was held back, then answer the queued input."""
        self.stalled = False
        for session in list(self.sessions):
            session._unpause()
            session._flush()
            session._drain()

    def delay_action(self, name: str, seconds: float | None) -> None:
        """
        Handle action ``name`` ``seconds`` late (`None`: never).  Other actions
        and events go on meanwhile.  ``fake.delays.pop(name.lower())`` undoes it.
        """
        self.delays[name.lower()] = seconds

    def send_raw(self, data: bytes, split_at: Sequence[int] = ()) -> int:
        """
        Write ``data`` to every connection now, as separate writes cut at the
        offsets ``split_at`` (kept apart in memory by `connected_pair`; TCP may
        merge them).  Returns how many sessions it was written to.
        """
        cuts = sorted({0, len(data), *(c for c in split_at if 0 < c < len(data))})
        pieces = [data[a:b] for a, b in itertools.pairwise(cuts)]
        sessions = [s for s in self.sessions if not s._closed]
        for session in sessions:
            for piece in pieces:
                session.send_raw(piece)
        return len(sessions)

    # --- traffic and shutdown --------------------------------------------------------------

    def start_demo_traffic(
        self,
        interval: float = 1.0,
        channel: str = "Local/1003@txami-test",
        context: str = "txami-test",
        exten: str = "1003",
    ) -> None:
        """
        Originate a short call every ``interval`` seconds (by default to exten
        1003, which answers, waits 0.2 s and hangs up), so that listeners see
        ``Newchannel``/``Newstate``/``Newexten``/``Hangup`` traffic.
        """
        self.stop_demo_traffic()

        def tick() -> None:
            self._demo_count += 1
            number = 5550000 + self._demo_count % 10000
            caller = f'"Demo {self._demo_count}" <{number}>'

            def report(answered: bool, reason: int, outbound: Channel | None) -> None:
                self.pbx.emit(
                    "OriginateResponse",
                    [
                        ("Response", "Success" if answered else "Failure"),
                        ("Channel", outbound.name if outbound is not None else channel),
                        ("Context", context),
                        ("Exten", exten),
                        ("Reason", str(reason)),
                        ("Uniqueid", outbound.uniqueid if outbound is not None else "<unknown>"),
                        ("CallerIDNum", str(number)),
                        ("CallerIDName", f"Demo {self._demo_count}"),
                    ],
                )

            self.pbx.originate(
                channel, exten=exten, context=context, priority=1, caller_id=caller, done=report
            )
            self._demo = self._timers.call_later(interval, tick)

        self._demo = self._timers.call_later(interval, tick)

    def stop_demo_traffic(self) -> None:
        """Stop originating demo calls (calls in progress go on)."""
        self._timers.cancel(self._demo)
        self._demo = None

    def stop(self) -> None:
        """Cancel every timer the fake scheduled: demo traffic, calls, late answers, pauses."""
        self.stop_demo_traffic()
        self._timers.cancel_all()
        self.pbx.stop()
        for session in self.sessions:
            session._timers.cancel_all()
