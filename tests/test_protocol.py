"""
`AMIProtocol` unit tests: timeouts, connection loss, event handlers, lists,
foreign ActionIDs, encodings, limits, odd input, old Command framing, the
banner, ActionIDs and secrets.  Everything runs on a `Clock` and a
`StringTransport`.
"""

from __future__ import annotations

import gc
import importlib.util
import re
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.error import ConnectionAborted, ConnectionDone
from twisted.internet.error import ConnectionLost as TCPLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

import txami.message
from tests.test_replay import LogCapture, action_blocks, md5_key
from txami import (
    ActionTimeout,
    AMIError,
    AMIProtocol,
    AuthenticationError,
    ConnectionLost,
    EventDispatcher,
    Message,
    NotConnected,
    OriginateError,
    ProtocolError,
)

BANNER = b"Asterisk Call Manager/9.0.0\r\n"
MiB = 1024 * 1024


def msg(*lines: str) -> bytes:
    """One wire message from its header lines."""
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class ProtocolTestCase(SynchronousTestCase):
    """A connected protocol that has read the banner, with a '*' handler and a log capture."""

    timeout: float | None = None
    #: `ReferenceReadingProtocol` in the ``...ReferenceTests`` copies of these cases.
    protocol_class: type[AMIProtocol] = AMIProtocol

    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = StringTransport()
        self.logs = LogCapture(self)
        self.protocol = self.protocol_class(self.clock, timeout=self.timeout)
        self.protocol.makeConnection(self.transport)
        self.events: list[Message] = []
        self.protocol.add_event_handler("*", self.events.append)
        self.protocol.dataReceived(BANNER)

    def send(self, name: str = "Ping", **headers: Any) -> tuple[Deferred[Any], str]:
        """Send an action; the Deferred and the ActionID it went out with."""
        before = len(self.transport.value())
        d = self.protocol.send_action(name, **headers)
        written = self.transport.value()[before:]
        return d, Message.parse(action_blocks(written)[-1])["ActionID"]

    def receive(self, *messages: bytes) -> None:
        self.protocol.dataReceived(b"".join(messages))

    def pong(self, action_id: str) -> bytes:
        return msg("Response: Success", f"ActionID: {action_id}", "Ping: Pong")

    def log_lines(self) -> list[tuple[str, str]]:
        return self.logs.lines()

    def fired(self, d: Deferred[Any]) -> list[object]:
        """A list that collects every result ``d`` fires with (errors consumed)."""
        results: list[object] = []
        d.addBoth(results.append)
        return results


class SessionStateTests(ProtocolTestCase):
    """What the protocol records about its session."""

    def test_logged_in_follows_login_and_goodbye(self) -> None:
        """logged_in turns True with an accepted Login and False with Logoff's Goodbye."""
        login = self.protocol.login("admin", "adminsecret")
        login_id = Message.parse(action_blocks(self.transport.value())[-1])["ActionID"]
        self.assertFalse(self.protocol.logged_in)
        self.receive(msg("Response: Success", f"ActionID: {login_id}", "Message: ok"))
        self.successResultOf(login)
        self.assertEqual((self.protocol.logged_in, self.protocol.username), (True, "admin"))
        logoff, logoff_id = self.send("Logoff")
        self.receive(msg("Response: Goodbye", f"ActionID: {logoff_id}", "Message: bye"))
        self.assertEqual(self.successResultOf(logoff).name, "Goodbye")
        self.assertFalse(self.protocol.logged_in)


class OriginateResponseTests(ProtocolTestCase):
    """The OriginateResponse that ends an asynchronous originate."""

    def test_odd_reason_does_not_raise(self) -> None:
        """A Reason of digits int() refuses ("²") gives OriginateError(reason=None)."""
        d = self.protocol.originate("Local/1@x", application="Wait", data="1", async_=True)
        action_id = Message.parse(action_blocks(self.transport.value())[-1])["ActionID"]
        tag = f"ActionID: {action_id}"
        self.receive(
            msg("Response: Success", tag, "Message: Originate successfully queued"),
            msg("Event: OriginateResponse", tag, "Response: Failure", "Reason: \u00b2"),
        )
        error = self.failureResultOf(d, OriginateError).value
        self.assertEqual((error.reason, error.message), (None, "Failure"))
        self.assertEqual([e.name for e in self.events], ["OriginateResponse"])


class TimeoutTests(ProtocolTestCase):
    """Per-action timeouts on a Clock."""

    def test_default_timeout(self) -> None:
        """An unanswered action errbacks ActionTimeout after the default 30 s, not before."""
        d, action_id = self.send()
        self.clock.advance(29.999)
        self.assertNoResult(d)
        self.clock.advance(0.001)
        error = self.failureResultOf(d, ActionTimeout).value
        self.assertEqual((error.action, error.action_id, error.timeout), ("Ping", action_id, 30.0))
        self.assertEqual(str(error), f"Ping (ActionID {action_id}) got no answer within 30 s")

    def test_protocol_timeout(self) -> None:
        """AMIProtocol(timeout=...) sets the default for its actions."""
        protocol = AMIProtocol(self.clock, timeout=5)
        protocol.makeConnection(StringTransport())
        self.assertEqual(protocol.timeout, 5)
        d = protocol.ping()
        self.clock.advance(4.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.assertEqual(self.failureResultOf(d, ActionTimeout).value.timeout, 5)

    def test_per_call_timeout(self) -> None:
        """action_timeout= overrides the default for that action only."""
        short, _ = self.send(action_timeout=2.5)
        normal, _ = self.send()
        self.clock.advance(2.5)
        self.assertEqual(self.failureResultOf(short, ActionTimeout).value.timeout, 2.5)
        self.assertNoResult(normal)
        self.clock.advance(27.5)
        self.failureResultOf(normal, ActionTimeout)

    def test_deadlines_in_any_order(self) -> None:
        """Actions with shuffled timeouts each expire at their own deadline, exactly once."""
        ds = {t: self.fired(self.send(action_timeout=t)[0]) for t in (10, 5, 20, 1, 7)}
        for now in (1, 5, 7, 10, 20):
            self.clock.advance(now - self.clock.seconds())
            expired = sorted(t for t, results in ds.items() if results)
            self.assertEqual(expired, [t for t in (1, 5, 7, 10, 20) if t <= now])
        self.assertTrue(all(len(results) == 1 for results in ds.values()))
        self.clock.advance(100)
        self.assertTrue(all(len(results) == 1 for results in ds.values()))

    def test_timeout_forgets_action_id(self) -> None:
        """After a timeout the late answer is dropped (debug log) and the ActionID is free."""
        d, _ = self.send(ActionID="late-1")
        self.clock.advance(30)
        self.failureResultOf(d, ActionTimeout)
        self.receive(self.pong("late-1"))
        self.assertEqual(
            self.log_lines(),
            [("debug", "dropping a late answer to Ping (ActionID 'late-1')")],
        )
        again, _ = self.send(ActionID="late-1")
        self.receive(self.pong("late-1"))
        self.assertEqual(self.successResultOf(again)["Ping"], "Pong")

    def test_answered_action_does_not_time_out(self) -> None:
        """An answered action fires once; advancing past its deadline changes nothing."""
        d, action_id = self.send()
        results = self.fired(d)
        self.receive(self.pong(action_id))
        self.clock.advance(60)
        self.assertEqual(len(results), 1)
        self.assertIsInstance(results[0], Message)

    def test_list_timeout_swallows_the_rest(self) -> None:
        """A list timing out mid-way errbacks once; its later items never reach the handlers."""
        d, action_id = self.send("Status")
        results = self.fired(d)
        tag = f"ActionID: {action_id}"
        self.receive(
            msg("Response: Success", tag, "EventList: start"), msg("Event: Status", tag, "N: 1")
        )
        self.clock.advance(30)
        self.assertEqual(len(results), 1)
        self.assertIsInstance(results[0], Failure)
        self.receive(
            msg("Event: Status", tag, "N: 2"),
            msg("Event: Newexten", "Channel: other"),
            msg("Event: StatusComplete", tag, "EventList: Complete", "ListItems: 2"),
        )
        self.assertEqual([e.name for e in self.events], ["Newexten"])
        self.assertEqual(len(results), 1)
        # The list is over and forgotten: an event with its ActionID is an ordinary event now.
        self.receive(msg("Event: Status", tag, "N: 3"))
        self.assertEqual([e.name for e in self.events], ["Newexten", "Status"])

    def test_list_drain_ends_after_another_period(self) -> None:
        """If a timed-out list never completes, its ActionID is forgotten one timeout later."""
        d, action_id = self.send("Status")
        tag = f"ActionID: {action_id}"
        self.receive(msg("Response: Success", tag, "EventList: start"))
        self.clock.advance(30)
        self.failureResultOf(d, ActionTimeout)
        self.receive(msg("Event: Status", tag, "N: 1"))
        self.assertEqual(self.events, [])
        self.clock.advance(30)
        self.receive(msg("Event: Status", tag, "N: 2"))
        self.assertEqual([e["N"] for e in self.events], ["2"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_list_timeout_before_its_response(self) -> None:
        """A list timing out before its response: the late list is swallowed, not dispatched."""
        d, action_id = self.send("Status")
        tag = f"ActionID: {action_id}"
        self.clock.advance(30)
        self.failureResultOf(d, ActionTimeout)
        self.receive(
            msg("Response: Success", tag, "EventList: start"),
            msg("Event: Status", tag),
            msg("Event: StatusComplete", tag, "EventList: Complete"),
        )
        self.assertEqual(self.events, [])
        self.receive(msg("Event: Status", tag))
        self.assertEqual([e.name for e in self.events], ["Status"])

    def test_untagged_list_timeout(self) -> None:
        """An untagged list (IAXpeers) timing out mid-way: its later items skip the handlers."""
        d = self.protocol.iax_peers()
        (block,) = action_blocks(self.transport.value())
        tag = "ActionID: " + Message.parse(block)["ActionID"]
        self.receive(msg("Response: Success", tag, "EventList: start"), msg("Event: PeerEntry"))
        self.clock.advance(30)
        self.failureResultOf(d, ActionTimeout)
        self.receive(
            msg("Event: PeerEntry", "ObjectName: late"),
            msg("Event: PeerlistComplete", tag, "EventList: Complete"),
        )
        self.assertEqual(self.events, [])
        # The list is over: a PeerEntry now is an ordinary event.
        self.receive(msg("Event: PeerEntry", "ObjectName: after"))
        self.assertEqual([e["ObjectName"] for e in self.events], ["after"])

    def test_cancel_forgets(self) -> None:
        """Cancelling an action's Deferred forgets it: the late answer is dropped."""
        d, action_id = self.send()
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.receive(self.pong(action_id))
        self.assertEqual(
            self.log_lines(),
            [("debug", f"dropping a response to ActionID {action_id!r}, which is not pending")],
        )
        self.clock.advance(60)


class ConnectionLossTests(ProtocolTestCase):
    """Pending actions when the connection goes away."""

    def test_pending_actions_fail_once(self) -> None:
        """Each pending action errbacks ConnectionLost once, saying the outcome is unknown."""
        ping, ping_id = self.send()
        status, status_id = self.send("Status")
        self.receive(msg("Response: Success", f"ActionID: {status_id}", "EventList: start"))
        originate = self.protocol.originate("SIP/a", application="Wait", data="1", async_=True)
        drained, drained_id = self.send("Status", action_timeout=1)
        self.receive(msg("Response: Success", f"ActionID: {drained_id}", "EventList: start"))
        self.clock.advance(1)
        self.failureResultOf(drained, ActionTimeout)
        waiter = self.protocol.when_disconnected()
        results = [self.fired(d) for d in (ping, status, originate)]
        self.protocol.connectionLost(Failure(ConnectionDone()))
        for got, (action, action_id) in zip(
            results, (("Ping", ping_id), ("Status", status_id), ("Originate", None)), strict=True
        ):
            self.assertEqual(len(got), 1)
            failure = got[0]
            assert isinstance(failure, Failure)
            error = failure.value
            self.assertIsInstance(error, ConnectionLost)
            self.assertEqual(error.action, action)
            if action_id is not None:
                self.assertEqual(error.action_id, action_id)
            self.assertEqual(
                str(error),
                f"connection lost while {action} (ActionID {error.action_id}) was pending; it was "
                "sent and its outcome is unknown: Connection was closed cleanly.",
            )
            self.assertIsInstance(error.reason.value, ConnectionDone)
        self.assertIsNone(self.successResultOf(waiter))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(100)
        self.assertEqual([len(r) for r in results], [1, 1, 1])

    def test_later_actions_fail_at_once(self) -> None:
        """After the loss, actions fail at once with NotConnected and nothing is written."""
        self.protocol.connectionLost(Failure(TCPLost("reset")))
        self.transport.clear()
        error = self.failureResultOf(self.protocol.ping(), NotConnected).value
        self.assertEqual(
            str(error),
            "cannot send Ping: the connection was lost (Connection to the other side "
            "was lost in a non-clean fashion: reset.)",
        )
        self.failureResultOf(self.protocol.login("admin", "s"), NotConnected)
        self.assertEqual(self.transport.value(), b"")
        self.assertFalse(self.protocol.connected_and_open)
        self.assertIsNone(self.successResultOf(self.protocol.when_disconnected()))

    def test_not_connected_before_connection(self) -> None:
        """Before connectionMade an action fails at once with NotConnected."""
        protocol = AMIProtocol(self.clock)
        self.assertFalse(protocol.connected_and_open)
        error = self.failureResultOf(protocol.send_action("Ping"), NotConnected).value
        self.assertEqual((error.action, error.reason), ("Ping", "not connected yet"))

    def test_data_after_loss_is_ignored(self) -> None:
        """Bytes arriving after the loss neither raise nor reach the handlers."""
        self.protocol.connectionLost(Failure(ConnectionDone()))
        self.receive(msg("Event: Hangup"))
        self.assertEqual(self.events, [])

    def test_logged_in_cleared(self) -> None:
        """logged_in is True after a login and False once the connection is lost."""
        d = self.protocol.login("admin", "adminsecret")
        (block,) = action_blocks(self.transport.value())
        tag = "ActionID: " + Message.parse(block)["ActionID"]
        self.receive(msg("Response: Success", tag, "Message: Authentication accepted"))
        self.successResultOf(d)
        self.assertTrue(self.protocol.logged_in)
        self.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertFalse(self.protocol.logged_in)


class HandlerTests(ProtocolTestCase):
    """Event handlers: matching, order, removal and failures."""

    def test_case_insensitive_and_globs(self) -> None:
        """'NewExten' matches Newexten, 'Queue*' the Queue events, '*' everything, in order."""
        calls: list[tuple[str, str | None]] = []
        self.protocol.add_event_handler("NewExten", lambda e: calls.append(("NewExten", e.name)))
        self.protocol.add_event_handler("Queue*", lambda e: calls.append(("Queue*", e.name)))
        self.protocol.add_event_handler("hangup", lambda e: calls.append(("hangup", e.name)))
        self.protocol.add_event_handler("*", lambda e: calls.append(("*", e.name)))
        self.receive(
            msg("Event: Newexten"),
            msg("Event: QueueMemberStatus"),
            msg("Event: QueueParams"),
            msg("Event: Hangup"),
            msg("Event: Newchannel"),
            msg("Event: AgentCalled"),
        )
        self.assertEqual(
            calls,
            [
                ("NewExten", "Newexten"),
                ("*", "Newexten"),
                ("Queue*", "QueueMemberStatus"),
                ("*", "QueueMemberStatus"),
                ("Queue*", "QueueParams"),
                ("*", "QueueParams"),
                ("hangup", "Hangup"),
                ("*", "Hangup"),
                ("*", "Newchannel"),
                ("*", "AgentCalled"),
            ],
        )

    def test_remove_event_handler(self) -> None:
        """A removed handler gets nothing more; removing it again raises ValueError."""
        got: list[Message] = []
        self.protocol.add_event_handler("Hangup", got.append)
        self.receive(msg("Event: Hangup", "N: 1"))
        self.protocol.remove_event_handler("HANGUP", got.append)
        self.receive(msg("Event: Hangup", "N: 2"))
        self.assertEqual([e["N"] for e in got], ["1"])
        self.assertEqual([e["N"] for e in self.events], ["1", "2"])
        with self.assertRaises(ValueError):
            self.protocol.remove_event_handler("Hangup", got.append)

    def test_same_handler_twice(self) -> None:
        """A handler added twice is called twice; one removal leaves one call."""
        got: list[Message] = []
        self.protocol.add_event_handler("X", got.append)
        self.protocol.add_event_handler("X", got.append)
        self.receive(msg("Event: X"))
        self.protocol.remove_event_handler("X", got.append)
        self.receive(msg("Event: X"))
        self.assertEqual(len(got), 3)

    def test_handler_removing_itself(self) -> None:
        """A handler may remove itself while being called; the others still run."""
        got: list[str] = []

        def once(event: Message) -> None:
            got.append("once")
            self.protocol.remove_event_handler("X", once)

        self.protocol.add_event_handler("X", once)
        self.protocol.add_event_handler("X", lambda e: got.append("always"))
        self.receive(msg("Event: X"), msg("Event: X"))
        self.assertEqual(got, ["once", "always", "always"])

    def test_shared_dispatcher(self) -> None:
        """Two protocols sharing a dispatcher reach the same handlers."""
        dispatcher = EventDispatcher()
        got: list[str | None] = []
        dispatcher.add("*", lambda e: got.append(e.name))
        for name in ("A", "B"):
            protocol = AMIProtocol(self.clock, dispatcher=dispatcher)
            protocol.makeConnection(StringTransport())
            protocol.dataReceived(BANNER + msg(f"Event: {name}"))
            self.assertIs(protocol.dispatcher, dispatcher)
        self.assertEqual(got, ["A", "B"])
        self.assertEqual(len(dispatcher), 1)

    def test_read_end_handlers(self) -> None:
        """Read-end handlers run after each read's events, in order, even after one that raises."""
        dispatcher = EventDispatcher()
        got: list[str | None] = []
        dispatcher.add("*", lambda e: got.append(e.name))

        def broken() -> None:
            got.append("broken")
            raise ZeroDivisionError("boom")

        dispatcher.add_read_end(broken)
        dispatcher.add_read_end(lambda: got.append("end"))
        protocol = AMIProtocol(self.clock, dispatcher=dispatcher)
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(BANNER + msg("Event: A") + msg("Event: B") + b"Event: C\r\n")
        protocol.dataReceived(b"\r\n")
        dispatcher.remove_read_end(broken)
        protocol.dataReceived(msg("Event: D"))
        self.assertEqual(got, ["A", "B", "broken", "end", "C", "broken", "end", "D", "end"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)
        self.assertRaises(ValueError, dispatcher.remove_read_end, broken)

    def test_handler_exception_is_logged(self) -> None:
        """A raising handler is logged with traceback; other handlers and the connection go on."""
        got: list[str | None] = []

        def broken(event: Message) -> None:
            raise ZeroDivisionError("boom")

        self.protocol.add_event_handler("Hangup", broken)
        self.protocol.add_event_handler("Hangup", lambda e: got.append(e.name))
        d, action_id = self.send()
        self.receive(msg("Event: Hangup"), self.pong(action_id), msg("Event: Hangup"))
        self.assertEqual(got, ["Hangup", "Hangup"])
        self.assertEqual(self.successResultOf(d)["Ping"], "Pong")
        failures = [e for e in self.logs.txami() if "log_failure" in e]
        self.assertEqual(len(failures), 2)
        self.assertEqual(
            formatEvent(failures[0]), f"event handler {broken!r} raised on Hangup event"
        )
        self.assertIn("broken", failures[0]["log_failure"].getTraceback())
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)
        self.assertFalse(self.transport.disconnecting)

    def test_handler_failing_deferred_is_logged(self) -> None:
        """A handler returning a Deferred that fails (now or later) is logged."""
        later: Deferred[None] = Deferred()

        def failing_now(event: Message) -> Deferred[None]:
            return fail(KeyError("now"))

        self.protocol.add_event_handler("A", failing_now)
        self.protocol.add_event_handler("A", lambda e: later)
        self.receive(msg("Event: A"))
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)
        later.errback(ValueError("later"))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        texts = [formatEvent(e) for e in self.logs.txami() if "log_failure" in e]
        self.assertEqual(
            texts,
            [
                f"event handler {failing_now!r} failed on A event",
                f"event handler {self.protocol.dispatcher.handlers_for('A')[2]!r} failed on A "
                "event",
            ],
        )
        self.assertEqual(len(self.events), 1)


class ClaimTests(ProtocolTestCase):
    """Which events go to pending actions and which to the handlers."""

    def test_list_items_go_only_to_the_list(self) -> None:
        """Items of a pending list go to it only; events in between reach the handlers."""
        d, action_id = self.send("Status")
        tag = f"ActionID: {action_id}"
        self.receive(
            msg(
                "Response: Success", tag, "EventList: start", "Message: Channel status will follow"
            ),
            msg("Event: Status", tag, "Channel: A"),
            msg("Event: Newexten", "Channel: other"),
            msg("Event: Status", "Channel: B", tag),
            msg("Event: StatusComplete", tag, "EventList: Complete", "ListItems: 2"),
        )
        response = self.successResultOf(d)
        self.assertEqual([e["Channel"] for e in response.events], ["A", "B"])
        assert response.list_complete is not None
        self.assertEqual(response.list_complete.name, "StatusComplete")
        self.assertEqual([e.name for e in self.events], ["Newexten"])
        self.assertEqual(self.log_lines(), [])
        self.assertEqual(self.protocol.events_received, 4)

    def test_wrong_item_count_is_logged(self) -> None:
        """A list whose ListItems disagrees with what arrived still completes, with a warning."""
        d, action_id = self.send("Status")
        tag = f"ActionID: {action_id}"
        self.receive(
            msg("Response: Success", tag, "EventList: start"),
            msg("Event: StatusComplete", tag, "EventList: Complete", "ListItems: 3"),
        )
        self.assertEqual(self.successResultOf(d).events, [])
        self.assertEqual(
            self.log_lines(), [("warn", "Status list announced 3 items but 0 arrived")]
        )

    def test_list_error_response(self) -> None:
        """A list action answered with an error errbacks AMIError and claims nothing."""
        d, action_id = self.send("Status")
        self.receive(
            msg("Response: Error", f"ActionID: {action_id}", "Message: No such channel"),
            msg("Event: Status", f"ActionID: {action_id}"),
        )
        self.assertEqual(self.failureResultOf(d, AMIError).value.message, "No such channel")
        self.assertEqual([e.name for e in self.events], ["Status"])

    def test_foreign_originate_response(self) -> None:
        """Another session's OriginateResponse reaches the handlers and resolves nothing."""
        mine = self.protocol.originate("SIP/a", application="Wait", data="1", async_=True)
        (block,) = action_blocks(self.transport.value())
        my_id = Message.parse(block)["ActionID"]
        ping, ping_id = self.send()
        self.receive(
            msg(
                "Response: Success", f"ActionID: {my_id}", "Message: Originate successfully queued"
            ),
            msg(
                "Event: OriginateResponse", "ActionID: burst-007", "Response: Success", "Reason: 4"
            ),
            msg("Event: OriginateResponse", f"ActionID: {ping_id}", "Response: Failure"),
        )
        self.assertNoResult(mine)
        self.assertNoResult(ping)
        self.assertEqual([e.action_id for e in self.events], ["burst-007", ping_id])
        self.receive(
            msg("Event: OriginateResponse", f"ActionID: {my_id}", "Response: Success", "Reason: 4")
        )
        self.assertEqual(self.successResultOf(mine)["Reason"], "4")
        self.assertEqual(len(self.events), 3)

    def test_event_with_action_id_of_plain_action(self) -> None:
        """An event echoing a pending plain action's ActionID (UserEvent) reaches the handlers."""
        d, action_id = self.send("UserEvent", UserEvent="X")
        self.receive(msg("Event: UserEvent", "UserEvent: X", f"ActionID: {action_id}"))
        self.assertNoResult(d)
        self.assertEqual(len(self.events), 1)
        self.receive(msg("Response: Success", f"ActionID: {action_id}", "Message: Event Sent"))
        self.assertEqual(self.successResultOf(d)["Message"], "Event Sent")

    def test_second_response_dropped(self) -> None:
        """A second response to an async Originate that is still waiting is dropped at debug."""
        mine = self.protocol.originate("SIP/a", application="Wait", data="1", async_=True)
        my_id = Message.parse(action_blocks(self.transport.value())[0])["ActionID"]
        self.receive(
            msg("Response: Success", f"ActionID: {my_id}"),
            msg("Response: Success", f"ActionID: {my_id}"),
        )
        self.assertNoResult(mine)


class EncodingTests(ProtocolTestCase):
    """Bytes that are not UTF-8, and characters split across reads."""

    def test_non_utf8_event(self) -> None:
        """An event with invalid UTF-8 reaches the handlers; to_bytes gives its exact bytes."""
        raw = b"Event: UserEvent\r\nName: caf\xe9\xff\r\nX: \x80\r\n\r\n"
        self.receive(raw)
        (event,) = self.events
        self.assertEqual(event["Name"], "caf\udce9\udcff")
        self.assertEqual(event.to_bytes(), raw)

    def test_non_utf8_response(self) -> None:
        """A success response with invalid UTF-8 fires its action; to_bytes gives its bytes."""
        d, action_id = self.send()
        raw = f"Response: Success\r\nActionID: {action_id}\r\nMessage: caf".encode()
        self.receive(raw + b"\xe9\r\n\r\n")
        response = self.successResultOf(d)
        self.assertEqual((response["Message"], response.action_id), ("caf\udce9", action_id))
        self.assertEqual(response.to_bytes(), raw + b"\xe9\r\n\r\n")

    def test_multibyte_split_across_reads(self) -> None:
        """A multibyte character split between two reads arrives intact."""
        raw = "Event: UserEvent\r\nName: Zoë 日本\r\n\r\n".encode()
        for cut in range(len(raw)):
            del self.events[:]
            self.receive(raw[:cut])
            self.receive(raw[cut:])
            (event,) = self.events
            self.assertEqual(event["Name"], "Zoë 日本")
            self.assertEqual(event.to_bytes(), raw)


class LimitTests(ProtocolTestCase):
    """Oversized messages, too many headers, too many list items."""

    def big_event(self, size: int) -> bytes:
        """An event of exactly ``size`` bytes, then the blank line."""
        head = b"Event: Big\r\nData: "
        return head + b"x" * (size - len(head)) + b"\r\n\r\n"

    def assert_closed(self, pending: Deferred[Any], reason: str) -> None:
        """The connection was aborted with a logged ProtocolError; pending then fails."""
        self.assertTrue(self.transport.disconnecting)
        errors = [(lvl, t) for lvl, t in self.log_lines() if lvl == "error"]
        self.assertEqual(errors, [("error", f"closing the AMI connection: {reason}")])
        (event,) = [e for e in self.logs.txami() if e["log_level"].name == "error"]
        self.assertIsInstance(event["error"], ProtocolError)
        self.assertNoResult(pending)
        self.protocol.connectionLost(Failure(ConnectionAborted()))
        error = self.failureResultOf(pending, ConnectionLost).value
        self.assertIsInstance(error.reason.value, ProtocolError)
        self.assertTrue(str(error).endswith(f"it was sent and its outcome is unknown: {reason}"))

    def test_one_mib_message_accepted(self) -> None:
        """A message of exactly 1 MiB (the default limit) is accepted, whole or in 64 KiB reads."""
        raw = self.big_event(MiB)
        self.receive(raw)
        for i in range(0, len(raw), 65536):
            self.receive(raw[i : i + 65536])
        self.assertEqual([len(e.to_bytes()) for e in self.events], [MiB + 4, MiB + 4])
        self.assertFalse(self.transport.disconnecting)

    def test_limit_with_partial_delimiter(self) -> None:
        """A message at the limit is accepted when its blank line arrives byte by byte."""
        raw = self.big_event(MiB)
        self.receive(raw[:-3])
        for i in range(len(raw) - 3, len(raw)):
            self.receive(raw[i : i + 1])
        self.assertEqual(len(self.events), 1)
        self.assertFalse(self.transport.disconnecting)

    def test_oversized_message_closes(self) -> None:
        """A message over max_message_size closes the connection; what follows is not read."""
        pending, _ = self.send()
        self.receive(self.big_event(MiB + 1) + msg("Event: After"))
        self.assertEqual(self.events, [])
        self.assert_closed(
            pending, f"a message of more than {MiB} bytes (max_message_size) arrived"
        )

    def test_oversized_incomplete_message_closes(self) -> None:
        """A message growing past the limit closes the connection before it ends."""
        protocol = AMIProtocol(self.clock, max_message_size=100)
        self.protocol = protocol
        self.transport = StringTransport()
        protocol.makeConnection(self.transport)
        pending = protocol.ping()
        protocol.dataReceived(BANNER + b"Event: X\r\nData: " + b"y" * 50)
        self.assertFalse(self.transport.disconnecting)
        protocol.dataReceived(b"y" * 50)
        self.assert_closed(pending, "a message of more than 100 bytes (max_message_size) arrived")

    def test_too_many_headers_closes(self) -> None:
        """A message with more than max_headers lines closes the connection."""
        self.protocol.max_headers = 10
        pending, _ = self.send()
        self.receive(msg("Event: Ten", *[f"H{i}: v" for i in range(9)]))
        self.assertEqual(len(self.events), 1)
        self.receive(msg("Event: Eleven", *[f"H{i}: v" for i in range(10)]))
        self.assertEqual(len(self.events), 1)
        self.assert_closed(pending, "a message with more than 10 lines arrived")

    def test_too_many_list_items_closes(self) -> None:
        """A list with more than max_list_items items closes the connection."""
        self.protocol.max_list_items = 3
        d, action_id = self.send("Status")
        tag = f"ActionID: {action_id}"
        self.receive(
            msg("Response: Success", tag, "EventList: start"),
            *[msg("Event: Status", tag) for _ in range(4)],
        )
        self.assert_closed(d, "Status sent more than 3 list items")

    def test_actions_refused_while_closing(self) -> None:
        """After a protocol error, new actions fail at once with NotConnected."""
        self.receive(self.big_event(MiB + 1))
        self.transport.clear()
        self.failureResultOf(self.protocol.ping(), NotConnected)
        self.assertEqual(self.transport.value(), b"")
        self.protocol.connectionLost(Failure(ConnectionAborted()))


class OddInputTests(ProtocolTestCase):
    """Garbage, lines without colons, stray blank lines and responses without ActionID."""

    def test_garbage_is_logged_and_skipped(self) -> None:
        """A block that is neither response nor event is logged and skipped; reading goes on."""
        d, action_id = self.send()
        self.receive(
            b"this is not AMI\r\n\r\n",
            b"Foo: bar\r\n\r\n",
            b"\x00\x01\xff\r\n\r\n",
            msg("Event: After"),
            self.pong(action_id),
        )
        self.assertEqual(
            self.log_lines(),
            [
                (
                    "warn",
                    "skipping a message that is neither a response nor an event: "
                    "'this is not AMI'",
                ),
                ("warn", "skipping a message that is neither a response nor an event: 'Foo: bar'"),
                (
                    "warn",
                    "skipping a message that is neither a response nor an event: "
                    "'\\x00\\x01\\udcff'",
                ),
            ],
        )
        self.assertEqual([e.name for e in self.events], ["After"])
        self.successResultOf(d)

    def test_lines_without_colon_in_an_event(self) -> None:
        """An event's colon-less lines are left out of its headers, with a warning."""
        self.receive(b"Event: X\r\nno colon\r\nA: 1\r\n\r\n")
        (event,) = self.events
        self.assertEqual(event.pairs(), [("Event", "X"), ("A", "1")])
        self.assertEqual(
            self.log_lines(), [("warn", "skipping a header line without a colon: 'no colon'")]
        )

    def test_stray_blank_lines(self) -> None:
        """Extra blank lines between messages are skipped (logged at debug)."""
        d, action_id = self.send()
        self.receive(
            msg("Event: A"),
            b"\r\n",
            b"\r\n\r\n",
            msg("Event: B"),
            b"\r\n\r\n",
            self.pong(action_id),
        )
        self.assertEqual([e.name for e in self.events], ["A", "B"])
        self.successResultOf(d)
        self.assertEqual(self.log_lines(), [("debug", "skipping a stray blank line")] * 2)

    def test_response_without_action_id(self) -> None:
        """A response without ActionID is logged and resolves nothing."""
        d, _ = self.send()
        self.receive(msg("Response: Success", "Ping: Pong"))
        self.assertNoResult(d)
        self.assertEqual(
            self.log_lines(),
            [
                (
                    "warn",
                    "skipping a response without ActionID: "
                    "Message([('Response', 'Success'), ('Ping', 'Pong')])",
                )
            ],
        )

    def test_lowercase_and_bare_lf_messages(self) -> None:
        """Messages not starting with exactly 'Event: ' or 'Response: ' are still read by kind."""
        d, action_id = self.send()
        self.receive(
            b"event: lower\r\nA: 1\r\n\r\n",
            f"response: Success\r\nActionID: {action_id}\r\n\r\n".encode(),
        )
        self.assertEqual([e.name for e in self.events], ["lower"])
        self.assertEqual(self.successResultOf(d).name, "Success")

    def test_response_action_id_with_bare_lf(self) -> None:
        """A response whose ActionID line ends in a bare LF still resolves its action."""
        d, action_id = self.send()
        self.receive(f"Response: Success\r\nActionID: {action_id}\nPing: Pong\r\n\r\n".encode())
        self.assertEqual(self.successResultOf(d)["Ping"], "Pong")

    def test_success_responses_of_every_shape(self) -> None:
        """Successes fire their own action, whatever follows the ActionID, and only once."""
        first, first_id = self.send()
        second, second_id = self.send()
        third, third_id = self.send()
        self.receive(
            f"Response: Success\r\nActionID: {first_id}\r\n\r\n".encode(),
            msg("Response: Success", f"ActionID: {second_id}", "Message: Event mask set"),
            msg("Response: Success", f"ActionID: {third_id}", "EventList: start"),
            msg("Response: Success", f"ActionID: {first_id}", "Ping: Pong"),
        )
        self.assertEqual(
            self.successResultOf(first).pairs(), [("Response", "Success"), ("ActionID", first_id)]
        )
        self.assertEqual(self.successResultOf(second)["Message"], "Event mask set")
        self.assertNoResult(third)  # a list: it waits for its items
        self.receive(
            msg("Event: PeerlistComplete", f"ActionID: {third_id}", "EventList: Complete")
        )
        self.assertEqual(self.successResultOf(third).events, [])
        self.assertEqual(self.events, [])

    def test_untagged_list_success(self) -> None:
        """An action with untagged items that answers with a plain success is done with."""
        d = self.protocol.send_action("IAXpeers", untagged_items="PeerEntry")
        action_id = Message.parse(action_blocks(self.transport.value())[-1])["ActionID"]
        self.receive(msg("Response: Success", f"ActionID: {action_id}", "Message: none"))
        self.assertEqual(self.successResultOf(d)["Message"], "none")
        self.receive(msg("Event: PeerEntry", "ObjectName: a"))
        self.assertEqual([e.name for e in self.events], ["PeerEntry"])
        self.assertEqual(self.protocol._untagged, [])

    def test_paused(self) -> None:
        """While paused nothing is delivered; resumeProducing delivers it, in order."""
        d, action_id = self.send()
        self.receive(msg("Event: A"))
        self.protocol.pauseProducing()
        self.receive(msg("Event: B"), self.pong(action_id))
        self.assertEqual([e.name for e in self.events], ["A"])
        self.assertNoResult(d)
        self.protocol.resumeProducing()
        self.assertEqual([e.name for e in self.events], ["A", "B"])
        self.successResultOf(d)

    def test_event_name_with_bare_lf(self) -> None:
        """An event whose first line ends in a bare LF is dispatched under its name alone."""
        got: list[Message] = []
        self.protocol.add_event_handler("Hangup", got.append)
        self.receive(b"Event: Hangup\nChannel: SIP/a\r\nCause: 16\r\n\r\n")
        self.assertEqual([e.name for e in self.events], ["Hangup"])
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]["Channel"], "SIP/a")


class OldCommandTests(ProtocolTestCase):
    """Pre-14 'Response: Follows' Command answers give the same lines as the modern framing."""

    def old(self, action_id: str, body: str) -> bytes:
        return (
            f"Response: Follows\r\nPrivilege: Command\r\nActionID: {action_id}\r\n"
            f"{body}--END COMMAND--\r\n\r\n"
        ).encode()

    def modern(self, action_id: str, lines: list[str]) -> bytes:
        return msg(
            "Response: Success",
            f"ActionID: {action_id}",
            "Message: Command output follows",
            *[f"Output: {line}" for line in lines],
        )

    def both(self, body: str, lines: list[str], chunk: int | None = None) -> list[str]:
        """Run command() against both framings; both must give ``lines``."""
        results = []
        for framing in ("old", "modern"):
            d = self.protocol.command("some command")
            action_id = Message.parse(action_blocks(self.transport.value())[-1])["ActionID"]
            data = self.old(action_id, body) if framing == "old" else self.modern(action_id, lines)
            step = chunk or len(data)
            for i in range(0, len(data), step):
                self.receive(data[i : i + step])
            results.append(self.successResultOf(d))
        self.assertEqual(results[0], results[1])
        self.assertEqual(results[0], lines)
        return results[0]

    def test_simple(self) -> None:
        """Lines ended by LF, spaces kept, give the Output lines."""
        self.both(
            "Asterisk 1.8.32 built by x\n  indented  \n",
            ["Asterisk 1.8.32 built by x", "  indented  "],
        )

    def test_blank_lines_lf(self) -> None:
        """Blank lines (LF LF) inside the output are kept as empty lines."""
        self.both("a\n\nb\n\n\nc\n", ["a", "", "b", "", "", "c"])

    def test_blank_lines_crlf(self) -> None:
        """CRLF CRLF inside the output (which looks like the end of a message) is kept too."""
        self.both("a\r\n\r\nb\r\n\r\n\r\n\r\nc\r\n", ["a", "", "b", "", "", "", "c"])

    def test_large_output_in_chunks(self) -> None:
        """20 KB of output with blank lines, read in 100-byte chunks, arrives whole."""
        lines = [f"line {i:05d} " + "x" * 50 if i % 7 else "" for i in range(400)]
        body = "".join(f"{line}\r\n" if i % 2 else f"{line}\n" for i, line in enumerate(lines))
        self.assertGreater(len(body), 20_000)
        self.both(body, lines, chunk=100)

    def test_no_trailing_newline_and_empty(self) -> None:
        """Output not ending in a newline, and empty output, are handled."""
        self.both("last line", ["last line"])
        self.both("", [])

    def test_follows_response_headers(self) -> None:
        """send_action gets a response with the old headers and the lines as Output headers."""
        d, action_id = self.send("Command", Command="x")
        self.receive(self.old(action_id, "one\n\ntwo\n"), msg("Event: After"))
        response = self.successResultOf(d)
        self.assertEqual(
            response.pairs(),
            [
                ("Response", "Follows"),
                ("Privilege", "Command"),
                ("ActionID", action_id),
                ("Output", "one"),
                ("Output", ""),
                ("Output", "two"),
            ],
        )
        self.assertEqual((response.kind, response.name), ("response", "Follows"))
        self.assertEqual([e.name for e in self.events], ["After"])

    def test_follows_too_large(self) -> None:
        """An old Command answer that never ends is cut at max_message_size."""
        self.protocol.MAX_LENGTH = 1000
        d, action_id = self.send("Command", Command="x")
        self.receive(f"Response: Follows\r\nActionID: {action_id}\r\n".encode())
        for _ in range(30):
            self.receive(b"x" * 50 + b"\r\n\r\n")
        self.assertTrue(self.transport.disconnecting)
        self.assertIn(
            (
                "error",
                "closing the AMI connection: a Command answer (Response: Follows) exceeded "
                "max_message_size",
            ),
            self.log_lines(),
        )
        self.protocol.connectionLost(Failure(ConnectionAborted()))
        self.failureResultOf(d, ConnectionLost)


class BannerTests(SynchronousTestCase):
    """The 'Asterisk Call Manager/X.Y.Z' line."""

    def connect(self) -> tuple[AMIProtocol, list[Message], LogCapture]:
        logs = LogCapture(self)
        protocol = AMIProtocol(Clock())
        protocol.makeConnection(StringTransport())
        events: list[Message] = []
        protocol.add_event_handler("*", events.append)
        return protocol, events, logs

    def test_banner_sets_version(self) -> None:
        """The banner sets ami_version '9.0.0' and banner, even when split across reads."""
        for cut in range(len(BANNER) + 1):
            protocol, events, _ = self.connect()
            self.assertIsNone(protocol.ami_version)
            data = BANNER + msg("Event: X")
            protocol.dataReceived(data[:cut])
            protocol.dataReceived(data[cut:])
            self.assertEqual(protocol.ami_version, "9.0.0")
            self.assertEqual(protocol.banner, "Asterisk Call Manager/9.0.0")
            self.assertEqual([e.name for e in events], ["X"])

    def test_no_banner(self) -> None:
        """A server that sends no banner is read from its first message on, with a warning."""
        protocol, events, logs = self.connect()
        protocol.dataReceived(msg("Event: First") + msg("Event: Second"))
        self.assertIsNone(protocol.ami_version)
        self.assertEqual([e.name for e in events], ["First", "Second"])
        self.assertEqual(
            logs.lines(), [("warn", "the server sent no banner; reading messages at once")]
        )

    def test_endless_banner(self) -> None:
        """A first line longer than 1 KiB is no banner, however the bytes are cut."""
        for cut in (0, 1000, 1025, 1026, 1500):
            protocol, events, logs = self.connect()
            data = b"x" * 1500 + b"\r\n\r\n" + msg("Event: After")
            protocol.dataReceived(data[:cut])
            protocol.dataReceived(data[cut:])
            self.assertIsNone(protocol.banner)
            self.assertEqual(
                logs.lines()[0], ("warn", "no AMI banner line in the first 1024 bytes")
            )
            self.assertEqual([e.name for e in events], ["After"])

    def test_longest_banner(self) -> None:
        """A banner line of 1024 bytes is still read as the banner, even cut before its LF."""
        banner = b"Asterisk Call Manager/" + b"9" * 1002 + b"\r\n"
        for cut in (1024, 1025, 1026):
            protocol, events, _ = self.connect()
            protocol.dataReceived(banner[:cut])
            protocol.dataReceived(banner[cut:] + msg("Event: After"))
            self.assertEqual(protocol.ami_version, "9" * 1002)
            self.assertEqual([e.name for e in events], ["After"])


class ActionIdTests(ProtocolTestCase):
    """The ActionIDs txami writes."""

    def test_unique_with_random_prefix(self) -> None:
        """Generated ActionIDs are unique, written second, with the process's random prefix."""
        ids = [self.send()[1] for _ in range(500)]
        self.assertEqual(len(set(ids)), 500)
        for action_id in ids:
            self.assertRegex(action_id, r"^[0-9a-f]{12}\.[0-9]+$")
        self.assertEqual({i.split(".")[0] for i in ids}, {txami.message._ID_PREFIX})
        for block in action_blocks(self.transport.value()):
            self.assertTrue(re.match(rb"Action: Ping\r\nActionID: [0-9a-f]{12}\.\d+$", block))
        # A fresh import of the module (as in another process) draws another prefix.
        spec = importlib.util.spec_from_file_location("txami_message_copy", txami.message.__file__)
        assert spec is not None and spec.loader is not None
        copy = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(copy)
        self.assertNotEqual(copy._ID_PREFIX, txami.message._ID_PREFIX)

    def test_ping_writes_what_send_action_writes(self) -> None:
        """ping()'s lean path writes, counts and times out exactly as send_action("Ping")."""
        first = self.protocol.send_action("Ping")
        second = self.protocol.ping()
        blocks = action_blocks(self.transport.value())
        ids = [block.split(b"ActionID: ")[1] for block in blocks]
        self.assertEqual(blocks, [b"Action: Ping\r\nActionID: " + action_id for action_id in ids])
        self.assertEqual(int(ids[1].split(b".")[1]), int(ids[0].split(b".")[1]) + 1)
        self.assertEqual(self.protocol.actions_sent, 2)
        self.clock.advance(self.protocol.timeout)
        for d, action_id in zip((first, second), ids, strict=True):
            self.assertEqual(
                self.failureResultOf(d, ActionTimeout).value.action_id, action_id.decode()
            )

    def test_ping_while_closing(self) -> None:
        """ping() on a transport that is closing fails at once with NotConnected."""
        self.transport.loseConnection()
        self.transport.clear()
        self.failureResultOf(self.protocol.ping(), NotConnected)
        self.assertEqual(self.transport.value(), b"")

    def test_given_action_id_goes_second(self) -> None:
        """An ActionID given among the headers is used and written right after Action."""
        self.protocol.send_action("Originate", [("Channel", "SIP/a"), ("actionid", "mine")])
        self.assertEqual(
            self.transport.value(),
            b"Action: Originate\r\nActionID: mine\r\nChannel: SIP/a\r\n\r\n",
        )

    def test_duplicate_pending_action_id(self) -> None:
        """Reusing the ActionID of a pending action raises ValueError and writes nothing."""
        self.send(ActionID="dup")
        self.transport.clear()
        with self.assertRaises(ValueError) as raised:
            self.protocol.send_action("Ping", ActionID="dup")
        self.assertEqual(str(raised.exception), "ActionID 'dup' is already pending")
        self.assertEqual(self.transport.value(), b"")

    def test_counters(self) -> None:
        """actions_sent counts written actions; events_received every event read."""
        self.send()
        self.send()
        self.receive(msg("Event: A"), msg("Event: B"))
        self.assertEqual((self.protocol.actions_sent, self.protocol.events_received), (2, 2))


class SecretTests(SynchronousTestCase):
    """Secrets never reach a log line, a repr or an error message."""

    SECRETS = ("adminsecret", "wrongsecret", "md5secret")

    def test_no_secret_in_logs_or_reprs(self) -> None:
        """Plain and MD5 logins, accepted, refused, timed out and lost, log no Secret or Key."""
        logs = LogCapture(self)
        texts: list[str] = []
        keys = [md5_key("1234", "md5secret"), md5_key("5678", "wrongsecret")]

        def session() -> tuple[AMIProtocol, StringTransport, Clock]:
            clock = Clock()
            transport = StringTransport()
            protocol = AMIProtocol(clock)
            protocol.makeConnection(transport)
            protocol.dataReceived(BANNER)
            return protocol, transport, clock

        def last_id(transport: StringTransport) -> str:
            return Message.parse(action_blocks(transport.value())[-1])["ActionID"]

        def collect(d: Deferred[Any]) -> None:
            results: list[object] = []
            d.addBoth(results.append)
            (result,) = results
            texts.extend([repr(result), str(result)])
            if isinstance(result, Failure):
                texts.extend([repr(result.value), str(result.value), result.getTraceback()])

        # Plain: accepted, refused, refused without ActionID then timed out, lost.
        for secret, answer in (("adminsecret", "Success"), ("wrongsecret", "Error")):
            protocol, transport, _ = session()
            d = protocol.login("admin", secret)
            protocol.dataReceived(
                msg(f"Response: {answer}", f"ActionID: {last_id(transport)}", "Message: x")
            )
            collect(d)
        protocol, transport, clock = session()
        d = protocol.login("admin", "wrongsecret")
        protocol.dataReceived(msg("Response: Error", "Message: Authentication failed"))
        clock.advance(30)
        collect(d)
        protocol.dataReceived(
            msg("Response: Error", f"ActionID: {last_id(transport)}", "Message: late")
        )
        protocol, transport, _ = session()
        d = protocol.login("admin", "adminsecret")
        protocol.connectionLost(Failure(ConnectionDone()))
        collect(d)
        # MD5: accepted, refused.
        for secret, challenge, answer in (
            ("md5secret", "1234", "Success"),
            ("wrongsecret", "5678", "Error"),
        ):
            protocol, transport, _ = session()
            d = protocol.login("admin", secret, auth="md5")
            protocol.dataReceived(
                msg(
                    "Response: Success",
                    f"ActionID: {last_id(transport)}",
                    f"Challenge: {challenge}",
                )
            )
            self.assertIn(md5_key(challenge, secret).encode(), transport.value())
            protocol.dataReceived(msg(f"Response: {answer}", f"ActionID: {last_id(transport)}"))
            collect(d)
        # A refused login nobody handles is logged when its Deferred is collected.
        protocol, transport, _ = session()
        protocol.login("admin", "wrongsecret")
        protocol.dataReceived(msg("Response: Error", f"ActionID: {last_id(transport)}"))
        del protocol, transport
        gc.collect()
        self.assertEqual(len(self.flushLoggedErrors(AuthenticationError)), 1)
        # An unsafe secret is refused without showing it.
        with self.assertRaises(ValueError) as raised:
            session()[0].login("admin", "adminsecret\r\n")
        texts.append(str(raised.exception))

        self.assertGreater(len(logs.events), 2)
        for event in logs.events:
            texts.append(formatEvent(event))
            texts.append(repr(event))
            failure = event.get("log_failure")
            if failure is not None:
                texts.append(failure.getTraceback())
        text = "\n".join(texts)
        self.assertIn("AuthenticationError", text)
        self.assertIn("login as 'admin' refused", text)
        for secret in (*self.SECRETS, *keys):
            self.assertNotIn(secret, text)

    def test_error_reprs(self) -> None:
        """AuthenticationError, AMIError and the response they carry show no secret."""
        response = Message.parse(
            b"Response: Error\r\nActionID: 1\r\nMessage: Authentication failed\r\nSecret: oops"
        )
        for error in (
            AuthenticationError("Login", response, "admin"),
            AMIError("Login", response),
        ):
            for text in (repr(error), str(error), repr(error.response), repr(error.args)):
                self.assertNotIn("oops", text)


class ReferenceReadingProtocol(AMIProtocol):
    """
    An `AMIProtocol` with a `lineReceived` of its own, so that it reads every
    message through `AMIProtocol.lineReceived` (`_from_text`,
    `EventDispatcher.dispatch`): the reference versions of what the reading
    loop does inline.
    """

    def lineReceived(self, line: bytes) -> None:
        """Read the message as `AMIProtocol` does (only its being a subclass counts)."""
        super().lineReceived(line)


class ReadingPathTests(SynchronousTestCase):
    """The copies below run the same tests through the reference reading path."""

    def test_paths_taken(self) -> None:
        """AMIProtocol dispatches events inline; the reference subclass goes through dispatch."""
        calls: list[str] = []
        dispatch = EventDispatcher.dispatch

        def counting(dispatcher: EventDispatcher, name: str, event: Message) -> None:
            calls.append(name)
            dispatch(dispatcher, name, event)

        self.patch(EventDispatcher, "dispatch", counting)
        seen = []
        for protocol_class in (AMIProtocol, ReferenceReadingProtocol):
            protocol = protocol_class(Clock())
            protocol.add_event_handler("*", lambda e: seen.append(e.name))
            protocol.makeConnection(StringTransport())
            protocol.dataReceived(BANNER + msg("Event: A") + msg("Event: B"))
        self.assertEqual(seen, ["A", "B", "A", "B"])
        self.assertEqual(calls, ["A", "B"])


class SessionStateReferenceTests(SessionStateTests):
    """`SessionStateTests` through the reference reading path."""

    protocol_class = ReferenceReadingProtocol


class OriginateResponseReferenceTests(OriginateResponseTests):
    """`OriginateResponseTests` through the reference reading path."""

    protocol_class = ReferenceReadingProtocol


class ConnectionLossReferenceTests(ConnectionLossTests):
    """`ConnectionLossTests` through the reference reading path."""

    protocol_class = ReferenceReadingProtocol


class HandlerReferenceTests(HandlerTests):
    """`HandlerTests` through the reference reading path."""

    protocol_class = ReferenceReadingProtocol


class ClaimReferenceTests(ClaimTests):
    """`ClaimTests` through the reference reading path."""

    protocol_class = ReferenceReadingProtocol


class EncodingReferenceTests(EncodingTests):
    """`EncodingTests` through the reference reading path."""

    protocol_class = ReferenceReadingProtocol


class LimitReferenceTests(LimitTests):
    """`LimitTests` through the reference reading path."""

    protocol_class = ReferenceReadingProtocol


class OddInputReferenceTests(OddInputTests):
    """`OddInputTests` through the reference reading path."""

    protocol_class = ReferenceReadingProtocol


class OldCommandReferenceTests(OldCommandTests):
    """`OldCommandTests` through the reference reading path."""

    protocol_class = ReferenceReadingProtocol
