"""
txami with a `PBXState` attached, for the state model's benchmark
(`bench.state`).  One process runs one scenario and prints one JSON line, as
the other clients do (`bench.clients.common`):

``s5``
    The S1 event stream (real capture mix, ``--events`` events) read by an
    `AMIFactory` whose `PBXState` registered its handlers before the login,
    so every event is tracked; the S1 counter handler runs too.  Reported:
    CPU per event, to set against the floor's S1.
``s6``
    ``--lists`` syncs, each a new `PBXState` over the same logged-in
    `AMIProtocol`, of ``--channels`` channels (``CoreShowChannels`` and
    ``BridgeList`` from the server; its other list actions are refused).
    Reported: wall and CPU ms from ``start()`` to synced, to set against the
    floor's S3 time per list; then one more sync under ``tracemalloc``: the
    model's heap per tracked channel.
``calls``
    No server: ``--calls`` calls (rounds of the 300 calls of the capture,
    Uniqueids new each round) fed to a `PBXState` over an in-memory
    protocol, with a `Clock`.  Reported: the traced heap after the first
    round and after the last (tombstones at their bound), and after they
    expire: it must not grow with the number of calls.
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from typing import Any

from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from bench import data, statedata
from bench.clients.common import (
    SECRET,
    BenchFailure,
    EventCounter,
    Meter,
    Settings,
    emit,
    fail,
)
from bench.clients.twisted_runner import deferred_waiter

try:
    from txami import AMIFactory, AMIProtocol, PBXState
except Exception as e:  # pragma: no cover
    IMPORT_ERROR = f"txami not importable: {type(e).__name__}: {e}"
else:
    IMPORT_ERROR = ""

SCENARIOS = ("s5", "s6", "calls")


def _settings(argv: list[str] | None = None) -> tuple[Settings, int, int]:
    p = argparse.ArgumentParser(prog="python -m bench.clients.state_client")
    p.add_argument("--scenario", choices=SCENARIOS, required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--with-uniqueid", type=int, default=-1)
    p.add_argument("--lists", type=int, default=5)
    p.add_argument("--channels", type=int, default=5_000)
    p.add_argument("--calls", type=int, default=100_000)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--deadline", type=float, default=170.0)
    a = p.parse_args(argv)
    settings = Settings(
        client="state",
        scenario=a.scenario,
        port=a.port,
        events=a.events,
        with_uniqueid=a.with_uniqueid,
        pings=0,
        window=0,
        lists=a.lists,
        items=a.channels,
        pending=0,
        timeout=a.timeout,
        deadline=a.deadline,
    )
    return settings, a.channels, a.calls


async def s5_events(reactor: Any, s: Settings) -> dict[str, Any]:
    """S5: the S1 stream, every event applied to a `PBXState`."""
    factory = AMIFactory("s1", SECRET, reactor=reactor, keepalive=None, timeout=s.timeout)
    state = PBXState(factory)
    waiter, finish = deferred_waiter()
    counter = EventCounter(s.events, lambda: finish(None))
    factory.add_event_handler("*", lambda msg: counter.add(msg.name, msg.get("Uniqueid")))
    started = state.start()
    meter = Meter()
    reactor.connectTCP("127.0.0.1", s.port, factory)
    await waiter
    times = meter.stop()
    counter.check(s)
    await started
    result = {
        **times,
        "events": counter.count,
        "channels_left": len(state.channels),
        "limits": sorted(state.limits),
    }
    state.stop()
    await factory.stop()
    return result


async def s6_syncs(reactor: Any, s: Settings, channels: int) -> dict[str, Any]:
    """S6: syncs of ``channels`` channels, timed, then one traced for its heap."""
    protocol = AMIProtocol(reactor, timeout=s.timeout)
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", s.port), protocol)  # type: ignore[no-untyped-call]
    await protocol.login("s6", SECRET, events="off")
    rounds = []
    for _ in range(s.lists):
        state = PBXState(protocol)
        meter = Meter()
        await state.start()
        rounds.append(meter.stop())
        if len(state.channels) != channels:
            raise BenchFailure(f"synced {len(state.channels)} channels, expected {channels}")
        state.stop()
        del state
        gc.collect()  # the model is cyclic garbage now: not the next round's cost
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    state = PBXState(protocol)
    await state.start()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    exclude = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diff = after.filter_traces(exclude).compare_to(before.filter_traces(exclude), "filename")
    heap = sum(stat.size_diff for stat in diff)
    state.stop()
    await protocol.logoff()
    wall = sorted(r["wall_s"] for r in rounds)
    cpu = sorted(r["cpu_s"] for r in rounds)
    return {
        "lists": s.lists,
        "channels": channels,
        "wall_s": wall[len(wall) // 2],
        "cpu_s": cpu[len(cpu) // 2],
        "heap": heap,
        "heap_per_channel": heap / channels,
    }


def _feeder(clock: Clock) -> tuple[AMIProtocol, PBXState]:
    protocol = AMIProtocol(clock)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(data.BANNER)
    protocol.login("admin", SECRET)
    action_id = transport.value().split(b"ActionID: ")[1].split(b"\r\n")[0]
    protocol.dataReceived(b"Response: Success\r\nActionID: " + action_id + b"\r\n\r\n")
    state = PBXState(protocol, clock=clock)
    state.start()
    return protocol, state


def calls_heap(calls: int) -> dict[str, Any]:
    """The heap before and after ``calls`` calls have come and gone through a model."""
    per_round = 300
    rounds = max(2, -(-calls // per_round))
    clock = Clock()
    protocol, state = _feeder(clock)

    def feed(n: int) -> None:
        stream = statedata.call_round(n)
        for i in range(0, len(stream), 65536):
            protocol.dataReceived(stream[i : i + 65536])
        clock.advance(1.0)

    feed(0)
    gc.collect()
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    meter = Meter()
    for n in range(1, rounds):
        feed(n)
    times = meter.stop()
    gc.collect()
    end = tracemalloc.get_traced_memory()[0]
    # Let the tombstones expire (the next hangup purges them), then look again.
    clock.advance(state._store.channel_tombstones.seconds + 1)
    state._store.channel_tombstones.purge(clock.seconds())
    state._store.bridge_tombstones.purge(clock.seconds())
    state._store.retired_calls.purge(clock.seconds())
    gc.collect()
    settled = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    if state.channels or state.calls:
        raise BenchFailure(f"{len(state.channels)} channels, {len(state.calls)} calls left")
    return {
        **times,
        "calls": rounds * per_round,
        "growth": end - start,
        "growth_settled": settled - start,
        "tombstones": len(state._store.channel_tombstones),
    }


def main() -> None:
    """Entry point: ``python -m bench.clients.state_client --scenario s5 --port N``."""
    if IMPORT_ERROR:
        raise SystemExit(IMPORT_ERROR)
    s, channels, calls = _settings()
    if s.scenario == "calls":
        try:
            emit(s, calls_heap(calls))
        except BenchFailure as e:
            fail("state", "calls", str(e))
        raise SystemExit(0)
    from twisted.internet import reactor

    results: list[dict[str, Any]] = []

    async def go() -> None:
        if s.scenario == "s5":
            results.append(await s5_events(reactor, s))
        else:
            results.append(await s6_syncs(reactor, s, channels))

    def done(outcome: object) -> None:
        if results:
            emit(s, results[0])
        elif isinstance(outcome, Exception) or hasattr(outcome, "getTraceback"):
            why = outcome.getTraceback() if hasattr(outcome, "getTraceback") else str(outcome)
            fail("state", s.scenario, why)
        reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(go()).addBoth(done))
    reactor.callLater(s.deadline, lambda: fail("state", s.scenario, "no result in time"))
    reactor.run()
    raise SystemExit(0 if results else 1)


if __name__ == "__main__":
    main()
