"""
The floor: the least an honest Twisted AMI client does, as the yardstick.

A plain `Protocol` (not LineReceiver) that splits what it has on the blank line
once per ``dataReceived`` and keeps the tail, decodes each message as UTF-8,
builds a ``dict`` per message, fires one Deferred per ActionID (each with a
timeout), collects list items until ``EventList: Complete`` and hands every
other event to one handler.  No case folding, no repeated headers, no
validation: anything a real client adds costs more than this.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IDelayedCall, IReactorTCP, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

from bench.clients import common, twisted_runner
from bench.clients.common import SECRET, BenchFailure, EventCounter
from bench.clients.scenarios import Finish

Message = dict[str, str]


class ListAnswer(NamedTuple):
    """What a list action fires with: its response, items and completion event."""

    response: Message
    items: list[Message]
    complete: Message


class FloorAMI(Protocol):
    """Minimal AMI client protocol: actions by ActionID, events to ``on_event``."""

    def __init__(self, clock: IReactorTime, timeout: float = 30.0) -> None:
        self.clock = clock
        self.timeout = timeout
        self.on_event: Callable[[Message], None] = lambda msg: None
        self._buffer = b""
        self._banner = True
        self._ids = itertools.count(1)
        self._pending: dict[str, tuple[defer.Deferred[Any], IDelayedCall]] = {}
        self._lists: dict[str, tuple[Message, list[Message]]] = {}

    def send_action(self, name: str, **headers: str) -> tuple[str, defer.Deferred[Any]]:
        """
        Send an action; return its ActionID and a Deferred firing with the
        response (a `ListAnswer` for a list action).
        """
        action_id = str(next(self._ids))
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())  # type: ignore[union-attr]
        d: defer.Deferred[Any] = defer.Deferred()
        timer = self.clock.callLater(self.timeout, self._timed_out, action_id)
        self._pending[action_id] = (d, timer)
        return action_id, d

    def dataReceived(self, data: bytes) -> None:
        if self._banner:  # "Asterisk Call Manager/9.0.0\r\n" precedes the first message
            data = self._buffer + data
            if b"\r\n" not in data:
                self._buffer = data
                return
            self._banner = False
            self._buffer, data = b"", data.partition(b"\r\n")[2]
        blocks = (self._buffer + data).split(b"\r\n\r\n")
        self._buffer = blocks.pop()
        for block in blocks:
            msg = {}
            for line in block.decode("utf-8", "replace").split("\r\n"):
                k, _, v = line.partition(": ")
                msg[k] = v
            self._dispatch(msg)

    def _dispatch(self, msg: Message) -> None:
        action_id = msg.get("ActionID")
        if action_id is not None and action_id in self._pending:
            if "Response" in msg:
                if msg.get("EventList") == "start":
                    self._lists[action_id] = (msg, [])
                else:
                    self._finish(action_id, msg)
                return
            listed = self._lists.get(action_id)
            if listed is not None:
                if msg.get("EventList") == "Complete":
                    del self._lists[action_id]
                    self._finish(action_id, ListAnswer(listed[0], listed[1], msg))
                else:
                    listed[1].append(msg)
                return
        if "Event" in msg:
            self.on_event(msg)

    def _finish(self, action_id: str, result: object) -> None:
        d, timer = self._pending.pop(action_id)
        timer.cancel()
        d.callback(result)

    def _timed_out(self, action_id: str) -> None:
        d, _ = self._pending.pop(action_id)
        self._lists.pop(action_id, None)
        d.errback(TimeoutError(f"no answer to action {action_id} in {self.timeout} s"))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        pending, self._pending = self._pending, {}
        self._lists.clear()
        for d, timer in pending.values():
            timer.cancel()
            d.errback(reason)


class _WatchedFloorAMI(FloorAMI):
    """`FloorAMI` that fails the run if the server closes before ``Logoff``."""

    bench_closing = False
    settings: common.Settings

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        super().connectionLost(reason)
        if not self.bench_closing:
            common.connection_lost(self.settings, reason.getErrorMessage())


class FloorAdapter:
    """Drives `FloorAMI` for the scenarios."""

    #: The protocol driven (`bench.clients.floor_bare` drives its timer-less variant).
    protocol_class: type[_WatchedFloorAMI] = _WatchedFloorAMI

    def __init__(self, reactor: Any, settings: common.Settings) -> None:
        self.reactor = reactor
        self.settings = settings
        self.proto = self.protocol_class(reactor, settings.timeout)
        self.proto.settings = settings

    async def start(self, port: int, username: str) -> None:
        reactor: IReactorTCP = self.reactor
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        await connectProtocol(endpoint, self.proto)  # type: ignore[no-untyped-call]
        _, d = self.proto.send_action("Login", Username=username, Secret=SECRET)
        response = await d
        if response.get("Response") != "Success":
            raise BenchFailure(f"login refused: {response}")

    def watch_events(self, counter: EventCounter) -> None:
        add = counter.add

        def on_event(msg: Message) -> None:
            add(msg["Event"], msg.get("Uniqueid"))

        self.proto.on_event = on_event

    def ping(self) -> defer.Deferred[None]:
        action_id, d = self.proto.send_action("Ping")
        return d.addCallback(self._check_pong, action_id)

    @staticmethod
    def _check_pong(response: Message, action_id: str) -> None:
        common.check_pong(action_id, response.get("ActionID"), response.get("Ping"))

    def ping_then(self, ok: Callable[[], None], bad: Callable[[BaseException], None]) -> None:
        self.ping().addCallbacks(lambda _: ok(), lambda f: bad(f.value))

    def status(self) -> defer.Deferred[None]:
        action_id, d = self.proto.send_action("Status")
        return d.addCallback(self._check_list, action_id)

    def _check_list(self, answer: ListAnswer, action_id: str) -> None:
        ends = [(m.get("Event"), m.get("ActionID")) for m in answer.items[:1] + answer.items[-1:]]
        common.check_list(
            self.settings, action_id, len(answer.items), answer.complete.get("ListItems"), ends
        )

    def hold(self) -> object:
        return self.proto.send_action("Ping")[1]

    def release(self, handles: list[Any]) -> None:
        for d in handles:
            d.addErrback(lambda _: None)

    def wait_held(self) -> defer.Deferred[None]:
        d, finish = twisted_runner.deferred_waiter()

        def on_event(msg: Message) -> None:
            if msg.get("Event") == "BenchHeld":
                finish(None)

        self.proto.on_event = on_event
        return d

    def waiter(self) -> tuple[defer.Deferred[None], Finish]:
        return twisted_runner.deferred_waiter()

    async def logoff(self) -> None:
        self.proto.bench_closing = True
        _, d = self.proto.send_action("Logoff")
        response = await d
        if response.get("Response") != "Goodbye":
            raise BenchFailure(f"Logoff answered {response}")


def main() -> None:
    """Entry point: ``python -m bench.clients.floor --scenario s1 --port N``."""
    settings = common.parse_args("floor")
    if settings is not None:
        twisted_runner.run(settings, lambda reactor: FloorAdapter(reactor, settings))


if __name__ == "__main__":
    main()
