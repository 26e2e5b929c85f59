"""
`StreamPublisher`: moves the PBXs' buffered entries to a stream engine, a bounded window at a time.

The engine is behind `IStreamEngine` (Redis Streams: `txami.daemon.redisengine`),
so another one (Kafka, NATS, ...) can follow by implementing four methods.
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
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from txami.daemon.buffer import PBXBuffer
from txami.daemon.entries import GAP, Entry, marker_json

__all__ = ["EntryRejected", "IEngineListener", "IStreamEngine", "StreamPublisher"]

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


@implementer(IEngineListener)
class StreamPublisher(Service):
    """Publishes every PBX buffer's entries through ``engine``; see the module doc."""

    #: Seconds `stopService` waits for the buffers to drain before closing.
    drain_timeout = 5.0
    #: Seconds before checking the streams again when a check after a reconnect failed.
    retry_delay = 1.0

    def __init__(self, engine: IStreamEngine, clock: IReactorTime, window: int = 256) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, not {window!r}")
        self.engine = engine
        self.clock = clock
        self.window = window
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
        self._queued: set[str] = set()
        self._generation = 0
        self._drained: list[Deferred[None]] = []
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
        if buffer.pbx not in self._queued:
            self._queued.add(buffer.pbx)
            self._turns.append(buffer)
        if self.state == "up" and self.in_flight < self.window:
            self._pump()

    def _pump(self) -> None:
        turns = self._turns
        while self.state == "up" and self.in_flight < self.window and turns:
            buffer = turns[0]
            if not buffer.unsent or buffer.epoch_base is None:
                turns.popleft()
                self._queued.discard(buffer.pbx)
                continue
            head = buffer.unsent[0]
            if head.gap is not None and buffer.make_headroom():
                head = buffer.unsent[0]
            gap = head.gap
            if gap is not None:
                head.gap = None
                count, first, last, epoch = gap
                now = self.clock.seconds()
                json = marker_json(
                    buffer.pbx, GAP, now, Dropped=count, FirstSeq=first, LastSeq=last
                )
                entry = Entry(epoch, last, GAP, now, json)
                buffer.put_in_flight(entry)
            else:
                entry = buffer.unsent.popleft()
                buffer.in_flight.append(entry)
            if len(turns) > 1:
                turns.rotate(-1)
            self.in_flight += 1
            d = self.engine.append(buffer.pbx, entry, buffer.epoch_base + entry.epoch)
            d.addCallbacks(
                self._acknowledged,
                self._failed,
                callbackArgs=(buffer, entry, self._generation),
                errbackArgs=(buffer, entry, self._generation),
            )
        if not self.in_flight and self._drained and self.empty():
            waiters, self._drained = self._drained, []
            for waiter in waiters:
                if not waiter.called:
                    waiter.callback(None)

    def _acknowledged(self, result: object, buffer: PBXBuffer, entry: Entry, gen: int) -> None:
        if gen != self._generation:
            # Sent on a connection since lost: `PBXBuffer.resolve` has settled it.
            return
        self.in_flight -= 1
        buffer.acknowledged(entry)
        buffer.metrics.event_published(self.clock.seconds() - entry.received)
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
            return succeed(None)
        d = self.drained()
        d.addTimeout(self.drain_timeout, self.clock, onTimeoutCancel=self._drain_timed_out)
        return d

    def _drain_timed_out(self, result: object, timeout: float) -> None:
        _log.warn("stopping before every entry was published ({timeout:g} s)", timeout=timeout)
        return None
