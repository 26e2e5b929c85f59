"""
The bounded buffers between the AMI sessions and the stream.

Each PBX has a `PBXBuffer`: the entries not yet sent (``unsent``) and those
sent and not yet acknowledged (``in_flight``), bounded in entries and in
bytes; all of them share a `BufferBudget`, the daemon-wide bound.  Adding
never waits: when a bound is passed, the oldest unsent *event* is dropped
(markers are kept: they are few, one or two per AMI login), counted in the
PBX's metrics by reason, and remembered as a gap in front of the entry that
follows it (`PBXBuffer.gaps`).  A run of drops in a row makes one gap, so the
publisher reports it with exactly one ``TxamiGap`` marker, just before that
entry.

Entries in flight are never dropped: the stream may already hold them.  When
the connection to Redis is lost they are *in doubt*; `PBXBuffer.resolve`
sorts them out against the stream's newest entry once Redis is back, so that
none is lost and none is added twice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice
from operator import is_, itemgetter

from txami.daemon.entries import (
    ENTRY_OVERHEAD,
    EPOCH,
    JSON,
    RECEIVED,
    SEQ,
    Entry,
    entry_size,
    is_marker,
)
from txami.daemon.metrics import Metrics

__all__ = ["BufferBudget", "PBXBuffer"]

#: How far below its bounds a buffer is brought before a gap is reported.
HEADROOM = 0.1

#: A run of dropped events: ``[count, first seq, last seq, epoch]``.
Gap = list[int]

_json_of = itemgetter(JSON)
_key_of = itemgetter(EPOCH, SEQ)


def _join(older: Gap | None, newer: Gap | None) -> Gap | None:
    """Two adjacent runs of dropped events as one."""
    if older is None:
        return newer
    if newer is None:
        return older
    return [older[0] + newer[0], older[1], newer[2], newer[3]]


def _size(entries: list[Entry]) -> int:
    """What ``entries`` count against the byte bounds (`entry_size` of each, summed)."""
    return sum(map(len, map(_json_of, entries))) + len(entries) * ENTRY_OVERHEAD


class BufferBudget:
    """The bound that every PBX's buffer shares: entries and bytes held in total."""

    def __init__(self, max_events: int, max_bytes: int) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.events = 0
        self.bytes = 0
        self.buffers: list[PBXBuffer] = []

    def over(self) -> bool:
        """Whether the buffers hold more than the bound allows."""
        return self.events > self.max_events or self.bytes > self.max_bytes

    def shed(self) -> None:
        """Drop from the fullest buffers (in bytes) until the total is within the bound."""
        while self.over():
            candidates = [b for b in self.buffers if b.droppable]
            if not candidates:
                return
            fullest = max(candidates, key=lambda b: b.bytes)
            fullest.drop_oldest("total_buffer_full")


class PBXBuffer:
    """
    One PBX's entries on their way to the stream; see the module doc.
    ``ready`` is called when an entry is added while the buffer is not
    ``queued`` (in the publisher's turns, which it sets): the publisher sends
    it when it can, and a queued buffer is looked at again anyway.
    """

    def __init__(
        self,
        pbx: str,
        *,
        max_events: int,
        max_bytes: int,
        budget: BufferBudget,
        metrics: Metrics,
        ready: Callable[[PBXBuffer], object] = lambda buffer: None,
    ) -> None:
        self.pbx = pbx
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.budget = budget
        self.metrics = metrics
        self.ready = ready
        #: Made once and never replaced: twistd freezes it with the other start-up
        #: objects (``txami.daemon.options.freeze_startup_objects``), so the garbage
        #: collector's full passes never walk the entries it holds.
        self.unsent: deque[Entry] = deque()
        self.in_flight: deque[Entry] = deque()
        #: The runs of dropped events in front of unsent entries, by their ``(epoch, seq)``.
        self.gaps: dict[tuple[int, int], Gap] = {}
        #: Entries and bytes held (unsent and in flight).
        self.events = 0
        self.bytes = 0
        #: Dropped events with no entry after them yet.
        self.trailing_gap: Gap | None = None
        #: The stream's last epoch before this daemon's first entry (None until known).
        self.epoch_base: int | None = None
        #: Whether the publisher has this buffer in its turns.
        self.queued = False
        budget.buffers.append(self)

    # --- adding and dropping -------------------------------------------------------------------

    def add(self, entry: Entry) -> None:
        """Hold ``entry`` for the stream; drop the oldest events if a bound is passed."""
        self.extend((entry,))

    def extend(self, entries: Iterable[Entry]) -> None:
        """
        Hold ``entries`` (in order) for the stream; drop the oldest events if
        a bound is passed.  The sequencer adds the events of a read at once.
        """
        added = list(entries)
        if not added:
            return
        if self.trailing_gap is not None:
            self.gap_before(added[0], self.trailing_gap)
            self.trailing_gap = None
        self.unsent.extend(added)
        count = len(added)
        size = _size(added)
        self.events = events = self.events + count
        self.bytes = held = self.bytes + size
        budget = self.budget
        budget.events += count
        budget.bytes += size
        if events > self.max_events or held > self.max_bytes:
            while (
                self.events > self.max_events or self.bytes > self.max_bytes
            ) and self.drop_oldest("buffer_full"):
                pass
        if budget.events > budget.max_events or budget.bytes > budget.max_bytes:
            budget.shed()
        if not self.queued:
            self.ready(self)

    def gap_before(self, entry: Entry, run: Gap | None) -> None:
        """Note ``run`` of dropped events as just in front of ``entry`` (before any run there)."""
        key = _key_of(entry)
        joined = _join(run, self.gaps.get(key))
        if joined is not None:
            self.gaps[key] = joined

    def gap_of(self, entry: Entry) -> Gap | None:
        """The run of dropped events just in front of unsent ``entry`` (None if there is none)."""
        return self.gaps.get(_key_of(entry)) if self.gaps else None

    def pop_gap(self, entry: Entry) -> Gap | None:
        """`gap_of` ``entry``, no longer noted: it is being reported (or carried on)."""
        return self.gaps.pop(_key_of(entry), None) if self.gaps else None

    @property
    def droppable(self) -> bool:
        """Whether an unsent event is there to drop."""
        return not all(map(is_marker, self.unsent))

    def drop_oldest(self, reason: str) -> bool:
        """Drop the oldest unsent event (counted under ``reason``); False if there is none."""
        unsent = self.unsent
        index = 0
        for entry in unsent:
            if not is_marker(entry):
                break
            index += 1
        else:
            return False
        del unsent[index]
        self._forget(entry)
        self.metrics.event_dropped(reason)
        epoch, seq = _key_of(entry)
        run = _join(self.pop_gap(entry), [1, seq, seq, epoch])
        if index < len(unsent):
            self.gap_before(unsent[index], run)
        else:
            self.trailing_gap = _join(self.trailing_gap, run)
        return True

    def make_headroom(self, fraction: float = HEADROOM) -> int:
        """
        Drop the oldest unsent events until the buffer is ``fraction`` below
        its bounds; returns how many.  The publisher calls it just before it
        reports a gap: while the backlog drains, new events would otherwise go
        on pushing out the events right behind the gap marker, each run of them
        needing a marker of its own.  Dropped here, they join the gap being
        reported, so one marker says it all.
        """
        events_left = self.max_events * (1 - fraction)
        bytes_left = self.max_bytes * (1 - fraction)
        dropped = 0
        while (self.events > events_left or self.bytes > bytes_left) and self.drop_oldest(
            "buffer_full"
        ):
            dropped += 1
        return dropped

    def _forget(self, entry: Entry) -> None:
        size = entry_size(entry)
        self.events -= 1
        self.bytes -= size
        self.budget.events -= 1
        self.budget.bytes -= size

    # --- sending -------------------------------------------------------------------------------

    def put_in_flight(self, entry: Entry) -> None:
        """Count a marker made at send time (a gap) as held and in flight."""
        size = entry_size(entry)
        self.in_flight.append(entry)
        self.events += 1
        self.bytes += size
        self.budget.events += 1
        self.budget.bytes += size

    def acknowledged(self, entry: Entry) -> None:
        """The stream holds ``entry``: stop holding it."""
        in_flight = self.in_flight
        if in_flight and in_flight[0] is entry:
            in_flight.popleft()
        else:
            in_flight.remove(entry)
        self._forget(entry)

    def acknowledged_oldest(self, entries: list[Entry]) -> None:
        """
        The stream holds ``entries``, the oldest in flight, in the order they
        were sent: `acknowledged` for each, in one go.
        """
        count = len(entries)
        in_flight = self.in_flight
        if count == len(in_flight) and all(map(is_, in_flight, entries)):
            in_flight.clear()
        elif count > 4 and count * 4 > len(in_flight) and all(map(is_, in_flight, entries)):
            self.in_flight = deque(islice(in_flight, count, None))
        else:
            for entry in entries:
                if in_flight[0] is entry:
                    in_flight.popleft()
                else:
                    in_flight.remove(entry)
        size = _size(entries)
        self.events -= count
        self.bytes -= size
        budget = self.budget
        budget.events -= count
        budget.bytes -= size

    def rejected(self, entry: Entry) -> None:
        """Redis refused ``entry``: drop it (an event is counted, and reported as a gap)."""
        self.acknowledged(entry)
        if is_marker(entry):
            return
        self.metrics.event_dropped("rejected")
        epoch, seq = _key_of(entry)
        run = [1, seq, seq, epoch]
        if self.unsent:
            self.gap_before(self.unsent[0], run)
        else:
            self.trailing_gap = _join(self.trailing_gap, run)

    def resolve(self, newest: tuple[int, int] | None) -> int:
        """
        After the connection to Redis was lost: the entries in flight whose
        ``(epoch, seq)`` is at or before the stream's ``newest`` are in it
        (acknowledged now); the others go back in front of the unsent ones, in
        order.  Returns how many were found in the stream.
        """
        base = self.epoch_base or 0
        found = 0
        in_flight = self.in_flight
        while in_flight and newest is not None:
            entry = in_flight[0]
            if (base + entry[EPOCH], entry[SEQ]) > newest:
                break
            self.acknowledged(entry)
            found += 1
        self.unsent.extendleft(reversed(in_flight))
        in_flight.clear()
        return found

    # --- reading -------------------------------------------------------------------------------

    def oldest_age(self, now: float) -> float:
        """Seconds since the oldest entry held was received (0 when empty)."""
        if self.in_flight:
            return max(0.0, now - self.in_flight[0][RECEIVED])
        if self.unsent:
            return max(0.0, now - self.unsent[0][RECEIVED])
        return 0.0
