"""
panoramisk (asyncio, from PyPI) driven through the scenarios, for comparison.

Used as its documentation shows: a `Manager` that logs in on connect, events
through ``register_event``, actions through ``send_action`` returning futures
(list actions resolve with every message of the list).  panoramisk has no
action timeouts, so for S4 ("timeouts on") each held action gets a
``loop.call_later`` that cancels its future: the cheapest timeout asyncio offers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bench.clients import asyncio_runner, common
from bench.clients.common import SECRET, BenchFailure, EventCounter
from bench.clients.scenarios import Finish

try:
    from panoramisk import Manager
    from panoramisk.actions import Action
    from panoramisk.message import Message
except ImportError as e:  # pragma: no cover - depends on the environment
    Manager = None
    IMPORT_ERROR = f"panoramisk not importable: {e} (pip install panoramisk)"
else:
    IMPORT_ERROR = ""


class PanoramiskAdapter:
    """Drives a panoramisk `Manager` for the scenarios."""

    def __init__(self, loop: asyncio.AbstractEventLoop, settings: common.Settings) -> None:
        self.loop = loop
        self.settings = settings
        self.manager: Any = None
        self.handlers: list[tuple[str, Callable[..., None]]] = []
        self.closing = False

    async def start(self, port: int, username: str) -> None:
        self.manager = Manager(
            loop=self.loop,
            host="127.0.0.1",
            port=port,
            username=username,
            secret=SECRET,
            ping_delay=10**6,
            reconnect_timeout=10**6,
            on_disconnect=self._disconnected,
        )
        for pattern, handler in self.handlers:
            self.manager.register_event(pattern, handler)
        await self.manager.connect()  # its done-callback sends Login before we resume
        response = await self.manager.authenticated_future
        if not response.success:
            raise BenchFailure(f"login refused: {response}")

    def _disconnected(self, manager: Any, exc: BaseException | None) -> None:
        if not self.closing:
            common.connection_lost(self.settings, repr(exc) if exc else "closed by the server")

    def watch_events(self, counter: EventCounter) -> None:
        add = counter.add

        def on_event(manager: Any, event: Message) -> None:
            add(event["Event"], event.get("Uniqueid"))

        self.handlers.append(("*", on_event))

    async def ping(self) -> None:
        action = Action({"Action": "Ping"})
        response = await self.manager.send_action(action)
        common.check_pong(action.action_id, response.get("ActionID"), response.get("Ping"))

    def ping_then(self, ok: Callable[[], None], bad: Callable[[BaseException], None]) -> None:
        action = Action({"Action": "Ping"})

        def answered(fut: asyncio.Future[Message]) -> None:
            try:
                response = fut.result()
                common.check_pong(action.action_id, response.get("ActionID"), response.get("Ping"))
            except BaseException as e:
                bad(e)
            else:
                ok()

        self.manager.send_action(action).add_done_callback(answered)

    async def status(self) -> None:
        action = Action({"Action": "Status"})
        messages = await self.manager.send_action(action)
        if not isinstance(messages, list) or len(messages) < 2:
            raise BenchFailure(f"Status {action.action_id!r} answered {messages!r}")
        items, complete = messages[1:-1], messages[-1]
        ends = [(m.get("Event"), m.get("ActionID")) for m in items[:1] + items[-1:]]
        common.check_list(
            self.settings, action.action_id, len(items), complete.get("ListItems"), ends
        )

    def hold(self) -> object:
        fut = self.manager.send_action(Action({"Action": "Ping"}))
        self.loop.call_later(self.settings.timeout, fut.cancel)
        return fut

    def release(self, handles: list[Any]) -> None:
        pass  # panoramisk leaves unanswered futures pending at disconnect: nothing to silence

    def wait_held(self) -> asyncio.Future[None]:
        fut, finish = asyncio_runner.future_waiter()
        self.manager.register_event("BenchHeld", lambda manager, event: finish(None))
        return fut

    def waiter(self) -> tuple[asyncio.Future[None], Finish]:
        return asyncio_runner.future_waiter()

    async def logoff(self) -> None:
        self.closing = True
        response = await self.manager.send_action({"Action": "Logoff"})
        if response.get("Response") != "Goodbye":
            raise BenchFailure(f"Logoff answered {response}")
        self.manager.close()


def main() -> None:
    """Entry point: ``python -m bench.clients.panoramisk_client --scenario s1 --port N``."""
    settings = common.parse_args("panoramisk")
    if IMPORT_ERROR:
        common.unavailable(IMPORT_ERROR)
    if settings is not None:
        asyncio_runner.run(settings, lambda loop: PanoramiskAdapter(loop, settings))


if __name__ == "__main__":
    main()
