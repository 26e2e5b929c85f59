"""
What a benchmark run is made of: its `Config`, each client process's `Run`,
and the `Outcome` of them all.  Shared by the runner (`bench.run`) and the
report (`bench.report`), so neither imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.clients.common import SCENARIOS

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "latest.txt"

#: Client name -> module run as ``python -m MODULE``; the first is the yardstick.
CLIENTS = {
    "floor": "bench.clients.floor",
    "floor-bare": "bench.clients.floor_bare",
    "panoramisk": "bench.clients.panoramisk_client",
    "txami": "bench.clients.txami_client",
}


@dataclass(frozen=True)
class Config:
    """Everything a run depends on, from the command line."""

    clients: tuple[str, ...] = tuple(CLIENTS)
    scenarios: tuple[str, ...] = SCENARIOS
    rounds: int = 5
    events: int = 200_000
    pings: int = 20_000
    window: int = 200
    lists: int = 20
    items: int = 5_000
    pending: int = 10_000
    timeout: float = 30.0
    run_timeout: float = 180.0
    flat_kib: int = 2048
    pin: bool = True
    output: Path = RESULTS
    quick: bool = False


@dataclass
class Run:
    """One client process running one scenario."""

    client: str
    scenario: str
    round: int
    result: dict[str, Any] | None = None
    error: str = ""
    server_cpu_s: float = 0.0
    wall_s: float = 0.0


@dataclass
class Outcome:
    """Every run of the benchmark, in the order they ran."""

    cfg: Config
    clients: list[str]
    skipped: list[str]
    cpus: tuple[int | None, int | None] = (None, None)  # where the server and clients ran
    runs: list[Run] = field(default_factory=list)
    seconds: float = 0.0
