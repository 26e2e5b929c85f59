"""
The fake PBX against the real Asterisk of this run, live (skipped without one).

The same scenario, written once with txami's client, runs against the real
server that `.ci/run` starts and against a `FakeAsterisk` on 127.0.0.1; the
events each sends about the scenario's own call are compared entity by
entity (channels and bridges), as the same *set* of events with the same
headers.  The order of each entity's events is checked offline against four
recordings (test_testing_scenarios.py): one live run shows only one of the
orders Asterisk's threads may give.

The real server is shared by every test of the run, so names that depend on
what ran before are normalised: a channel's sequence number becomes its rank
among this scenario's channels, Uniqueids their channel's name, BridgeUniqueids
their members; the caller ID is a unique tag.  Device states and queue member
events, which other tests' calls also move, are not compared here.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.trial.unittest import TestCase

from tests.realpbx import SKIP, connect_user, unique_tag, wait_for
from tests.test_testing_captures import Pairs, ScenarioSpec, Shaped, by_entity, describe
from txami import AMIFactory, Message, connect
from txami.testing import FakeAsterisk, listen

reactor: Any = _reactor

_SEQUENCE = re.compile(r"-([0-9a-f]{8})(?=;|$|,)")


class Recording:
    """The events a connection gets about one call (its Linkedid), as header pairs."""

    def __init__(self, factory: AMIFactory, tag: str) -> None:
        self.tag = tag
        self.blocks: list[Pairs] = []
        self.linkedid: str | None = None
        self.ours: set[str] = set()
        self.bridges: set[str] = set()
        factory.add_event_handler("*", self.on_event)

    def on_event(self, event: Message) -> None:
        pairs = [(k, v) for k, v in event]
        headers = dict(pairs)
        if event.name == "NewCallerid" and headers.get("CallerIDNum") == self.tag:
            self.linkedid = self.linkedid or headers.get("Linkedid")
        if event.name == "OriginateResponse" or event.name.startswith("DeviceState"):
            return
        linked = {v for k, v in pairs if k.endswith("Linkedid")}
        if self.linkedid in linked or headers.get("Uniqueid") in self.ours:
            self.ours.update(v for k, v in pairs if k.endswith("Uniqueid") and "Bridge" not in k)
            if "BridgeUniqueid" in headers:
                self.bridges.add(headers["BridgeUniqueid"])
            self.blocks.append(pairs)
        elif headers.get("BridgeUniqueid") in self.bridges and "Channel" not in headers:
            self.blocks.append(pairs)  # BridgeDestroy of our bridge
        elif event.name == "BridgeCreate":
            self.blocks.append(pairs)  # kept if one of our channels enters it

    def hung_up(self) -> int:
        return sum(1 for b in self.blocks if b[0] == ("Event", "Hangup"))

    def normalised(self) -> list[Pairs]:
        """The blocks with channel sequence numbers ranked and the tag fixed."""
        ranks: dict[str, str] = {}

        def rank(match: re.Match[str]) -> str:
            return "-#" + ranks.setdefault(match.group(1), str(len(ranks)))

        blocks = []
        for pairs in self.blocks:
            if pairs[0] == ("Event", "BridgeCreate") and pairs[1][1] not in self.bridges:
                continue
            blocks.append(
                [
                    (k, _SEQUENCE.sub(rank, v).replace(self.tag, "TAG"))
                    for k, v in pairs
                    if k not in ("Privilege",)
                ]
            )
        return blocks


async def bridge_scenario(factory: AMIFactory, tag: str) -> Recording:
    """1010's bridged pair, then the bridged far leg hung up; waits for every Hangup."""
    recording = Recording(factory, tag)
    await factory.originate(
        "Local/1010@txami-test",
        application="Echo",
        data="",
        caller_id=f'"Live Test" <{tag}>',
        async_=True,
    )

    def settled() -> bool:
        # Both legs in the bridge and the far one in its Wait(): before that
        # the hangup would race the far leg's dialplan.
        names = [dict(b).get("Application") for b in recording.blocks]
        entered = sum(1 for b in recording.blocks if b[0] == ("Event", "BridgeEnter"))
        return entered >= 2 and "Wait" in names

    await wait_for(reactor, settled, what="the bridge")
    [far] = [
        dict(b)["Channel"]
        for b in recording.blocks
        if b[0] == ("Event", "BridgeEnter") and dict(b)["Channel"].startswith("Local/1000@")
    ]
    await factory.hangup(far)
    await wait_for(reactor, lambda: recording.hung_up() >= 4, what="four Hangups")
    return recording


def by_channel_and_bridge(recording: Recording) -> dict[str, list[Shaped]]:
    _, grouped = by_entity(recording.normalised(), ScenarioSpec(skip=frozenset({"DTMFEnd"})))
    return {k: v for k, v in grouped.items() if k.startswith(("channel ", "bridge["))}


class LiveScenarioTests(TestCase):
    """A scenario run on the real Asterisk and on the fake gives the same events."""

    skip = SKIP
    timeout = 60

    async def test_bridged_call_and_hangup(self) -> None:
        """1010's bridged pair and the hangup of its far leg: the same events, entity by entity."""
        tag = unique_tag("77")
        real = await connect_user(reactor)
        self.addCleanup(real.stop)
        real_run = await bridge_scenario(real, tag)

        fake = FakeAsterisk(reactor)
        self.addCleanup(fake.stop)
        port = listen(fake, reactor)
        self.addCleanup(port.stopListening)
        client = await connect(
            reactor, "127.0.0.1", port.getHost().port, username="admin", secret="adminsecret"
        )
        self.addCleanup(client.stop)
        fake_run = await bridge_scenario(client, tag)

        want, got = by_channel_and_bridge(real_run), by_channel_and_bridge(fake_run)
        self.assertEqual(sorted(got), sorted(want))
        self.assertEqual(
            (
                sum(e.startswith("channel ") for e in want),
                sum(e.startswith("bridge[") for e in want),
            ),
            (4, 1),
            sorted(want),
        )
        for entity in want:
            missing = Counter(want[entity]) - Counter(got[entity])
            extra = Counter(got[entity]) - Counter(want[entity])
            self.assertEqual(
                (list(missing), list(extra)),
                ([], []),
                f"{entity}: real-only {[describe(e) for e in missing]}, "
                f"fake-only {[describe(e) for e in extra]}",
            )
