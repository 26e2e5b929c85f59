"""
The state model's benchmark: S5, S6 and the 100,000-call heap check, with
the floor's S1 and S3 measured in the same run for the ratios.

Usage: ``python -m bench.state [--quick] [--rounds N] [--channels N] [--calls N]``,
or ``python -m bench.state --instructions`` (needs valgrind): the same S5 and
S6 work counted in instructions (`bench.stateinstr`), which a busy machine
does not blur.

Each round runs, in fresh processes against the fake server of
`bench.server` (started with ``--channels``): the floor's S1 then S5 (the
same event stream, read by txami with a `PBXState` attached), the floor's
S3 (``Status`` lists of ``--channels`` items) then S6 (syncs of
``--channels`` channels).  The heap check runs once, without a server.
The table (medians over the rounds; targets from issue 9) is printed and
written to ``bench/results/state.txt``:

- S5: CPU per event with a `PBXState` attached <= 1.5 x the floor's S1;
- S6: a sync of 5,000 channels ready in <= 2 x the floor's S3 time per list;
- heap per tracked channel <= 1.5 KiB (tracemalloc);
- after 100,000 calls have come and gone, the heap within 1 MiB of where it
  started (tombstones at their bound; and once they expire).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import data
from bench.model import REPO, Config
from bench.run import Server, child_setup, pinned_cpus

RESULTS = REPO / "bench" / "results" / "state.txt"


@dataclass(frozen=True)
class StateConfig:
    rounds: int = 3
    events: int = 200_000
    channels: int = 5_000
    lists: int = 5
    calls: int = 100_000
    pin: bool = True
    run_timeout: float = 300.0
    output: Path = RESULTS
    instructions: bool = False


QUICK = {"rounds": 1, "events": 20_000, "lists": 2, "calls": 10_000}


def parse_args(argv: list[str] | None) -> StateConfig:
    d = StateConfig()
    p = argparse.ArgumentParser(prog="python -m bench.state", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=f"smoke run ({QUICK})")
    p.add_argument("--rounds", type=int, help=f"rounds (default {d.rounds})")
    p.add_argument("--events", type=int, help=f"S1/S5 events (default {d.events})")
    p.add_argument("--channels", type=int, help=f"S6 channels and S3 items (default {d.channels})")
    p.add_argument("--lists", type=int, help=f"S3 lists and S6 syncs per run (default {d.lists})")
    p.add_argument("--calls", type=int, help=f"calls of the heap check (default {d.calls})")
    p.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin CPUs")
    p.add_argument(
        "--instructions", action="store_true", help="count instructions with callgrind instead"
    )
    p.add_argument("--output", type=Path, help=f"table file (default {d.output})")
    a = p.parse_args(argv)
    cfg = replace(d, pin=a.pin, instructions=a.instructions)
    if a.quick:
        cfg = replace(cfg, **QUICK)
    given = {
        k: getattr(a, k)
        for k in ("rounds", "events", "channels", "lists", "calls", "output")
        if getattr(a, k) is not None
    }
    return replace(cfg, **given)


def run(cfg: StateConfig, module: str, *args: str) -> dict[str, Any]:
    """One client process; its JSON result (or SystemExit with its failure)."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=cfg.run_timeout,
        preexec_fn=child_setup(pinned_cpus(cfg.pin)[1]),
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{module} {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def measure(cfg: StateConfig) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {"s1": [], "s5": [], "s3": [], "s6": []}
    server_cfg = Config(events=cfg.events, items=cfg.channels, pin=cfg.pin)
    server = Server(server_cfg)
    server.cmd.append(f"--channels={cfg.channels}")
    uniqueids = str(data.expected_with_uniqueid(cfg.events))
    common = [f"--timeout={30.0}", f"--deadline={cfg.run_timeout - 10:g}"]
    with server:
        port = f"--port={server.port}"
        for rnd in range(1, cfg.rounds + 1):
            stream = [port, f"--events={cfg.events}", f"--with-uniqueid={uniqueids}", *common]
            results["s1"].append(run(cfg, "bench.clients.floor", "--scenario=s1", *stream))
            results["s5"].append(run(cfg, "bench.clients.state_client", "--scenario=s5", *stream))
            lists = [port, f"--lists={cfg.lists}", *common]
            results["s3"].append(
                run(cfg, "bench.clients.floor", "--scenario=s3", f"--items={cfg.channels}", *lists)
            )
            results["s6"].append(
                run(
                    cfg,
                    "bench.clients.state_client",
                    "--scenario=s6",
                    f"--channels={cfg.channels}",
                    *lists,
                )
            )
            print(f"round {rnd}: " + one_line(results), flush=True)
    results["calls"] = [
        run(cfg, "bench.clients.state_client", "--scenario=calls", f"--calls={cfg.calls}")
    ]
    return results


def _per_event(r: dict[str, Any]) -> float:
    return 1e6 * float(r["cpu_s"]) / int(r["events"])


def _per_list(r: dict[str, Any], key: str = "wall_s") -> float:
    return 1e3 * float(r[key]) / int(r["lists"])


def one_line(results: dict[str, list[dict[str, Any]]]) -> str:
    s1, s5, s3, s6 = (results[k][-1] for k in ("s1", "s5", "s3", "s6"))
    return (
        f"S1 floor {_per_event(s1):.2f} us/event, S5 state {_per_event(s5):.2f}; "
        f"S3 floor {_per_list(s3):.1f} ms/list, S6 state {1e3 * s6['wall_s']:.1f} ms/sync"
    )


def render(cfg: StateConfig, results: dict[str, list[dict[str, Any]]], seconds: float) -> str:
    med = statistics.median
    s1 = med(_per_event(r) for r in results["s1"])
    s5 = med(_per_event(r) for r in results["s5"])
    s3 = med(_per_list(r) for r in results["s3"])
    s3_cpu = med(_per_list(r, "cpu_s") for r in results["s3"])
    s6 = med(1e3 * r["wall_s"] for r in results["s6"])
    s6_cpu = med(1e3 * r["cpu_s"] for r in results["s6"])
    heap = med(r["heap_per_channel"] for r in results["s6"])
    calls = results["calls"][0]
    n_calls = calls["calls"]
    growth, settled = calls["growth"] / 1024, calls["growth_settled"] / 1024
    rows = [
        (
            "S5 CPU us/event (vs floor S1)",
            f"{s1:.2f}",
            f"{s5:.2f}",
            s5 / s1,
            "<= 1.5 x floor",
            s5 <= 1.5 * s1,
        ),
        (
            "S6 ms per sync (vs floor S3 list)",
            f"{s3:.1f}",
            f"{s6:.1f}",
            s6 / s3,
            "<= 2.0 x floor",
            s6 <= 2.0 * s3,
        ),
        ("S6 CPU ms per sync", f"{s3_cpu:.1f}", f"{s6_cpu:.1f}", s6_cpu / s3_cpu, "", None),
        ("S6 heap per channel, bytes", "-", f"{heap:.0f}", None, "<= 1536", heap <= 1536),
        (
            f"heap growth after {n_calls:,} calls, KiB",
            "-",
            f"{growth:.0f}",
            None,
            "<= 1024",
            growth <= 1024,
        ),
        (
            "  the same, tombstones expired, KiB",
            "-",
            f"{settled:.0f}",
            None,
            "<= 1024",
            settled <= 1024,
        ),
    ]
    lines = [
        f"State model benchmark: {cfg.rounds} round(s), {cfg.events:,} events, "
        f"{cfg.channels:,} channels x {cfg.lists} syncs, {n_calls:,} calls; {seconds:.0f} s",
        "",
        f"{'metric':<36} {'floor':>8} {'state':>8} {'ratio':>6}  {'target':<15} pass",
    ]
    for name, floor, state, ratio, target, ok in rows:
        shown = f"{ratio:.2f}" if ratio is not None else "-"
        verdict = "" if ok is None else ("pass" if ok else "FAIL")
        lines.append(f"{name:<36} {floor:>8} {state:>8} {shown:>6}  {target:<15} {verdict}")
    lines += [
        "",
        "S5 is txami plus the model reading the S1 stream (every event tracked); S6 is "
        "start() to synced: CoreShowChannels and BridgeList over a socket, the model built.",
        "Medians over the rounds; each number comes from a fresh process.",
    ]
    return "\n".join(lines)


def instructions(kind: str, rounds: int) -> int:
    """Instructions callgrind counts for ``rounds`` rounds of ``kind`` (`bench.stateinstr`)."""
    proc = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "bench.stateinstr",
            kind,
            str(rounds),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in proc.stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1])
    raise SystemExit(f"no instruction count from callgrind for {kind}:\n{proc.stderr[-2000:]}")


def count(kind: str, per: int) -> float:
    """Instructions per unit of one extra round of ``kind`` (``per`` units a round)."""
    return (instructions(kind, 2) - instructions(kind, 1)) / per


def main_instructions() -> int:
    from bench.stateinstr import CHANNELS

    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 1
    events = len(data.real_events())
    s1, bare, s5 = (count(k, events) for k in ("floor-s1", "bare-s1", "state-s5"))
    s3, s6 = (count(k, 1) for k in ("floor-s3", "state-s6"))
    text = "\n".join(
        [
            "State model benchmark, instructions (callgrind; one extra round each)",
            "",
            f"{'metric':<44} {'floor':>12} {'txami':>12} {'ratio':>6}  target",
            f"{'S1 instructions per event (txami alone)':<44} {s1:>12,.0f} {bare:>12,.0f} "
            f"{bare / s1:>6.2f}",
            f"{'S5 instructions per event (with PBXState)':<44} {s1:>12,.0f} {s5:>12,.0f} "
            f"{s5 / s1:>6.2f}  <= 1.5 x floor {'pass' if s5 <= 1.5 * s1 else 'FAIL'}",
            f"{f'S6 instructions per sync of {CHANNELS:,} (S3 list)':<44} {s3:>12,.0f} "
            f"{s6:>12,.0f} {s6 / s3:>6.2f}  <= 2.0 x floor {'pass' if s6 <= 2.0 * s3 else 'FAIL'}",
        ]
    )
    print(text)
    path = RESULTS.with_name("state-instructions.txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    print(f"written to {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    if cfg.instructions:
        return main_instructions()
    started = time.perf_counter()
    results = measure(cfg)
    text = render(cfg, results, time.perf_counter() - started)
    print()
    print(text)
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    cfg.output.write_text(text + "\n", encoding="utf-8")
    print(f"written to {cfg.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
