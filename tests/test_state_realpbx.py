"""
`PBXState` against the real Asterisk that `.ci/run` starts (skipped without
one): the scenarios of `tests.statescenarios` checked against fresh lists at
their checkpoints, a burst of 300 short calls with syncs in the middle, a
dropped connection mid-call, and (on a private server this test starts and
stops) an Asterisk restart.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet import task
from twisted.internet.defer import DeferredList
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from tests.realpbx import (
    SKIP,
    USERS,
    connect_user,
    free_port,
    unique_tag,
    wait_for,
    with_timeout,
)
from tests.statefake import Log
from tests.statescenarios import SCENARIOS, Ctx
from txami import AMIError, OriginateError, PBXState, connect
from txami.state.sync import GONE_DISCONNECTED, GONE_NOT_LISTED, GONE_RESTART

reactor: Any = _reactor
ASTERISK = Path(__file__).resolve().parent.parent.parent / "shared" / "asterisk"


class StateTestCase(TestCase):
    """A model over a factory of the real server, and a driver connection."""

    skip = SKIP
    timeout = 60

    async def open(self, tag: str | None = None) -> Ctx:
        self.driver = await connect_user(reactor, events="call")
        self.addCleanup(self.driver.stop)
        self.tag = tag or unique_tag("8")
        factory = await connect_user(reactor, keepalive=None)
        self.addCleanup(factory.stop)
        self.state = PBXState(factory)
        self.addCleanup(self.state.stop)
        self.log = Log()
        self.state.add_listener(self.log)
        ctx = Ctx(reactor, self.state, self.driver, self.tag, recording=False)
        self.addCleanup(ctx.cleanup)
        return ctx

    def assert_each_once(self, log: Log, ctx: Ctx) -> None:
        """Each of this run's channels was new once and gone once, in that order."""
        new = Counter(c.uniqueid for c in log.names("channel_new") if ctx.mine(c))
        gone = Counter(c.uniqueid for c, _ in log.of("channel_gone") if ctx.mine(c))
        self.assertEqual(max(new.values(), default=1), 1)
        self.assertEqual(max(gone.values(), default=1), 1)
        self.assertEqual(set(gone) - set(new), set())


def _scenario_test(name: str) -> Any:
    doc, run, before = SCENARIOS[name]

    async def test(self: StateTestCase) -> None:
        ctx = await self.open()
        if before is not None:
            await before(ctx)
        await with_timeout(reactor, self.state.start(), 15, "the first sync")
        await run(ctx)
        await ctx.checkpoint("the end")
        self.assertEqual(dict(self.state.limits), {})
        self.assert_each_once(self.log, ctx)

    test.__name__ = f"test_{name}"
    test.__doc__ = f"The model agrees with fresh lists throughout: {doc}."
    return test


class ScenarioTests(StateTestCase):
    """Every scenario, checked at its checkpoints against what Asterisk lists."""


for _name in SCENARIOS:
    setattr(ScenarioTests, f"test_{_name}", _scenario_test(_name))


class BurstTests(StateTestCase):
    """Many short calls while models sync and re-sync."""

    timeout = 90

    async def test_burst_of_300_calls(self) -> None:
        """300 calls to 1003; one model re-syncs mid-burst, another starts mid-burst."""
        ctx = await self.open()
        await self.state.start()
        late_factory = await connect_user(reactor, keepalive=None)
        self.addCleanup(late_factory.stop)
        late = PBXState(late_factory)
        self.addCleanup(late.stop)
        late_log = Log()
        late.add_listener(late_log)
        calls = []
        for n in range(300):
            # Paced (a call every 10 ms, so the burst lasts some 3 s), not a wait for anything.
            await task.deferLater(reactor, 0.01, lambda: None)
            calls.append(
                self.driver.originate(
                    "Local/1003@txami-test",
                    application="Wait",
                    data="5",
                    caller_id=f"<{self.tag}>",
                    account=self.tag,
                    async_=True,
                    action_timeout=60,
                )
            )
            if n == 150:
                # Mid-burst: the first model loses its connection (it re-syncs on
                # reconnecting) and a second model starts from nothing.
                protocol = self.state._session_protocol
                protocol.transport.abortConnection()
                started = late.start()
        results = await DeferredList(calls, consumeErrors=True)
        failed = [r for ok, r in results if not ok and not r.check(OriginateError)]
        self.assertEqual(failed, [])
        await with_timeout(reactor, started, 30, "the late model's sync")
        await with_timeout(reactor, self.state.when_synced(), 30, "the re-sync")
        await ctx.wait(lambda: not ctx.channels(), "the first model empty", timeout=30)
        await wait_for(
            reactor,
            lambda: not [c for c in late.channels.values() if ctx.mine(c)],
            timeout=30,
            what="the late model empty",
        )
        await ctx.checkpoint("after the burst")
        for log in (self.log, late_log):
            seen = [c for c in log.names("channel_new") if ctx.mine(c)]
            self.assertGreater(len(seen), 100)
            self.assert_each_once(log, ctx)
            reasons = {why for c, why in log.of("channel_gone") if ctx.mine(c)}
            self.assertLessEqual(reasons, {"hangup", GONE_DISCONNECTED, GONE_NOT_LISTED})
        self.assertEqual(self.log.names("synced"), [False, True])
        self.assertEqual(late_log.names("synced"), [False])


class DroppedConnectionTests(StateTestCase):
    """Calls that end while the model is disconnected are reported gone; survivors stay."""

    async def test_dropped_connection_mid_call(self) -> None:
        """One call hangs up during the outage, the other keeps its objects."""
        ctx = await self.open()
        await self.state.start()
        await ctx.originate("1000")
        await ctx.originate("1010")

        def sizes() -> list[int]:
            return sorted(Counter(c.call for c in ctx.channels()).values())

        await ctx.wait(lambda: sizes() == [2, 4], "the lone call and the bridged pair")
        by_call = Counter(c.call for c in ctx.channels())
        (short_call,) = [call for call, size in by_call.items() if size == 2]
        short_members = [c for c in ctx.channels() if c.call is short_call]
        survivors = {c.uniqueid: c for c in ctx.channels() if c.call is not short_call}
        calls = {c.call for c in survivors.values()}
        self.log.clear()
        self.state._session_protocol.transport.abortConnection()
        with contextlib.suppress(AMIError):
            await self.driver.hangup(short_members[0].name)  # its Local half goes with it
        await with_timeout(reactor, self.state.when_synced(), 20, "the re-sync")
        gone = sorted((c.uniqueid, why) for c, why in self.log.of("channel_gone"))
        self.assertEqual(gone, sorted((c.uniqueid, GONE_DISCONNECTED) for c in short_members))
        self.assertEqual([c for c in self.log.names("channel_new") if ctx.mine(c)], [])
        for uniqueid, channel in survivors.items():
            self.assertIs(self.state.channels[uniqueid], channel)
        self.assertEqual({c.call for c in survivors.values()}, calls)
        self.assertEqual([c for c, _ in self.log.of("call_ended")], [short_call])
        await ctx.checkpoint("after the reconnect")
        await ctx.hang_up()


class RestartTests(TestCase):
    """An Asterisk restart, on a private server this test starts and stops."""

    skip = SKIP or (
        None
        if (ASTERISK / "start").exists()
        else "restarts a private Asterisk of its own: needs ../shared/asterisk/start "
        "beside the checkout (as in CI)"
    )
    timeout = 120

    async def server(self, command: str) -> None:
        env = {
            **os.environ,
            "TXAMI_AMI_PORT": str(self.port),
            "TXAMI_AMI_TLS_PORT": str(self.tls_port),
            "TXAMI_IAX_PORT": str(self.iax_port),
        }
        out, err, code = await getProcessOutputAndValue(
            str(ASTERISK / command), [self.root], env=env
        )
        self.assertEqual(code, 0, (out + err).decode(errors="replace"))

    async def test_restart(self) -> None:
        """Everything known before the restart ends 'asterisk restarted', reused ids too."""
        self.root = tempfile.mkdtemp(prefix="txami-state-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.port, self.tls_port, self.iax_port = (
            free_port(),
            free_port(),
            free_port(socket.SOCK_DGRAM),
        )
        await self.server("start")
        self.addCleanup(self.server, "stop")
        factory = await connect(
            reactor,
            "127.0.0.1",
            self.port,
            username="admin",
            secret=USERS["admin"],
            keepalive=None,
            initial_delay=0.2,
            max_delay=0.5,
        )
        self.addCleanup(factory.stop)
        state = PBXState(factory)
        self.addCleanup(state.stop)
        log = Log()
        state.add_listener(log)
        await with_timeout(reactor, state.start(), 15, "the first sync")
        # `start` returns once AMI listens, which is before Asterisk has
        # booted: a PBX that has been running is what this test restarts.
        await wait_for(
            reactor, lambda: state._sync._booted_this_session, timeout=30, what="FullyBooted"
        )

        async def call() -> None:
            # Assigned ChannelIds: the same Uniqueids come back after the restart.
            await factory.send_action(
                "Originate",
                Channel="Local/1000@txami-test",
                Application="Wait",
                Data="300",
                ChannelId="txami-restart-1",
                OtherChannelId="txami-restart-2",
            )
            await wait_for(reactor, lambda: "txami-restart-2" in state.channels, what="the call")

        await call()
        before = state.channels["txami-restart-1"]
        old_call = before.call
        # A crash, so that no Hangup reaches the model: it learns of the restart
        # only when it reconnects (a clean stop would hang the calls up first).
        pid = int((Path(self.root) / "run" / "asterisk.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        await wait_for(reactor, lambda: not state.synced, what="the connection lost")
        await self.server("start")
        await wait_for(
            reactor,
            lambda: state.synced and before.hangup_cause is not None,
            timeout=30,
            what="the re-sync",
        )
        # The new server may have been booting at the re-sync: the model
        # syncs again when it has booted, and then sees everything.
        await wait_for(
            reactor,
            lambda: state._sync._booted_this_session and state.synced and not state.limits,
            timeout=30,
            what="a sync of the booted server",
        )
        await call()
        after = state.channels["txami-restart-1"]
        self.assertIsNot(after, before)
        self.assertEqual(before.hangup_cause, 0)
        reasons = {why for c, why in log.of("channel_gone") if c is before}
        self.assertEqual(reasons, {GONE_RESTART})
        self.assertIn((old_call, GONE_RESTART), log.of("call_ended"))
        synced = log.names("synced")
        self.assertEqual((synced[0], set(synced[1:])), (False, {True}))
