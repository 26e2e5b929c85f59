"""
Unit tests of `txami.factory.AMIFactory`, in memory on a `Clock`: login on
every connection, backoff, auth failure, stop, handlers and session state
across reconnects, listeners and counters.
"""

from __future__ import annotations

import math

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.factory_harness import BANNER, Harness, capture_log, formatted
from txami import AMIFactory, IConnectionListener
from txami.errors import (
    ActionTimeout,
    AMIError,
    AuthenticationError,
    ConnectionLost,
    NotConnected,
)
from txami.message import Message
from txami.protocol import AMIProtocol


@implementer(IConnectionListener)
class RecordingListener:
    """Records every connection notice, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def connected(self, protocol: object) -> None:
        """Record it."""
        self.calls.append(("connected", protocol))

    def logged_in(self, protocol: object) -> None:
        """Record it."""
        self.calls.append(("logged_in", protocol))

    def disconnected(self, reason: object) -> None:
        """Record it."""
        self.calls.append(("disconnected", reason))

    def auth_failed(self, error: object) -> None:
        """Record it."""
        self.calls.append(("auth_failed", error))

    def connection_failed(self, reason: object) -> None:
        """Record it."""
        self.calls.append(("connection_failed", reason))

    def names(self) -> list[str]:
        """Just the notice names."""
        return [name for name, _ in self.calls]


class ConstructionTests(SynchronousTestCase):
    """What `AMIFactory` accepts."""

    def test_needs_a_reactor(self) -> None:
        """Without reactor= or clock= (or with both) construction fails."""
        from twisted.internet.task import Clock

        self.assertRaises(TypeError, AMIFactory, "admin", "s")
        self.assertRaises(TypeError, AMIFactory, "admin", "s", reactor=Clock(), clock=Clock())

    def test_clock_alias(self) -> None:
        """``clock=`` is accepted as the reactor."""
        from twisted.internet.task import Clock

        clock = Clock()
        factory = AMIFactory("admin", "s", clock=clock)
        self.assertIs(factory.reactor, clock)
        self.assertIs(factory.clock, clock)

    def test_bad_auth(self) -> None:
        """An unknown auth method is refused at once."""
        from twisted.internet.task import Clock

        error = self.assertRaises(ValueError, AMIFactory, "a", "s", reactor=Clock(), auth="sha")
        self.assertEqual(str(error), "auth must be 'plain' or 'md5', not 'sha'")

    def test_bad_keepalive(self) -> None:
        """A keepalive interval of zero is refused."""
        from twisted.internet.task import Clock

        self.assertRaises(ValueError, AMIFactory, "a", "s", reactor=Clock(), keepalive=0)

    def test_defaults(self) -> None:
        """The backoff caps at 30 s with jitter, keepalive is 20 s, auth failures stop."""
        from twisted.internet.task import Clock

        factory = AMIFactory("a", "s", reactor=Clock())
        self.assertEqual(
            (factory.initialDelay, factory.maxDelay, factory.keepalive),
            (1.0, 30.0, 20.0),
        )
        self.assertGreater(factory.jitter, 0)
        self.assertFalse(factory.retry_on_auth_failure)
        self.assertEqual(factory.timeout, 30.0)

    def test_backoff_options(self) -> None:
        """The snake_case backoff options set Twisted's attributes."""
        from twisted.internet.task import Clock

        factory = AMIFactory(
            "a", "s", reactor=Clock(), initial_delay=0.5, max_delay=4, factor=2, jitter=0.25
        )
        self.assertEqual(
            (factory.initialDelay, factory.delay, factory.maxDelay),
            (0.5, 0.5, 4),
        )
        self.assertEqual(
            (factory.factor, factory.jitter),
            (2, 0.25),
        )

    def test_secret_not_in_repr(self) -> None:
        """The repr names the user and state, never the secret."""
        h = Harness()
        self.assertEqual(repr(h.factory), "<AMIFactory user='admin' not ready>")
        h.log_in()
        self.assertEqual(repr(h.factory), "<AMIFactory user='admin' ready>")
        self.assertNotIn("adminsecret", repr(h.factory))


class LoginTests(SynchronousTestCase):
    """Every new connection logs in, and only a login makes the factory ready."""

    def test_plain_login(self) -> None:
        """A new connection sends Login with the user, secret and event mask."""
        h = Harness(events="call,system")
        server = h.establish()
        (login,) = server.actions()
        self.assertEqual(
            [(k, v) for k, v in login if k != "ActionID"],
            [
                ("Action", "Login"),
                ("Username", "admin"),
                ("Secret", "adminsecret"),
                ("Events", "call,system"),
            ],
        )

    def test_event_mask_forms(self) -> None:
        """A bool or a list of classes is sent as on/off or a comma list."""
        self.assertEqual(Harness(events=False).establish().actions()[0]["Events"], "off")
        classes = Harness(events=["call", "user"]).establish().actions()[0]
        self.assertEqual(classes["Events"], "call,user")

    def test_md5_login(self) -> None:
        """``auth="md5"`` asks for a Challenge and sends the md5 Key, not the secret."""
        h = Harness(auth="md5")
        server = h.establish()
        (challenge,) = server.actions()
        self.assertEqual((challenge.name, challenge["AuthType"]), ("Challenge", "MD5"))
        server.reply(challenge, Challenge="123456789")
        (login,) = server.actions()
        self.assertEqual(login["AuthType"], "MD5")
        self.assertEqual(login["Key"], _md5("123456789adminsecret"))
        self.assertNotIn("Secret", login)
        ready = h.factory.when_ready()
        server.reply(login, Message="Authentication accepted")
        self.assertIs(self.successResultOf(ready), server.protocol)

    def test_not_ready_before_login(self) -> None:
        """A bare TCP connection is not ready: no protocol_instance, when_ready waits."""
        h = Harness()
        ready = h.factory.when_ready()
        server = h.establish()
        server.send(BANNER)
        self.assertIsNone(h.factory.protocol_instance)
        self.assertNoResult(ready)
        server.answer_login()
        self.assertIs(self.successResultOf(ready), server.protocol)
        self.assertIs(h.factory.protocol_instance, server.protocol)
        self.assertTrue(server.protocol.logged_in)

    def test_when_ready_new_deferred_each_call(self) -> None:
        """Each when_ready call gets its own Deferred, all fired with the same protocol."""
        h = Harness()
        first, second = h.factory.when_ready(), h.factory.when_ready()
        self.assertIsNot(first, second)
        first.addCallback(lambda _: "consumed")
        server = h.log_in()
        self.assertEqual(self.successResultOf(first), "consumed")
        self.assertIs(self.successResultOf(second), server.protocol)
        third, fourth = h.factory.when_ready(), h.factory.when_ready()
        self.assertIsNot(third, fourth)
        self.assertIs(self.successResultOf(third), server.protocol)
        self.assertIs(self.successResultOf(fourth), server.protocol)

    def test_when_ready_cancel(self) -> None:
        """Cancelling a when_ready Deferred fails it with CancelledError and forgets it."""
        h = Harness()
        waiter = h.factory.when_ready()
        waiter.cancel()
        self.failureResultOf(waiter, CancelledError)
        self.assertEqual(h.factory._ready_waiters, [])
        h.log_in()

    def test_when_ready_after_drop_waits_for_relogin(self) -> None:
        """After a drop, when_ready waits for the next login."""
        h = Harness()
        h.log_in()
        h.drop()
        waiter = h.factory.when_ready()
        self.assertNoResult(waiter)
        h.clock.advance(1.0)
        server = h.log_in()
        self.assertIs(self.successResultOf(waiter), server.protocol)

    def test_login_timeout_drops_and_retries(self) -> None:
        """A Login left unanswered for the action timeout aborts the connection and retries."""
        h = Harness(timeout=5)
        server = h.establish()
        server.send(BANNER)
        h.clock.advance(5)
        self.assertTrue(server.transport.aborted)
        h.clock.advance(0)
        self.assertEqual(h.connector.state, "disconnected")
        self.assertIsInstance(h.factory.last_error, Failure)
        h.clock.advance(1.0)
        self.assertEqual(h.connector.attempts, 2)

    def test_protocols_share_the_dispatcher(self) -> None:
        """Every protocol the factory builds uses the factory's one dispatcher."""
        h = Harness()
        first = h.log_in().protocol
        h.drop()
        h.clock.advance(1.0)
        second = h.log_in().protocol
        self.assertIsNot(first, second)
        self.assertIs(first.dispatcher, h.factory.dispatcher)
        self.assertIs(second.dispatcher, h.factory.dispatcher)
        self.assertEqual(second.timeout, h.factory.timeout)


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()


class BackoffTests(SynchronousTestCase):
    """When the factory connects again."""

    def test_retries_after_failed_connects(self) -> None:
        """Refused attempts are retried for ever, the delay growing by factor to maxDelay."""
        h = Harness(initial_delay=1.0, factor=2.0, max_delay=10.0)
        waits = []
        for attempt in range(1, 9):
            self.assertEqual(h.connector.attempts, attempt)
            h.fail_attempt()
            (wait,) = h.pending_calls()
            waits.append(wait)
            h.run_next_call()
        self.assertEqual(waits, [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0])
        self.assertEqual(h.connector.attempts, 9)
        self.assertEqual(h.factory.connection_failures, 8)
        self.assertFalse(h.factory.stopped)

    def test_pbx_back_after_an_hour(self) -> None:
        """A server down for an hour is reconnected once it returns, and logs in."""
        h = Harness()
        ready = h.factory.when_ready()
        while h.clock.seconds() < 3600:
            h.fail_attempt()
            (wait,) = h.pending_calls()
            self.assertLessEqual(wait, 30.0)
            h.run_next_call()
        server = h.log_in()
        self.assertIs(self.successResultOf(ready), server.protocol)

    def test_delay_not_reset_by_tcp_connect(self) -> None:
        """Connections that drop before logging in keep the delay growing."""
        h = Harness(initial_delay=1.0, factor=2.0, max_delay=100.0)
        waits = []
        for _ in range(4):
            h.establish()
            h.drop()
            (wait,) = h.pending_calls()
            waits.append(wait)
            h.run_next_call()
        self.assertEqual(waits, [1.0, 2.0, 4.0, 8.0])
        self.assertEqual(h.factory.connects, 4)
        self.assertEqual(h.factory.logins, 0)

    def test_delay_reset_after_login(self) -> None:
        """A successful login resets the delay to initialDelay and the retry count."""
        h = Harness(initial_delay=1.0, factor=2.0, max_delay=100.0)
        for _ in range(3):
            h.fail_attempt()
            h.run_next_call()
        self.assertEqual((h.factory.delay, h.factory.retries), (8.0, 3))
        server = h.establish()
        server.send(BANNER)
        self.assertEqual(h.factory.delay, 8.0)
        server.answer_login()
        self.assertEqual((h.factory.delay, h.factory.retries), (1.0, 0))
        h.drop()
        self.assertEqual(h.pending_calls(), [1.0])

    def test_jitter_spreads_but_never_exceeds_max_delay(self) -> None:
        """With jitter each wait is within delay*(1±jitter) and never above maxDelay."""
        h = Harness(initial_delay=1.0, factor=2.0, max_delay=8.0, jitter=0.5)
        h.factory._random.seed(4)
        delays = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0]
        waits = []
        for delay in delays:
            h.fail_attempt()
            (wait,) = h.pending_calls()
            self.assertTrue(delay * 0.5 <= wait <= min(delay * 1.5, 8.0), (delay, wait))
            waits.append(wait)
            h.run_next_call()
        self.assertGreater(len(set(waits[3:])), 1)

    def test_max_retries(self) -> None:
        """After maxRetries failed attempts the factory gives up and fails its waiters."""
        h = Harness()
        h.factory.maxRetries = 2
        waiter = h.factory.when_ready()
        h.fail_attempt()
        h.run_next_call()
        h.fail_attempt()
        h.run_next_call()
        h.fail_attempt()
        self.assertEqual(h.pending_calls(), [])
        error = self.failureResultOf(waiter, NotConnected).value
        self.assertEqual(error.reason, "gave up after 2 failed attempts")
        self.assertTrue(h.factory.stopped)


class AuthFailureTests(SynchronousTestCase):
    """A refused login."""

    def test_not_retried_by_default(self) -> None:
        """A refused login fails when_ready with AuthenticationError and stops the factory."""
        h = Harness()
        listener = RecordingListener()
        h.factory.add_connection_listener(listener)
        waiters = [h.factory.when_ready(), h.factory.when_ready()]
        server = h.establish()
        server.answer_login(accept=False)
        for waiter in waiters:
            error = self.failureResultOf(waiter, AuthenticationError).value
            self.assertEqual((error.username, error.message), ("admin", "Authentication failed"))
        self.assertTrue(h.factory.stopped)
        h.clock.advance(0)
        self.assertTrue(server.transport.closed)
        self.assertEqual(h.pending_calls(), [])
        h.clock.advance(3600)
        self.assertEqual(h.connector.attempts, 1)
        self.assertEqual(h.factory.auth_failures, 1)
        self.assertEqual(listener.names(), ["connected", "auth_failed", "disconnected"])
        later = self.failureResultOf(h.factory.when_ready(), AuthenticationError)
        self.assertEqual(later.value.username, "admin")
        self.failureResultOf(h.factory.ping(), NotConnected)

    def test_server_closing_first(self) -> None:
        """A server that closes right after the refusal (as Asterisk does) is not retried."""
        h = Harness()
        waiter = h.factory.when_ready()
        server = h.establish()
        server.answer_login(accept=False)
        h.drop()
        self.failureResultOf(waiter, AuthenticationError)
        h.clock.advance(0)
        self.assertEqual(h.pending_calls(), [])
        self.assertEqual(h.factory.disconnects, 1)

    def test_retry_when_asked(self) -> None:
        """With retry_on_auth_failure the factory retries with backoff and waiters wait."""
        h = Harness(retry_on_auth_failure=True)
        listener = RecordingListener()
        h.factory.add_connection_listener(listener)
        waiter = h.factory.when_ready()
        h.establish().answer_login(accept=False)
        h.clock.advance(0)
        self.assertNoResult(waiter)
        self.assertFalse(h.factory.stopped)
        self.assertEqual(h.pending_calls(), [1.0])
        h.clock.advance(1.0)
        h.establish().answer_login(accept=False)
        h.clock.advance(0)
        self.assertAlmostEqual(h.pending_calls()[0], math.e)
        h.run_next_call()
        server = h.log_in()
        self.assertIs(self.successResultOf(waiter), server.protocol)
        self.assertEqual(h.factory.auth_failures, 2)
        self.assertEqual(
            listener.names(),
            ["connected", "auth_failed", "disconnected"] * 2 + ["connected", "logged_in"],
        )

    def test_refused_challenge_is_an_auth_failure(self) -> None:
        """An md5 login whose Challenge is refused fails with AuthenticationError."""
        h = Harness(auth="md5")
        waiter = h.factory.when_ready()
        server = h.establish()
        (challenge,) = server.actions()
        server.reply(challenge, "Error", Message="Must specify AuthType")
        error = self.failureResultOf(waiter, AuthenticationError).value
        self.assertEqual((error.action, error.message), ("Challenge", "Must specify AuthType"))
        self.assertTrue(h.factory.stopped)

    def test_secret_never_logged(self) -> None:
        """Neither the secret nor the md5 key appears in any log line of a failed login."""
        events = capture_log(self)
        h = Harness()
        h.establish().answer_login(accept=False)
        h.clock.advance(0)
        h2 = Harness(auth="md5", retry_on_auth_failure=True)
        server = h2.establish()
        server.reply(server.actions()[0], Challenge="abc")
        (login,) = server.actions()
        server.reply(login, "Error", Message="Authentication failed")
        text = formatted(events)
        self.assertIn("login as 'admin' refused: Authentication failed", text)
        self.assertNotIn("adminsecret", text)
        self.assertNotIn(login["Key"], text)


class StopTests(SynchronousTestCase):
    """`AMIFactory.stop`."""

    def test_logoff_then_close(self) -> None:
        """stop() sends Logoff, closes after Goodbye, and fires once the connection is gone."""
        h = Harness()
        server = h.log_in()
        server.actions()
        gone = h.factory.stop()
        self.assertIsNone(h.factory.protocol_instance)
        (logoff,) = server.actions()
        self.assertEqual(logoff.name, "Logoff")
        self.assertNoResult(gone)
        server.reply(logoff, "Goodbye", Message="Thanks for all the fish.")
        self.assertTrue(server.transport.disconnecting)
        self.assertNoResult(gone)
        h.clock.advance(0)
        self.assertIsNone(self.successResultOf(gone))
        self.assertEqual(h.pending_calls(), [])
        h.clock.advance(3600)
        self.assertEqual(h.connector.attempts, 1)

    def test_server_closes_after_goodbye(self) -> None:
        """If the server closes first (as Asterisk does after Goodbye) stop() fires too."""
        h = Harness()
        server = h.log_in()
        server.actions()
        gone = h.factory.stop()
        h.drop()
        self.assertIsNone(self.successResultOf(gone))
        self.assertEqual(h.pending_calls(), [])

    def test_unanswered_logoff_aborts(self) -> None:
        """A server that never answers Logoff is closed after stop_timeout, then aborted."""
        h = Harness()
        server = h.log_in()
        gone = h.factory.stop()
        server.transport._closing = True  # a half-open socket: a close never completes
        h.clock.advance(h.factory.stop_timeout)
        self.assertTrue(server.transport.disconnecting)
        self.assertFalse(server.transport.aborted)
        h.clock.advance(h.factory.stop_timeout)
        self.assertTrue(server.transport.aborted)
        self.assertNoResult(gone)
        server.transport.close()
        self.successResultOf(gone)
        self.assertEqual(h.pending_calls(), [])

    def test_stop_while_waiting_to_retry(self) -> None:
        """stop() during the backoff wait cancels the retry."""
        h = Harness()
        h.fail_attempt()
        self.assertEqual(h.pending_calls(), [1.0])
        self.successResultOf(h.factory.stop())
        self.assertEqual(h.pending_calls(), [])
        self.assertEqual(h.connector.attempts, 1)

    def test_stop_while_connecting(self) -> None:
        """stop() during the very first attempt abandons it and nothing retries."""
        h = Harness()
        self.successResultOf(h.factory.stop())
        self.assertEqual(h.connector.stopped_connecting, 1)
        self.assertEqual(h.pending_calls(), [])

    def test_stop_before_login(self) -> None:
        """stop() on a connection not yet logged in closes it without Logoff."""
        h = Harness()
        server = h.establish()
        server.actions()
        gone = h.factory.stop()
        self.assertEqual(server.actions(), [])
        h.clock.advance(0)
        self.successResultOf(gone)
        self.assertEqual(h.pending_calls(), [])

    def test_stop_fails_waiters_and_actions(self) -> None:
        """stop() fails when_ready with NotConnected, pending actions with ConnectionLost."""
        h = Harness()
        waiter = h.factory.when_ready()
        server = h.establish()
        server.send(BANNER)
        (login,) = server.actions()
        self.assertEqual(login.name, "Login")
        gone = h.factory.stop()
        error = self.failureResultOf(waiter, NotConnected).value
        self.assertEqual(error.reason, "the AMI factory was stopped")
        h.clock.advance(0)
        self.successResultOf(gone)
        self.failureResultOf(h.factory.when_ready(), NotConnected)
        self.failureResultOf(h.factory.send_action("Ping"), NotConnected)

    def test_login_answered_after_stop(self) -> None:
        """A login accepted after stop() restores nothing, logs no failure, is never ready."""
        events = capture_log(self)
        h = Harness(filters=["Event: Hangup"])
        listener = RecordingListener()
        h.factory.add_connection_listener(listener)
        server = h.establish()
        server.send(BANNER)
        (login,) = server.actions()
        gone = h.factory.stop()
        server.reply(login, Message="Authentication accepted")
        self.assertEqual(server.actions(), [])
        self.assertIsNone(h.factory.protocol_instance)
        h.clock.advance(0)
        self.successResultOf(gone)
        self.assertEqual(listener.names(), ["connected", "disconnected"])
        self.assertEqual(h.pending_calls(), [])
        self.assertNotIn("restor", formatted(events))

    def test_stop_twice(self) -> None:
        """A second stop() fires when the same connection is gone."""
        h = Harness()
        server = h.log_in()
        first, second = h.factory.stop(), h.factory.stop()
        server.answer_all()
        h.clock.advance(0)
        self.successResultOf(first)
        self.successResultOf(second)
        self.successResultOf(h.factory.stop())

    def test_connection_made_after_stop_is_closed(self) -> None:
        """A connection that completes after stop() is closed without logging in."""
        h = Harness()
        h.factory.stop()
        h.connector.state = "connecting"
        server = h.establish()
        self.assertEqual(server.actions(), [])
        h.clock.advance(0)
        self.assertTrue(server.transport.closed)
        self.assertEqual(h.pending_calls(), [])


class ActionTests(SynchronousTestCase):
    """Actions sent through the factory."""

    def test_not_connected(self) -> None:
        """Before the first login, actions fail at once with NotConnected."""
        h = Harness()
        error = self.failureResultOf(h.factory.send_action("Ping"), NotConnected).value
        self.assertEqual(str(error), "cannot send Ping: not logged in to the AMI server")
        self.failureResultOf(h.factory.ping(), NotConnected)
        self.failureResultOf(h.factory.command("core show version"), NotConnected)

    def test_unsafe_header_refused_offline(self) -> None:
        """A header with CR/LF raises ValueError whether or not there is a connection."""
        h = Harness()
        self.assertRaises(ValueError, h.factory.send_action, "Ping", Bad="a\r\nAction: Hangup")
        server = h.log_in()
        server.actions()
        self.assertRaises(ValueError, h.factory.send_action, "Ping", Bad="a\r\nAction: Hangup")
        self.assertEqual(server.actions(), [])

    def test_forwarded_to_current_protocol(self) -> None:
        """send_action and the typed helpers go to the logged-in protocol."""
        h = Harness()
        server = h.log_in()
        server.actions()
        pinged = h.factory.ping()
        got = h.factory.get_var("FOO", channel="SIP/1")
        ping, getvar = server.actions()
        self.assertEqual((ping.name, getvar.name, getvar["Variable"]), ("Ping", "Getvar", "FOO"))
        server.reply(ping, Ping="Pong")
        server.reply(getvar, Value="bar")
        self.assertEqual(self.successResultOf(pinged)["Ping"], "Pong")
        self.assertEqual(self.successResultOf(got), "bar")

    def test_pending_actions_fail_once_on_drop(self) -> None:
        """A drop fails each pending action once with ConnectionLost; later ones NotConnected."""
        h = Harness()
        server = h.log_in()
        server.actions()
        pending = [h.factory.ping(), h.factory.send_action("Status")]
        outcomes: list[list[Failure]] = [[], []]
        for outcome, d in zip(outcomes, pending, strict=True):
            d.addErrback(outcome.append)
        h.drop()
        self.assertEqual([len(o) for o in outcomes], [1, 1])
        self.assertEqual(
            [(o[0].type, o[0].value.action) for o in outcomes],
            [(ConnectionLost, "Ping"), (ConnectionLost, "Status")],
        )
        self.failureResultOf(h.factory.ping(), NotConnected)
        h.clock.advance(1.0)
        server = h.log_in()
        self.assertEqual([len(o) for o in outcomes], [1, 1])
        server.actions()
        h.factory.ping()
        self.assertEqual(server.names(), ["Ping"])

    def test_errback_sees_no_dead_protocol(self) -> None:
        """Code run by a failing action's errback finds no logged-in protocol."""
        h = Harness()
        h.log_in()
        seen: list[object] = []

        def check(failure: Failure) -> None:
            seen.append(h.factory.protocol_instance)
            seen.append(h.factory.when_ready())

        h.factory.ping().addErrback(check)
        h.drop()
        self.assertIsNone(seen[0])
        waiter = seen[1]
        assert isinstance(waiter, Deferred)
        self.assertNoResult(waiter)
        h.clock.advance(1.0)
        server = h.log_in()
        self.assertIs(self.successResultOf(waiter), server.protocol)


class SessionStateTests(SynchronousTestCase):
    """Handlers, event mask and filters outlive a connection."""

    def test_handler_survives_reconnect(self) -> None:
        """A handler added before the first connection gets events on every connection."""
        h = Harness()
        seen: list[str | None] = []
        h.factory.add_event_handler("Hangup", lambda event: seen.append(event.get("Channel")))
        h.log_in().event("Hangup", Channel="SIP/1")
        h.drop()
        h.clock.advance(1.0)
        h.log_in().event("Hangup", Channel="SIP/2")
        self.assertEqual(seen, ["SIP/1", "SIP/2"])

    def test_handler_glob_and_remove(self) -> None:
        """Handlers match like the protocol's; a removed handler gets nothing more."""
        h = Harness()
        seen: list[str | None] = []

        def handler(event: Message) -> None:
            seen.append(event.name)

        h.factory.add_event_handler("queue*", handler)
        server = h.log_in()
        server.event("QueueMemberAdded")
        server.event("Hangup")
        h.factory.remove_event_handler("QUEUE*", handler)
        server.event("QueueMemberRemoved")
        self.assertEqual(seen, ["QueueMemberAdded"])
        self.assertRaises(ValueError, h.factory.remove_event_handler, "queue*", handler)

    def test_events_and_filters_reapplied_before_ready(self) -> None:
        """After a reconnect, Login, then Events, then Filters go out before when_ready fires."""
        h = Harness(filters=["Event: Hangup"])
        server = h.establish()
        server.answer_login()
        (filter1,) = server.actions()
        self.assertEqual((filter1.name, filter1["Filter"]), ("Filter", "Event: Hangup"))
        self.assertIsNone(h.factory.protocol_instance)
        server.reply(filter1)
        self.assertIs(h.factory.protocol_instance, server.protocol)

        changed = h.factory.events("call")
        added = h.factory.filter("!Channel: Local/.*")
        server.answer_all()
        self.successResultOf(changed)
        self.successResultOf(added)
        self.assertEqual(h.factory.filters, ["Event: Hangup", "!Channel: Local/.*"])

        h.drop()
        h.clock.advance(1.0)
        waiter = h.factory.when_ready()
        server = h.establish()
        server.answer_login()
        restored = server.actions()
        self.assertEqual(
            [(a.name, a.get("EventMask") or a.get("Filter")) for a in restored],
            [("Events", "call"), ("Filter", "Event: Hangup"), ("Filter", "!Channel: Local/.*")],
        )
        self.assertEqual([a["Operation"] for a in restored[1:]], ["Add", "Add"])
        server.reply(restored[0], Events="On")
        server.reply(restored[1])
        self.assertNoResult(waiter)
        self.assertIsNone(h.factory.protocol_instance)
        server.reply(restored[2])
        self.assertIs(self.successResultOf(waiter), server.protocol)
        self.assertEqual([m.name for m in server.received[:1]], ["Login"])

    def test_refused_state_not_remembered(self) -> None:
        """An Events or Filter change the server refuses is not re-applied later."""
        h = Harness()
        server = h.log_in()
        server.actions()
        refused = h.factory.filter("Event: (")
        (action,) = server.actions()
        server.reply(action, "Error", Message="Filter Not Added")
        self.failureResultOf(refused, AMIError)
        self.assertEqual(h.factory.filters, [])
        h.drop()
        h.clock.advance(1.0)
        server = h.log_in()
        self.assertEqual(server.actions(), [])
        self.assertIs(h.factory.protocol_instance, server.protocol)

    def test_offline_change_fails(self) -> None:
        """An Events or Filter change with no connection fails NotConnected and is not kept."""
        h = Harness()
        self.failureResultOf(h.factory.events("off"), NotConnected)
        self.failureResultOf(h.factory.filter("Event: Hangup"), NotConnected)
        server = h.log_in()
        self.assertEqual(server.actions(), [])

    def test_restore_refused_still_ready(self) -> None:
        """A restore action the server now refuses is logged, and the factory becomes ready."""
        events = capture_log(self)
        h = Harness(filters=["Event: Hangup"])
        waiter = h.factory.when_ready()
        server = h.establish()
        server.answer_login()
        (action,) = server.actions()
        server.reply(action, "Error", Message="Permission denied")
        self.assertIs(self.successResultOf(waiter), server.protocol)
        self.assertIn(
            "could not restore session state: Filter failed: Permission denied", formatted(events)
        )

    def test_restore_timeout_drops(self) -> None:
        """A restore action left unanswered aborts the connection instead of reporting ready."""
        h = Harness(filters=["Event: Hangup"], timeout=5)
        waiter = h.factory.when_ready()
        server = h.establish()
        server.answer_login()
        h.clock.advance(5)
        self.assertTrue(server.transport.aborted)
        h.clock.advance(0)
        self.assertNoResult(waiter)
        self.assertIsNone(h.factory.protocol_instance)


class ListenerTests(SynchronousTestCase):
    """Connection listeners."""

    def test_notices_in_order(self) -> None:
        """A listener hears connection_failed, connected, logged_in and disconnected."""
        h = Harness()
        listener = RecordingListener()
        verifyObject(IConnectionListener, listener)
        h.factory.add_connection_listener(listener)
        h.fail_attempt()
        h.clock.advance(1.0)
        server = h.log_in()
        h.drop(ConnectionRefusedError())
        self.assertEqual(
            listener.names(), ["connection_failed", "connected", "logged_in", "disconnected"]
        )
        self.assertIs(listener.calls[1][1], server.protocol)
        self.assertIs(listener.calls[2][1], server.protocol)
        reason = listener.calls[3][1]
        assert isinstance(reason, Failure)
        self.assertIsInstance(reason.value, ConnectionRefusedError)

    def test_read_end_handler(self) -> None:
        """A read-end handler on the factory runs after each read of its connections."""
        h = Harness()
        got: list[str | None] = []
        h.factory.add_event_handler("*", lambda event: got.append(event.name))
        h.factory.add_read_end_handler(lambda: got.append("end"))
        server = h.log_in()
        got.clear()
        server.send(b"Event: A\r\n\r\nEvent: B\r\n\r\n")
        self.assertEqual(got, ["A", "B", "end"])
        self.assertRaises(ValueError, h.factory.remove_read_end_handler, got.clear)

    def test_partial_listener(self) -> None:
        """A listener with only some of the methods gets just those."""
        h = Harness()
        seen: list[object] = []

        class OnlyDisconnects:
            def disconnected(self, reason: object) -> None:
                seen.append(reason)

        h.factory.add_connection_listener(OnlyDisconnects())
        h.log_in()
        h.drop()
        self.assertEqual(len(seen), 1)

    def test_raising_listener_is_logged(self) -> None:
        """A listener that raises is logged; the next listener and the login go on."""
        h = Harness()

        class Broken:
            def connected(self, protocol: object) -> None:
                raise RuntimeError("boom")

        later = RecordingListener()
        h.factory.add_connection_listener(Broken())
        h.factory.add_connection_listener(later)
        waiter = h.factory.when_ready()
        h.log_in()
        self.successResultOf(waiter)
        self.assertEqual(later.names(), ["connected", "logged_in"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_remove(self) -> None:
        """A removed listener hears nothing more."""
        h = Harness()
        listener = RecordingListener()
        h.factory.add_connection_listener(listener)
        h.factory.remove_connection_listener(listener)
        h.log_in()
        self.assertEqual(listener.calls, [])
        self.assertRaises(ValueError, h.factory.remove_connection_listener, listener)


class CounterTests(SynchronousTestCase):
    """The factory's counters add up across connections."""

    def test_counters(self) -> None:
        """connects, logins, disconnects, actions_sent and events_received span connections."""
        h = Harness()
        h.fail_attempt()
        h.clock.advance(1.0)
        server = h.log_in()
        pings = [h.factory.ping()]
        server.event("Hangup")
        server.event("Newchannel")
        self.assertEqual((h.factory.actions_sent, h.factory.events_received), (2, 2))
        h.drop()
        h.clock.advance(1.0)
        server = h.log_in()
        server.event("Hangup")
        pings += [h.factory.ping(), h.factory.ping()]
        f = h.factory
        self.assertEqual(
            (f.connects, f.connection_failures, f.logins, f.disconnects),
            (2, 1, 2, 1),
        )
        self.assertEqual((f.actions_sent, f.events_received), (5, 3))
        h.drop()
        self.assertEqual((f.actions_sent, f.events_received, f.disconnects), (5, 3, 2))
        for ping in pings:
            self.failureResultOf(ping, ConnectionLost)


class LoginAcceptedTests(SynchronousTestCase):
    """Odds and ends of the login path."""

    def test_ready_protocol_is_an_amiprotocol(self) -> None:
        """The protocol when_ready gives is an AMIProtocol, logged in as the user."""
        h = Harness()
        waiter = h.factory.when_ready()
        h.log_in()
        protocol = self.successResultOf(waiter)
        self.assertIsInstance(protocol, AMIProtocol)
        self.assertEqual((protocol.username, protocol.ami_version), ("admin", "9.0.0"))

    def test_action_timeout_option(self) -> None:
        """``timeout`` is every connection's action timeout."""
        h = Harness(timeout=7)
        server = h.log_in()
        server.actions()
        d = h.factory.ping()
        h.clock.advance(7)
        self.assertEqual(self.failureResultOf(d, ActionTimeout).value.timeout, 7)

    def test_drop_reason_recorded(self) -> None:
        """last_error is the reason of the latest lost connection."""
        h = Harness()
        h.log_in()
        h.drop(ConnectionDone())
        assert h.factory.last_error is not None
        self.assertIsInstance(h.factory.last_error.value, ConnectionDone)
