"""
`Store`: the model's objects and the shared tools of the code that changes
them (the clock, the outbox, the tombstones, sequence numbers).

`PBXState` owns one; the trackers (`txami.state.channels`,
`txami.state.bridges`, `txami.state.queues`, `txami.state.devices`), the call
grouping and the sync all work on it.  Nothing here talks to the network.
"""

from __future__ import annotations

import itertools

from twisted.internet.interfaces import IReactorTime

from txami.state.device import DeviceState, Hint, PresenceState
from txami.state.objects import Bridge, Call, Channel
from txami.state.outbox import Outbox
from txami.state.queue import Queue
from txami.state.tombstones import Tombstones

__all__ = ["Store"]


class Store:
    """The live objects, by key, and what every tracker needs."""

    def __init__(self, clock: IReactorTime, tombstone_seconds: float, max_tombstones: int) -> None:
        self.clock = clock
        self.outbox = Outbox()
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.calls: dict[str, Call] = {}
        self.queues: dict[str, Queue] = {}
        self.devices: dict[str, DeviceState] = {}
        self.hints: dict[tuple[str, str], Hint] = {}
        self.presences: dict[str, PresenceState] = {}
        self.channel_tombstones = Tombstones(tombstone_seconds, max_tombstones)
        self.bridge_tombstones = Tombstones(tombstone_seconds, max_tombstones)
        #: Ids of calls that ended lately: not given to a new call, so an id
        #: never names two calls within that time.
        self.retired_calls = Tombstones(tombstone_seconds, max_tombstones // 2)
        #: Uniqueid -> names of the queues a channel waits in (for its hangup).
        self.queued: dict[str, list[str]] = {}
        #: Channels known when the current session began and not heard of since:
        #: a re-sync that does not list them reports them gone while disconnected.
        self.unconfirmed: set[str] = set()
        self._seq = itertools.count(1)

    def next_seq(self) -> int:
        """A number that orders objects by creation (older is smaller)."""
        return next(self._seq)

    def now(self) -> float:
        return self.clock.seconds()
