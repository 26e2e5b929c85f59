"""
Record the captures of ``tests/data/state-*.raw`` from a real Asterisk.

Usage (with the server of ``../shared/asterisk`` running and its ``env``
evaluated)::

    python -m tests.statecapture NAME [NAME ...]     # or: all

For each scenario, a *main* connection (user admin, events on) logs in and
runs a `PBXState` over it, recording every byte it receives
(``state-NAME.raw``) and sends (``state-NAME.sent.raw``); a *driver*
connection (events off) makes the calls.  At the end the tool compares the
model with fresh ``CoreShowChannels`` and ``BridgeList`` answers (of the
driver) and prints the comparison, which the ``.md`` notes quote.  The
replay tests (`tests.test_state_replay`) feed the ``.raw`` files back to a
`PBXState` and compare its snapshot with ``state-NAME.json``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet.protocol import ClientCreator

from tests.realpbx import address, unique_tag, wait_for
from txami import AMIFactory, AMIProtocol, OriginateError, PBXState, connect

DATA = Path(__file__).resolve().parent / "data"
#: The UserEvent that marks a checkpoint in a capture.
MARK = "TxamiStateCheckpoint"


class RecordingProtocol(AMIProtocol):
    """An `AMIProtocol` that keeps every byte it reads and writes."""

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self.received = bytearray()
        self.sent = bytearray()

    def connectionMade(self) -> None:
        write = self.transport.write  # type: ignore[union-attr]

        def recording_write(data: bytes) -> None:
            self.sent += data
            write(data)

        self.transport.write = recording_write  # type: ignore[union-attr,method-assign]
        super().connectionMade()

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        super().dataReceived(data)


Scenario = Callable[[Any, PBXState, AMIFactory, str], Awaitable[None]]
SCENARIOS: dict[str, tuple[str, Scenario, Scenario | None]] = {}


def scenario(
    name: str, doc: str, before: Scenario | None = None
) -> Callable[[Scenario], Scenario]:
    """Register a scenario: ``before`` runs on the driver before the main connection syncs."""

    def register(run: Scenario) -> Scenario:
        SCENARIOS[name] = (doc, run, before)
        return run

    return register


def channels_named(state: PBXState, text: str) -> bool:
    """Whether a channel's name holds ``text`` (wait conditions must be booleans)."""
    return any(text in c.name for c in state.channels.values())


async def settle(reactor: Any, state: PBXState, seconds: float = 0.6) -> None:
    """Let the server finish what it is doing (events trail the actions)."""
    await task.deferLater(reactor, seconds, lambda: None)


async def hang_up(reactor: Any, driver: AMIFactory, state: PBXState, tag: str) -> None:
    """Hang up every channel of this run (tagged in its name or caller ID) and wait."""
    for channel in list(state.channels.values()):
        if tag in (channel.caller_id_num + channel.connected_line_num + channel.name):
            try:
                await driver.hangup(channel.name)
            except Exception:
                pass
    await wait_for(
        reactor,
        lambda: (
            not [
                c
                for c in state.channels.values()
                if tag in (c.caller_id_num + c.connected_line_num)
            ]
        ),
        timeout=10,
        what="tagged channels gone",
    )


async def originate(driver: AMIFactory, exten: str, tag: str, **extra: Any) -> None:
    await driver.originate(
        f"Local/{exten}@txami-test",
        application="Wait",
        data="30",
        caller_id=f'"{tag}" <{tag}>',
        async_=True,
        **extra,
    )


#: The results of the checkpoints of the scenario being recorded.
CHECKS: list[str] = []


async def checkpoint(state: PBXState, driver: AMIFactory, tag: str, what: str) -> None:
    """Compare the model with fresh lists now, and note the outcome."""
    problems = await compare(state, driver, tag)
    # Mark the spot in the main connection's stream: replays snapshot the model there.
    await driver.user_event(MARK, Checkpoint=what)
    mine = [c for c in state.channels.values() if tag in c.caller_id_num + c.connected_line_num]
    calls = {c.call.id for c in mine if c.call is not None}
    CHECKS.append(
        f"{what}: {len(mine)} channels in {len(calls)} call(s); "
        + ("model and lists agree" if not problems else "; ".join(problems))
    )


# --- scenarios ---------------------------------------------------------------------------------


async def _start_1000(reactor: Any, state: Any, driver: AMIFactory, tag: str) -> None:
    await originate(driver, "1000", tag)
    await task.deferLater(reactor, 0.5, lambda: None)


@scenario(
    "originate",
    "a call to 1000 already up when the main connection syncs; then a call to 1002 "
    "(answers, waits 1 s, hangs up); then the 1000 call is hung up",
    before=_start_1000,
)
async def _originate(reactor: Any, state: PBXState, driver: AMIFactory, tag: str) -> None:
    await checkpoint(state, driver, tag, "after the sync")
    await originate(driver, "1002", tag)
    await wait_for(reactor, lambda: channels_named(state, "1002@"), what="1002 up")
    await checkpoint(state, driver, tag, "1002 up")
    await wait_for(reactor, lambda: not channels_named(state, "1002@"), what="1002 gone")
    await hang_up(reactor, driver, state, tag)


async def _start_1010(reactor: Any, state: Any, driver: AMIFactory, tag: str) -> None:
    await originate(driver, "1010", tag)
    await task.deferLater(reactor, 1.0, lambda: None)


@scenario(
    "bridged",
    "a bridged pair of 1010 (Local/1010 dials Local/1000/n) up at sync, a second one "
    "made after it, then both hung up",
    before=_start_1010,
)
async def _bridged(reactor: Any, state: PBXState, driver: AMIFactory, tag: str) -> None:
    await originate(driver, "1010", tag + "b")
    await wait_for(reactor, lambda: len(state.bridges) >= 2, what="two bridges")
    await settle(reactor, state)
    await checkpoint(state, driver, tag, "two bridged pairs")
    await hang_up(reactor, driver, state, tag)


@scenario(
    "optimize",
    "1011 dials Local/1012 without /n; 1012 dials Local/1013/n (music on hold): the "
    "Local/1012 pair optimises itself away (LocalOptimizationBegin/End, SwapUniqueid)",
)
async def _optimize(reactor: Any, state: PBXState, driver: AMIFactory, tag: str) -> None:
    await originate(driver, "1011", tag)
    await wait_for(reactor, lambda: channels_named(state, "1013@"), what="1013 up")
    await wait_for(
        reactor,
        lambda: channels_named(state, "1013@") and not channels_named(state, "1012@"),
        what="Local/1012 optimised away",
    )
    await settle(reactor, state)
    await checkpoint(state, driver, tag, "optimised")
    await hang_up(reactor, driver, state, tag)


@scenario(
    "queue",
    "both members of queue support paused (reason 'lunch'); a caller enters queue 600; "
    "Agent One is unpaused and answers; the call is hung up; Agent Two is unpaused",
)
async def _queue(reactor: Any, state: PBXState, driver: AMIFactory, tag: str) -> None:
    members = ("Local/1000@txami-test/n", "Local/1001@txami-test/n")
    for member in members:
        await driver.send_action(
            "QueuePause", Queue="support", Interface=member, Paused="true", Reason="lunch"
        )
    await originate(driver, "600", tag)
    await wait_for(reactor, lambda: bool(state.queues["support"].entries), what="caller waits")
    await settle(reactor, state, 1.0)
    await checkpoint(state, driver, tag, "caller waiting")
    await driver.send_action("QueuePause", Queue="support", Interface=members[0], Paused="false")
    await wait_for(reactor, lambda: not state.queues["support"].entries, what="caller answered")
    await settle(reactor, state, 1.0)
    await checkpoint(state, driver, tag, "answered by Agent One")
    await hang_up(reactor, driver, state, tag)
    await driver.send_action("QueuePause", Queue="support", Interface=members[1], Paused="false")
    await wait_for(
        reactor,
        lambda: all(m.status == 1 for m in state.queues["support"].members.values()),
        what="members idle",
    )
    await settle(reactor, state)


def _peer(state: PBXState, exten: str, tag: str, half: str) -> str:
    found = [
        c.name
        for c in state.channels.values()
        if c.name.startswith(f"Local/{exten}@")
        and c.name.endswith(half)
        and tag in (c.caller_id_num + c.connected_line_num)
    ]
    return found[0]


async def _pair(reactor: Any, state: PBXState, driver: AMIFactory, tag: str, **extra: Any) -> None:
    await originate(driver, "1010", tag, **extra)
    await wait_for(
        reactor,
        lambda: any(
            len(b.channels) == 2
            and tag in b.channels[0].caller_id_num + b.channels[0].connected_line_num
            for b in state.bridges.values()
        ),
        what="bridged pair",
    )
    await settle(reactor, state, 0.3)


@scenario("conference", "a bridged pair of 1010 redirected together into ConfBridge 680")
async def _conference(reactor: Any, state: PBXState, driver: AMIFactory, tag: str) -> None:
    await _pair(reactor, state, driver, tag)
    caller = _peer(state, "1010", tag, ";2")
    callee = _peer(state, "1000", tag, ";1")
    await driver.redirect(caller, "680", "txami-test", 1, callee, "680", "txami-test", 1)
    await wait_for(
        reactor,
        lambda: any(
            b.technology == "softmix" and len(b.channels) == 2 for b in state.bridges.values()
        ),
        what="both in the conference",
    )
    await settle(reactor, state)
    await checkpoint(state, driver, tag, "in the conference")
    await hang_up(reactor, driver, state, tag)


@scenario(
    "blindxfer",
    "a bridged pair of 1010; BlindTransfer of Local/1010;2 sends its peer to 1001 (Echo)",
)
async def _blind(reactor: Any, state: PBXState, driver: AMIFactory, tag: str) -> None:
    await _pair(reactor, state, driver, tag)
    transferer = _peer(state, "1010", tag, ";2")
    await driver.send_action(
        "BlindTransfer", Channel=transferer, Exten="1001", Context="txami-test"
    )
    await wait_for(reactor, lambda: not channels_named(state, "1010@"), what="transferer gone")
    await settle(reactor, state)
    await checkpoint(state, driver, tag, "transferred")
    await hang_up(reactor, driver, state, tag)


@scenario(
    "atxfer",
    "a bridged pair of 1010 (BRIDGE_FEATURES=T, no transfer prompt); Atxfer of "
    "Local/1010;2 to 1001, then the transferer hangs up: the target joins the transferee",
)
async def _atxfer(reactor: Any, state: PBXState, driver: AMIFactory, tag: str) -> None:
    await _pair(reactor, state, driver, tag, variables={"__BRIDGE_FEATURES": "T"})
    transferer = _peer(state, "1010", tag, ";2")
    await driver.set_var("FEATURE(transferannouncesound)", "", transferer)
    await driver.send_action("Atxfer", Channel=transferer, Exten="1001", Context="txami-test")
    await wait_for(reactor, lambda: channels_named(state, "1001@"), what="target dialled")
    await settle(reactor, state, 1.0)
    await checkpoint(state, driver, tag, "consulting the target")
    await driver.hangup(transferer)
    await wait_for(reactor, lambda: not channels_named(state, "1010@"), what="transferer gone")
    await settle(reactor, state)
    await checkpoint(state, driver, tag, "transferred")
    await hang_up(reactor, driver, state, tag)


@scenario(
    "park",
    "a bridged pair of 1010; the callee (Local/1000;1) is parked with Park (space 7001), "
    "then picked up by a call to 7001@parkedcalls",
)
async def _park(reactor: Any, state: PBXState, driver: AMIFactory, tag: str) -> None:
    await _pair(reactor, state, driver, tag)
    callee = _peer(state, "1000", tag, ";1")
    caller = _peer(state, "1010", tag, ";2")
    await driver.send_action("Park", Channel=callee, TimeoutChannel=caller)
    await wait_for(
        reactor,
        lambda: any(b.type == "parking" and b.channels for b in state.bridges.values()),
        what="parked",
    )
    await settle(reactor, state)
    await checkpoint(state, driver, tag, "parked")
    await driver.originate(
        "Local/7001@parkedcalls",
        application="Wait",
        data="30",
        caller_id=f'"{tag}" <{tag}>',
        async_=True,
    )
    await wait_for(
        reactor,
        lambda: not any(b.type == "parking" and b.channels for b in state.bridges.values()),
        what="picked up",
    )
    await settle(reactor, state)
    await checkpoint(state, driver, tag, "picked up")
    await hang_up(reactor, driver, state, tag)


@scenario(
    "devices",
    "custom device states changed with Setvar DEVICE_STATE(...) (hints 2000 and 2002 follow), "
    "a call to 2099 that sets Custom:txami2000 INUSE, then everything set back",
)
async def _devices(reactor: Any, state: PBXState, driver: AMIFactory, tag: str) -> None:
    await driver.set_var("DEVICE_STATE(Custom:txami2001)", "BUSY")
    await driver.set_var("DEVICE_STATE(Custom:txami2002)", "RINGING")
    await wait_for(
        reactor, lambda: state.hints[("2002", "txami-test")].status == 8, what="ringing"
    )
    try:
        # 2099 sets the device state and hangs up unanswered: the originate "fails".
        await driver.originate(
            "Local/2099@txami-test", application="Wait", data="1", caller_id=f"<{tag}>", async_=True
        )
    except OriginateError:
        pass
    await wait_for(
        reactor, lambda: state.devices["Custom:txami2000"].state == "INUSE", what="2000 in use"
    )
    await settle(reactor, state)
    for device in ("txami2000", "txami2001", "txami2002"):
        await driver.set_var(f"DEVICE_STATE(Custom:{device})", "NOT_INUSE")
    await wait_for(
        reactor, lambda: state.hints[("2002", "txami-test")].status == 0, what="idle again"
    )
    await wait_for(reactor, lambda: not channels_named(state, "2099@"), what="2099 gone")
    await settle(reactor, state)


# --- running -----------------------------------------------------------------------------------


async def compare(state: PBXState, driver: AMIFactory, tag: str) -> list[str]:
    """Differences between the model and fresh lists, for the tagged channels only."""
    problems = []
    rows = await driver.core_show_channels()
    listed = {
        r["Uniqueid"]: r
        for r in rows
        if tag in (r.get("CallerIDNum", "") + r.get("ConnectedLineNum", ""))
    }
    mine = {
        u: c for u, c in state.channels.items() if tag in (c.caller_id_num + c.connected_line_num)
    }
    if set(listed) != set(mine):
        problems.append(f"channels differ: listed {sorted(listed)} model {sorted(mine)}")
    for uid, row in listed.items():
        channel = mine.get(uid)
        if channel is None:
            continue
        for field, key in (("name", "Channel"), ("state", "ChannelState"), ("context", "Context")):
            if str(getattr(channel, field)) != row[key]:
                problems.append(
                    f"{uid} {field}: model {getattr(channel, field)!r} list {row[key]!r}"
                )
        bridge = channel.bridge.uniqueid if channel.bridge else ""
        if bridge != row.get("BridgeId", ""):
            problems.append(f"{uid} bridge: model {bridge!r} list {row.get('BridgeId')!r}")
    return problems


async def record(reactor: Any, name: str) -> None:
    doc, run, before = SCENARIOS[name]
    CHECKS.clear()
    host, port = address()
    driver = await connect(
        reactor, host, port, username="admin", secret="adminsecret", events="call"
    )
    tag = unique_tag("7")
    try:
        if before is not None:
            await before(reactor, None, driver, tag)
        creator = ClientCreator(reactor, RecordingProtocol, reactor)
        main: RecordingProtocol = await creator.connectTCP(host, port)
        await main.login("admin", "adminsecret")
        state = PBXState(main, clock=reactor)
        await state.start()
        await run(reactor, state, driver, tag)
        problems = await compare(state, driver, tag)
        snapshot = state.snapshot()
        await main.logoff()
        await task.deferLater(reactor, 0.2, lambda: None)
    finally:
        await driver.stop()
    (DATA / f"state-{name}.raw").write_bytes(bytes(main.received))
    (DATA / f"state-{name}.sent.raw").write_bytes(bytes(main.sent))
    print(f"state-{name}: {doc}")
    print(f"  tag {tag}; {len(main.received)} bytes received, {len(main.sent)} sent")
    print(f"  channels at the end: {len(snapshot['channels'])}, calls: {len(snapshot['calls'])}")
    for check in CHECKS:
        print("  checkpoint", check)
    print("  at the end:", "model and lists agree" if not problems else problems)


async def main(reactor: Any, *names: str) -> None:
    if not os.environ.get("TXAMI_TEST_AMI"):
        raise SystemExit("set TXAMI_TEST_AMI (eval the env script of ../shared/asterisk)")
    if not names or names == ("all",):
        names = tuple(SCENARIOS)
    for name in names:
        await record(reactor, name)


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, *sys.argv[1:])))
