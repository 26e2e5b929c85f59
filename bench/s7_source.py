"""
A paced AMI event source for the S7 plateau run: ``python -m bench.s7_source --rate 5000``.

A `txami.testing.FakeAsterisk` (user ``admin``, secret ``adminsecret``) that, once a
client is logged in, sends the benchmark's real Asterisk events (``bench.data``)
at ``--rate`` events per second, in slices every 10 ms.  It prints ``{"port": N}``
when it listens and exits when its stdin closes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys

from twisted.internet import reactor, stdio, task
from twisted.internet.protocol import Protocol

from bench import data
from txami.testing import FakeAsterisk, listen

TICK = 0.01


class _Stdin(Protocol):
    def connectionLost(self, reason: object = None) -> None:
        if reactor.running:
            reactor.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.s7_source")
    p.add_argument("--rate", type=int, default=5000, help="events per second")
    args = p.parse_args(argv)
    fake = FakeAsterisk(reactor)
    port = listen(fake, reactor)
    events = itertools.cycle([block + data.END for block in data.real_events()])
    per_tick = max(1, round(args.rate * TICK))
    started = reactor.seconds()
    sent = 0

    def tick() -> None:
        nonlocal sent
        # Catch up to the rate by the clock, so a late tick does not lower it.
        due = int((reactor.seconds() - started) * args.rate) - sent
        count = min(max(due, 0), per_tick * 10)
        if count and fake.sessions:
            fake.send_raw(b"".join(next(events) for _ in range(count)))
        sent += count

    sys.stdout.write(json.dumps({"port": port.getHost().port}) + "\n")  # type: ignore[attr-defined]
    sys.stdout.flush()
    task.LoopingCall(tick).start(TICK)
    stdio.StandardIO(_Stdin())
    reactor.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
