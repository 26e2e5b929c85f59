"""
`Outbox`: the listener calls and Deferred results one change produces,
delivered once the model is consistent again.

Handling one event (or one list) may touch several objects; the handler
records what changed here and flushes at the end, so a listener never sees a
half-applied change.  Several updates of one object within one flush become
one ``*_updated`` call with the union of the changed fields; an object that
is new in this flush gets no ``*_updated`` (``*_new`` shows it whole), and one
that goes away gets only its ``*_gone``.  With no listeners nothing is
recorded except Deferred results, so an unobserved model pays nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from txami.state.waiters import fire_all

__all__ = ["Outbox"]

_log = Logger(namespace="txami.state")


class Outbox:
    """Pending notifications of one `PBXState`, and its listeners."""

    def __init__(self) -> None:
        self.listeners: list[object] = []
        #: Whether anyone listens (handlers skip recording changes when not).
        self.active = False
        #: What waits for the next flush.
        self.items: list[list[Any]] = []
        self._updated: dict[object, list[Any]] = {}
        self._fresh: dict[object, list[Any]] = {}
        self._flushing = False

    def add_listener(self, listener: object) -> None:
        self.listeners.append(listener)
        self.active = True

    def remove_listener(self, listener: object) -> None:
        self.listeners.remove(listener)
        self.active = bool(self.listeners)

    # --- recording ---------------------------------------------------------------------------

    def new(self, method: str, obj: object, *more: object) -> None:
        """``method(*more, obj)``: ``obj`` appeared (``more``: a member's or entry's queue)."""
        if self.active:
            item = [method, (*more, obj)]
            self._fresh[obj] = item
            self.items.append(item)

    def updated(self, method: str, obj: object, fields: Iterable[str], *more: object) -> None:
        """``method(*more, obj, changed_fields)``, merged with earlier updates of ``obj``."""
        if not self.active or obj in self._fresh:
            return
        item = self._updated.get(obj)
        if item is None:
            item = [method, (*more, obj), set(fields)]
            self._updated[obj] = item
            self.items.append(item)
        else:
            item[2].update(fields)

    def gone(self, method: str, obj: object, *args: object) -> None:
        """
        ``method(*args)`` for an object that went away (its pending update is
        dropped; if it was new in this same flush, listeners hear of neither).
        """
        if not self.active:
            return
        item = self._updated.pop(obj, None)
        if item is not None:
            item[0] = None
        fresh = self._fresh.pop(obj, None)
        if fresh is not None:
            fresh[0] = None
            return
        self.items.append([method, args])

    def note(self, method: str, *args: object) -> None:
        """``method(*args)`` as it is (``call_merged``, ``synced``, ...)."""
        if self.active:
            self.items.append([method, args])

    def fire(self, waiters: list[Deferred[Any]], result: object) -> None:
        """Fire ``waiters`` with ``result`` (a value or a `Failure`) at the flush."""
        if waiters:
            self.items.append([_FIRE, (waiters, result)])

    # --- delivering --------------------------------------------------------------------------

    def flush(self) -> None:
        """Deliver everything recorded, in order (nothing to do costs a test); never raises."""
        if not self.items or self._flushing:
            return  # nothing, or a listener's own change: the loop below picks it up
        self._flushing = True
        try:
            while self.items:
                items, self.items = self.items, []
                self._updated.clear()
                self._fresh.clear()
                for item in items:
                    method = item[0]
                    if method is None:
                        continue
                    if method is _FIRE:
                        fire_all(*item[1])
                    elif len(item) == 3:
                        self._call(method, (*item[1], frozenset(item[2])))
                    else:
                        self._call(method, item[1])
        finally:
            self._flushing = False

    def _call(self, method: str, args: tuple[Any, ...]) -> None:
        for listener in list(self.listeners):
            callback = getattr(listener, method, None)
            if callback is None:
                continue
            try:
                callback(*args)
            except Exception:
                _log.failure(
                    "state listener {listener!r} raised in {method}",
                    listener=listener,
                    method=method,
                )


_FIRE = "\0fire"
