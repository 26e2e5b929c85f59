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


class Tombstones:
    """Recently ended ids with their expiry times, oldest first."""

    __slots__ = ("_expiry", "limit", "seconds")

    def __init__(self, seconds: float, limit: int) -> None:
        if seconds < 0 or limit < 0:
            raise ValueError("tombstone time and count must not be negative")
        self.seconds = seconds
        self.limit = limit
        self._expiry: dict[str, float] = {}

    def add(self, key: str, now: float) -> None:
        """Remember ``key`` until ``now + seconds``; forget expired and surplus ones."""
        expiry = self._expiry
        if key in expiry:
            del expiry[key]
        if self.limit == 0 or self.seconds == 0:
            return
        expiry[key] = now + self.seconds
        if len(expiry) > self.limit:
            del expiry[next(iter(expiry))]
        self.purge(now)

    def purge(self, now: float) -> None:
        """Forget the tombstones that have expired."""
        expiry = self._expiry
        while expiry:
            oldest = next(iter(expiry))
            if expiry[oldest] > now:
                break
            del expiry[oldest]

    def __contains__(self, key: object) -> bool:
        return key in self._expiry

    def discard(self, key: str) -> None:
        """Forget ``key`` (it lives again: an assigned ChannelId reused)."""
        self._expiry.pop(key, None)

    def clear(self) -> None:
        self._expiry.clear()

    def __len__(self) -> int:
        return len(self._expiry)
