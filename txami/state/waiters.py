"""
`Waiters`: the Deferreds handed out by an object's ``when_*()`` methods.

Each caller gets its own Deferred (as txtorcon's ``when_disconnected`` does),
and each fires exactly once: with the object when the awaited thing happens,
or with a failure when it no longer can.  An object keeps no list at all
until someone waits, so the common case costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

__all__ = ["Waiters", "fire_all"]


class Waiters:
    """The pending Deferreds of one object, by what they wait for."""

    __slots__ = ("_by_name",)

    def __init__(self) -> None:
        self._by_name: dict[str, list[Deferred[Any]]] = {}

    def add(self, name: str) -> Deferred[Any]:
        """A new Deferred waiting for ``name``."""
        waiter: Deferred[Any] = Deferred(self._cancel)
        self._by_name.setdefault(name, []).append(waiter)
        return waiter

    def _cancel(self, waiter: Deferred[Any]) -> None:
        for waiting in self._by_name.values():
            if waiter in waiting:
                waiting.remove(waiter)
                return

    def take(self, name: str) -> list[Deferred[Any]]:
        """Remove and return the Deferreds waiting for ``name``."""
        return self._by_name.pop(name, [])

    def take_all(self) -> list[Deferred[Any]]:
        """Remove and return every pending Deferred."""
        everything = [d for waiting in self._by_name.values() for d in waiting]
        self._by_name.clear()
        return everything

    def __bool__(self) -> bool:
        return any(self._by_name.values())


def fire_all(waiters: Iterable[Deferred[Any]], result: object) -> None:
    """
    Fire each of ``waiters`` with ``result`` (a value, or a `Failure` to
    errback with).  One that has fired already is left alone: its caller
    cancelled it after it was taken from its `Waiters`, perhaps from the
    callback of another waiter fired just before it.
    """
    for waiter in waiters:
        if waiter.called:
            continue
        if isinstance(result, Failure):
            waiter.errback(result)
        else:
            waiter.callback(result)
