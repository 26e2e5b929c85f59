"""
What every benchmark client process shares: its command line, the meters, the
result line and the failure path.

A client process runs one scenario against the server, prints exactly one JSON
line on stdout (its numbers) and exits 0; on any check failing it prints
``FAIL <client> <scenario>: <why>`` on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

SCENARIOS = ("s1", "s2", "s3", "s4")
SECRET = "bench"
#: Exit status of ``--check`` when the client's library cannot be imported.
UNAVAILABLE = 3


class BenchFailure(Exception):
    """A scenario check failed: wrong count, wrong ActionID, incomplete list, timeout."""


@dataclass(frozen=True)
class Settings:
    """One client run, as given on the command line by the runner."""

    client: str
    scenario: str
    port: int
    events: int
    with_uniqueid: int
    pings: int
    window: int
    lists: int
    items: int
    pending: int
    timeout: float
    deadline: float


def parse_args(client: str, argv: list[str] | None = None) -> Settings | None:
    """Parse a client's command line; ``None`` means ``--check`` was asked."""
    p = argparse.ArgumentParser(prog=f"python -m bench.clients.{client}")
    p.add_argument("--check", action="store_true", help="only check that the library imports")
    p.add_argument("--scenario", choices=SCENARIOS)
    p.add_argument("--port", type=int)
    p.add_argument("--events", type=int, default=200_000, help="S1: events to expect")
    p.add_argument("--with-uniqueid", type=int, default=-1, help="S1: how many have a Uniqueid")
    p.add_argument("--pings", type=int, default=20_000, help="S2: pings per mode")
    p.add_argument("--window", type=int, default=200, help="S2: outstanding pings")
    p.add_argument("--lists", type=int, default=20, help="S3: Status actions")
    p.add_argument("--items", type=int, default=5_000, help="S3: items per list")
    p.add_argument("--pending", type=int, default=10_000, help="S4: actions left pending")
    p.add_argument("--timeout", type=float, default=30.0, help="per-action timeout (s)")
    p.add_argument("--deadline", type=float, default=170.0, help="give up after (s)")
    a = p.parse_args(argv)
    if a.check:
        return None
    if a.scenario is None or a.port is None:
        p.error("--scenario and --port are required")
    del a.check
    return Settings(client, **vars(a))


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_bytes() -> int:
    """Current resident set size, from ``/proc/self/statm`` (cheap enough per sample)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Meter:
    """Wall and CPU time of one measured phase."""

    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.cpu0 = cpu_seconds()

    def stop(self) -> dict[str, float]:
        """Elapsed wall and CPU seconds since construction."""
        return {"wall_s": time.perf_counter() - self.wall0, "cpu_s": cpu_seconds() - self.cpu0}


class EventCounter:
    """
    Counts S1 events, samples RSS at 25/50/75/100 % of them, and calls
    ``done`` after the last.  Clients' handlers call `add` once per event with
    the event's name and its ``Uniqueid`` header (``None`` when absent).
    """

    __slots__ = ("count", "done", "marks", "named", "next_mark", "rss", "total", "with_uniqueid")

    def __init__(self, total: int, done: Callable[[], None]) -> None:
        self.total = total
        self.count = 0
        self.named = 0
        self.with_uniqueid = 0
        self.done = done
        self.marks = [max(1, total * q // 4) for q in (1, 2, 3, 4)]
        self.next_mark = self.marks[0]
        self.rss: list[int] = []

    def add(self, name: str | None, uniqueid: str | None) -> None:
        """Record one event."""
        self.count += 1
        if name:
            self.named += 1
        if uniqueid is not None:
            self.with_uniqueid += 1
        if self.count == self.next_mark:
            self.rss.append(rss_bytes())
            if self.count >= self.total:
                self.next_mark = -1
                self.done()
            else:
                self.next_mark = self.marks[len(self.rss)]

    def check(self, settings: Settings) -> None:
        """Fail unless every event arrived, named, with the expected Uniqueid count."""
        if self.count != settings.events:
            raise BenchFailure(f"received {self.count} events, expected {settings.events}")
        if self.named != self.count:
            raise BenchFailure(f"only {self.named} of {self.count} events had a name")
        expected = settings.with_uniqueid
        if expected >= 0 and self.with_uniqueid != expected:
            raise BenchFailure(f"{self.with_uniqueid} events had a Uniqueid, expected {expected}")


def check_list(
    settings: Settings,
    action_id: str,
    collected: int,
    announced: str | None,
    ends: list[tuple[str | None, str | None]],
) -> None:
    """
    Check one ``Status`` answer: as many items collected as the server sends,
    the completion event announcing that count (``ListItems``), and the first
    and last items (``ends``, as ``(event name, ActionID)``) being ``Status``
    events that carry ``action_id``.
    """
    what = f"Status {action_id!r}"
    if collected != settings.items:
        raise BenchFailure(f"{what}: {collected} items collected, expected {settings.items}")
    if announced != str(settings.items):
        raise BenchFailure(f"{what}: completion announced ListItems {announced!r}")
    for name, item_id in ends:
        if name != "Status" or item_id != action_id:
            raise BenchFailure(
                f"{what}: item {name!r} with ActionID {item_id!r}, expected Status/{action_id!r}"
            )


def check_pong(action_id: str, answered_id: str | None, ping: str | None) -> None:
    """Check one Ping answer: the ActionID sent came back, with ``Ping: Pong``."""
    if answered_id != action_id or ping != "Pong":
        raise BenchFailure(
            f"Ping {action_id!r} answered with ActionID {answered_id!r}, Ping {ping!r}"
        )


def emit(settings: Settings, result: dict[str, Any]) -> None:
    """Print the run's one JSON result line."""
    line = {"client": settings.client, "scenario": settings.scenario, **result}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def fail(client: str, scenario: str, why: str) -> NoReturn:
    """Report a failed run on stderr and exit 1 at once (no cleanup can hide it)."""
    sys.stderr.write(f"FAIL {client} {scenario}: {why}\n")
    sys.stderr.flush()
    os._exit(1)


def connection_lost(settings: Settings, why: str) -> NoReturn:
    """Fail at once when the connection ends before the scenario is done with it."""
    fail(settings.client, settings.scenario, f"connection lost before the end: {why}")


def unavailable(why: str) -> NoReturn:
    """Exit with `UNAVAILABLE` after saying why the client's library is missing."""
    sys.stderr.write(why + "\n")
    sys.stderr.flush()
    raise SystemExit(UNAVAILABLE)
