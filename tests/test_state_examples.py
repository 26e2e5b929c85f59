"""
The state guide's examples (docs/state.rst includes them) run against the
fake Asterisk: ``examples/state_calls.py`` prints calls as they start and
end, ``examples/state_wallboard.py`` draws its queue lines.
"""

from __future__ import annotations

import io
import sys
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.realpbx import wait_for
from tests.test_integration import load_example
from txami import PBXState
from txami.testing import FakeAsterisk, connected_pair, listen

reactor: Any = _reactor
state_calls = load_example("state_calls")
state_wallboard = load_example("state_wallboard")


class CallPrinterTests(SynchronousTestCase):
    """CallPrinter on a model of the fake PBX."""

    def test_a_call_starts_and_ends(self) -> None:
        """A call to 1010 prints one start line and one end line."""
        clock = Clock()
        fake = FakeAsterisk(clock)
        self.addCleanup(fake.stop)
        ami, _, pump = connected_pair(fake, clock)
        state = PBXState(ami, clock=clock)
        lines: list[str] = []
        state.add_listener(state_calls.CallPrinter(lines.append))
        state.start()
        pump.flush()
        caller = fake.pbx.incoming_call("1010", caller_id='"Alice" <201>')
        pump.flush()
        clock.advance(5)
        fake.pbx.hangup(caller)
        clock.advance(1)
        pump.flush()
        call_id = caller.uniqueid
        self.assertEqual(
            lines,
            [
                f"call {call_id} started: Alice -> 1010",
                f"call {call_id} ended (hangup, answered)",
            ],
        )


class StateCallsMainTests(TestCase):
    """The example program itself, connected to a fake Asterisk on 127.0.0.1."""

    timeout = 20

    async def test_main(self) -> None:
        """main() syncs, prints each call, and stops when told to."""
        fake = FakeAsterisk(reactor)
        self.addCleanup(fake.stop)
        port = listen(fake, reactor)
        self.addCleanup(port.stopListening)
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        until: Deferred[None] = Deferred()
        done = Deferred.fromCoroutine(
            state_calls.main(
                reactor, "127.0.0.1", port.getHost().port, "admin", "adminsecret", until
            )
        )
        await wait_for(reactor, lambda: "synced: 0 calls up" in out.getvalue(), what="the sync")
        caller = fake.pbx.incoming_call("1000", caller_id="<202>")
        await wait_for(reactor, lambda: "started: 202 -> 1000" in out.getvalue(), what="start")
        fake.pbx.hangup(caller)
        await wait_for(reactor, lambda: "ended (hangup, answered)" in out.getvalue(), what="end")
        until.callback(None)
        await done


class WallboardTests(SynchronousTestCase):
    """The wallboard draws the queue as the fake PBX's queue changes."""

    def test_lines(self) -> None:
        """Waiting callers, their wait and the agents' states show on the board."""
        clock = Clock()
        fake = FakeAsterisk(clock)
        self.addCleanup(fake.stop)
        ami, _, pump = connected_pair(fake, clock)
        state = PBXState(ami, clock=clock)
        lines: list[str] = []
        state.add_listener(state_wallboard.Wallboard(state, lines.append))
        state.start()
        pump.flush()
        for member in ("Local/1000@txami-test/n", "Local/1001@txami-test/n"):
            fake.pbx.pause_member("support", member, True, "lunch")
        fake.pbx.incoming_call("600", caller_id="<203>")
        pump.flush()
        clock.advance(12)
        lines.clear()
        fake.pbx.pause_member("support", "Local/1001@txami-test/n", False)
        pump.flush()
        self.assertEqual(
            lines[0],
            "support: 1 waiting (longest 12 s), 0 answered, 0 abandoned, hold 0 s"
            " | Agent One paused, Agent Two not_inuse",
        )
        self.assertEqual(
            lines[-1],
            "support: 0 waiting (longest 0 s), 0 answered, 0 abandoned, hold 12 s"
            " | Agent One paused, Agent Two inuse",
        )
