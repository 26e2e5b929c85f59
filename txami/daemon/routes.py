"""
The HTTP tree of the daemon: every PBX under ``/pbx/NAME/``, and the daemon-wide paths.

``GET /pbx``
    The names of the PBXs the token may use.
``/pbx/NAME/health``, ``/pbx/NAME/events``, ``/pbx/NAME/actions/{Action}``
    One PBX's health, event stream and actions (see `txami.daemon.web`).
``/pbx/NAME/state``, ``/pbx/NAME/state/stream``
    Its live state and the stream of its changes (`txami.daemon.stateweb`).
``/health``, ``/events``, ``/actions/{Action}``, ``/state``, ``/metrics``
    With one PBX, its health, events, actions and state, as before there
    were several; with several, ``/health`` sums them up (``200`` only while
    every PBX is logged in), ``/events`` and ``/state/stream`` stream every
    PBX's (each message names its PBX), ``/state`` holds each PBX's
    snapshot and ``/actions`` answers ``404`` naming the per-PBX path.
    ``/metrics`` always covers every PBX (labelled ``pbx``).  These
    daemon-wide paths need ``read`` on every PBX.
``GET /whoami``
    What the request's token may do (`txami.daemon.board.WhoAmIResource`).
``GET /`` from a browser, ``/board/...``
    The call board (`txami.daemon.board`); ``GET /`` from a program lists
    the endpoints.

A per-PBX resource is one entry of `PBX_CHILDREN`: a path segment and a
function that builds the resource from the `PBXSession` (and a
`RouteContext`, for the clock and the event streams), e.g.::

    PBX_CHILDREN = (*PBX_CHILDREN, ("state", lambda session, context: ...))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import IResource, Resource

from txami.daemon.acl import AccessList
from txami.daemon.board import BoardFiles, WhoAmIResource
from txami.daemon.hub import EventHub
from txami.daemon.metrics import MetricsRegistry
from txami.daemon.session import PBXSession
from txami.daemon.statefeed import StateFeed
from txami.daemon.stateweb import StateResource, StateStreamResource
from txami.daemon.web import (
    ActionResource,
    EventStreamResource,
    HealthResource,
    HTTPRequest,
    MetricsResource,
    SSEResource,
    _Actions,
    _error,
    _JSONResource,
    _NotFound,
    _Root,
    _write_json,
    grant_of,
    refuse_read,
)

__all__ = ["PBX_CHILDREN", "PBXChild", "RouteContext", "make_daemon_resource"]


class RouteContext:
    """What building a per-PBX resource may need besides the session."""

    def __init__(self, clock: IReactorTime, **stream_options: Any) -> None:
        self.clock = clock
        self.stream_options = stream_options
        #: Every event stream resource made, so the daemon can finish them on stop.
        self.streams: list[EventStreamResource] = []
        #: Every state stream resource made.
        self.state_streams: list[StateStreamResource] = []
        #: The live state of each PBX that has a state resource, by PBX name.
        self.feeds: dict[str, StateFeed] = {}

    @property
    def all_streams(self) -> list[SSEResource]:
        """Every stream resource (events and state), to finish when the daemon stops."""
        return [*self.streams, *self.state_streams]

    def event_stream(
        self, hub: EventHub, pbxs: Sequence[str] = ("default",)
    ) -> EventStreamResource:
        """A Server-Sent Events resource for ``hub``'s events (of ``pbxs``)."""
        resource = EventStreamResource(hub, self.clock, pbxs=pbxs, **self.stream_options)
        self.streams.append(resource)
        return resource

    def state_feed(self, session: PBXSession) -> StateFeed:
        """``session``'s `StateFeed` (one per PBX, made on first use)."""
        feed = self.feeds.get(session.pbx)
        if feed is None:
            feed = StateFeed(session.pbx, session.factory, self.clock, session.health)
            self.feeds[session.pbx] = feed
        return feed

    def state(self, feeds: Sequence[StateFeed]) -> StateResource:
        """``/state`` (with its ``/stream``) for ``feeds``."""
        stream = StateStreamResource(feeds, self.clock, **self.stream_options)
        self.state_streams.append(stream)
        return StateResource(feeds, stream)


#: Builds one per-PBX resource.
PBXChild = Callable[[PBXSession, RouteContext], IResource]

#: The resources under ``/pbx/NAME/``, in the order ``GET /pbx/NAME`` lists them.
PBX_CHILDREN: Sequence[tuple[str, PBXChild]] = (
    ("health", lambda session, context: HealthResource(session.health, (session.pbx,))),
    ("events", lambda session, context: context.event_stream(session.hub, (session.pbx,))),
    (
        "actions",
        lambda session, context: _Actions(
            ActionResource(session.factory, session.metrics, context.clock, session.pbx)
        ),
    ),
    ("state", lambda session, context: context.state([context.state_feed(session)])),
)


class PBXResource(_JSONResource):
    """``/pbx/NAME``: lists its children; hands each path on to it."""

    def __init__(self, name: str, children: Sequence[str]) -> None:
        super().__init__()
        self.name = name
        self._children = list(children)

    def getChild(self, path: bytes, request: HTTPRequest) -> IResource:
        return self if path == b"" else _NotFound()

    def render_GET(self, request: HTTPRequest) -> bytes:
        refused = refuse_read(request, (self.name,))
        if refused is not None:
            return refused
        return _write_json(
            request,
            200,
            {
                "pbx": self.name,
                "endpoints": [f"/pbx/{self.name}/{child}" for child in self._children],
            },
        )


class PBXListResource(_JSONResource):
    """``/pbx``: the PBXs' names; ``/pbx/NAME/...`` goes to that PBX's resource."""

    def __init__(self, pbxs: Mapping[str, PBXResource]) -> None:
        super().__init__()
        self._pbxs = dict(pbxs)

    def getChild(self, path: bytes, request: HTTPRequest) -> IResource:
        if path == b"":
            return self
        found = self._pbxs.get(path.decode("utf-8", "replace"))
        return found if found is not None else _NotFound()

    def render_GET(self, request: HTTPRequest) -> bytes:
        grant = grant_of(request)
        names = [name for name in self._pbxs if grant is not None and grant.may_use(name)]
        return _write_json(request, 200, {"pbxs": names})


class _ActionsOfWhichPBX(_JSONResource):
    """``/actions`` on a daemon with several PBXs: says where actions go instead."""

    isLeaf = True

    def render(self, request: HTTPRequest) -> bytes:
        return _error(
            request,
            404,
            "not_found",
            "this daemon bridges several PBXs: POST /pbx/NAME/actions/{Action}",
        )


def make_daemon_resource(
    sessions: Mapping[str, PBXSession],
    *,
    health: Callable[[], Mapping[str, Any]],
    hub: EventHub,
    metrics: MetricsRegistry,
    clock: IReactorTime,
    token: str | None = None,
    access: AccessList | None = None,
    children: Sequence[tuple[str, PBXChild]] = PBX_CHILDREN,
    **stream_options: Any,
) -> tuple[Resource, RouteContext]:
    """
    The daemon's resource tree (see the module doc) and its `RouteContext`
    (whose streams the daemon finishes, and whose state feeds it starts and
    stops).  ``access`` says what each token may do; ``token`` is its
    one-token form; with neither, every request may do everything.
    """
    if access is None and token is not None:
        access = AccessList.single_token(token)
    context = RouteContext(clock, **stream_options)
    names = list(sessions)
    endpoints = ["/health", "/events", "/state", "/state/stream", "/metrics", "/whoami", "/pbx"]
    if len(sessions) == 1:
        endpoints.insert(2, "/actions/{Action}")
    endpoints += [f"/pbx/{name}" for name in sessions]
    board = BoardFiles()
    root = _Root(access, endpoints, board=board.page, public=frozenset({b"board"}))
    pbxs: dict[str, PBXResource] = {}
    for name, session in sessions.items():
        resource = PBXResource(name, [child for child, _ in children])
        for child, build in children:
            resource.putChild(child.encode("utf-8"), build(session, context))
        pbxs[name] = resource
    root.putChild(b"health", HealthResource(health, names))
    root.putChild(b"events", context.event_stream(hub, names))
    if len(sessions) == 1:
        (only,) = pbxs.values()
        root.putChild(b"actions", only.children[b"actions"])
    else:
        root.putChild(b"actions", _ActionsOfWhichPBX())
    root.putChild(
        b"state", context.state([context.state_feed(session) for session in sessions.values()])
    )
    root.putChild(b"metrics", MetricsResource(metrics, names))
    root.putChild(b"pbx", PBXListResource(pbxs))
    root.putChild(b"whoami", WhoAmIResource(names))
    root.putChild(b"board", board)
    return root, context
