"""
`RedisConnection`: one connection to Redis, kept up with jittered backoff.

Built on txredisapi (the ``txami[redis]`` extra), used through its generic
command call (``execute_command``) with number conversion off, so that a
Uniqueid such as ``1700000000.42`` stays the text it was.  The connection is
made by Twisted's `ClientService` on the daemon's reactor: it reconnects
after any loss, waiting longer each time (up to ``max_delay``, with random
jitter so that many daemons do not return at once).  ``AUTH`` (from the
password file), ``SELECT`` (the URL's database) and a ``PING`` (refused
while Redis is still loading its data) run before the connection counts as
ready; a refused password is logged (never the password) and retried with
the same backoff.

Those run from the protocol's ``connectionMade``, not as ClientService's
``prepareConnection``: ClientService's state machine has no way out of its
``Connecting`` state for a connection lost while being prepared (nor of
``Waiting`` for a connection lost after a failed preparation): either raised
``NoTransition`` out of ``connectionLost``.  To ClientService the connection
is made once TCP (and TLS) is up; a setup that fails is ended with
``abortConnection`` (after a backoff of txami's own, since ClientService
restarts its count for each connection made), and it reconnects.

A blocking command (``XREADGROUP ... BLOCK``) holds its connection until it
returns, so the action consumer has a `RedisConnection` of its own.
"""

from __future__ import annotations

import random
import re
from collections import deque
from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet import endpoints
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from txami.daemon.config import RedisConfig

__all__ = ["RedisConnection", "RedisError", "RedisNotConnected", "redis_available"]

_log = Logger(namespace="txami.daemon.redisconn")


def redis_available() -> str | None:
    """Why the Redis support cannot run here (txredisapi missing), or None if it can."""
    try:
        import txredisapi  # noqa: F401
    except ImportError:
        return "Redis needs txredisapi: pip install 'txami[redis]'"
    return None


class RedisNotConnected(ConnectionError):
    """A command was given while the connection to Redis is down."""


class RedisError(Exception):
    """Redis answered a command with an error (``message`` is its text)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Incomplete(Exception):
    """The buffer ends inside a reply."""


def _parse_reply(buffer: bytes, position: int, error: Any) -> tuple[Any, int]:
    """
    One RESP2 reply of ``buffer`` from ``position``: ``(value, next position)``.
    Bulk strings are text when they are UTF-8 (else bytes), never numbers;
    an error reply is an ``error`` instance.  `_Incomplete` if it is not all there.
    """
    end = buffer.find(b"\r\n", position)
    if end < 0:
        raise _Incomplete()
    kind = buffer[position : position + 1]
    line = buffer[position + 1 : end]
    position = end + 2
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, position
        stop = position + size
        if len(buffer) < stop + 2:
            raise _Incomplete()
        data = buffer[position:stop]
        try:
            return data.decode("utf-8"), stop + 2
        except UnicodeDecodeError:
            return data, stop + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, position
        items = []
        for _ in range(count):
            item, position = _parse_reply(buffer, position, error)
            items.append(item)
        return items, position
    if kind == b"+":
        return line.decode("utf-8", "replace"), position
    if kind == b"-":
        text = line.decode("utf-8", "replace")
        return error(text[4:] if text.startswith("ERR ") else text), position
    if kind == b":":
        return int(line), position
    raise ValueError(f"not a Redis reply: {buffer[position - 2 - len(line) :][:40]!r}")


#: A run of ``XADD`` answers (entry IDs), recognised by their form in one match.
_ENTRY_IDS = re.compile(rb"(?:\$[0-9]++\r\n[0-9]++-[0-9]++\r\n)+")


class _Awaited:
    """The entries of one batch whose answers have not all come: ``left`` of them."""

    __slots__ = ("left", "receiver")

    def __init__(self, receiver: Any, left: int) -> None:
        self.receiver = receiver
        self.left = left


def _protocol_class() -> Any:
    """
    txredisapi's protocol with three changes, made on first use: commands are
    encoded with one join; replies are parsed here, all those of one read at
    once (txredisapi's own parser handles one bulk reply per reactor turn: it
    pauses the transport and schedules the rest of the read for later, so a
    pipeline of XADDs cost a turn and two ``epoll_ctl`` calls per entry); and
    batches (`send_batch`): many commands written at once whose answers go to
    one receiver, a run of entry IDs recognised by one regular expression,
    without a Deferred per command.

    ``awaited`` says where each expected reply goes, in the order the
    commands were written: None for a command of txredisapi's (its reply
    queue), an `_Awaited` for the answers of a batch.
    """
    global _PROTOCOL
    if _PROTOCOL is None:
        import txredisapi

        class _Protocol(txredisapi.RedisProtocol):  # type: ignore[misc]
            _unparsed = b""
            #: Set on every read; the connection's watchdog clears it.
            heard = False

            #: Called with the protocol once connected (`RedisConnection._prepare`).
            on_connect: Any = None

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.awaited: deque[_Awaited | None] = deque()

            def connectionMade(self) -> Any:
                _lift_send_limit(self.transport)
                result = super().connectionMade()
                if self.on_connect is not None:
                    self.on_connect(self)
                return result

            def _build_command(self, *args: Any, **kwargs: Any) -> bytes:
                parts = []
                for arg in args:
                    if not isinstance(arg, bytes):
                        if not isinstance(arg, str):
                            return super()._build_command(*args, **kwargs)  # type: ignore[no-any-return]
                        arg = arg.encode("utf-8")
                    parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
                return b"*%d\r\n" % len(parts) + b"".join(parts)

            def execute_command(self, *args: Any, **kwargs: Any) -> Any:
                d = super().execute_command(*args, **kwargs)
                self.awaited.append(None)  # written: its reply comes in turn
                return d

            def send_batch(self, data: bytes, count: int, receiver: Any) -> None:
                """
                Write ``data``, ``count`` commands, and report their answers to
                ``receiver`` as they come: ``answered(n, rejected)`` for the
                next ``n`` (``rejected``: None, or ``(offset, error text)`` of
                those Redis refused), or ``failed(reason)`` once if the
                connection is lost first.
                """
                self.transport.write(data)
                self.awaited.append(_Awaited(receiver, count))

            def dataReceived(self, data: bytes, unpause: bool = False) -> None:
                self.heard = True
                buffer = self._unparsed + data if self._unparsed else data
                position = 0
                size = len(buffer)
                awaited = self.awaited
                error = txredisapi.ResponseError
                try:
                    while position < size:
                        batch = awaited[0] if awaited else None
                        if batch is None:
                            reply, position = _parse_reply(buffer, position, error)
                            if awaited:
                                awaited.popleft()
                            self.replyReceived(reply)
                            continue
                        found = _ENTRY_IDS.match(buffer, position)
                        if found is not None:
                            end = found.end()
                            count = buffer.count(b"$", position, end)
                            if count > batch.left:
                                # The run goes on with the next commands' answers.
                                count = batch.left
                                rest = buffer[position:end].split(b"$", count + 1)[-1]
                                end -= len(rest) + 1
                            position = end
                            rejected = None
                        else:
                            reply, position = _parse_reply(buffer, position, error)
                            count = 1
                            rejected = [(0, str(reply))] if isinstance(reply, error) else None
                        batch.left -= count
                        if not batch.left:
                            awaited.popleft()
                        try:
                            batch.receiver.answered(count, rejected)
                        except Exception:
                            _log.failure("a Redis batch receiver failed")
                except _Incomplete:
                    pass
                except ValueError as problem:
                    _log.error("Redis sent something unreadable: {why}", why=problem)
                    self._unparsed = b""
                    self.transport.abortConnection()
                    return
                self._unparsed = buffer[position:]

            def connectionLost(self, why: Failure) -> None:
                awaited, self.awaited = self.awaited, deque()
                super().connectionLost(why)
                for batch in awaited:
                    if batch is not None:
                        try:
                            batch.receiver.failed(why)
                        except Exception:
                            _log.failure("a Redis batch receiver failed")

        _PROTOCOL = _Protocol
    return _PROTOCOL


_PROTOCOL: Any = None


class _RedisFactory(Factory):
    """Builds txredisapi protocols with number conversion off, timed by the daemon's reactor."""

    noisy = False

    def __init__(self, owner: RedisConnection) -> None:
        self.owner = owner

    def buildProtocol(self, addr: Any) -> Protocol:
        protocol: Any = _protocol_class()(
            charset="utf-8",
            replyTimeout=None,
            convertNumbers=False,
        )
        protocol.factory = self
        protocol.callLater = self.owner.reactor.callLater
        protocol.on_connect = self.owner._prepare
        return protocol  # type: ignore[no-any-return]

    # txredisapi calls these on its factory when AUTH/SELECT fail inside
    # connectionMade; txami never lets it run those itself (see _prepare).
    def stopTrying(self) -> None:  # pragma: no cover
        pass

    def connectionError(self, why: str) -> None:  # pragma: no cover
        pass


class RedisConnection(Service):
    """
    One Redis connection (see the module doc).  ``listener`` objects get
    ``redis_ready(connection)`` each time it is ready and ``redis_lost()``
    each time it is lost.
    """

    #: Backoff between attempts: from ``initial_delay``, times ``factor``, at most ``max_delay``.
    initial_delay = 0.5
    factor = 2.0
    max_delay = 30.0

    def __init__(
        self,
        reactor: Any,
        config: RedisConfig,
        *,
        name: str = "redis",
        reply_timeout: float | None = 30.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.reactor = reactor
        self.config = config
        self.name = name
        self.reply_timeout = reply_timeout
        self.connect_timeout = connect_timeout
        self.protocol: Any = None
        self.listeners: list[Any] = []
        self._service: ClientService | None = None
        self._watchdog: LoopingCall | None = None
        self._random = random.Random()
        #: The connection being set up (AUTH, SELECT, PING), if any.
        self._preparing: Any = None
        #: Setups failed in a row, and the call that ends the last one's connection.
        self._setup_failures = 0
        self._hold: Any = None
        #: Counters: connections made ready, and lost.
        self.connects = 0
        self.losses = 0

    @property
    def connected(self) -> bool:
        """Whether commands can be sent now."""
        return self.protocol is not None

    def add_listener(self, listener: Any) -> None:
        """Tell ``listener`` about readiness and losses."""
        self.listeners.append(listener)

    def _endpoint(self) -> Any:
        config = self.config
        endpoint: Any = endpoints.HostnameEndpoint(
            self.reactor, config.host, config.port, timeout=self.connect_timeout
        )
        if config.tls:
            endpoint = endpoints.wrapClientTLS(config.tls_options(), endpoint)
        return endpoint

    def startService(self) -> None:
        """Start connecting (and reconnecting, until stopped)."""
        super().startService()  # type: ignore[no-untyped-call]
        policy = backoffPolicy(
            initialDelay=self.initial_delay,
            maxDelay=self.max_delay,
            factor=self.factor,
            jitter=lambda: self._random.uniform(0, self.initial_delay),
        )
        self._service = ClientService(
            self._endpoint(),
            _RedisFactory(self),
            retryPolicy=policy,
            clock=self.reactor,
        )
        if self.reply_timeout is not None:
            self._watchdog = LoopingCall(self._watch)
            self._watchdog.clock = self.reactor
            self._watchdog.start(self.reply_timeout, now=False)
        _log.info(
            "connecting to Redis at {host}:{port} ({name})",
            host=self.config.host,
            port=self.config.port,
            name=self.name,
        )
        self._service.startService()

    def _prepare(self, protocol: Any) -> None:
        """A new connection (from its ``connectionMade``): AUTH, SELECT, PING, then ready."""
        self._preparing = protocol
        protocol.whenDisconnected().addCallback(lambda _: self._lost(protocol))
        d: Deferred[Any] = succeed(None)
        if self.config.password is not None:
            d.addCallback(lambda _: protocol.execute_command("AUTH", self.config.password))
        if self.config.db:
            d.addCallback(lambda _: protocol.execute_command("SELECT", str(self.config.db)))
        # A Redis that is still loading its data answers LOADING: not ready yet.
        d.addCallback(lambda _: protocol.execute_command("PING"))
        d.addCallbacks(
            self._ready, self._refused, callbackArgs=(protocol,), errbackArgs=(protocol,)
        )

    def _ready(self, result: object, protocol: Any) -> None:
        if self._preparing is not protocol:
            return  # lost meanwhile
        self._preparing = None
        self._setup_failures = 0
        self.protocol = protocol
        self.connects += 1
        _log.info("connected to Redis ({name})", name=self.name)
        for listener in list(self.listeners):
            try:
                listener.redis_ready(self)
            except Exception:
                _log.failure("a Redis listener failed")

    def _refused(self, failure: Failure, protocol: Any) -> None:
        if self._preparing is not protocol:
            return  # the connection was lost: ClientService reconnects
        self._preparing = None
        self._setup_failures += 1
        # Never the password: Redis's own answer says what was wrong.
        _log.error(
            "Redis ({name}) refused the connection's setup: {why}",
            name=self.name,
            why=failure.getErrorMessage(),
        )
        # ClientService counts from the start for each connection it makes (it then
        # waits initial_delay x factor): the growing part of the backoff is waited
        # here, before this connection is closed.
        failures = min(self._setup_failures, 100)
        hold = min(self.initial_delay * self.factor**failures, self.max_delay) - min(
            self.initial_delay * self.factor, self.max_delay
        )
        transport = protocol.transport
        self._hold = self.reactor.callLater(max(0.0, hold), transport.abortConnection)

    def _watch(self) -> None:
        """
        Every ``reply_timeout`` seconds: a connection with commands awaiting an
        answer that has not been heard from since the last look is hung (a
        paused or partitioned Redis): abort it, and the reconnection starts.
        One timer for the connection rather than one per command.
        """
        protocol = self.protocol or self._preparing
        if protocol is None:
            return
        if protocol.awaited and not protocol.heard:
            _log.warn(
                "Redis ({name}) has not answered for {seconds:g} s: reconnecting",
                name=self.name,
                seconds=self.reply_timeout,
            )
            protocol.transport.abortConnection()
        protocol.heard = False

    def _lost(self, protocol: Any) -> None:
        hold, self._hold = self._hold, None
        if hold is not None and hold.active():
            hold.cancel()
        if self._preparing is protocol:
            self._preparing = None
        if self.protocol is not protocol:
            return
        self.protocol = None
        self.losses += 1
        if self.running:
            _log.warn("lost the connection to Redis ({name}); reconnecting", name=self.name)
        for listener in list(self.listeners):
            try:
                listener.redis_lost()
            except Exception:
                _log.failure("a Redis listener failed")

    def execute(self, *args: Any, blocking: bool = False) -> Deferred[Any]:
        """
        Run one command: fires with Redis's answer, or fails with `RedisError`
        (an error reply) or `RedisNotConnected` (down, or lost before the answer).
        ``blocking`` commands (``XREADGROUP ... BLOCK``) must block for less
        than ``reply_timeout``, which the connection's watchdog enforces.
        """
        protocol = self.protocol
        if protocol is None:
            return fail(RedisNotConnected(f"not connected to Redis ({self.name})"))
        import txredisapi

        try:
            d: Deferred[Any] = protocol.execute_command(*args)
        except txredisapi.ConnectionError as error:  # its transport has just closed
            return fail(RedisNotConnected(str(error)))
        except Exception as error:  # an argument it cannot encode
            return fail(RedisError(f"cannot send {args[0]!r}: {error}"))
        return d.addErrback(_translate)

    def send_batch(self, data: bytes, count: int, receiver: Any) -> None:
        """
        Write ``count`` commands at once (``data``, encoded); their answers go
        to ``receiver`` (see the protocol's ``send_batch``), or, if the
        connection is down, ``receiver.failed`` is called at once.
        """
        protocol = self.protocol
        if protocol is None or not protocol.connected:
            receiver.failed(
                Failure(RedisNotConnected(f"not connected to Redis ({self.name})"))  # type: ignore[no-untyped-call]
            )
            return
        protocol.send_batch(data, count, receiver)

    def stopService(self) -> Deferred[None]:
        """Close the connection and stop reconnecting."""
        super().stopService()  # type: ignore[no-untyped-call]
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog.running:
            watchdog.stop()
        hold, self._hold = self._hold, None
        if hold is not None and hold.active():
            hold.cancel()  # ClientService closes the connection itself
        service, self._service = self._service, None
        if service is None:
            return succeed(None)
        result: Deferred[None] = service.stopService()
        return result


#: Bytes a Redis connection's transport may send per reactor turn (Twisted's default: 128 KiB).
SEND_LIMIT = 16 * 1024 * 1024


def _lift_send_limit(transport: Any) -> None:
    """
    Let ``transport`` (and a TLS transport's own) send a whole batch of
    ``XADD`` commands in one turn: at Twisted's 128 KiB a turn, a batch of a
    thousand entries takes several turns, each as long as the reads of every
    PBX's socket, and the stream falls behind the PBXs.
    """
    while transport is not None:
        if isinstance(getattr(transport, "SEND_LIMIT", None), int):
            transport.SEND_LIMIT = max(transport.SEND_LIMIT, SEND_LIMIT)
        transport = getattr(transport, "transport", None)


def _translate(failure: Failure) -> Failure:
    import txredisapi

    if isinstance(failure.value, txredisapi.ResponseError):
        return Failure(RedisError(str(failure.value)))  # type: ignore[no-untyped-call]
    if isinstance(failure.value, txredisapi.ConnectionError):
        # Lost with the connection before its answer came: a ConnectionError, as documented.
        return Failure(RedisNotConnected(str(failure.value)))  # type: ignore[no-untyped-call]
    return failure
