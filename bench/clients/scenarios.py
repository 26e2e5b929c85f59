"""
The four scenarios, written once against a small `Adapter` interface.

Each client module wraps its library in an adapter (Twisted or asyncio: the
drivers only ``await`` what the adapter returns), so every library is driven by
the same code, checked by the same rules and measured at the same points.
The adapters keep each library's own idiom for the part that is measured
(how an event handler reads headers, how a response is awaited).

S4's tracemalloc diff leaves out allocations made in this file (the driver's
own list of pending handles), so it counts what the library keeps per action.
"""

from __future__ import annotations

import gc
import os
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from bench.clients.common import (
    BenchFailure,
    EventCounter,
    Meter,
    Settings,
    peak_rss_bytes,
    rss_bytes,
)

#: Resolves an adapter's waiter: ``None`` for success, or the exception to raise.
Finish = Callable[[BaseException | None], None]


class Adapter(Protocol):
    """What a client library must offer the drivers."""

    async def start(self, port: int, username: str) -> None:
        """Connect to 127.0.0.1:``port`` and log in as ``username``."""

    def watch_events(self, counter: EventCounter) -> None:
        """Handle every event: read its name and ``Uniqueid``, then ``counter.add``."""

    def ping(self) -> Awaitable[None]:
        """One ``Ping`` round trip, checked with `check_pong`."""

    def ping_then(self, ok: Callable[[], None], bad: Callable[[BaseException], None]) -> None:
        """Send one ``Ping``; call ``ok`` once its answer is checked, else ``bad``."""

    def status(self) -> Awaitable[None]:
        """One ``Status`` list action, checked with `check_list`."""

    def hold(self) -> object:
        """Send one action the server never answers, with a timeout; return its handle."""

    def release(self, handles: list[Any]) -> None:
        """Make the held actions' eventual failure (at disconnect) silent."""

    def wait_held(self) -> Awaitable[None]:
        """Wait for ``Event: BenchHeld`` (the server has read every held action)."""

    def waiter(self) -> tuple[Awaitable[None], Finish]:
        """A fresh awaitable and the function that resolves it."""

    async def logoff(self) -> None:
        """Send ``Logoff`` and wait for ``Goodbye``."""


class Progress:
    """Where a run is, for the deadline message."""

    def __init__(self) -> None:
        self.phase = "starting"
        self.counter: EventCounter | None = None
        self.done = 0

    def __str__(self) -> str:
        if self.counter is not None:
            return f"{self.phase}: {self.counter.count} events received"
        return f"{self.phase}: {self.done} done"


async def s1_events(a: Adapter, s: Settings, p: Progress) -> dict[str, Any]:
    """S1: the event stream that follows login, read to the last event."""
    waiter, finish = a.waiter()
    counter = EventCounter(s.events, lambda: finish(None))
    p.phase, p.counter = "S1 event stream", counter
    a.watch_events(counter)
    rss0 = rss_bytes()
    meter = Meter()
    await a.start(s.port, "s1")
    await waiter
    times = meter.stop()
    counter.check(s)
    result = {
        **times,
        "events": counter.count,
        "rss0": rss0,
        "rss": counter.rss,
        "peak_rss": peak_rss_bytes(),
    }
    p.counter = None
    await a.logoff()
    return result


async def s2_pings(a: Adapter, s: Settings, p: Progress) -> dict[str, Any]:
    """S2: ``Ping`` round trips, one at a time, then ``window`` outstanding."""
    await a.start(s.port, "s2")
    p.phase = "S2 one at a time"
    meter = Meter()
    for _ in range(s.pings):
        await a.ping()
        p.done += 1
    serial = meter.stop()

    p.phase, p.done = f"S2 with {s.window} outstanding", 0
    waiter, finish = a.waiter()
    sent = 0

    def answered() -> None:
        nonlocal sent
        p.done += 1
        if sent < s.pings:
            sent += 1
            a.ping_then(answered, finish)
        elif p.done == s.pings:
            finish(None)

    meter = Meter()
    for _ in range(min(s.window, s.pings)):
        sent += 1
        a.ping_then(answered, finish)
    await waiter
    window = meter.stop()
    await a.logoff()
    return {"pings": s.pings, "window": s.window, "serial": serial, "windowed": window}


async def s3_lists(a: Adapter, s: Settings, p: Progress) -> dict[str, Any]:
    """S3: ``lists`` sequential ``Status`` actions of ``items`` items each."""
    await a.start(s.port, "s3")
    p.phase = "S3 Status lists"
    meter = Meter()
    for _ in range(s.lists):
        await a.status()
        p.done += 1
    times = meter.stop()
    await a.logoff()
    return {**times, "lists": s.lists, "items": s.items}


async def s4_pending(a: Adapter, s: Settings, p: Progress) -> dict[str, Any]:
    """S4: traced memory kept per action while ``pending`` actions await an answer."""
    await a.start(s.port, "s4")
    p.phase = "S4 pending actions"
    held = a.wait_held()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    handles = [a.hold() for _ in range(s.pending)]
    await held
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    exclude = [
        tracemalloc.Filter(False, __file__),
        tracemalloc.Filter(False, tracemalloc.__file__),
    ]
    before, after = before.filter_traces(exclude), after.filter_traces(exclude)
    total = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    top = [
        f"{short_path(stat.traceback[0].filename)}:{stat.traceback[0].lineno} "
        f"{stat.size_diff / s.pending:+.0f}"
        for stat in after.compare_to(before, "lineno")[:5]
    ]
    del before, after
    a.release(handles)
    if len(handles) != s.pending:
        raise BenchFailure(f"issued {len(handles)} actions, expected {s.pending}")
    await a.logoff()
    return {"pending": s.pending, "bytes": total, "per_action": total / s.pending, "top": top}


def short_path(filename: str) -> str:
    """A source path without the site-packages, stdlib or working directory prefix."""
    for marker in ("/site-packages/", "/lib/python3."):
        _, found, tail = filename.rpartition(marker)
        if found:
            return tail if marker.endswith("/") else "python3." + tail
    cwd = os.getcwd() + os.sep
    return filename[len(cwd) :] if filename.startswith(cwd) else filename


DRIVERS = {"s1": s1_events, "s2": s2_pings, "s3": s3_lists, "s4": s4_pending}


async def run_scenario(adapter: Adapter, settings: Settings, progress: Progress) -> dict[str, Any]:
    """Run the scenario the settings name and return its numbers."""
    return await DRIVERS[settings.scenario](adapter, settings, progress)
