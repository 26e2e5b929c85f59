"""
The HTTP bridge: `twisted.web` resources that expose one AMI session as JSON.

``GET /health``
    The session's state; ``200`` while logged in, ``503`` otherwise.
``GET /events[?name=Hangup,Newchannel]``
    A Server-Sent Events stream, one ``data:`` line of event JSON per event
    (names matched without regard to case).  A client that reads too slowly is
    dropped once ``max_queued_bytes`` wait for it, instead of buffering forever.
``POST /actions/{Action}``
    Runs the action with the JSON object in the body as its headers (a list
    repeats a header): ``200`` with the response and its list items, ``502``
    with the AMI error, ``504`` on timeout, ``503`` when not connected, ``400``
    for a malformed body, ``403`` for the actions that manage the daemon's own
    session (Login, Logoff, Challenge, Events, Filter).
``GET /metrics``
    Prometheus text (`txami.daemon.metrics`).

With a token configured, every request needs ``Authorization: Bearer
<token>`` (compared in constant time) or gets ``401``.  The token is never logged.
"""

from __future__ import annotations

import hmac
import json
from collections import deque
from collections.abc import Callable, Mapping
from typing import IO, Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Site
from zope.interface import implementer

from txami.daemon.hub import EventHub, ReceivedEvent
from txami.daemon.metrics import CONTENT_TYPE, Metrics
from txami.errors import ActionTimeout, AMIError, ConnectionLost, NotConnected
from txami.jsonform import dumps, message_dict
from txami.message import Headers, Message
from txami.protocol import abort_connection

__all__ = [
    "MAX_BODY_SIZE",
    "RESERVED_ACTIONS",
    "ActionSender",
    "EventStreamResource",
    "make_resource",
    "make_site",
    "parse_headers",
]

_log = Logger(namespace="txami.daemon.web")

#: Actions that would disturb the daemon's own session; refused with 403.
RESERVED_ACTIONS = frozenset({"login", "logoff", "challenge", "events", "filter"})
#: List actions whose items Asterisk sends without an ActionID: action -> item event.
UNTAGGED_ITEMS = {"iaxpeers": "PeerEntry"}
#: The largest action body accepted, in bytes.
MAX_BODY_SIZE = 65536
#: The longest per-request ``?timeout=`` accepted, in seconds.
MAX_ACTION_TIMEOUT = 3600.0


class ActionSender(Protocol):
    """What the bridge needs to run actions: `AMIFactory.send_action`'s signature."""

    def send_action(
        self,
        name: str,
        headers: Headers | None = None,
        *,
        action_timeout: float | None = None,
        untagged_items: str | None = None,
        **more: Any,
    ) -> Deferred[Message]: ...


class HTTPRequest(Protocol):
    """The part of `twisted.web.server.Request` the bridge uses (typed, unlike Twisted's)."""

    method: bytes
    args: dict[bytes, list[bytes]]
    content: IO[bytes] | None
    postpath: list[bytes]
    prepath: list[bytes]
    channel: Any
    transport: Any
    producer: Any

    def setResponseCode(self, code: int, message: bytes | None = None) -> None: ...
    def setHeader(self, name: bytes, value: bytes) -> None: ...
    def getHeader(self, key: bytes) -> bytes | None: ...
    def getClientAddress(self) -> Any: ...
    def write(self, data: bytes) -> None: ...
    def finish(self) -> None: ...
    def notifyFinish(self) -> Deferred[None]: ...
    def registerProducer(self, producer: Any, streaming: bool) -> None: ...
    def unregisterProducer(self) -> None: ...
    def loseConnection(self) -> None: ...


def _write_json(request: HTTPRequest, code: int, body: Mapping[str, Any]) -> bytes:
    """Set ``code`` and the JSON headers; the body to return from ``render``."""
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return (dumps(body) + "\n").encode("ascii")


def _error(request: HTTPRequest, code: int, error: str, message: str) -> bytes:
    return _write_json(request, code, {"error": error, "message": message})


class _JSONResource(Resource):
    """A resource whose unsupported methods get a JSON ``405``."""

    def __init__(self) -> None:
        Resource.__init__(self)  # type: ignore[no-untyped-call]

    def render(self, request: HTTPRequest) -> bytes | int:
        allowed = sorted(
            n[7:] for n in dir(self) if n.startswith("render_") and n != "render_HEAD"
        )
        if "GET" in allowed:
            allowed.append("HEAD")
        method = request.method.decode("ascii", "replace")
        if method not in allowed:
            request.setHeader(b"allow", ", ".join(allowed).encode("ascii"))
            return _error(request, 405, "method_not_allowed", f"use {' or '.join(allowed)}")
        result: bytes | int = getattr(self, "render_" + method)(request)
        return result


class _NotFound(_JSONResource):
    isLeaf = True

    def render(self, request: HTTPRequest) -> bytes:
        return _error(request, 404, "not_found", "no such resource")


class _Unauthorized(_JSONResource):
    isLeaf = True

    def render(self, request: HTTPRequest) -> bytes:
        request.setHeader(b"www-authenticate", b'Bearer realm="txami"')
        return _error(request, 401, "unauthorized", "send Authorization: Bearer <token>")


class _Root(_JSONResource):
    """The tree's root: checks the bearer token before any child is reached."""

    def __init__(self, token: str | None, endpoints: list[str] | None = None) -> None:
        super().__init__()
        self._token = token.encode("utf-8") if token is not None else None
        self._endpoints = endpoints or ["/health", "/events", "/actions/{Action}", "/metrics"]

    def authorized(self, request: HTTPRequest) -> bool:
        """Whether ``request`` carries the token (always, if none is configured)."""
        if self._token is None:
            return True
        header = request.getHeader(b"authorization") or b""
        scheme, _, given = header.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            given = b""
        return hmac.compare_digest(given.strip(), self._token)

    def getChildWithDefault(self, path: bytes, request: HTTPRequest) -> IResource:
        if not self.authorized(request):
            return _Unauthorized()
        child: IResource = Resource.getChildWithDefault(self, path, request)  # type: ignore[no-untyped-call]
        return child

    def getChild(self, path: bytes, request: HTTPRequest) -> IResource:
        return self if path == b"" else _NotFound()

    def render_GET(self, request: HTTPRequest) -> bytes:
        if not self.authorized(request):
            return _Unauthorized().render(request)
        return _write_json(request, 200, {"endpoints": self._endpoints})


class HealthResource(_JSONResource):
    """``GET /health``: ``health()``'s dict; ``200`` if its ``logged_in`` is true, else ``503``."""

    isLeaf = True

    def __init__(self, health: Callable[[], Mapping[str, Any]]) -> None:
        super().__init__()
        self._health = health

    def render_GET(self, request: HTTPRequest) -> bytes:
        state = self._health()
        return _write_json(request, 200 if state.get("logged_in") else 503, state)


class _Renders(Protocol):
    def render(self) -> str: ...


class MetricsResource(_JSONResource):
    """``GET /metrics``: the Prometheus text of a `Metrics` or `MetricsRegistry`."""

    isLeaf = True

    def __init__(self, metrics: _Renders) -> None:
        super().__init__()
        self._metrics = metrics

    def render_GET(self, request: HTTPRequest) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE.encode("ascii"))
        request.setHeader(b"cache-control", b"no-store")
        return self._metrics.render().encode("utf-8")


# --- actions -----------------------------------------------------------------------------------


def parse_headers(body: bytes) -> dict[str, Any]:
    """The action headers in a request body; `ValueError` with a reason if malformed."""
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"the body is not JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise ValueError("the body must be a JSON object of headers")
    for name, value in parsed.items():
        if name.lower() == "action":
            raise ValueError("the action's name comes from the URL, not an Action header")
        values = value if isinstance(value, list) else [value]
        for item in values:
            if item is not None and not isinstance(item, (str, int, float)):
                raise ValueError(
                    f"header {name!r}: values must be strings, numbers, booleans, "
                    "null or a list of those"
                )
    return parsed


def _timeout_of(request: HTTPRequest) -> float | None:
    raw = (request.args or {}).get(b"timeout")
    if not raw:
        return None
    try:
        timeout = float(raw[-1])
    except ValueError:
        raise ValueError("timeout must be a number of seconds") from None
    if not 0 < timeout <= MAX_ACTION_TIMEOUT:
        raise ValueError(f"timeout must be above 0 and at most {MAX_ACTION_TIMEOUT:g} seconds")
    return timeout


class ActionResource(_JSONResource):
    """``POST /actions/{Action}``: one AMI action per request; see the module doc."""

    isLeaf = True

    def __init__(self, sender: ActionSender, metrics: Metrics, clock: IReactorTime) -> None:
        super().__init__()
        self._sender = sender
        self._metrics = metrics
        self._clock = clock

    def render_POST(self, request: HTTPRequest) -> bytes | int:
        path = request.postpath
        if len(path) != 1 or not path[0]:
            return _error(request, 404, "not_found", "POST /actions/{Action}")
        name = path[0].decode("utf-8", "surrogateescape")
        if name.lower() in RESERVED_ACTIONS:
            return _error(
                request, 403, "reserved_action", f"{name} is reserved for the daemon's own session"
            )
        assert request.content is not None
        body = request.content.read(MAX_BODY_SIZE + 1)
        if len(body) > MAX_BODY_SIZE:
            return _error(request, 413, "too_large", f"the body exceeds {MAX_BODY_SIZE} bytes")
        try:
            headers = parse_headers(body)
            timeout = _timeout_of(request)
            started = self._clock.seconds()
            d = self._sender.send_action(
                name,
                headers,
                action_timeout=timeout,
                untagged_items=UNTAGGED_ITEMS.get(name.lower()),
            )
        except ValueError as error:
            return _error(request, 400, "bad_request", str(error))
        finished = [False]

        def gone(_: object) -> None:
            finished[0] = True

        request.notifyFinish().addBoth(gone)

        def answer(outcome: str, code: int, body: Mapping[str, Any]) -> None:
            self._metrics.action_finished(name, outcome, self._clock.seconds() - started)
            if finished[0]:
                return
            request.write(_write_json(request, code, body))
            request.finish()

        def succeeded(response: Message) -> None:
            complete = response.list_complete
            answer(
                "success",
                200,
                {
                    "response": message_dict(response),
                    "events": [message_dict(event) for event in response.events],
                    "list_complete": message_dict(complete) if complete is not None else None,
                },
            )

        def failed(failure: Failure) -> None:
            error = failure.value
            if isinstance(error, AMIError):
                answer(
                    "error",
                    502,
                    {
                        "error": "AMIError",
                        "message": error.message,
                        "response": message_dict(error.response),
                    },
                )
            elif isinstance(error, ActionTimeout):
                answer("timeout", 504, {"error": "ActionTimeout", "message": str(error)})
            elif isinstance(error, NotConnected):
                answer("not_connected", 503, {"error": "NotConnected", "message": str(error)})
            elif isinstance(error, ConnectionLost):
                answer("connection_lost", 502, {"error": "ConnectionLost", "message": str(error)})
            else:
                _log.failure("action {name} failed unexpectedly", failure, name=name)
                answer("error", 500, {"error": "internal", "message": "see the daemon's log"})

        d.addCallbacks(succeeded, failed).addErrback(
            lambda f: _log.failure("answering an HTTP action", f)
        )
        return NOT_DONE_YET


class _Actions(_JSONResource):
    """``/actions``: hands ``/actions/{Action}`` to the `ActionResource`."""

    def __init__(self, action: ActionResource) -> None:
        super().__init__()
        self._action = action

    def getChild(self, path: bytes, request: HTTPRequest) -> IResource:
        # Give the name back to the leaf, which reads it from postpath.
        request.postpath.insert(0, path)
        request.prepath.pop()
        return self._action

    def render_GET(self, request: HTTPRequest) -> bytes:
        return _error(request, 404, "not_found", "POST /actions/{Action}")


# --- the event stream --------------------------------------------------------------------------


@implementer(IPushProducer)
class _EventStream:
    """
    One ``/events`` client: a push producer registered on its request, so the
    HTTP channel pauses it while the socket's send buffer is full.  Events that
    arrive while paused wait in a queue; past ``max_queued_bytes`` the client
    is dropped.
    """

    def __init__(
        self,
        owner: EventStreamResource,
        request: HTTPRequest,
        names: frozenset[str] | None,
    ) -> None:
        self.owner = owner
        self.request = request
        self.names = names
        self.paused = False
        self.closed = False
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        self.keepalive: IDelayedCall | None = None

    def start(self) -> None:
        self.request.registerProducer(self, True)
        self.request.notifyFinish().addBoth(lambda _: self._end())
        self.owner.hub.subscribe(self)
        self.request.write(b": txami event stream\n\n")
        self._schedule()

    def _schedule(self) -> None:
        self.keepalive = self.owner.clock.callLater(self.owner.keepalive_interval, self._ping)

    def _ping(self) -> None:
        self.keepalive = None
        if not self.paused:
            self.request.write(b":\n\n")
        self._schedule()

    def __call__(self, received: ReceivedEvent) -> None:
        if self.names is not None and received.name.lower() not in self.names:
            return
        data = f"data: {received.json}\n\n".encode("ascii")
        if not self.paused:
            self.request.write(data)
            return
        self.queue.append(data)
        self.queued_bytes += len(data)
        if self.queued_bytes > self.owner.max_queued_bytes:
            self.drop()

    def drop(self) -> None:
        """Abort a client that has fallen too far behind."""
        self.owner.dropped += 1
        _log.warn(
            "dropping a slow /events client {peer}: {size} bytes waiting for it",
            peer=str(self.request.getClientAddress()),
            size=self.queued_bytes,
        )
        self._end()
        if self.request.transport is not None:
            abort_connection(self.request.transport)
        else:
            self.request.loseConnection()

    def finish(self) -> None:
        """End the stream normally (the daemon is stopping)."""
        if self.closed:
            return
        self._end()
        self.request.finish()

    def _end(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.queue.clear()
        self.queued_bytes = 0
        self.owner.hub.unsubscribe(self)
        self.owner.streams.discard(self)
        if self.keepalive is not None and self.keepalive.active():
            self.keepalive.cancel()
        self.keepalive = None
        if self.request.producer is not None and self.request.channel is not None:
            self.request.unregisterProducer()

    # IPushProducer

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        queue = self.queue
        while queue and not self.paused and not self.closed:
            data = queue.popleft()
            self.queued_bytes -= len(data)
            self.request.write(data)

    def stopProducing(self) -> None:
        self._end()


class EventStreamResource(_JSONResource):
    """``GET /events``: a Server-Sent Events stream of the hub's events."""

    isLeaf = True

    def __init__(
        self,
        hub: EventHub,
        clock: IReactorTime,
        *,
        max_queued_bytes: int = 1_000_000,
        max_clients: int = 100,
        keepalive_interval: float = 15.0,
    ) -> None:
        super().__init__()
        self.hub = hub
        self.clock = clock
        self.max_queued_bytes = max_queued_bytes
        self.max_clients = max_clients
        self.keepalive_interval = keepalive_interval
        self.streams: set[_EventStream] = set()
        #: Clients dropped for reading too slowly.
        self.dropped = 0

    def render_GET(self, request: HTTPRequest) -> bytes | int:
        if request.method == b"HEAD":
            request.setHeader(b"content-type", b"text/event-stream")
            return b""
        if len(self.streams) >= self.max_clients:
            return _error(request, 503, "too_many_streams", f"at most {self.max_clients} streams")
        names: frozenset[str] | None = None
        raw = (request.args or {}).get(b"name")
        if raw:
            text = ",".join(value.decode("utf-8", "surrogateescape") for value in raw)
            names = frozenset(n.strip().lower() for n in text.split(",") if n.strip()) or None
        request.setHeader(b"content-type", b"text/event-stream")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-accel-buffering", b"no")
        channel: Any = request.channel
        set_timeout = getattr(channel, "setTimeout", None)
        if set_timeout is not None:
            set_timeout(None)  # a stream is idle on the read side by design
        stream = _EventStream(self, request, names)
        self.streams.add(stream)
        stream.start()
        return NOT_DONE_YET

    def close_all(self) -> None:
        """Finish every open stream (called when the daemon stops)."""
        for stream in list(self.streams):
            stream.finish()


def make_resource(
    *,
    sender: ActionSender,
    health: Callable[[], Mapping[str, Any]],
    hub: EventHub,
    metrics: Metrics,
    clock: IReactorTime,
    token: str | None = None,
    events: EventStreamResource | None = None,
) -> Resource:
    """The bridge's resource tree (``events`` lets the caller keep the stream resource)."""
    root = _Root(token)
    root.putChild(b"health", HealthResource(health))
    root.putChild(b"events", events if events is not None else EventStreamResource(hub, clock))
    root.putChild(b"actions", _Actions(ActionResource(sender, metrics, clock)))
    root.putChild(b"metrics", MetricsResource(metrics))
    return root


def make_site(resource: Resource, clock: IReactorTime) -> Site:
    """A `Site` serving ``resource`` (its access log shows no header values, so no token)."""
    site: Site = Site(resource, reactor=clock)  # type: ignore[no-untyped-call]
    return site
