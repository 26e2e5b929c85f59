"""
Run a scenario on the Twisted reactor (the floor and txami clients) and exit.

The reactor is the platform default (epoll on Linux).  Results and failures
leave through `common.emit` and `common.fail`; a deadline turns a hang into a
failure that says how far the run got.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from twisted.internet import defer
from twisted.python.failure import Failure

from bench.clients.common import BenchFailure, Settings, emit, fail
from bench.clients.scenarios import Adapter, Finish, Progress, run_scenario


def deferred_waiter() -> tuple[defer.Deferred[None], Finish]:
    """A Deferred and an idempotent function that fires it (or fails it)."""
    d: defer.Deferred[None] = defer.Deferred()

    def finish(error: BaseException | None) -> None:
        if d.called:
            return
        if error is None:
            d.callback(None)
        else:
            d.errback(error)

    return d, finish


def run(settings: Settings, make_adapter: Callable[[Any], Adapter]) -> NoReturn:
    """Build the adapter on the reactor, run the scenario, emit or fail, exit."""
    from twisted.internet import reactor

    progress = Progress()
    outcome: list[object] = []

    def finished(result: object) -> None:
        outcome.append(result)
        reactor.stop()  # type: ignore[attr-defined]

    def go() -> None:
        adapter = make_adapter(reactor)
        d = defer.Deferred.fromCoroutine(run_scenario(adapter, settings, progress))
        d.addBoth(finished)

    def too_late() -> None:
        fail(settings.client, settings.scenario, f"no result after {settings.deadline:g} s "
             f"({progress})")  # fmt: skip

    reactor.callWhenRunning(go)  # type: ignore[attr-defined]
    reactor.callLater(settings.deadline, too_late)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    if not outcome:
        fail(settings.client, settings.scenario, "the reactor stopped before the scenario ended")
    result = outcome[0]
    if isinstance(result, Failure):
        if result.check(BenchFailure):
            fail(settings.client, settings.scenario, str(result.value))
        fail(settings.client, settings.scenario, result.getTraceback())
    assert isinstance(result, dict)
    emit(settings, result)
    raise SystemExit(0)
