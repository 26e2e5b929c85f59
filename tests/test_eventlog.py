"""Tests for the event JSON form (txami.jsonform), the hub and the event log."""

from __future__ import annotations

import io
import json
import os

from twisted.internet.testing import Clock
from twisted.logger import LogEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from txami.daemon.eventlog import EventLog
from txami.daemon.hub import EventHub, ReceivedEvent
from txami.jsonform import event_dict, event_json, format_timestamp, message_dict
from txami.message import Message

# 2024-05-01T10:00:00.25Z
T0 = 1714557600.25

HANGUP = Message.parse(
    b"Event: Hangup\r\nPrivilege: call,all\r\nChannel: PJSIP/100-00000001\r\n"
    b"Cause: 16\r\nVariable: A=1\r\nVariable: B=2"
)


class JSONFormTests(SynchronousTestCase):
    """The JSON object an event or a response becomes."""

    def test_message_dict_keeps_order_and_repeats(self) -> None:
        """Headers keep wire order; a repeated header becomes a list of its values."""
        self.assertEqual(
            list(message_dict(HANGUP).items()),
            [
                ("Event", "Hangup"),
                ("Privilege", "call,all"),
                ("Channel", "PJSIP/100-00000001"),
                ("Cause", "16"),
                ("Variable", ["A=1", "B=2"]),
            ],
        )

    def test_three_repeats(self) -> None:
        """A header seen three times gives a list of three values."""
        msg = Message([("Output", "a"), ("Output", "b"), ("Output", "c")])
        self.assertEqual(message_dict(msg), {"Output": ["a", "b", "c"]})

    def test_timestamp(self) -> None:
        """The receive time is UTC ISO 8601 with microseconds and a Z."""
        self.assertEqual(format_timestamp(T0), "2024-05-01T10:00:00.250000Z")

    def test_event_json(self) -> None:
        """An event's line is the timestamp, then every header, as compact JSON."""
        self.assertEqual(
            event_json(HANGUP, T0),
            '{"@timestamp":"2024-05-01T10:00:00.250000Z","Event":"Hangup",'
            '"Privilege":"call,all","Channel":"PJSIP/100-00000001","Cause":"16",'
            '"Variable":["A=1","B=2"]}',
        )

    def test_timestamp_header_clash(self) -> None:
        """A header named @timestamp is kept, as _@timestamp, not overwritten."""
        event = Message([("Event", "UserEvent"), ("@timestamp", "mine")])
        self.assertEqual(
            event_dict(event, T0),
            {
                "@timestamp": "2024-05-01T10:00:00.250000Z",
                "Event": "UserEvent",
                "_@timestamp": "mine",
            },
        )

    def test_non_utf8_event(self) -> None:
        """Non-UTF-8 bytes become \\udcXX escapes in ASCII JSON that decodes to the same bytes."""
        raw = b"Event: UserEvent\r\nUserEvent: caf\xe9\r\nName: \xe2\x82\xac"
        line = event_json(Message.parse(raw), T0)
        line.encode("ascii")
        self.assertIn('"UserEvent":"caf\\udce9"', line)
        self.assertIn('"Name":"\\u20ac"', line)
        decoded = json.loads(line)
        self.assertEqual(decoded["UserEvent"].encode("utf-8", "surrogateescape"), b"caf\xe9")


class HubTests(SynchronousTestCase):
    """EventHub: stamping and fan-out."""

    def test_fan_out(self) -> None:
        """Every sink gets the same ReceivedEvent, stamped with the clock's time."""
        clock = Clock()
        clock.advance(T0)
        hub = EventHub(clock)
        seen: list[ReceivedEvent] = []
        hub.subscribe(seen.append)
        hub.subscribe(seen.append)
        hub(HANGUP)
        self.assertEqual(len(seen), 2)
        self.assertIs(seen[0], seen[1])
        self.assertEqual((seen[0].name, seen[0].received), ("Hangup", T0))
        self.assertIs(seen[0].json, seen[0].json)
        self.assertEqual(hub.events_received, 1)

    def test_one_time_per_turn(self) -> None:
        """One reactor turn's events share its first clock reading; the next turn reads again."""
        clock = Clock()
        clock.advance(T0)
        hub = EventHub(clock)
        seen: list[ReceivedEvent] = []
        hub.subscribe(seen.append)
        hub.receive(HANGUP)
        clock.advance(0.25)  # the turn's end is due: the next event reads the clock again
        clock.advance(0.25)  # nothing read since: nothing is scheduled
        hub.receive(HANGUP)
        hub.receive(HANGUP)
        self.assertEqual([event.received for event in seen], [T0, T0 + 0.5, T0 + 0.5])
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(0)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_batch_while_only_sink(self) -> None:
        """A sink's batch form gets a turn's events at once, while it is the only sink."""
        clock = Clock()
        clock.advance(T0)
        hub = EventHub(clock)
        batches: list[tuple[list[Message], list[str], float]] = []
        seen: list[ReceivedEvent] = []
        other: list[ReceivedEvent] = []
        hub.subscribe(seen.append, batch=lambda *args: batches.append(args))
        hub.receive(HANGUP)
        hub.receive(HANGUP)
        self.assertEqual(batches, [])
        hub.subscribe(other.append)  # the events held go first
        hub.receive(HANGUP)
        hub.unsubscribe(other.append)
        hub.receive(HANGUP)
        clock.advance(0)  # the turn ends
        hub.unsubscribe(seen.append)
        hub.receive(HANGUP)
        clock.advance(0)
        self.assertEqual(
            batches,
            [([HANGUP, HANGUP], ["Hangup", "Hangup"], T0), ([HANGUP], ["Hangup"], T0)],
        )
        self.assertEqual([(r.event, r.name, r.received) for r in seen], [(HANGUP, "Hangup", T0)])
        self.assertIs(other[0], seen[0])
        self.assertEqual(hub.events_received, 5)

    def test_flush_gives_the_held_events_now(self) -> None:
        """`flush` hands the held events over before the turn ends, and none twice."""
        clock = Clock()
        hub = EventHub(clock)
        names: list[str] = []
        hub.subscribe(lambda received: None, batch=lambda events, batch, now: names.extend(batch))
        hub.receive(HANGUP)
        hub.flush()
        self.assertEqual(names, ["Hangup"])
        hub.flush()
        clock.advance(0)
        self.assertEqual(names, ["Hangup"])

    def test_batch_until_a_merging_hub_listens(self) -> None:
        """A merging hub with no sinks leaves the batch form in use; once it has one, it ends."""
        clock = Clock()
        pbx, merged = EventHub(clock, pbx="a"), EventHub(clock)
        names: list[str] = []
        seen: list[ReceivedEvent] = []
        pbx.subscribe(lambda received: None, batch=lambda events, batch, now: names.extend(batch))
        merged.merge(pbx)
        pbx.receive(HANGUP)
        merged.subscribe(seen.append)
        pbx.receive(HANGUP)
        merged.unsubscribe(seen.append)
        pbx.receive(HANGUP)
        clock.advance(0)
        self.assertEqual((names, [r.name for r in seen]), (["Hangup", "Hangup"], ["Hangup"]))

    def test_batch_counts_by_name_within_the_bound(self) -> None:
        """Events held for a batch sink are counted by name as one at a time would be."""
        clock = Clock()
        hub = EventHub(clock)
        counts: dict[str, int] = {}
        hub.count_into(counts, 2, "_other")
        hub.subscribe(lambda received: None, batch=lambda events, names, now: None)
        for name in ("A", "B", "C", "A", "D"):
            hub.receive(Message([("Event", name)]))
        self.assertEqual((counts, hub.events_received), ({}, 0))
        hub.flush()
        self.assertEqual(counts, {"A": 2, "B": 1, "_other": 2})
        self.assertEqual(hub.events_received, 5)

    def test_failing_batch_sink(self) -> None:
        """A batch sink that raises is logged, and the hub goes on."""
        clock = Clock()
        hub = EventHub(clock)
        counts: dict[str, int] = {}
        hub.count_into(counts, 10, "_other")

        def broken(events: list[Message], names: list[str], received: float) -> None:
            raise RuntimeError("boom")

        hub.subscribe(lambda received: None, batch=broken)
        hub.receive(HANGUP)
        hub.receive(HANGUP)
        clock.advance(0)
        hub.receive(HANGUP)
        clock.advance(0)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        self.assertEqual((counts, hub.events_received), ({"Hangup": 3}, 3))

    def test_failing_sink(self) -> None:
        """A sink that raises is logged and the later sinks still get the event."""
        hub = EventHub(Clock())
        seen: list[ReceivedEvent] = []

        def broken(received: ReceivedEvent) -> None:
            raise RuntimeError("boom")

        hub.subscribe(broken)
        hub.subscribe(seen.append)
        hub(HANGUP)
        self.assertEqual(len(seen), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_unsubscribe(self) -> None:
        """An unsubscribed sink gets nothing more; unsubscribing twice is harmless."""
        hub = EventHub(Clock())
        seen: list[ReceivedEvent] = []
        hub.subscribe(seen.append)
        hub.unsubscribe(seen.append)
        hub.unsubscribe(seen.append)
        hub(HANGUP)
        self.assertEqual((seen, hub.sinks), ([], ()))

    def test_merging_hub(self) -> None:
        """A merging hub gets the events only while it has sinks, through two levels too."""
        pbx, merged, top = EventHub(Clock(), pbx="a"), EventHub(Clock()), EventHub(Clock())
        merged.merge(pbx)
        top.merge(merged)
        pbx(HANGUP)
        self.assertEqual((merged.events_received, top.events_received), (0, 0))
        seen: list[ReceivedEvent] = []
        top.subscribe(seen.append)
        pbx(HANGUP)
        self.assertEqual((merged.events_received, len(seen)), (1, 1))
        self.assertEqual(seen[0].pbx, "a")
        top.unsubscribe(seen.append)
        pbx(HANGUP)
        self.assertEqual((merged.events_received, len(seen)), (1, 1))
        merged.subscribe(seen.append)
        pbx(HANGUP)
        self.assertEqual((merged.events_received, len(seen)), (2, 2))
        merged.unmerge(pbx)
        pbx(HANGUP)
        self.assertEqual((merged.events_received, len(seen), pbx.sinks), (2, 2, ()))

    def test_merge_twice_unmerge_unknown(self) -> None:
        """Merging a hub twice delivers its events once; unmerging a stranger is harmless."""
        pbx, merged = EventHub(Clock(), pbx="a"), EventHub(Clock())
        seen: list[ReceivedEvent] = []
        merged.subscribe(seen.append)
        merged.merge(pbx)
        merged.merge(pbx)
        merged.unmerge(EventHub(Clock()))
        pbx.receive(HANGUP)
        self.assertEqual((len(seen), pbx.sinks), (1, (merged.deliver,)))

    def test_count_into(self) -> None:
        """Events are counted by name, at most ``max_names`` names, the rest under ``other``."""
        hub = EventHub(Clock())
        counts: dict[str, int] = {}
        hub.count_into(counts, 2, "_other")
        for name in ("Hangup", "Newchannel", "Hangup", "Dial", "Newstate", "Newchannel"):
            hub(Message([("Event", name)]))
        self.assertEqual(counts, {"Hangup": 2, "Newchannel": 2, "_other": 2})


class _BrokenStream(io.StringIO):
    """A stream whose writes fail while ``broken`` is set."""

    broken = True

    def write(self, text: str) -> int:
        if self.broken:
            raise OSError(28, "No space left on device")
        return super().write(text)


class EventLogTests(SynchronousTestCase):
    """EventLog: JSON lines to a stream or a rotating file."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0)
        self.hub = EventHub(self.clock)

    def test_needs_one_target(self) -> None:
        """Exactly one of path and stream must be given."""
        with self.assertRaises(ValueError):
            EventLog(self.hub)
        with self.assertRaises(ValueError):
            EventLog(self.hub, path="x", stream=io.StringIO())

    def test_stream(self) -> None:
        """Each event is one line on the stream while the service runs, and none after."""
        stream = io.StringIO()
        log = EventLog(self.hub, stream=stream)
        self.hub(HANGUP)
        log.startService()
        self.hub(HANGUP)
        self.hub(Message([("Event", "Newchannel")]))
        log.stopService()
        self.hub(HANGUP)
        self.assertEqual(
            stream.getvalue(),
            event_json(HANGUP, T0)
            + "\n"
            + event_json(Message([("Event", "Newchannel")]), T0)
            + "\n",
        )
        self.assertEqual(log.lines_written, 2)

    def test_file(self) -> None:
        """To a file: the lines are appended, and the file is closed on stop."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("earlier\n")
        log = EventLog(self.hub, path=path)
        log.startService()
        self.hub(HANGUP)
        log.stopService()
        with open(path) as f:
            self.assertEqual(f.read(), "earlier\n" + event_json(HANGUP, T0) + "\n")

    def test_rotation(self) -> None:
        """The file rotates at rotate_length bytes and keeps max_rotated_files old ones."""
        directory = self.mktemp()
        os.mkdir(directory)
        path = os.path.join(directory, "events.jsonl")
        line = event_json(HANGUP, T0) + "\n"
        log = EventLog(self.hub, path=path, rotate_length=len(line) * 2, max_rotated_files=2)
        log.startService()
        for _ in range(9):
            self.hub(HANGUP)
        log.stopService()
        self.assertEqual(
            sorted(os.listdir(directory)), ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
        )
        for name in os.listdir(directory):
            with open(os.path.join(directory, name)) as f:
                lines = f.read().splitlines(keepends=True)
            self.assertEqual(set(lines), {line})
        with open(path) as f:
            self.assertEqual(f.read(), line)

    def test_write_errors_logged_once(self) -> None:
        """Failing writes are counted and logged once, then once more when writing recovers."""
        logged: list[LogEvent] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        stream = _BrokenStream()
        log = EventLog(self.hub, stream=stream)
        log.startService()
        for _ in range(3):
            self.hub(HANGUP)
        stream.broken = False
        self.hub(HANGUP)
        self.hub(HANGUP)
        mine = [e for e in logged if e.get("log_namespace") == "txami.daemon.eventlog"]
        self.assertEqual([e["log_level"].name for e in mine], ["error", "info"])
        self.assertEqual((log.write_errors, log.lines_written), (3, 2))
        self.assertEqual(stream.getvalue(), (event_json(HANGUP, T0) + "\n") * 2)
