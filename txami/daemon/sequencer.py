"""
`Sequencer`: numbers one PBX's AMI sessions and events for the stream.

It listens to the PBX's `AMIFactory` (connections) and `EventHub` (events).
The first event or the login of a connection, whichever comes first, opens
a session: the epoch goes up by one and a ``TxamiSessionStart`` marker (seq
0) is buffered; each event then gets the next seq.  When the connection is
lost, a ``TxamiSessionEnd`` marker closes the session.  A connection that
never logged in (refused, or down before the login) opens no session.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from txami.daemon.buffer import PBXBuffer
from txami.daemon.entries import ENTRY_OVERHEAD, SESSION_END, SESSION_START, Entry, marker_json
from txami.daemon.hub import ReceivedEvent
from txami.jsonform import event_json
from txami.message import Message

__all__ = ["Sequencer"]

_new = object.__new__


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
        self._add = buffer.add

    # --- connection listener -------------------------------------------------------------------

    def connected(self, protocol: Any) -> None:
        """A new connection: remembered for the start marker's details."""
        self._protocol = protocol

    def logged_in(self, protocol: Any) -> None:
        """The session is logged in (its first events may have opened it already)."""
        if not self.in_session:
            self._start(self.clock.seconds())

    def disconnected(self, reason: Failure) -> None:
        """The connection ended: close the session, if one was open."""
        self._protocol = None
        if not self.in_session:
            return
        self.in_session = False
        self.seq += 1
        now = self.clock.seconds()
        why = reason.getErrorMessage() if reason is not None else "closed"
        json = marker_json(self.pbx, SESSION_END, now, Reason=why, Events=self.seq - 1)
        self.buffer.add(Entry(self.epoch, self.seq, SESSION_END, now, json))

    def _start(self, when: float) -> None:
        self.in_session = True
        self.epoch += 1
        self.seq = 0
        protocol = self._protocol
        version = getattr(protocol, "ami_version", None)
        json = marker_json(self.pbx, SESSION_START, when, AMIVersion=version)
        self.buffer.add(Entry(self.epoch, 0, SESSION_START, when, json))

    # --- hub sink ------------------------------------------------------------------------------

    def add_event(self, received: ReceivedEvent) -> None:
        """Buffer one event with the next seq of its session (the hub's sink)."""
        # `received.json`, without the property's call: other sinks may share it.
        json = received._json
        if json is None:
            json = received._json = event_json(received.event, received.received, received.pbx)
        self._add_event(received.name, received.received, json)

    __call__ = add_event

    def add_message(self, event: Message, name: str, received: float) -> None:
        """`add_event` for the hub's direct call (`EventHub.subscribe`): no JSON to share."""
        self._add_event(name, received, event_json(event, received, self.pbx))

    def _add_event(self, name: str, received: float, json: str) -> None:
        if not self.in_session:
            self._start(received)
        self.seq = seq = self.seq + 1
        # Entry(self.epoch, seq, name, received, json), without the call to its __init__.
        entry = _new(Entry)
        entry.epoch = self.epoch
        entry.seq = seq
        entry.event = name
        entry.received = received
        entry.json = json
        entry.size = len(json) + len(name) + ENTRY_OVERHEAD
        entry.gap = None
        self._add(entry)
