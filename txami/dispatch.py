"""
Event handler registry: which handlers an event name reaches, and calling them safely.

A name is matched case-insensitively (Asterisk documents ``NewExten`` and sends
``Newexten``); it may be a glob (``"Queue*"``) or ``"*"`` for every event.
Handlers run in the order they were registered.  A handler that raises, or
returns a Deferred that fails, is logged with its traceback; the other
handlers and the connection carry on.

A read-end handler is called after each read from the socket, once that
read's events have all been handed out: a handler that gathers events can
deal with the events of one read together while they are fresh.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from txami.message import Message

__all__ = ["EventDispatcher", "EventHandler", "ReadEndHandler"]

#: An event handler: called with the event; may return a Deferred.
EventHandler = Callable[[Message], Any]
#: A read-end handler: called with nothing after each read's events.
ReadEndHandler = Callable[[], object]

_log = Logger(namespace="txami.dispatch")
_GLOB_CHARS = frozenset("*?[")
#: How many distinct event names the lookup cache remembers before starting over
#: (bounds memory against a server inventing names).
_CACHE_SIZE = 1024


class EventDispatcher:
    """
    The handlers registered for events, by name pattern.

    `AMIFactory` owns one and shares it with every protocol it builds, so a
    handler registered once stays registered across reconnects.
    """

    def __init__(self) -> None:
        self._entries: list[tuple[str, bool, EventHandler]] = []
        self._cache: dict[str, tuple[EventHandler, ...]] = {}
        #: The read-end handlers, in registration order (replaced, never changed).
        self.read_ends: tuple[ReadEndHandler, ...] = ()

    def add_read_end(self, handler: ReadEndHandler) -> None:
        """Call ``handler()`` after each read from the socket, once its events are handled."""
        self.read_ends += (handler,)

    def remove_read_end(self, handler: ReadEndHandler) -> None:
        """Undo one `add_read_end` of ``handler``; `ValueError` if there was none."""
        ends = list(self.read_ends)
        ends.remove(handler)
        self.read_ends = tuple(ends)

    def read_ended(self) -> None:
        """Call every read-end handler; never raises (a handler that raises is logged)."""
        for handler in self.read_ends:
            try:
                handler()
            except Exception:
                _log.failure("read-end handler {handler!r} raised", handler=handler)

    def add(self, name: str, handler: EventHandler) -> None:
        """Call ``handler(event)`` for every event whose name matches ``name``."""
        key = name.lower()
        self._entries.append((key, bool(_GLOB_CHARS.intersection(key)), handler))
        self._cache.clear()

    def remove(self, name: str, handler: EventHandler) -> None:
        """Undo one `add` of the same name and handler; `ValueError` if there was none."""
        key = name.lower()
        for i, (k, _, h) in enumerate(self._entries):
            if k == key and h == handler:
                del self._entries[i]
                self._cache.clear()
                return
        raise ValueError(f"no handler {handler!r} registered for {name!r}")

    def handlers_for(self, event_name: str) -> tuple[EventHandler, ...]:
        """The handlers an event called ``event_name`` reaches, in registration order."""
        found = self._cache.get(event_name)
        if found is None:
            low = event_name.lower()
            found = tuple(
                h for k, glob, h in self._entries if (fnmatchcase(low, k) if glob else k == low)
            )
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[event_name] = found
        return found

    def dispatch(self, event_name: str, event: Message) -> None:
        """
        Give ``event`` to every matching handler; never raises.

        `AMIProtocol` runs this loop inline for each event it reads (reading
        ``_cache`` directly); the two must stay alike.
        """
        handlers = self._cache.get(event_name)
        if handlers is None:
            handlers = self.handlers_for(event_name)
        for handler in handlers:
            try:
                result = handler(event)
            except Exception:
                self._raised(handler, event_name)
            else:
                if result is not None and isinstance(result, Deferred):
                    self._watch(result, handler, event_name)

    def _raised(self, handler: EventHandler, event_name: str) -> None:
        """Log the exception ``handler`` just raised (call from its ``except`` clause)."""
        _log.failure(
            "event handler {handler!r} raised on {event_name} event",
            handler=handler,
            event_name=event_name,
        )

    def _watch(self, result: Deferred[Any], handler: EventHandler, event_name: str) -> None:
        """Log the failure of the Deferred ``handler`` returned, if it fails."""
        result.addErrback(_log_async_failure, handler, event_name)

    def __len__(self) -> int:
        return len(self._entries)


def _log_async_failure(failure: Failure, handler: EventHandler, event_name: str) -> None:
    _log.failure(
        "event handler {handler!r} failed on {event_name} event",
        failure,
        handler=handler,
        event_name=event_name,
    )
