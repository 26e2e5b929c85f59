"""
floor-bare: the floor without a timer per action, the cheapest correct-enough client.

The floor's parse and routing unchanged (`bench.clients.floor`), with one Deferred
per ActionID and nothing else: no ``callLater`` to arm or cancel.  An action the
server never answers waits forever, which txami may not do; this is the yardstick
for what an action costs before any guarantee is paid for.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

from bench.clients import common, twisted_runner
from bench.clients.floor import FloorAdapter, _WatchedFloorAMI


class BareFloorAMI(_WatchedFloorAMI):
    """`FloorAMI` with a bare Deferred per ActionID in ``_pending`` (no timer)."""

    def send_action(self, name: str, **headers: str) -> tuple[str, defer.Deferred[Any]]:
        action_id = str(next(self._ids))
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())  # type: ignore[union-attr]
        d: defer.Deferred[Any] = defer.Deferred()
        self._pending[action_id] = d  # type: ignore[assignment]
        return action_id, d

    def _finish(self, action_id: str, result: object) -> None:
        d: defer.Deferred[Any] = self._pending.pop(action_id)  # type: ignore[assignment]
        d.callback(result)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        pending, self._pending = self._pending, {}
        self._lists.clear()
        for d in pending.values():
            d.errback(reason)  # type: ignore[attr-defined]
        if not self.bench_closing:
            common.connection_lost(self.settings, reason.getErrorMessage())


class BareFloorAdapter(FloorAdapter):
    """Drives `BareFloorAMI` exactly as `FloorAdapter` drives the floor."""

    protocol_class = BareFloorAMI


def main() -> None:
    """Entry point: ``python -m bench.clients.floor_bare --scenario s2 --port N``."""
    settings = common.parse_args("floor-bare")
    if settings is not None:
        twisted_runner.run(settings, lambda reactor: BareFloorAdapter(reactor, settings))


if __name__ == "__main__":
    main()
