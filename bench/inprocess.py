"""
The scenarios' hot paths in one process, without sockets or a server: for
instruction counts under callgrind, which are repeatable where wall-clock and
CPU times on a shared machine are not.

Each client is driven through its benchmark adapter (``bench/clients``), so the
code measured is the code the benchmark runs: its protocol is connected to an
in-memory transport, the "server" answers from precomputed bytes, and the
reactor's timer queue is run after every read as the real reactor would
(``runUntilCurrent``), so per-action timers cost what they cost there.

Usage::

    python -m bench.inprocess CLIENT CASE N         # run N operations, print a JSON line
    python -m bench.inprocess --callgrind CLIENT CASE [N]

``CASE`` is ``s1`` (events), ``s2-serial``, ``s2-window`` (200 outstanding) or
``s4`` (traced bytes per pending action).  ``--callgrind`` runs the case for N
and 2N operations under ``valgrind --tool=callgrind`` and prints the
instructions per operation (the difference, so start-up and imports cancel).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import tracemalloc
from collections import deque
from collections.abc import Callable
from typing import Any

from bench import data
from bench.clients import common
from bench.model import CLIENTS, REPO

CASES = ("s1", "s2-serial", "s2-window", "s4")
WINDOW = 200
_ID = re.compile(rb"\r\nActionID: ([^\r]*)")


class Sink:
    """A transport that keeps what is written, for the harness to answer."""

    disconnecting = False

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.write = self.written.append

    def writeSequence(self, chunks: list[bytes]) -> None:
        self.written.extend(chunks)

    def loseConnection(self) -> None:
        pass

    def getPeer(self) -> None:
        return None

    def getHost(self) -> None:
        return None


def settings(client: str, case: str, n: int) -> common.Settings:
    """The settings a client process would get for this case."""
    return common.Settings(
        client=client,
        scenario=case[:2],
        port=0,
        events=n,
        with_uniqueid=-1,
        pings=n,
        window=WINDOW,
        lists=0,
        items=0,
        pending=n,
        timeout=30.0,
        deadline=1e9,
    )


def adapter(client: str, s: common.Settings) -> tuple[Any, Sink]:
    """The client's benchmark adapter, its protocol connected to a `Sink` past the banner."""
    from twisted.internet import reactor

    module = __import__(CLIENTS[client], fromlist=["main"])
    make = {
        "floor": "FloorAdapter",
        "floor-bare": "BareFloorAdapter",
        "txami": "TxamiAdapter",
    }[client]
    a = getattr(module, make)(reactor, s)
    sink = Sink()
    a.proto.makeConnection(sink)
    a.proto.dataReceived(data.BANNER)
    return a, sink


def pong(written: bytes) -> bytes:
    """The server's answer to one written Ping."""
    found = _ID.search(written)
    assert found is not None, written
    return b"Response: Success\r\nActionID: %s\r\nPing: Pong\r\nTimestamp: 1.0\r\n\r\n" % (
        found.group(1)
    )


def run_s1(client: str, n: int) -> dict[str, Any]:
    """Feed ``n`` stream events in 64 KiB reads to the client's handler."""
    s = settings(client, "s1", n)
    a, _ = adapter(client, s)
    done: list[bool] = []
    counter = common.EventCounter(n, lambda: done.append(True))
    a.watch_events(counter)
    stream = data.event_stream(n)
    feed = a.proto.dataReceived
    for start in range(0, len(stream), 65536):
        feed(stream[start : start + 65536])
    assert done and counter.count == n, counter.count
    return {"events": counter.count}


def run_s2(client: str, n: int, window: int) -> dict[str, Any]:
    """``n`` Ping round trips, ``window`` outstanding; the server answers each batch written."""
    from twisted.internet import reactor

    s = settings(client, "s2", n)
    a, sink = adapter(client, s)
    feed = a.proto.dataReceived
    written = sink.written
    answered = [0]
    sent = [0]
    failures: list[BaseException] = []

    def ok() -> None:
        answered[0] += 1
        if sent[0] < n:
            sent[0] += 1
            a.ping_then(ok, failures.append)

    for _ in range(min(window, n)):
        sent[0] += 1
        a.ping_then(ok, failures.append)
    queue: deque[bytes] = deque()
    while answered[0] < n and not failures:
        queue.extend(written)
        del written[:]
        # One read per batch, as the socket would deliver the server's answers.
        feed(b"".join(pong(w) for w in queue))
        queue.clear()
        reactor.runUntilCurrent()  # type: ignore[attr-defined]
    if failures:
        raise failures[0]
    return {"pings": answered[0], "window": window}


def run_s4(client: str, n: int) -> dict[str, Any]:
    """Traced bytes kept per action while ``n`` actions await an answer."""
    s = settings(client, "s4", n)
    a, sink = adapter(client, s)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    handles = [a.hold() for _ in range(n)]
    del sink.written[:]
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    exclude = [
        tracemalloc.Filter(False, __file__),
        tracemalloc.Filter(False, tracemalloc.__file__),
    ]
    stats = after.filter_traces(exclude).compare_to(before.filter_traces(exclude), "lineno")
    total = sum(stat.size_diff for stat in stats)
    top = [
        f"{stat.traceback[0].filename.rpartition('/')[2]}:{stat.traceback[0].lineno} "
        f"{stat.size_diff / n:+.0f}"
        for stat in stats[:6]
    ]
    a.release(handles)
    return {"pending": n, "per_action": total / n, "top": top}


RUNNERS: dict[str, Callable[[str, int], dict[str, Any]]] = {
    "s1": run_s1,
    "s2-serial": lambda client, n: run_s2(client, n, 1),
    "s2-window": lambda client, n: run_s2(client, n, WINDOW),
    "s4": run_s4,
}


def instructions(client: str, case: str, n: int) -> int:
    """Instructions callgrind counts for one run of ``case`` with ``n`` operations."""
    proc = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "bench.inprocess",
            client,
            case,
            str(n),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        # A fixed hash seed: dict and set layouts, and so the count, repeat exactly.
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in callgrind's output:\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    """Run one case (or count its instructions per operation under callgrind)."""
    p = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    p.add_argument("--callgrind", action="store_true", help="instructions per operation")
    p.add_argument("client", choices=tuple(c for c in CLIENTS if c != "panoramisk"))
    p.add_argument("case", choices=CASES)
    p.add_argument("n", type=int, nargs="?", default=0)
    a = p.parse_args(argv)
    if a.callgrind:
        n = a.n or {"s1": 20_000, "s4": 2_000}.get(a.case, 5_000)
        once, twice = instructions(a.client, a.case, n), instructions(a.client, a.case, 2 * n)
        per = (twice - once) / n
        print(json.dumps({"client": a.client, "case": a.case, "n": n, "instructions": per}))
        return 0
    print(json.dumps({"client": a.client, "case": a.case, **RUNNERS[a.case](a.client, a.n)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
