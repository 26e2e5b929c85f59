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
    emitted: list[bool] = []

    def finished(result: object) -> None:
        # Report before stopping: the reactor's shutdown drops the connection,
        # which must not be mistaken for the cause of a failure.
        if isinstance(result, Failure):
            if isinstance(result.value, BenchFailure):
                fail(settings.client, settings.scenario, str(result.value))
            fail(settings.client, settings.scenario, result.getTraceback())
        assert isinstance(result, dict)
        emit(settings, result)
        emitted.append(True)
        reactor.stop()

    def go() -> None:
        adapter = make_adapter(reactor)
        d = defer.Deferred.fromCoroutine(run_scenario(adapter, settings, progress))
        d.addBoth(finished)

    def too_late() -> None:
        fail(
            settings.client,
            settings.scenario,
            f"no result after {settings.deadline:g} s ({progress})",
        )

    reactor.callWhenRunning(go)
    reactor.callLater(settings.deadline, too_late)
    reactor.run()
    if not emitted:
        fail(settings.client, settings.scenario, "the reactor stopped before the scenario ended")
    raise SystemExit(0)
