"""
Run a scenario on an asyncio event loop (the panoramisk client) and exit.

The loop is asyncio's default (the selector loop on epoll); results and
failures leave through `common.emit` and `common.fail`, and a deadline turns a
hang into a failure that says how far the run got.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

from bench.clients.common import BenchFailure, Settings, emit, fail
from bench.clients.scenarios import Adapter, Finish, Progress, run_scenario


def future_waiter() -> tuple[asyncio.Future[None], Finish]:
    """A future of the running loop and an idempotent function that resolves it."""
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finish(error: BaseException | None) -> None:
        if fut.done():
            return
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)

    return fut, finish


def run(
    settings: Settings, make_adapter: Callable[[asyncio.AbstractEventLoop], Adapter]
) -> NoReturn:
    """Build the adapter on a fresh loop, run the scenario, emit or fail, exit."""
    progress = Progress()

    async def main() -> dict[str, Any]:
        adapter = make_adapter(asyncio.get_running_loop())
        scenario = run_scenario(adapter, settings, progress)
        return await asyncio.wait_for(scenario, settings.deadline)

    try:
        result = asyncio.run(main())
    except BenchFailure as e:
        fail(settings.client, settings.scenario, str(e))
    except asyncio.TimeoutError:
        fail(
            settings.client,
            settings.scenario,
            f"no result after {settings.deadline:g} s ({progress})",
        )
    except Exception:
        fail(settings.client, settings.scenario, traceback.format_exc())
    emit(settings, result)
    raise SystemExit(0)
