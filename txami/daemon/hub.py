"""
`EventHub`: the daemon's one event handler, fanning each AMI event out to its sinks.

The hub is registered once on the factory for ``"*"``; the event log, the
metrics and every open ``/events`` stream subscribe to it.  Each event is
stamped with its receive time once, and turned into JSON at most once however
many sinks write it.  A sink that raises is logged; the others still get the event.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from txami.jsonform import event_json
from txami.message import Message

__all__ = ["EventHub", "ReceivedEvent", "Sink"]

_log = Logger(namespace="txami.daemon.hub")


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


class EventHub:
    """
    Receives every event (as a factory event handler) and hands it to each
    sink.  ``pbx`` is the name of the PBX the events come from: it is in
    every event's JSON line.  A hub can also be a sink of other hubs
    (`deliver`), to merge the events of several PBXs.
    """

    def __init__(self, clock: IReactorTime, pbx: str | None = None) -> None:
        self._clock = clock
        self._seconds = clock.seconds
        self.pbx = pbx
        self._sinks: tuple[Sink, ...] = ()
        #: Events received since the hub was made.
        self.events_received = 0

    def subscribe(self, sink: Sink) -> None:
        """Give every later event to ``sink``."""
        self._sinks += (sink,)

    def unsubscribe(self, sink: Sink) -> None:
        """Stop giving events to ``sink`` (no error if it was not subscribed)."""
        if sink in self._sinks:
            sinks = list(self._sinks)
            sinks.remove(sink)
            self._sinks = tuple(sinks)

    @property
    def sinks(self) -> tuple[Sink, ...]:
        """The current subscribers, in subscription order."""
        return self._sinks

    def __call__(self, event: Message) -> None:
        """Stamp ``event`` with the time now and give it to every sink."""
        received = ReceivedEvent(event, self._seconds(), self.pbx)
        self.events_received += 1
        # The tuple is replaced, never changed, by (un)subscribing: a sink may do so here.
        for sink in self._sinks:
            try:
                sink(received)
            except Exception:
                _log.failure(
                    "event sink {sink!r} raised on a {name} event", sink=sink, name=received.name
                )

    def deliver(self, received: ReceivedEvent) -> None:
        """Give an already stamped event to every sink."""
        self.events_received += 1
        for sink in self._sinks:
            try:
                sink(received)
            except Exception:
                _log.failure(
                    "event sink {sink!r} raised on a {name} event", sink=sink, name=received.name
                )
