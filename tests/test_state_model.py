"""
The pieces of `txami.state`: reading snapshots from messages, the outbox
that delivers changes, tombstones, the snapshot's shape, listeners that
raise, and the public names.
"""

from __future__ import annotations

import json

from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

import txami
import txami.state
from tests.statefake import BareSession, Chan, PBXData, channel_event
from txami.message import Message
from txami.state.fields import channel_snapshot, header, text_of
from txami.state.objects import BRIDGE_FIELDS, CALL_FIELDS, CHANNEL_FIELDS
from txami.state.outbox import Outbox
from txami.state.queue import MEMBER_FIELDS, QUEUE_FIELDS
from txami.state.tombstones import Tombstones


class FieldTests(SynchronousTestCase):
    """Snapshot headers come out the same whatever the layout."""

    def test_asterisk_layout(self) -> None:
        """A received Asterisk event is read in one pass, with and without a prefix."""
        chan = Chan("1.1", "Local/x;1", caller="555")
        raw = channel_event(
            "DialBegin", chan, *[(f"Dest{k}", v) for k, v in Chan("2.2", "Local/y;1").pairs()]
        )
        message = Message.parse(raw[:-4])
        snapshot = channel_snapshot(message)
        assert snapshot is not None
        self.assertEqual((snapshot[0], snapshot[3], snapshot[12]), ("Local/x;1", "555", "1.1"))
        dest = channel_snapshot(message, "Dest")
        assert dest is not None
        self.assertEqual(dest[12], "2.2")

    def test_other_layouts(self) -> None:
        """Headers out of Asterisk's order, in other cases or missing read the same way."""
        message = Message(
            [
                ("Event", "Newstate"),
                ("uniqueid", "3.3"),
                ("CHANNEL", "Local/z;2"),
                ("ChannelState", "6"),
            ]
        )
        snapshot = channel_snapshot(message)
        assert snapshot is not None
        self.assertEqual(
            (snapshot[0], snapshot[1], snapshot[12], snapshot[13]), ("Local/z;2", "6", "3.3", "")
        )
        self.assertIsNone(channel_snapshot(Message([("Event", "Newstate")])))

    def test_asterisk_12_0(self) -> None:
        """Asterisk 12.0's snapshot (no Language, no Linkedid) still reads."""
        pairs = [
            (k, v) for k, v in Chan("4.4", "SIP/a-1").pairs() if k not in ("Language", "Linkedid")
        ]
        text = "Event: Newstate\r\n" + "".join(f"{k}: {v}\r\n" for k, v in pairs)
        snapshot = channel_snapshot(Message.parse(text.encode()))
        assert snapshot is not None
        self.assertEqual((snapshot[7], snapshot[12], snapshot[13]), ("", "4.4", ""))

    def test_header(self) -> None:
        """header() finds Asterisk's spelling in the text, else any case."""
        message = Message.parse(b"Event: X\r\nSwapUniqueid: 9\r\nother: y")
        text = text_of(message)
        self.assertEqual(header(message, "SwapUniqueid", text), "9")
        self.assertEqual(header(message, "Other", text), "y")
        self.assertIsNone(header(message, "Missing", text))


class OutboxTests(SynchronousTestCase):
    """Changes are delivered once, merged, after the model is consistent."""

    def test_updates_merge_and_new_hides_them(self) -> None:
        """Two updates of one object are one call; an object new in the flush gets none."""
        outbox = Outbox()
        seen: list[tuple[str, object]] = []

        class Listener:
            def channel_updated(self, obj: object, fields: frozenset[str]) -> None:
                seen.append(("updated", fields))

            def channel_new(self, obj: object) -> None:
                seen.append(("new", obj))

        outbox.add_listener(Listener())
        a, b = object(), object()
        outbox.updated("channel_updated", a, ["state"])
        outbox.updated("channel_updated", a, ["name"])
        outbox.new("channel_new", b)
        outbox.updated("channel_updated", b, ["state"])
        outbox.flush()
        self.assertEqual(seen, [("updated", frozenset({"state", "name"})), ("new", b)])

    def test_new_and_gone_in_one_flush(self) -> None:
        """An object that appears and goes within one flush is never announced."""
        outbox = Outbox()
        seen: list[str] = []

        class Listener:
            def call_new(self, obj: object) -> None:
                seen.append("new")

            def call_ended(self, obj: object, reason: str) -> None:
                seen.append("ended")

        outbox.add_listener(Listener())
        call = object()
        outbox.new("call_new", call)
        outbox.gone("call_ended", call, call, "hangup")
        outbox.flush()
        self.assertEqual(seen, [])

    def test_without_listeners_nothing_is_kept(self) -> None:
        """With nobody listening, recording costs nothing and keeps nothing."""
        outbox = Outbox()
        outbox.new("channel_new", object())
        outbox.updated("channel_updated", object(), ["x"])
        self.assertEqual(outbox.items, [])

    def test_a_raising_listener_is_logged(self) -> None:
        """A listener that raises is logged; the next listener still hears; the model goes on."""
        errors: list[dict[str, object]] = []
        globalLogPublisher.addObserver(errors.append)
        self.addCleanup(globalLogPublisher.removeObserver, errors.append)
        session = BareSession()
        state = txami.PBXState(session.protocol, clock=session.clock)

        class Bad(txami.StateListenerMixin):
            def channel_new(self, channel: object) -> None:
                raise RuntimeError("boom")

        heard: list[object] = []

        class Good(txami.StateListenerMixin):
            def channel_new(self, channel: object) -> None:
                heard.append(channel)

        state.add_listener(Bad())
        state.add_listener(Good())
        state.start()
        session.answer()
        session.send(channel_event("Newchannel", Chan("1.1", "Local/a;1")))
        self.assertEqual(heard, [state.channels["1.1"]])
        failures = [e for e in errors if "log_failure" in e]
        self.assertEqual(len(failures), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        session.send(channel_event("Hangup", Chan("1.1", "Local/a;1"), ("Cause", "16")))
        self.assertNotIn("1.1", state.channels)

    def test_listener_interface(self) -> None:
        """StateListenerMixin provides every IStateListener method."""
        self.assertTrue(verifyObject(txami.IStateListener, txami.StateListenerMixin()))


class TombstoneTests(SynchronousTestCase):
    """Tombstones are bounded in number and in time."""

    def test_bounded(self) -> None:
        """Past the limit the oldest go; past their time they go at the next add."""
        stones = Tombstones(10.0, 3)
        for n in range(5):
            stones.add(str(n), now=0.0)
        self.assertEqual(len(stones), 3)
        self.assertNotIn("0", stones)
        self.assertIn("4", stones)
        stones.add("later", now=11.0)
        self.assertEqual(len(stones), 1)
        self.assertIn("later", stones)

    def test_zero_keeps_none(self) -> None:
        """A limit of 0 (or 0 seconds) keeps no tombstone."""
        stones = Tombstones(0.0, 10)
        stones.add("x", 0.0)
        self.assertNotIn("x", stones)
        self.assertRaises(ValueError, Tombstones, -1.0, 1)


class SnapshotTests(SynchronousTestCase):
    """The snapshot's documented shape."""

    def test_shape(self) -> None:
        """Version 1: the documented keys, each object as its as_dict, all JSON."""
        data = PBXData()
        data.add(Chan("1.1", "Local/a@b-1;1", bridge="b1"))
        data.bridges["b1"] = "simple_bridge"
        data.devices["Custom:x"] = "INUSE"
        data.hints[("2000", "c")] = ("Custom:x", 1, "InUse")
        session = BareSession(data)
        state, _ = session.state()
        snapshot = state.snapshot()
        self.assertEqual(snapshot["version"], txami.state.SNAPSHOT_VERSION)
        self.assertEqual(snapshot["version"], 1)
        self.assertEqual(
            sorted(snapshot),
            sorted(
                [
                    "version",
                    "time",
                    "synced",
                    "server",
                    "limits",
                    "channels",
                    "bridges",
                    "calls",
                    "queues",
                    "devices",
                    "hints",
                    "presences",
                ]
            ),
        )
        self.assertEqual(list(snapshot["channels"]["1.1"]), list(CHANNEL_FIELDS))
        self.assertEqual(list(snapshot["bridges"]["b1"]), list(BRIDGE_FIELDS))
        self.assertEqual(list(snapshot["calls"]["1.1"]), list(CALL_FIELDS))
        self.assertEqual(snapshot["hints"]["2000@c"]["status"], 1)
        self.assertEqual(
            snapshot["server"], {"ami_version": "9.0.0", "startup": "2026-01-01 10:00:00"}
        )
        self.assertEqual(json.loads(json.dumps(snapshot)), snapshot)

    def test_queue_shape(self) -> None:
        """A queue's dict holds its fields, its members by interface and its entries."""
        queue = txami.Queue("q")
        queue.members["m"] = txami.QueueMember("m")
        as_dict = queue.as_dict()
        self.assertEqual(list(as_dict), [*QUEUE_FIELDS, "members", "entries"])
        self.assertEqual(list(as_dict["members"]["m"]), list(MEMBER_FIELDS))


class ExportTests(SynchronousTestCase):
    """The issue's public names are exported from txami and txami.state."""

    def test_names(self) -> None:
        """PBXState and its objects, listener and errors come from txami itself."""
        for name in (
            "PBXState",
            "Channel",
            "Bridge",
            "Call",
            "Queue",
            "QueueMember",
            "QueueEntry",
            "DeviceState",
            "Hint",
            "IStateListener",
            "StateListenerMixin",
            "ObjectGone",
            "StateStopped",
        ):
            self.assertIn(name, txami.__all__)
            self.assertIn(name, txami.state.__all__)
            self.assertIs(getattr(txami, name), getattr(txami.state, name))
        for name in txami.state.__all__:
            self.assertTrue(hasattr(txami.state, name), name)
