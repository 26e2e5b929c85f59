"""
The benchmark runner: start the server, run each client in fresh processes, in
alternation, for several rounds; print medians, ratios to the floor and the
targets as a table, and write it to ``bench/results/latest.txt``.

Usage: ``python -m bench [--quick] [--rounds N] [--clients a,b] [--scenarios s1,s2]``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import data, report
from bench.clients.common import SCENARIOS, UNAVAILABLE
from bench.model import CLIENTS, REPO, Config, Outcome, Run

try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None) if sys.platform == "linux" else None
except OSError:
    _LIBC = None


def child_setup(cpu: int | None) -> Callable[[], None]:
    """
    The ``preexec_fn`` of a child.  On Linux it gets SIGTERM when the runner
    dies (``PR_SET_PDEATHSIG``), so no server or client outlives a killed run
    (the server also exits when its stdin closes, which works everywhere).
    With a ``cpu`` it is pinned there: the server and the clients each get a
    core of their own, so a round trip always crosses cores the same way.
    """

    def setup() -> None:
        if _LIBC is not None:
            _LIBC.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return setup


def pinned_cpus(pin: bool) -> tuple[int | None, int | None]:
    """(server CPU, client CPU): two distinct CPUs when pinning and there are two."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not pin or len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


QUICK: dict[str, Any] = {
    "rounds": 1,
    "events": 20_000,
    "pings": 2_000,
    "lists": 3,
    "items": 1_000,
    "pending": 2_000,
}


#: Options that default to the `Config` (or `QUICK`) value when not given.
OPTIONAL = (
    "rounds",
    "events",
    "pings",
    "window",
    "lists",
    "items",
    "pending",
    "run_timeout",
    "flat_kib",
    "output",
)


def _names(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(allowed)}"
        )
    return names


def parse_args(argv: list[str] | None) -> Config:
    """Build the `Config`; ``--quick`` changes only the sizes not given explicitly."""
    d = Config()
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    add = p.add_argument
    add("--quick", action="store_true", help=f"smoke run: 1 round, small sizes ({QUICK})")
    add(
        "--clients",
        type=lambda t: _names(t, tuple(CLIENTS), "client"),
        default=d.clients,
        help="comma-separated, from: %(default)s",
    )
    add(
        "--scenarios",
        type=lambda t: _names(t, SCENARIOS, "scenario"),
        default=d.scenarios,
        help="comma-separated, from: %(default)s",
    )
    add("--rounds", type=int, help=f"rounds of alternation (default {d.rounds})")
    add("--events", type=int, help=f"S1 events (default {d.events})")
    add("--pings", type=int, help=f"S2 pings per mode (default {d.pings})")
    add("--window", type=int, help=f"S2 outstanding pings (default {d.window})")
    add("--lists", type=int, help=f"S3 Status actions (default {d.lists})")
    add("--items", type=int, help=f"S3 items per list (default {d.items})")
    add("--pending", type=int, help=f"S4 pending actions (default {d.pending})")
    add(
        "--run-timeout",
        type=float,
        help=f"seconds before a client run is killed (default {d.run_timeout:g})",
    )
    add(
        "--flat-kib",
        type=int,
        help=f"S1: RSS growth from 25%% to 100%% of the events "
        f"that still counts as flat (default {d.flat_kib})",
    )
    add(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin the server and the clients to two distinct CPUs",
    )
    add("--output", type=Path, help=f"table file (default {d.output.relative_to(REPO)})")
    a = p.parse_args(argv)
    clients = tuple(c for c in CLIENTS if c in a.clients)  # the floor first, as in CLIENTS
    scenarios = tuple(s for s in SCENARIOS if s in a.scenarios)
    cfg = replace(d, clients=clients, scenarios=scenarios, quick=a.quick, pin=a.pin)
    if a.quick:
        cfg = replace(cfg, **QUICK)
    given = {k: getattr(a, k) for k in OPTIONAL if getattr(a, k) is not None}
    cfg = replace(cfg, **given)
    if min(cfg.rounds, cfg.events, cfg.pings, cfg.window, cfg.lists, cfg.items, cfg.pending) < 1:
        p.error("counts and --rounds must be at least 1")
    return cfg


class Server:
    """The fake AMI server process: started on enter, gone on exit (even on error)."""

    def __init__(self, cfg: Config) -> None:
        sizes = {"events": cfg.events, "items": cfg.items, "pending": cfg.pending}
        self.cmd = [
            sys.executable,
            "-m",
            "bench.server",
            *(f"--{k}={v}" for k, v in sizes.items()),
        ]
        self.cpu = pinned_cpus(cfg.pin)[0]
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> Server:
        # stdin stays open and unused: the server exits when it closes, so it
        # never outlives this process, however this process ends.
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            preexec_fn=child_setup(self.cpu),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        try:
            self.port = int(json.loads(line)["port"])
        except (ValueError, KeyError) as e:
            self.__exit__()
            raise SystemExit(f"the server did not start ({e}): {line!r}") from None
        return self

    def cpu_seconds(self) -> float:
        """The server's CPU time so far (user + system), from /proc."""
        assert self.proc is not None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def check_alive(self) -> None:
        """Abort the benchmark if the server died."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise SystemExit(f"the server exited with status {self.proc.returncode}")

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def client_command(client: str, *args: str) -> list[str]:
    """The command line of one client process."""
    return [sys.executable, "-m", CLIENTS[client], *args]


def check_clients(cfg: Config) -> tuple[list[str], list[str]]:
    """Ask each client whether its library imports; return (usable, skip messages)."""
    usable, skipped = [], []
    for client in cfg.clients:
        proc = subprocess.run(
            client_command(client, "--check"),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if proc.returncode == 0:
            usable.append(client)
        else:
            why = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
            kind = "unavailable" if proc.returncode == UNAVAILABLE else "broken"
            skipped.append(f"skipping {client} ({kind}): {why[0]}")
    return usable, skipped


def run_client(cfg: Config, server: Server, client: str, scenario: str, rnd: int) -> Run:
    """Run one client process for one scenario and collect its JSON line or its failure."""
    options = {
        "scenario": scenario,
        "port": server.port,
        "events": cfg.events,
        "with-uniqueid": data.expected_with_uniqueid(cfg.events),
        "pings": cfg.pings,
        "window": cfg.window,
        "lists": cfg.lists,
        "items": cfg.items,
        "pending": cfg.pending,
        "timeout": cfg.timeout,
        "deadline": max(1.0, cfg.run_timeout - 10),  # the client says why before it is killed
    }
    args = [f"--{name}={value}" for name, value in options.items()]
    run = Run(client, scenario, rnd)
    cpu0, wall0 = server.cpu_seconds(), time.perf_counter()
    try:
        proc = subprocess.run(
            client_command(client, *args),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=cfg.run_timeout,
            preexec_fn=child_setup(pinned_cpus(cfg.pin)[1]),
        )
    except subprocess.TimeoutExpired:
        run.error = f"FAIL {client} {scenario}: killed after {cfg.run_timeout:g} s"
        return run
    finally:
        run.server_cpu_s = server.cpu_seconds() - cpu0
        run.wall_s = time.perf_counter() - wall0
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
        run.error = tail or f"FAIL {client} {scenario}: exit status {proc.returncode}, no output"
        return run
    try:
        run.result = json.loads(lines[-1])
    except ValueError:
        run.error = f"FAIL {client} {scenario}: unreadable result line {lines[-1]!r}"
    return run


def run_all(cfg: Config) -> Outcome:
    """Check the clients, start the server, run rounds of A B C ... per scenario."""
    started = time.perf_counter()
    clients, skipped = check_clients(cfg)
    for line in skipped:
        print(line, flush=True)
    outcome = Outcome(cfg, clients, skipped, pinned_cpus(cfg.pin))
    total = cfg.rounds * len(cfg.scenarios) * len(clients)
    with Server(cfg) as server:
        for rnd in range(1, cfg.rounds + 1):
            for scenario in cfg.scenarios:
                for client in clients:
                    server.check_alive()
                    run = run_client(cfg, server, client, scenario, rnd)
                    outcome.runs.append(run)
                    print(
                        f"[{len(outcome.runs):>3}/{total}] round {rnd} {scenario} {client:<10} "
                        f"{report.one_line(run, cfg.window)}",
                        flush=True,
                    )
                    if run.error:
                        print(run.error, file=sys.stderr, flush=True)
    outcome.seconds = time.perf_counter() - started
    return outcome


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 if any run failed its checks."""
    cfg = parse_args(argv)
    print(report.machine_line(), flush=True)
    outcome = run_all(cfg)
    text = report.render(outcome)
    print()
    print(text)
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    cfg.output.write_text(text + "\n", encoding="utf-8")
    print(f"written to {cfg.output}")
    failed = [run for run in outcome.runs if run.error]
    if failed:
        print(f"\n{len(failed)} run(s) FAILED:", file=sys.stderr)
        for run in failed:
            print(
                f"  round {run.round} {run.scenario} {run.client}: {run.error.splitlines()[-1]}",
                file=sys.stderr,
            )
        return 1
    if not outcome.clients:
        print("no client could run", file=sys.stderr)
        return 1
    return 0
