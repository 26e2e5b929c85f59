"""
`AMIFactory`: one AMI client that stays logged in across dropped connections.

A `ReconnectingClientFactory` that logs in on every new connection and owns
what must outlive one connection: the event handlers (one `EventDispatcher`
shared by every protocol it builds), the session's event mask and filters
(re-applied after every login), the connection listeners, the counters, and
the callers waiting for a logged-in session (`when_ready`).

The backoff restarts only after a successful login, so a server that accepts
TCP and then fails every login is not hammered; a refused login stops the
factory unless ``retry_on_auth_failure`` is set.  While logged in, a
`Keepalive` pings the server and drops a connection that has gone silent.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, fail, succeed
from twisted.internet.interfaces import IAddress, IConnector, IDelayedCall, IReactorTime
from twisted.internet.protocol import ReconnectingClientFactory, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from txami.actions import RESPONSE, AMIActions
from txami.dispatch import EventDispatcher, EventHandler, ReadEndHandler
from txami.errors import AMIError, AuthenticationError, NotConnected
from txami.keepalive import Keepalive
from txami.listener import notify
from txami.message import Message, encode_action
from txami.protocol import AMIProtocol

__all__ = ["AMIFactory"]

_log = Logger(namespace="txami.factory")

EventMask = str | bool | Sequence[str]


def _mask_text(mask: EventMask) -> str:
    """The ``Events``/``EventMask`` header value for a mask given as text, bool or classes."""
    if isinstance(mask, bool):
        return "on" if mask else "off"
    if isinstance(mask, str):
        return mask
    return ",".join(mask)


class _FactoryProtocol(AMIProtocol):
    """An `AMIProtocol` that reports its connection to its factory and marks every read."""

    def __init__(self, owner: AMIFactory) -> None:
        super().__init__(
            owner.reactor,
            dispatcher=owner.dispatcher,
            timeout=owner.timeout,
            max_message_size=owner.max_message_size,
        )
        self.owner = owner
        self.keepalive: Keepalive | None = None

    def connectionMade(self) -> None:
        AMIProtocol.connectionMade(self)
        self.owner._connection_made(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        # Detach first, so that code run by the failing actions' errbacks sees
        # no logged-in protocol; report the loss once the actions have failed.
        self.owner._connection_closing(self)
        AMIProtocol.connectionLost(self, reason)
        self.owner._connection_lost(self, reason)

    def dataReceived(self, data: bytes) -> None:
        keepalive = self.keepalive
        if keepalive is not None:
            keepalive.heard = True
        AMIProtocol.dataReceived(self, data)


class AMIFactory(AMIActions, ReconnectingClientFactory):
    """
    Keep one AMI session logged in as ``username``, reconnecting as needed.

    ``reactor`` (or its alias ``clock``) schedules retries, timeouts and
    keepalives.  ``auth`` is ``"plain"`` or ``"md5"``; ``events`` is the event
    mask sent with every Login and ``filters`` event filter rules applied
    after every login.  ``keepalive`` is the Ping interval in seconds (`None`:
    no pings) and ``keepalive_timeout`` how long a Ping may go unanswered
    while nothing else arrives (default: the interval).  ``timeout`` is the
    per-action timeout of every connection (Login included).

    Backoff: ``initial_delay`` (1 s), growing by ``factor`` (e) up to
    ``max_delay`` (30 s), each wait spread by ``jitter`` (12 %) and never
    above ``max_delay``; it restarts only after a successful login.  Failed
    connection attempts retry for ever (unless ``maxRetries`` is set); a
    refused login stops the factory unless ``retry_on_auth_failure``.

    The typed action helpers and `send_action` go to the current logged-in
    connection and fail at once with `NotConnected` while there is none.
    """

    noisy = False
    initialDelay = 1.0
    maxDelay: float = 30.0  # type: ignore[assignment]
    #: Seconds `stop` waits for ``Logoff`` and then for the close, before aborting.
    stop_timeout = 5.0

    def __init__(
        self,
        username: str,
        secret: str,
        *,
        reactor: IReactorTime | None = None,
        clock: IReactorTime | None = None,
        auth: str = "plain",
        events: EventMask = "on",
        filters: Iterable[str] = (),
        keepalive: float | None = 20.0,
        keepalive_timeout: float | None = None,
        retry_on_auth_failure: bool = False,
        timeout: float | None = None,
        max_message_size: int | None = None,
        initial_delay: float | None = None,
        max_delay: float | None = None,
        factor: float | None = None,
        jitter: float | None = None,
    ) -> None:
        if (reactor is None) == (clock is None):
            raise TypeError("AMIFactory needs reactor= (or its alias clock=), exactly once")
        if auth not in ("plain", "md5"):
            raise ValueError(f"auth must be 'plain' or 'md5', not {auth!r}")
        if keepalive is not None and keepalive <= 0:
            raise ValueError(f"keepalive must be positive or None, not {keepalive!r}")
        the_clock = reactor if reactor is not None else clock
        assert the_clock is not None
        #: What schedules retries, timeouts and pings (``clock`` is the same, for Twisted).
        self.reactor: IReactorTime = the_clock
        self.clock = the_clock  # type: ignore[assignment]
        self.username = username
        self._secret = secret
        self.auth = auth
        #: The event mask sent with every ``Login``.
        self.login_events = _mask_text(events)
        self.keepalive = keepalive
        self.keepalive_timeout = keepalive_timeout
        self.retry_on_auth_failure = retry_on_auth_failure
        self.timeout = timeout if timeout is not None else AMIProtocol.timeout
        self.max_message_size = max_message_size
        if initial_delay is not None:
            self.initialDelay = self.delay = initial_delay
        if max_delay is not None:
            self.maxDelay = max_delay
        if factor is not None:
            self.factor = factor
        if jitter is not None:
            self.jitter = jitter
        self._random = random.Random()

        #: The handler registry shared by every connection.
        self.dispatcher = EventDispatcher()
        #: The logged-in connection actions go to, or `None`.
        self.protocol_instance: AMIProtocol | None = None
        self._connection: _FactoryProtocol | None = None
        self._event_mask: str | None = None
        self._filters: list[tuple[str, str]] = [(rule, "Add") for rule in filters]
        self._listeners: list[object] = []
        self._ready_waiters: list[Deferred[AMIProtocol]] = []
        self._gone_waiters: list[Deferred[None]] = []
        self._abort_call: IDelayedCall | None = None
        self._stopped = False
        self._stop_error: Exception | None = None
        #: The most recent reason a connection failed, ended or did not log in.
        self.last_error: Failure | None = None

        #: Counters over the factory's whole life.
        self.connects = 0
        self.connection_failures = 0
        self.logins = 0
        self.auth_failures = 0
        self.disconnects = 0
        self._actions_before = 0
        self._events_before = 0

    def __repr__(self) -> str:
        state = "ready" if self.protocol_instance is not None else "not ready"
        if self._stopped:
            state = "stopped"
        return f"<AMIFactory user={self.username!r} {state}>"

    # --- counters ------------------------------------------------------------------------------

    @property
    def actions_sent(self) -> int:
        """Actions sent over every connection so far (Login, Ping, ... included)."""
        connection = self._connection
        return self._actions_before + (connection.actions_sent if connection else 0)

    @property
    def events_received(self) -> int:
        """Events received over every connection so far."""
        connection = self._connection
        return self._events_before + (connection.events_received if connection else 0)

    @property
    def stopped(self) -> bool:
        """Whether the factory has stopped for good (`stop`, a refused login, given up)."""
        return self._stopped

    @property
    def filters(self) -> list[str]:
        """The event filter rules re-applied after every login, in order."""
        return [rule for rule, _ in self._filters]

    # --- handlers and listeners ----------------------------------------------------------------

    def add_event_handler(self, name: str, handler: EventHandler) -> None:
        """
        Call ``handler(event)`` for every event named ``name`` (case-insensitive,
        a glob, or ``"*"``), on this and every later connection.
        """
        self.dispatcher.add(name, handler)

    def remove_event_handler(self, name: str, handler: EventHandler) -> None:
        """Undo `add_event_handler` (`ValueError` if it was not registered)."""
        self.dispatcher.remove(name, handler)

    def add_read_end_handler(self, handler: ReadEndHandler) -> None:
        """
        Call ``handler()`` after each read from the socket, once that read's
        events have all been handed to the event handlers (on this and every
        later connection): a handler that gathers events can deal with one
        read's events together.
        """
        self.dispatcher.add_read_end(handler)

    def remove_read_end_handler(self, handler: ReadEndHandler) -> None:
        """Undo `add_read_end_handler` (`ValueError` if it was not registered)."""
        self.dispatcher.remove_read_end(handler)

    def add_connection_listener(self, listener: object) -> None:
        """
        Tell ``listener`` about connections: whichever of `IConnectionListener`'s
        ``connected``, ``logged_in``, ``disconnected``, ``auth_failed`` and
        ``connection_failed`` it has are called.
        """
        self._listeners.append(listener)

    def remove_connection_listener(self, listener: object) -> None:
        """Undo `add_connection_listener` (`ValueError` if it was not added)."""
        self._listeners.remove(listener)

    # --- readiness -----------------------------------------------------------------------------

    def when_ready(self) -> Deferred[AMIProtocol]:
        """
        A new Deferred that fires with the logged-in protocol: at once if there
        is one, else after the next successful login (and restored session
        state).  It errbacks `AuthenticationError` if the login is refused and
        not retried, and `NotConnected` if the factory stops first.
        """
        if self.protocol_instance is not None:
            return succeed(self.protocol_instance)
        if self._stopped:
            return fail(self._why_stopped())
        waiter: Deferred[AMIProtocol] = Deferred(self._cancel_waiter)
        self._ready_waiters.append(waiter)
        return waiter

    def _cancel_waiter(self, waiter: Deferred[AMIProtocol]) -> None:
        if waiter in self._ready_waiters:
            self._ready_waiters.remove(waiter)

    def _why_stopped(self) -> Exception:
        if self._stop_error is not None:
            return self._stop_error
        return NotConnected("Login", "the AMI factory was stopped")

    def _fail_waiters(self) -> None:
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            waiter.errback(self._why_stopped())

    # --- stopping ------------------------------------------------------------------------------

    def stop(self) -> Deferred[None]:
        """
        Stop for good: no more retries, ``Logoff`` if logged in, close.

        Returns a Deferred that fires (with `None`) once the connection is
        gone (at once if there is none).  Pending `when_ready` Deferreds
        errback `NotConnected`; pending actions fail with `ConnectionLost`.
        """
        if not self._stopped:
            _log.info("stopping the AMI client for {username!r}", username=self.username)
            self._give_up(None)
        connection = self._connection
        if connection is None:
            return succeed(None)
        gone: Deferred[None] = Deferred()
        self._gone_waiters.append(gone)
        if self._abort_call is None:
            self._close(connection)
        return gone

    def _give_up(self, error: Exception | None) -> None:
        """Stop retrying and fail the waiters, with ``error`` (or `NotConnected`)."""
        self._stopped = True
        if error is not None:
            self._stop_error = error
        self.stopTrying()  # type: ignore[no-untyped-call]
        connection = self._connection
        if connection is not None:
            self._detach(connection)
        self._fail_waiters()

    def _close(self, connection: _FactoryProtocol) -> None:
        """Log off (if logged in), then close; abort if that takes too long."""
        self._abort_call = self.reactor.callLater(2 * self.stop_timeout, self._abort, connection)
        if connection.logged_in and connection.connected_and_open:
            d = connection.send_action("Logoff", action_timeout=self.stop_timeout)
            d.addBoth(lambda _: self._lose(connection))
        else:
            self._lose(connection)

    def _lose(self, connection: _FactoryProtocol) -> None:
        transport = connection.transport
        if transport is not None and connection.connected_and_open:
            transport.loseConnection()

    def _abort(self, connection: _FactoryProtocol) -> None:
        self._abort_call = None
        if connection.transport is not None and connection.connected_and_open:
            _log.warn("the AMI connection did not close in time: aborting it")
            connection.abort()

    # --- connection life ---------------------------------------------------------------------

    def buildProtocol(self, addr: IAddress | None) -> AMIProtocol:
        """Build a protocol that shares this factory's dispatcher and reports to it."""
        protocol = _FactoryProtocol(self)
        protocol.factory = self
        return protocol

    def startedConnecting(self, connector: IConnector) -> None:
        # Remember the connector from the first attempt on, so that `stop`
        # can cancel that attempt too.
        self.connector = connector

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        self.connection_failures += 1
        self.last_error = reason
        if not self._stopped:
            _log.info("could not connect to the AMI server: {why}", why=reason.getErrorMessage())
        notify(self._listeners, "connection_failed", reason)
        ReconnectingClientFactory.clientConnectionFailed(  # type: ignore[no-untyped-call]
            self, connector, reason
        )

    def retry(self, connector: IConnector | None = None) -> None:
        """
        Connect again after the current delay (spread by ``jitter``, at most
        ``maxDelay``), then grow the delay by ``factor``.
        """
        if not self.continueTrying:
            return
        if connector is None:
            connector = self.connector
            if connector is None:
                raise ValueError("no connector to retry")
        self.retries += 1
        if self.maxRetries is not None and self.retries > self.maxRetries:
            _log.error(
                "giving up on the AMI server after {retries} attempts", retries=self.maxRetries
            )
            self._give_up(
                NotConnected("Login", f"gave up after {self.maxRetries} failed attempts")
            )
            return
        wait: float = self.delay
        if self.jitter:
            wait *= 1.0 + self.jitter * self._random.uniform(-1.0, 1.0)
        wait = max(0.0, min(wait, self.maxDelay))
        _log.info("reconnecting to the AMI server in {wait:.1f} s", wait=wait)
        self._callID = self.reactor.callLater(wait, self._reconnect, connector)
        self.delay = min(self.delay * self.factor, self.maxDelay)

    def _reconnect(self, connector: IConnector) -> None:
        self._callID = None
        connector.connect()

    def _connection_made(self, connection: _FactoryProtocol) -> None:
        self._connection = connection
        self.connects += 1
        notify(self._listeners, "connected", connection)
        if self._stopped:
            self._lose(connection)
            return
        d = connection.login(self.username, self._secret, self.login_events, self.auth)
        d.addCallbacks(
            self._logged_in,
            self._login_failed,
            callbackArgs=(connection,),
            errbackArgs=(connection,),
        )

    def _login_failed(self, failure: Failure, connection: _FactoryProtocol) -> None:
        error = failure.value
        if isinstance(error, AMIError) and not isinstance(error, AuthenticationError):
            # A refused Challenge (md5 login) is a refused login too.
            error = AuthenticationError(error.action, error.response, self.username)
            failure = Failure(error)  # type: ignore[no-untyped-call]
        self.last_error = failure
        if isinstance(error, AuthenticationError):
            self.auth_failures += 1
            _log.error("{error}", error=error)
            notify(self._listeners, "auth_failed", error)
            if not self.retry_on_auth_failure and not self._stopped:
                self._give_up(error)
            self._lose(connection)
        elif connection.connected_and_open:
            _log.warn("the AMI login did not complete: {why}", why=failure.getErrorMessage())
            connection.abort()

    def _logged_in(self, response: Message, connection: _FactoryProtocol) -> None:
        if connection is not self._connection or not connection.connected_and_open:
            return
        self.logins += 1
        if self._stopped:  # stop() came first: the connection is closing
            return
        # The backoff restarts only here, never on a bare TCP connect.
        self.delay = self.initialDelay
        self.retries = 0
        _log.info(
            "logged in to AMI {version} as {username!r}",
            version=connection.ami_version,
            username=self.username,
        )
        sent: list[Deferred[Message]] = []
        if self._event_mask is not None:
            sent.append(connection.events(self._event_mask))
        for rule, operation in self._filters:
            sent.append(connection.filter(rule, operation))
        if not sent:
            self._ready(connection)
            return
        # Asterisk answers one session's actions in order: pipelining them is safe.
        restored = DeferredList(sent, consumeErrors=True)
        restored.addCallback(self._restored, connection)

    def _restored(self, results: list[tuple[bool, Any]], connection: _FactoryProtocol) -> None:
        for ok, value in results:
            if ok:
                continue
            if isinstance(value.value, AMIError):
                _log.warn("could not restore session state: {error}", error=value.value)
            else:
                if connection.connected_and_open:
                    _log.warn("restoring session state failed: {why}", why=value.getErrorMessage())
                    connection.abort()
                return
        self._ready(connection)

    def _ready(self, connection: _FactoryProtocol) -> None:
        if (
            self._stopped
            or connection is not self._connection
            or not connection.connected_and_open
        ):
            return
        self.protocol_instance = connection
        if self.keepalive is not None:
            keepalive = Keepalive(connection, self.reactor, self.keepalive, self.keepalive_timeout)
            connection.keepalive = keepalive
            keepalive.start()
        notify(self._listeners, "logged_in", connection)
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            waiter.callback(connection)

    def _detach(self, connection: _FactoryProtocol) -> None:
        """Send no more of the factory's actions to ``connection``; stop its pings."""
        if connection.keepalive is not None:
            connection.keepalive.stop()
        if self.protocol_instance is connection:
            self.protocol_instance = None

    def _connection_closing(self, connection: _FactoryProtocol) -> None:
        self._detach(connection)

    def _connection_lost(self, connection: _FactoryProtocol, reason: Failure) -> None:
        self._actions_before += connection.actions_sent
        self._events_before += connection.events_received
        if connection is self._connection:
            self._connection = None
        self.disconnects += 1
        if not self._stopped:
            self.last_error = reason
            _log.info("the AMI connection was lost: {why}", why=reason.getErrorMessage())
        call, self._abort_call = self._abort_call, None
        if call is not None and call.active():
            call.cancel()
        notify(self._listeners, "disconnected", reason)
        if self._connection is None:
            gone, self._gone_waiters = self._gone_waiters, []
            for waiter in gone:
                waiter.callback(None)

    # --- actions -------------------------------------------------------------------------------

    def _send(
        self,
        name: str,
        pairs: list[tuple[str, str]],
        timeout: float | None = None,
        *,
        mode: int = RESPONSE,
        awaited: str | tuple[str, ...] | None = None,
        untagged: str | None = None,
    ) -> Deferred[Message]:
        protocol = self.protocol_instance
        if protocol is None:
            encode_action(name, "-", pairs)  # refuse unsafe headers the same way when offline
            if self._stopped:
                return fail(NotConnected(name, "the AMI factory was stopped"))
            return fail(NotConnected(name, "not logged in to the AMI server"))
        return protocol._send(name, pairs, timeout, mode=mode, awaited=awaited, untagged=untagged)

    def _finish_raw(self, action_id: str) -> None:
        protocol = self.protocol_instance
        if protocol is not None:
            protocol._finish_raw(action_id)

    def events(self, mask: EventMask) -> Deferred[Message]:
        """
        Change the event mask (``"on"``, ``"off"`` or classes) now and, once
        accepted, after every later login too.
        """
        value = _mask_text(mask)

        def remember(response: Message) -> Message:
            self._event_mask = value
            return response

        return AMIActions.events(self, value).addCallback(remember)

    def filter(self, filter: str, operation: str = "Add") -> Deferred[Message]:
        """
        Add an event filter rule now and, once accepted, after every later
        login too (Asterisk forgets filters with the session).
        """

        def remember(response: Message) -> Message:
            self._filters.append((filter, operation))
            return response

        return AMIActions.filter(self, filter, operation).addCallback(remember)
