"""
Real-server scenarios for the state model, shared by the capture tool
(`tests.statecapture`, which records them) and the integration tests
(`tests.test_state_realpbx`, which check them).

A scenario drives the real Asterisk through a *driver* connection and waits
on the model (`Ctx.state`) for each step; at checkpoints it compares the
model with fresh list actions (``CoreShowChannels``, ``BridgeList`` and
``BridgeInfo``, ``QueueStatus``, ``DeviceStateList``,
``ExtensionStateList``) for the scenario's own tagged channels only, since
the server is shared: a checkpoint waits (with a deadline) until model and
lists agree, and fails if they never do.  Every call a scenario makes
carries its tag as account code (Asterisk copies it to every channel a
channel requests: dialled parties, Local halves, transfer targets, queue
agents), and it hangs them all up at the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import task

from tests.realpbx import wait_for
from txami import AMIFactory, OriginateError, PBXState

#: The UserEvent that marks a checkpoint in a capture.
MARK = "TxamiStateCheckpoint"
CONTEXT = "txami-test"
AGENTS = ("Local/1000@txami-test/n", "Local/1001@txami-test/n")


class Ctx:
    """One scenario run: the reactor, the model, the driver, the tag."""

    def __init__(
        self, reactor: Any, state: PBXState, driver: AMIFactory, tag: str, recording: bool
    ) -> None:
        self.reactor = reactor
        self.state = state
        self.driver = driver
        self.tag = tag
        #: Recording a capture: pause so that trailing events land in it too.
        self.recording = recording
        #: One line per checkpoint.
        self.checks: list[str] = []

    def mine(self, channel: Any) -> bool:
        """Whether a channel belongs to this run (its account code is the tag)."""
        return bool(channel.account_code == self.tag)

    def channels(self, text: str = "") -> list[Any]:
        """This run's channels whose name holds ``text``."""
        return [c for c in self.state.channels.values() if self.mine(c) and text in c.name]

    def has(self, text: str) -> bool:
        """Whether one of this run's channels has ``text`` in its name."""
        return bool(self.channels(text))

    def name_of(self, exten: str, half: str) -> str:
        """The name of this run's ``Local/<exten>`` half (``;1`` or ``;2``)."""
        (found,) = [c.name for c in self.channels(f"Local/{exten}@") if c.name.endswith(half)]
        return found

    async def wait(self, condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
        await wait_for(self.reactor, lambda: bool(condition()), timeout=timeout, what=what)

    async def settle(self, seconds: float = 0.5) -> None:
        """While recording, let trailing events arrive (tests wait on conditions only)."""
        if self.recording:
            await task.deferLater(self.reactor, seconds, lambda: None)

    async def originate(self, exten: str, **extra: Any) -> None:
        await self.driver.originate(
            f"Local/{exten}@{CONTEXT}",
            application="Wait",
            data="30",
            caller_id=f'"{self.tag}" <{self.tag}>',
            account=self.tag,
            async_=True,
            **extra,
        )

    async def hang_up(self) -> None:
        """Hang up every channel of this run and wait until the model has none."""
        for channel in self.channels():
            with contextlib.suppress(Exception):  # gone meanwhile
                await self.driver.hangup(channel.name)
        await self.wait(lambda: not self.channels(), "this run's channels gone")

    async def cleanup(self) -> None:
        """Hang up whatever the server still has of this run (after a failure too)."""
        for row in await self.driver.core_show_channels():
            if row.get("AccountCode") == self.tag:
                with contextlib.suppress(Exception):
                    await self.driver.hangup(row["Channel"])

    # --- checkpoints -------------------------------------------------------------------------

    async def checkpoint(self, what: str, queues: bool = False, devices: bool = False) -> None:
        """Wait until the model agrees with fresh lists; fail if it never does."""
        deadline = self.reactor.seconds() + 8
        while True:
            problems = await self.compare(queues, devices)
            if not problems or self.reactor.seconds() > deadline:
                break
            await task.deferLater(self.reactor, 0.1, lambda: None)
        if self.recording:
            # Mark the spot in the main connection's stream: replays snapshot the model there.
            await self.driver.user_event(MARK, Checkpoint=what)
        mine = self.channels()
        calls = {c.call.id for c in mine if c.call is not None}
        verdict = "model and lists agree" if not problems else "; ".join(problems)
        self.checks.append(f"{what}: {len(mine)} channels in {len(calls)} call(s); {verdict}")
        if problems and not self.recording:
            raise AssertionError(f"checkpoint {what!r}: {verdict}")

    async def compare(self, queues: bool = False, devices: bool = False) -> list[str]:
        """What differs between the model and fresh lists (this run's objects only)."""
        problems: list[str] = []
        driver, state = self.driver, self.state
        rows = await driver.core_show_channels()
        listed = {r["Uniqueid"]: r for r in rows if r.get("AccountCode") == self.tag}
        mine = {c.uniqueid: c for c in self.channels()}
        if set(listed) != set(mine):
            problems.append(f"channels: listed {sorted(listed)}, model {sorted(mine)}")
        bridges: set[str] = set()
        for uniqueid, row in listed.items():
            channel = mine.get(uniqueid)
            if channel is None:
                continue
            for field, key in (
                ("name", "Channel"),
                ("state", "ChannelState"),
                ("context", "Context"),
                ("exten", "Exten"),
                ("priority", "Priority"),
                ("linkedid", "Linkedid"),
            ):
                if str(getattr(channel, field)) != row[key]:
                    problems.append(
                        f"{uniqueid} {field}: model {getattr(channel, field)!r}, list {row[key]!r}"
                    )
            bridge = channel.bridge.uniqueid if channel.bridge else ""
            if bridge != row.get("BridgeId", ""):
                problems.append(
                    f"{uniqueid} bridge: model {bridge!r}, list {row.get('BridgeId')!r}"
                )
            if bridge:
                bridges.add(bridge)
        listed_bridges = {
            r["BridgeUniqueid"]: r for r in (await driver.send_action("BridgeList")).events
        }
        for bridge_id in sorted(bridges):
            model = state.bridges.get(bridge_id)
            row = listed_bridges.get(bridge_id)
            if model is None or row is None:
                problems.append(f"bridge {bridge_id}: model {model}, list {row}")
                continue
            if (model.type, model.technology) != (row["BridgeType"], row["BridgeTechnology"]):
                problems.append(f"bridge {bridge_id}: model {model.type}/{model.technology}")
            info = await driver.send_action("BridgeInfo", BridgeUniqueid=bridge_id)
            members = {r["Uniqueid"] for r in info.events}
            if members != {c.uniqueid for c in model.channels}:
                problems.append(f"bridge {bridge_id} members: list {sorted(members)}")
        if queues:
            problems += await self._compare_queue()
        if devices:
            problems += await self._compare_devices()
        return problems

    async def _compare_queue(self) -> list[str]:
        problems = []
        rows = await self.driver.queue_status("support")
        queue = self.state.queues["support"]
        for row in rows:
            if row.name == "QueueMember":
                member = queue.members.get(row["Location"])
                if member is None:
                    problems.append(f"member {row['Location']} missing")
                elif (member.status, int(member.paused), int(member.in_call)) != (
                    int(row["Status"]),
                    int(row["Paused"]),
                    int(row["InCall"]),
                ):
                    problems.append(
                        f"member {member.interface}: model "
                        f"{member.status}/{member.paused}/{member.in_call}, list "
                        f"{row['Status']}/{row['Paused']}/{row['InCall']}"
                    )
        entries = [r["Uniqueid"] for r in rows if r.name == "QueueEntry"]
        mine = [e.uniqueid for e in queue.entries]
        if entries != mine:
            problems.append(f"queue entries: list {entries}, model {mine}")
        return problems

    async def _compare_devices(self) -> list[str]:
        problems = []
        rows = (await self.driver.send_action("DeviceStateList")).events
        for row in rows:
            device = self.state.devices.get(row["Device"])
            if row["Device"].startswith("Custom:txami") and (
                device is None or device.state != row["State"]
            ):
                problems.append(f"device {row['Device']}: list {row['State']}, model {device}")
        rows = (await self.driver.send_action("ExtensionStateList")).events
        for row in rows:
            hint = self.state.hints.get((row["Exten"], row["Context"]))
            if hint is None or hint.status != int(row["Status"]):
                problems.append(f"hint {row['Exten']}: list {row['Status']}, model {hint}")
        return problems


Scenario = Callable[[Ctx], Awaitable[None]]
#: Name -> (what it does, the scenario, what runs before the model syncs).
SCENARIOS: dict[str, tuple[str, Scenario, Scenario | None]] = {}


def scenario(
    name: str, doc: str, before: Scenario | None = None
) -> Callable[[Scenario], Scenario]:
    """Register a scenario; ``before`` runs (on the driver) before the model syncs."""

    def register(run: Scenario) -> Scenario:
        SCENARIOS[name] = (doc, run, before)
        return run

    return register


async def _listed(ctx: Ctx, count: int, bridged: int = 0) -> None:
    """Wait (on the driver's lists: the model is not running yet) for this run's channels."""
    deadline = ctx.reactor.seconds() + 10
    while ctx.reactor.seconds() < deadline:
        rows = [
            r for r in await ctx.driver.core_show_channels() if r.get("AccountCode") == ctx.tag
        ]
        if len(rows) >= count and sum(1 for r in rows if r.get("BridgeId")) >= bridged:
            return
        await task.deferLater(ctx.reactor, 0.05, lambda: None)
    raise TimeoutError(f"{count} channels ({bridged} bridged) not listed within 10 s")


async def _call_up_before(ctx: Ctx) -> None:
    await ctx.originate("1000")
    await _listed(ctx, 2)


@scenario(
    "originate",
    "a call to 1000 already up when the model syncs; then a call to 1002 "
    "(answers, waits 1 s, hangs up); then the 1000 call is hung up",
    before=_call_up_before,
)
async def originate(ctx: Ctx) -> None:
    await ctx.checkpoint("after the sync")
    await ctx.originate("1002")
    await ctx.wait(lambda: ctx.has("1002@"), "1002 up")
    await ctx.checkpoint("1002 up")
    await ctx.wait(lambda: not ctx.has("1002@"), "1002 gone")
    await ctx.hang_up()


async def _pair_before(ctx: Ctx) -> None:
    await ctx.originate("1010")
    await _listed(ctx, 4, bridged=2)


@scenario(
    "bridged",
    "a bridged pair of 1010 (Local/1010 dials Local/1000/n) up at sync, a second one "
    "made after it, then both hung up",
    before=_pair_before,
)
async def bridged(ctx: Ctx) -> None:
    await ctx.originate("1010")
    await ctx.wait(
        lambda: len({c.bridge for c in ctx.channels() if c.bridge is not None}) == 2,
        "two bridges",
    )
    await ctx.settle()
    await ctx.checkpoint("two bridged pairs")
    calls = {c.call for c in ctx.channels()}
    assert len(calls) == 2, calls
    await ctx.hang_up()


@scenario(
    "optimize",
    "1011 dials Local/1012 without /n; 1012 dials Local/1013/n (music on hold): the "
    "Local/1012 pair optimises itself away (LocalOptimizationBegin/End, SwapUniqueid)",
)
async def optimize(ctx: Ctx) -> None:
    await ctx.originate("1011")
    await ctx.wait(lambda: ctx.has("1013@") and not ctx.has("1012@"), "Local/1012 optimised away")
    await ctx.settle()
    await ctx.checkpoint("optimised")
    assert len({c.call for c in ctx.channels()}) == 1
    await ctx.hang_up()


@scenario(
    "queue",
    "both members of queue support paused (reason 'lunch'); a caller enters queue 600; "
    "Agent One is unpaused and answers; the call is hung up; Agent Two is unpaused",
)
async def queue(ctx: Ctx) -> None:
    support = ctx.state.queues["support"]
    try:
        for member in AGENTS:
            await ctx.driver.send_action(
                "QueuePause", Queue="support", Interface=member, Paused="true", Reason="lunch"
            )
        await ctx.originate("600")
        await ctx.wait(
            lambda: any(e.channel is not None and ctx.mine(e.channel) for e in support.entries),
            "caller waits",
        )
        await ctx.settle(1.0)
        await ctx.checkpoint("caller waiting", queues=True)
        await ctx.driver.send_action(
            "QueuePause", Queue="support", Interface=AGENTS[0], Paused="false"
        )
        await ctx.wait(lambda: not support.entries and ctx.has("1000@"), "caller answered")
        await ctx.settle(1.0)
        await ctx.checkpoint("answered by Agent One", queues=True)
        assert len({c.call for c in ctx.channels()}) == 1
        await ctx.hang_up()
    finally:
        await ctx.driver.send_action(
            "QueuePause", Queue="support", Interface=AGENTS[1], Paused="false"
        )
        await ctx.driver.send_action(
            "QueuePause", Queue="support", Interface=AGENTS[0], Paused="false"
        )
    await ctx.wait(
        lambda: all(m.status == 1 and not m.paused for m in support.members.values()),
        "members idle",
    )
    await ctx.settle()


async def _pair(ctx: Ctx, **extra: Any) -> None:
    await ctx.originate("1010", **extra)
    await ctx.wait(
        lambda: any(c.bridge is not None and len(c.bridge.channels) == 2 for c in ctx.channels()),
        "bridged pair",
    )
    await ctx.settle(0.3)


@scenario("conference", "a bridged pair of 1010 redirected together into ConfBridge 680")
async def conference(ctx: Ctx) -> None:
    await _pair(ctx)
    caller = ctx.name_of("1010", ";2")
    callee = ctx.name_of("1000", ";1")
    await ctx.driver.redirect(caller, "680", CONTEXT, 1, callee, "680", CONTEXT, 1)
    await ctx.wait(
        lambda: any(
            c.bridge is not None
            and c.bridge.technology == "softmix"
            and len(c.bridge.channels) == 2
            for c in ctx.channels()
        ),
        "both in the conference",
    )
    await ctx.settle()
    await ctx.checkpoint("in the conference")
    assert len({c.call for c in ctx.channels()}) == 1
    await ctx.hang_up()


@scenario(
    "blindxfer",
    "a bridged pair of 1010; BlindTransfer of Local/1010;2 sends its peer to 1001 (Echo)",
)
async def blindxfer(ctx: Ctx) -> None:
    await _pair(ctx)
    transferee = ctx.state.channels[
        next(c.uniqueid for c in ctx.channels("Local/1000@") if c.name.endswith(";1"))
    ]
    call = transferee.call
    transferer = ctx.name_of("1010", ";2")
    await ctx.driver.send_action(
        "BlindTransfer", Channel=transferer, Exten="1001", Context=CONTEXT
    )
    await ctx.wait(lambda: not ctx.has("1010@") and transferee.exten == "1001", "transferred")
    await ctx.settle()
    await ctx.checkpoint("transferred")
    assert transferee.call is call, (transferee.call, call)
    await ctx.hang_up()


@scenario(
    "atxfer",
    "a bridged pair of 1010 (BRIDGE_FEATURES=T, no transfer prompt); Atxfer of "
    "Local/1010;2 to 1001, then the transferer hangs up: the target joins the transferee",
)
async def atxfer(ctx: Ctx) -> None:
    await _pair(ctx, variables={"__BRIDGE_FEATURES": "T"})
    transferer = ctx.name_of("1010", ";2")
    await ctx.driver.set_var("FEATURE(transferannouncesound)", "", transferer)
    await ctx.driver.send_action("Atxfer", Channel=transferer, Exten="1001", Context=CONTEXT)
    await ctx.wait(
        lambda: any(c.bridge is not None for c in ctx.channels("Local/1001@")), "target answered"
    )
    await ctx.settle(1.0)
    await ctx.checkpoint("consulting the target")
    await ctx.driver.hangup(transferer)
    await ctx.wait(lambda: not ctx.has("1010@"), "transferer gone")
    await ctx.wait(
        lambda: any(
            c.bridge is not None and len(c.bridge.channels) == 2
            for c in ctx.channels("Local/1001@")
        ),
        "target bridged with the transferee",
    )
    await ctx.settle()
    await ctx.checkpoint("transferred")
    assert len({c.call for c in ctx.channels()}) == 1
    await ctx.hang_up()


@scenario(
    "park",
    "a bridged pair of 1010; the callee (Local/1000;1) is parked with Park (space 7001), "
    "then picked up by a call to 7001@parkedcalls",
)
async def park(ctx: Ctx) -> None:
    await _pair(ctx)
    callee = ctx.name_of("1000", ";1")
    caller = ctx.name_of("1010", ";2")
    parked = next(c for c in ctx.channels() if c.name == callee)
    await ctx.driver.send_action("Park", Channel=callee, TimeoutChannel=caller)
    await ctx.wait(lambda: parked.bridge is not None and parked.bridge.type == "parking", "parked")
    await ctx.settle()
    await ctx.checkpoint("parked")
    await ctx.driver.originate(
        "Local/7001@parkedcalls",
        application="Wait",
        data="30",
        caller_id=f'"{ctx.tag}" <{ctx.tag}>',
        account=ctx.tag,
        async_=True,
    )
    await ctx.wait(
        lambda: parked.bridge is not None and parked.bridge.type == "basic", "picked up"
    )
    await ctx.settle()
    await ctx.checkpoint("picked up")
    assert len({c.call for c in ctx.channels()}) == 1
    await ctx.hang_up()


@scenario(
    "devices",
    "custom device states changed with Setvar DEVICE_STATE(...) (hints 2000 and 2002 follow), "
    "a call to 2099 that sets Custom:txami2000 INUSE, then everything set back",
)
async def devices(ctx: Ctx) -> None:
    state, driver = ctx.state, ctx.driver
    try:
        await driver.set_var("DEVICE_STATE(Custom:txami2001)", "BUSY")
        await driver.set_var("DEVICE_STATE(Custom:txami2002)", "RINGING")
        await ctx.wait(lambda: state.hints[("2002", CONTEXT)].status == 8, "ringing")
        # 2099 sets the device state and hangs up unanswered: the originate "fails".
        with contextlib.suppress(OriginateError):
            await driver.originate(
                "Local/2099@txami-test",
                application="Wait",
                data="1",
                caller_id=f"<{ctx.tag}>",
                account=ctx.tag,
                async_=True,
            )
        # On a fresh server Custom:txami2000 is unknown until 2099 sets it: absent is "not yet".
        await ctx.wait(
            lambda: getattr(state.devices.get("Custom:txami2000"), "state", None) == "INUSE",
            "2000 in use",
        )
        await ctx.settle()
        await ctx.checkpoint("devices changed", devices=True)
    finally:
        for device in ("txami2000", "txami2001", "txami2002"):
            await driver.set_var(f"DEVICE_STATE(Custom:{device})", "NOT_INUSE")
    await ctx.wait(lambda: state.hints[("2002", CONTEXT)].status == 0, "idle again")
    await ctx.wait(lambda: not ctx.has("2099@"), "2099 gone")
    await ctx.settle()
    await ctx.checkpoint("set back", devices=True)
