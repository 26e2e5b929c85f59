"""
The HTTP tree of the daemon: every PBX under ``/pbx/NAME/``, and the daemon-wide paths.

``GET /pbx``
    The PBXs' names.
``/pbx/NAME/health``, ``/pbx/NAME/events``, ``/pbx/NAME/actions/{Action}``
    One PBX's health, event stream and actions (see `txami.daemon.web`).
``/health``, ``/events``, ``/actions/{Action}``, ``/metrics``
    With one PBX, its health, events and actions, as before there were
    several; with several, ``/health`` sums them up (``200`` only while
    every PBX is logged in), ``/events`` streams every PBX's events (each
    line names its PBX) and ``/actions`` answers ``404`` naming the per-PBX
    path.  ``/metrics`` always covers every PBX (labelled ``pbx``).

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

from txami.daemon.hub import EventHub
from txami.daemon.metrics import MetricsRegistry
from txami.daemon.session import PBXSession
from txami.daemon.web import (
    ActionResource,
    EventStreamResource,
    HealthResource,
    HTTPRequest,
    MetricsResource,
    _Actions,
    _error,
    _JSONResource,
    _NotFound,
    _Root,
    _write_json,
)

__all__ = ["PBX_CHILDREN", "PBXChild", "RouteContext", "make_daemon_resource"]


class RouteContext:
    """What building a per-PBX resource may need besides the session."""

    def __init__(self, clock: IReactorTime, **stream_options: Any) -> None:
        self.clock = clock
        self.stream_options = stream_options
        #: Every event stream resource made, so the daemon can finish them on stop.
        self.streams: list[EventStreamResource] = []

    def event_stream(self, hub: EventHub) -> EventStreamResource:
        """A Server-Sent Events resource for ``hub``'s events."""
        resource = EventStreamResource(hub, self.clock, **self.stream_options)
        self.streams.append(resource)
        return resource


#: Builds one per-PBX resource.
PBXChild = Callable[[PBXSession, RouteContext], IResource]

#: The resources under ``/pbx/NAME/``, in the order ``GET /pbx/NAME`` lists them.
PBX_CHILDREN: Sequence[tuple[str, PBXChild]] = (
    ("health", lambda session, context: HealthResource(session.health)),
    ("events", lambda session, context: context.event_stream(session.hub)),
    (
        "actions",
        lambda session, context: _Actions(
            ActionResource(session.factory, session.metrics, context.clock)
        ),
    ),
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
        return _write_json(request, 200, {"pbxs": list(self._pbxs)})


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
    children: Sequence[tuple[str, PBXChild]] = PBX_CHILDREN,
    **stream_options: Any,
) -> tuple[Resource, RouteContext]:
    """
    The daemon's resource tree (see the module doc) and its `RouteContext`
    (whose ``streams`` the daemon finishes when it stops).
    """
    context = RouteContext(clock, **stream_options)
    endpoints = ["/health", "/events", "/metrics", "/pbx"]
    if len(sessions) == 1:
        endpoints.insert(2, "/actions/{Action}")
    endpoints += [f"/pbx/{name}" for name in sessions]
    root = _Root(token, endpoints)
    pbxs: dict[str, PBXResource] = {}
    for name, session in sessions.items():
        resource = PBXResource(name, [child for child, _ in children])
        for child, build in children:
            resource.putChild(child.encode("utf-8"), build(session, context))
        pbxs[name] = resource
    root.putChild(b"health", HealthResource(health))
    root.putChild(b"events", context.event_stream(hub))
    if len(sessions) == 1:
        (only,) = pbxs.values()
        root.putChild(b"actions", only.children[b"actions"])
    else:
        root.putChild(b"actions", _ActionsOfWhichPBX())
    root.putChild(b"metrics", MetricsResource(metrics))
    root.putChild(b"pbx", PBXListResource(pbxs))
    return root, context
