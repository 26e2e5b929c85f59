"""
Unit tests of AsyncAGI over AMI: `AsyncAGIServer` and `AsyncAGI` against
txami's fake Asterisk with `FakeAsyncAGI` (in memory, on a `Clock`), and
against a bare `StringTransport` where the order of Asterisk's messages
matters.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from tests.test_replay import LogCapture
from txami import AMIError, AMIFactory, AMIProtocol
from txami.agi import (
    AGICommands,
    AGIConnectionLost,
    AGIError,
    AGIHangup,
    AGIResult,
    AsyncAGI,
    AsyncAGIServer,
)
from txami.testing import FakeAsterisk, connected_pair
from txami.testing.agi import FakeAGI, FakeAsyncAGI


class Sessions:
    """A handler that keeps each session and waits on a Deferred per session."""

    def __init__(self) -> None:
        self.agis: list[AsyncAGI] = []
        self.finish: list[Deferred[None]] = []

    def __call__(self, agi: AsyncAGI) -> Deferred[None]:
        self.agis.append(agi)
        done: Deferred[None] = Deferred()
        self.finish.append(done)
        return done


class Harness:
    """A fake Asterisk with AsyncAGI, a logged-in txami client and an AsyncAGIServer on it."""

    def __init__(self, username: str = "admin") -> None:
        self.clock = Clock()
        self.fake = FakeAsterisk(self.clock)
        self.fake.add_user("agiread", "secret", read="all", write="call")
        self.asyncagi = FakeAsyncAGI(self.fake)
        secret = "secret" if username == "agiread" else "adminsecret"
        self.client, self.session, self.pump = connected_pair(
            self.fake, self.clock, username=username, secret=secret
        )
        self.handler = Sessions()
        self.server = AsyncAGIServer(self.client, self.handler)
        self.server.start()

    def channel(self, **options: Any) -> tuple[FakeAGI, AsyncAGI]:
        """Put a fake channel in AsyncAGI; its FakeAGI and the session the handler got."""
        fake = FakeAGI(**options)
        self.asyncagi.start(fake)
        self.pump.flush()
        return fake, self.handler.agis[-1]

    def agi_actions(self) -> list[str]:
        """The Command of every AGI action the fake received."""
        return [m["Command"] for _, m in self.fake.actions_received if m.name == "AGI"]


class AsyncAGITests(SynchronousTestCase):
    """Sessions from AsyncAGIStart, commands by AGI action, results by AsyncAGIExec."""

    def test_session(self) -> None:
        """The handler gets the channel and its environment; commands give typed results."""
        h = Harness()
        fake, agi = h.channel(channel="PJSIP/7-00000002", variables={"FOO": "bar"})
        self.assertEqual((agi.channel, agi.uniqueid), ("PJSIP/7-00000002", fake.uniqueid))
        self.assertEqual((agi.env.request, agi.env.channel), ("async", "PJSIP/7-00000002"))
        self.assertEqual(h.server.sessions, {fake.uniqueid: agi})
        answered = agi.answer()
        value = agi.get_variable("FOO")
        stored = agi.set_variable("X", "a b")
        h.pump.flush()
        self.assertEqual(self.successResultOf(answered), AGIResult("0"))
        self.assertEqual(self.successResultOf(value), "bar")
        self.assertIsNone(self.successResultOf(stored))
        self.assertEqual(fake.variables["X"], "a b")
        self.assertEqual(h.agi_actions(), ["ANSWER", "GET VARIABLE FOO", 'SET VARIABLE X "a b"'])

    def test_handler_end_breaks(self) -> None:
        """When the handler is done the session sends ASYNCAGI BREAK and ends on AsyncAGIEnd."""
        h = Harness()
        _fake, agi = h.channel()
        h.handler.finish[0].callback(None)
        h.pump.flush()
        self.assertEqual(h.agi_actions(), ["ASYNCAGI BREAK"])
        self.assertTrue(agi.hung_up and agi.ended)
        self.assertEqual(h.server.sessions, {})
        self.successResultOf(agi.when_ended())

    def test_errors(self) -> None:
        """510 and 520 errback AGIError; the session carries on."""
        h = Harness()
        _, agi = h.channel()
        unknown = agi.send_command("FOO BAR")
        usage = agi.send_command("SET VARIABLE", "X")
        h.pump.flush()
        self.assertEqual(self.failureResultOf(unknown, AGIError).value.code, 510)
        error = self.failureResultOf(usage, AGIError).value
        self.assertEqual(error.code, 520)
        self.assertIn("Usage: SET VARIABLE", error.usage)
        self.assertFalse(agi.ended)

    def test_two_channels(self) -> None:
        """Results reach the right session by CommandID, whatever the order."""
        h = Harness()
        _fake1, one = h.channel(channel="Local/1-1;2", variables={"V": "one"})
        _fake2, two = h.channel(channel="Local/2-1;2", variables={"V": "two"})
        d2 = two.get_variable("V")
        d1 = one.get_variable("V")
        h.pump.flush()
        self.assertEqual((self.successResultOf(d1), self.successResultOf(d2)), ("one", "two"))
        self.assertEqual(len(h.server.sessions), 2)

    def test_hangup_mid_command(self) -> None:
        """AsyncAGIEnd fails the waiting commands and every later one, unsent."""
        h = Harness()
        fake, agi = h.channel()
        waiting = agi.noop()  # sent, not yet answered (the pump has not run)
        h.asyncagi.hang_up(fake)
        h.pump.flush()
        self.assertEqual(self.failureResultOf(waiting, AGIHangup).value.reason, "AsyncAGIEnd")
        self.failureResultOf(agi.answer(), AGIHangup)
        self.assertEqual(h.agi_actions(), ["NOOP"])
        self.assertTrue(agi.hung_up)
        # The handler's end sends no BREAK for a session that is over.
        h.handler.finish[0].callback(None)
        h.pump.flush()
        self.assertEqual(h.agi_actions(), ["NOOP"])

    def test_channel_gone(self) -> None:
        """An AGI action refused as 'does not exist' ends the session with AGIHangup."""
        h = Harness()
        _fake, agi = h.channel(channel="Local/9-1;2")
        del h.asyncagi.channels["Local/9-1;2"]  # gone without an AsyncAGIEnd seen
        first = agi.noop()
        second = agi.noop()
        h.pump.flush()
        reason = "AMI refused the AGI action: Channel Local/9-1;2 does not exist."
        self.assertEqual(self.failureResultOf(first, AGIHangup).value.reason, reason)
        self.failureResultOf(second, AGIHangup)
        self.assertEqual(h.server.sessions, {})

    def test_permission_denied(self) -> None:
        """Another AMI error (no 'agi' write class) fails that command alone with AMIError."""
        h = Harness(username="agiread")
        _, agi = h.channel()
        d = agi.noop()
        h.pump.flush()
        self.assertEqual(self.failureResultOf(d, AMIError).value.message, "Permission denied")
        self.assertFalse(agi.ended)

    def test_511(self) -> None:
        """A 511 Result fails its command with AGIHangup and ends the session."""
        h = Harness()
        fake, agi = h.channel()
        fake.hung_up = True  # dead, but still in AsyncAGI
        d = agi.answer()
        h.pump.flush()
        self.assertIn("511", self.failureResultOf(d, AGIHangup).value.reason)
        self.assertTrue(agi.hung_up)

    def test_connection_lost(self) -> None:
        """The AMI connection dropping fails waiting and later commands with AGIConnectionLost."""
        h = Harness()
        _, agi = h.channel()
        waiting = agi.noop()
        h.session.abort()
        h.pump.flush()
        self.failureResultOf(waiting, AGIConnectionLost)
        self.failureResultOf(agi.noop(), AGIConnectionLost)
        self.assertTrue(agi.ended and not agi.hung_up)
        self.assertEqual(h.server.sessions, {})

    def test_unsafe_arguments_send_nothing(self) -> None:
        """CR, LF or NUL raise ValueError before any AGI action is sent."""
        h = Harness()
        _, agi = h.channel()
        for bad in ("\r", "\n", "\0"):
            self.assertRaises(ValueError, agi.set_variable, "X", f"a{bad}b")
        h.pump.flush()
        self.assertEqual(h.agi_actions(), [])

    def test_cancel(self) -> None:
        """A cancelled command fails CancelledError; its late AsyncAGIExec is ignored."""
        h = Harness()
        _, agi = h.channel()
        d = agi.noop()
        d.cancel()
        self.failureResultOf(d, CancelledError)
        h.pump.flush()
        self.assertEqual(h.server._commands, {})

    def test_stop(self) -> None:
        """stop takes no new channel and fires once the sessions in progress have ended."""
        h = Harness()
        fake, _agi = h.channel()
        handlers = len(h.client.dispatcher)
        stopped = h.server.stop()
        self.assertNoResult(stopped)
        h.asyncagi.start(FakeAGI(channel="Local/late-1;2"))
        h.pump.flush()
        self.assertEqual(len(h.handler.agis), 1)  # the late channel got no session
        h.asyncagi.hang_up(fake)
        h.pump.flush()
        self.successResultOf(stopped)
        self.assertEqual(len(h.client.dispatcher), handlers - 3)
        self.successResultOf(h.server.stop())

    def test_stop_idle(self) -> None:
        """stop with no session fires at once and unregisters every handler."""
        h = Harness()
        before = len(h.client.dispatcher)
        self.successResultOf(h.server.stop())
        self.assertEqual(len(h.client.dispatcher), before - 3)


class OrderTests(SynchronousTestCase):
    """Asterisk's messages in orders the fake does not produce, fed as bytes."""

    def setUp(self) -> None:
        self.transport = StringTransport()
        self.protocol = AMIProtocol(Clock())
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(b"Asterisk Call Manager/9.0.0\r\n")
        self.agis: list[AGICommands] = []
        self.server = AsyncAGIServer(self.protocol, self._handler)
        self.server.start()
        self.protocol.dataReceived(
            b"Event: AsyncAGIStart\r\nChannel: Local/1-1;2\r\nUniqueid: 1.1\r\n"
            b"Env: agi_request%3A%20async%0Aagi_channel%3A%20Local%2F1-1%3B2%0A%0A\r\n\r\n"
        )

    def _handler(self, agi: AGICommands) -> Deferred[None]:
        self.agis.append(agi)
        return Deferred()

    def action_id(self) -> str:
        sent = self.transport.value().decode()
        self.transport.clear()
        return sent.split("ActionID: ")[1].split("\r\n")[0]

    def exec_event(self, command_id: str, result: str) -> bytes:
        return (
            f"Event: AsyncAGIExec\r\nChannel: Local/1-1;2\r\nUniqueid: 1.1\r\n"
            f"Result: {result}\r\nCommandId: {command_id}\r\n\r\n"
        ).encode()

    def test_exec_before_response(self) -> None:
        """AsyncAGIExec may beat the AGI action's response: the command resolves either way."""
        [agi] = self.agis
        self.assertEqual(agi.env.channel, "Local/1-1;2")
        d = agi.get_variable("X")
        command_id = self.action_id()
        self.protocol.dataReceived(self.exec_event(command_id, "200%20result%3D1%20(x)%0A"))
        self.assertEqual(self.successResultOf(d), "x")
        self.protocol.dataReceived(
            f"Response: Success\r\nActionID: {command_id}\r\n"
            f"Message: Added AGI command to queue\r\n\r\n".encode()
        )

    def test_foreign_and_duplicate_exec(self) -> None:
        """An AsyncAGIExec with another CommandId, or a second one, is ignored."""
        [agi] = self.agis
        d = agi.noop()
        command_id = self.action_id()
        self.protocol.dataReceived(self.exec_event("someone-else", "200%20result%3D0%0A"))
        self.assertNoResult(d)
        self.protocol.dataReceived(self.exec_event(command_id, "200%20result%3D0%0A"))
        self.successResultOf(d)
        self.protocol.dataReceived(self.exec_event(command_id, "510%20x%0A"))

    def test_start_again(self) -> None:
        """A second AsyncAGIStart for the same Uniqueid ends the first session."""
        [first] = self.agis
        assert isinstance(first, AsyncAGI)
        self.protocol.dataReceived(
            b"Event: AsyncAGIStart\r\nChannel: Local/1-1;2\r\nUniqueid: 1.1\r\nEnv: \r\n\r\n"
        )
        self.assertEqual(len(self.agis), 2)
        self.assertEqual(first._hangup_reason, "the channel entered AsyncAGI again")
        self.assertIs(self.server.sessions["1.1"], self.agis[1])

    def test_disconnect_of_protocol(self) -> None:
        """An AMIProtocol's connection loss ends its sessions with AGIConnectionLost."""
        [agi] = self.agis
        d = agi.noop()
        self.protocol.connectionLost()
        self.failureResultOf(d, AGIConnectionLost)

    def test_repr(self) -> None:
        """The session's repr names its channel."""
        self.assertEqual(repr(self.agis[0]), "<AsyncAGI channel='Local/1-1;2'>")


class FactoryTests(SynchronousTestCase):
    """An AsyncAGIServer on an AMIFactory listens to its connections."""

    def test_factory_disconnect(self) -> None:
        """The factory's 'disconnected' ends the sessions; stop removes the listener."""
        LogCapture(self)
        factory = AMIFactory("admin", "x", reactor=Clock())
        agis: list[AGICommands] = []
        server = AsyncAGIServer(factory, lambda agi: agis.append(agi) or Deferred())
        server.start()
        self.assertIn(server, factory._listeners)
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(
            b"Asterisk Call Manager/9.0.0\r\n"
            b"Event: AsyncAGIStart\r\nChannel: Local/1-1;2\r\nUniqueid: 1.1\r\nEnv: \r\n\r\n"
        )
        [agi] = agis
        assert isinstance(agi, AsyncAGI)
        protocol.connectionLost()
        self.assertTrue(agi.ended)
        self.successResultOf(server.stop())
        self.assertNotIn(server, factory._listeners)
