"""
Unit tests of `FastAGIProtocol` and `FastAGIFactory` on a `StringTransport`
and a `Clock`: the command queue, hangups, connection loss, cancellation,
refused arguments, limits and malformed input, and the handler's life.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.test_replay import LogCapture
from txami import ConnectionLost, NotConnected, ProtocolError
from txami.agi import (
    AGICommands,
    AGIConnectionLost,
    AGIError,
    AGIHangup,
    AGIResult,
    FastAGIFactory,
    FastAGIProtocol,
)
from txami.testing.agi import FakeAGI

ENV = FakeAGI(arguments=["one"], script="txami").environment_text().encode()


class Harness:
    """A FastAGIProtocol whose handler hands the session to the test and waits for `finish`."""

    def __init__(self, handler: Any = None, *, timeout: float | None = 10.0) -> None:
        self.clock = Clock()
        self.transport = StringTransport()
        self.agi: FastAGIProtocol | None = None
        self.finish: Deferred[None] = Deferred()
        self.protocol = FastAGIProtocol(
            handler if handler is not None else self._handler,
            clock=self.clock,
            environment_timeout=timeout,
        )
        self.protocol.makeConnection(self.transport)

    def _handler(self, agi: FastAGIProtocol) -> Deferred[None]:
        self.agi = agi
        return self.finish

    def start(self) -> FastAGIProtocol:
        self.protocol.dataReceived(ENV)
        return self.protocol

    def written(self) -> bytes:
        value = self.transport.value()
        self.transport.clear()
        return value

    def reply(self, text: str) -> None:
        self.protocol.dataReceived(text.encode("utf-8", "surrogateescape"))


def outcome(d: Deferred[Any]) -> list[object]:
    """A list that receives what ``d`` fires with (the failure is consumed)."""
    seen: list[object] = []
    d.addBoth(seen.append)
    return seen


class EnvironmentTests(SynchronousTestCase):
    """Reading the agi_* block and starting the handler."""

    def test_handler_gets_environment(self) -> None:
        """The handler runs once the blank line arrives, fed byte by byte, with the env read."""
        h = Harness()
        for byte in ENV[:-1]:
            h.protocol.dataReceived(bytes([byte]))
        self.assertIsNone(h.agi)
        h.protocol.dataReceived(ENV[-1:])
        assert h.agi is not None
        self.assertEqual((h.agi.env.arguments, h.agi.env.network_script), (("one",), "txami"))
        self.assertEqual(h.agi.env.channel, "PJSIP/100-00000001")

    def test_crlf_lines(self) -> None:
        """Lines ending CRLF read the same as LF (for servers other than Asterisk)."""
        h = Harness()
        h.protocol.dataReceived(ENV.replace(b"\n", b"\r\n"))
        assert h.agi is not None
        self.assertEqual(h.agi.env.arguments, ("one",))
        d = h.agi.noop()
        h.reply("200 result=0\r\n")
        self.assertIsNone(self.successResultOf(d))

    def test_environment_timeout(self) -> None:
        """A peer that sends no complete environment in time is dropped; no handler runs."""
        logs = LogCapture(self)
        h = Harness(timeout=5)
        h.protocol.dataReceived(b"agi_network: yes\n")
        h.clock.advance(4.9)
        self.assertFalse(h.transport.disconnecting)
        h.clock.advance(0.1)
        self.assertTrue(h.transport.disconnecting)
        self.assertIsNone(h.agi)
        self.assertIn("no complete AGI environment within 5 s", logs.lines()[-1][1])

    def test_timer_cancelled(self) -> None:
        """Once the environment is read, the timer is gone: the session may last any time."""
        h = Harness(timeout=5)
        h.start()
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_too_many_environment_lines(self) -> None:
        """More than max_environment_lines lines close the connection; nothing more is read."""
        logs = LogCapture(self)
        h = Harness()
        h.protocol.max_environment_lines = 3
        h.protocol.dataReceived(b"agi_a: 1\nagi_b: 2\nagi_c: 3\n")
        self.assertFalse(h.transport.disconnecting)
        # As TCP's abortConnection, close later and leave `disconnecting` unset: the rest
        # of the read still reaches lineReceived, which must ignore it.
        aborted: list[bool] = []
        h.transport.abortConnection = lambda: aborted.append(True)  # type: ignore[method-assign]
        h.protocol.dataReceived(b"agi_d: 4\nagi_e: 5\n\n")
        self.assertEqual(aborted, [True])
        self.assertIsNone(h.agi)
        self.assertEqual(len([level for level, _ in logs.lines() if level == "error"]), 1)


class CommandTests(SynchronousTestCase):
    """Writing commands and matching replies."""

    def test_one_at_a_time(self) -> None:
        """A second command waits until the first is answered; each gets its own reply."""
        h = Harness()
        agi = h.start()
        first = agi.get_variable("A")
        second = agi.get_variable("B")
        self.assertEqual(h.written(), b"GET VARIABLE A\n")
        h.reply("200 result=1 (a)\n")
        self.assertEqual(self.successResultOf(first), "a")
        self.assertEqual(h.written(), b"GET VARIABLE B\n")
        h.reply("200 result=0\n")
        self.assertIsNone(self.successResultOf(second))
        self.assertEqual(h.written(), b"")

    def test_commands_before_the_environment_wait(self) -> None:
        """A command made before the environment is read is written only after it."""
        h = Harness()
        d = h.protocol.noop()
        self.assertEqual(h.written(), b"")
        h.start()
        self.assertEqual(h.written(), b"NOOP\n")
        h.reply("200 result=0\n")
        self.assertIsNone(self.successResultOf(d))

    def test_order_kept_when_a_callback_adds_a_command(self) -> None:
        """A command added by a callback goes after those already queued (FIFO)."""
        h = Harness()
        agi = h.start()
        order: list[str] = []
        first = agi.noop()
        first.addCallback(lambda _: agi.verbose("from callback").addCallback(order.append))
        agi.verbose("queued").addCallback(order.append)
        h.written()
        h.reply("200 result=0\n")
        self.assertEqual(h.written(), b"VERBOSE queued 1\n")
        h.reply("200 result=1\n")
        self.assertEqual(h.written(), b'VERBOSE "from callback" 1\n')
        h.reply("200 result=1\n")
        self.assertEqual(order, [None, None])

    def test_typed_results(self) -> None:
        """Each typed method converts its reply as documented."""
        h = Harness()
        agi = h.start()
        cases: list[tuple[Deferred[Any], str, object]] = [
            (agi.channel_status(), "200 result=-1\n", -1),
            (agi.channel_status("Other/1"), "200 result=6\n", 6),
            (agi.database_put("f", "k", 1), "200 result=0\n", False),
            (agi.database_deltree("f"), "200 result=1\n", True),
            (agi.get_variable("X"), "200 result=1\n", ""),
            (agi.get_full_variable("${X}", "Other/1"), "200 result=0\n", None),
            (agi.set_autohangup(2.5), "200 result=0\n", None),
            (agi.set_callerid('"A" <1>'), "200 result=1\n", None),
            (agi.set_music(True, "default"), "200 result=0\n", None),
            (agi.get_option("f", "12", 500), "200 result=50 endpos=80\n", "2"),
            (agi.say_alpha("ab c"), "200 result=0\n", "0"),
            (agi.hangup("Other/1"), "200 result=-1\n", "-1"),
        ]
        lines = []
        for d, reply, expected in cases:
            lines.append(h.written())
            h.reply(reply)
            got = self.successResultOf(d)
            if isinstance(got, AGIResult):
                got = got.digit if got.digit else got.result
            self.assertEqual(got, expected, reply)
        self.assertEqual(
            b"".join(lines).decode().splitlines(),
            [
                "CHANNEL STATUS",
                "CHANNEL STATUS Other/1",
                "DATABASE PUT f k 1",
                "DATABASE DELTREE f",
                "GET VARIABLE X",
                "GET FULL VARIABLE ${X} Other/1",
                "SET AUTOHANGUP 2.5",
                'SET CALLERID "\\"A\\" <1>"',
                "SET MUSIC on default",
                "GET OPTION f 12 500",
                'SAY ALPHA "ab c" ""',
                "HANGUP Other/1",
            ],
        )

    def test_agi_errors(self) -> None:
        """510 and a 520 block (fed in pieces) errback AGIError; the session carries on."""
        h = Harness()
        agi = h.start()
        unknown = agi.send_command("FOO")
        usage = agi.send_command("SET VARIABLE", "X")
        h.reply("510 Invalid or unknown command\n")
        error = self.failureResultOf(unknown, AGIError).value
        self.assertEqual((error.command, error.code), ("FOO", 510))
        h.reply("520-Invalid command syntax.  Proper usage follows:\nUsage: one\n")
        self.assertNoResult(usage)
        h.reply("two\n520 End")
        self.assertNoResult(usage)
        h.reply(" of proper usage.\n")
        error = self.failureResultOf(usage, AGIError).value
        self.assertEqual((error.code, error.usage), (520, "Usage: one\ntwo"))
        d = agi.noop()
        h.reply("200 result=0\n")
        self.assertIsNone(self.successResultOf(d))

    def test_unsafe_arguments_write_nothing(self) -> None:
        """CR, LF or NUL in any argument raises ValueError and writes nothing."""
        h = Harness()
        agi = h.start()
        calls = [
            lambda bad: agi.set_variable("X", f"a{bad}EXEC System evil"),
            lambda bad: agi.get_variable(f"X{bad}"),
            lambda bad: agi.exec("Dial", "PJSIP/1", f"x{bad}y"),
            lambda bad: agi.stream_file(f"f{bad}"),
            lambda bad: agi.verbose(f"m{bad}"),
            lambda bad: agi.database_put("f", "k", f"v{bad}"),
            lambda bad: agi.send_command(f"NOOP{bad}HANGUP"),
            lambda bad: agi.send_command("NOOP", f"{bad}"),
        ]
        for bad in ("\r", "\n", "\0"):
            for call in calls:
                self.assertRaises(ValueError, call, bad)
        self.assertEqual(h.transport.value(), b"")

    def test_command_length_limit(self) -> None:
        """A line Asterisk could not read at once is refused; the longest it can is sent."""
        h = Harness()
        agi = h.start()
        head = "SET VARIABLE X "
        with self.assertRaises(ValueError):
            agi.send_command(head + "a" * (8191 - len(head)))
        self.assertEqual(h.written(), b"")
        agi.send_command(head + "a" * (8190 - len(head)))
        self.assertEqual(len(h.written()), 8191)

    def test_cancel_in_flight(self) -> None:
        """A cancelled command in flight fails CancelledError; its reply is swallowed."""
        h = Harness()
        agi = h.start()
        first = agi.get_variable("A")
        second = agi.get_variable("B")
        first.cancel()
        self.failureResultOf(first, CancelledError)
        self.assertEqual(h.written(), b"GET VARIABLE A\n")
        h.reply("200 result=1 (a)\n")
        self.assertEqual(h.written(), b"GET VARIABLE B\n")
        h.reply("200 result=1 (b)\n")
        self.assertEqual(self.successResultOf(second), "b")

    def test_cancel_queued(self) -> None:
        """A cancelled queued command is never written."""
        h = Harness()
        agi = h.start()
        first = agi.noop()
        second = agi.answer()
        third = agi.noop()
        second.cancel()
        self.failureResultOf(second, CancelledError)
        h.reply("200 result=0\n")
        self.successResultOf(first)
        self.assertEqual(h.written(), b"NOOP\nNOOP\n")
        h.reply("200 result=0\n")
        self.successResultOf(third)

    def test_unsolicited_and_garbage_lines(self) -> None:
        """A reply with nothing pending and a non-reply line are logged and skipped."""
        logs = LogCapture(self)
        h = Harness()
        agi = h.start()
        h.reply("200 result=0\n")
        d = agi.get_variable("A")
        h.reply("what is this\n\xff\xfe\n")
        self.assertNoResult(d)
        h.reply("200 result=1 (a)\n")
        self.assertEqual(self.successResultOf(d), "a")
        warnings = [text for level, text in logs.lines() if level == "warn"]
        self.assertEqual(len(warnings), 3, warnings)
        self.assertIn("no AGI command pending", warnings[0])

    def test_non_utf8_value(self) -> None:
        """Bytes that are not UTF-8 come back as surrogate escapes, never an exception."""
        h = Harness()
        agi = h.start()
        d = agi.get_variable("A")
        h.protocol.dataReceived(b"200 result=1 (\xff\xc3)\n")
        self.assertEqual(self.successResultOf(d), "\udcff\udcc3")


class HangupTests(SynchronousTestCase):
    """HANGUP and 511: the command in flight and every later one fail at once."""

    def test_hangup_while_commands_wait(self) -> None:
        """HANGUP fails the command in flight and the queued ones; later ones fail unsent."""
        h = Harness()
        agi = h.start()
        running = agi.exec("Wait", 10)
        queued = [agi.answer(), agi.noop()]
        h.written()
        h.reply("HANGUP\n")
        self.assertTrue(agi.hung_up)
        error = self.failureResultOf(running, AGIHangup).value
        self.assertEqual((error.command, error.reason), ("EXEC Wait 10", "HANGUP"))
        for d in queued:
            self.failureResultOf(d, AGIHangup)
        later = agi.get_variable("X")
        self.assertEqual(self.failureResultOf(later, AGIHangup).value.command, "GET VARIABLE X")
        h.reply("200 result=-1\n511 Command Not Permitted\n")  # late, ignored
        self.assertEqual(h.written(), b"")

    def test_hangup_while_idle(self) -> None:
        """HANGUP between commands makes the next one fail at once, unsent."""
        h = Harness()
        agi = h.start()
        h.reply("HANGUP\n")
        self.failureResultOf(agi.answer(), AGIHangup)
        self.assertEqual(h.written(), b"")

    def test_511(self) -> None:
        """A 511 reply fails its command with AGIHangup and ends the session."""
        h = Harness()
        agi = h.start()
        first = agi.answer()
        second = agi.noop()
        h.reply("511 Command Not Permitted on a dead channel or intercept routine\n")
        reason = "511 Command Not Permitted on a dead channel or intercept routine"
        self.assertEqual(self.failureResultOf(first, AGIHangup).value.reason, reason)
        self.assertEqual(self.failureResultOf(second, AGIHangup).value.reason, reason)
        self.assertEqual(h.written(), b"ANSWER\n")

    def test_usage_block_is_text(self) -> None:
        """Inside a 520 block every line is usage text up to the 520 line, even 'HANGUP'."""
        # Asterisk writes the block and HANGUP from one thread: HANGUP never falls inside.
        h = Harness()
        agi = h.start()
        d = agi.send_command("X")
        h.reply("520-Invalid\nHANGUP\n200 result=0\n520 End of proper usage.\n")
        self.assertEqual(self.failureResultOf(d, AGIError).value.usage, "HANGUP\n200 result=0")
        self.assertFalse(agi.hung_up)


class ConnectionTests(SynchronousTestCase):
    """The connection closing, protocol errors, and exactly-once firing."""

    def test_connection_lost_mid_command(self) -> None:
        """In-flight and queued commands fail AGIConnectionLost; later ones fail at once."""
        h = Harness()
        agi = h.start()
        running = agi.noop()
        queued = agi.answer()
        reason = Failure(ConnectionDone("bye"))
        h.protocol.connectionLost(reason)
        error = self.failureResultOf(running, AGIConnectionLost).value
        self.assertIsInstance(error, ConnectionLost)
        self.assertEqual(error.command, "NOOP")
        self.assertIs(error.reason, reason)
        self.assertEqual(
            str(error),
            "connection lost while AGI command 'NOOP' was pending: "
            "Connection was closed cleanly: bye.",
        )
        self.failureResultOf(queued, AGIConnectionLost)
        self.failureResultOf(agi.noop(), AGIConnectionLost)

    def test_long_line_closes(self) -> None:
        """A line over MAX_LENGTH aborts the connection; pending commands name ProtocolError."""
        logs = LogCapture(self)
        h = Harness()
        agi = h.start()
        h.protocol.MAX_LENGTH = 100
        d = agi.get_variable("A")
        h.reply("200 result=1 (" + "x" * 200)
        self.assertTrue(h.transport.disconnecting)
        h.protocol.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(d, AGIConnectionLost).value
        self.assertIsInstance(error.reason.value, ProtocolError)
        self.assertEqual(logs.lines()[-1][0], "error")

    def test_long_usage_block_closes(self) -> None:
        """A 520 block longer than max_reply_lines aborts the connection."""
        h = Harness()
        agi = h.start()
        h.protocol.max_reply_lines = 5
        d = agi.send_command("X")
        h.reply("520-Invalid\n" + "usage\n" * 5)
        self.assertTrue(h.transport.disconnecting)
        h.protocol.connectionLost(Failure(ConnectionDone()))
        self.failureResultOf(d, AGIConnectionLost)

    def test_large_blocks_close(self) -> None:
        """An environment or a 520 block over MAX_LENGTH bytes in all closes the connection."""
        h = Harness()
        h.protocol.MAX_LENGTH = 1000
        h.protocol.dataReceived(b"agi_x: " + b"y" * 90 + b"\n")
        self.assertFalse(h.transport.disconnecting)
        h.protocol.dataReceived((b"agi_x: " + b"y" * 90 + b"\n") * 10)
        self.assertTrue(h.transport.disconnecting)
        self.assertIsNone(h.agi)
        h = Harness()
        agi = h.start()
        h.protocol.MAX_LENGTH = 1000
        d = agi.send_command("X")
        h.reply("520-Invalid\n" + ("u" * 99 + "\n") * 9)
        self.assertFalse(h.transport.disconnecting)
        h.reply("u" * 99 + "\n")
        self.assertTrue(h.transport.disconnecting)
        h.protocol.connectionLost(Failure(ConnectionDone()))
        self.failureResultOf(d, AGIConnectionLost)

    def test_not_connected(self) -> None:
        """A protocol never connected fails commands with NotConnected."""
        protocol = FastAGIProtocol(lambda agi: None)
        self.failureResultOf(protocol.noop(), NotConnected)

    def test_when_finished(self) -> None:
        """when_finished fires once the connection has closed, also if asked afterwards."""
        h = Harness()
        h.start()
        waiter = h.protocol.when_finished()
        self.assertNoResult(waiter)
        h.protocol.connectionLost(Failure(ConnectionDone()))
        self.successResultOf(waiter)
        self.successResultOf(h.protocol.when_finished())

    def test_repr(self) -> None:
        """The repr names the channel."""
        h = Harness()
        h.start()
        self.assertEqual(repr(h.protocol), "<FastAGIProtocol channel='PJSIP/100-00000001'>")


class HandlerTests(SynchronousTestCase):
    """The handler's life: its end closes the connection; its failures are logged."""

    def test_end_closes(self) -> None:
        """When the handler's Deferred fires, the connection closes (not before)."""
        h = Harness()
        h.start()
        self.assertFalse(h.transport.disconnecting)
        h.finish.callback(None)
        self.assertTrue(h.transport.disconnecting)

    def test_plain_handler(self) -> None:
        """A handler that returns nothing ends at once: the connection closes."""
        seen: list[AGICommands] = []
        h = Harness(seen.append)
        h.start()
        self.assertEqual(len(seen), 1)
        self.assertTrue(h.transport.disconnecting)

    def test_async_handler(self) -> None:
        """An async def handler runs as a coroutine; the connection closes when it returns."""

        async def handler(agi: AGICommands) -> None:
            await agi.answer()

        h = Harness(handler)
        h.start()
        self.assertEqual(h.written(), b"ANSWER\n")
        self.assertFalse(h.transport.disconnecting)
        h.reply("200 result=0\n")
        self.assertTrue(h.transport.disconnecting)

    def test_raising_handler(self) -> None:
        """A handler that raises is logged with its traceback and the connection closes."""
        logs = LogCapture(self)

        def handler(agi: AGICommands) -> None:
            raise RuntimeError("oops")

        h = Harness(handler)
        h.start()
        self.assertTrue(h.transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        [text] = [text for level, text in logs.lines() if level == "critical"]
        self.assertIn("failed on channel PJSIP/100-00000001", text)

    def test_hangup_ends_handler_quietly(self) -> None:
        """A handler that ends with AGIHangup is logged at info level, without a traceback."""
        logs = LogCapture(self)

        async def handler(agi: AGICommands) -> None:
            await agi.answer()

        h = Harness(handler)
        h.start()
        h.reply("HANGUP\n")
        self.assertTrue(h.transport.disconnecting)
        self.assertEqual(self.flushLoggedErrors(), [])
        infos = [text for level, text in logs.lines() if level == "info"]
        self.assertEqual(len(infos), 1)
        self.assertIn("the channel hung up (HANGUP)", infos[0])


class FactoryTests(SynchronousTestCase):
    """FastAGIFactory."""

    def test_builds_protocols(self) -> None:
        """Each connection gets its own protocol with the factory's handler and timeout."""
        clock = Clock()
        handler = lambda agi: None  # noqa: E731
        factory = FastAGIFactory(handler, reactor=clock, environment_timeout=3)
        one, two = factory.buildProtocol(None), factory.buildProtocol(None)
        self.assertIsNot(one, two)
        self.assertEqual((one.handler, one.clock, one.environment_timeout), (handler, clock, 3))
        self.assertIs(one.factory, factory)
