"""
The sample of the fake PBX's scenario guide (docs/fake-scenarios.rst includes this file).

``QueueBoard`` is state-driven code of the kind a wallboard needs: it follows
AMI events to know who waits in which queue, which agents are paused and which
lamps are lit.  The tests drive a `FakeAsterisk` the way calls would, with its
scenario API (``fake.pbx.incoming_call``, ``pause_member``,
``set_device_state``, ``hangup``), and check what the board knows.  Copy it
next to your code and run it with ``python -m twisted.trial test_queue_board``;
txami's own suite runs it too (tests/test_fake_scenarios_example.py).
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txami import AMIProtocol, Message
from txami.testing import FakeAsterisk, connected_pair


class QueueBoard:
    """The code under test: waiting callers, paused agents and hint lamps, from events."""

    def __init__(self, ami: AMIProtocol) -> None:
        self.waiting: dict[str, list[str]] = {}
        self.paused: set[str] = set()
        self.lamps: dict[str, str] = {}
        for name in ("QueueCallerJoin", "QueueCallerLeave", "QueueMemberPause"):
            ami.add_event_handler(name, self.on_queue_event)
        ami.add_event_handler("ExtensionStatus", self.on_hint)

    def on_queue_event(self, event: Message) -> None:
        queue = event["Queue"]
        if event.name == "QueueCallerJoin":
            self.waiting.setdefault(queue, []).append(event["CallerIDNum"])
        elif event.name == "QueueCallerLeave":
            self.waiting[queue].remove(event["CallerIDNum"])
        elif event["Paused"] == "1":
            self.paused.add(event["MemberName"])
        else:
            self.paused.discard(event["MemberName"])

    def on_hint(self, event: Message) -> None:
        self.lamps[event["Exten"]] = event["StatusText"]


class QueueBoardTests(SynchronousTestCase):
    """The board against the fake PBX: calls, agents and lamps driven by the test."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.fake = FakeAsterisk(self.clock)
        self.addCleanup(self.fake.stop)
        self.ami, _, self.pump = connected_pair(self.fake, self.clock)
        self.board = QueueBoard(self.ami)
        self.pbx = self.fake.pbx

    def test_callers_wait_while_every_agent_is_paused(self) -> None:
        """Callers to 600 wait in 'support' while both agents are paused."""
        self.pbx.pause_member("support", "Local/1000@txami-test/n", True, "lunch")
        self.pbx.pause_member("support", "Local/1001@txami-test/n", True, "lunch")
        self.pbx.incoming_call("600", caller_id='"Alice" <201>')
        self.pbx.incoming_call("600", caller_id='"Bob" <202>')
        self.pump.flush()
        self.assertEqual(self.board.waiting["support"], ["201", "202"])
        self.assertEqual(self.board.paused, {"Agent One", "Agent Two"})

    def test_an_agent_back_from_lunch_takes_the_first_caller(self) -> None:
        """Unpausing an agent connects the first caller: it leaves the queue."""
        for agent in ("Local/1000@txami-test/n", "Local/1001@txami-test/n"):
            self.pbx.pause_member("support", agent, True)
        self.pbx.incoming_call("600", caller_id='"Alice" <201>')
        self.pbx.incoming_call("600", caller_id='"Bob" <202>')
        self.pbx.pause_member("support", "Local/1000@txami-test/n", False)
        self.pump.flush()
        self.assertEqual(self.board.waiting["support"], ["202"])
        self.assertEqual(self.board.paused, {"Agent Two"})
        self.assertEqual(self.pbx.queues["support"].members[0].in_call, True)

    def test_a_caller_who_gives_up_leaves(self) -> None:
        """A waiting caller hanging up leaves the queue (QueueCallerAbandon, then Leave)."""
        for agent in ("Local/1000@txami-test/n", "Local/1001@txami-test/n"):
            self.pbx.pause_member("support", agent, True)
        caller = self.pbx.incoming_call("600", caller_id='"Alice" <201>')
        self.clock.advance(30)
        self.pbx.hangup(caller)
        self.pump.flush()
        self.assertEqual(self.board.waiting["support"], [])
        self.assertEqual(self.pbx.queues["support"].abandoned, 1)

    def test_lamps_follow_the_hints(self) -> None:
        """A device state change lights the hint's lamp; 'busy' and back to idle."""
        self.pbx.set_device_state("Custom:txami2000", "INUSE")
        self.pbx.set_device_state("Custom:txami2002", "BUSY")
        self.pump.flush()
        self.assertEqual(self.board.lamps, {"2000": "InUse", "2002": "Busy"})
        self.pbx.set_device_state("Custom:txami2000", "NOT_INUSE")
        self.pump.flush()
        self.assertEqual(self.board.lamps["2000"], "Idle")
