"""
Unit tests of `txami.keepalive.Keepalive` and the factory's use of it: pings
while logged in, a silent connection is dropped and reconnected, any traffic
counts as life.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from tests.factory_harness import BANNER, Harness, capture_log, formatted
from txami.errors import ConnectionLost
from txami.keepalive import Keepalive
from txami.message import Message
from txami.protocol import AMIProtocol


class FactoryKeepaliveTests(SynchronousTestCase):
    """Keepalive as run by `AMIFactory`."""

    def test_no_ping_before_login(self) -> None:
        """A connection that has not logged in is not pinged (only the login timeout runs)."""
        h = Harness(keepalive=10, timeout=60)
        server = h.establish()
        server.send(BANNER)
        server.actions()
        h.clock.advance(30)
        self.assertEqual(server.actions(), [])

    def test_pings_every_interval(self) -> None:
        """While logged in, a Ping goes out every ``keepalive`` seconds after the last answer."""
        h = Harness(keepalive=10)
        server = h.log_in()
        server.actions()
        h.clock.advance(9.9)
        self.assertEqual(server.actions(), [])
        h.clock.advance(0.1)
        (ping,) = server.actions()
        self.assertEqual(ping.name, "Ping")
        h.clock.advance(2)
        server.reply(ping, Ping="Pong")
        h.clock.advance(9.9)
        self.assertEqual(server.actions(), [])
        h.clock.advance(0.1)
        self.assertEqual(server.names(), ["Ping"])
        keepalive = server.protocol.keepalive  # type: ignore[attr-defined]
        self.assertEqual((keepalive.pings, keepalive.drops), (2, 0))

    def test_silent_connection_dropped_and_reconnected(self) -> None:
        """An unanswered Ping with nothing read aborts the connection; the factory reconnects."""
        events = capture_log(self)
        h = Harness(keepalive=10, keepalive_timeout=5)
        seen: list[str | None] = []
        h.factory.add_event_handler("Hangup", lambda event: seen.append(event.get("Channel")))
        first = h.log_in()
        pending = h.factory.send_action("Status")
        first.actions()
        h.clock.advance(10)
        self.assertEqual(first.names(), ["Ping"])
        h.clock.advance(4.9)
        self.assertFalse(first.transport.aborted)
        h.clock.advance(0.1)
        self.assertTrue(first.transport.aborted)
        self.assertIsNone(h.factory.protocol_instance)
        h.clock.advance(0)
        self.assertTrue(first.transport.closed)
        self.failureResultOf(pending, ConnectionLost)
        self.assertEqual(h.pending_calls(), [1.0])
        h.clock.advance(1.0)
        second = h.log_in()
        second.event("Hangup", Channel="SIP/9")
        self.assertEqual(seen, ["SIP/9"])
        self.assertEqual(h.factory.disconnects, 1)
        self.assertIn("no answer to Ping and nothing else read within 5 s", formatted(events))

    def test_timeout_defaults_to_interval(self) -> None:
        """Without keepalive_timeout, a Ping may go unanswered for one interval."""
        h = Harness(keepalive=10)
        server = h.log_in()
        h.clock.advance(10)
        h.clock.advance(9.9)
        self.assertFalse(server.transport.aborted)
        h.clock.advance(0.1)
        self.assertTrue(server.transport.aborted)

    def test_events_count_as_life(self) -> None:
        """A slow Pong is forgiven when events keep arriving; pinging goes on."""
        h = Harness(keepalive=10, keepalive_timeout=5)
        server = h.log_in()
        server.actions()
        h.clock.advance(10)
        self.assertEqual(server.names(), ["Ping"])
        h.clock.advance(3)
        server.event("Newchannel")
        h.clock.advance(2)
        self.assertFalse(server.transport.aborted)
        h.clock.advance(10)
        self.assertEqual(server.names(), ["Ping"])
        h.clock.advance(5)
        self.assertTrue(server.transport.aborted)

    def test_partial_read_counts_as_life(self) -> None:
        """Any bytes read count, even the first part of a long message."""
        h = Harness(keepalive=10, keepalive_timeout=5)
        server = h.log_in()
        h.clock.advance(10)
        server.send(b"Event: CoreShowChannel\r\nChannel: SIP/1")
        h.clock.advance(5)
        self.assertFalse(server.transport.aborted)

    def test_refused_ping_is_life(self) -> None:
        """A Ping answered with an error still proves the server alive."""
        h = Harness(keepalive=10)
        server = h.log_in()
        server.actions()
        h.clock.advance(10)
        (ping,) = server.actions()
        server.reply(ping, "Error", Message="Permission denied")
        h.clock.advance(10)
        self.assertEqual(server.names(), ["Ping"])
        self.assertFalse(server.transport.aborted)

    def test_disabled(self) -> None:
        """``keepalive=None`` sends no Ping at all."""
        h = Harness(keepalive=None)
        server = h.log_in()
        server.actions()
        h.clock.advance(3600)
        self.assertEqual(server.actions(), [])
        self.assertEqual(h.pending_calls(), [])
        self.assertIsNone(server.protocol.keepalive)  # type: ignore[attr-defined]

    def test_stops_with_the_connection(self) -> None:
        """After a drop no Ping timer is left, only the reconnect."""
        h = Harness(keepalive=10)
        h.log_in()
        h.drop()
        self.assertEqual(h.pending_calls(), [1.0])

    def test_ping_in_flight_at_drop(self) -> None:
        """A Ping pending when the connection drops ends quietly, and pinging stops."""
        h = Harness(keepalive=10)
        server = h.log_in()
        h.clock.advance(10)
        keepalive = server.protocol.keepalive  # type: ignore[attr-defined]
        h.drop()
        self.assertFalse(keepalive.running)
        self.assertEqual(h.pending_calls(), [1.0])

    def test_stop_stops_pinging(self) -> None:
        """stop() ends the pings before logging off."""
        h = Harness(keepalive=10)
        server = h.log_in()
        server.actions()
        gone = h.factory.stop()
        self.assertEqual(server.names(), ["Logoff"])
        self.assertEqual(h.pending_calls(), [5.0, 10.0])
        h.clock.advance(5)
        self.assertEqual(server.names(), [])
        h.clock.advance(0)
        self.successResultOf(gone)
        self.assertEqual(h.pending_calls(), [])


class KeepaliveTests(SynchronousTestCase):
    """`Keepalive` on its own, over a plain `AMIProtocol`."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.protocol = AMIProtocol(self.clock)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(BANNER)

    def sent(self) -> list[Message]:
        """The actions written so far, then forget them."""
        data = self.transport.value()
        self.transport.clear()
        return [Message.parse(part) for part in data.split(b"\r\n\r\n") if part]

    def test_interval_must_be_positive(self) -> None:
        """A zero or negative interval is refused."""
        self.assertRaises(ValueError, Keepalive, self.protocol, self.clock, 0)
        self.assertRaises(ValueError, Keepalive, self.protocol, self.clock, -1)

    def test_start_stop(self) -> None:
        """start() (twice is once) schedules a Ping one interval on; stop() cancels it."""
        keepalive = Keepalive(self.protocol, self.clock, 3)
        keepalive.start()
        keepalive.start()
        self.assertEqual([c.getTime() for c in self.clock.getDelayedCalls()], [3])
        keepalive.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(10)
        self.assertEqual(self.sent(), [])

    def test_heard_cleared_per_ping(self) -> None:
        """Each Ping clears ``heard``; with a plain protocol only the Pong proves life."""
        keepalive = Keepalive(self.protocol, self.clock, 3, timeout=1)
        keepalive.heard = True
        keepalive.start()
        self.clock.advance(3)
        self.assertFalse(keepalive.heard)
        (ping,) = self.sent()
        self.protocol.dataReceived(
            f"Response: Success\r\nActionID: {ping.action_id}\r\nPing: Pong\r\n\r\n".encode()
        )
        self.clock.advance(3)
        self.assertEqual([a.name for a in self.sent()], ["Ping"])
        self.clock.advance(1)
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual((keepalive.pings, keepalive.drops, keepalive.running), (2, 1, False))
