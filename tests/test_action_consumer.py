"""
Tests for txami.daemon.actionconsumer: requests read from Redis, the side-effect guard,
the replies and acknowledgements, against fake Redis connections and a fake PBX session.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txami.daemon.actionconsumer import ActionConsumer
from txami.daemon.config import RedisConfig
from txami.daemon.metrics import Metrics
from txami.daemon.redisconn import RedisError, RedisNotConnected
from txami.errors import ActionTimeout, ConnectionLost
from txami.message import Message

KEY = "txami:{east}:actions"
#: The headers of an asynchronous Originate (a synchronous one is refused).
ASYNC = '{"Async": "true"}'


class FakeConnection:
    """Records each command with the Deferred its answer fires."""

    def __init__(self) -> None:
        self.connected = True
        self.listeners: list[Any] = []
        self.calls: list[tuple[tuple[Any, ...], Deferred[Any]]] = []

    def add_listener(self, listener: Any) -> None:
        self.listeners.append(listener)

    def execute(self, *args: Any, blocking: bool = False) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.calls.append((args, d))
        return d

    def take(self, command: str) -> tuple[tuple[Any, ...], Deferred[Any]]:
        """The oldest unanswered call of ``command`` (removed)."""
        for index, (args, _d) in enumerate(self.calls):
            if args[0] == command:
                return self.calls.pop(index)
        raise AssertionError(f"no {command} in {[a[0] for a, _ in self.calls]}")

    def commands(self) -> list[str]:
        return [args[0] for args, _ in self.calls]


class FakeFactory:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], Deferred[Message]]] = []

    def send_action(self, name: str, headers: Any = None, **options: Any) -> Deferred[Message]:
        d: Deferred[Message] = Deferred()
        self.sent.append((name, dict(headers or {}), d))
        return d


class FakeSession:
    def __init__(self) -> None:
        self.factory = FakeFactory()
        self.metrics = Metrics(pbx="east")


class ConsumerTests(SynchronousTestCase):
    """One PBX, east; its request stream read by a consumer on a Clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000.0)
        self.reader = FakeConnection()
        self.writer = FakeConnection()
        self.session = FakeSession()
        config = RedisConfig(consumer="c1", guard_ttl=60)
        self.consumer = ActionConsumer(
            self.clock,
            self.reader,
            self.writer,
            {"east": self.session},
            config,  # type: ignore[arg-type, dict-item]
        )
        self.consumer.startService()
        args, d = self.reader.take("XGROUP")
        self.assertEqual(args, ("XGROUP", "CREATE", KEY, "txami", "0", "MKSTREAM"))
        d.errback(RedisError("BUSYGROUP Consumer Group name already exists"))
        args, d = self.reader.take("XREADGROUP")
        self.assertEqual(
            args, ("XREADGROUP", "GROUP", "txami", "c1", "COUNT", "64", "STREAMS", KEY, "0")
        )
        d.callback([[KEY, []]])

    def read(self, *entries: tuple[str, dict[str, str]]) -> None:
        """Answer the blocking read with ``entries``."""
        args, d = self.reader.take("XREADGROUP")
        self.assertEqual(args[6:8], ("BLOCK", "5000"))
        self.assertEqual(args[-1], ">")
        flat = [
            [entry_id, [x for pair in fields.items() for x in pair]]
            for entry_id, fields in entries
        ]
        d.callback([[KEY, flat]])

    def request(self, action: str, headers: str = "{}", **more: str) -> dict[str, str]:
        fields = {
            "id": "r1",
            "action": action,
            "headers": headers,
            "reply_to": "replies",
            "deadline": str(int((self.clock.seconds() + 10) * 1000)),
        }
        fields.update(more)
        return fields

    def reply(self) -> tuple[str, dict[str, Any]]:
        """The reply added (answered), then the XACK (answered); returns (outcome, json)."""
        args, d = self.writer.take("XADD")
        self.assertEqual(args[:8], ("XADD", "replies", "MAXLEN", "~", "10000", "*", "id", "r1"))
        d.callback("1-1")
        ack, d = self.writer.take("XACK")
        self.assertEqual(ack, ("XACK", KEY, "txami", "5-0"))
        d.callback(1)
        return args[9], json.loads(args[11])

    def test_side_effect_action_round_trip(self) -> None:
        """An Originate is guarded with SET NX, sent, answered ok, then acknowledged."""
        self.read(("5-0", self.request("Originate", '{"Channel": "PJSIP/100", "Async": true}')))
        args, d = self.writer.take("SET")
        self.assertEqual(args, ("SET", "txami:{east}:guard:r1", "1", "NX", "EX", "60"))
        d.callback("OK")
        [(name, headers, sent)] = self.session.factory.sent
        self.assertEqual((name, headers), ("Originate", {"Channel": "PJSIP/100", "Async": True}))
        sent.callback(Message([("Response", "Success"), ("Message", "Originate queued")]))
        outcome, body = self.reply()
        self.assertEqual((outcome, body["response"]["Message"]), ("ok", "Originate queued"))
        self.assertEqual(self.session.metrics.redis_actions_by_outcome(), {("Originate", "ok"): 1})

    def test_redelivered_side_effect_action_is_unknown(self) -> None:
        """A request whose guard exists is answered unknown and never sent."""
        self.read(("5-0", self.request("Originate", ASYNC)))
        _, d = self.writer.take("SET")
        d.callback(None)
        self.assertEqual(self.session.factory.sent, [])
        outcome, body = self.reply()
        self.assertEqual((outcome, body["error"]), ("unknown", "redelivered"))

    def test_read_only_action_is_not_guarded(self) -> None:
        """A Ping is sent without a guard (a redelivered one simply runs again)."""
        self.read(("5-0", self.request("Ping")))
        self.assertNotIn("SET", self.writer.commands())
        [(_, _, sent)] = self.session.factory.sent
        sent.callback(Message([("Response", "Success"), ("Ping", "Pong")]))
        self.assertEqual(self.reply()[0], "ok")

    def test_expired(self) -> None:
        """A request past its deadline is answered expired and not sent."""
        self.read(("5-0", self.request("Originate", ASYNC, deadline=str(999_000))))
        self.assertEqual(
            self.reply(), ("expired", {"error": "expired", "message": "the deadline has passed"})
        )
        self.assertEqual(self.session.factory.sent, [])

    def test_refused_requests(self) -> None:
        """Reserved actions, bad headers and bad deadlines are errors; nothing is sent."""
        for fields, error in [
            (self.request("Login"), "reserved_action"),
            (self.request("waitevent"), "reserved_action"),
            (self.request("Originate", "[1]"), "bad_request"),
            (self.request("Originate", "{"), "bad_request"),
            (self.request("Originate", ASYNC, deadline="soon"), "bad_request"),
            (self.request("Originate", '{"Action": "Logoff"}'), "bad_request"),
            (self.request("Ping", '{"ActionID": "other-client-1"}'), "bad_request"),
        ]:
            self.read(("5-0", fields))
            outcome, body = self.reply()
            self.assertEqual((outcome, body["error"]), ("error", error), fields)
        self.assertEqual(self.session.factory.sent, [])

    def test_names_asterisk_would_read_as_another(self) -> None:
        """A name with a space or control character (Asterisk skips leading ones) is refused."""
        for name in (" Logoff", "\tEvents", "\x01Filter", "Ping ", "Queue Pause"):
            self.read(("5-0", self.request(name)))
            outcome, body = self.reply()
            self.assertEqual((outcome, body["error"]), ("error", "bad_request"), name)
        self.assertEqual(self.session.factory.sent, [])

    def test_synchronous_originate_refused(self) -> None:
        """An Originate without Async (it would hold the shared session) is not sent."""
        self.read(("5-0", self.request("Originate", '{"Channel": "PJSIP/100"}')))
        outcome, body = self.reply()
        self.assertEqual((outcome, body["error"]), ("error", "bad_request"))
        self.assertEqual(self.session.factory.sent, [])

    def test_request_without_reply_to(self) -> None:
        """A request that cannot be answered is acknowledged and dropped."""
        fields = self.request("Ping")
        del fields["reply_to"]
        self.read(("5-0", fields))
        self.assertEqual(self.writer.commands(), ["XACK"])
        self.read(("6-0", self.request("Ping", reply_to="txami:{east}:events")))
        self.assertEqual(self.writer.commands(), ["XACK", "XACK"])

    def test_outcomes_of_failures(self) -> None:
        """Timeout is timeout; a lost connection is unknown for Originate, error for Ping."""
        for action, error, expected in [
            ("Originate", ActionTimeout("Originate", "x.1", 5.0), "timeout"),
            ("Originate", ConnectionLost("Originate", "gone"), "unknown"),
            ("Ping", ConnectionLost("Ping", "gone"), "error"),
        ]:
            self.read(("5-0", self.request(action, ASYNC if action == "Originate" else "{}")))
            if action == "Originate":
                self.writer.take("SET")[1].callback("OK")
            self.session.factory.sent.pop()[2].errback(Failure(error))  # type: ignore[no-untyped-call]
            self.assertEqual(self.reply()[0], expected, action)

    def test_guard_unreachable_leaves_the_request_pending(self) -> None:
        """If the guard cannot be set, nothing is sent, answered or acknowledged."""
        self.read(("5-0", self.request("Originate", ASYNC)))
        self.writer.take("SET")[1].errback(RedisNotConnected("down"))
        self.assertEqual((self.session.factory.sent, self.writer.calls), ([], []))
        self.assertEqual(self.consumer.active, set())

    def test_running_requests_are_not_read_twice(self) -> None:
        """After a reconnect, pending requests still running are skipped."""
        self.read(("5-0", self.request("Ping")))
        self.reader.take("XREADGROUP")  # the next blocking read, lost with the connection
        self.consumer.redis_lost()
        self.consumer.redis_ready(self.reader)  # type: ignore[arg-type]
        self.reader.take("XGROUP")[1].callback("OK")
        args, d = self.reader.take("XREADGROUP")
        self.assertEqual(args[-1], "0")
        d.callback([[KEY, [["5-0", ["id", "r1", "action", "Ping"]]]]])
        self.assertEqual(len(self.session.factory.sent), 1)
        args, d = self.reader.take("XREADGROUP")
        self.assertEqual(args[-1], "5-0")
