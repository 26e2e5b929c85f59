"""
Replays of AGI dialogues recorded from a real Asterisk 20.20.1 (tests/data/agi-*,
made by tests/record_agi.py; the ``.md`` notes say how).

FastAGI: a `FastAGIProtocol` on a `StringTransport` is fed the bytes Asterisk
sent (``.raw``) whole, in seeded random chunks, one byte at a time and split
at every byte boundary; a handler issues the recorded commands through the
typed methods, and every feeding must write exactly the expected bytes (the
``.sent.raw``, or its prefix where txami stops at a hangup) and give the same
outcomes, which are checked value by value.  The main dialogue is also
replayed along its timeline (``.log``): after each chunk Asterisk sent, txami
must have written exactly what the script had sent by then.

AsyncAGI: an `AMIProtocol` is fed the recorded AMI session and an
`AsyncAGIServer` on it must send the recorded ``AGI`` actions byte for byte.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from tests.test_replay import LogCapture, feedings
from txami import AMIProtocol
from txami.agi import (
    AGICommands,
    AGIError,
    AGIHangup,
    AGIResult,
    AsyncAGI,
    AsyncAGIServer,
    FastAGIProtocol,
)
from txami.agi import asyncagi as asyncagi_module

DATA = FilePath(__file__).sibling("data")

#: A step of a replayed script: what to call on the session.
Step = Callable[[AGICommands], "Deferred[Any]"]


def read(name: str) -> bytes:
    return DATA.child(name).getContent()


def _unescape(match: re.Match[bytes]) -> bytes:
    code = match.group(1)
    if code.startswith(b"x"):
        return bytes([int(code[1:], 16)])
    return {b"r": b"\r", b"n": b"\n", b"\\": b"\\"}[code]


def timeline(name: str) -> list[tuple[str, bytes]]:
    """
    The chunks of a ``.log`` timeline in order: ``("S>C" | "C>S", bytes)``,
    each checked against the byte count its ``@@`` line announces.
    """
    chunks: list[tuple[str, bytes]] = []
    header: tuple[str, int] | None = None
    text: list[str] = []

    def close() -> None:
        if header is None:
            return
        escaped = "".join(text)
        data = re.sub(rb"\\(x[0-9a-f]{2}|r|n|\\)", _unescape, escaped.encode("ascii"))
        assert len(data) == header[1], (header, len(data))
        chunks.append((header[0], data))

    for line in read(name).decode("ascii").split("\n"):
        if line.startswith("@@ "):
            close()
            _, _, _, direction, size = line.split(" ")
            header, text = (direction, int(size)), []
        elif line.startswith("##"):
            close()
            header, text = None, []
        elif header is not None:
            text.append(line)
    close()
    return chunks


def describe(outcome: object) -> tuple[Any, ...]:
    """An exact, comparable description of what a command's Deferred fired with."""
    if isinstance(outcome, Failure):
        error = outcome.value
        if isinstance(error, AGIError):
            return ("AGIError", error.command, error.code, error.text, error.usage)
        if isinstance(error, AGIHangup):
            return ("AGIHangup", error.command, error.reason)
        return ("failure", outcome.type.__name__, str(error))
    if isinstance(outcome, AGIResult):
        return ("result", outcome.result, outcome.data, dict(outcome.fields))
    return ("value", outcome)


class Script:
    """A handler that runs ``steps`` in order and records each outcome."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps
        self.outcomes: list[tuple[Any, ...]] = []
        self.agi: AGICommands | None = None
        self.done = False

    async def __call__(self, agi: AGICommands) -> None:
        self.agi = agi
        for step in self.steps:
            caught: list[object] = []
            d = step(agi)
            d.addBoth(caught.append)  # the failure, if any, is consumed here
            await d
            self.outcomes.append(describe(caught[0]))
        self.done = True


def result(value: str, data: str | None = None, **fields: str) -> tuple[Any, ...]:
    return ("result", value, data, fields)


def value(x: object) -> tuple[Any, ...]:
    return ("value", x)


def hangup(command: str, reason: str) -> tuple[Any, ...]:
    return ("AGIHangup", command, reason)


WAIT_USAGE = (
    "Waits up to <replaceable>timeout</replaceable> milliseconds for channel to receive a "
    "DTMF digit. Returns <literal>-1</literal> on channel failure, <literal>0</literal> if no "
    "digit is received in the timeout, or the numerical value of the ascii of the digit if "
    "one is received. Use <literal>-1</literal> for the <replaceable>timeout</replaceable> "
    "value if you desire the call to block indefinitely."
)
TRICKY = 'say "hi" (a) b\\c) endpos=1'

#: agi-fastagi: every command of the capture, and what each must give.
FASTAGI: list[tuple[Step, tuple[Any, ...]]] = [
    (lambda a: a.answer(), result("0")),
    (lambda a: a.channel_status(), value(6)),
    (lambda a: a.get_variable("TXAMI_GLOBAL"), value("hello")),
    (lambda a: a.get_variable("TXAMI_UNSET"), value(None)),
    (lambda a: a.set_variable("TXAMI_AGI", "hello world"), value(None)),
    (lambda a: a.get_variable("TXAMI_AGI"), value("hello world")),
    (lambda a: a.set_variable("TXAMI_TRICKY", TRICKY), value(None)),
    (lambda a: a.get_variable("TXAMI_TRICKY"), value(TRICKY)),
    (lambda a: a.get_full_variable("${TXAMI_AGI}/${EXTEN}"), value("hello world/900")),
    (lambda a: a.get_variable("CALLERID(num)"), value("agirec2224")),
    (lambda a: a.stream_file("txami-no-such-file"), result("-1", endpos="0")),
    (lambda a: a.stream_file("txami-no-such-file", "12#", 800), result("-1", endpos="800")),
    (lambda a: a.wait_for_digit(100), result("0")),
    (lambda a: a.get_data("txami-no-such-file", 100, 4), result("-1")),
    (lambda a: a.say_digits("123"), result("0")),
    (lambda a: a.say_number(42), result("-1")),
    (lambda a: a.database_put("txami-agi", "key", "some value"), value(True)),
    (lambda a: a.database_get("txami-agi", "key"), value("some value")),
    (lambda a: a.database_del("txami-agi", "key"), value(True)),
    (lambda a: a.database_get("txami-agi", "key"), value(None)),
    (lambda a: a.database_del("txami-agi", "key"), value(True)),
    (lambda a: a.exec("NoOp", "txami", "exec"), result("0")),
    (lambda a: a.exec("TxamiNoSuchApp"), result("-2")),
    (lambda a: a.set_context("txami-test"), value(None)),
    (lambda a: a.set_extension("900"), value(None)),
    (lambda a: a.set_priority(3), value(None)),
    (lambda a: a.verbose("txami agi says hi", 1), value(None)),
    (lambda a: a.noop(), value(None)),
    (
        lambda a: a.send_command("TXAMI NO SUCH COMMAND"),
        ("AGIError", "TXAMI NO SUCH COMMAND", 510, "Invalid or unknown command", ""),
    ),
    (
        lambda a: a.send_command("SET VARIABLE", "ONLYNAME"),
        (
            "AGIError",
            "SET VARIABLE ONLYNAME",
            520,
            "Invalid command syntax.  Proper usage follows:",
            "Sets a variable to the current channel.",
        ),
    ),
    (
        lambda a: a.send_command("WAIT FOR DIGIT"),
        (
            "AGIError",
            "WAIT FOR DIGIT",
            520,
            "Invalid command syntax.  Proper usage follows:",
            WAIT_USAGE,
        ),
    ),
]


class FastAGISession:
    """One FastAGIProtocol on a StringTransport, running a `Script`."""

    def __init__(self, steps: list[Step]) -> None:
        self.script = Script(steps)
        self.transport = StringTransport()
        self.protocol = FastAGIProtocol(self.script, clock=Clock(), environment_timeout=10)
        self.protocol.makeConnection(self.transport)

    def feed(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.protocol.dataReceived(chunk)

    def summary(self) -> tuple[Any, ...]:
        return (
            tuple(self.script.outcomes),
            self.script.done,
            self.transport.value(),
            self.transport.disconnecting,
            self.protocol.hung_up,
        )


class FastAGIReplayTests(SynchronousTestCase):
    """The FastAGI captures, fed every way."""

    def replay(self, name: str, steps: list[Step]) -> FastAGISession:
        """Feed agi-NAME.raw every way; all feedings must agree; the whole feed's session."""
        data = read(f"agi-{name}.raw")
        first: FastAGISession | None = None
        count = 0
        for label, chunks in feedings(data):
            session = FastAGISession(steps)
            session.feed(chunks)
            count += 1
            if first is None:
                first = session
            else:
                self.assertEqual(session.summary(), first.summary(), f"{name}: {label}")
        assert first is not None
        self.assertGreaterEqual(count, 7)
        return first

    def test_commands(self) -> None:
        """agi-fastagi: the bytes written are the capture's, every command gives its value."""
        session = self.replay("fastagi", [step for step, _ in FASTAGI])
        self.assertEqual(session.transport.value(), read("agi-fastagi.sent.raw"))
        self.assertEqual(session.script.outcomes, [expected for _, expected in FASTAGI])
        self.assertTrue(session.script.done)
        self.assertTrue(session.transport.disconnecting)  # closed once the handler ended
        env = session.protocol.env
        self.assertEqual((env.network_script, env.arguments), ("txami", ("one", "two")))

    def test_commands_along_the_timeline(self) -> None:
        """agi-fastagi: after each chunk Asterisk sent, txami has written what the script had."""
        session = FastAGISession([step for step, _ in FASTAGI])
        expected = b""
        chunks = timeline("agi-fastagi.log")
        self.assertEqual(b"".join(c for d, c in chunks if d == "S>C"), read("agi-fastagi.raw"))
        for index, (direction, chunk) in enumerate(chunks):
            if direction == "C>S":
                expected += chunk
                continue
            session.feed([chunk])
            upcoming = list(itertools.takewhile(lambda c: c[0] == "C>S", chunks[index + 1 :]))
            self.assertEqual(
                session.transport.value(), expected + b"".join(c for _, c in upcoming), index
            )
        self.assertEqual(session.transport.value(), read("agi-fastagi.sent.raw"))

    def test_hangup_from_ami(self) -> None:
        """agi-hangup: EXEC gives -1; HANGUP then fails the command in flight and all later."""
        steps: list[Step] = [
            lambda a: a.answer(),
            lambda a: a.exec("Wait", 10),
            lambda a: a.answer(),
            lambda a: a.get_variable("TXAMI_GLOBAL"),
            lambda a: a.noop(),
        ]
        session = self.replay("hangup", steps)
        self.assertEqual(
            session.script.outcomes,
            [
                result("0"),
                result("-1"),
                hangup("ANSWER", "HANGUP"),
                hangup("GET VARIABLE TXAMI_GLOBAL", "HANGUP"),
                hangup("NOOP", "HANGUP"),
            ],
        )
        # The second ANSWER went out before HANGUP arrived; nothing after it.
        self.assertEqual(session.transport.value(), b"ANSWER\nEXEC Wait 10\nANSWER\n")
        self.assertTrue(session.protocol.hung_up)
        self.assertTrue(session.transport.disconnecting)

    def test_dead_channel_without_sighup(self) -> None:
        """agi-nosighup: no HANGUP line; the 511 reply fails the command and every later one."""
        steps: list[Step] = [
            lambda a: a.answer(),
            lambda a: a.exec("Wait", 10),
            lambda a: a.answer(),
            lambda a: a.get_variable("TXAMI_GLOBAL"),
        ]
        session = self.replay("nosighup", steps)
        reason = "511 Command Not Permitted on a dead channel or intercept routine"
        self.assertEqual(
            session.script.outcomes,
            [
                result("0"),
                result("-1"),
                hangup("ANSWER", reason),
                hangup("GET VARIABLE TXAMI_GLOBAL", reason),
            ],
        )
        self.assertEqual(session.transport.value(), b"ANSWER\nEXEC Wait 10\nANSWER\n")

    def test_script_hangs_up(self) -> None:
        """agi-hangup-command: HANGUP answers 1; the next command fails at Asterisk's HANGUP."""
        steps: list[Step] = [
            lambda a: a.answer(),
            lambda a: a.hangup(),
            lambda a: a.stream_file("txami-no-such-file"),
        ]
        session = self.replay("hangup-command", steps)
        self.assertEqual(
            session.script.outcomes,
            [
                result("0"),
                result("1"),
                hangup('STREAM FILE txami-no-such-file ""', "HANGUP"),
            ],
        )
        self.assertEqual(session.transport.value(), read("agi-hangup-command.sent.raw"))


class AsyncAGISession:
    """An AMIProtocol on a StringTransport with an AsyncAGIServer running a `Script`."""

    def __init__(self, case: SynchronousTestCase, steps: list[Step]) -> None:
        ids: Iterator[str] = (f"agirec.{n}" for n in itertools.count(1))
        case.patch(asyncagi_module, "new_action_id", lambda: next(ids))
        self.script = Script(steps)
        self.transport = StringTransport()
        self.protocol = AMIProtocol(Clock())
        self.protocol.makeConnection(self.transport)
        self.server = AsyncAGIServer(self.protocol, self.script)
        self.server.start()

    def summary(self) -> tuple[Any, ...]:
        return (
            tuple(self.script.outcomes),
            self.script.done,
            self.transport.value(),
            tuple(sorted(self.server.sessions)),
        )


def agi_actions(sent: bytes) -> bytes:
    """The ``Action: AGI`` blocks of a ``.sent.raw``, with their blank lines."""
    return b"".join(
        block + b"\r\n\r\n"
        for block in sent.split(b"\r\n\r\n")
        if block.startswith(b"Action: AGI\r\n")
    )


class AsyncAGIReplayTests(SynchronousTestCase):
    """The AsyncAGI captures: AGI actions out, AsyncAGIExec/End events in."""

    def replay(self, name: str, steps: list[Step]) -> AsyncAGISession:
        data = read(f"agi-{name}.raw")
        LogCapture(self)
        first: AsyncAGISession | None = None
        for label, chunks in feedings(data):
            session = AsyncAGISession(self, steps)
            for chunk in chunks:
                session.protocol.dataReceived(chunk)
            if first is None:
                first = session
            else:
                self.assertEqual(session.summary(), first.summary(), f"{name}: {label}")
        assert first is not None
        return first

    def test_commands(self) -> None:
        """agi-async: the AGI actions written are the capture's; the handler's end sends BREAK."""
        steps: list[Step] = [
            lambda a: a.answer(),
            lambda a: a.get_variable("TXAMI_GLOBAL"),
            lambda a: a.set_variable("TXAMI_ASYNC", "hello world"),
            lambda a: a.get_variable("TXAMI_ASYNC"),
            lambda a: a.send_command("TXAMI NO SUCH COMMAND"),
            lambda a: a.send_command("SET VARIABLE", "ONLYNAME"),
        ]
        session = self.replay("async", steps)
        self.assertEqual(
            session.script.outcomes,
            [
                result("0"),
                value("hello"),
                value(None),
                value("hello world"),
                ("AGIError", "TXAMI NO SUCH COMMAND", 510, "Invalid or unknown command", ""),
                (
                    "AGIError",
                    "SET VARIABLE ONLYNAME",
                    520,
                    "Invalid command syntax.  Proper usage follows:",
                    "Sets a variable to the current channel.",
                ),
            ],
        )
        # Six commands, then ASYNCAGI BREAK (agirec.7) sent when the handler ended.
        self.assertEqual(session.transport.value(), agi_actions(read("agi-async.sent.raw")))
        self.assertEqual(session.server.sessions, {})  # AsyncAGIEnd ended it
        assert isinstance(session.script.agi, AsyncAGI)
        env = session.script.agi.env
        self.assertEqual((env.request, env.extension), ("async", "901"))
        self.assertTrue(session.script.agi.hung_up)

    def test_hangup(self) -> None:
        """agi-async-hangup: EXEC gives -1, AsyncAGIEnd fails the next command; no BREAK."""
        steps: list[Step] = [
            lambda a: a.answer(),
            lambda a: a.exec("Wait", 10),
            lambda a: a.noop(),
            lambda a: a.noop(),
        ]
        session = self.replay("async-hangup", steps)
        self.assertEqual(
            session.script.outcomes,
            [
                result("0"),
                result("-1"),
                hangup("NOOP", "AsyncAGIEnd"),
                hangup("NOOP", "AsyncAGIEnd"),
            ],
        )
        # The first NOOP went out before AsyncAGIEnd arrived (as the recorder's did).
        self.assertEqual(session.transport.value(), agi_actions(read("agi-async-hangup.sent.raw")))
