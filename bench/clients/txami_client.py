"""
txami driven through the scenarios, the way its documentation shows.

An `AMIProtocol` connected with ``connectProtocol``, events through
``add_event_handler("*", ...)``, ``login``/``ping``/``logoff`` helpers and
``send_action("Status")`` (whose response carries the items in ``events`` and
the completion event in ``list_complete``).  Per-action timeouts are txami's
default (on, ``timeout`` seconds).

txami generates ActionIDs itself, so a Ping answer is checked against the
ActionID it carries (present, ``Ping: Pong``) and S2 checks that every answer
had a distinct one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

from bench.clients import common, twisted_runner
from bench.clients.common import SECRET, BenchFailure, EventCounter
from bench.clients.scenarios import Finish

try:
    from txami import AMIProtocol, Message
except Exception as e:  # pragma: no cover - txami is being written alongside
    AMIProtocol = None  # type: ignore[assignment,misc]
    IMPORT_ERROR = f"txami not importable: {type(e).__name__}: {e}"
else:
    IMPORT_ERROR = ""


def _watched(settings: common.Settings) -> Any:
    """An `AMIProtocol` that fails the run if the server closes before ``Logoff``."""

    class WatchedAMIProtocol(AMIProtocol):
        bench_closing = False

        def connectionLost(self, reason: Failure = connectionDone) -> None:
            super().connectionLost(reason)
            if not self.bench_closing:
                common.connection_lost(settings, reason.getErrorMessage())

    return WatchedAMIProtocol


class TxamiAdapter:
    """Drives a txami `AMIProtocol` for the scenarios."""

    def __init__(self, reactor: Any, settings: common.Settings) -> None:
        self.reactor = reactor
        self.settings = settings
        self.proto = _watched(settings)(reactor)
        self.proto.timeout = settings.timeout
        self.answered: list[str] = []  # checked for repeats after the measurement

    async def start(self, port: int, username: str) -> None:
        endpoint = TCP4ClientEndpoint(self.reactor, "127.0.0.1", port)
        await connectProtocol(endpoint, self.proto)  # type: ignore[no-untyped-call]
        response = await self.proto.login(username, SECRET, events="on")
        if response.name != "Success":
            raise BenchFailure(f"login refused: {response!r}")

    def watch_events(self, counter: EventCounter) -> None:
        add = counter.add

        def on_event(msg: Message) -> None:
            add(msg.name, msg.get("Uniqueid"))

        self.proto.add_event_handler("*", on_event)

    def ping(self) -> defer.Deferred[None]:
        d: defer.Deferred[None] = self.proto.ping().addCallback(self._check_pong)
        return d

    def _check_pong(self, response: Message) -> None:
        action_id = response.action_id
        if not action_id:
            raise BenchFailure(f"Ping answered without an ActionID: {response!r}")
        self.answered.append(action_id)
        common.check_pong(action_id, action_id, response.get("Ping"))

    def ping_then(self, ok: Callable[[], None], bad: Callable[[BaseException], None]) -> None:
        self.ping().addCallbacks(lambda _: ok(), lambda f: bad(f.value))

    def status(self) -> defer.Deferred[None]:
        d: defer.Deferred[None] = self.proto.send_action("Status").addCallback(self._check_list)
        return d

    def _check_list(self, response: Message) -> None:
        items = response.events
        complete = response.list_complete
        if response.action_id is None or complete is None:
            raise BenchFailure(f"Status answered without a completed list: {response!r}")
        ends = [(m.name, m.action_id) for m in (items[0], items[-1])] if items else []
        common.check_list(
            self.settings, response.action_id, len(items), complete.get("ListItems"), ends
        )

    def hold(self) -> object:
        return self.proto.ping()

    def release(self, handles: list[Any]) -> None:
        for d in handles:
            d.addErrback(lambda _: None)

    def wait_held(self) -> defer.Deferred[None]:
        d, finish = twisted_runner.deferred_waiter()
        self.proto.add_event_handler("BenchHeld", lambda msg: finish(None))
        return d

    def waiter(self) -> tuple[defer.Deferred[None], Finish]:
        return twisted_runner.deferred_waiter()

    async def logoff(self) -> None:
        repeated = len(self.answered) - len(set(self.answered))
        if repeated:
            raise BenchFailure(f"{repeated} Ping answers repeated an earlier ActionID")
        self.proto.bench_closing = True
        response = await self.proto.logoff()
        if response.name != "Goodbye":
            raise BenchFailure(f"Logoff answered {response!r}")


def main() -> None:
    """Entry point: ``python -m bench.clients.txami_client --scenario s1 --port N``."""
    settings = common.parse_args("txami")
    if IMPORT_ERROR:
        common.unavailable(IMPORT_ERROR)
    if settings is not None:
        twisted_runner.run(settings, lambda reactor: TxamiAdapter(reactor, settings))


if __name__ == "__main__":
    main()
