"""
`PBXState` against sessions recorded from a real Asterisk 20
(``tests/data/state-*.raw``, made by `tests.statecapture`; each ``.md``
says how): replayed whole and in pieces, the model must reach exactly the
recorded snapshots (``state-*.json``) at each checkpoint and at the end, tell
its listeners about every channel exactly once, and ask what it asked then.
"""

from __future__ import annotations

import json
from collections import Counter

from twisted.trial.unittest import SynchronousTestCase

from tests.statereplay import Replay, expected_snapshot, replay_all

CAPTURES = (
    "originate",
    "bridged",
    "optimize",
    "queue",
    "conference",
    "blindxfer",
    "atxfer",
    "park",
    "devices",
)

#: The actions a sync sends, in order (the last reads the user's permissions).
SYNC_ACTIONS = [
    "CoreStatus",
    "BridgeList",
    "CoreShowChannels",
    "QueueStatus",
    "DeviceStateList",
    "ExtensionStateList",
    "PresenceStateList",
    "Command",
]


class ReplayTests(SynchronousTestCase):
    """Each capture, replayed, gives the recorded snapshots."""

    def check(self, name: str, chunk: int | None) -> Replay:
        replay, snapshots = replay_all(name, chunk)
        expected = expected_snapshot(name)
        self.assertIsNotNone(expected, f"no tests/data/state-{name}.json")
        assert expected is not None
        self.assertEqual(sorted(snapshots["checkpoints"]), sorted(expected["checkpoints"]))
        for point, snapshot in expected["checkpoints"].items():
            self.assertEqual(snapshots["checkpoints"][point], snapshot, f"{name} at {point}")
        self.assertEqual(snapshots["end"], expected["end"], f"{name} at the end")
        self.assertEqual(self.successResultOf(replay.started), replay.state)
        return replay

    def test_whole(self) -> None:
        """Fed as it came, every capture reaches its recorded snapshots."""
        for name in CAPTURES:
            self.check(name, None)

    def test_chunked(self) -> None:
        """Cut into reads of 7 and 1000 bytes, the snapshots are the same."""
        for name in CAPTURES:
            for chunk in (7, 1000):
                self.check(name, chunk)

    def test_byte_by_byte(self) -> None:
        """One byte per read (the device capture, the smallest) gives the same snapshots."""
        self.check("devices", 1)

    def test_snapshots_are_json(self) -> None:
        """Every snapshot survives a JSON round trip unchanged."""
        for name in CAPTURES:
            _, snapshots = replay_all(name)
            self.assertEqual(json.loads(json.dumps(snapshots)), snapshots)

    def test_the_sync_asks_the_lists_once(self) -> None:
        """After the login, the model sent exactly the sync's actions, once each."""
        replay = Replay("originate")
        replay.run()
        names = [m.name for m in replay.sent_actions()]
        self.assertEqual(names, ["Login", *SYNC_ACTIONS])

    def test_each_object_announced_once(self) -> None:
        """No channel, bridge or call is new twice or gone twice; gone ones stay gone."""
        for name in CAPTURES:
            replay = Replay(name)
            replay.run()
            calls = replay.recorder.calls
            for kind, new, gone in (
                ("channel", "channel_new", "channel_gone"),
                ("bridge", "bridge_new", "bridge_gone"),
            ):
                born = Counter(key for method, key, _ in calls if method == new)
                died = Counter(key for method, key, _ in calls if method == gone)
                self.assertEqual(max(born.values(), default=1), 1, f"{name}: {kind} new twice")
                self.assertEqual(max(died.values(), default=1), 1, f"{name}: {kind} gone twice")
                ended: set[str] = set()
                for method, key, _ in calls:
                    if method == gone:
                        ended.add(key)
                    elif method.startswith(kind + "_"):
                        self.assertNotIn(key, ended, f"{name}: {method} after {kind} gone")
            started = Counter(key for method, key, _ in calls if method == "call_new")
            self.assertEqual(max(started.values(), default=1), 1, f"{name}: a call id reused")

    def test_no_call_flickers(self) -> None:
        """Without transfers, until the hang-ups each call starts once and none is merged."""
        for name, calls in (("originate", 2), ("bridged", 2), ("optimize", 1), ("queue", 1)):
            replay = Replay(name)
            replay.run()
            self.assertEqual(replay.recorder.of("call_merged"), [], name)
            log = replay.recorder.calls
            first_gone = next(
                i for i, (method, _, _) in enumerate(log) if method == "channel_gone"
            )
            started = [key for method, key, _ in log[:first_gone] if method == "call_new"]
            self.assertEqual(len(started), calls, name)

    def test_everything_ends(self) -> None:
        """Every capture hangs up what it made: no channel or call is left in the model."""
        for name in CAPTURES:
            replay = Replay(name)
            state = replay.run()
            self.assertEqual(dict(state.channels), {}, name)
            self.assertEqual(dict(state.calls), {}, name)
