"""
`Timers`: every delayed call the fake server schedules, so that all can be cancelled.

Trial's dirty-reactor check fails a test that leaves a delayed call behind on
the real reactor; the fake keeps each of its calls here and `cancel_all` ends
them (sessions cancel theirs when they close, ``FakeAsterisk.stop`` cancels the
rest).  With a `Clock` nothing is left running either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

__all__ = ["Timers"]


class Timers:
    """A set of delayed calls on one clock, forgotten as they run, cancellable together."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._calls: set[IDelayedCall] = set()

    def call_later(self, delay: float, func: Callable[..., Any], *args: Any) -> IDelayedCall:
        """Call ``func(*args)`` after ``delay`` seconds (at least 0)."""
        holder: list[IDelayedCall] = []

        def run() -> None:
            self._calls.discard(holder[0])
            func(*args)

        call = self.clock.callLater(max(0.0, delay), run)
        holder.append(call)
        self._calls.add(call)
        return call

    def cancel(self, call: IDelayedCall | None) -> None:
        """Cancel ``call`` if it is still pending (`None` is ignored)."""
        if call is not None:
            self._calls.discard(call)
            if call.active():
                call.cancel()

    def cancel_all(self) -> None:
        """Cancel every pending call."""
        calls, self._calls = self._calls, set()
        for call in calls:
            if call.active():
                call.cancel()

    @property
    def pending(self) -> int:
        """How many calls are still scheduled."""
        return sum(1 for call in self._calls if call.active())

    def __len__(self) -> int:
        return self.pending
