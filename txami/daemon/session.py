"""
`PBXSession`: everything the daemon keeps for one PBX, named by its ``[pbx:NAME]`` section.

A session is a service holding its own `AMIFactory` (one supervised AMI
login, reconnecting with jittered backoff), its `EventHub` (every event
stamped with the PBX's name), its `ConnectionState`, its `Metrics` (labelled
``pbx="NAME"``) and, when the daemon publishes to a stream, its
`Sequencer` and `PBXBuffer`.  Sessions share nothing but the reactor, so a
PBX that is down or refuses the login never disturbs the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from txami.config import PBXConfig
from txami.daemon.buffer import PBXBuffer
from txami.daemon.hub import EventHub
from txami.daemon.metrics import Metrics
from txami.daemon.sequencer import Sequencer
from txami.factory import AMIFactory
from txami.protocol import AMIProtocol

__all__ = ["AMIClientService", "ConnectionState", "PBXSession"]

_log = Logger(namespace="txami.daemon.session")


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


class PBXSession(MultiService):
    """
    One PBX of the daemon (see the module doc).  ``host``/``port`` override
    the config's (the demo's port is a callable); ``uptime`` reads the
    daemon's uptime for the health report.
    """

    def __init__(
        self,
        config: PBXConfig,
        reactor: Any,
        *,
        tls_options: Any = None,
        host: str | None = None,
        port: int | Callable[[], int] | None = None,
        uptime: Callable[[], float] = lambda: 0.0,
        **factory_options: Any,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        #: The PBX's name (its section's), the session's identity everywhere.
        self.pbx: str = config.name
        self.name = config.name
        self.config = config
        self.clock: IReactorTime = reactor
        self._uptime = uptime
        self.factory = AMIFactory(
            config.username,
            config.secret,
            reactor=reactor,
            auth=config.auth,
            events=config.events,
            filters=config.filters,
            retry_on_auth_failure=True,
            **factory_options,
        )
        self.hub = EventHub(reactor, pbx=self.pbx)
        self.state = ConnectionState(reactor)
        self.metrics = Metrics(pbx=self.pbx)
        self.factory.add_event_handler("*", self.hub.receive)
        # A batch sink (the stream's sequencer) takes each read's events once it is handled.
        self.factory.add_read_end_handler(self.hub.flush)
        self.factory.add_connection_listener(self.state)
        self.metrics.count_events(self.hub)
        self.client = AMIClientService(
            self.factory,
            reactor,
            host if host is not None else config.host,
            port if port is not None else config.port,
            tls_options,
        )
        self.client.setServiceParent(self)  # type: ignore[no-untyped-call]
        self.sequencer: Sequencer | None = None
        self.buffer: PBXBuffer | None = None
        self._add_metric_values()

    def __repr__(self) -> str:
        return f"<PBXSession {self.pbx!r}>"

    def attach_buffer(self, buffer: PBXBuffer) -> None:
        """Number this PBX's sessions and events into ``buffer`` (for the stream)."""
        self.buffer = buffer
        self.sequencer = Sequencer(self.pbx, self.clock, buffer)
        self.factory.add_connection_listener(self.sequencer)
        self.sequencer.listen(self.hub)
        add = self.metrics.add_value
        add(
            "txami_buffered_events",
            "gauge",
            "Stream entries held for Redis (unsent and unacknowledged).",
            lambda: buffer.events,
        )
        add(
            "txami_buffered_bytes",
            "gauge",
            "Bytes of the stream entries held for Redis.",
            lambda: buffer.bytes,
        )
        add(
            "txami_oldest_unacknowledged_seconds",
            "gauge",
            "Age of the oldest stream entry Redis has not acknowledged.",
            lambda: round(buffer.oldest_age(self.clock.seconds()), 3),
        )

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

    def reconnects(self) -> int:
        """How many connections were made after the first."""
        return max(0, self.factory.connects - 1)

    def health(self) -> dict[str, Any]:
        """What ``GET /pbx/NAME/health`` reports."""
        protocol = self.factory.protocol_instance
        factory = self.factory
        health: dict[str, Any] = {
            "pbx": self.pbx,
            "connected": self.state.up,
            "logged_in": protocol is not None,
            "ami_version": protocol.ami_version if protocol is not None else None,
            "username": factory.username,
            "uptime": self._uptime(),
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
        buffer = self.buffer
        if buffer is not None:
            health["stream"] = {
                "buffered_events": buffer.events,
                "buffered_bytes": buffer.bytes,
                "oldest_unacknowledged": round(buffer.oldest_age(self.clock.seconds()), 3),
                "published": self.metrics.published,
                "dropped": sum(self.metrics.dropped.values()),
            }
        return health
