"""
`StreamPublisher`: moves the PBXs' buffered entries to a stream engine, a bounded window at a time.

The engine is behind `IStreamEngine` (Redis Streams: `txami.daemon.redisengine`),
so another one (Kafka, NATS, ...) can follow by implementing four methods; an
engine that also provides `IBatchStreamEngine` is given its entries in
batches, whose answers come back to one `IBatchReceiver` per batch rather
than a Deferred per entry.  A read's events, added to a buffer together (at
least ``run`` entries), go out at once while they are fresh in memory; other
entries that become ready while the engine can take more are sent together at
the end of the reactor's turn (one ``callLater(0)`` for all of them).
The publisher owns what every engine needs the same way:

- a window: at most ``window`` entries sent and not yet acknowledged, taken
  from the PBXs' buffers in turn (one each round), so one busy PBX cannot
  starve the others; it is refilled when half of it has been acknowledged,
  so that entries travel in batches;
- gaps: an entry that has dropped events in front of it is preceded by one
  ``TxamiGap`` marker saying how many; just before, the buffer is brought
  10 % below its bounds (`PBXBuffer.make_headroom`), so that the events
  arriving while the backlog drains do not cause a second gap right behind
  the first;
- reconnection: while the engine is down, entries wait in the buffers
  (bounded there); when it is back, each PBX's entries in doubt are checked
  against its stream's newest entry (`PBXBuffer.resolve`) before anything
  else is sent, so nothing is lost or added twice.

Nothing here ever waits on the engine: adding to a buffer returns at once.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from operator import attrgetter, itemgetter
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from txami.daemon.buffer import PBXBuffer
from txami.daemon.entries import EPOCH, GAP, RECEIVED, Entry, make_entry, marker_json

__all__ = [
    "EntryRejected",
    "IBatchReceiver",
    "IBatchStreamEngine",
    "IEngineListener",
    "IStreamEngine",
    "StreamPublisher",
]

_log = Logger(namespace="txami.daemon.publisher")


class EntryRejected(Exception):
    """The engine is up but refused an entry (e.g. Redis answered an error)."""

    def __init__(self, pbx: str, reason: str) -> None:
        super().__init__(f"the stream of {pbx} refused an entry: {reason}")
        self.pbx = pbx
        self.reason = reason


class IEngineListener(Interface):
    """What an engine tells its publisher."""

    def engine_ready() -> None:
        """The engine is connected and can take entries."""

    def engine_lost() -> None:
        """The engine lost its connection: entries sent and not acknowledged are in doubt."""


class IStreamEngine(Interface):
    """Where entries go: one ordered stream per PBX."""

    connected = Attribute("Whether entries can be sent now.")

    def set_listener(listener: IEngineListener) -> None:  # noqa: N805
        """Report readiness and losses to ``listener``."""

    def newest(pbx: str) -> Deferred[tuple[int, int] | None]:  # noqa: N805
        """The ``(epoch, seq)`` of the newest entry in ``pbx``'s stream, or None if empty."""

    def append(pbx: str, entry: Entry, epoch: int) -> Deferred[Any]:  # noqa: N805
        """
        Add ``entry`` to ``pbx``'s stream with ``epoch`` as its epoch; fires
        once the engine has acknowledged it, fails with `EntryRejected` if the
        engine refused it, or with another error if the connection failed
        (then ``engine_lost`` comes too).  Entries sent to one PBX's stream
        are added in the order of the calls.
        """


#: Entries of one PBX for a batch engine: its name, its epoch base, the entries in order.
Run = tuple[str, int, list[Entry]]


class IBatchReceiver(Interface):
    """Where a batch engine reports the answers to one batch, in order."""

    def answered(count: int, rejected: list[tuple[int, str]] | None) -> None:  # noqa: N805
        """
        The engine answered the batch's next ``count`` entries: acknowledged,
        but those listed in ``rejected`` (their offset among the ``count``,
        and why), which it refused.
        """

    def failed(reason: Failure) -> None:  # noqa: N805
        """
        The connection failed before the rest of the batch was answered (then
        ``engine_lost`` comes too): those entries are in doubt.  Called at
        most once, and nothing is answered after it.
        """


class IBatchStreamEngine(IStreamEngine):
    """An engine that takes many entries at once (see the module doc)."""

    def send(batch: list[Run], receiver: IBatchReceiver) -> None:  # noqa: N805
        """
        Add the entries of each run ``(pbx, base, entries)`` of ``batch`` to
        ``pbx``'s stream, each with its epoch plus ``base`` as its epoch, in
        order, and report the answers to ``receiver`` as they come (at once,
        with `IBatchReceiver.failed`, if the engine is down).  Entries of one
        PBX's stream are added in the order they were sent, across batches.
        """


class _Batch:
    """
    One batch on its way: its runs (see `Run`), the buffer of each, and how
    far the answers have come (run ``index``, entry ``offset`` in it).
    """

    __slots__ = ("buffers", "generation", "index", "offset", "publisher", "runs")

    def __init__(
        self,
        publisher: StreamPublisher,
        runs: list[Run],
        buffers: list[PBXBuffer],
        generation: int,
    ) -> None:
        self.publisher = publisher
        self.runs = runs
        self.buffers = buffers
        self.generation = generation
        self.index = self.offset = 0

    def answered(self, count: int, rejected: list[tuple[int, str]] | None) -> None:
        """See `IBatchReceiver.answered`."""
        publisher = self.publisher
        if self.generation != publisher._generation:
            # Sent on a connection since lost: `PBXBuffer.resolve` has settled it.
            return
        publisher.in_flight -= count
        now = publisher.clock.seconds()
        runs, buffers = self.runs, self.buffers
        index, offset = self.index, self.offset
        if not (index or offset or rejected) and count == sum(map(len, map(_entries_of, runs))):
            # The whole batch at once, as usual.
            for run, buffer in zip(runs, buffers, strict=True):
                _acknowledge(buffer, run[2], now)
            self.index = len(runs)
        else:
            self._answered(count, dict(rejected) if rejected else None, now)
        if publisher.state == "up" and (rejected or publisher.in_flight <= publisher._low_water):
            publisher._pump()

    def _answered(self, count: int, refused: dict[int, str] | None, now: float) -> None:
        """`answered` for a part of the batch, or with entries refused."""
        runs, buffers = self.runs, self.buffers
        index, offset = self.index, self.offset
        done = 0
        while done < count:
            entries = runs[index][2]
            end = min(len(entries), offset + count - done)
            buffer = buffers[index]
            if refused is None:
                _acknowledge(buffer, entries[offset:end], now)
            else:
                for position in range(offset, end):
                    entry = entries[position]
                    reason = refused.get(done + position - offset)
                    if reason is None:
                        _acknowledge(buffer, [entry], now)
                    else:
                        why = EntryRejected(buffer.pbx, reason)
                        _log.warn("{pbx}: {why}", pbx=buffer.pbx, why=why)
                        buffer.rejected(entry)
            done += end - offset
            if end == len(entries):
                index += 1
                offset = 0
            else:
                offset = end
        self.index, self.offset = index, offset

    def failed(self, reason: Failure) -> None:
        """See `IBatchReceiver.failed`."""
        publisher = self.publisher
        if self.generation == publisher._generation and publisher.state != "down":
            publisher.engine_lost()


def _shares(counts: list[int], room: int, run: int = 1) -> list[int]:
    """
    How many entries each buffer (holding ``counts``) sends when ``room``
    is filled ``run`` entries per buffer a round, in turn order: the same
    level (a multiple of ``run``) for all, or all they have; then, in turn
    order, up to ``run`` more for each buffer that has more, while room is left.
    """
    if sum(counts) <= room:
        return counts
    level = 0
    taken = 0
    waiting = len(counts)
    for count in sorted(counts):
        cost = (count - level) * waiting
        if taken + cost > room:
            break
        taken += cost
        level = count
        waiting -= 1
    level += (room - taken) // waiting
    level -= level % run
    shares = [min(count, level) for count in counts]
    extra = room - sum(shares)
    for index, count in enumerate(counts):
        if extra <= 0:
            break
        more = min(count - shares[index], run, extra)
        if more > 0:
            shares[index] += more
            extra -= more
    return shares


_entries_of = itemgetter(2)
_unsent_of = attrgetter("unsent")
_received_of = itemgetter(RECEIVED)


def _acknowledge(buffer: PBXBuffer, entries: list[Entry], now: float) -> None:
    """The stream holds ``entries``, the oldest of ``buffer``'s in flight, in order."""
    buffer.acknowledged_oldest(entries)
    buffer.metrics.events_published(list(map(_received_of, entries)), now)


@implementer(IEngineListener)
class StreamPublisher(Service):
    """Publishes every PBX buffer's entries through ``engine``; see the module doc."""

    #: Seconds `stopService` waits for the buffers to drain before closing.
    drain_timeout = 5.0
    #: Seconds before checking the streams again when a check after a reconnect failed.
    retry_delay = 1.0

    def __init__(
        self, engine: IStreamEngine, clock: IReactorTime, window: int = 4096, run: int = 64
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, not {window!r}")
        if run < 1:
            raise ValueError(f"run must be at least 1, not {run!r}")
        self.engine = engine
        self.clock = clock
        self.window = window
        #: When the PBXs' entries do not all fit the window's room, each sends up to
        #: this many a round, in turns: a few large runs per batch rather than one or
        #: two entries from every PBX (a run costs its own encoding and acknowledgement).
        self.run = run
        # A new entry goes out at once if the window has room; but the backlog is
        # sent on acknowledgements only once half the window is free, not one entry
        # per answer: entries then go out (and their answers come back) in batches.
        self._low_water = window // 2
        self.buffers: dict[str, PBXBuffer] = {}
        #: Entries sent and not yet acknowledged or failed.
        self.in_flight = 0
        #: "down", "syncing" or "up".
        self.state = "down"
        self._turns: deque[PBXBuffer] = deque()
        self._generation = 0
        self._drained: list[Deferred[None]] = []
        self._batching = bool(IBatchStreamEngine.providedBy(engine))
        self._flush: IDelayedCall | None = None
        engine.set_listener(self)

    def add_buffer(self, buffer: PBXBuffer) -> None:
        """Publish ``buffer``'s entries (to its PBX's stream)."""
        self.buffers[buffer.pbx] = buffer
        buffer.ready = self._ready
        if self.state != "down" and buffer.epoch_base is None:
            d = self.engine.newest(buffer.pbx)
            d.addCallback(self._resolve, buffer, self._generation)
            d.addErrback(lambda f: None)  # the connection failed: engine_ready checks again
        if buffer.unsent:
            self._ready(buffer)

    # --- IEngineListener -------------------------------------------------------------------------

    def engine_ready(self) -> None:
        """Check every PBX's entries in doubt against its stream, then start sending."""
        self._generation += 1
        generation = self._generation
        self.state = "syncing"
        self.in_flight = 0
        checks = []
        for buffer in self.buffers.values():
            if buffer.in_flight or buffer.epoch_base is None:
                d = self.engine.newest(buffer.pbx)
                d.addCallback(self._resolve, buffer, generation)
                checks.append(d)
        done: Deferred[Any] = DeferredList(checks, consumeErrors=True)
        done.addCallback(self._synced, generation)

    def _resolve(self, newest: tuple[int, int] | None, buffer: PBXBuffer, generation: int) -> None:
        if generation != self._generation:
            return
        if buffer.epoch_base is None:
            buffer.epoch_base = newest[0] if newest is not None else 0
        found = buffer.resolve(newest)
        if found:
            _log.info(
                "{pbx}: {count} entries sent before the reconnect were already in the stream",
                pbx=buffer.pbx,
                count=found,
            )
        if buffer.unsent:
            self._ready(buffer)

    def _synced(self, results: list[tuple[bool, Any]], generation: int) -> None:
        if generation != self._generation or self.state != "syncing":
            return
        if not all(ok for ok, _ in results):
            # Redis refused (still loading its data, say) or the connection failed:
            # check again in a moment (a lost connection's engine_ready does too).
            _log.info("could not check the streams after a reconnect; retrying")
            self.clock.callLater(self.retry_delay, self._retry_sync, generation)
            return
        self.state = "up"
        self._pump()

    def _retry_sync(self, generation: int) -> None:
        if generation == self._generation and self.engine.connected:
            self.engine_ready()

    def engine_lost(self) -> None:
        """Stop sending; what was in flight is in doubt until the engine is back."""
        self._generation += 1
        self.state = "down"
        self.in_flight = 0

    # --- sending -------------------------------------------------------------------------------

    def _ready(self, buffer: PBXBuffer) -> None:
        if not buffer.queued:
            buffer.queued = True
            self._turns.append(buffer)
        if self.state == "up" and self.in_flight < self.window:
            if not self._batching:
                if self._flush is None:
                    self._pump()
            elif len(buffer.unsent) >= self.run:
                self._pump()  # a read's events: sent while they are fresh
            elif self._flush is None:
                self._flush = self.clock.callLater(0, self._flushed)

    def _flushed(self) -> None:
        self._flush = None
        if self.state == "up":
            self._pump()

    def _pump(self) -> None:
        if self._batching:
            self._pump_batch()
        else:
            self._pump_each()
        if not self.in_flight and self._drained and self.empty():
            waiters, self._drained = self._drained, []
            for waiter in waiters:
                if not waiter.called:
                    waiter.callback(None)

    def _turn(self) -> PBXBuffer | None:
        """The buffer whose turn it is (None if no buffer has an entry to send)."""
        turns = self._turns
        while turns:
            buffer = turns[0]
            if buffer.unsent and buffer.epoch_base is not None:
                return buffer
            turns.popleft()
            buffer.queued = False
        return None

    def _next(self, buffer: PBXBuffer) -> Entry:
        """Take ``buffer``'s next entry (its first unsent, or a gap marker in front of it)."""
        unsent = buffer.unsent
        head = unsent[0]
        if buffer.gap_of(head) is not None and buffer.make_headroom():
            head = unsent[0]
        gap = buffer.pop_gap(head)
        if gap is None:
            unsent.popleft()
            buffer.in_flight.append(head)
            return head
        count, first, last, epoch = gap
        now = self.clock.seconds()
        json = marker_json(buffer.pbx, GAP, now, Dropped=count, FirstSeq=first, LastSeq=last)
        entry = make_entry(epoch, last, GAP, now, json)
        buffer.put_in_flight(entry)
        return entry

    def _pump_each(self) -> None:
        """Send entries, one `IStreamEngine.append` each, while the window has room."""
        turns = self._turns
        while self.state == "up" and self.in_flight < self.window:
            buffer = self._turn()
            if buffer is None:
                break
            entry = self._next(buffer)
            if len(turns) > 1:
                turns.rotate(-1)
            self.in_flight += 1
            epoch = buffer.epoch_base + entry[EPOCH]  # type: ignore[operator]
            d = self.engine.append(buffer.pbx, entry, epoch)
            d.addCallbacks(
                self._acknowledged,
                self._failed,
                callbackArgs=(buffer, entry, self._generation),
                errbackArgs=(buffer, entry, self._generation),
            )

    def _pump_batch(self) -> None:
        """
        Fill the window's room with one batch and hand it to the engine.  The
        buffers share the room as turns of `run` entries each round would share
        it (`_pump_turns` takes one at a time), and each buffer's share goes as
        one run.
        """
        room = self.window - self.in_flight
        if self.state != "up" or room <= 0:
            return
        turns = self._turns
        active = [buffer for buffer in turns if buffer.unsent and buffer.epoch_base is not None]
        if len(active) < len(turns):
            for buffer in turns:
                if not buffer.unsent or buffer.epoch_base is None:
                    buffer.queued = False
            if not active:
                turns.clear()
                return
        unsents = list(map(_unsent_of, active))
        counts = list(map(len, unsents))
        shares = _shares(counts, room, self.run)
        if any(
            buffer.gaps and any(map(buffer.gap_of, islice(unsent, share)))
            for buffer, unsent, share in zip(active, unsents, shares, strict=True)
        ):
            # A gap marker goes in front of some entry: take them one at a time.
            self._pump_turns(room)
            return
        runs: list[Run] = []
        buffers: list[PBXBuffer] = []
        left: list[PBXBuffer] = []
        left_shares: list[int] = []
        for buffer, share, count in zip(active, shares, counts, strict=True):
            if not share:
                left.append(buffer)
                left_shares.append(0)
                continue
            unsent = buffer.unsent
            if share == count:
                chunk = list(unsent)
                unsent.clear()
                buffer.queued = False
            else:
                chunk = list(islice(unsent, share))
                for _ in range(share):
                    unsent.popleft()
                left.append(buffer)
                left_shares.append(share)
            buffer.in_flight.extend(chunk)
            runs.append((buffer.pbx, buffer.epoch_base, chunk))  # type: ignore[arg-type]
            buffers.append(buffer)
            room -= share
        # The turns go on where one entry at a time would have left them: at the
        # first buffer that got the fewest entries among those left with some.
        turns.clear()
        if left:
            start = left_shares.index(min(left_shares))
            turns.extend(left[start:])
            turns.extend(left[:start])
        self._send(runs, buffers, room)

    def _pump_turns(self, room: int) -> None:
        """Fill ``room`` one entry at a time, in turns (gap markers made as they come)."""
        turns = self._turns
        runs: list[Run] = []
        buffers: list[PBXBuffer] = []
        current: PBXBuffer | None = None
        entries: list[Entry] = []
        while room > 0:
            buffer = self._turn()
            if buffer is None:
                break
            if buffer is not current:
                current, entries = buffer, []
                runs.append((buffer.pbx, buffer.epoch_base, entries))  # type: ignore[arg-type]
                buffers.append(buffer)
            entries.append(self._next(buffer))
            if len(turns) > 1:
                turns.rotate(-1)
            room -= 1
        self._send(runs, buffers, room)

    def _send(self, runs: list[Run], buffers: list[PBXBuffer], room: int) -> None:
        if runs:
            self.in_flight = self.window - room
            engine: Any = self.engine
            engine.send(runs, _Batch(self, runs, buffers, self._generation))

    def _acknowledged(self, result: object, buffer: PBXBuffer, entry: Entry, gen: int) -> None:
        if gen != self._generation:
            # Sent on a connection since lost: `PBXBuffer.resolve` has settled it.
            return
        self.in_flight -= 1
        buffer.acknowledged(entry)
        buffer.metrics.event_published(self.clock.seconds() - entry[RECEIVED])
        if self.state == "up" and self.in_flight <= self._low_water:
            self._pump()

    def _failed(self, failure: Failure, buffer: PBXBuffer, entry: Entry, gen: int) -> None:
        if gen != self._generation:
            return
        self.in_flight -= 1
        if isinstance(failure.value, EntryRejected):
            _log.warn("{pbx}: {why}", pbx=buffer.pbx, why=failure.getErrorMessage())
            buffer.rejected(entry)
            if self.state == "up":
                self._pump()
            return
        # The connection failed: the entry stays in flight, in doubt, until the engine
        # is back.  Nothing more is sent meanwhile (engine_lost says so too).
        if self.state != "down":
            self.engine_lost()

    # --- reading and stopping ------------------------------------------------------------------

    def empty(self) -> bool:
        """Whether every buffer is empty (everything acknowledged)."""
        return all(not b.unsent and not b.in_flight for b in self.buffers.values())

    def drained(self) -> Deferred[None]:
        """Fires once every buffer is empty (at once if they are)."""
        if self.empty():
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._drained.append(d)
        return d

    def stopService(self) -> Deferred[None]:
        """Give the buffers up to `drain_timeout` seconds to reach the stream."""
        super().stopService()  # type: ignore[no-untyped-call]
        if self.empty() or self.state != "up":
            if not self.empty():
                _log.warn("stopping with entries not published (the stream is unreachable)")
            self._cancel_flush()
            return succeed(None)
        d = self.drained()
        d.addTimeout(self.drain_timeout, self.clock, onTimeoutCancel=self._drain_timed_out)
        return d.addBoth(self._stopped)

    def _stopped(self, result: None) -> None:
        self._cancel_flush()
        return result

    def _cancel_flush(self) -> None:
        flush, self._flush = self._flush, None
        if flush is not None and flush.active():
            flush.cancel()

    def _drain_timed_out(self, result: object, timeout: float) -> None:
        _log.warn("stopping before every entry was published ({timeout:g} s)", timeout=timeout)
        return None
