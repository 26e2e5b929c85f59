"""
S7: the daemon from the AMI socket to Redis, for 1, 10 and 100 PBXs; and the memory
plateau while Redis is down.  Run: ``python -m bench.s7`` (needs ``redis-server``
and ``pip install -e '.[redis]'``).

Throughput (``--pbxs 1,10,100``, ``--events`` in total, ``--rounds``)
    For each PBX count, the daemon (``bench.s7_daemon``, the real service tree
    built from a config file) logs every session in to the benchmark's AMI
    server (``bench.server``) and, once all are set up (logged in, their start
    markers in the stream), tells the server to go: it streams ``events / pbxs``
    real Asterisk events to each session, and the daemon publishes every one
    to a private ``redis-server``.  The daemon measures its CPU time from the
    go to Redis's acknowledgement of the last entry: the event path, which the
    targets are about.  The set-up's CPU is measured apart and reported per
    PBX.  S1 of txami's own client (``bench.clients.txami_client``) runs
    against the same server as the reference.  Each round runs S1 and every
    PBX count back to back (this machine's speed drifts from minute to
    minute).  Reported: events per CPU-second and CPU µs per event, medians
    over the rounds; the ratios to S1 and to 1 PBX, medians of each round's
    own, with the targets of issue 14 (1 PBX: at most 2.5 x S1 per event;
    100 PBXs: within 1.2 x of 1 PBX); and the set-up's CPU per PBX.

Plateau (``--plateau``, ``--rate``, ``--down``)
    One PBX fed at ``--rate`` events/s by a paced source (``bench.s7_source``);
    after a few seconds Redis is shut down for ``--down`` seconds and then
    started again on the same data.  Reported: the daemon's RSS each second
    (it must level off at the configured buffer cap), the events dropped, how
    long the backlog took to drain, and a check of the whole stream: ``seq``
    gap-free except for exactly one ``TxamiGap`` that accounts for every drop.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.run import child_setup

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def read_json_line(process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """The next JSON line a child prints (RuntimeError after ``timeout`` or at its end)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError("no answer from a child process in time")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            byte = os.read(fd, 1)
            if not byte:
                raise RuntimeError(f"a child process ended: {line!r}")
            line += byte
    result: dict[str, Any] = json.loads(line)
    return result


class Redis:
    """A private redis-server (append-only file, fsync each second)."""

    def __init__(self, directory: str, cpu: int | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        self.cpu = cpu
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise SystemExit("S7 needs redis-server (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [
                server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.directory,
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=child_setup(self.cpu),
        )
        assert self.process.stdout is not None
        seen = b""
        deadline = time.monotonic() + 30
        while b"Ready to accept connections" not in seen:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start: {seen[-300:]!r}")
            ready, _, _ = select.select([self.process.stdout], [], [], 1.0)
            if ready:
                seen += os.read(self.process.stdout.fileno(), 65536)
        self.process.stdout.close()

    def command(self, *args: str) -> Any:
        """One command on a fresh connection (for the runner's own reads)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as sock:
            sock.sendall(
                b"*%d\r\n" % len(args)
                + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
            )
            reader = sock.makefile("rb")
            return _reply(reader)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError, RuntimeError):
                self.command("SHUTDOWN")
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _reply(reader: Any) -> Any:
    line = reader.readline()
    kind, rest = line[:1], line[1:-2]
    if kind in (b"+", b"-"):
        if kind == b"-":
            raise RuntimeError(rest.decode())
        return rest.decode()
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else reader.read(size + 2)[:-2].decode("utf-8", "replace")
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [_reply(reader) for _ in range(count)]
    raise RuntimeError(f"unexpected reply {line!r}")


def start_child(args: list[str], cpu: int | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PYTHON, "-m", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        preexec_fn=child_setup(cpu),
    )


def stop_child(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        process.stdin.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- throughput -------------------------------------------------------------------------------


def throughput(options: argparse.Namespace, directory: str) -> dict[str, Any]:
    redis = Redis(os.path.join(directory, "redis"))
    os.makedirs(redis.directory)
    redis.start()
    results: dict[str, Any] = {"s1": [], "pbxs": {}}
    try:
        # Each round runs S1 and every PBX count back to back, so that a round's
        # ratios compare runs made under the same load (this machine's speed drifts).
        for round_number in range(options.rounds):
            for pbxs in options.pbxs:
                per_pbx = options.events // pbxs
                server = start_child(["bench.server", "--events", str(per_pbx)], cpu=0)
                port = read_json_line(server, 60)["port"]
                try:
                    if pbxs == options.pbxs[0]:
                        results["s1"].append(run_s1(port, per_pbx))
                    redis.command("FLUSHALL")
                    line = run_daemon(port, redis.url, pbxs, per_pbx)
                    results["pbxs"].setdefault(pbxs, []).append(line)
                    print(
                        f"  {pbxs:3d} PBXs round {round_number + 1}: "
                        f"{line['cpu_s'] / line['events'] * 1e6:6.1f} µs/event, "
                        f"{line['events'] / line['cpu_s']:8.0f} events/CPU-s, "
                        f"set-up {line['setup_cpu_s'] / pbxs * 1e3:5.2f} ms/PBX",
                        flush=True,
                    )
                finally:
                    stop_child(server)
    finally:
        redis.stop()
    return results


def run_s1(port: int, events: int) -> float:
    """txami's S1 client against the server at ``port``: its CPU µs per event."""
    s1 = subprocess.run(
        [
            PYTHON,
            "-m",
            "bench.clients.txami_client",
            "--scenario",
            "s1",
            "--port",
            str(port),
            "--events",
            str(events),
        ],
        capture_output=True,
        check=True,
        preexec_fn=child_setup(1),
    )
    line = json.loads(s1.stdout.splitlines()[-1])
    return float(line["cpu_s"] / line["events"] * 1e6)


def run_daemon(port: int, redis_url: str, pbxs: int, events: int) -> dict[str, Any]:
    """One run of ``bench.s7_daemon``: its JSON line (CPU of the event path, set-up apart)."""
    run = subprocess.run(
        [
            PYTHON,
            "-m",
            "bench.s7_daemon",
            "--port",
            str(port),
            "--redis",
            redis_url,
            "--pbxs",
            str(pbxs),
            "--events",
            str(events),
        ],
        capture_output=True,
        preexec_fn=child_setup(1),
    )
    if run.returncode:
        raise RuntimeError(run.stderr.decode(errors="replace")[-2000:])
    line: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    return line


def _per_event(run: dict[str, Any]) -> float:
    return float(run["cpu_s"] / run["events"] * 1e6)


def report_throughput(results: dict[str, Any]) -> str:
    s1_runs: list[float] = results["s1"]
    s1 = statistics.median(s1_runs)
    counts = sorted(results["pbxs"])
    first = [_per_event(r) for r in results["pbxs"][counts[0]]]
    lines = [
        "S7: daemon CPU from the AMI socket to Redis's acknowledgement (medians)",
        "(the event path: every session logged in first; its set-up's CPU apart, per PBX;",
        " the ratios are medians of each round's own, its runs made back to back)",
        "",
        f"  txami S1 (reference): {s1:.2f} µs/event",
        "",
        "  PBXs    events   µs/event  events/CPU-s   x S1   x 1 PBX   set-up ms/PBX",
    ]
    #: Each PBX count's per-round ratios: to S1, and to the first PBX count.
    rounds: dict[int, tuple[list[float], list[float]]] = {}
    for pbxs in counts:
        runs = results["pbxs"][pbxs]
        times = [_per_event(r) for r in runs]
        per_event = statistics.median(times)
        setup = statistics.median(r["setup_cpu_s"] / pbxs * 1e3 for r in runs)
        to_s1 = [t / s for t, s in zip(times, s1_runs, strict=False)]
        to_one = [t / o for t, o in zip(times, first, strict=False)]
        rounds[pbxs] = (to_s1, to_one)
        lines.append(
            f"  {pbxs:4d}  {runs[0]['events']:8d}  {per_event:9.2f}  {1e6 / per_event:12.0f}"
            f"  {statistics.median(to_s1):5.2f}  {statistics.median(to_one):8.2f}  {setup:14.2f}"
        )
    lines += [
        "",
        _verdict(f"{counts[0]} PBX <= 2.5 x S1", rounds[counts[0]][0], 2.5),
        _verdict(f"{counts[-1]} PBXs <= 1.2 x {counts[0]} PBX", rounds[counts[-1]][1], 1.2),
    ]
    return "\n".join(lines)


def _verdict(target: str, ratios: list[float], bound: float) -> str:
    """A target's line: the rounds' median ratio, pass or MISS, their spread, how many met it."""
    median = statistics.median(ratios)
    met = sum(ratio <= bound for ratio in ratios)
    return (
        f"  target {target}: {median:.2f} x -> {'pass' if median <= bound else 'MISS'}"
        f" (rounds {min(ratios):.2f} .. {max(ratios):.2f}, "
        f"{met} of {len(ratios)} within {bound:g} x)"
    )


# --- plateau ----------------------------------------------------------------------------------


def plateau(options: argparse.Namespace, directory: str) -> str:
    redis = Redis(os.path.join(directory, "redis-plateau"))
    os.makedirs(redis.directory)
    redis.start()
    source = start_child(["bench.s7_source", "--rate", str(options.rate)], cpu=0)
    port = read_json_line(source, 60)["port"]
    daemon = start_child(
        [
            "bench.s7_daemon",
            "--mode",
            "plateau",
            "--port",
            str(port),
            "--redis",
            redis.url,
            "--username",
            "admin",
            "--secret",
            "adminsecret",
            "--maxlen",
            "0",
            "--buffer-events",
            str(options.cap_events),
            "--buffer-bytes",
            str(options.cap_bytes),
        ],
        cpu=1,
    )
    samples: list[dict[str, Any]] = []

    def sample() -> dict[str, Any]:
        line = read_json_line(daemon, 30)
        samples.append(line)
        return line

    try:
        for _ in range(5):
            sample()
        redis.stop()
        down_at = len(samples)
        for _ in range(options.down):
            sample()
        up_at = len(samples)
        redis.start()
        drained = None
        for _ in range(600):
            line = sample()
            if line["redis"] and line["buffered_events"] < options.rate:
                drained = line["t"] - samples[up_at - 1]["t"]
                break
        stop_child(daemon)
        stop_child(source)
        check = check_stream(redis, samples[-1]["dropped"])
    finally:
        for child in (daemon, source):
            if child.poll() is None:
                child.kill()
        redis.stop()
    mib = 1024 * 1024
    outage = samples[down_at:up_at]
    lines = [
        f"S7 plateau: {options.rate} events/s, Redis down {options.down} s, cap "
        f"{options.cap_events} events / {options.cap_bytes / mib:.0f} MiB per PBX",
        "",
        "  t (s)   RSS MiB   buffered   buffered MiB   dropped   redis",
    ]
    for line in samples[:: max(1, len(samples) // 25)]:
        lines.append(
            f"  {line['t']:5.0f}   {line['rss'] / mib:7.1f}   {line['buffered_events']:8d}   "
            f"{line['buffered_bytes'] / mib:12.1f}   {line['dropped']:7d}   {line['redis']}"
        )
    second_half = [s["rss"] for s in outage[len(outage) // 2 :]]
    lines += [
        "",
        f"  RSS over the outage's second half: {min(second_half) / mib:.1f} .. "
        f"{max(second_half) / mib:.1f} MiB",
        f"  backlog drained {drained:.1f} s after Redis returned"
        if drained is not None
        else "  backlog NOT drained",
        f"  stream check: {check}",
    ]
    return "\n".join(lines)


def check_stream(redis: Redis, dropped: int) -> str:
    """Walk the stream: seq continuous within each epoch, exactly one gap, the right count."""
    key = "txami:{p000}:events"
    start = "-"
    last: tuple[int, int] | None = None
    gaps: list[dict[str, Any]] = []
    entries = 0
    while True:
        reply = redis.command("XRANGE", key, start, "+", "COUNT", "10000")
        if not reply:
            break
        for _entry_id, flat in reply:
            fields = dict(zip(flat[0::2], flat[1::2], strict=True))
            epoch, seq = int(fields["epoch"]), int(fields["seq"])
            entries += 1
            if fields["event"] == "TxamiSessionStart":
                last = (epoch, seq)
                continue
            body = json.loads(fields["json"]) if fields["event"] == "TxamiGap" else None
            if body is not None:
                gaps.append(body)
                if last is None or body["FirstSeq"] != last[1] + 1:
                    return f"FAIL: gap {body} after {last}"
            elif last is None or (epoch, seq) != (last[0], last[1] + 1):
                return f"FAIL: seq {(epoch, seq)} after {last}"
            last = (epoch, seq)
        start = "(" + reply[-1][0]
    if len(gaps) != 1:
        return f"FAIL: {len(gaps)} gap markers"
    if gaps[0]["Dropped"] != dropped:
        return f"FAIL: the gap says {gaps[0]['Dropped']}, the daemon dropped {dropped}"
    return (
        f"ok: {entries} entries, seq continuous, one TxamiGap of {dropped} events "
        f"(seq {gaps[0]['FirstSeq']}..{gaps[0]['LastSeq']})"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.s7", description=__doc__.split("\n\n")[0])
    p.add_argument("--pbxs", default="1,10,100", help="PBX counts (default 1,10,100)")
    p.add_argument("--events", type=int, default=100_000, help="events per run, in total")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-throughput", action="store_true")
    p.add_argument("--plateau", action="store_true", help="also run the Redis-down plateau")
    p.add_argument("--rate", type=int, default=5000, help="plateau: events per second")
    p.add_argument("--down", type=int, default=60, help="plateau: seconds Redis is down")
    p.add_argument("--cap-events", type=int, default=1_000_000)
    p.add_argument("--cap-bytes", type=int, default=64_000_000)
    p.add_argument("--output", default="bench/results/s7.txt")
    options = p.parse_args(argv)
    options.pbxs = [int(n) for n in options.pbxs.split(",")]
    directory = tempfile.mkdtemp(prefix="txami-s7-")
    parts = []
    try:
        if not options.no_throughput:
            parts.append(report_throughput(throughput(options, directory)))
            print(parts[-1], flush=True)
        if options.plateau:
            parts.append(plateau(options, directory))
            print(parts[-1], flush=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(os.path.dirname(options.output), exist_ok=True)
    with open(options.output, "w") as f:
        f.write("\n\n".join(parts) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
