"""
`EventHub`: the daemon's one event handler, fanning each AMI event out to its sinks.

The hub is registered once on the factory for ``"*"`` (as `EventHub.receive`);
the event log, the metrics and every open ``/events`` stream subscribe to it.
Each event is stamped with its receive time once, and turned into JSON at most
once however many sinks write it.  A sink that raises is logged; the others
still get the event.

The receive time is read once per reactor turn: the events of one socket read
arrived together and share it (and the JSON lines' timestamp text is then made
once for them all).  A sink that can take a whole read at once (`subscribe`'s
``batch``) is given its events together while it is the hub's only sink (no
call and no `ReceivedEvent` per event): at `flush`, which the daemon calls at
the end of each read (`AMIFactory.add_read_end_handler`), or else at the end
of the reactor turn.

The hub is on the path of every event, so it keeps its own work small: it
can count the events by name itself (`count_into`, for the metrics, rather
than a sink call per event), and a hub that merges others (`EventHub.merge`)
is passed over while it has no sinks of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from operator import attrgetter

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from txami.jsonform import event_json
from txami.message import Message

__all__ = ["BatchSink", "EventHub", "ReceivedEvent", "Sink"]

_log = Logger(namespace="txami.daemon.hub")
_RAISED = "event sink {sink!r} raised on a {name} event"
_RAISED_BATCH = "event sink {sink!r} raised on {count} events"


class ReceivedEvent:
    """
    An event with the PBX it came from, the time it arrived and (computed
    once, on demand) its JSON line.
    """

    __slots__ = ("_json", "event", "name", "pbx", "received")

    def __init__(self, event: Message, received: float, pbx: str | None = None) -> None:
        self.event = event
        self.name: str = event.name or ""
        self.received = received
        self.pbx = pbx
        self._json: str | None = None

    @property
    def json(self) -> str:
        """The event as one line of JSON (see `txami.jsonform`), without the newline."""
        if self._json is None:
            self._json = event_json(self.event, self.received, self.pbx)
        return self._json


#: A subscriber: called with every event the hub receives.
Sink = Callable[[ReceivedEvent], object]
#: A subscriber's cheaper form: called with a reactor turn's events, their names and
#: their (shared) receive time.
BatchSink = Callable[[list[Message], list[str], float], object]

_new = object.__new__
_name_of = attrgetter("name")


class EventHub:
    """
    Receives every event (as a factory event handler) and hands it to each
    sink.  ``pbx`` is the name of the PBX the events come from: it is in
    every event's JSON line.  A hub can also merge the events of other hubs
    (`merge`), those of several PBXs.
    """

    def __init__(self, clock: IReactorTime, pbx: str | None = None) -> None:
        self._clock = clock
        self._seconds = clock.seconds
        #: The receive time of this reactor turn's events (None before the turn's first).
        self._now: float | None = None
        self.pbx = pbx
        self._sinks: tuple[Sink, ...] = ()
        #: The sinks given each event: `_sinks` less merging hubs that have none.
        self._active: tuple[Sink, ...] = ()
        #: Hubs that merge this one's events (see `merge`; their `deliver` is among the sinks).
        self._mergers: list[EventHub] = []
        #: Hubs whose events this one merges.
        self._merged: list[EventHub] = []
        #: Events received since the hub was made (by a merging hub: while it had sinks).
        self.events_received = 0
        #: The batch form of the sinks that have one (see `subscribe`).
        self._batches: dict[Sink, BatchSink] = {}
        #: The only active sink's batch form, if it has one.
        self._batch: BatchSink | None = None
        #: The events of this read held for `_batch`.
        self._held: list[Message] = []
        self._counts: dict[str, int] | None = None
        self._max_names = 0
        self._other = ""

    def subscribe(self, sink: Sink, *, batch: BatchSink | None = None) -> None:
        """
        Give every later event to ``sink``.  ``batch``, if given, is the same
        sink in a cheaper form, used while ``sink`` is the only sink: at
        `flush` (the end of a read) or else at the end of the reactor turn,
        it is called with the events held since, their names and their
        (shared) receive time, rather than with a `ReceivedEvent` per event.
        """
        if batch is not None:
            self._batches[sink] = batch
        self._sinks += (sink,)
        self._update()

    def unsubscribe(self, sink: Sink) -> None:
        """Stop giving events to ``sink`` (no error if it was not subscribed)."""
        if sink in self._sinks:
            sinks = list(self._sinks)
            sinks.remove(sink)
            self._sinks = tuple(sinks)
            self._batches.pop(sink, None)
            self._update()

    def merge(self, source: EventHub) -> None:
        """
        Give every later event of ``source`` to this hub's sinks too.  While
        this hub has no sinks, ``source`` passes it over: merging costs
        nothing until someone listens here.
        """
        if source in self._merged:
            return
        self._merged.append(source)
        source._mergers.append(self)
        source.subscribe(self.deliver)

    def unmerge(self, source: EventHub) -> None:
        """Stop merging ``source``'s events (no error if they were not merged)."""
        if source in self._merged:
            self._merged.remove(source)
            source._mergers.remove(self)
            source.unsubscribe(self.deliver)

    def _update(self) -> None:
        """Recompute the active sinks, here and in the hubs this one merges."""
        # Events held for the batch sink go before any event given another way.
        self.flush()
        idle = [hub.deliver for hub in self._mergers if not hub._active]
        # The tuple is replaced, never changed: a sink may (un)subscribe while called.
        self._active = tuple(sink for sink in self._sinks if sink not in idle)
        self._batch = self._batches.get(self._active[0]) if len(self._active) == 1 else None
        for hub in self._merged:
            hub._update()

    @property
    def sinks(self) -> tuple[Sink, ...]:
        """The current subscribers, in subscription order."""
        return self._sinks

    def count_into(self, counts: dict[str, int], max_names: int, other: str) -> None:
        """
        Count every later event in ``counts`` by its name (at most ``max_names``
        names; the others under ``other``): what an `EventHub` sink that
        counts would do, without a call per event.
        """
        self._counts = counts
        self._max_names = max_names
        self._other = other

    def _count_new(self, name: str, count: int = 1) -> None:
        counts = self._counts
        assert counts is not None
        if len(counts) >= self._max_names and name not in counts:
            name = self._other
        counts[name] = counts.get(name, 0) + count

    def receive(self, event: Message) -> None:
        """Stamp ``event`` with the time now and give it to every sink."""
        now = self._now
        if now is None:
            # The events of one read came in together: one time for them all, not a
            # clock call per event (and the JSON lines' timestamps are made once).
            now = self._now = self._seconds()
            self._clock.callLater(0, self._turn_ended)
        if self._batch is not None:
            # Counted and named when handed over (`flush`), a read at a time.
            self._held.append(event)
            return
        name = event.name or ""
        self.events_received += 1
        counts = self._counts
        if counts is not None:
            try:
                counts[name] += 1
            except KeyError:
                self._count_new(name)
        # ReceivedEvent(event, now, self.pbx), without the call to its __init__.
        received = _new(ReceivedEvent)
        received.event = event
        received.name = name
        received.received = now
        received.pbx = self.pbx
        received._json = None
        for sink in self._active:
            try:
                sink(received)
            except Exception:
                _log.failure(_RAISED, sink=sink, name=name)

    def _turn_ended(self) -> None:
        self.flush()
        self._now = None

    def flush(self) -> None:
        """Give the events held for the batch sink (see `subscribe`) to it now."""
        events = self._held
        if not events:
            return
        self._held = []
        names: list[str] = list(map(_name_of, events))
        if None in names:
            names = [name or "" for name in names]
        self.events_received += len(events)
        counts = self._counts
        if counts is not None:
            for name, count in Counter(names).items():
                try:
                    counts[name] += count
                except KeyError:
                    self._count_new(name, count)
        batch = self._batch
        now = self._now
        assert batch is not None and now is not None
        try:
            batch(events, names, now)
        except Exception:
            _log.failure(_RAISED_BATCH, sink=batch, count=len(events))

    #: The hub is an event handler itself; `receive`, the bound method, is the cheaper to call.
    __call__ = receive

    def deliver(self, received: ReceivedEvent) -> None:
        """Give an already stamped event to every sink."""
        self.events_received += 1
        for sink in self._active:
            try:
                sink(received)
            except Exception:
                _log.failure(_RAISED, sink=sink, name=received.name)
