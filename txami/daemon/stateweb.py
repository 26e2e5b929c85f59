"""
The live state over HTTP: ``GET /state`` and ``GET /state/stream``.

``GET /state`` (and ``/pbx/NAME/state``)
    The PBX's `txami.state.pbxstate.PBXState.snapshot` as JSON (``docs/state.rst``
    documents its shape).  On a daemon with several PBXs, ``/state`` is
    ``{"version": 1, "pbxs": {NAME: snapshot, ...}}``.
``GET /state/stream`` (and ``/pbx/NAME/state/stream``)
    Server-Sent Events: for each PBX a ``snapshot`` event, then one ``delta``
    event per change, and after an AMI reconnect a ``resync`` event and a
    fresh ``snapshot`` (the messages are described in
    `txami.daemon.statefeed`).  A client that reads too slowly is dropped,
    and at most ``max_clients`` streams are open, as for ``/events``.

A token needs ``read`` on each PBX the resource covers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import IResource

from txami.daemon.statefeed import StateFeed
from txami.daemon.web import (
    HTTPRequest,
    SSEResource,
    SSEStream,
    _JSONResource,
    _NotFound,
    _write_json,
)
from txami.state import SNAPSHOT_VERSION

__all__ = ["StateResource", "StateStreamResource"]


class _StateStream(SSEStream):
    """One ``/state/stream`` client: a snapshot of each feed, then their messages."""

    owner: StateStreamResource

    def greeting(self) -> bytes:
        parts = [b": txami state stream\n\n"]
        parts += [_sse("snapshot", feed.snapshot_message()) for feed in self.owner.feeds]
        return b"".join(parts)

    def subscribe(self) -> None:
        for feed in self.owner.feeds:
            feed.subscribe(self)

    def unsubscribe(self) -> None:
        for feed in self.owner.feeds:
            feed.unsubscribe(self)

    def __call__(self, event: str, text: str) -> None:
        self.send(_sse(event, text))


def _sse(event: str, text: str) -> bytes:
    return f"event: {event}\ndata: {text}\n\n".encode("ascii")


class StateStreamResource(SSEResource):
    """``GET /state/stream``: the Server-Sent Events stream of ``feeds``' states."""

    path = "/state/stream"

    def __init__(self, feeds: Sequence[StateFeed], clock: IReactorTime, **limits: Any) -> None:
        super().__init__(clock, **limits)
        self.feeds = list(feeds)
        self.reads = tuple(feed.pbx for feed in self.feeds)

    def open_stream(self, request: HTTPRequest) -> SSEStream:
        return _StateStream(self, request)


class StateResource(_JSONResource):
    """
    ``GET /state``: the snapshot of one feed's state, or of several by
    PBX; ``/state/stream`` is its child.
    """

    def __init__(self, feeds: Sequence[StateFeed], stream: StateStreamResource) -> None:
        super().__init__()
        self.feeds = list(feeds)
        self.reads = tuple(feed.pbx for feed in self.feeds)
        self.stream = stream

    def getChild(self, path: bytes, request: HTTPRequest) -> IResource:
        if path == b"":
            return self
        return self.stream if path == b"stream" else _NotFound()

    def render_GET(self, request: HTTPRequest) -> bytes:
        if len(self.feeds) == 1:
            return _write_json(request, 200, self.feeds[0].state.snapshot())
        return _write_json(
            request,
            200,
            {
                "version": SNAPSHOT_VERSION,
                "pbxs": {feed.pbx: feed.state.snapshot() for feed in self.feeds},
            },
        )
