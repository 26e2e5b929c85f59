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
    session (Login, Logoff, Challenge, Events, Filter) or hold it (WaitEvent).
``GET /metrics``
    Prometheus text (`txami.daemon.metrics`).

With a token (``--http-token-file``) or an access list (``--http-acl``,
`txami.daemon.acl`) configured, every request needs ``Authorization: Bearer
<token>`` (hashed and compared in constant time) or gets ``401``; a request
its token's grant does not cover gets ``403`` with a JSON reason naming what
was refused (``"refused": {"read": PBX}`` or ``{"action": NAME, "pbx":
PBX}``), and nothing is sent to Asterisk.  Tokens are never logged.  Only
the board's static files (`txami.daemon.board`) are served without a token:
they hold no data, and the page asks for the token itself.  With no token
configured, a request that another web page would make through a browser
(another ``Origin``, or a ``Host`` that is not loopback) gets ``403``
(`refuse_foreign`).
"""

from __future__ import annotations

import ipaddress
import json
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, Protocol

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Site
from zope.interface import implementer

from txami.actions import UNTAGGED_ITEMS
from txami.daemon.acl import ANONYMOUS, AccessList, Grant
from txami.daemon.hub import EventHub, ReceivedEvent
from txami.daemon.metrics import CONTENT_TYPE, Metrics
from txami.errors import ActionTimeout, AMIError, ConnectionLost, NotConnected
from txami.jsonform import dumps, message_dict
from txami.message import Headers, Message
from txami.protocol import abort_connection

__all__ = [
    "DEFAULT_PBX",
    "MAX_BODY_SIZE",
    "RESERVED_ACTIONS",
    "ActionSender",
    "EventStreamResource",
    "HTTPRequest",
    "SSEResource",
    "SSEStream",
    "check_action_headers",
    "check_action_name",
    "grant_of",
    "make_resource",
    "make_site",
    "parse_headers",
    "refuse_action",
    "refuse_foreign",
    "refuse_read",
]

_log = Logger(namespace="txami.daemon.web")

#: Actions that would disturb the daemon's own session; refused with 403.
#: WaitEvent holds the session (no other action answered) for its Timeout.
RESERVED_ACTIONS = frozenset({"login", "logoff", "challenge", "events", "filter", "waitevent"})
#: The largest action body accepted, in bytes.
MAX_BODY_SIZE = 65536
#: The longest per-request ``?timeout=`` accepted, in seconds.
MAX_ACTION_TIMEOUT = 3600.0
#: The name of the PBX of a daemon configured by flags (one PBX).
DEFAULT_PBX = "default"
# Where the root keeps a request's grant (an attribute of the request).
_GRANT = "_txami_grant"


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
    def getHost(self) -> Any: ...
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


def grant_of(request: HTTPRequest) -> Grant | None:
    """The grant the root found for ``request``'s token (None: not through the root)."""
    grant = getattr(request, _GRANT, None)
    return grant if isinstance(grant, Grant) else None


def _forbidden(
    request: HTTPRequest, grant: Grant | None, what: str, refused: dict[str, str]
) -> bytes:
    """A ``403`` naming what ``grant`` may not do (the grant by its name, never its token)."""
    name = grant.name if grant is not None else None
    _log.info("refused {what} to the token {name!r}", what=what, name=name)
    request.setHeader(b"www-authenticate", b'Bearer realm="txami", error="insufficient_scope"')
    return _write_json(
        request,
        403,
        {
            "error": "forbidden",
            "message": f"the token {name!r} may not {what}",
            "token": name,
            "refused": refused,
        },
    )


def refuse_read(request: HTTPRequest, pbxs: Sequence[str]) -> bytes | None:
    """The ``403`` answer if ``request``'s grant may not read each of ``pbxs``, else None."""
    grant = grant_of(request)
    for pbx in pbxs:
        if grant is None or not grant.may_read(pbx):
            return _forbidden(request, grant, f"read PBX {pbx!r}", {"read": pbx})
    return None


def refuse_action(request: HTTPRequest, action: str, pbx: str) -> bytes | None:
    """The ``403`` answer if ``request``'s grant may not run ``action`` on ``pbx``, else None."""
    grant = grant_of(request)
    if grant is None or not grant.may_run(action, pbx):
        return _forbidden(
            request, grant, f"run {action} on PBX {pbx!r}", {"action": action, "pbx": pbx}
        )
    return None


class _JSONResource(Resource):
    """
    A resource whose unsupported methods get a JSON ``405``, and that
    answers only requests whose grant may read each PBX of `reads`.
    """

    #: The PBXs a request must be allowed to read (empty: no read needed).
    reads: tuple[str, ...] = ()

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
        if self.reads:
            refused = refuse_read(request, self.reads)
            if refused is not None:
                return refused
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


class _Refused(_JSONResource):
    """A ``403`` with ``error`` and ``message``, whatever the path and method."""

    isLeaf = True

    def __init__(self, error: str, message: str) -> None:
        super().__init__()
        self.error = error
        self.message = message

    def render(self, request: HTTPRequest) -> bytes:
        return _error(request, 403, self.error, self.message)


def _is_loopback_host(host: bytes) -> bool:
    """Whether a ``Host`` header value names this machine's loopback (any port)."""
    text = host.decode("ascii", "replace").strip().lower()
    if text.startswith("["):
        name = text[1:].partition("]")[0]
    else:
        name, colon, port = text.rpartition(":")
        if not colon or not port.isdecimal():
            name = text
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def refuse_foreign(request: HTTPRequest) -> _Refused | None:
    """
    Why a request made without a token is refused as a web page's, or None.

    Without a token the daemon trusts whoever reaches it on loopback; a
    browser is such a client for every page it shows.  So a request that
    carries another page's ``Origin`` (a cross-site ``fetch`` or form: no
    preflight is needed for a text/plain POST) is refused, and so is one for
    a ``Host`` that is not loopback (a DNS rebinding page's, which is its
    own origin) on a TCP connection.  Programs send no ``Origin``; the
    board's own requests carry the ``Host`` they were sent to.
    """
    host = request.getHeader(b"host")
    origin = request.getHeader(b"origin")
    if origin is not None:
        own = [] if host is None else [b"http://" + host.lower(), b"https://" + host.lower()]
        if origin.lower() not in own:
            shown = origin.decode("ascii", "replace")
            return _Refused(
                "cross_origin",
                f"a request from the web page {shown!r} is refused: without a token, "
                "only programs and the daemon's own pages may use it",
            )
    tcp = isinstance(request.getHost(), (IPv4Address, IPv6Address))
    if host is not None and tcp and not _is_loopback_host(host):
        shown = host.decode("ascii", "replace")
        return _Refused(
            "foreign_host",
            f"a request for host {shown!r} is refused: without a token, the daemon "
            "answers requests for 127.0.0.1, [::1] or localhost only",
        )
    return None


class _Root(_JSONResource):
    """
    The tree's root: finds the grant of the request's bearer token before any
    child is reached (``401`` without one, when tokens are configured).  The
    children named in ``public`` (the board's files) need no token, and
    neither does ``GET /`` from a browser (``Accept: text/html``) when a
    ``board`` page is given: the page asks for the token itself.  Without
    tokens, a request from another web page is refused (`refuse_foreign`).
    """

    def __init__(
        self,
        access: AccessList | None,
        endpoints: list[str] | None = None,
        *,
        board: IResource | None = None,
        public: frozenset[bytes] = frozenset(),
    ) -> None:
        super().__init__()
        self._access = access
        self._endpoints = endpoints or ["/health", "/events", "/actions/{Action}", "/metrics"]
        self._board = board
        self._public = public

    def grant(self, request: HTTPRequest) -> Grant | None:
        """The grant of ``request``'s token (`ANONYMOUS` when no token is configured)."""
        if self._access is None:
            return ANONYMOUS
        return self._access.grant_for(request.getHeader(b"authorization"))

    def _authorize(self, request: HTTPRequest) -> bool:
        grant = self.grant(request)
        setattr(request, _GRANT, grant)
        return grant is not None

    def _refused(self, request: HTTPRequest) -> IResource | None:
        """What answers ``request`` instead of the tree (``401`` or ``403``), or None."""
        if self._access is None:
            refused = refuse_foreign(request)
            if refused is not None:
                return refused
        if not self._authorize(request):
            return _Unauthorized()
        return None

    def _wants_board(self, request: HTTPRequest) -> bool:
        """Whether ``request`` is a browser's for the page (``GET /``, ``Accept: text/html``)."""
        accept = request.getHeader(b"accept") or b""
        return self._board is not None and b"text/html" in accept

    def getChildWithDefault(self, path: bytes, request: HTTPRequest) -> IResource:
        if path in self._public and path in self.children:
            child: IResource = self.children[path]
            return child
        if path == b"" and self._wants_board(request):
            return self
        refused = self._refused(request)
        if refused is not None:
            return refused
        found: IResource = Resource.getChildWithDefault(self, path, request)  # type: ignore[no-untyped-call]
        return found

    def getChild(self, path: bytes, request: HTTPRequest) -> IResource:
        return self if path == b"" else _NotFound()

    def render_GET(self, request: HTTPRequest) -> bytes | int:
        if self._wants_board(request):
            assert self._board is not None
            page: bytes | int = self._board.render(request)  # type: ignore[no-untyped-call]
            return page
        refused = self._refused(request)
        if refused is not None:
            answer: bytes = refused.render(request)  # type: ignore[no-untyped-call]
            return answer
        return _write_json(request, 200, {"endpoints": self._endpoints})


class HealthResource(_JSONResource):
    """
    ``GET /health``: ``health()``'s dict; ``200`` if its ``logged_in`` is
    true, else ``503``.  ``pbxs``: the PBXs it reports on (a token needs
    read on each).
    """

    isLeaf = True

    def __init__(
        self, health: Callable[[], Mapping[str, Any]], pbxs: Sequence[str] = (DEFAULT_PBX,)
    ) -> None:
        super().__init__()
        self._health = health
        self.reads = tuple(pbxs)

    def render_GET(self, request: HTTPRequest) -> bytes:
        state = self._health()
        return _write_json(request, 200 if state.get("logged_in") else 503, state)


class _Renders(Protocol):
    def render(self) -> str: ...


class MetricsResource(_JSONResource):
    """
    ``GET /metrics``: the Prometheus text of a `Metrics` or `MetricsRegistry`
    (of ``pbxs``: a token needs read on each).
    """

    isLeaf = True

    def __init__(self, metrics: _Renders, pbxs: Sequence[str] = (DEFAULT_PBX,)) -> None:
        super().__init__()
        self._metrics = metrics
        self.reads = tuple(pbxs)

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
        if name.lower() == "actionid":
            # The session is shared: a chosen ActionID could be the one the daemon
            # gives another client's action next, which would then get this one's answer.
            raise ValueError("the daemon sets the ActionID (the response carries it)")
        values = value if isinstance(value, list) else [value]
        for item in values:
            if item is not None and not isinstance(item, (str, int, float)):
                raise ValueError(
                    f"header {name!r}: values must be strings, numbers, booleans, "
                    "null or a list of those"
                )
    return parsed


def check_action_name(name: str) -> tuple[str, str] | None:
    """
    Why action ``name`` may not be sent, as ``(error, message)``, or None if
    it may: ``bad_request`` for a name that is empty or holds a space or a
    control character (Asterisk skips those at the start of a value, so
    ``" Logoff"`` would log the daemon's own session off), ``reserved_action``
    for the actions that manage that session (`RESERVED_ACTIONS`).
    """
    if not name or any(c <= " " or c == "\x7f" for c in name):
        return (
            "bad_request",
            f"{name!r} is not an AMI action name (it is empty or holds a space or "
            "control character)",
        )
    if name.lower() in RESERVED_ACTIONS:
        return ("reserved_action", f"{name} is reserved for the daemon's own session")
    return None


#: The values Asterisk reads as true (``ast_true``), for ``Async``.
_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})


def check_action_headers(name: str, headers: Mapping[str, Any]) -> tuple[str, str] | None:
    """
    Why action ``name`` may not be sent with ``headers`` (from `parse_headers`),
    as ``(error, message)``, or None if it may.  A synchronous ``Originate``
    (no ``Async: true``) is refused: Asterisk answers nothing else on the
    session until the call is answered or its ``Timeout`` ends, and the
    daemon's session is shared by every client (and its keepalive).
    """
    if name.lower() != "originate":
        return None
    value: Any = None
    for key, found in headers.items():
        if key.lower() == "async" and value is None:
            value = found[0] if isinstance(found, list) and found else found
    if isinstance(value, bool):
        value = "true" if value else "false"
    if value is not None and str(value).strip().lower() in _TRUE:
        return None
    return (
        "bad_request",
        'Originate needs "Async": true here: a synchronous Originate holds the '
        "daemon's shared AMI session (every other action waits) until the call is "
        "answered; the outcome comes as an OriginateResponse event with the same ActionID",
    )


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
    """
    ``POST /actions/{Action}``: one AMI action per request, to PBX ``pbx``
    (a token needs that action on that PBX); see the module doc.
    """

    isLeaf = True

    def __init__(
        self,
        sender: ActionSender,
        metrics: Metrics,
        clock: IReactorTime,
        pbx: str = DEFAULT_PBX,
    ) -> None:
        super().__init__()
        self._sender = sender
        self._metrics = metrics
        self._clock = clock
        self.pbx = pbx

    def render_POST(self, request: HTTPRequest) -> bytes | int:
        path = request.postpath
        if len(path) != 1 or not path[0]:
            return _error(request, 404, "not_found", "POST /actions/{Action}")
        name = path[0].decode("utf-8", "surrogateescape")
        problem = check_action_name(name)
        if problem is not None:
            error, message = problem
            return _error(request, 400 if error == "bad_request" else 403, error, message)
        refused = refuse_action(request, name, self.pbx)
        if refused is not None:
            return refused
        assert request.content is not None
        body = request.content.read(MAX_BODY_SIZE + 1)
        if len(body) > MAX_BODY_SIZE:
            return _error(request, 413, "too_large", f"the body exceeds {MAX_BODY_SIZE} bytes")
        try:
            headers = parse_headers(body)
            problem = check_action_headers(name, headers)
            if problem is not None:
                return _error(request, 400, *problem)
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


# --- Server-Sent Events streams ---------------------------------------------------------------


@implementer(IPushProducer)
class SSEStream:
    """
    One Server-Sent Events client: a push producer registered on its
    request, so the HTTP channel pauses it while the socket's send buffer is
    full.  What is sent while paused waits in a queue; past its resource's
    ``max_queued_bytes`` the client is dropped (the slow-consumer rule).  A
    comment line every ``keepalive_interval`` keeps proxies from timing out.
    Subclasses say what to subscribe to (`subscribe`, `unsubscribe`).
    """

    def __init__(self, owner: SSEResource, request: HTTPRequest) -> None:
        self.owner = owner
        self.request = request
        self.paused = False
        self.closed = False
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        self.keepalive: IDelayedCall | None = None

    def subscribe(self) -> None:
        """Start receiving what this stream sends (called once, by `start`)."""

    def unsubscribe(self) -> None:
        """Stop receiving (called once, when the stream ends)."""

    def greeting(self) -> bytes:
        """What the stream begins with (a comment line by default)."""
        return b": txami stream\n\n"

    def start(self) -> None:
        self.request.registerProducer(self, True)
        self.request.notifyFinish().addBoth(lambda _: self._end())
        self.subscribe()
        if not self.closed:
            self.send(self.greeting())
        self._schedule()

    def _schedule(self) -> None:
        if not self.closed:
            self.keepalive = self.owner.clock.callLater(self.owner.keepalive_interval, self._ping)

    def _ping(self) -> None:
        self.keepalive = None
        if not self.paused:
            self.request.write(b":\n\n")
        self._schedule()

    def send(self, data: bytes) -> None:
        """Write ``data`` now, or queue it while paused (dropping the client past the bound)."""
        if self.closed:
            return
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
            "dropping a slow {path} client {peer}: {size} bytes waiting for it",
            path=self.owner.path,
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
        self.unsubscribe()
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


class SSEResource(_JSONResource):
    """
    A ``GET`` resource that answers with a Server-Sent Events stream
    (`open_stream` makes it), at most ``max_clients`` at once, each bound by
    the slow-consumer rule of `SSEStream`.
    """

    isLeaf = True
    #: How the resource names itself in log lines.
    path = "stream"

    def __init__(
        self,
        clock: IReactorTime,
        *,
        max_queued_bytes: int = 1_000_000,
        max_clients: int = 100,
        keepalive_interval: float = 15.0,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.max_queued_bytes = max_queued_bytes
        self.max_clients = max_clients
        self.keepalive_interval = keepalive_interval
        self.streams: set[SSEStream] = set()
        #: Clients dropped for reading too slowly.
        self.dropped = 0

    def open_stream(self, request: HTTPRequest) -> SSEStream:
        """The stream for ``request`` (its query is checked here: `ValueError` for a 400)."""
        raise NotImplementedError

    def render_GET(self, request: HTTPRequest) -> bytes | int:
        if request.method == b"HEAD":
            request.setHeader(b"content-type", b"text/event-stream")
            return b""
        if len(self.streams) >= self.max_clients:
            return _error(request, 503, "too_many_streams", f"at most {self.max_clients} streams")
        try:
            stream = self.open_stream(request)
        except ValueError as error:
            return _error(request, 400, "bad_request", str(error))
        request.setHeader(b"content-type", b"text/event-stream")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-accel-buffering", b"no")
        channel: Any = request.channel
        set_timeout = getattr(channel, "setTimeout", None)
        if set_timeout is not None:
            set_timeout(None)  # a stream is idle on the read side by design
        self.streams.add(stream)
        stream.start()
        return NOT_DONE_YET

    def close_all(self) -> None:
        """Finish every open stream (called when the daemon stops)."""
        for stream in list(self.streams):
            stream.finish()


class _EventStream(SSEStream):
    """One ``/events`` client: the hub's events (those named ``names``, if given)."""

    owner: EventStreamResource

    def __init__(
        self, owner: EventStreamResource, request: HTTPRequest, names: frozenset[str] | None
    ) -> None:
        super().__init__(owner, request)
        self.names = names

    def greeting(self) -> bytes:
        return b": txami event stream\n\n"

    def subscribe(self) -> None:
        self.owner.hub.subscribe(self)

    def unsubscribe(self) -> None:
        self.owner.hub.unsubscribe(self)

    def __call__(self, received: ReceivedEvent) -> None:
        if self.names is not None and received.name.lower() not in self.names:
            return
        self.send(f"data: {received.json}\n\n".encode("ascii"))


class EventStreamResource(SSEResource):
    """``GET /events``: a Server-Sent Events stream of the hub's events (of ``pbxs``)."""

    path = "/events"

    def __init__(
        self,
        hub: EventHub,
        clock: IReactorTime,
        *,
        pbxs: Sequence[str] = (DEFAULT_PBX,),
        **limits: Any,
    ) -> None:
        super().__init__(clock, **limits)
        self.hub = hub
        self.reads = tuple(pbxs)

    def open_stream(self, request: HTTPRequest) -> SSEStream:
        names: frozenset[str] | None = None
        raw = (request.args or {}).get(b"name")
        if raw:
            text = ",".join(value.decode("utf-8", "surrogateescape") for value in raw)
            names = frozenset(n.strip().lower() for n in text.split(",") if n.strip()) or None
        return _EventStream(self, request, names)


def make_resource(
    *,
    sender: ActionSender,
    health: Callable[[], Mapping[str, Any]],
    hub: EventHub,
    metrics: Metrics,
    clock: IReactorTime,
    token: str | None = None,
    access: AccessList | None = None,
    events: EventStreamResource | None = None,
) -> Resource:
    """
    One PBX's resource tree (``events`` lets the caller keep the stream
    resource).  ``token`` is the one-token form of ``access``.
    """
    if access is None and token is not None:
        access = AccessList.single_token(token)
    root = _Root(access)
    root.putChild(b"health", HealthResource(health))
    root.putChild(b"events", events if events is not None else EventStreamResource(hub, clock))
    root.putChild(b"actions", _Actions(ActionResource(sender, metrics, clock)))
    root.putChild(b"metrics", MetricsResource(metrics))
    return root


def make_site(resource: Resource, clock: IReactorTime) -> Site:
    """A `Site` serving ``resource`` (its access log shows no header values, so no token)."""
    site: Site = Site(resource, reactor=clock)  # type: ignore[no-untyped-call]
    return site
