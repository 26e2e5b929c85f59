"""
The per-action deadlines (a FIFO for deadlines in order, a heap for the rest, one
timer), checked against a model: random sends with random timeouts, answers in
any order, cancellations and clock steps.  Every Deferred fires exactly once: with
its answer if that came first, with `ActionTimeout` exactly when its deadline has
passed otherwise; the queues stay bounded and there is at most one timer.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txami import ActionTimeout, AMIProtocol, Message

STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.sampled_from([None, None, None, 1.0, 5.0, 45.0])),
        st.tuples(st.just("answer"), st.integers(0, 40)),
        st.tuples(st.just("answer"), st.just(-1)),  # the latest action
        st.tuples(st.just("cancel"), st.integers(0, 40)),
        st.tuples(st.just("advance"), st.sampled_from([0.5, 1.0, 4.0, 10.0, 29.0, 31.0])),
        st.tuples(st.just("timeout"), st.sampled_from([10.0, 30.0])),
    ),
    max_size=80,
)


class DeadlineModelTests(SynchronousTestCase):
    """Deadlines against a model."""

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(STEPS)
    def test_against_model(self, steps: list[tuple[str, Any]]) -> None:
        """Each action fires once, by answer, cancellation or timeout exactly at its deadline."""
        clock = Clock()
        transport = StringTransport()
        protocol = AMIProtocol(clock)
        protocol.makeConnection(transport)
        protocol.dataReceived(b"Asterisk Call Manager/9.0.0\r\n")
        sent: list[tuple[str, Deferred[Message], float]] = []  # (ActionID, Deferred, deadline)
        results: dict[str, list[object]] = {}
        for kind, arg in steps:
            if kind == "send":
                action_id = f"a{len(sent)}"
                d = protocol.send_action("Ping", ActionID=action_id, action_timeout=arg)
                timeout = arg if arg is not None else protocol.timeout
                sent.append((action_id, d, clock.seconds() + timeout))
                results[action_id] = []
                d.addBoth(results[action_id].append)
            elif kind == "answer" and sent:
                action_id = sent[arg % len(sent)][0]
                protocol.dataReceived(
                    f"Response: Success\r\nActionID: {action_id}\r\nPing: Pong\r\n\r\n".encode()
                )
            elif kind == "cancel" and sent:
                sent[arg % len(sent)][1].cancel()
            elif kind == "advance":
                clock.advance(arg)
            elif kind == "timeout":
                protocol.timeout = arg
            now = clock.seconds()
            for action_id, _, deadline in sent:
                fired = results[action_id]
                self.assertLessEqual(len(fired), 1, action_id)
                if not fired:
                    self.assertGreater(deadline, now, f"{action_id} not timed out at {now}")
                elif isinstance(fired[0], Failure) and fired[0].check(ActionTimeout):
                    self.assertLessEqual(deadline, now)
            self.assertLessEqual(len(clock.getDelayedCalls()), 1)
            self.assertLessEqual(len(protocol._fifo), 2 * len(protocol._pending) + 257)
        clock.advance(1000)  # every deadline passes...
        clock.advance(1000)  # ...and so does the period a timed-out ActionID lingers
        for action_id, _, _ in sent:
            (result,) = results[action_id]
            if isinstance(result, Failure):
                self.assertTrue(result.check(ActionTimeout, CancelledError), result)
            else:
                self.assertEqual(result.action_id, action_id)  # type: ignore[attr-defined]
        self.assertEqual(protocol._pending, {})
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_out_of_order_answers_stay_bounded(self) -> None:
        """Answers behind a long-waiting action do not pile up in the FIFO."""
        clock = Clock()
        protocol = AMIProtocol(clock)
        protocol.makeConnection(StringTransport())
        slow = protocol.send_action("Originate", ActionID="slow")
        for n in range(5000):
            protocol.send_action("Ping", ActionID=f"p{n}")
            protocol.dataReceived(f"Response: Success\r\nActionID: p{n}\r\n\r\n".encode())
        self.assertLessEqual(len(protocol._fifo), 2 * len(protocol._pending) + 257)
        clock.advance(30)
        self.failureResultOf(slow, ActionTimeout)
