"""
The fake's call model against the real Asterisk: each ``tests/data/scenario-*``
capture (recorded by ``tests/record_scenarios.py`` from ../shared/asterisk;
see each ``.md``) is replayed into a `FakeAsterisk` at the capture's times, and
the fake's answers and events are compared with the real server's, entity by
entity (`assertMatchesByEntity` in test_testing_captures.py).

What the fake does not model is listed in each test's `ScenarioSpec`, with
the reason.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.test_testing_captures import CaptureTestCase, ScenarioSpec, messages, raw_file, read
from txami.testing import FakeAsterisk

#: Events the fake does not raise in any scenario.
NOT_MODELLED = frozenset({"DTMFBegin", "DTMFEnd"})
#: List items that Asterisk sends in hash order, compared sorted by these headers.
HASH_ORDER = {
    "CoreShowChannel": "Channel",
    "BridgeListItem": "BridgeUniqueid",
    "BridgeInfoChannel": "Channel",
    "DeviceStateChange": "Device",
    "QueueMember": "Location",
    "ConfbridgeList": "Channel",
}


def capture_bridge_ids(scenario: str) -> Callable[[FakeAsterisk], None]:
    """
    Set up the fake to give its bridges the capture's BridgeUniqueids, in the
    order the capture created them, so that actions naming a bridge
    (BridgeInfo) name the fake's too.
    """
    _, blocks = messages(read(raw_file(scenario, "main")))
    ids = [dict(b)["BridgeUniqueid"] for b in blocks if b[0] == ("Event", "BridgeCreate")]

    def setup(fake: FakeAsterisk) -> None:
        source = iter(ids)
        fake.pbx.bridge_id_source = lambda: next(source)

    return setup


def restored_custom_states(fake: FakeAsterisk) -> None:
    """The recording server had set Custom:txami2001-2003 before: its AstDB restored them."""
    for device in ("Custom:txami2001", "Custom:txami2002", "Custom:txami2003"):
        fake.pbx.device_states[device] = "NOT_INUSE"


def spec(**kwargs: object) -> ScenarioSpec:
    base = ScenarioSpec(skip=NOT_MODELLED, sort=dict(HASH_ORDER))
    for key, value in kwargs.items():
        setattr(base, key, value)
    return base


class BridgeScenarioTests(CaptureTestCase):
    """Bridges, Dial, Local pairs and hangups of bridged channels."""

    def test_bridge(self) -> None:
        """1010's bridged pair: events per channel, CoreShowChannels, BridgeList/Info, Hangup."""
        replayer = self.replay_capture("scenario-bridge", capture_bridge_ids("scenario-bridge"))
        self.assertMatchesByEntity(replayer, "scenario-bridge", spec())

    def test_localopt(self) -> None:
        """1011 -> Local/1012 (optimisable) -> 1013: LocalOptimizationBegin/End, SwapUniqueid."""
        replayer = self.replay_capture("scenario-localopt")
        self.assertMatchesByEntity(replayer, "scenario-localopt", spec())

    def test_blindxfer(self) -> None:
        """BlindTransfer of 1010's bridged pair: the far leg runs 1002, the transferer goes on."""
        replayer = self.replay_capture("scenario-blindxfer")
        self.assertMatchesByEntity(replayer, "scenario-blindxfer", spec())

    def test_atxfer(self) -> None:
        """Atxfer to 2000, completed by the transferer's hangup: BridgeMerge, AttendedTransfer."""
        replayer = self.replay_capture("scenario-atxfer")
        self.assertMatchesByEntity(replayer, "scenario-atxfer", spec())


class QueueScenarioTests(CaptureTestCase):
    """Queue 600: paused members, an abandoned caller, an answered one, QueueAdd/Remove."""

    def test_queue(self) -> None:
        """The queue scenario: events per channel and member, QueueStatus/QueueSummary rows."""
        replayer = self.replay_capture("scenario-queue")
        self.assertMatchesByEntity(replayer, "scenario-queue", spec())


class ConferenceScenarioTests(CaptureTestCase):
    """ConfBridge 680 and parking."""

    def test_confbridge(self) -> None:
        """A bridged pair redirected into ConfBridge 680, then each leg hung up."""
        replayer = self.replay_capture(
            "scenario-confbridge", capture_bridge_ids("scenario-confbridge")
        )
        self.assertMatchesByEntity(replayer, "scenario-confbridge", spec())

    def test_park(self) -> None:
        """Park and pick up from 7001; park and time out; park and give up."""
        replayer = self.replay_capture("scenario-park")
        self.assertMatchesByEntity(replayer, "scenario-park", spec())


class StateScenarioTests(CaptureTestCase):
    """Device, hint and presence states and their lists."""

    def test_states(self) -> None:
        """DEVICE_STATE and PRESENCE_STATE changes, ExtensionStatus, the three state lists."""
        replayer = self.replay_capture("scenario-states", restored_custom_states)
        self.assertMatchesByEntity(replayer, "scenario-states", spec())
