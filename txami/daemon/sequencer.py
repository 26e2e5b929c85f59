"""
`Sequencer`: numbers one PBX's AMI sessions and events for the stream.

It listens to the PBX's `AMIFactory` (connections) and `EventHub` (events).
The first event or the login of a connection, whichever comes first, opens
a session: the epoch goes up by one and a ``TxamiSessionStart`` marker (seq
0) is buffered; each event then gets the next seq.  When the connection is
lost, a ``TxamiSessionEnd`` marker closes the session.  A connection that
never logged in (refused, or down before the login) opens no session.

The hub gives the sequencer a read's events at once (`EventHub.subscribe`'s
``batch``): their JSON lines are made in one pass and their entries go to the
buffer together.  Before a marker, the events the hub still holds are taken
first (`EventHub.flush`), so the stream keeps the order of the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from txami.daemon.buffer import PBXBuffer
from txami.daemon.entries import SESSION_END, SESSION_START, make_entry, marker_json
from txami.daemon.hub import EventHub, ReceivedEvent
from txami.jsonform import event_json, event_lines
from txami.message import Message

__all__ = ["Sequencer"]


class Sequencer:
    """Turns one PBX's sessions and events into entries of its `PBXBuffer`."""

    def __init__(self, pbx: str, clock: IReactorTime, buffer: PBXBuffer) -> None:
        self.pbx = pbx
        self.clock = clock
        self.buffer = buffer
        #: The current (or last) session's number, counted from 1 by this daemon.
        self.epoch = 0
        #: The last seq given in the current session.
        self.seq = 0
        self.in_session = False
        self._protocol: Any = None
        #: Hands over the events the hub holds (see `listen`).
        self._flush_hub: Callable[[], None] = _nothing

    def listen(self, hub: EventHub) -> None:
        """Take ``hub``'s events: a read at a time while the sequencer is its only sink."""
        hub.subscribe(self.add_event, batch=self.add_events)
        self._flush_hub = hub.flush

    # --- connection listener -------------------------------------------------------------------

    def connected(self, protocol: Any) -> None:
        """A new connection: remembered for the start marker's details."""
        self._protocol = protocol

    def logged_in(self, protocol: Any) -> None:
        """The session is logged in (its first events may have opened it already)."""
        self._flush_hub()
        if not self.in_session:
            self._start(self.clock.seconds())

    def disconnected(self, reason: Failure) -> None:
        """The connection ended: close the session, if one was open."""
        self._protocol = None
        self._flush_hub()
        if not self.in_session:
            return
        self.in_session = False
        self.seq += 1
        now = self.clock.seconds()
        why = reason.getErrorMessage() if reason is not None else "closed"
        json = marker_json(self.pbx, SESSION_END, now, Reason=why, Events=self.seq - 1)
        self.buffer.add(make_entry(self.epoch, self.seq, SESSION_END, now, json))

    def _start(self, when: float) -> None:
        self.in_session = True
        self.epoch += 1
        self.seq = 0
        protocol = self._protocol
        version = getattr(protocol, "ami_version", None)
        json = marker_json(self.pbx, SESSION_START, when, AMIVersion=version)
        self.buffer.add(make_entry(self.epoch, 0, SESSION_START, when, json))

    # --- hub sink ------------------------------------------------------------------------------

    def add_event(self, received: ReceivedEvent) -> None:
        """Buffer one event with the next seq of its session (the hub's sink)."""
        # `received.json`, without the property's call: other sinks may share it.
        json = received._json
        if json is None:
            json = received._json = event_json(received.event, received.received, received.pbx)
        if not self.in_session:
            self._start(received.received)
        self.seq = seq = self.seq + 1
        self.buffer.add(make_entry(self.epoch, seq, received.name, received.received, json))

    __call__ = add_event

    def add_events(self, events: list[Message], names: list[str], received: float) -> None:
        """
        Buffer a read's ``events`` (named ``names``, all received at
        ``received``) with the next seqs of their session (the hub's batch sink).
        """
        if not self.in_session:
            self._start(received)
        first = self.seq + 1
        self.seq += len(events)
        jsons = event_lines(events, received, self.pbx)
        self.buffer.extend(
            zip(repeat(self.epoch), range(first, self.seq + 1), names, repeat(received), jsons)
        )


def _nothing() -> None:
    """No hub holds events for the sequencer (see `Sequencer.listen`)."""
