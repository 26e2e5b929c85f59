"""
`Call`: the channels that make up one conversation.

A call is a connected component of channels, joined by the bridges they are
in, by the two halves of a Local channel, and by dials (a caller and the
channels it dials, from creation on: Asterisk names the requesting call in a
new channel's ``Linkedid``).  It is not a ``Linkedid``: Asterisk rewrites
Linkedid when channels join a bridge, and never splits it again.  When a
transfer joins two calls one survives (the older) and the other is merged
into it; when a call falls apart, the part holding its oldest channel keeps
it.  See `txami.state.grouping`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, fail, succeed

from txami.state.errors import ObjectGone
from txami.state.waiters import Waiters

if TYPE_CHECKING:
    from txami.state.bridge import Bridge
    from txami.state.channel import Channel

__all__ = ["CALL_FIELDS", "Call"]

#: The fields of `Call.as_dict`, in order (the snapshot's call shape).
CALL_FIELDS = ("id", "channels", "bridges", "started", "answered")


class Call:
    """
    One call.  ``id`` is stable for the call's life: the ``Uniqueid`` of the
    channel it started with (with ``-2``, ``-3``, ... appended should that
    id still be taken).  ``started`` is when its oldest channel was created,
    ``answered`` when one of its channels was first answered (`None` before).
    ``ended`` is `None` while it lasts, then the reason it ended
    (``"hangup"``, ``"merged"``, ...).
    """

    __slots__ = ("_channels", "_seq", "_waiters", "answered", "ended", "id", "started")

    def __init__(self, id: str, started: float, seq: int = 0) -> None:
        self.id = id
        self.started = started
        self.answered: float | None = None
        self.ended: str | None = None
        self._channels: dict[Channel, None] = {}
        self._seq = seq
        self._waiters: Waiters | None = None

    def __repr__(self) -> str:
        return f"<Call {self.id} {len(self._channels)} channels>"

    @property
    def channels(self) -> tuple[Channel, ...]:
        """Its channels, oldest member first."""
        return tuple(self._channels)

    @property
    def bridges(self) -> tuple[Bridge, ...]:
        """The bridges its channels talk in (holding bridges excluded), in first-joined order."""
        found: dict[Bridge, None] = {}
        for channel in self._channels:
            bridge = channel.bridge
            if bridge is not None and bridge.connects:
                found[bridge] = None
        return tuple(found)

    def when_ended(self) -> Deferred[Call]:
        """
        Fires with this call once its last channel is gone (at once if it
        has ended); fails with `ObjectGone` if it is merged into another call
        first (``reason`` ``"merged"``), `StateStopped` if the model stops.
        """
        if self.ended == "merged":
            return fail(ObjectGone(f"call {self.id}", "merged"))
        if self.ended is not None:
            return succeed(self)
        if self._waiters is None:
            self._waiters = Waiters()
        return self._waiters.add("ended")

    def as_dict(self) -> dict[str, Any]:
        """This call as plain JSON-able data (the snapshot's call shape)."""
        return {
            "id": self.id,
            "channels": [c.uniqueid for c in self._channels],
            "bridges": [b.uniqueid for b in self.bridges],
            "started": self.started,
            "answered": self.answered,
        }
