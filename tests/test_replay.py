"""
Replays of real Asterisk 20.20.1 captures (``tests/data``, copied from the
shared transcripts) through `AMIProtocol`, at the wire level.

Every action of a capture's ``.sent.raw`` is sent with `send_action` using the
capture's own headers and ActionIDs, and the bytes written must equal the
``.sent.raw`` exactly.  The server's bytes are then fed whole, in seeded random
chunks, one byte at a time and (for small captures) split in two at every byte
boundary; every feeding must give the same outcome (what each action's
Deferred fired with and in which order, the events the handlers saw, the log
lines), and the whole-feed outcome is checked value by value.

The harness (`Session`, `replay_all_feedings`) is also used by
``tests/test_helpers.py`` for replays driven by the typed helpers.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from txami import (
    ActionTimeout,
    AMIError,
    AMIProtocol,
    Message,
)

DATA = FilePath(__file__).sibling("data")

#: Captures up to this size are also split in two at every byte boundary.
SMALL = 1200
#: Captures up to this size are also fed one byte per read and in chunks of a few bytes.
BYTEWISE = 40_000


def read_capture(name: str) -> bytes:
    """The bytes of ``tests/data/<name>``."""
    return DATA.child(name).getContent()


def action_blocks(sent: bytes) -> list[bytes]:
    """The blocks of a ``.sent.raw``, each without the blank line that ends it."""
    parts = sent.split(b"\r\n\r\n")
    assert parts.pop() == b"", "a .sent.raw ends with a blank line"
    return parts


def server_blocks(raw: bytes) -> list[bytes]:
    """The messages of a server capture after the banner line (plain bytes split)."""
    parts = raw[raw.index(b"\r\n") + 2 :].split(b"\r\n\r\n")
    assert parts.pop() == b""
    return parts


def block_with_id(raw: bytes, action_id: str) -> bytes:
    """The one server message whose ActionID line is ``action_id``, with its blank line."""
    wanted = f"ActionID: {action_id}".encode()
    found = [b for b in server_blocks(raw) if wanted in b.split(b"\r\n")]
    assert len(found) == 1, (action_id, len(found))
    return found[0] + b"\r\n\r\n"


def capture_ids(sent: bytes) -> list[str]:
    """The ActionIDs of a ``.sent.raw``, in order (plain bytes parsing)."""
    ids = []
    for block in action_blocks(sent):
        for line in block.split(b"\r\n"):
            if line.lower().startswith(b"actionid:"):
                ids.append(line.split(b":", 1)[1].strip().decode())
    return ids


def md5_key(challenge: str, secret: str) -> str:
    """What an MD5 login must send as ``Key``."""
    return hashlib.md5((challenge + secret).encode()).hexdigest()


# --- outcomes ------------------------------------------------------------------------------


def exact(message: Message) -> object:
    """A message's exact content: its bytes, or its pairs if it refuses to serialise."""
    try:
        return message.to_bytes()
    except ValueError:
        # An old-style Command answer is rebuilt from the server's text as pairs,
        # and to_bytes refuses the NUL such text may hold.
        return tuple(message.pairs())


def describe(result: object) -> tuple[Any, ...]:
    """A comparable, exact description of what a Deferred fired with."""
    if isinstance(result, Failure):
        return ("failure", result.type.__name__, str(result.value))
    if isinstance(result, Message):
        complete = result.list_complete
        return (
            "message",
            exact(result),
            tuple(exact(e) for e in result.events),
            None if complete is None else exact(complete),
        )
    if isinstance(result, list):
        return ("list", tuple(describe(item) for item in result))
    return ("value", result)


class LogCapture:
    """Every log event published while installed (removed by the test's cleanup)."""

    def __init__(self, case: SynchronousTestCase) -> None:
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        case.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def txami(self, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """The events from txami's own loggers, ``events[start:stop]``."""
        return [
            e for e in self.events[start:stop] if e.get("log_namespace", "").startswith("txami")
        ]

    def lines(self, start: int = 0, stop: int | None = None) -> list[tuple[str, str]]:
        """``(level, formatted text)`` of txami's log events."""
        return [(e["log_level"].name, formatEvent(e)) for e in self.txami(start, stop)]


class Session:
    """
    One `AMIProtocol` connected to a `StringTransport`, with a `Clock`, a
    ``"*"`` handler recording every event, and the outcome of every action
    tracked by a key (the capture's ActionID).
    """

    def __init__(self, logs: LogCapture | None = None, **options: Any) -> None:
        self.clock = Clock()
        self.transport = StringTransport()
        self.protocol = AMIProtocol(self.clock, **options)
        self.protocol.makeConnection(self.transport)
        self.events: list[Message] = []
        self.protocol.add_event_handler("*", self.events.append)
        self.results: dict[str, object] = {}
        self.fired: list[str] = []
        self.deferreds: dict[str, Deferred[Any]] = {}
        self.logs = logs
        self.log_start = len(logs.events) if logs is not None else 0
        self.log_stop: int | None = None

    # --- sending ---

    def track(self, key: str, deferred: Deferred[Any]) -> Deferred[Any]:
        """Record what ``deferred`` fires with under ``key`` (and in firing order)."""
        assert key not in self.deferreds, key
        self.deferreds[key] = deferred

        def done(result: object) -> None:
            self.results[key] = result
            self.fired.append(key)

        deferred.addBoth(done)
        return deferred

    def send_block(self, block: bytes, **options: Any) -> Deferred[Any]:
        """Send one action of a ``.sent.raw`` by `send_action`, headers and ActionID unchanged."""
        message = Message.parse(block)
        headers = [(k, v) for k, v in message if k.lower() != "action"]
        return self.track(
            message["ActionID"], self.protocol.send_action(message["Action"], headers, **options)
        )

    def send_capture(self, sent: bytes, options: dict[str, dict[str, Any]] | None = None) -> None:
        """Send every action of a ``.sent.raw``; ``options``: keywords by ActionID."""
        options = options or {}
        for block in action_blocks(sent):
            action_id = Message.parse(block)["ActionID"]
            self.send_block(block, **options.get(action_id, {}))

    def pin_ids(self, ids: list[str]) -> None:
        """
        Make the typed helpers use ``ids`` (a capture's ActionIDs, in order) instead
        of generated ones, by giving each action without an ActionID the next id.
        """
        queue = list(ids)
        send = self.protocol._send

        def pinned(name: str, pairs: list[tuple[str, str]], *args: Any, **kw: Any) -> Any:
            if not any(k.lower() == "actionid" for k, _ in pairs):
                pairs = [("ActionID", queue.pop(0)), *pairs]
            return send(name, pairs, *args, **kw)

        self.protocol._send = pinned  # type: ignore[method-assign]
        self.protocol._send_bare = lambda name: pinned(name, [])  # type: ignore[method-assign]

    # --- receiving ---

    def feed(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.protocol.dataReceived(chunk)

    def event_names(self) -> list[str | None]:
        return [e.name for e in self.events]

    def log_lines(self) -> list[tuple[str, str]]:
        """``(level, text)`` of txami's log events during this session (up to `finish`)."""
        if self.logs is None:
            return []
        return self.logs.lines(self.log_start, self.log_stop)

    def finish(self) -> None:
        """Stop attributing later log events to this session."""
        if self.logs is not None:
            self.log_stop = len(self.logs.events)

    def summary(self) -> tuple[Any, ...]:
        """Everything observable, exactly, for comparing two feedings."""
        logs = self.log_lines()
        return (
            tuple((key, describe(self.results[key])) for key in self.fired),
            tuple((e.name, e.to_bytes()) for e in self.events),
            tuple(sorted(set(self.deferreds) - set(self.results))),
            self.protocol.banner,
            self.protocol.ami_version,
            self.protocol.events_received,
            self.transport.disconnecting,
            tuple(logs),
        )


# --- feedings ------------------------------------------------------------------------------


def random_chunks(data: bytes, seed: int, largest: int) -> list[bytes]:
    """``data`` cut into pieces of 1..``largest`` bytes, reproducibly."""
    rng = random.Random(seed)
    chunks = []
    pos = 0
    while pos < len(data):
        size = rng.randint(1, largest)
        chunks.append(data[pos : pos + size])
        pos += size
    return chunks


def feedings(data: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """Every way a test feeds ``data``: whole first, then the chunked ways."""
    yield "whole", [data]
    for seed, largest in ((1, 5), (2, 60), (3, 1500), (4, 16384), (5, 65536)):
        if largest < 1000 and len(data) > BYTEWISE:
            continue
        yield (
            f"random chunks, seed {seed}, up to {largest} bytes",
            random_chunks(data, seed, largest),
        )
    if len(data) <= BYTEWISE:
        yield "one byte per read", [data[i : i + 1] for i in range(len(data))]
    if len(data) <= SMALL:
        for i in range(1, len(data)):
            yield f"split at byte {i}", [data[:i], data[i:]]


def replay_all_feedings(
    case: SynchronousTestCase,
    raw_name: str,
    start: Callable[[Session], None],
    advance: float = 0.0,
    **options: Any,
) -> Session:
    """
    For every feeding of capture ``raw_name``: a new `Session`, ``start(session)``
    (sends the actions), the feed, then ``advance`` seconds on the clock.  Fails
    ``case`` unless every feeding gives the whole feed's summary; returns the
    whole-feed session for the caller's exact assertions.
    """
    data = read_capture(raw_name)
    logs = LogCapture(case)
    first: Session | None = None
    expected: tuple[Any, ...] = ()
    count = 0
    for label, chunks in feedings(data):
        session = Session(logs, **options)
        start(session)
        session.feed(chunks)
        if advance:
            session.clock.advance(advance)
        session.finish()
        summary = session.summary()
        count += 1
        if first is None:
            first, expected = session, summary
        elif summary != expected:
            for index, (got, want) in enumerate(zip(summary, expected, strict=True)):
                if got != want:
                    case.fail(f"{raw_name}: {label} differs from the whole feed in part {index}")
    assert first is not None
    case.assertGreaterEqual(count, 4)
    return first


def wire_start(
    sent_name: str, options: dict[str, dict[str, Any]] | None = None
) -> Callable[[Session], None]:
    """A ``start`` that sends every action of ``sent_name`` with its own headers and ActionID."""
    sent = read_capture(sent_name)

    def start(session: Session) -> None:
        session.send_capture(sent, options)

    return start


class WireReplayMixin:
    """Helpers for the wire-level replay tests."""

    def wire(
        self,
        name: str,
        options: dict[str, dict[str, Any]] | None = None,
        advance: float = 0.0,
        **protocol_options: Any,
    ) -> Session:
        """Replay capture ``name`` (``.raw`` and ``.sent.raw``) in every feeding."""
        case: SynchronousTestCase = self  # type: ignore[assignment]
        session = replay_all_feedings(
            case,
            f"{name}.raw",
            wire_start(f"{name}.sent.raw", options),
            advance,
            **protocol_options,
        )
        case.assertEqual(session.transport.value(), read_capture(f"{name}.sent.raw"))
        return session

    def ok(self, session: Session, key: str) -> Message:
        """The message action ``key`` succeeded with (fails the test otherwise)."""
        result = session.results[key]
        case: SynchronousTestCase = self  # type: ignore[assignment]
        case.assertIsInstance(result, Message, f"{key}: {result!r}")
        assert isinstance(result, Message)
        return result

    def error(self, session: Session, key: str, kind: type[Exception] = AMIError) -> Any:
        """The exception action ``key`` failed with, checked to be exactly a ``kind``."""
        result = session.results[key]
        case: SynchronousTestCase = self  # type: ignore[assignment]
        case.assertIsInstance(result, Failure, f"{key}: {result!r}")
        assert isinstance(result, Failure)
        case.assertIs(result.type, kind)
        return result.value

    def same_as_capture(self, session: Session, raw_name: str, key: str) -> Message:
        """Action ``key`` resolved with exactly the capture's message for that ActionID."""
        message = self.ok(session, key)
        case: SynchronousTestCase = self  # type: ignore[assignment]
        case.assertEqual(message.to_bytes(), block_with_id(read_capture(raw_name), key))
        return message


ALL_BY_CAPTURE = ("FullyBooted", "SuccessfulAuth")


class LoginReplayTests(WireReplayMixin, SynchronousTestCase):
    """Login, logoff, ping and the actions around them."""

    def test_login_success(self) -> None:
        """login-success: the banner, an accepted Login, its two events and the Goodbye."""
        s = self.wire("login-success")
        self.assertEqual(s.protocol.banner, "Asterisk Call Manager/9.0.0")
        self.assertEqual(s.protocol.ami_version, "9.0.0")
        login = self.same_as_capture(s, "login-success.raw", "login-success-01")
        self.assertEqual(login.kind, "response")
        self.assertEqual(login.name, "Success")
        self.assertEqual(login["Message"], "Authentication accepted")
        bye = self.ok(s, "login-success-02")
        self.assertEqual((bye.name, bye["Message"]), ("Goodbye", "Thanks for all the fish."))
        self.assertEqual(s.fired, ["login-success-01", "login-success-02"])
        self.assertEqual(s.event_names(), list(ALL_BY_CAPTURE))
        self.assertEqual(s.events[1]["UsingPassword"], "0")
        self.assertEqual(s.events[1]["AccountID"], "admin")
        self.assertEqual(s.protocol.events_received, 2)

    def test_login_failure(self) -> None:
        """login-failure: a wrong secret errbacks AMIError 'Authentication failed'."""
        s = self.wire("login-failure")
        error = self.error(s, "login-failure-02")
        self.assertEqual(error.message, "Authentication failed")
        self.assertEqual(error.action, "Login")
        self.assertEqual(str(error), "Login failed: Authentication failed")
        self.assertEqual(s.events, [])

    def test_login_failure_unknown_user(self) -> None:
        """login-failure.nouser: an unknown user gets the same 'Authentication failed'."""
        s = replay_all_feedings(
            self, "login-failure.nouser.raw", wire_start("login-failure.nouser.sent.raw")
        )
        self.assertEqual(s.transport.value(), read_capture("login-failure.nouser.sent.raw"))
        self.assertEqual(self.error(s, "login-failure-03").message, "Authentication failed")

    def test_login_md5(self) -> None:
        """login-md5: the Challenge answer, a Key of md5(challenge + secret) accepted, Goodbye."""
        s = self.wire("login-md5")
        challenge = self.same_as_capture(s, "login-md5.raw", "login-md5-01")
        self.assertEqual(challenge["Challenge"], "951053600")
        sent = Message.parse(action_blocks(read_capture("login-md5.sent.raw"))[1])
        self.assertEqual(sent["Key"], md5_key("951053600", "adminsecret"))
        self.assertEqual(self.ok(s, "login-md5-02")["Message"], "Authentication accepted")
        self.assertEqual(self.ok(s, "login-md5-03").name, "Goodbye")
        self.assertEqual(s.event_names(), list(ALL_BY_CAPTURE))

    def test_login_md5_bad_key(self) -> None:
        """login-md5.badkey: a wrong Key is refused with 'Authentication failed'."""
        s = replay_all_feedings(
            self, "login-md5.badkey.raw", wire_start("login-md5.badkey.sent.raw")
        )
        self.assertEqual(s.transport.value(), read_capture("login-md5.badkey.sent.raw"))
        self.assertEqual(self.ok(s, "login-md5-04")["Challenge"], "591775001")
        self.assertEqual(self.error(s, "login-md5-05").message, "Authentication failed")

    def test_login_md5_bad_auth_type(self) -> None:
        """login-md5.badauthtype: a Challenge for SHA1 errbacks 'Must specify AuthType'."""
        s = replay_all_feedings(
            self, "login-md5.badauthtype.raw", wire_start("login-md5.badauthtype.sent.raw")
        )
        self.assertEqual(s.transport.value(), read_capture("login-md5.badauthtype.sent.raw"))
        error = self.error(s, "login-md5-06")
        self.assertEqual(str(error), "Challenge failed: Must specify AuthType")

    def test_ping(self) -> None:
        """ping: Pong with Timestamp, also for an ActionID holding spaces and a colon."""
        s = self.wire("ping")
        pong = self.same_as_capture(s, "ping.raw", "ping-02")
        self.assertEqual((pong["Ping"], pong["Timestamp"]), ("Pong", "1795694613.164388"))
        odd = self.ok(s, "custom id with spaces: and colon")
        self.assertEqual(odd.action_id, "custom id with spaces: and colon")
        self.assertEqual(odd["Timestamp"], "1795694613.164560")
        self.assertEqual(
            s.fired, ["ping-01", "ping-02", "custom id with spaces: and colon", "ping-03"]
        )

    def test_preauth(self) -> None:
        """preauth: actions before Login fail 'Permission denied'; the session carries on."""
        s = self.wire("preauth")
        for key, action in (("preauth-01", "Ping"), ("preauth-02", "CoreStatus")):
            error = self.error(s, key)
            self.assertEqual((error.action, error.message), (action, "Permission denied"))
        self.assertEqual(self.ok(s, "preauth-04")["Ping"], "Pong")
        self.assertEqual(s.event_names(), ["FullyBooted", "RequestNotAllowed", "SuccessfulAuth"])
        self.assertEqual(s.events[1]["RequestType"], "Action: CoreStatus")
        self.assertEqual(s.events[1]["AccountID"], "")

    def test_logoff(self) -> None:
        """logoff: Logoff fires with the Goodbye response."""
        s = self.wire("logoff")
        bye = self.same_as_capture(s, "logoff.raw", "logoff-02")
        self.assertEqual(bye.name, "Goodbye")
        self.assertEqual(s.fired, ["logoff-01", "logoff-02"])

    def test_events(self) -> None:
        """events: mask answers, 'Invalid event mask', exactly the two delivered UserEvents."""
        s = self.wire("events")
        self.assertEqual(self.ok(s, "events-03")["Events"], "On")
        self.assertEqual(self.ok(s, "events-05")["Events"], "Off")
        self.assertEqual(self.ok(s, "events-11")["Events"], "Off")
        self.assertNotIn("Message", self.ok(s, "events-03"))
        self.assertEqual(self.error(s, "events-12").message, "Invalid event mask")
        self.assertEqual(s.event_names(), ["UserEvent", "UserEvent"])
        self.assertEqual([e["UserEvent"] for e in s.events], ["Delivered1", "Delivered2"])
        self.assertEqual([e.action_id for e in s.events], ["events-04", "events-08"])
        self.assertEqual(len(s.fired), 13)

    def test_tls(self) -> None:
        """tls (decrypted bytes): the same protocol inside TLS gives the same results."""
        s = self.wire("tls")
        self.assertEqual(self.ok(s, "tls-02")["Ping"], "Pong")
        core = self.same_as_capture(s, "tls.raw", "tls-03")
        self.assertEqual(core["CoreProcessedCalls"], "27")
        self.assertEqual(s.event_names(), list(ALL_BY_CAPTURE))
        self.assertEqual(s.fired, ["tls-01", "tls-02", "tls-03", "tls-04"])


class SingleResponseReplayTests(WireReplayMixin, SynchronousTestCase):
    """Actions answered by one response (no list)."""

    def test_listcommands(self) -> None:
        """listcommands: one response with one header per action, 117 of them."""
        s = self.wire("listcommands")
        response = self.same_as_capture(s, "listcommands.raw", "listcommands-02")
        self.assertEqual(len(response), 119)
        self.assertEqual(response["Originate"], "Originate a call.  (Priv: originate,all)")
        self.assertEqual(response["waitevent"], "Wait for an event to occur.  (Priv: <none>)")
        self.assertIn("\t", response["SendText"])
        self.assertEqual(response.events, ())

    def test_core_settings_status(self) -> None:
        """core-settings-status: versions, empty values kept as ''."""
        s = self.wire("core-settings-status")
        settings = self.same_as_capture(s, "core-settings-status.raw", "core-settings-status-02")
        self.assertEqual(settings["AMIversion"], "9.0.0")
        self.assertEqual(settings["AsteriskVersion"], "20.20.1")
        self.assertEqual(settings["SystemName"], "")
        self.assertEqual(settings["CoreMaxCalls"], "500")
        status = self.ok(s, "core-settings-status-03")
        self.assertEqual(status["CoreCurrentCalls"], "0")
        self.assertEqual(len(status), 8)

    def test_command(self) -> None:
        """command: Output lines equal the capture's Output headers exactly, spaces kept."""
        s = self.wire("command")
        raw = read_capture("command.raw")
        counts = {"command-02": 1, "command-03": 4, "command-04": 44, "command-05": 126}
        counts.update({"command-06": 105, "command-08": 2})
        for key, count in counts.items():
            block = block_with_id(raw, key)
            expected = [
                line[len(b"Output: ") :].decode()
                for line in block.split(b"\r\n")
                if line.startswith(b"Output: ")
            ]
            self.assertEqual(self.ok(s, key).getall("Output"), expected)
            self.assertEqual(len(expected), count)
        channels = self.ok(s, "command-03").getall("Output")
        self.assertEqual(
            channels[0],
            "Channel" + " " * 58 + "Location" + " " * 25 + "State   Application(Data)" + " " * 13,
        )
        manual = self.ok(s, "command-06").getall("Output")
        self.assertEqual(manual[0], "")
        self.assertEqual(manual[1], "  -= Info about Manager Command 'Originate' =- ")
        self.assertEqual(manual[-1], "[End Final Response]")
        failed = self.error(s, "command-07")
        self.assertEqual(failed.message, "Command output follows")
        self.assertEqual(
            failed.output,
            [
                "No such command 'foo bar baz' (type 'core show help foo bar' for other possible "
                "commands)"
            ],
        )
        self.assertEqual(
            str(failed),
            "Command failed: Command output follows (No such command 'foo bar baz' (type 'core "
            "show help foo bar' for other possible commands))",
        )
        missing = self.error(s, "command-09")
        self.assertEqual((missing.message, missing.output), ("No command provided", []))

    def test_mailbox(self) -> None:
        """mailbox: counts, status, 'Mailbox not specified', and the 2-item VoicemailUsersList."""
        s = self.wire("mailbox")
        count = self.same_as_capture(s, "mailbox.raw", "mailbox-02")
        self.assertEqual(
            (count["NewMessages"], count["OldMessages"], count["UrgMessages"]), ("2", "1", "0")
        )
        self.assertEqual(self.ok(s, "mailbox-03")["Waiting"], "1")
        self.assertEqual(self.ok(s, "mailbox-04")["NewMessages"], "2")
        self.assertEqual(self.ok(s, "mailbox-05")["NewMessages"], "0")
        self.assertEqual(self.ok(s, "mailbox-07")["Waiting"], "0")
        self.assertEqual(self.ok(s, "mailbox-08")["Mailbox"], "9999@nosuchcontext")
        for key in ("mailbox-09", "mailbox-10"):
            self.assertEqual(self.error(s, key).message, "Mailbox not specified")
        users = self.ok(s, "mailbox-11")
        self.assertEqual([e.name for e in users.events], ["VoicemailUserEntry"] * 2)
        self.assertEqual(users.events[0]["Fullname"], "Txami Tester")
        self.assertEqual(users.events[0]["NewMessageCount"], "2")
        assert users.list_complete is not None
        self.assertEqual(users.list_complete.name, "VoicemailUserEntryComplete")
        self.assertEqual(users.list_complete["ListItems"], "2")
        self.assertEqual(s.event_names(), list(ALL_BY_CAPTURE))

    def test_extensionstate(self) -> None:
        """extensionstate: hint states, and two lists whose items never reach the handlers."""
        s = self.wire("extensionstate")
        idle = self.same_as_capture(s, "extensionstate.raw", "extensionstate-02")
        self.assertEqual((idle["Status"], idle["StatusText"]), ("0", "Idle"))
        self.assertEqual(self.ok(s, "extensionstate-03")["Status"], "-1")
        self.assertEqual(self.ok(s, "extensionstate-03")["Hint"], "")
        self.assertEqual(self.ok(s, "extensionstate-06")["StatusText"], "InUse")
        self.assertEqual(self.ok(s, "extensionstate-08")["StatusText"], "Ringing")
        self.assertEqual(len(self.ok(s, "extensionstate-09").events), 3)
        self.assertEqual(len(self.ok(s, "extensionstate-10").events), 8)
        self.assertEqual(
            [e.name for e in self.ok(s, "extensionstate-10").events], ["DeviceStateChange"] * 8
        )
        self.assertEqual(
            s.event_names(),
            [*ALL_BY_CAPTURE, *["ExtensionStatus", "DeviceStateChange"] * 4],
        )
        self.assertTrue(all(e.action_id is None for e in s.events))

    def test_vars(self) -> None:
        """vars: Getvar/Setvar values (empty, dialplan functions) and their errors."""
        s = self.wire("vars")
        self.assertEqual(self.ok(s, "vars-02")["Value"], "hello")
        self.assertEqual(self.ok(s, "vars-03")["Message"], "Variable Set")
        self.assertEqual(self.ok(s, "vars-04")["Value"], "abc def")
        self.assertEqual(self.ok(s, "vars-05")["Value"], "")
        self.assertEqual(self.ok(s, "vars-08")["Value"], "bar")
        self.assertEqual(self.ok(s, "vars-09")["Value"], '"Long 0" <5551000>')
        self.assertEqual(self.ok(s, "vars-10")["Value"], "Up")
        self.assertEqual(self.ok(s, "vars-15")["Value"], "")
        for key, text in (
            ("vars-11", "No such channel"),
            ("vars-12", "No such channel"),
            ("vars-13", "No variable specified"),
            ("vars-14", "No variable specified"),
        ):
            self.assertEqual(self.error(s, key).message, text)
        self.assertEqual(len(s.events), 23)
        self.assertEqual(s.events[2].name, "VarSet")
        self.assertEqual(s.events[2]["Channel"], "none")
        self.assertEqual(Counter(s.event_names())["VarSet"], 4)

    def test_reload(self) -> None:
        """reload: answers and errors; the Reload events come after and reach the handlers."""
        s = self.wire("reload")
        self.assertEqual(self.ok(s, "reload-02")["Message"], "Module Reloaded")
        self.assertEqual(self.error(s, "reload-04").message, "No such module")
        self.assertEqual(self.error(s, "reload-05").message, "Module does not support reload")
        self.assertEqual(self.ok(s, "reload-07")["Version"], "")
        self.assertEqual(self.error(s, "reload-08").message, "Module not loaded")
        reloads = [e for e in s.events if e.name == "Reload"]
        self.assertEqual(
            [(e["Module"], e["Status"]) for e in reloads],
            [
                ("chan_iax2.so", "0"),
                ("app_queue", "0"),
                ("nosuchmodule.so", "2"),
                ("app_echo.so", "6"),
                ("All", "0"),
            ],
        )
        self.assertEqual(len(s.events), 13)

    def test_unknown_action(self) -> None:
        """unknown-action: FooBarBaz and an empty Action errback AMIError with the server text."""
        s = replay_all_feedings(self, "unknown-action.raw", self.unknown_action_start)
        self.assertEqual(s.transport.value(), read_capture("unknown-action.sent.raw"))
        error = self.error(s, "unknown-action-02")
        self.assertEqual(
            str(error),
            "FooBarBaz failed: Invalid/unknown command: FooBarBaz. Use Action: ListCommands to "
            "show available commands.",
        )
        self.assertEqual(self.error(s, "x").message, "Missing action in request")
        self.assertEqual(s.event_names(), [*ALL_BY_CAPTURE, *["RequestBadFormat"] * 3])
        # The reply to the block without an Action line has an ActionID nobody waits for.
        self.assertIn(
            ("debug", "dropping a response to ActionID 'no-action-line', which is not pending"),
            s.log_lines(),
        )

    @staticmethod
    def unknown_action_start(session: Session) -> None:
        blocks = action_blocks(read_capture("unknown-action.sent.raw"))
        for block in blocks:
            if block.startswith(b"Action:"):
                session.send_block(block)
            else:
                # No Action line: send_action cannot produce it, so write it as captured.
                session.transport.write(block + b"\r\n\r\n")

    def test_permission(self) -> None:
        """permission: a read-only user may Ping; Originate, Command, Status, Setvar denied."""
        s = self.wire("permission")
        self.assertEqual(self.ok(s, "permission-03")["Ping"], "Pong")
        for key, action in (
            ("permission-04", "Originate"),
            ("permission-05", "Command"),
            ("permission-06", "Status"),
            ("permission-07", "Setvar"),
        ):
            error = self.error(s, key)
            self.assertEqual(str(error), f"{action} failed: Permission denied")
        self.assertEqual(len(self.ok(s, "permission-08")), 23)
        self.assertEqual(s.event_names(), ["FullyBooted"])

    def test_custom_sample(self) -> None:
        """custom-sample: Events off, a 1-item QueueSummary list and the caller's own ActionID."""
        s = self.wire("custom-sample")
        self.assertEqual(
            self.ok(s, "custom-sample-04").getall("Output"),
            ["System uptime: 2 minutes, 39 seconds", "Last reload: 56 seconds"],
        )
        summary = self.ok(s, "custom-sample-05")
        self.assertEqual([e.name for e in summary.events], ["QueueSummary"])
        self.assertEqual(summary.events[0]["LoggedIn"], "2")
        self.assertEqual(self.ok(s, "my-own-id")["Value"], "hello")
        self.assertEqual(s.events, [])


class CallReplayTests(WireReplayMixin, SynchronousTestCase):
    """Originate, Status, Hangup and the other channel actions."""

    def test_originate_sync(self) -> None:
        """originate-sync: the late response, then the call's 25 events to the handlers."""
        s = self.wire("originate-sync")
        self.assertEqual(
            self.ok(s, "originate-sync-02")["Message"], "Originate successfully queued"
        )
        self.assertEqual(len(s.events), 27)
        self.assertEqual(
            Counter(s.event_names()),
            Counter(
                FullyBooted=1,
                SuccessfulAuth=1,
                Newchannel=2,
                Newexten=5,
                NewCallerid=2,
                NewConnectedLine=2,
                LocalBridge=1,
                DialBegin=1,
                Newstate=2,
                DeviceStateChange=4,
                DialEnd=1,
                SoftHangupRequest=2,
                HangupRequest=1,
                Hangup=2,
            ),
        )
        self.assertEqual(s.events[-1].name, "DeviceStateChange")

    def test_originate_async(self) -> None:
        """originate-async (send_action): queued response; OriginateResponse reaches handlers."""
        s = self.wire("originate-async")
        self.assertEqual(
            self.ok(s, "originate-async-02")["Message"], "Originate successfully queued"
        )
        self.assertEqual(len(s.events), 28)
        (reply,) = [e for e in s.events if e.name == "OriginateResponse"]
        self.assertEqual(reply.kind, "event")
        self.assertEqual((reply["Response"], reply["Reason"]), ("Success", "4"))
        self.assertEqual(reply.action_id, "originate-async-02")

    def test_originate_errors(self) -> None:
        """originate-errors: each failure's message; the async Failure event reaches handlers."""
        s = self.wire("originate-errors")
        for key, text in (
            ("originate-errors-02", "Originate failed"),
            ("originate-errors-04", "Originate failed"),
            ("originate-errors-05", "Invalid channel"),
            ("originate-errors-06", "Channel not specified"),
            ("originate-errors-07", "Invalid priority"),
        ):
            self.assertEqual(self.error(s, key).message, text)
        self.assertEqual(
            self.ok(s, "originate-errors-03")["Message"], "Originate successfully queued"
        )
        (reply,) = [e for e in s.events if e.name == "OriginateResponse"]
        self.assertEqual((reply["Response"], reply["Reason"]), ("Failure", "0"))
        self.assertEqual(len(s.events), 10)

    def test_originate_variables(self) -> None:
        """originate-variables: four Variable headers go out in order; the VarSet events arrive."""
        s = self.wire("originate-variables")
        sent = Message.parse(action_blocks(read_capture("originate-variables.sent.raw"))[1])
        self.assertEqual(
            sent.getall("Variable"),
            ["FOO=foo-value", "BAR=bar value with spaces", "BAZ=1,QUX=2", "__INHERITED=yes"],
        )
        self.assertEqual(Counter(s.event_names())["VarSet"], 10)
        self.assertEqual(len(s.events), 36)

    def test_status(self) -> None:
        """status: lists of 6 and 1, repeated Variable headers in order, 'No such channel'."""
        s = self.wire("status")
        every = self.ok(s, "status-05")
        self.assertEqual([e.name for e in every.events], ["Status"] * 6)
        self.assertEqual(every["EventList"], "start")
        assert every.list_complete is not None
        self.assertEqual(every.list_complete.name, "StatusComplete")
        self.assertEqual(
            (every.list_complete["ListItems"], every.list_complete["Items"]), ("6", "6")
        )
        self.assertEqual(
            [e["Channel"] for e in every.events],
            [
                "Local/1000@txami-test-00000004;2",
                "Local/1000@txami-test-00000004;1",
                "Local/1000@txami-test-00000006;1",
                "Local/1000@txami-test-00000006;2",
                "Local/1000@txami-test-00000005;2",
                "Local/1000@txami-test-00000005;1",
            ],
        )
        self.assertEqual(len(self.ok(s, "status-06").events), 1)
        (with_vars,) = self.ok(s, "status-07").events
        self.assertEqual(
            with_vars.getall("Variable"),
            ["TXAMI_CALL=0", "CALLERID(num)=5551000", "NOSUCHVAR=(null)"],
        )
        self.assertEqual(with_vars["variable"], "TXAMI_CALL=0")
        self.assertEqual(with_vars["AccountCode"], "")
        (all_vars,) = self.ok(s, "status-08").events
        self.assertEqual(all_vars.getall("Variable"), ["TXAMI_CALL=0"])
        self.assertEqual(self.error(s, "status-09").message, "No such channel")
        self.assertEqual(s.events, [])

    def test_hangup(self) -> None:
        """hangup: plain, Cause, a /regex/ list, errors; 76 events reach the handlers."""
        s = self.wire("hangup")
        self.assertEqual(self.ok(s, "hangup-05")["Message"], "Channel Hungup")
        self.assertEqual(self.ok(s, "hangup-06")["Message"], "Channel Hungup")
        self.assertEqual(self.error(s, "hangup-07").message, "No such channel")
        regex = self.ok(s, "hangup-08")
        self.assertEqual(regex["Message"], "Channels hung up will follow")
        self.assertEqual([e.name for e in regex.events], ["ChannelHungup"])
        self.assertEqual(regex.events[0]["Channel"], "Local/1000@txami-test-00000009;1")
        assert regex.list_complete is not None
        self.assertEqual(regex.list_complete.name, "ChannelsHungupListComplete")
        nothing = self.ok(s, "hangup-09")
        self.assertEqual(nothing.events, [])
        assert nothing.list_complete is not None
        self.assertEqual(nothing.list_complete["ListItems"], "0")
        self.assertEqual(self.error(s, "hangup-10").message, "No channel specified")
        self.assertEqual(len(s.events), 76)
        self.assertNotIn("ChannelHungup", s.event_names())
        self.assertNotIn("ChannelsHungupListComplete", s.event_names())
        busy = [e for e in s.events if e.name == "Hangup" and e["Channel"].endswith("0007;2")]
        self.assertEqual(len(busy), 1)

    def test_absolutetimeout(self) -> None:
        """absolutetimeout: 'Timeout Set', then 'No such channel'."""
        s = self.wire("absolutetimeout")
        self.assertEqual(self.ok(s, "absolutetimeout-03")["Message"], "Timeout Set")
        self.assertEqual(self.error(s, "absolutetimeout-04").message, "No such channel")
        self.assertEqual(len(s.events), 28)

    def test_userevent(self) -> None:
        """userevent: UserEvents (repeated X headers kept) reach handlers with their ActionIDs."""
        s = self.wire("userevent")
        user = [e for e in s.events if e.name == "UserEvent"]
        self.assertEqual(len(user), 4)
        self.assertEqual(user[0]["Header1"], "Value1")
        self.assertEqual(user[0]["Foo"], "bar baz")
        self.assertEqual(user[0].action_id, "userevent-02")
        self.assertEqual(user[1].getall("X"), ["1", "2", "3"])
        self.assertEqual(user[2]["UserEvent"], "")
        self.assertEqual((user[3]["UserEvent"], user[3]["Foo"]), ("TxamiTest", "bar"))
        self.assertEqual(len(s.events), 27)
        self.assertEqual(self.ok(s, "userevent-04")["Message"], "Event Sent")

    def test_db(self) -> None:
        """db: DBGet and DBGetTree are lists; missing keys and headers give their errors."""
        s = self.wire("db")
        self.assertEqual(self.ok(s, "db-02")["Message"], "Updated database successfully")
        got = self.ok(s, "db-04")
        self.assertEqual([e.name for e in got.events], ["DBGetResponse"])
        self.assertEqual(got.events[0]["Val"], "value one")
        self.assertEqual(self.error(s, "db-05").message, "Database entry not found")
        tree = self.ok(s, "db-06")
        self.assertEqual(
            [(e["Key"], e["Val"]) for e in tree.events],
            [("/txami/k1", "value one"), ("/txami/sub/k2", "value two")],
        )
        self.assertEqual(self.error(s, "db-08").message, "Database entry could not be deleted")
        self.assertEqual(self.error(s, "db-11").message, "No key specified")
        self.assertEqual(self.error(s, "db-12").message, "No family specified.")
        self.assertEqual(s.event_names(), list(ALL_BY_CAPTURE))

    def test_filter(self) -> None:
        """filter: filter answers and errors; only the two passing UserEvents arrive."""
        s = self.wire("filter")
        self.assertEqual(self.ok(s, "filter-02")["Message"], "Success")
        self.assertEqual(self.error(s, "filter-08").message, "Unknown operation")
        self.assertEqual(
            self.error(s, "filter-09").message,
            "Filter was formatted incorrectly.  Check the syntax of the filter given.",
        )
        self.assertEqual(
            self.error(s, "filter-10").message,
            "Filter did not compile.  Check the syntax of the filter given.",
        )
        self.assertEqual(
            [e.get("UserEvent") for e in s.events], [None, None, "PassesFilter", "PassesFilter2"]
        )


class IAXReplayTests(WireReplayMixin, SynchronousTestCase):
    """iax: list actions whose items lack the ActionID, and an action that is never answered."""

    options: ClassVar[dict[str, dict[str, Any]]] = {
        "iax-02": {"untagged_items": "PeerEntry"},
        "iax-06": {"action_timeout": 3.0},
    }

    def test_iax_peers_untagged_items(self) -> None:
        """IAXpeers with untagged_items: exactly 2 PeerEntry items, though without ActionID."""
        s = self.wire("iax", self.options, advance=3.0)
        peers = self.ok(s, "iax-02")
        self.assertEqual([e.name for e in peers.events], ["PeerEntry", "PeerEntry"])
        self.assertEqual([e.action_id for e in peers.events], [None, None])
        assert peers.list_complete is not None
        self.assertEqual(peers.list_complete["ListItems"], "2")
        listed = self.ok(s, "iax-03")
        self.assertEqual([e.action_id for e in listed.events], ["iax-03", "iax-03"])
        self.assertEqual(
            str(self.error(s, "iax-04")),
            "IAX1peers failed: Invalid/unknown command: IAX1peers. Use Action: ListCommands to "
            "show available commands.",
        )
        self.assertEqual(self.ok(s, "iax-05").events, [])
        self.assertEqual(s.event_names(), [*ALL_BY_CAPTURE, "RequestBadFormat"])

    def test_iax_netstats_times_out(self) -> None:
        """IAXnetstats' lone blank line is skipped; the action times out after its 3 s."""
        s = self.wire("iax", self.options)
        self.assertNotIn("iax-06", s.results)
        self.assertEqual(self.ok(s, "iax-07").name, "Goodbye")
        s.clock.advance(2.999)
        self.assertNotIn("iax-06", s.results)
        s.clock.advance(0.001)
        timeout = self.error(s, "iax-06", ActionTimeout)
        self.assertEqual(
            (timeout.action, timeout.action_id, timeout.timeout), ("IAXnetstats", "iax-06", 3.0)
        )
        self.assertEqual(str(timeout), "IAXnetstats (ActionID iax-06) got no answer within 3 s")
        self.assertEqual(s.fired[-1], "iax-06")
        # The lone blank line IAXnetstats got was skipped without a word.
        self.assertEqual(s.log_lines(), [])

    def test_iax_peers_without_untagged_items(self) -> None:
        """Without untagged_items IAXpeers ends empty, warns; the PeerEntry rows reach handlers."""
        s = self.wire("iax", {"iax-06": {"action_timeout": 3.0}}, advance=3.0)
        self.assertEqual(self.ok(s, "iax-02").events, [])
        self.assertEqual(
            s.event_names(), [*ALL_BY_CAPTURE, "PeerEntry", "PeerEntry", "RequestBadFormat"]
        )
        self.assertIn(("warn", "IAXpeers list announced 2 items but 0 arrived"), s.log_lines())


class OddInputReplayTests(WireReplayMixin, SynchronousTestCase):
    """Captures of unusual traffic: no ActionIDs, pipelining, malformed requests."""

    def test_no_actionid(self) -> None:
        """no-actionid: responses without ActionID logged, skipped; list events reach handlers."""
        s = replay_all_feedings(self, "no-actionid.raw", self.no_actionid_start)
        self.assertEqual(s.transport.value(), read_capture("no-actionid.sent.raw"))
        self.assertEqual(s.fired, ["no-actionid-01", "no-actionid-02"])
        self.assertEqual(
            s.event_names(),
            [
                *ALL_BY_CAPTURE,
                "CoreShowChannelsComplete",
                *["ExtensionStatus"] * 3,
                "ExtensionStateListComplete",
            ],
        )
        skipped = [t for level, t in s.log_lines() if t.startswith("skipping a response")]
        self.assertEqual(len(skipped), 5)
        self.assertEqual(
            skipped[0],
            "skipping a response without ActionID: Message([('Response', 'Success'), "
            "('Ping', 'Pong'), ('Timestamp', '1795694712.416616')])",
        )
        self.assertEqual({level for level, t in s.log_lines()}, {"warn"})

    @staticmethod
    def no_actionid_start(session: Session) -> None:
        for block in action_blocks(read_capture("no-actionid.sent.raw")):
            if b"ActionID" in block:
                session.send_block(block)
            else:
                # send_action always adds an ActionID; write the capture's bytes instead.
                session.transport.write(block + b"\r\n\r\n")

    def test_pipelining(self) -> None:
        """pipelining: five pipelined actions resolve in order, the list in the middle too."""
        s = self.wire("pipelining")
        self.assertEqual(
            s.fired,
            [
                "pipelining-01",
                *["pipe-1", "pipe-2", "pipe-3", "pipe-4", "pipe-5"],
                *["dribble-1", "pipelining-02"],
            ],
        )
        self.assertEqual(self.error(s, "pipe-3").message, "Database entry not found")
        self.assertEqual(len(self.ok(s, "pipe-4").events), 3)
        self.assertEqual(self.ok(s, "dribble-1")["Ping"], "Pong")
        self.assertEqual(s.event_names(), list(ALL_BY_CAPTURE))

    def test_malformed(self) -> None:
        """malformed: replies without ActionID skipped; echoed ids (even 'spaced   ') resolve."""
        s = replay_all_feedings(self, "malformed.raw", self.malformed_start)
        expected = ["malformed-01", "after-long-line", "after-long-line-2", "bare", "lf-only"]
        expected += ["nul-inside", "unterminated", "nospace", "many-headers", "spaced   "]
        expected += ["still-alive", "malformed-02"]
        self.assertEqual(s.fired, expected)
        self.assertEqual(self.ok(s, "spaced   ").action_id, "spaced   ")
        self.assertEqual(
            self.error(s, "many-headers").message,
            "Too many lines in message or allocation failure",
        )
        self.assertEqual(s.event_names(), [*ALL_BY_CAPTURE, *["RequestBadFormat"] * 5])
        skipped = [t for level, t in s.log_lines() if level == "warn"]
        self.assertEqual(len(skipped), 7)
        self.assertTrue(all(t.startswith("skipping a response without ActionID") for t in skipped))
        self.assertFalse(s.transport.disconnecting)

    @staticmethod
    def malformed_start(session: Session) -> None:
        # The capture's client wrote malformed bytes on purpose; txami refuses to.  Send
        # the ActionIDs the server echoed, so each answer has an action waiting for it.
        session.send_block(
            b"Action: Login\r\nActionID: malformed-01\r\nUsername: admin\r\nSecret: adminsecret"
        )
        for action_id in (
            "after-long-line",
            "after-long-line-2",
            "bare",
            "lf-only",
            "nul-inside",
            "unterminated",
            "nospace",
            "many-headers",
            "spaced   ",
            "still-alive",
        ):
            session.track(action_id, session.protocol.send_action("Ping", ActionID=action_id))
        session.track(
            "malformed-02", session.protocol.send_action("Logoff", ActionID="malformed-02")
        )


class EventStreamReplayTests(WireReplayMixin, SynchronousTestCase):
    """events-stream: 2.8 MB of events from 300 calls placed by another session."""

    def test_events_stream(self) -> None:
        """events-stream: 7803 events reach '*', counted by name as in events-stream.md."""
        s = self.wire("events-stream")
        self.assertEqual(len(s.events), 7803)
        self.assertEqual(s.protocol.events_received, 7803)
        self.assertEqual(
            Counter(s.event_names()),
            Counter(
                Newexten=1500,
                DeviceStateChange=1200,
                Newchannel=600,
                NewCallerid=600,
                NewConnectedLine=600,
                Newstate=600,
                SoftHangupRequest=600,
                Hangup=600,
                LocalBridge=300,
                DialBegin=300,
                DialEnd=300,
                OriginateResponse=300,
                HangupRequest=300,
                SuccessfulAuth=2,
                FullyBooted=1,
            ),
        )
        self.assertEqual(s.fired, ["events-stream-01", "events-stream-04"])
        foreign = [e.action_id for e in s.events if e.name == "OriginateResponse"]
        self.assertEqual(foreign, [f"burst-{i:03d}" for i in range(300)])
