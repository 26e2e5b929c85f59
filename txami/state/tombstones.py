"""
`Tombstones`: the Uniqueids of things that just went away, so that nothing
arriving late brings them back.

Asterisk may deliver, after a channel's ``Hangup``, an event that still
names it (another thread's ``DialEnd``, a queue's ``AgentComplete``) or a
list row taken just before it was removed from its cache.  A tombstone makes
those no-ops.  Tombstones are bounded in time (``seconds``) and in number
(``limit``, the oldest go first), and cleared when a new session starts (no
late event of the old one can arrive then), so they never grow with traffic.
"""

from __future__ import annotations

__all__ = ["Tombstones"]


class Tombstones(dict[str, float]):
    """
    Recently ended ids -> their expiry times, oldest first.  A dict, so that
    the checks on every event and list row (``key in tombstones``) cost no
    Python call; change it only through `add`, `discard` and `clear`.
    """

    __slots__ = ("limit", "seconds")

    def __init__(self, seconds: float, limit: int) -> None:
        if seconds < 0 or limit < 0:
            raise ValueError("tombstone time and count must not be negative")
        super().__init__()
        self.seconds = seconds
        self.limit = limit

    def add(self, key: str, now: float) -> None:
        """Remember ``key`` until ``now + seconds``; forget expired and surplus ones."""
        if key in self:
            del self[key]
        if self.limit == 0 or self.seconds == 0:
            return
        self[key] = now + self.seconds
        if len(self) > self.limit:
            del self[next(iter(self))]
        self.purge(now)

    def purge(self, now: float) -> None:
        """Forget the tombstones that have expired."""
        while self:
            oldest = next(iter(self))
            if self[oldest] > now:
                return
            del self[oldest]
        self.clear()  # an emptied dict keeps its table until cleared

    def discard(self, key: str) -> None:
        """Forget ``key`` (it lives again: an assigned ChannelId reused)."""
        self.pop(key, None)
