"""
The daemon's service tree: one `PBXSession` per PBX and the sinks they feed.

`BridgeService` is a `MultiService` of (in start order) the demo PBX (with
``--demo``), the JSON lines event log, the Redis connections, the stream
publisher and the action consumer (with ``[redis]``), the HTTP bridge and
then every PBX's session.  Stopping goes the other way: every PBX logs off
first (``Logoff``, then `AMIFactory.stop`, so nothing reconnects, and its
session's end marker is buffered), the HTTP streams are finished and the
listener closed, the publisher gets a few seconds to drain its buffers into
Redis, the Redis connections close, and the event log is closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.interfaces import IListeningPort, IReactorTime, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site

from txami.daemon.acl import AccessList
from txami.daemon.eventlog import EventLog
from txami.daemon.hub import EventHub
from txami.daemon.metrics import MetricsRegistry
from txami.daemon.routes import PBX_CHILDREN, make_daemon_resource
from txami.daemon.session import AMIClientService, ConnectionState, PBXSession
from txami.daemon.statefeed import StateFeed
from txami.daemon.web import SSEResource, make_site
from txami.factory import AMIFactory

__all__ = ["AMIClientService", "BridgeService", "ConnectionState", "HTTPService", "PBXSession"]

_log = Logger(namespace="txami.daemon.service")


class HTTPService(Service):
    """
    Serves ``site`` on ``endpoint``, listening in `privilegedStartService` (so
    twistd can bind a low port before dropping privileges).  A listen that
    fails raises there, and twistd does not start.  The live state of
    ``feeds`` starts with the service (before the PBXs connect) and stops
    with it; the streams of ``streams`` (``/events``) and ``state_streams``
    are finished on stop.
    """

    def __init__(
        self,
        endpoint: IStreamServerEndpoint,
        site: Site,
        streams: Iterable[SSEResource],
        feeds: Iterable[StateFeed] = (),
        state_streams: Iterable[SSEResource] = (),
    ) -> None:
        self.endpoint = endpoint
        self.site = site
        self.streams = list(streams)
        self.feeds = list(feeds)
        self.state_streams = list(state_streams)
        #: The listening port, once listening.
        self.listening: IListeningPort | None = None

    def privilegedStartService(self) -> None:
        """Start listening; raise if that fails."""
        super().privilegedStartService()  # type: ignore[no-untyped-call]
        if self.listening is not None:
            return
        failures: list[Failure] = []

        def listening(port: IListeningPort) -> None:
            self.listening = port
            _log.info("HTTP bridge listening on {address}", address=port.getHost())

        self.endpoint.listen(self.site).addCallbacks(listening, failures.append)
        if failures:
            failures[0].raiseException()

    def startService(self) -> None:
        """Listen (if `privilegedStartService` did not already); start the live states."""
        self.privilegedStartService()
        super().startService()  # type: ignore[no-untyped-call]
        for feed in self.feeds:
            feed.start()

    def stopService(self) -> Deferred[None]:
        """Finish every stream, stop the live states and stop listening."""
        super().stopService()  # type: ignore[no-untyped-call]
        for resource in (*self.streams, *self.state_streams):
            resource.close_all()
        for feed in self.feeds:
            feed.stop()
        port, self.listening = self.listening, None
        if port is None:
            return succeed(None)
        stopped: Deferred[None] = Deferred()
        result = port.stopListening()
        if isinstance(result, Deferred):
            result.addBoth(lambda _: stopped.callback(None))
        else:
            stopped.callback(None)
        return stopped


class BridgeService(MultiService):
    """
    The whole daemon: its `PBXSession` objects by name (file order), an
    `EventHub` that merges their events (for the event log and ``/events``),
    a `MetricsRegistry`, and whichever sinks were configured.  See the
    module doc for the start and stop order.
    """

    def __init__(self, clock: IReactorTime) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.clock = clock
        self.sessions: dict[str, PBXSession] = {}
        self.hub = EventHub(clock)
        self.metrics = MetricsRegistry()
        self.started: float | None = None
        self.event_log: EventLog | None = None
        self.http: HTTPService | None = None
        self.demo: Service | None = None
        #: With ``[redis]``: the stream publisher, its connections, the action consumer.
        self.publisher: Any = None
        self.redis: list[Any] = []
        self.actions: Any = None
        add = self.metrics.add_value
        add("txami_uptime_seconds", "gauge", "Seconds since the daemon started.", self.uptime)
        add(
            "txami_event_stream_clients",
            "gauge",
            "Open /events streams (every PBX's).",
            lambda: sum(len(e.streams) for e in self.http.streams) if self.http else 0,
        )
        add(
            "txami_event_stream_dropped_total",
            "counter",
            "/events clients dropped for reading too slowly.",
            lambda: sum(e.dropped for e in self.http.streams) if self.http else 0,
        )
        add(
            "txami_state_stream_clients",
            "gauge",
            "Open /state/stream streams (every PBX's).",
            lambda: sum(len(e.streams) for e in self.http.state_streams) if self.http else 0,
        )
        add(
            "txami_state_stream_dropped_total",
            "counter",
            "/state/stream clients dropped for reading too slowly.",
            lambda: sum(e.dropped for e in self.http.state_streams) if self.http else 0,
        )
        add(
            "txami_event_log_write_errors_total",
            "counter",
            "Event log lines that could not be written.",
            lambda: self.event_log.write_errors if self.event_log is not None else 0,
        )

    # --- the PBXs --------------------------------------------------------------------------

    def add_session(self, session: PBXSession) -> None:
        """Bridge ``session``'s PBX (its name must be new)."""
        if session.pbx in self.sessions:
            raise ValueError(f"two PBXs are called {session.pbx!r}")
        self.sessions[session.pbx] = session
        self.hub.merge(session.hub)
        self.metrics.add(session.metrics)

    @property
    def only(self) -> PBXSession:
        """The one PBX of a one-PBX daemon (`ValueError` with several)."""
        if len(self.sessions) != 1:
            raise ValueError(f"this daemon bridges {len(self.sessions)} PBXs, not one")
        return next(iter(self.sessions.values()))

    @property
    def factory(self) -> AMIFactory:
        """The `AMIFactory` of a one-PBX daemon."""
        return self.only.factory

    @property
    def client(self) -> AMIClientService:
        """The AMI client service of a one-PBX daemon."""
        return self.only.client

    def uptime(self) -> float:
        """Seconds since the service started (0 before)."""
        if self.started is None:
            return 0.0
        return round(self.clock.seconds() - self.started, 3)

    def health(self) -> dict[str, Any]:
        """
        What ``GET /health`` reports: the PBX's health with one PBX; with
        several, whether every one is logged in and each one's summary.
        """
        if len(self.sessions) == 1:
            return self.only.health()
        pbxs = {name: session.health() for name, session in self.sessions.items()}
        return {
            "logged_in": all(h["logged_in"] for h in pbxs.values()),
            "uptime": self.uptime(),
            "pbxs": {
                name: {key: h[key] for key in ("connected", "logged_in", "last_error")}
                for name, h in pbxs.items()
            },
        }

    # --- sinks (add them before the sessions start) -----------------------------------------

    def add_event_log(self, log: EventLog) -> None:
        """Write every PBX's events to ``log``."""
        self.event_log = log
        log.setServiceParent(self)  # type: ignore[no-untyped-call]

    def add_http(
        self,
        endpoint: IStreamServerEndpoint,
        token: str | None,
        children: Any = PBX_CHILDREN,
        *,
        access: AccessList | None = None,
        **stream_options: Any,
    ) -> HTTPService:
        """
        Serve the HTTP bridge and the board on ``endpoint``: ``access`` says
        what each token may do (``token``: the one token that may do
        everything; neither: no token needed).
        """
        resource, context = make_daemon_resource(
            self.sessions,
            health=self.health,
            hub=self.hub,
            metrics=self.metrics,
            clock=self.clock,
            token=token,
            access=access,
            children=children,
            **stream_options,
        )
        site = make_site(resource, self.clock)
        self.http = HTTPService(
            endpoint, site, context.streams, context.feeds.values(), context.state_streams
        )
        self.http.setServiceParent(self)  # type: ignore[no-untyped-call]
        return self.http

    def add_service(self, service: Service) -> None:
        """Run ``service`` too (started before the PBXs, stopped after them)."""
        service.setServiceParent(self)  # type: ignore[no-untyped-call]

    def add_sessions(self) -> None:
        """Start the PBXs' sessions last, after every sink (call once, after adding them)."""
        for session in self.sessions.values():
            session.setServiceParent(self)  # type: ignore[no-untyped-call]

    def startService(self) -> None:
        """Start every child, in the order they were added."""
        self.started = self.clock.seconds()
        super().startService()  # type: ignore[no-untyped-call]

    def stopService(self) -> Deferred[None]:
        """
        Stop the PBXs together (each logs off), then every other child in
        reverse order, each after the one before it has stopped.  A child
        that fails to stop is logged, and the next one is stopped all the same.
        """
        self.running = 0
        children = list(self)
        children.reverse()
        sessions = [c for c in children if isinstance(c, PBXSession)]
        others = [c for c in children if not isinstance(c, PBXSession)]
        done: Deferred[Any] = DeferredList([_stop(session) for session in sessions])
        for child in others:
            done.addCallback(_stop_after, child)
        done.addErrback(lambda f: _log.failure("stopping the txami daemon", f))
        return done.addCallback(lambda _: None)


def _stop(service: Any) -> Deferred[None]:
    """Stop ``service``; fires once it has stopped, with None even if that failed (logged)."""

    def failed(failure: Failure) -> None:
        _log.failure("stopping {service!r}", failure, service=service)

    stopped: Deferred[Any] = maybeDeferred(service.stopService)
    return stopped.addCallbacks(lambda _: None, failed)


def _stop_after(_: object, service: Any) -> Deferred[None]:
    """`_stop` as a callback: once the service before has stopped."""
    return _stop(service)
