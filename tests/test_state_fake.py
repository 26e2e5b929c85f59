"""
`PBXState` against the fake Asterisk of `txami.testing` (which models
Asterisk 20's calls, bridges, queues, transfers, parking, ConfBridge and
device states, in its event order): after every step of a scenario the model
must hold what the fake PBX holds, channel by channel, bridge by bridge,
caller by caller; and over a restart of the fake, everything ends as
"asterisk restarted".
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.realpbx import wait_for, with_timeout
from tests.statefake import Log
from txami import PBXState, connect
from txami.state.sync import GONE_RESTART
from txami.testing import FakeAsterisk, connected_pair, listen

reactor: Any = _reactor


class FakeScenarioTests(SynchronousTestCase):
    """Scenarios driven on the fake PBX; the model checked against it after each step."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.fake = FakeAsterisk(self.clock)
        self.addCleanup(self.fake.stop)
        self.ami, _, self.pump = connected_pair(self.fake, self.clock)
        self.state = PBXState(self.ami, clock=self.clock)
        self.log = Log()
        self.state.add_listener(self.log)
        started = self.state.start()
        self.pump.flush()
        self.assertIs(self.successResultOf(started), self.state)
        self.pbx = self.fake.pbx

    def step(self, seconds: float = 0.0) -> None:
        """Let the fake run ``seconds`` and deliver what it sent."""
        self.clock.advance(seconds)
        self.pump.flush()

    def check(self) -> None:
        """The model holds exactly the fake PBX's channels, bridges, members and callers."""
        pbx, state = self.pbx, self.state
        fake_channels = {c.uniqueid: c for c in pbx.channels.values()}
        self.assertEqual(sorted(state.channels), sorted(fake_channels))
        for uniqueid, channel in state.channels.items():
            fake = fake_channels[uniqueid]
            self.assertEqual(
                (channel.name, channel.state, channel.context, channel.exten, channel.priority),
                (fake.name, fake.state, fake.context, fake.exten, fake.priority),
            )
            fake_bridge = fake.bridge.uniqueid if fake.bridge is not None else None
            bridge = channel.bridge.uniqueid if channel.bridge is not None else None
            self.assertEqual(bridge, fake_bridge, channel)
        self.assertEqual(sorted(state.bridges), sorted(pbx.bridges))
        for uniqueid, bridge in state.bridges.items():
            members = [c.uniqueid for c in pbx.bridges[uniqueid].channels]
            self.assertEqual(sorted(c.uniqueid for c in bridge.channels), sorted(members))
        for name, fake_queue in pbx.queues.items():
            queue = state.queues[name]
            self.assertEqual(
                [e.uniqueid for e in queue.entries], [c.uniqueid for c in fake_queue.callers]
            )
            for member in fake_queue.members:
                mine = queue.members[member.interface]
                self.assertEqual((mine.paused, mine.status), (member.paused, member.status))
        for channel in state.channels.values():
            self.assertIn(channel, channel.call.channels)  # type: ignore[union-attr]

    def calls_of(self, *uniqueids: str) -> set[str]:
        return {self.state.channels[u].call.id for u in uniqueids}  # type: ignore[union-attr]

    def test_bridged_pair(self) -> None:
        """A call to 1010 is one call of four channels in one bridge; its hangup ends it."""
        caller = self.pbx.incoming_call("1010", caller_id='"Alice" <201>')
        self.step()
        self.check()
        self.assertEqual(len(self.state.calls), 1)
        (call,) = self.state.calls.values()
        self.assertEqual(len(call.channels), 3)  # PJSIP/201 and the Local pair of 1000
        self.assertEqual(len(call.bridges), 1)
        self.pbx.hangup(caller)
        self.step(1)
        self.check()
        self.assertEqual(dict(self.state.calls), {})
        self.assertEqual([c for c, _ in self.log.of("call_ended")], [call])

    def test_queue_paused_then_answered(self) -> None:
        """A caller waits while both agents are paused, then Agent One answers."""
        support = self.pbx.queues["support"]
        for member in support.members:
            self.pbx.pause_member("support", member.interface, True, "lunch")
        caller = self.pbx.incoming_call("600", caller_id="<202>")
        self.step(1)
        self.check()
        self.assertEqual(
            [e.channel for e in self.state.queues["support"].entries],
            [self.state.channels[caller.uniqueid]],
        )
        self.pbx.pause_member("support", "Local/1000@txami-test/n", False)
        self.step(1)
        self.check()
        self.assertEqual(self.state.queues["support"].entries, [])
        self.assertEqual(len(self.state.calls), 1)
        self.pbx.hangup(caller)
        self.step(1)
        self.check()
        queue = self.state.queues["support"]
        self.assertEqual(
            (queue.completed, queue.abandoned), (support.completed, support.abandoned)
        )
        self.assertEqual((queue.holdtime, queue.talktime), (support.hold_time, support.talk_time))

    def test_local_optimisation(self) -> None:
        """1011's Local channel optimises itself away; the call stays one."""
        self.pbx.incoming_call("1011", caller_id="<203>")
        for _ in range(4):
            self.step(1)
            self.check()
        self.assertEqual(len(self.state.calls), 1)
        self.assertFalse([c for c in self.state.channels.values() if "1012@" in c.name])
        self.assertEqual(self.log.of("call_merged"), [])

    def test_conference(self) -> None:
        """A bridged pair redirected into ConfBridge 680 stays one call, now in the conference."""
        caller = self.pbx.incoming_call("1010", caller_id="<204>")
        self.step()
        callee = next(c for c in self.pbx.channels.values() if c.name.endswith(";1"))
        self.pbx.redirect_pair((caller, "txami-test", "680", 1), (callee, "txami-test", "680", 1))
        self.step(1)
        self.check()
        (call,) = self.state.calls.values()
        (bridge,) = call.bridges
        self.assertEqual((bridge.technology, bridge.name), ("softmix", "680"))

    def test_blind_transfer(self) -> None:
        """The transferee keeps its call after a blind transfer to 1001."""
        caller = self.pbx.incoming_call("1010", caller_id="<205>")
        self.step()
        callee = next(c for c in self.pbx.channels.values() if c.name.endswith(";1"))
        before = self.calls_of(caller.uniqueid)
        self.pbx.blind_transfer(callee, "1001")
        self.step(1)
        self.check()
        self.assertEqual(self.calls_of(caller.uniqueid), before)

    def test_attended_transfer(self) -> None:
        """Attended transfer: consultation, then the transferer leaves; one call remains."""
        caller = self.pbx.incoming_call("1010", caller_id="<206>")
        self.step()
        transferer = next(c for c in self.pbx.channels.values() if c.name.endswith(";1"))
        self.pbx.attended_transfer(transferer, "1001")
        self.step(1)
        self.check()
        self.pbx.hangup(transferer)
        self.step(1)
        self.check()
        self.assertEqual(len({c.call for c in self.state.channels.values()}), 1)
        self.assertEqual(self.state.channels[caller.uniqueid].bridge is not None, True)

    def test_park_and_pick_up(self) -> None:
        """A parked caller stays its own call in the lot; 7001 picks it up into one call."""
        caller = self.pbx.incoming_call("1010", caller_id="<207>")
        self.step()
        self.pbx.park(caller)
        self.step(1)
        self.check()
        lot = self.state.channels[caller.uniqueid].bridge
        assert lot is not None
        self.assertEqual((lot.type, lot.call), ("parking", None))
        picker = self.pbx.incoming_call("7001", "parkedcalls", caller_id="<208>")
        self.step(1)
        self.check()
        self.assertEqual(self.calls_of(caller.uniqueid), self.calls_of(picker.uniqueid))

    def test_hold_and_devices(self) -> None:
        """Hold and device states and hints follow the fake."""
        caller = self.pbx.incoming_call("1000", caller_id="<209>")
        self.step()
        self.pbx.hold(caller)
        self.pbx.set_device_state("Custom:txami2000", "INUSE")
        self.step()
        self.assertTrue(self.state.channels[caller.uniqueid].on_hold)
        self.assertEqual(self.state.devices["Custom:txami2000"].state, "INUSE")
        self.assertEqual(self.state.hints[("2000", "txami-test")].status, 1)
        self.pbx.unhold(caller)
        self.pbx.set_device_state("Custom:txami2000", "NOT_INUSE")
        self.step()
        self.assertFalse(self.state.channels[caller.uniqueid].on_hold)
        self.assertEqual(self.state.hints[("2000", "txami-test")].status, 0)

    def test_demo_traffic(self) -> None:
        """Two minutes of the fake's demo traffic: the model matches it at every second."""
        demo = self.pbx.start_demo(interval=2.0, paused_members=["Local/1001@txami-test/n"])
        for _ in range(120):
            self.step(1)
            self.check()
        demo.stop()
        self.assertGreater(len(self.log.of("channel_gone")), 5)
        self.assertGreater(len(self.log.of("queue_entry_left")), 2)


class FakeRestartTests(TestCase):
    """A model over an AMIFactory, when the fake restarts."""

    timeout = 30

    async def model(self) -> tuple[FakeAsterisk, PBXState, Log]:
        """A fake on a loopback port, and a synced model over a factory of it, with its log."""
        fake = FakeAsterisk(reactor)
        self.addCleanup(fake.stop)
        port = listen(fake, reactor)
        self.addCleanup(port.stopListening)
        factory = await connect(
            reactor,
            "127.0.0.1",
            port.getHost().port,
            username="admin",
            secret="adminsecret",
            keepalive=None,
            initial_delay=0.1,
            max_delay=0.2,
        )
        self.addCleanup(factory.stop)
        state = PBXState(factory)
        self.addCleanup(state.stop)
        log = Log()
        state.add_listener(log)
        await with_timeout(reactor, state.start(), 10, "the first sync")
        return fake, state, log

    async def test_restart(self) -> None:
        """Everything known before the restart ends as 'asterisk restarted'; then it re-syncs."""
        fake, state, log = await self.model()
        caller = fake.pbx.incoming_call("1000", caller_id="<210>")
        await wait_for(reactor, lambda: caller.uniqueid in state.channels, what="the call")
        before = state.channels[caller.uniqueid]
        fake.restart()
        await wait_for(
            reactor, lambda: state.synced and before.hangup_cause is not None, what="re-sync"
        )
        self.assertEqual([why for c, why in log.of("channel_gone")], [GONE_RESTART])
        self.assertEqual(log.names("synced"), [False, True])
        self.assertEqual(dict(state.channels), {})

    async def test_restart_while_booting(self) -> None:
        """A re-sync during the boot misses the queues; FullyBooted brings a sync that has them."""
        fake, state, log = await self.model()
        self.assertEqual(sorted(state.queues), ["support"])
        caller = fake.pbx.incoming_call("1000", caller_id="<210>")
        await wait_for(reactor, lambda: caller.uniqueid in state.channels, what="the call")
        before = state.channels[caller.uniqueid]
        fake.restart(boot_seconds=60)  # booting until finish_boot
        await wait_for(reactor, lambda: log.names("synced") == [False, True], what="re-sync")
        self.assertEqual([why for c, why in log.of("channel_gone")], [GONE_RESTART])
        self.assertIs(before.hangup_cause, 0)
        self.assertIn("QueueStatus: Invalid/unknown command", state.limits["queues"])
        fake.finish_boot()
        await wait_for(reactor, lambda: len(log.names("synced")) == 3, what="the sync after boot")
        self.assertEqual(log.names("synced"), [False, True, True])
        self.assertEqual(dict(state.limits), {})
        self.assertEqual(sorted(state.queues), ["support"])
