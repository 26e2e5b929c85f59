"""
S7's hot path in one process, without sockets: for instruction counts under
callgrind, which are repeatable where CPU times on a shared machine are not.

``daemon``
    The real ``twistd txami`` service tree (`txami.daemon.options.build_service`,
    as ``bench.s7_daemon`` builds it) with ``--pbxs`` sessions, each logged in
    over an in-memory transport, and its Redis connection's protocol on another;
    the harness feeds the benchmark's event stream in 64 KiB reads, one from
    each PBX a round, runs the reactor's due calls after each round as the
    reactor would after a turn, and answers every ``XADD`` the daemon wrote
    (the stream checks after the login are answered "empty").  Measured:
    everything from the AMI bytes to Redis's acknowledgements, as in S7, but
    the kernel and the event loop.
``s1``
    txami's S1 client (``bench.clients.txami_client``'s handler: the event's
    name and ``Uniqueid``) fed the same reads, the reference of S7's target.
``floor``
    What any design pays: the same reads through txami's protocol, a read's
    events kept in a list, their JSON lines made at once
    (`txami.jsonform.event_lines`, one receive time a read) and their ``XADD``
    fields appended to a list, joined and encoded once a read; no hub,
    entries, buffers, window or answers.  The distance from here to ``daemon``
    is what the daemon's own machinery costs.

Usage::

    python -m bench.s7_inprocess CASE N [--pbxs P]          # run, print a JSON line
    python -m bench.s7_inprocess --callgrind CASE [N] [--pbxs P]
    python -m bench.s7_inprocess --profile CASE N [--pbxs P]

``--callgrind`` runs N and 2N events under ``valgrind --tool=callgrind`` and
prints the instructions per event (the difference: start-up, imports and the
logins cancel out); ``--profile`` prints cProfile's busiest functions.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

from bench import data

CHUNK = 65536
LOGIN_OK = b"Response: Success\r\nActionID: %s\r\nMessage: Authentication accepted\r\n\r\n"
XADD_REPLY = b"$15\r\n1700000000000-0\r\n"
_ACTION_ID = re.compile(rb"\r\nActionID: ([^\r]*)")


class Sink:
    """A transport that keeps what is written."""

    disconnecting = False
    connected = True

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.write = self.written.append

    def writeSequence(self, chunks: list[bytes]) -> None:
        self.written.extend(chunks)

    def take(self) -> bytes:
        out = b"".join(self.written)
        self.written.clear()
        return out

    def loseConnection(self) -> None:
        pass

    def abortConnection(self) -> None:
        pass

    def getPeer(self) -> None:
        return None

    def getHost(self) -> None:
        return None

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass


def reads(n: int) -> list[bytes]:
    """``n`` stream events cut into 64 KiB reads (the cut falls anywhere, as on a socket)."""
    stream = data.event_stream(n)
    return [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]


def run_s1(n: int) -> dict[str, Any]:
    """txami's S1 handler fed ``n`` events."""
    from twisted.internet import reactor

    from txami import AMIProtocol, Message

    proto = AMIProtocol(reactor)
    proto.makeConnection(Sink())
    proto.dataReceived(data.BANNER)
    seen = [0, 0]

    def on_event(msg: Message) -> None:
        seen[0] += 1
        if msg.get("Uniqueid") is not None:
            seen[1] += 1

    proto.add_event_handler("*", on_event)
    feed = proto.dataReceived
    for chunk in reads(n):
        feed(chunk)
    assert seen[0] == n, seen
    return {"case": "s1", "events": n}


def build_daemon(pbxs: int) -> Any:
    """The service tree of ``bench.s7_daemon`` for ``pbxs`` PBXs (not started)."""
    from twisted.internet import reactor

    from txami.daemon.options import build_service
    from txami.tap import Options

    directory = tempfile.mkdtemp(prefix="txami-s7-inprocess-")
    secret = os.path.join(directory, "secret")
    with open(secret, "w") as f:
        f.write("bench\n")
    path = os.path.join(directory, "txami.ini")
    with open(path, "w") as f:
        for number in range(pbxs):
            f.write(
                f"[pbx:p{number:03d}]\nhost = 127.0.0.1\nport = 5038\n"
                f"username = s1\nsecret-file = {secret}\n\n"
            )
        f.write(
            "[redis]\nurl = redis://127.0.0.1:6379/0\nactions = no\nwindow = 1024\n"
            "maxlen = 1000000\nbuffer-events = 10000000\nbuffer-bytes = 4000000000\n"
            "total-buffer-events = 10000000\ntotal-buffer-bytes = 4000000000\n"
        )
    options = Options()
    options.parseOptions(["--config", path])
    return build_service(options, reactor, stdout=io.StringIO())


def run_daemon(n: int, pbxs: int) -> dict[str, Any]:
    """The daemon fed ``n`` events in all (``n // pbxs`` per PBX), every one acknowledged."""
    from twisted.internet import reactor

    from txami.daemon.redisconn import _protocol_class

    bridge = build_daemon(pbxs)
    sessions = list(bridge.sessions.values())
    # Redis first: the publisher checks each stream (answered empty), then is up.
    connection = bridge.redis[0]
    redis = _protocol_class()(charset="utf-8", replyTimeout=None, convertNumbers=False)
    redis_sink = Sink()
    redis.factory = None
    redis.makeConnection(redis_sink)
    connection.protocol = redis
    for listener in list(connection.listeners):
        listener.redis_ready(connection)
    checks = redis_sink.take()
    redis.dataReceived(b"*0\r\n" * checks.count(b"XREVRANGE"))
    # Each PBX logs in on its own transport.
    protocols = []
    for session in sessions:
        proto = session.factory.buildProtocol(None)
        sink = Sink()
        proto.makeConnection(sink)
        proto.dataReceived(data.BANNER)
        found = _ACTION_ID.search(sink.take())
        assert found is not None
        proto.dataReceived(LOGIN_OK % found.group(1))
        protocols.append(proto)
    assert all(s.factory.protocol_instance is not None for s in sessions)
    per_pbx = reads(n // pbxs)
    run_due = reactor.runUntilCurrent
    written = redis_sink.written
    answer = redis.dataReceived
    awaited = redis.awaited

    def acknowledge() -> bool:
        # Every command now is an XADD of a batch: answer each with an entry ID.
        if not written:
            return False
        written.clear()
        answer(XADD_REPLY * sum(batch.left for batch in awaited))
        return True

    for chunk in per_pbx:
        # A round of reads, one from each PBX, as one turn of the reactor would make.
        for proto in protocols:
            proto.dataReceived(chunk)
        run_due()
        acknowledge()
    for _ in range(1000):
        run_due()
        if not acknowledge():
            break
    published = sum(s.metrics.published for s in sessions)
    expected = pbxs * (n // pbxs + 1)
    assert published == expected, (published, expected)
    return {"case": "daemon", "events": pbxs * (n // pbxs), "pbxs": pbxs}


def run_floor(n: int) -> dict[str, Any]:
    """The JSON lines and the ``XADD`` fields of ``n`` events, and nothing else (see ``floor``)."""
    import time

    from twisted.internet import reactor

    from txami import AMIProtocol
    from txami.jsonform import event_lines

    proto = AMIProtocol(reactor)
    proto.makeConnection(Sink())
    proto.dataReceived(data.BANNER)
    events: list[Any] = []
    proto.add_event_handler("*", events.append)
    feed = proto.dataReceived
    sent = 0
    seq = 0
    for chunk in reads(n):
        received = time.time()
        feed(chunk)
        ts = str(int(received * 1000.0))
        fields = []
        for event, line in zip(events, event_lines(events, received, "p000"), strict=True):
            seq += 1
            fields.append((str(seq), event.name or "", ts, line))
        sent += len(fields)
        "".join([part for entry in fields for part in entry]).encode()
        events.clear()
    assert sent == n, sent
    return {"case": "floor", "events": n}


def run(case: str, n: int, pbxs: int) -> dict[str, Any]:
    if case == "floor":
        return run_floor(n)
    return run_s1(n) if case == "s1" else run_daemon(n, pbxs)


def callgrind(case: str, n: int, pbxs: int) -> float:
    """Instructions per event: the runs of ``n`` and ``2 n`` events, differenced."""
    counts = []
    for size in (n, 2 * n):
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                "-m",
                "bench.s7_inprocess",
                case,
                str(size),
                "--pbxs",
                str(pbxs),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        found = re.search(r"Collected : (\d+)", out.stderr)
        assert found is not None, out.stderr[-2000:]
        counts.append(int(found.group(1)))
    return (counts[1] - counts[0]) / n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.s7_inprocess")
    p.add_argument("--callgrind", action="store_true")
    p.add_argument("--profile", action="store_true")
    p.add_argument("case", choices=("daemon", "s1", "floor"))
    p.add_argument("n", type=int, nargs="?", default=20000)
    p.add_argument("--pbxs", type=int, default=1)
    args = p.parse_args(argv)
    if args.callgrind:
        per_event = callgrind(args.case, args.n, args.pbxs)
        print(json.dumps({"case": args.case, "pbxs": args.pbxs, "instructions": per_event}))
        return 0
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(run, args.case, args.n, args.pbxs)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return 0
    print(json.dumps(run(args.case, args.n, args.pbxs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
