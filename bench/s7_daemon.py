"""
The daemon side of S7, run in its own process by ``python -m bench.s7``.

It builds the real ``twistd txami`` service tree (`txami.daemon.options.build_service`,
then `freeze_startup_objects`, as ``makeService`` does) from a configuration file with
``--pbxs`` ``[pbx:pNNN]`` sections, all logging in to the benchmark's AMI server, and a
``[redis]`` section; then measures its own CPU time
on the event path: from the moment every session is set up to the moment Redis has
acknowledged every event.

Two modes:

``throughput`` (S7)
    Set-up first: every session logs in (user ``s7``: the server holds its
    events) and its ``TxamiSessionStart`` marker reaches the stream; its CPU is
    reported apart (``setup_cpu_s``).  Then the process logs in once more as
    ``go`` (a blocking socket, outside both measures), the server streams
    ``--events`` events to each session, and the run ends when Redis has
    acknowledged every one.  Prints one JSON line: events, CPU (user and
    system) and wall seconds of the event path, the set-up's CPU and wall
    seconds, peak RSS.
``plateau``
    The PBXs' events come from a paced source (``bench.s7_source``); every
    ``--sample`` seconds the process prints a JSON line with its RSS and the
    publisher's counters, until its stdin closes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import socket
import sys
import tempfile
import time
from typing import Any

from twisted.internet import reactor, task

from txami.daemon.options import build_service, freeze_startup_objects
from txami.daemon.service import BridgeService
from txami.tap import Options


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def sys_seconds() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def write_config(directory: str, args: argparse.Namespace) -> str:
    secret = os.path.join(directory, "secret")
    with open(secret, "w") as f:
        f.write(args.secret + "\n")
    path = os.path.join(directory, "txami.ini")
    with open(path, "w") as f:
        for number in range(args.pbxs):
            f.write(
                f"[pbx:p{number:03d}]\nhost = 127.0.0.1\nport = {args.port}\n"
                f"username = {args.username}\nsecret-file = {secret}\n\n"
            )
        window = f"window = {args.window}\n" if args.window is not None else ""
        f.write(
            f"[redis]\nurl = {args.redis}\nactions = no\n{window}"
            f"maxlen = {args.maxlen}\nbuffer-events = {args.buffer_events}\n"
            f"buffer-bytes = {args.buffer_bytes}\n"
            f"total-buffer-events = {max(args.buffer_events, args.total_buffer_events)}\n"
            f"total-buffer-bytes = {max(args.buffer_bytes, args.total_buffer_bytes)}\n"
        )
    return path


def build(args: argparse.Namespace) -> BridgeService:
    directory = tempfile.mkdtemp(prefix="txami-s7-")
    options = Options()
    options.parseOptions(["--config", write_config(directory, args)])
    bridge = build_service(options, reactor, stdout=io.StringIO())
    freeze_startup_objects()  # as `makeService` does for twistd
    for connection in bridge.redis:
        connection.initial_delay, connection.max_delay = 0.1, 0.5
    return bridge


def totals(bridge: BridgeService) -> dict[str, int]:
    sessions = bridge.sessions.values()
    return {
        "received": sum(s.factory.events_received for s in sessions),
        "published": sum(s.metrics.published for s in sessions),
        "dropped": sum(sum(s.metrics.dropped.values()) for s in sessions),
        "buffered_events": sum(s.buffer.events for s in sessions if s.buffer),
        "buffered_bytes": sum(s.buffer.bytes for s in sessions if s.buffer),
        "logins": sum(s.factory.logins for s in sessions),
    }


def say_go(port: int) -> None:
    """Log in to the benchmark server as ``go``: the ``s7`` sessions' streams start."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"Action: Login\r\nUsername: go\r\nSecret: go\r\n\r\n")
        answer = b""
        while b"Authentication accepted" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                raise RuntimeError(f"the benchmark server did not answer go: {answer!r}")
            answer += chunk


def throughput(args: argparse.Namespace) -> int:
    bridge = build(args)
    # Set-up: every session logged in (and its event mask and filters restored) and
    # its start marker in the stream; then the events, each PBX's right after the go.
    expected = args.pbxs * (args.events + 1)
    result: dict[str, Any] = {}
    started = time.perf_counter()
    cpu_start = cpu_seconds()
    cpu0 = sys0 = wall0 = 0.0
    streaming = False

    sessions = list(bridge.sessions.values())
    metrics = [session.metrics for session in sessions]

    def stop(error: str | None = None) -> None:
        if error is not None:
            result.update(error=error)
        poll.stop()
        reactor.stop()

    def check() -> None:
        # Cheap enough to poll (the other totals are read once, at the end).
        nonlocal streaming, cpu0, sys0, wall0
        published = sum(m.published for m in metrics)
        if not streaming:
            if published >= args.pbxs and all(
                s.factory.protocol_instance is not None for s in sessions
            ):
                result.update(
                    setup_cpu_s=cpu_seconds() - cpu_start,
                    setup_wall_s=time.perf_counter() - started,
                )
                say_go(args.port)
                streaming = True
                cpu0, sys0, wall0 = cpu_seconds(), sys_seconds(), time.perf_counter()
        elif published >= expected:
            result.update(
                cpu_s=cpu_seconds() - cpu0,
                sys_s=sys_seconds() - sys0,
                wall_s=time.perf_counter() - wall0,
            )
            result.update(totals(bridge))
            stop()
            return
        if time.perf_counter() - started > args.timeout:
            stop(f"timed out: {totals(bridge)}")

    poll = task.LoopingCall(check)
    reactor.callWhenRunning(bridge.startService)
    reactor.callWhenRunning(poll.start, 0.02, now=False)
    reactor.run()
    if "error" in result:
        sys.stderr.write(f"FAIL s7 {args.pbxs} PBXs: {result['error']}\n")
        return 1
    if result["received"] != args.pbxs * args.events or result["dropped"]:
        sys.stderr.write(f"FAIL s7 {args.pbxs} PBXs: {result}\n")
        return 1
    result.update(
        pbxs=args.pbxs,
        events=args.pbxs * args.events,
        peak_rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    )
    print(json.dumps(result), flush=True)
    return 0


def plateau(args: argparse.Namespace) -> int:
    bridge = build(args)
    started = time.perf_counter()

    def sample() -> None:
        line = {"t": round(time.perf_counter() - started, 2), "rss": rss_bytes()}
        line.update(totals(bridge))
        line["redis"] = bool(bridge.redis and bridge.redis[0].connected)
        print(json.dumps(line), flush=True)

    def stdin_closed() -> None:
        reactor.stop()

    from twisted.internet import stdio
    from twisted.internet.protocol import Protocol

    class Watch(Protocol):
        def connectionLost(self, reason: object = None) -> None:
            stdin_closed()

    stdio.StandardIO(Watch())
    reactor.callWhenRunning(bridge.startService)
    task.LoopingCall(sample).start(args.sample, now=False)
    reactor.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.s7_daemon")
    p.add_argument("--mode", choices=("throughput", "plateau"), default="throughput")
    p.add_argument("--port", type=int, required=True, help="the AMI server's port")
    p.add_argument("--username", default="s7")
    p.add_argument("--secret", default="bench")
    p.add_argument("--redis", required=True, help="redis://127.0.0.1:PORT/0")
    p.add_argument("--pbxs", type=int, default=1)
    p.add_argument("--events", type=int, default=200_000, help="events per PBX")
    p.add_argument("--window", type=int, default=None, help="the [redis] window (its default)")
    p.add_argument("--maxlen", type=int, default=1_000_000)
    p.add_argument("--buffer-events", type=int, default=10_000_000)
    p.add_argument("--buffer-bytes", type=int, default=4_000_000_000)
    p.add_argument("--total-buffer-events", type=int, default=0)
    p.add_argument("--total-buffer-bytes", type=int, default=0)
    p.add_argument("--sample", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args(argv)
    return throughput(args) if args.mode == "throughput" else plateau(args)


if __name__ == "__main__":
    raise SystemExit(main())
