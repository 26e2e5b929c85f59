"""
Integration tests: `AMIFactory` and `connect` over real sockets on 127.0.0.1
(TCP and TLS) against txami's fake Asterisk, with the real reactor for I/O.

Nothing sleeps: every step waits on a Deferred (when_ready, a listener
notice, a handler call).  Backoff delays are a few milliseconds so that a
reconnect takes no visible time.  Each test stops its factory, waits until
the server side of every connection has closed, cancels the fake's timers
and closes the listening port, so trial's reactor stays clean.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.protocol import connectionDone
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from tests.certs import TLS_SKIP, make_pki, server_tls_options
from txami import AMIFactory, AuthenticationError, ConnectionLost, Message, connect, tls_options
from txami.testing import FakeAsterisk, FakeSession, listen

reactor: Any = _reactor

#: Tiny backoff: reconnects happen within milliseconds.
FAST = {"initial_delay": 0.005, "max_delay": 0.02, "keepalive": None}

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


class TrackedSession(FakeSession):
    """A fake session that tells its server when it has closed."""

    factory: TrackedAsterisk

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Close as usual, then report it."""
        super().connectionLost(reason)
        self.factory.session_closed()


class TrackedAsterisk(FakeAsterisk):
    """A `FakeAsterisk` that can wait until every connection to it has closed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_connections = 0
        self._idle: list[Deferred[None]] = []

    def buildProtocol(self, addr: Any) -> FakeSession:
        """Build a tracked session."""
        self.open_connections += 1
        return TrackedSession(self, addr)

    def session_closed(self) -> None:
        """One more connection has closed on the server side."""
        self.open_connections -= 1
        if self.open_connections == 0:
            waiters, self._idle = self._idle, []
            for waiter in waiters:
                waiter.callback(None)

    def when_idle(self) -> Deferred[None]:
        """Fires once no connection to the server is open."""
        if self.open_connections == 0:
            return Deferred.fromCoroutine(_done())
        waiter: Deferred[None] = Deferred()
        self._idle.append(waiter)
        return waiter


async def _done() -> None:
    return None


class Notices:
    """A connection listener whose notices a test can wait for."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._waiting: dict[str, list[Deferred[list[Any]]]] = {}

    def next(self, what: str) -> Deferred[list[Any]]:
        """
        Fires at the next ``what`` notice with ``[argument]`` (in a list: a
        Failure argument must not turn the Deferred into an errback).
        """
        waiter: Deferred[list[Any]] = Deferred()
        self._waiting.setdefault(what, []).append(waiter)
        return waiter

    def _fire(self, what: str, argument: object) -> None:
        self.seen.append(what)
        for waiter in self._waiting.pop(what, []):
            waiter.callback([argument])

    def connected(self, protocol: object) -> None:
        """Record it."""
        self._fire("connected", protocol)

    def logged_in(self, protocol: object) -> None:
        """Record it."""
        self._fire("logged_in", protocol)

    def disconnected(self, reason: Failure) -> None:
        """Record it."""
        self._fire("disconnected", reason)

    def connection_failed(self, reason: Failure) -> None:
        """Record it."""
        self._fire("connection_failed", reason)

    def auth_failed(self, error: object) -> None:
        """Record it."""
        self._fire("auth_failed", error)


class EventWaiter:
    """An event handler whose calls a test can wait for."""

    def __init__(self) -> None:
        self.events: list[Message] = []
        self._waiting: list[Deferred[Message]] = []

    def __call__(self, event: Message) -> None:
        self.events.append(event)
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(event)

    def next(self) -> Deferred[Message]:
        """Fires with the next event handled."""
        waiter: Deferred[Message] = Deferred()
        self._waiting.append(waiter)
        return waiter


def load_example(name: str) -> ModuleType:
    """Import ``examples/NAME.py`` (the examples directory is not a package)."""
    path = os.path.join(EXAMPLES, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"txami_example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class _FakeServerCase(TestCase):
    """Starts a fake Asterisk on 127.0.0.1 and cleans everything up."""

    timeout = 20
    tls: Any = None

    def setUp(self) -> None:
        self.fake = TrackedAsterisk(reactor)
        self.fake.auth_failure_delay = 0.0
        self.port = listen(self.fake, reactor, tls=self.tls)
        self.port_number: int = self.port.getHost().port
        self.factories: list[AMIFactory] = []
        self.addCleanup(self._clean_up)

    async def _clean_up(self) -> None:
        for factory in self.factories:
            await factory.stop()
        await self.fake.when_idle()
        self.fake.stop()
        if self.port is not None:
            await self.port.stopListening()

    def start_factory(self, secret: str = "adminsecret", **options: Any) -> AMIFactory:
        """An AMIFactory with a tiny backoff, connecting to the fake (TLS if the case has it)."""
        settings = {**FAST, **options}
        factory = AMIFactory("admin", secret, reactor=reactor, **settings)
        self.factories.append(factory)
        return factory

    async def close_server(self) -> None:
        """Stop listening and drop every connection, as a PBX restart does."""
        port, self.port = self.port, None
        assert port is not None
        await port.stopListening()
        self.fake.drop_all()

    def reopen_server(self) -> None:
        """Listen again on the same port."""
        if self.tls:
            self.port = reactor.listenSSL(
                self.port_number, self.fake, self.tls, interface="127.0.0.1"
            )
        else:
            self.port = reactor.listenTCP(self.port_number, self.fake, interface="127.0.0.1")

    async def restart_with_pending_actions(self, factory: AMIFactory) -> None:
        """
        The scenario of both transports: actions pending, the server closes
        and comes back; the pending actions fail once with ConnectionLost,
        the factory reconnects and logs in, an old handler gets new events.
        """
        notices = Notices()
        factory.add_connection_listener(notices)
        handler = EventWaiter()
        factory.add_event_handler("UserEvent", handler)
        first = await factory.when_ready()
        self.assertEqual(self.fake.sessions[0].username, "admin")

        self.fake.delay_action("Ping", None)
        self.fake.delay_action("Getvar", None)
        outcomes: list[list[Any]] = [[], [], []]
        pending = [factory.ping(), factory.get_var("FOO"), factory.send_action("Ping")]
        for outcome, d in zip(outcomes, pending, strict=True):
            d.addBoth(outcome.append)
        self.assertEqual(outcomes, [[], [], []])

        disconnected = notices.next("disconnected")
        refused = notices.next("connection_failed")
        await self.close_server()
        await disconnected
        self.assertEqual([len(o) for o in outcomes], [1, 1, 1])
        for outcome, action in zip(outcomes, ["Ping", "Getvar", "Ping"], strict=True):
            failure = outcome[0]
            self.assertIsInstance(failure, Failure)
            self.assertIsInstance(failure.value, ConnectionLost)
            self.assertEqual(failure.value.action, action)
        self.assertIsNone(factory.protocol_instance)

        await refused
        self.fake.delays.clear()
        ready = factory.when_ready()
        self.reopen_server()
        second = await ready
        self.assertIsNot(second, first)
        self.assertIs(factory.protocol_instance, second)
        self.assertEqual(factory.logins, 2)
        self.assertEqual(factory.delay, factory.initialDelay)

        got = handler.next()
        self.assertEqual(self.fake.emit_event("UserEvent", UserEvent="Back", Seq="2"), 1)
        event = await got
        self.assertEqual((event["UserEvent"], event["Seq"]), ("Back", "2"))
        self.assertEqual(len(handler.events), 1)
        pong = await factory.ping()
        self.assertEqual(pong["Ping"], "Pong")
        self.assertEqual([len(o) for o in outcomes], [1, 1, 1])
        after = notices.seen[notices.seen.index("disconnected") :]
        self.assertEqual(after[0], "disconnected")
        self.assertEqual(after[-2:], ["connected", "logged_in"])
        self.assertEqual(set(after[1:-2]), {"connection_failed"})


class TCPIntegrationTests(_FakeServerCase):
    """Over plain TCP."""

    async def test_server_restart_with_pending_actions(self) -> None:
        """Pending actions fail once with ConnectionLost; the factory reconnects; handlers stay."""
        factory = self.start_factory()
        reactor.connectTCP("127.0.0.1", self.port_number, factory)
        await self.restart_with_pending_actions(factory)

    async def test_connect_and_stop(self) -> None:
        """connect() fires once logged in; stop() logs off, closes, and nothing reconnects."""
        factory = await connect(
            reactor, "127.0.0.1", self.port_number, username="admin", secret="adminsecret", **FAST
        )
        self.factories.append(factory)
        self.assertTrue(self.fake.sessions[0].logged_in)
        await factory.stop()
        await self.fake.when_idle()
        names = [message.name for _, message in self.fake.actions_received]
        self.assertEqual(names, ["Login", "Logoff"])
        self.assertEqual(self.fake.sessions, [])
        self.assertEqual((factory.connects, factory.disconnects), (1, 1))
        self.assertFalse(factory.continueTrying)
        self.assertIsNone(factory._callID)

    async def test_wrong_secret(self) -> None:
        """A refused first login errbacks AuthenticationError; nothing retries."""
        d = connect(
            reactor, "127.0.0.1", self.port_number, username="admin", secret="wrong", **FAST
        )
        error = await self.assertFailure(d, AuthenticationError)
        self.assertEqual(error.message, "Authentication failed")
        self.assertEqual(str(error), "login as 'admin' refused: Authentication failed")
        await self.fake.when_idle()
        logins = [m for _, m in self.fake.actions_received if m.name == "Login"]
        self.assertEqual(len(logins), 1)

    async def test_session_state_restored(self) -> None:
        """After a reconnect the server gets Login, Events, Filter, and applies them."""
        factory = self.start_factory(events="off")
        reactor.connectTCP("127.0.0.1", self.port_number, factory)
        await factory.when_ready()
        await factory.events("user")
        await factory.filter("UserEvent: Keep")
        handler = EventWaiter()
        factory.add_event_handler("UserEvent", handler)

        notices = Notices()
        factory.add_connection_listener(notices)
        relogged = notices.next("logged_in")
        self.fake.drop_all()
        await relogged
        session = self.fake.sessions[-1]
        mine = [m for s, m in self.fake.actions_received if s is session]
        self.assertEqual(
            [(m.name, m.get("Events") or m.get("EventMask") or m.get("Filter")) for m in mine],
            [("Login", "off"), ("Events", "user"), ("Filter", "UserEvent: Keep")],
        )
        got = handler.next()
        self.assertEqual(self.fake.emit_event("UserEvent", UserEvent="Drop"), 0)
        self.assertEqual(self.fake.emit_event("Newchannel", Channel="SIP/1"), 0)
        self.assertEqual(self.fake.emit_event("UserEvent", UserEvent="Keep"), 1)
        event = await got
        self.assertEqual(event["UserEvent"], "Keep")
        self.assertEqual(len(handler.events), 1)

    async def test_keepalive_drops_a_stalled_server(self) -> None:
        """A server that stops answering is dropped by the keepalive; the factory comes back."""
        factory = self.start_factory(keepalive=0.02, keepalive_timeout=0.05)
        notices = Notices()
        factory.add_connection_listener(notices)
        reactor.connectTCP("127.0.0.1", self.port_number, factory)
        first = await factory.when_ready()
        dropped = notices.next("disconnected")
        self.fake.stall()
        (reason,) = await dropped
        self.assertEqual(reason.type.__name__, "ConnectionAborted")
        ready = factory.when_ready()
        self.fake.resume()
        second = await ready
        self.assertIsNot(second, first)
        self.assertEqual((await factory.ping())["Ping"], "Pong")

    async def test_example_long_running(self) -> None:
        """examples/long_running.py: connects, reports calls, survives a drop, stops."""
        example = load_example("long_running")
        lines: list[str] = []
        monitor = example.CallMonitor(write=lines.append)
        args = example.parse_args(
            [
                "--port",
                str(self.port_number),
                "--secret",
                "adminsecret",
                "--initial-delay",
                "0.005",
            ]
        )
        until: Deferred[None] = Deferred()
        started = monitor.next("started")
        running = Deferred.fromCoroutine(example.run(reactor, args, until, monitor))
        await started
        self.factories.append(monitor.factory)

        seen = monitor.next("event")
        self.fake.emit_event("Newchannel", Channel="PJSIP/100-1", CallerIDNum="100")
        await seen
        relogged = monitor.next("logged_in")
        self.fake.drop_all()
        await relogged
        seen = monitor.next("event")
        self.fake.emit_event("Hangup", Channel="PJSIP/100-1", **{"Cause-txt": "Normal Clearing"})
        await seen
        until.callback(None)
        await running
        self.assertTrue(lines[0].startswith("connected: Asterisk"), lines[0])
        self.assertEqual(lines[1], "call started: PJSIP/100-1 from 100")
        self.assertRegex(lines[2], r"^connection lost \(.+\); reconnecting$")
        self.assertEqual(
            lines[3:],
            [
                "logged in to AMI 9.0.0",
                "call ended: PJSIP/100-1 (Normal Clearing)",
                "stopped after 2 connection(s), 2 event(s)",
            ],
        )

    async def test_example_client_service(self) -> None:
        """examples/client_service.py: ClientService logs in, reconnects, keeps handlers."""
        from twisted.application.internet import backoffPolicy
        from twisted.internet.endpoints import TCP4ClientEndpoint

        from txami import EventDispatcher

        example = load_example("client_service")
        dispatcher = EventDispatcher()
        handler = EventWaiter()
        dispatcher.add("UserEvent", handler)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port_number)
        service = example.ami_client_service(
            reactor,
            endpoint,
            "admin",
            "adminsecret",
            dispatcher=dispatcher,
            retry_policy=backoffPolicy(initialDelay=0.005, maxDelay=0.01, jitter=lambda: 0.0),
        )
        service.startService()
        self.addCleanup(service.stopService)
        first = await service.whenConnected()
        self.assertTrue(first.logged_in)
        gone = first.when_disconnected()
        self.fake.drop_all()
        await gone
        # ClientService hears of the loss just after the protocol does: one
        # reactor turn later, whenConnected no longer gives the old protocol.
        await deferLater(reactor, 0, lambda: None)
        second = await service.whenConnected()
        self.assertIsNot(second, first)
        self.assertTrue(second.logged_in)
        got = handler.next()
        self.fake.emit_event("UserEvent", UserEvent="Again")
        self.assertEqual((await got)["UserEvent"], "Again")


class TLSIntegrationTests(_FakeServerCase):
    """Over TLS, with a CA and server certificate made for the test."""

    skip = TLS_SKIP

    def setUp(self) -> None:
        self.pki = make_pki(self.mktemp())
        self.tls = server_tls_options(self.pki)
        super().setUp()

    async def test_server_restart_with_pending_actions(self) -> None:
        """The restart scenario over TLS, the certificate checked against the test CA."""
        factory = await connect(
            reactor,
            "127.0.0.1",
            self.port_number,
            username="admin",
            secret="adminsecret",
            tls=True,
            tls_ca=self.pki.ca_pem,
            **FAST,
        )
        self.factories.append(factory)
        await self.restart_with_pending_actions(factory)

    async def test_certificate_checked_by_default(self) -> None:
        """Without the test CA the handshake fails: the session never logs in."""
        factory = self.start_factory()
        notices = Notices()
        factory.add_connection_listener(notices)
        ready = factory.when_ready()
        dropped = notices.next("disconnected")
        reactor.connectSSL("127.0.0.1", self.port_number, factory, tls_options("127.0.0.1"))
        (reason,) = await dropped
        self.assertEqual(reason.type.__module__, "OpenSSL.SSL")
        self.assertEqual(factory.logins, 0)
        self.assertNoResult(ready)
        self.assertEqual([m.name for _, m in self.fake.actions_received], [])
        await factory.stop()
        await DeferredList([ready], consumeErrors=True)

    async def test_insecure_skip_verify(self) -> None:
        """insecure_skip_tls_verify connects to a server whose CA is unknown."""
        factory = await connect(
            reactor,
            "127.0.0.1",
            self.port_number,
            username="admin",
            secret="adminsecret",
            tls=True,
            insecure_skip_tls_verify=True,
            **FAST,
        )
        self.factories.append(factory)
        self.assertEqual((await factory.ping())["Ping"], "Pong")
