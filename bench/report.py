"""
Turning run results into numbers and tables: the metrics of each scenario,
medians over rounds, ratios to the floor, the targets, and the machine.

The table is a reStructuredText simple table, which also reads as plain text.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.model import REPO, Outcome, Run

FLOOR = "floor"
BARE = "floor-bare"
#: The yardsticks every other client's medians are divided by, in this order.
BASES = (FLOOR, BARE)
MIB = 1024 * 1024


@dataclass(frozen=True)
class Metric:
    """One number per run, taken from a client's result line."""

    key: str
    label: str
    fmt: str
    get: Callable[[dict[str, Any]], float]
    #: Whether a ratio to the floor means something (not for a growth near zero).
    ratio: bool = True


def title(m: Metric, window: int, short: bool = False) -> str:
    """The metric's label with the S2 window filled in; ``short`` drops the scenario."""
    label = m.label.replace("N-", f"{window}-")
    return label.split(" ", 1)[1] if short else label


def _growth_kib(r: dict[str, Any]) -> float:
    """RSS growth from the 25 % sample to the highest later sample (S1), in KiB."""
    rss = r["rss"]
    return (max(rss[1:]) - rss[0]) / 1024 if len(rss) > 1 else 0.0


METRICS: dict[str, list[Metric]] = {
    "s1": [
        Metric("s1.eps", "S1 events/s", ",.0f", lambda r: r["events"] / r["wall_s"]),
        Metric("s1.cpu", "S1 CPU us/event", ".2f", lambda r: r["cpu_s"] / r["events"] * 1e6),
        Metric("s1.peak", "S1 peak RSS MiB", ".1f", lambda r: max(r["peak_rss"], *r["rss"]) / MIB),
        Metric(
            "s1.added",
            "S1 RSS added MiB",
            ".1f",
            lambda r: (max(r["peak_rss"], *r["rss"]) - r["rss0"]) / MIB,
        ),
        Metric("s1.growth", "S1 RSS growth 25->100% KiB", "+,.0f", _growth_kib, ratio=False),
    ],
    "s2": [
        Metric(
            "s2.serial",
            "S2 1-at-a-time actions/s",
            ",.0f",
            lambda r: r["pings"] / r["serial"]["wall_s"],
        ),
        Metric(
            "s2.serial_cpu",
            "S2 1-at-a-time CPU us/action",
            ".1f",
            lambda r: r["serial"]["cpu_s"] / r["pings"] * 1e6,
        ),
        Metric(
            "s2.window",
            "S2 N-outstanding actions/s",
            ",.0f",
            lambda r: r["pings"] / r["windowed"]["wall_s"],
        ),
        Metric(
            "s2.window_cpu",
            "S2 N-outstanding CPU us/action",
            ".1f",
            lambda r: r["windowed"]["cpu_s"] / r["pings"] * 1e6,
        ),
    ],
    "s3": [
        Metric("s3.ms", "S3 ms/list", ".1f", lambda r: r["wall_s"] / r["lists"] * 1e3),
        Metric("s3.cpu", "S3 CPU ms/list", ".1f", lambda r: r["cpu_s"] / r["lists"] * 1e3),
    ],
    "s4": [
        Metric("s4.bytes", "S4 bytes/pending action", ",.0f", lambda r: r["per_action"]),
    ],
}


@dataclass(frozen=True)
class Target:
    """A goal for txami: on its ratio to a yardstick (``base``), or on its own value."""

    text: str
    #: The client the ratio is to (`FLOOR`, `BARE`), or `None` to judge the value itself.
    base: str | None
    limit: float
    at_most: bool

    def passes(self, value: float | None, ratios: dict[str, float | None]) -> bool | None:
        """Whether the goal is met; `None` when the number to judge is missing."""
        x = ratios.get(self.base) if self.base is not None else value
        if x is None:
            return None
        return x <= self.limit if self.at_most else x >= self.limit


def targets(flat_kib: int) -> dict[str, list[Target]]:
    """The project's targets (issue 10), by metric key; a metric passes when all of its pass."""
    return {
        "s1.cpu": [Target("<= 0.6 x floor", FLOOR, 0.6, True)],
        "s1.growth": [Target(f"flat: <= {flat_kib:,} KiB", None, flat_kib, True)],
        "s2.serial": [Target(">= 0.95 x floor-bare", BARE, 0.95, False)],
        "s2.window": [
            Target(">= 0.85 x floor-bare", BARE, 0.85, False),
            Target(">= 1.0 x floor", FLOOR, 1.0, False),
        ],
        "s3.ms": [Target("<= 1.2 x floor", FLOOR, 1.2, True)],
        "s4.bytes": [Target("<= 400 B", None, 400, True)],
    }


def values(runs: list[Run], client: str, metric: Metric, scenario: str) -> list[float]:
    """The metric's value in every successful run of ``client`` on ``scenario``."""
    return [
        metric.get(run.result)
        for run in runs
        if run.client == client and run.scenario == scenario and run.result is not None
    ]


def median(xs: list[float]) -> float | None:
    """The median, or `None` for no values."""
    return statistics.median(xs) if xs else None


def cell(x: float | None, fmt: str) -> str:
    """A number for the table, ``-`` when missing."""
    return "-" if x is None else format(x, fmt)


def rst_table(header: list[str], rows: list[list[str]]) -> str:
    """A reStructuredText simple table (first column left-aligned, others right-aligned)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)

    def line(r: list[str]) -> str:
        parts = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([rule, line(header), rule, *(line(r) for r in rows), rule])


def results_table(outcome: Outcome) -> str:
    """Medians per client, ratios to each yardstick and txami's targets, one row per metric."""
    clients = outcome.clients
    bases = [b for b in BASES if b in clients]
    others = list(dict.fromkeys(c for c in ("txami", *clients) if c in clients and c not in BASES))
    # Each other client against each yardstick, and floor-bare against the floor.
    pairs = [(c, b) for c in others for b in bases]
    if FLOOR in bases and BARE in bases:
        pairs.append((BARE, FLOOR))
    goals = targets(outcome.cfg.flat_kib)
    judge = "txami" in clients
    header = ["metric", *clients, *(f"{c}/{b}" for c, b in pairs)]
    if judge:
        header += ["target (txami)", "pass"]
    rows = []
    for scenario in outcome.cfg.scenarios:
        for m in METRICS[scenario]:
            med = {c: median(values(outcome.runs, c, m, scenario)) for c in clients}
            row = [title(m, outcome.cfg.window), *(cell(med[c], m.fmt) for c in clients)]
            ratios: dict[tuple[str, str], float | None] = {}
            for c, b in pairs:
                base, x = med[b], med[c]
                ratios[c, b] = x / base if m.ratio and x is not None and base else None
                row.append(cell(ratios[c, b], ".2f"))
            if judge:
                metric_goals = goals.get(m.key, [])
                mine = {b: ratios.get(("txami", b)) for b in bases}
                verdicts = [g.passes(med["txami"], mine) for g in metric_goals]
                if not metric_goals or None in verdicts:
                    mark = ""
                else:
                    mark = "pass" if all(verdicts) else "FAIL"
                row += ["; ".join(g.text for g in metric_goals), mark]
            rows.append(row)
    return rst_table(header, rows)


def spread_table(outcome: Outcome) -> str:
    """
    How far the rounds spread: for each metric and client, the lowest and
    highest value over the rounds and (highest - lowest) / median in percent.
    """
    clients = outcome.clients
    rows = []
    for scenario in outcome.cfg.scenarios:
        for m in METRICS[scenario]:
            row = [title(m, outcome.cfg.window)]
            for c in clients:
                xs = values(outcome.runs, c, m, scenario)
                mid = median(xs)
                if not xs or mid is None:
                    row.append("-")
                    continue
                low, high = min(xs), max(xs)
                share = f" ({(high - low) / abs(mid):.0%})" if mid and m.ratio else ""
                row.append(f"{format(low, m.fmt)} .. {format(high, m.fmt)}{share}")
            rows.append(row)
    return rst_table(["metric (min .. max over rounds)", *clients], rows)


def one_line(run: Run, window: int) -> str:
    """A short progress line for one run."""
    if run.error or run.result is None:
        return "FAILED"
    parts = [
        f"{title(m, window, short=True)} {format(m.get(run.result), m.fmt)}"
        for m in METRICS[run.scenario]
    ]
    return f"{run.wall_s:5.1f} s  " + "; ".join(parts)


def _measured_wall(run: Run) -> float:
    r = run.result or {}
    if run.scenario == "s2":
        return float(r["serial"]["wall_s"] + r["windowed"]["wall_s"])
    return float(r.get("wall_s", 0.0))


def server_load(outcome: Outcome) -> str:
    """The server's busiest share of one core per scenario: it must stay far from 100 %."""
    parts = []
    for scenario in outcome.cfg.scenarios:
        shares = [
            run.server_cpu_s / _measured_wall(run)
            for run in outcome.runs
            if run.scenario == scenario and run.result and _measured_wall(run) > 0
        ]
        if shares:
            parts.append(f"{scenario} {max(shares):.0%}")
    return ", ".join(parts) or "-"


def runs_tables(outcome: Outcome) -> str:
    """Every run's numbers, one table per scenario, for judging the spread."""
    out = []
    for scenario in outcome.cfg.scenarios:
        metrics = METRICS[scenario]
        rows = []
        for run in outcome.runs:
            if run.scenario != scenario:
                continue
            nums = (
                [format(m.get(run.result), m.fmt) for m in metrics]
                if run.result
                else ["FAILED"] + [""] * (len(metrics) - 1)
            )
            rows.append([str(run.round), run.client, *nums])
        if rows:
            labels = [title(m, outcome.cfg.window, short=True) for m in metrics]
            out.append(f"{scenario.upper()}\n\n" + rst_table(["round", "client", *labels], rows))
    return "\n\n".join(out)


def s4_sites(outcome: Outcome) -> str:
    """Where the pending actions' memory goes (last S4 run of each client), per action."""
    out = []
    for client in outcome.clients:
        runs = [r for r in outcome.runs if r.client == client and r.scenario == "s4" and r.result]
        if runs:
            sites = "\n".join(f"  - ``{site}``" for site in runs[-1].result["top"])  # type: ignore[index]
            out.append(f"- {client}:\n\n{sites}\n")
    return "\n".join(out)


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (or what `platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor", "cpu model"):
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _txami_version() -> str:
    init = REPO / "txami" / "__init__.py"
    found = re.search(r'__version__ = "([^"]+)"', init.read_text()) if init.exists() else None
    return found.group(1) if found else _version("txami")


def _git() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "txami", "bench"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "no git"
    if rev.returncode != 0:
        return "no revision"
    return rev.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def machine_line() -> str:
    """Machine, CPU, core count and Python in one line."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{platform.platform()}; {cpu_model()}; nproc {cores}; "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


def render(outcome: Outcome) -> str:
    """The whole report: machine, settings, the table, how to read it, every run."""
    cfg = outcome.cfg
    settings = (
        f"{cfg.rounds} round(s){' (--quick)' if cfg.quick else ''}; S1 {cfg.events:,} events; "
        f"S2 {cfg.pings:,} pings per mode, {cfg.window} outstanding; "
        f"S3 {cfg.lists} x Status of {cfg.items:,} items; S4 {cfg.pending:,} pending actions"
    )
    server_cpu, client_cpu = outcome.cpus
    pinning = (
        f"server pinned to CPU {server_cpu}, clients to CPU {client_cpu}"
        if client_cpu is not None
        else "not pinned"
    )
    versions = (
        f"Twisted {_version('twisted')}; panoramisk {_version('panoramisk')}; "
        f"txami {_txami_version()} (git {_git()})"
    )
    head = [
        "txami benchmark",
        "===============",
        "",
        f":Machine: {machine_line()}",
        f":Versions: {versions}",
        f":Settings: {settings}",
        f":CPUs: {pinning}",
        f":Clients: {', '.join(outcome.clients) or 'none'}",
        f":Run time: {outcome.seconds:.0f} s",
        f":Server load: busiest share of one core while clients measured: {server_load(outcome)}",
    ]
    for line in outcome.skipped:
        head.append(f":Skipped: {line}")
    failed = [r for r in outcome.runs if r.error]
    if failed:
        head.append(f":FAILED: {len(failed)} run(s); their numbers are left out")
    notes = (
        "Medians over the rounds; X/floor is the ratio of the medians.  For events/s and "
        "actions/s higher is better; for CPU time, milliseconds, MiB, KiB and bytes lower is "
        "better.  Targets apply to txami's median.  Peak RSS includes the interpreter and "
        "imports; RSS added is the peak minus the RSS just before connecting.  RSS growth is "
        "the highest RSS sample at 50/75/100 % of the S1 events minus the sample at 25 %: flat "
        "means it stays under the limit, i.e. memory does not grow with the number of events."
    )
    spread = "Spread between rounds\n---------------------\n\n" + spread_table(outcome)
    parts = ["\n".join(head), results_table(outcome), notes, spread]
    if outcome.runs:
        parts += ["Every run\n---------", runs_tables(outcome)]
    if failed:
        parts += [
            "Failures\n--------",
            "\n".join(
                f"- round {r.round} {r.scenario} {r.client}: {r.error.splitlines()[-1]}"
                for r in failed
            ),
        ]
    sites = s4_sites(outcome) if "s4" in cfg.scenarios else ""
    if sites:
        parts += ["S4: top allocation sites, bytes per pending action\n" + "-" * 50, sites]
    return "\n\n".join(parts)
