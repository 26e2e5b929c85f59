"""
Tests for the way to the stream: `Sequencer` (epochs, seq, markers), `PBXBuffer` and
`BufferBudget` (bounds, drops, gaps, entries in doubt) and `StreamPublisher` (window,
turns, gap markers, reconnects) against an in-memory engine, on a `Clock`.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txami.daemon.buffer import BufferBudget, PBXBuffer
from txami.daemon.entries import (
    EPOCH,
    EVENT,
    GAP,
    JSON,
    SEQ,
    SESSION_END,
    SESSION_START,
    Entry,
    entry_size,
    entry_ts,
    events_key,
    make_entry,
)
from txami.daemon.hub import EventHub
from txami.daemon.metrics import Metrics
from txami.daemon.publisher import (
    EntryRejected,
    IBatchStreamEngine,
    IEngineListener,
    IStreamEngine,
    StreamPublisher,
    _shares,
)
from txami.daemon.sequencer import Sequencer
from txami.message import Message


def event(seq: int, name: str = "Newchannel", epoch: int = 1, size: int = 0) -> Entry:
    """An event entry whose JSON is padded to make its size ``size`` (if given)."""
    line = json.dumps({"n": seq})
    if size:
        line += " " * (size - entry_size(make_entry(epoch, seq, name, 0.0, line)))
    return make_entry(epoch, seq, name, float(seq), line)


def marker(seq: int, name: str = SESSION_START, epoch: int = 1) -> Entry:
    return make_entry(epoch, seq, name, float(seq), "{}")


def make_buffer(
    max_events: int = 100,
    max_bytes: int = 10**9,
    budget: BufferBudget | None = None,
    pbx: str = "east",
) -> PBXBuffer:
    return PBXBuffer(
        pbx,
        max_events=max_events,
        max_bytes=max_bytes,
        budget=budget if budget is not None else BufferBudget(10**6, 10**12),
        metrics=Metrics(pbx=pbx),
    )


def seqs(entries: Any) -> list[int]:
    return [entry[SEQ] for entry in entries]


def take(buffer: PBXBuffer) -> Entry:
    """Put ``buffer``'s next unsent entry in flight, as the publisher does with a gapless one."""
    entry = buffer.unsent.popleft()
    buffer.in_flight.append(entry)
    return entry


class BufferTests(SynchronousTestCase):
    """PBXBuffer and BufferBudget: bounds, what is dropped, and the gaps."""

    def test_bound_in_events_drops_oldest(self) -> None:
        """Past max_events the oldest events go, counted as buffer_full, as one gap."""
        buffer = make_buffer(max_events=3)
        for seq in range(1, 7):
            buffer.add(event(seq))
        self.assertEqual(seqs(buffer.unsent), [4, 5, 6])
        self.assertEqual((buffer.events, buffer.budget.events), (3, 3))
        self.assertEqual(buffer.metrics.dropped["buffer_full"], 3)
        self.assertEqual(buffer.gap_of(buffer.unsent[0]), [3, 1, 3, 1])
        self.assertEqual([buffer.gap_of(e) for e in list(buffer.unsent)[1:]], [None, None])

    def test_bound_in_bytes(self) -> None:
        """Past max_bytes the oldest events go until the bytes fit again."""
        buffer = make_buffer(max_bytes=1000)
        for seq in range(1, 5):
            buffer.add(event(seq, size=300))
        self.assertEqual((seqs(buffer.unsent), buffer.bytes), ([2, 3, 4], 900))
        buffer.add(event(5, size=800))
        self.assertEqual((seqs(buffer.unsent), buffer.bytes), ([5], 800))
        self.assertEqual(buffer.gap_of(buffer.unsent[0]), [4, 1, 4, 1])

    def test_unsent_is_never_replaced(self) -> None:
        """The unsent deque stays the object made at start-up (twistd freezes it) throughout."""
        buffer = make_buffer(max_events=4)
        unsent = buffer.unsent
        buffer.extend([event(seq) for seq in range(1, 7)])
        buffer.make_headroom()
        taken = [take(buffer), take(buffer)]
        buffer.acknowledged_oldest([taken[0]])
        buffer.rejected(taken[1])
        take(buffer)
        buffer.resolve(None)
        buffer.add(event(7))
        buffer.drop_oldest("buffer_full")
        self.assertIs(buffer.unsent, unsent)
        self.assertEqual(seqs(unsent), [7])

    def test_ready_only_when_not_queued(self) -> None:
        """``ready`` is called for an entry added out of the publisher's turns only."""
        calls: list[PBXBuffer] = []
        buffer = make_buffer()
        buffer.ready = calls.append
        buffer.add(event(1))
        buffer.queued = True
        buffer.add(event(2))
        buffer.queued = False
        buffer.add(event(3))
        self.assertEqual(calls, [buffer, buffer])

    def test_entry_larger_than_the_bound(self) -> None:
        """An entry bigger than the whole bound is dropped too; its gap waits for the next one."""
        buffer = make_buffer(max_bytes=500)
        buffer.add(event(1, size=600))
        self.assertEqual((list(buffer.unsent), buffer.bytes), ([], 0))
        self.assertEqual(buffer.trailing_gap, [1, 1, 1, 1])
        buffer.add(event(2, size=300))
        self.assertEqual(buffer.gap_of(buffer.unsent[0]), [1, 1, 1, 1])
        self.assertIsNone(buffer.trailing_gap)

    def test_markers_are_kept(self) -> None:
        """Markers are never dropped: the oldest event behind them goes instead."""
        buffer = make_buffer(max_events=3)
        buffer.add(marker(0))
        buffer.add(event(1))
        buffer.add(event(2))
        buffer.add(marker(3, SESSION_END))
        self.assertEqual(
            [(e[EVENT], e[SEQ]) for e in buffer.unsent],
            [(SESSION_START, 0), ("Newchannel", 2), (SESSION_END, 3)],
        )
        self.assertEqual(buffer.gap_of(buffer.unsent[1]), [1, 1, 1, 1])

    def test_gaps_of_two_sessions_stay_apart(self) -> None:
        """Drops on both sides of a session's markers make one gap per session."""
        buffer = make_buffer(max_events=4)
        buffer.add(event(1, epoch=1))
        buffer.add(marker(2, SESSION_END, epoch=1))
        buffer.add(marker(0, SESSION_START, epoch=2))
        for seq in (1, 2, 3):
            buffer.add(event(seq, epoch=2))
        self.assertEqual(
            [(e[EVENT], e[EPOCH], e[SEQ], buffer.gap_of(e)) for e in buffer.unsent],
            [
                (SESSION_END, 1, 2, [1, 1, 1, 1]),
                (SESSION_START, 2, 0, None),
                ("Newchannel", 2, 2, [1, 1, 1, 2]),
                ("Newchannel", 2, 3, None),
            ],
        )

    def test_in_flight_entries_are_never_dropped(self) -> None:
        """Entries sent and unacknowledged count against the bound but are not dropped."""
        buffer = make_buffer(max_events=2)
        buffer.add(event(1))
        buffer.add(event(2))
        self.assertEqual(seqs([take(buffer), take(buffer)]), [1, 2])
        buffer.add(event(3))
        self.assertEqual((seqs(buffer.in_flight), seqs(buffer.unsent)), ([1, 2], []))
        self.assertEqual(buffer.trailing_gap, [1, 3, 3, 1])

    def test_global_budget_sheds_from_the_fullest(self) -> None:
        """Past the total bound, the PBX holding the most bytes loses its oldest event."""
        budget = BufferBudget(max_events=5, max_bytes=10**9)
        east = make_buffer(budget=budget, pbx="east")
        west = make_buffer(budget=budget, pbx="west")
        for seq in (1, 2, 3, 4):
            east.add(event(seq))
        west.add(event(1))
        west.add(event(2))
        self.assertEqual((seqs(east.unsent), seqs(west.unsent)), ([2, 3, 4], [1, 2]))
        self.assertEqual(east.metrics.dropped["total_buffer_full"], 1)
        self.assertEqual(west.metrics.dropped["total_buffer_full"], 0)
        self.assertEqual((budget.events, east.events + west.events), (5, 5))

    def test_resolve_entries_in_doubt(self) -> None:
        """After a loss, entries the stream holds are acknowledged; the rest go back, in order."""
        buffer = make_buffer()
        buffer.epoch_base = 10
        for seq in (1, 2, 3, 4):
            buffer.add(event(seq))
        for _ in range(3):
            take(buffer)
        self.assertEqual(buffer.resolve((11, 2)), 2)
        self.assertEqual((seqs(buffer.in_flight), seqs(buffer.unsent)), ([], [3, 4]))
        self.assertEqual(buffer.events, 2)

    def test_resolve_with_an_empty_stream(self) -> None:
        """An empty (or lost) stream holds nothing: every entry in doubt is sent again."""
        buffer = make_buffer()
        buffer.epoch_base = 0
        buffer.add(event(1))
        take(buffer)
        self.assertEqual(buffer.resolve(None), 0)
        self.assertEqual(seqs(buffer.unsent), [1])

    def test_oldest_age(self) -> None:
        """The age of the oldest entry held, in flight first."""
        buffer = make_buffer()
        self.assertEqual(buffer.oldest_age(10.0), 0.0)
        buffer.add(event(3))
        buffer.add(event(5))
        self.assertEqual(buffer.oldest_age(10.0), 7.0)
        take(buffer)
        self.assertEqual(buffer.oldest_age(10.0), 7.0)


class SequencerTests(SynchronousTestCase):
    """Sequencer: one epoch per session, seq per entry, start and end markers."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.buffer = make_buffer()
        self.sequencer = Sequencer("east", self.clock, self.buffer)
        self.hub = EventHub(self.clock, pbx="east")
        self.hub.subscribe(self.sequencer)

    def entries(self) -> list[tuple[str, int, int]]:
        return [(e[EVENT], e[EPOCH], e[SEQ]) for e in self.buffer.unsent]

    def test_sessions(self) -> None:
        """Start (seq 0) at the first event, events 1..n, end after; the next login is epoch 2."""
        self.sequencer.connected(object())
        self.clock.advance(5)
        self.hub(Message([("Event", "FullyBooted")]))
        self.sequencer.logged_in(object())
        self.hub(Message([("Event", "Hangup")]))
        self.sequencer.disconnected(Failure(ConnectionError("gone")))  # type: ignore[no-untyped-call]
        self.sequencer.connected(object())
        self.sequencer.logged_in(object())
        self.assertEqual(
            self.entries(),
            [
                (SESSION_START, 1, 0),
                ("FullyBooted", 1, 1),
                ("Hangup", 1, 2),
                (SESSION_END, 1, 3),
                (SESSION_START, 2, 0),
            ],
        )
        end = json.loads(self.buffer.unsent[3][JSON])
        self.assertEqual(
            (end["pbx"], end["Event"], end["Reason"], end["Events"]),
            ("east", SESSION_END, "gone", 2),
        )
        self.assertEqual(json.loads(self.buffer.unsent[1][JSON])["pbx"], "east")
        self.assertEqual(entry_ts(self.buffer.unsent[1]), "5000")

    def test_event_entry(self) -> None:
        """An event's entry is its epoch, seq, name, receive time and JSON line; no gap."""
        self.clock.advance(3)
        self.sequencer.logged_in(object())
        self.hub(Message([("Event", "Hangup")]))
        made = self.buffer.unsent[1]
        self.assertEqual(made, make_entry(1, 1, "Hangup", 3.0, made[JSON]))
        self.assertEqual(json.loads(made[JSON])["Event"], "Hangup")
        self.assertIsNone(self.buffer.gap_of(made))

    def test_batch_entries_are_the_same(self) -> None:
        """A read's events given at once (the hub's batch sink) make the same entries."""
        batch_buffer = make_buffer()
        batched = Sequencer("east", self.clock, batch_buffer)
        hub = EventHub(self.clock, pbx="east")
        batched.listen(hub)
        self.clock.advance(7.5)
        for text in ("Event: Hangup\r\nA: 1", "Event: Hangup\r\nA: 2", 'Event: X\r\nQ: "'):
            self.hub.receive(Message.parse(text))
            hub.receive(Message.parse(text))
        self.assertEqual(list(batch_buffer.unsent), [])
        self.clock.advance(0)
        self.assertEqual(list(batch_buffer.unsent), list(self.buffer.unsent))
        self.assertEqual(len(batch_buffer.unsent), 4)
        self.assertEqual(batch_buffer.bytes, self.buffer.bytes)

    def test_marker_after_the_held_events(self) -> None:
        """A session's end, in the read that brought events, comes after them in the stream."""
        buffer = make_buffer()
        sequencer = Sequencer("east", self.clock, buffer)
        hub = EventHub(self.clock, pbx="east")
        sequencer.listen(hub)
        sequencer.connected(object())
        sequencer.logged_in(object())
        hub.receive(Message.parse("Event: Hangup\r\nA: 1"))
        hub.receive(Message.parse("Event: Hangup\r\nA: 2"))
        sequencer.disconnected(Failure(ConnectionError("gone")))  # type: ignore[no-untyped-call]
        self.clock.advance(0)
        self.assertEqual(
            [(e[EVENT], e[EPOCH], e[SEQ]) for e in buffer.unsent],
            [(SESSION_START, 1, 0), ("Hangup", 1, 1), ("Hangup", 1, 2), (SESSION_END, 1, 3)],
        )

    def test_refused_login_opens_no_session(self) -> None:
        """A connection that never logged in leaves no marker."""
        self.sequencer.connected(object())
        self.sequencer.disconnected(Failure(ConnectionError("refused")))  # type: ignore[no-untyped-call]
        self.assertEqual(self.entries(), [])


@implementer(IStreamEngine)
class FakeEngine:
    """An engine that keeps each PBX's stream in memory and acknowledges on demand."""

    def __init__(self, connected: bool = True) -> None:
        self.connected = connected
        self.listener: IEngineListener | None = None
        self.streams: dict[str, list[tuple[int, int, str]]] = {}
        self.pending: list[tuple[str, Entry, int, Deferred[Any]]] = []
        self.newest_asked: list[str] = []

    def set_listener(self, listener: IEngineListener) -> None:
        self.listener = listener
        if self.connected:
            listener.engine_ready()

    def newest(self, pbx: str) -> Deferred[tuple[int, int] | None]:
        self.newest_asked.append(pbx)
        stream = self.streams.get(pbx)
        return succeed(stream[-1][:2] if stream else None)

    def append(self, pbx: str, entry: Entry, epoch: int) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.pending.append((pbx, entry, epoch, d))
        return d

    def ack(self, count: int | None = None) -> None:
        """Apply and acknowledge the first ``count`` (all) pending entries."""
        count = len(self.pending) if count is None else count
        done, self.pending = self.pending[:count], self.pending[count:]
        for pbx, entry, epoch, d in done:
            self.streams.setdefault(pbx, []).append((epoch, entry[SEQ], entry[EVENT]))
            d.callback("id")

    def lose(self, applied: int = 0) -> None:
        """The connection drops after Redis applied ``applied`` of the pending entries."""
        self.connected = False
        done, self.pending = self.pending, []
        for index, (pbx, entry, epoch, _d) in enumerate(done):
            if index < applied:
                self.streams.setdefault(pbx, []).append((epoch, entry[SEQ], entry[EVENT]))
        assert self.listener is not None
        self.listener.engine_lost()
        for _, _, _, d in done:
            d.errback(ConnectionError("lost"))

    def back(self) -> None:
        self.connected = True
        assert self.listener is not None
        self.listener.engine_ready()


class PublisherTests(SynchronousTestCase):
    """StreamPublisher against FakeEngine."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.engine = FakeEngine()
        self.publisher = StreamPublisher(self.engine, self.clock, window=3)
        self.east = make_buffer(max_events=10)
        self.publisher.add_buffer(self.east)

    def stream(self, pbx: str = "east") -> list[tuple[int, int, str]]:
        return self.engine.streams.get(pbx, [])

    def test_interfaces(self) -> None:
        """The fake engine and the publisher provide the interfaces they claim."""
        self.assertTrue(verifyObject(IStreamEngine, self.engine))
        self.assertTrue(verifyObject(IEngineListener, self.publisher))

    def test_window_bounds_entries_in_flight(self) -> None:
        """At most ``window`` entries await their acknowledgement, refilled from half empty."""
        for seq in range(1, 6):
            self.east.add(event(seq))
        self.assertEqual([e[SEQ] for _, e, _, _ in self.engine.pending], [1, 2, 3])
        self.engine.ack(1)
        self.assertEqual([e[SEQ] for _, e, _, _ in self.engine.pending], [2, 3])
        self.engine.ack(1)
        self.assertEqual([e[SEQ] for _, e, _, _ in self.engine.pending], [3, 4, 5])
        self.engine.ack()
        self.assertEqual(self.stream(), [(1, seq, "Newchannel") for seq in range(1, 6)])
        self.assertEqual((self.east.events, self.publisher.in_flight), (0, 0))
        self.assertEqual(self.east.metrics.published, 5)

    def test_added_while_queued(self) -> None:
        """Entries added while the buffer waits in the turns (no ``ready``) go out, in order."""
        for seq in range(1, 6):
            self.east.add(event(seq))
        self.assertEqual([e[SEQ] for _, e, _, _ in self.engine.pending], [1, 2, 3])
        self.assertTrue(self.east.queued)
        for seq in range(6, 9):
            self.east.add(event(seq))
        while self.engine.pending:
            self.engine.ack()
        self.assertEqual(self.stream(), [(1, seq, "Newchannel") for seq in range(1, 9)])
        self.assertEqual((self.east.events, self.publisher.in_flight), (0, 0))

    def test_turns_between_pbxs(self) -> None:
        """The window is shared in turns, so a busy PBX does not starve a quiet one."""
        west = make_buffer(pbx="west")
        self.publisher.add_buffer(west)
        self.engine.connected = False
        self.publisher.engine_lost()
        for seq in range(1, 6):
            self.east.add(event(seq))
        west.add(event(1))
        self.engine.back()
        self.assertEqual(
            [(pbx, e[SEQ]) for pbx, e, _, _ in self.engine.pending],
            [("east", 1), ("west", 1), ("east", 2)],
        )

    def test_epoch_base_from_the_stream(self) -> None:
        """A restarted daemon continues the epochs of the stream's newest entry."""
        engine = FakeEngine(connected=False)
        engine.streams["east"] = [(7, 12, SESSION_END)]
        publisher = StreamPublisher(engine, self.clock)
        buffer = make_buffer()
        publisher.add_buffer(buffer)
        buffer.add(marker(0))
        self.assertEqual(engine.pending, [])
        engine.back()
        engine.ack()
        self.assertEqual(engine.streams["east"][-1], (8, 0, SESSION_START))

    def test_one_gap_marker_with_the_count(self) -> None:
        """Drops while the engine is down are reported by exactly one TxamiGap, in place."""
        self.engine.lose()
        for seq in range(1, 26):
            self.east.add(event(seq))
        self.assertEqual(self.east.metrics.dropped["buffer_full"], 15)
        self.engine.back()
        for _ in range(10):
            self.engine.ack()
        # One more is dropped to leave room while the backlog drains (see the next test).
        self.assertEqual(self.east.metrics.dropped["buffer_full"], 16)
        self.assertEqual(
            self.stream(),
            [(1, 16, GAP)] + [(1, seq, "Newchannel") for seq in range(17, 26)],
        )

    def test_one_gap_while_the_backlog_drains(self) -> None:
        """Events arriving while a full buffer drains make no second gap marker."""
        buffer = make_buffer(max_events=20, pbx="west")
        self.publisher.add_buffer(buffer)
        self.engine.lose()
        for seq in range(1, 41):
            buffer.add(event(seq))
        self.assertEqual(buffer.metrics.dropped["buffer_full"], 20)
        self.engine.back()
        # Before the marker went out, the buffer was brought 10 % below its bound.
        self.assertEqual(buffer.metrics.dropped["buffer_full"], 22)
        buffer.add(event(41))
        for seq in range(42, 45):
            self.engine.ack()
            buffer.add(event(seq))
        for _ in range(20):
            self.engine.ack()
        stream = self.stream("west")
        self.assertEqual([(seq, name) for _, seq, name in stream if name == GAP], [(22, GAP)])
        self.assertEqual([seq for _, seq, name in stream if name != GAP], list(range(23, 45)))

    def test_gap_marker_json(self) -> None:
        """The gap marker's JSON says how many events were dropped, and which."""
        self.engine.lose()
        for seq in range(1, 13):
            self.east.add(event(seq))
        self.engine.back()
        _, gap, _, _ = self.engine.pending[0]
        self.assertEqual(gap[EVENT], GAP)
        body = json.loads(gap[JSON])
        self.assertEqual(
            (body["pbx"], body["Event"], body["Dropped"], body["FirstSeq"], body["LastSeq"]),
            ("east", GAP, 3, 1, 3),
        )

    def test_reconnect_without_loss_or_duplicates(self) -> None:
        """Entries in doubt when the engine drops are checked: none lost, none sent twice."""
        for seq in range(1, 4):
            self.east.add(event(seq))
        self.engine.lose(applied=2)
        self.east.add(event(4))
        self.engine.back()
        self.assertEqual(self.engine.newest_asked, ["east", "east"])
        for _ in range(3):
            self.engine.ack()
        self.assertEqual(self.stream(), [(1, seq, "Newchannel") for seq in range(1, 5)])
        self.assertEqual(self.east.events, 0)

    def test_check_retried_when_refused(self) -> None:
        """A stream check Redis refuses (still loading) is retried after retry_delay."""
        engine = FakeEngine(connected=False)
        publisher = StreamPublisher(engine, self.clock)
        buffer = make_buffer()
        publisher.add_buffer(buffer)
        buffer.add(marker(0))
        answers = [fail(EntryRejected("east", "LOADING")), succeed(None)]
        engine.newest = lambda pbx: answers.pop(0)  # type: ignore[method-assign, assignment]
        engine.back()
        self.assertEqual((publisher.state, engine.pending), ("syncing", []))
        self.clock.advance(publisher.retry_delay)
        self.assertEqual(publisher.state, "up")
        self.assertEqual([e[EVENT] for _, e, _, _ in engine.pending], [SESSION_START])

    def test_failure_before_engine_lost(self) -> None:
        """A failed send stops sending at once, even before the engine says it is lost."""
        for seq in range(1, 4):
            self.east.add(event(seq))
        _, _, _, d = self.engine.pending.pop(0)
        d.errback(ConnectionError("lost"))
        self.assertEqual(self.publisher.state, "down")
        self.east.add(event(4))
        self.assertEqual(len(self.engine.pending), 2)

    def test_rejected_entry_becomes_a_gap(self) -> None:
        """An entry Redis refuses is dropped (rejected) and reported by a gap marker."""
        self.east.add(event(1))
        _, _, _, d = self.engine.pending.pop(0)
        d.errback(EntryRejected("east", "OOM"))
        self.assertEqual(self.east.metrics.dropped["rejected"], 1)
        self.east.add(event(2))
        self.engine.ack()
        self.engine.ack()
        self.assertEqual(self.stream(), [(1, 1, GAP), (1, 2, "Newchannel")])
        self.assertEqual(self.publisher.state, "up")

    def test_stop_drains(self) -> None:
        """Stopping waits for the buffers to reach the stream, at most drain_timeout."""
        self.publisher.startService()
        self.east.add(event(1))
        d = self.publisher.stopService()
        self.assertNoResult(d)
        self.engine.ack()
        self.assertIsNone(self.successResultOf(d))
        self.publisher.startService()
        self.east.add(event(2))
        d = self.publisher.stopService()
        self.clock.advance(self.publisher.drain_timeout)
        self.assertIsNone(self.successResultOf(d))
        self.engine.ack()
        self.assertEqual(self.east.events, 0)

    def test_stop_while_down(self) -> None:
        """With the engine down there is nothing to wait for."""
        self.publisher.startService()
        self.engine.lose()
        self.east.add(event(1))
        self.assertIsNone(self.successResultOf(self.publisher.stopService()))

    def test_keys(self) -> None:
        """Each PBX's stream key carries its name as a cluster hash tag."""
        self.assertEqual(events_key("txami", "east"), "txami:{east}:events")


class _Answer:
    """Stands for one entry of a batch in `FakeBatchEngine.pending`: answers it to its receiver."""

    def __init__(self, receiver: Any) -> None:
        self.receiver = receiver

    def callback(self, result: object) -> None:
        self.receiver.answered(1, None)

    def errback(self, reason: Exception) -> None:
        if isinstance(reason, EntryRejected):
            self.receiver.answered(1, [(0, reason.reason)])
        else:
            self.receiver.failed(Failure(reason))  # type: ignore[no-untyped-call]


@implementer(IBatchStreamEngine)
class FakeBatchEngine(FakeEngine):
    """
    FakeEngine taking its entries in batches: ``pending`` is what was sent by
    the end of the reactor's turn (the publisher sends a batch at the end of
    one), and `ack` answers a batch's consecutive entries with one call.
    """

    def __init__(self, clock: Clock, connected: bool = True) -> None:
        super().__init__(connected)
        self.clock = clock
        self.batches: list[list[tuple[str, int, list[int]]]] = []
        self._pending: list[tuple[str, Entry, int, Any]] = []

    @property  # type: ignore[override]
    def pending(self) -> list[tuple[str, Entry, int, Any]]:
        self.clock.advance(0)
        return self._pending

    @pending.setter
    def pending(self, value: list[tuple[str, Entry, int, Any]]) -> None:
        self._pending = value

    def append(self, pbx: str, entry: Entry, epoch: int) -> Deferred[Any]:
        raise AssertionError("a batch engine gets batches")

    def send(self, batch: list[Any], receiver: Any) -> None:
        self.batches.append([(pbx, base, seqs(entries)) for pbx, base, entries in batch])
        for pbx, base, entries in batch:
            for entry in entries:
                self._pending.append((pbx, entry, base + entry[EPOCH], _Answer(receiver)))

    def ack(self, count: int | None = None) -> None:
        pending = self.pending
        count = len(pending) if count is None else count
        done, self.pending = pending[:count], pending[count:]
        index = 0
        while index < len(done):
            receiver = done[index][3].receiver
            run = 0
            while index + run < len(done) and done[index + run][3].receiver is receiver:
                pbx, entry, epoch, _ = done[index + run]
                self.streams.setdefault(pbx, []).append((epoch, entry[SEQ], entry[EVENT]))
                run += 1
            receiver.answered(run, None)
            index += run

    def lose(self, applied: int = 0) -> None:
        self.connected = False
        done, self.pending = self.pending, []
        for pbx, entry, epoch, _ in done[:applied]:
            self.streams.setdefault(pbx, []).append((epoch, entry[SEQ], entry[EVENT]))
        assert self.listener is not None
        self.listener.engine_lost()
        failed = []
        for _, _, _, answer in done:
            if answer.receiver not in failed:
                failed.append(answer.receiver)
                answer.receiver.failed(Failure(ConnectionError("lost")))  # type: ignore[no-untyped-call]


class BatchPublisherTests(PublisherTests):
    """StreamPublisher against FakeBatchEngine: the same guarantees, entries sent in batches."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.engine = FakeBatchEngine(self.clock)
        self.publisher = StreamPublisher(self.engine, self.clock, window=3)
        self.east = make_buffer(max_events=10)
        self.publisher.add_buffer(self.east)

    def test_interfaces(self) -> None:
        """The fake batch engine provides IBatchStreamEngine."""
        self.assertTrue(verifyObject(IBatchStreamEngine, self.engine))
        self.assertTrue(verifyObject(IEngineListener, self.publisher))

    def test_turns_between_pbxs(self) -> None:
        """With run=1 the window is shared as turns of one entry would share it, in runs."""
        self.publisher.run = 1
        west = make_buffer(pbx="west")
        self.publisher.add_buffer(west)
        self.engine.connected = False
        self.publisher.engine_lost()
        for seq in range(1, 6):
            self.east.add(event(seq))
        west.add(event(1))
        self.engine.back()
        self.assertEqual(
            [(pbx, e[SEQ]) for pbx, e, _, _ in self.engine.pending],
            [("east", 1), ("east", 2), ("west", 1)],
        )

    def test_one_batch_per_turn(self) -> None:
        """Entries added in one reactor turn go out together, one batch, at its end."""
        for seq in range(1, 3):
            self.east.add(event(seq))
        self.assertEqual(self.engine.batches, [])
        self.clock.advance(0)
        self.assertEqual(self.engine.batches, [[("east", 0, [1, 2])]])

    def test_a_read_goes_out_at_once(self) -> None:
        """A read's entries (``run`` or more, added at once) go out at once; one entry waits."""
        publisher = StreamPublisher(self.engine, self.clock, window=100, run=4)
        west = make_buffer(pbx="west")
        publisher.add_buffer(west)
        west.extend([event(seq) for seq in range(1, 5)])
        self.assertEqual(self.engine.batches, [[("west", 0, [1, 2, 3, 4])]])
        west.add(event(5))
        self.assertEqual(len(self.engine.batches), 1)
        self.clock.advance(0)
        self.assertEqual(self.engine.batches[-1], [("west", 0, [5])])

    def backlogs(self, run: int, counts: tuple[int, ...]) -> list[PBXBuffer]:
        """PBXs a, b, c, ... with ``counts`` entries waiting, then Redis back (window 10)."""
        publisher = StreamPublisher(self.engine, self.clock, window=10, run=run)
        buffers = [make_buffer(pbx=name) for name in "abcdefgh"[: len(counts)]]
        self.engine.connected = False
        publisher.engine_lost()
        for buffer, count in zip(buffers, counts, strict=True):
            publisher.add_buffer(buffer)
            for seq in range(1, count + 1):
                buffer.add(event(seq))
        self.engine.back()
        self.clock.advance(0)
        return buffers

    def test_fair_shares(self) -> None:
        """Many PBXs share a window as one entry each per round would, in their order."""
        buffers = self.backlogs(run=1, counts=(1, 6, 2, 6))
        # Rounds of one each: a b c d, b c d, b d, then b fills the room of 10.
        self.assertEqual(
            self.engine.batches[-1],
            [("a", 0, [1]), ("b", 0, [1, 2, 3, 4]), ("c", 0, [1, 2]), ("d", 0, [1, 2, 3])],
        )
        self.engine.ack()
        self.engine.ack()
        self.assertEqual(
            {pbx: seqs for pbx, _, seqs in self.engine.batches[-1]},
            {"b": [5, 6], "d": [4, 5, 6]},
        )
        for buffer in buffers:
            self.assertEqual((buffer.events, len(buffer.in_flight)), (0, 0))

    def test_fair_runs(self) -> None:
        """With run=3, the PBXs share a window in rounds of up to 3 entries each, in turns."""
        self.backlogs(run=3, counts=(1, 12, 2, 12))
        # A round of 3 each (a 1, b 3, c 2, d 3) is 9; the next round starts at b: 1 more.
        self.assertEqual(
            self.engine.batches[-1],
            [("a", 0, [1]), ("b", 0, [1, 2, 3, 4]), ("c", 0, [1, 2]), ("d", 0, [1, 2, 3])],
        )
        self.engine.ack()
        # d got the fewest of those left with entries, so its turn comes first: rounds of
        # 3 (d 3, b 3), then the 4 left of the room in turns (d 3, b 1).
        self.assertEqual(
            self.engine.batches[-1], [("d", 0, [4, 5, 6, 7, 8, 9]), ("b", 0, [5, 6, 7, 8])]
        )
        self.engine.ack()
        self.assertEqual(
            self.engine.batches[-1], [("b", 0, [9, 10, 11, 12]), ("d", 0, [10, 11, 12])]
        )

    def test_shares_in_runs(self) -> None:
        """_shares gives whole rounds of run entries, then the rest in turn order."""
        self.assertEqual(_shares([100, 100, 100], 100, 64), [64, 36, 0])
        self.assertEqual(_shares([100, 5, 100], 150, 64), [81, 5, 64])
        self.assertEqual(_shares([200, 200], 300, 64), [172, 128])
        self.assertEqual(_shares([3, 4], 100, 64), [3, 4])
        self.assertEqual(_shares([5, 5, 5], 7, 1), [3, 2, 2])

    def test_partial_answers(self) -> None:
        """Answers that come a few at a time acknowledge exactly those entries, in order."""
        publisher = StreamPublisher(self.engine, self.clock, window=10)
        west = make_buffer(pbx="west")
        publisher.add_buffer(west)
        for seq in range(1, 6):
            west.add(event(seq))
        self.clock.advance(0)
        receiver = self.engine.pending[0][3].receiver
        self.engine.pending = []
        receiver.answered(2, None)
        self.assertEqual(seqs(west.in_flight), [3, 4, 5])
        receiver.answered(2, [(1, "OOM")])
        self.assertEqual(seqs(west.in_flight), [5])
        self.assertEqual(west.metrics.dropped["rejected"], 1)
        self.assertEqual(west.metrics.published, 3)
        receiver.answered(1, None)
        self.assertEqual((west.events, publisher.in_flight), (0, 0))

    def test_answers_after_loss_ignored(self) -> None:
        """A batch answered after its connection was lost changes nothing: resolve settles it."""
        for seq in range(1, 3):
            self.east.add(event(seq))
        receiver = self.engine.pending[0][3].receiver
        self.engine.lose()
        receiver.answered(2, None)
        self.assertEqual(seqs(self.east.in_flight), [1, 2])
        self.assertEqual(self.east.metrics.published, 0)
