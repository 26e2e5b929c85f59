"""
Record the captures of ``tests/data/state-*.raw`` from a real Asterisk.

Usage (with the server of ``../shared/asterisk`` running and its ``env``
evaluated)::

    python -m tests.statecapture NAME [NAME ...]     # or: all
    python -m tests.statereplay NAME [NAME ...]      # then, after review: the snapshots

For each scenario of `tests.statescenarios`, a *main* connection (user
admin, events on) logs in and runs a `PBXState` over it, recording every
byte it receives (``state-NAME.raw``) and sends (``state-NAME.sent.raw``);
a *driver* connection (events ``call``) makes the calls, compares the model
with fresh lists at each checkpoint, and marks the checkpoint in the main
stream with a ``UserEvent`` (the replays snapshot the model there).  The
comparisons are printed; the ``.md`` notes quote them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet.protocol import ClientCreator

from tests.realpbx import address, unique_tag
from tests.statescenarios import SCENARIOS, Ctx
from txami import AMIProtocol, PBXState, connect

DATA = Path(__file__).resolve().parent / "data"


class RecordingProtocol(AMIProtocol):
    """An `AMIProtocol` that keeps every byte it reads and writes."""

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self.received = bytearray()
        self.sent = bytearray()

    def connectionMade(self) -> None:
        write = self.transport.write  # type: ignore[union-attr]

        def recording_write(data: bytes) -> None:
            self.sent += data
            write(data)

        self.transport.write = recording_write  # type: ignore[union-attr,method-assign]
        super().connectionMade()

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        super().dataReceived(data)


async def record(reactor: Any, name: str) -> None:
    doc, run, before = SCENARIOS[name]
    host, port = address()
    driver = await connect(
        reactor, host, port, username="admin", secret="adminsecret", events="call"
    )
    tag = unique_tag("7")
    try:
        main: RecordingProtocol = await ClientCreator(
            reactor, RecordingProtocol, reactor
        ).connectTCP(host, port)
        state = PBXState(main, clock=reactor)
        ctx = Ctx(reactor, state, driver, tag, recording=True)
        if before is not None:
            await before(ctx)
        await main.login("admin", "adminsecret")
        await state.start()
        await run(ctx)
        await ctx.checkpoint("the end")
        await main.logoff()
        await task.deferLater(reactor, 0.2, lambda: None)
    finally:
        await ctx.cleanup()
        await driver.stop()
    (DATA / f"state-{name}.raw").write_bytes(bytes(main.received))
    (DATA / f"state-{name}.sent.raw").write_bytes(bytes(main.sent))
    print(f"state-{name}: {doc}")
    print(f"  tag {tag}; {len(main.received)} bytes received, {len(main.sent)} sent")
    for check in ctx.checks:
        print("  checkpoint", check)


async def main(reactor: Any, *names: str) -> None:
    if not os.environ.get("TXAMI_TEST_AMI"):
        raise SystemExit("set TXAMI_TEST_AMI (eval the env script of ../shared/asterisk)")
    if not names or names == ("all",):
        names = tuple(SCENARIOS)
    for name in names:
        await record(reactor, name)


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, *sys.argv[1:])))
