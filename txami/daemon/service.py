"""
The daemon's services: one supervised AMI session and the sinks fed by it.

`BridgeService` is a `MultiService` of (in start order) the demo PBX (with
``--demo``), the JSON lines event log, the HTTP bridge and the AMI client.
Stopping goes the other way: the AMI client logs off first (``Logoff``, then
`AMIFactory.stop`, so nothing reconnects), then the HTTP streams are finished
and the listener closed, then the event log is closed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IListeningPort, IReactorTime, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site

from txami.daemon.eventlog import EventLog
from txami.daemon.hub import EventHub
from txami.daemon.metrics import Metrics
from txami.daemon.web import EventStreamResource, make_resource, make_site
from txami.factory import AMIFactory
from txami.protocol import AMIProtocol

__all__ = ["AMIClientService", "BridgeService", "ConnectionState", "HTTPService"]

_log = Logger(namespace="txami.daemon.service")


class ConnectionState:
    """A connection listener that remembers whether a TCP connection is up, and since when."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self.up = False
        self.since: float | None = None

    def connected(self, protocol: AMIProtocol) -> None:
        """The factory made a connection (not logged in yet)."""
        self.up = True
        self.since = self._clock.seconds()

    def disconnected(self, reason: Failure) -> None:
        """The connection ended."""
        self.up = False
        self.since = self._clock.seconds()


class AMIClientService(Service):
    """
    Runs an `AMIFactory`: connects on start (TLS when ``tls_options`` is given)
    and, on stop, `AMIFactory.stop` (Logoff, close, no reconnect), whose
    Deferred twistd waits for.  ``port`` may be a callable, read at start (the
    demo PBX knows its port only once it listens).
    """

    def __init__(
        self,
        factory: AMIFactory,
        reactor: Any,
        host: str,
        port: int | Callable[[], int],
        tls_options: Any = None,
        connect_timeout: float = 30.0,
    ) -> None:
        self.factory = factory
        self.reactor = reactor
        self.host = host
        self.port = port
        self.tls_options = tls_options
        self.connect_timeout = connect_timeout

    def startService(self) -> None:
        """Start connecting; the factory retries with backoff until it is stopped."""
        super().startService()  # type: ignore[no-untyped-call]
        port = self.port() if callable(self.port) else self.port
        _log.info(
            "connecting to AMI at {host}:{port}{tls} as {username!r}",
            host=self.host,
            port=port,
            tls=" (TLS)" if self.tls_options is not None else "",
            username=self.factory.username,
        )
        if self.tls_options is None:
            self.reactor.connectTCP(self.host, port, self.factory, timeout=self.connect_timeout)
        else:
            self.reactor.connectSSL(
                self.host, port, self.factory, self.tls_options, timeout=self.connect_timeout
            )

    def stopService(self) -> Deferred[None]:
        """Log off and close for good; fires once the connection is gone."""
        super().stopService()  # type: ignore[no-untyped-call]
        return self.factory.stop()


class HTTPService(Service):
    """
    Serves ``site`` on ``endpoint``, listening in `privilegedStartService` (so
    twistd can bind a low port before dropping privileges).  A listen that
    fails raises there, and twistd does not start.  ``events`` streams are
    finished on stop.
    """

    def __init__(
        self, endpoint: IStreamServerEndpoint, site: Site, events: EventStreamResource
    ) -> None:
        self.endpoint = endpoint
        self.site = site
        self.events = events
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
        """Listen (if `privilegedStartService` did not already)."""
        self.privilegedStartService()
        super().startService()  # type: ignore[no-untyped-call]

    def stopService(self) -> Deferred[None]:
        """Finish every event stream and stop listening."""
        super().stopService()  # type: ignore[no-untyped-call]
        self.events.close_all()
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
    The whole daemon: an `AMIFactory` kept logged in, an `EventHub` fed by it,
    a `Metrics`, and whichever sinks were configured.  See the module doc for
    the start and stop order.
    """

    def __init__(self, factory: AMIFactory, clock: IReactorTime) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.factory = factory
        self.clock = clock
        self.hub = EventHub(clock)
        self.metrics = Metrics()
        self.state = ConnectionState(clock)
        self.started: float | None = None
        self.event_log: EventLog | None = None
        self.http: HTTPService | None = None
        self.client: AMIClientService | None = None
        self.demo: Service | None = None
        factory.add_event_handler("*", self.hub)
        factory.add_connection_listener(self.state)
        self.hub.subscribe(self.metrics.event_received)
        self._add_metric_values()

    def _add_metric_values(self) -> None:
        add = self.metrics.add_value
        add(
            "txami_connected",
            "gauge",
            "1 while a connection to the AMI server is open.",
            lambda: 1 if self.state.up else 0,
        )
        add(
            "txami_logged_in",
            "gauge",
            "1 while the AMI session is logged in.",
            lambda: 1 if self.factory.protocol_instance is not None else 0,
        )
        add(
            "txami_reconnects_total",
            "counter",
            "Connections made after the first one.",
            self.reconnects,
        )
        add("txami_logins_total", "counter", "Successful AMI logins.", lambda: self.factory.logins)
        add(
            "txami_ami_actions_sent_total",
            "counter",
            "Actions sent on the AMI session (Login and keepalive Pings included).",
            lambda: self.factory.actions_sent,
        )
        add(
            "txami_event_stream_clients",
            "gauge",
            "Open /events streams.",
            lambda: len(self.http.events.streams) if self.http is not None else 0,
        )
        add(
            "txami_event_stream_dropped_total",
            "counter",
            "/events clients dropped for reading too slowly.",
            lambda: self.http.events.dropped if self.http is not None else 0,
        )
        add(
            "txami_event_log_write_errors_total",
            "counter",
            "Event log lines that could not be written.",
            lambda: self.event_log.write_errors if self.event_log is not None else 0,
        )
        add(
            "txami_uptime_seconds",
            "gauge",
            "Seconds since the daemon started.",
            self.uptime,
        )

    def reconnects(self) -> int:
        """How many connections were made after the first."""
        return max(0, self.factory.connects - 1)

    def uptime(self) -> float:
        """Seconds since the service started (0 before)."""
        if self.started is None:
            return 0.0
        return round(self.clock.seconds() - self.started, 3)

    def health(self) -> dict[str, Any]:
        """What ``GET /health`` reports."""
        protocol = self.factory.protocol_instance
        factory = self.factory
        return {
            "connected": self.state.up,
            "logged_in": protocol is not None,
            "ami_version": protocol.ami_version if protocol is not None else None,
            "username": factory.username,
            "uptime": self.uptime(),
            "reconnects": self.reconnects(),
            "connects": factory.connects,
            "logins": factory.logins,
            "disconnects": factory.disconnects,
            "events_received": factory.events_received,
            "actions_sent": factory.actions_sent,
            "last_error": (
                factory.last_error.getErrorMessage() if factory.last_error is not None else None
            ),
        }

    def add_event_log(self, log: EventLog) -> None:
        """Write events to ``log`` (add before the client, so it opens first)."""
        self.event_log = log
        log.setServiceParent(self)  # type: ignore[no-untyped-call]

    def add_http(
        self, endpoint: IStreamServerEndpoint, token: str | None, **stream_options: Any
    ) -> HTTPService:
        """Serve the HTTP bridge on ``endpoint`` (``token``: the bearer token, if any)."""
        events = EventStreamResource(self.hub, self.clock, **stream_options)
        resource = make_resource(
            sender=self.factory,
            health=self.health,
            hub=self.hub,
            metrics=self.metrics,
            clock=self.clock,
            token=token,
            events=events,
        )
        site = make_site(resource, self.clock)
        self.http = HTTPService(endpoint, site, events)
        self.http.setServiceParent(self)  # type: ignore[no-untyped-call]
        return self.http

    def add_client(self, client: AMIClientService) -> None:
        """Add the AMI client service (last, so it starts after every sink)."""
        self.client = client
        client.setServiceParent(self)  # type: ignore[no-untyped-call]

    def startService(self) -> None:
        """Start every child, in the order they were added."""
        self.started = self.clock.seconds()
        super().startService()  # type: ignore[no-untyped-call]

    def stopService(self) -> Deferred[None]:
        """Stop every child in reverse order, each after the one before it has stopped."""
        self.running = 0
        children = list(self)
        children.reverse()
        done: Deferred[None] = succeed(None)

        def stop_next(_: object, service: Any) -> Any:
            return service.stopService()

        for child in children:
            done.addCallback(stop_next, child)
        done.addErrback(lambda f: _log.failure("stopping the txami daemon", f))
        return done.addCallback(lambda _: None)
