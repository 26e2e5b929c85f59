"""
Tests for txami.daemon.actionconsumer: requests read from Redis, the side-effect guard,
the replies and acknowledgements (one transaction), the claiming of abandoned requests,
against fake Redis connections and a fake PBX session.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txami.daemon.actionconsumer import GUARDED_REPLY, ActionConsumer
from txami.daemon.config import RedisConfig
from txami.daemon.metrics import Metrics
from txami.daemon.redisconn import RedisError, RedisNotConnected
from txami.errors import ActionTimeout, ConnectionLost
from txami.message import Message

KEY = "txami:{east}:actions"
GUARD = "txami:{east}:guard:r1"
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

    def take_transaction(self) -> list[tuple[tuple[Any, ...], Deferred[Any]]]:
        """The oldest MULTI .. EXEC run of calls (removed); nothing else came between them."""
        start = self.commands().index("MULTI")
        end = self.commands().index("EXEC", start)
        calls = self.calls[start : end + 1]
        del self.calls[start : end + 1]
        return calls


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


class ConsumerTestCase(SynchronousTestCase):
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
        self.claim(self.reader, ["0-0", [], []])
        self.pending([])

    def claim(self, connection: FakeConnection, reply: Any, cursor: str = "0-0") -> None:
        """Answer the XAUTOCLAIM (requests idle for 60 s) on ``connection`` with ``reply``."""
        args, d = connection.take("XAUTOCLAIM")
        self.assertEqual(
            args,
            ("XAUTOCLAIM", KEY, "txami", "c1", "60000", cursor, "COUNT", "64", "JUSTID"),
        )
        d.callback(reply)

    def pending(self, entries: list[Any], cursor: str = "0", count: int = 64) -> None:
        """Answer the read of this consumer's pending requests from ``cursor``."""
        args, d = self.reader.take("XREADGROUP")
        self.assertEqual(
            args,
            ("XREADGROUP", "GROUP", "txami", "c1", "COUNT", str(count), "STREAMS", KEY, cursor),
        )
        d.callback([[KEY, entries]])

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

    def reply(
        self, guard: bool = False, entry: str = "5-0", answer: Any = 1, script: bool = True
    ) -> tuple[str, dict[str, Any]]:
        """
        The reply, answered: a guarded request's `GUARDED_REPLY` script (with
        ``answer``), else a transaction: MULTI, XADD, the guard set
        ``replied`` (if ``guard``: a Redis without scripts), XACK, EXEC.
        Returns the reply's (outcome, json).
        """
        if guard and script:
            args, d = self.writer.take("EVAL")
            self.assertEqual(args[1:3], (GUARDED_REPLY, "3"))
            self.assertEqual(args[3:6], (GUARD, "replies", KEY))
            self.assertEqual(args[6:10], (f"replied {entry}", "60", "10000", "r1"))
            self.assertEqual(args[12:], ("txami", entry))
            d.callback(answer)
            return args[10], json.loads(args[11])
        calls = self.writer.take_transaction()
        commands = [args for args, _ in calls]
        self.assertEqual(
            [args[0] for args in commands],
            ["MULTI", "XADD", *(["SET"] if guard else []), "XACK", "EXEC"],
        )
        xadd = commands[1]
        self.assertEqual(xadd[:8], ("XADD", "replies", "MAXLEN", "~", "10000", "*", "id", "r1"))
        if guard:
            self.assertEqual(commands[2], ("SET", GUARD, f"replied {entry}", "EX", "60"))
        self.assertEqual(commands[-2], ("XACK", KEY, "txami", entry))
        for index, (_, d) in enumerate(calls[:-1]):
            d.callback("OK" if index == 0 else "QUEUED")
        calls[-1][1].callback(["1-1", *(["OK"] if guard else []), 1])
        return xadd[9], json.loads(xadd[11])


class ConsumerTests(ConsumerTestCase):
    """Requests, their guard, replies and acknowledgements."""

    def test_side_effect_action_round_trip(self) -> None:
        """An Originate is guarded with SET NX, sent, answered ok, then acknowledged."""
        self.read(("5-0", self.request("Originate", '{"Channel": "PJSIP/100", "Async": true}')))
        args, d = self.writer.take("SET")
        self.assertEqual(args, ("SET", GUARD, "sent 5-0", "NX", "EX", "60"))
        d.callback("OK")
        [(name, headers, sent)] = self.session.factory.sent
        self.assertEqual((name, headers), ("Originate", {"Channel": "PJSIP/100", "Async": True}))
        sent.callback(Message([("Response", "Success"), ("Message", "Originate queued")]))
        outcome, body = self.reply(guard=True)
        self.assertEqual((outcome, body["response"]["Message"]), ("ok", "Originate queued"))
        self.assertEqual(self.session.metrics.redis_actions_by_outcome(), {("Originate", "ok"): 1})
        self.assertEqual((self.writer.calls, self.consumer.active), ([], set()))

    def originated(self) -> None:
        """An Originate guarded, sent and answered ok by the PBX; its reply not yet written."""
        self.read(("5-0", self.request("Originate", ASYNC)))
        self.writer.take("SET")[1].callback("OK")
        self.session.factory.sent.pop()[2].callback(Message([("Response", "Success")]))

    def test_guarded_reply_answered_meanwhile(self) -> None:
        """The script found the guard replied (another consumer answered): logged, nothing more."""
        self.originated()
        with capturedLogs() as events:
            self.reply(guard=True, answer=0)
        [event] = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual((event["id"], event["entry"], event["outcome"]), ("r1", "5-0", "ok"))
        self.assertIn("answered meanwhile by another consumer", formatEvent(event))
        self.assertEqual((self.writer.calls, self.consumer.active), ([], set()))

    def test_guarded_reply_to_not_a_stream(self) -> None:
        """The script's XADD refused (reply_to not a stream) is logged; the request stays acked."""
        self.originated()
        with capturedLogs() as events:
            self.reply(guard=True, answer="WRONGTYPE Key is not a stream")
        [event] = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(event["why"], "WRONGTYPE Key is not a stream")
        self.assertEqual((self.writer.calls, self.consumer.active), ([], set()))

    def test_guarded_reply_not_written_leaves_the_request_pending(self) -> None:
        """A script that did not run (Redis gone) neither answers nor acknowledges."""
        self.originated()
        self.writer.take("EVAL")[1].errback(RedisNotConnected("gone"))
        self.assertEqual((self.writer.calls, self.consumer.active), ([], set()))

    def test_guarded_reply_unexpected_answer(self) -> None:
        """A script answer not 1, 0 or an error text is logged; the request is left pending."""
        self.originated()
        with capturedLogs() as events:
            self.reply(guard=True, answer=[1])
        [event] = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(event["why"], "the reply's script answered [1]")
        self.assertEqual((self.writer.calls, self.consumer.active), ([], set()))

    def refused(self, refusal: str) -> None:
        """Redis refuses the script with ``refusal``: said once; guarded replies become a MULTI."""
        self.originated()
        with capturedLogs() as events:
            self.writer.take("EVAL")[1].errback(RedisError(refusal))
            outcome, _ = self.reply(guard=True, script=False)
            self.read(("6-0", self.request("Originate", ASYNC, id="r2")))
            self.writer.take("SET")[1].callback("OK")
            self.session.factory.sent.pop()[2].callback(Message([("Response", "Success")]))
        self.assertEqual(outcome, "ok")
        [error] = [e for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(error["why"], refusal)
        # The next guarded reply is a transaction at once.
        calls = self.writer.take_transaction()
        self.assertEqual([args[0] for args, _ in calls], ["MULTI", "XADD", "SET", "XACK", "EXEC"])
        self.assertEqual(calls[2][0][1], "txami:{east}:guard:r2")

    def test_acl_without_eval(self) -> None:
        """A Redis user not allowed EVAL: the reply falls back to a transaction from then on."""
        self.refused("NOPERM User txami has no permissions to run the 'eval' command")

    def test_eval_renamed(self) -> None:
        """A Redis whose EVAL is renamed away: the reply falls back to a transaction."""
        self.refused("ERR unknown command 'EVAL', with args beginning with: ")

    def test_script_failure_is_not_a_refusal(self) -> None:
        """Another error of the script (Redis busy) leaves the request pending; scripts stay on."""
        self.originated()
        self.writer.take("EVAL")[1].errback(RedisError("BUSY Redis is busy running a script"))
        self.assertEqual((self.writer.calls, self.consumer.active), ([], set()))
        self.assertTrue(self.consumer._can_script)

    def redelivered(self, guard: str | None) -> None:
        """Deliver an Originate whose guard is already set, reading ``guard``."""
        self.read(("5-0", self.request("Originate", ASYNC)))
        self.writer.take("SET")[1].callback(None)
        args, d = self.writer.take("GET")
        self.assertEqual(args, ("GET", GUARD))
        d.callback(guard)
        self.assertEqual(self.session.factory.sent, [])

    def test_redelivered_side_effect_action_is_unknown(self) -> None:
        """A sent but unanswered request comes back: unknown, never sent, guard marked replied."""
        self.redelivered("sent 5-0")
        outcome, body = self.reply(guard=True)
        self.assertEqual((outcome, body["error"]), ("unknown", "redelivered"))

    def test_request_id_of_another_entry_is_unknown(self) -> None:
        """A new entry reusing a guarded id is unknown, and leaves the other entry's guard."""
        for guard in ("sent 4-0", "replied 4-0", None):
            self.redelivered(guard)
            outcome, body = self.reply(guard=False)
            self.assertEqual((outcome, body["error"]), ("unknown", "redelivered"), guard)

    def test_answered_request_is_not_answered_again(self) -> None:
        """An entry whose guard reads replied (this entry) is acknowledged with no reply."""
        self.redelivered("replied 5-0")
        args, d = self.writer.take("XACK")
        self.assertEqual(args, ("XACK", KEY, "txami", "5-0"))
        d.callback(1)
        self.assertEqual(self.writer.calls, [])
        self.assertEqual(self.session.metrics.redis_actions_by_outcome(), {})
        self.assertEqual(self.consumer.active, set())

    def test_read_only_action_is_not_guarded(self) -> None:
        """A Ping is sent without a guard (a redelivered one simply runs again)."""
        self.read(("5-0", self.request("Ping")))
        self.assertNotIn("SET", self.writer.commands())
        [(_, _, sent)] = self.session.factory.sent
        sent.callback(Message([("Response", "Success"), ("Ping", "Pong")]))
        self.assertEqual(self.reply()[0], "ok")

    def test_expired(self) -> None:
        """A request past its deadline is answered expired (after its guard) and not sent."""
        expired = ("expired", {"error": "expired", "message": "the deadline has passed"})
        self.read(("5-0", self.request("Originate", ASYNC, deadline=str(999_000))))
        self.writer.take("SET")[1].callback("OK")
        self.assertEqual(self.reply(guard=True), expired)
        self.read(("5-0", self.request("Ping", deadline=str(999_000))))
        self.assertEqual(self.reply(), expired)
        self.assertEqual(self.session.factory.sent, [])

    def test_sent_before_and_expired_is_unknown(self) -> None:
        """Delivered again after its deadline, a request sent before is unknown, not expired."""
        self.read(("5-0", self.request("Originate", ASYNC, deadline=str(999_000))))
        self.writer.take("SET")[1].callback(None)
        self.writer.take("GET")[1].callback("sent 5-0")
        outcome, body = self.reply(guard=True)
        self.assertEqual((outcome, body["error"]), ("unknown", "redelivered"))

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
            self.assertEqual(self.reply(guard=action == "Originate")[0], expected, action)

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
        self.claim(self.reader, ["0-0", [], []])
        self.pending([["5-0", ["id", "r1", "action", "Ping"]]], count=63)
        self.assertEqual(len(self.session.factory.sent), 1)
        self.assertEqual(self.reader.take("XREADGROUP")[0][-1], "5-0")

    def test_reply_not_written_leaves_the_request_pending(self) -> None:
        """A transaction that did not run (Redis gone) neither answers nor acknowledges."""
        self.read(("5-0", self.request("Ping")))
        self.session.factory.sent.pop()[2].callback(Message([("Response", "Success")]))
        calls = self.writer.take_transaction()
        self.assertEqual([args[0] for args, _ in calls], ["MULTI", "XADD", "XACK", "EXEC"])
        for _, d in calls:
            d.errback(RedisNotConnected("gone"))
        self.assertEqual((self.writer.calls, self.consumer.active), ([], set()))

    def test_reply_to_not_a_stream(self) -> None:
        """A reply Redis refused inside the transaction is logged; the request stays acked."""
        self.read(("5-0", self.request("Ping")))
        self.session.factory.sent.pop()[2].callback(Message([("Response", "Success")]))
        calls = self.writer.take_transaction()
        for _, d in calls[:-1]:
            d.callback("QUEUED")
        calls[-1][1].callback([RedisError("WRONGTYPE not a stream"), 1])
        self.assertEqual((self.writer.calls, self.consumer.active), ([], set()))


class ClaimTests(ConsumerTestCase):
    """Requests left pending by other consumers, claimed at start and every 30 s."""

    def test_claimed_at_start_in_pages(self) -> None:
        """The start-up claim pages on its cursor; the pending read then reads what it got."""
        self.reader.take("XREADGROUP")  # lost with the connection
        self.consumer.redis_lost()
        self.consumer.redis_ready(self.reader)  # type: ignore[arg-type]
        self.reader.take("XGROUP")[1].callback("OK")
        self.claim(self.reader, ["7-0", ["3-0", "4-0"], []])
        self.claim(self.reader, ["0-0", ["8-0"], ["6-0"]], cursor="7-0")
        self.assertEqual(self.consumer.claimed, 3)
        self.assertEqual(self.session.metrics.redis_actions_claimed, 3)
        ping = ["id", "r1", "action", "Ping", "reply_to", "replies"]
        self.pending([["3-0", ping], ["4-0", None]])
        # A claimed entry deleted meanwhile (Redis < 7 claims those) is only acknowledged.
        self.assertEqual(self.writer.take("XACK")[0], ("XACK", KEY, "txami", "4-0"))
        self.assertEqual(len(self.session.factory.sent), 1)
        self.pending([], cursor="4-0", count=63)
        self.assertEqual(self.reader.take("XREADGROUP")[0][-1], ">")

    def test_claimed_every_half_claim_idle(self) -> None:
        """Every 30 s the writer claims; the blocked read returns, then pending ones are read."""
        self.clock.advance(29.0)
        self.assertNotIn("XAUTOCLAIM", self.writer.commands())
        self.clock.advance(1.0)
        self.claim(self.writer, ["0-0", ["3-0"], []])
        # The blocking read returns a new request: handled, then the claimed ones are read.
        self.read(("9-0", self.request("Ping")))
        self.pending([["3-0", ["id", "r2", "action", "Ping", "reply_to", "replies"]]], count=63)
        self.assertEqual([name for name, _, _ in self.session.factory.sent], ["Ping", "Ping"])
        self.pending([], cursor="3-0", count=62)
        self.assertEqual(self.reader.take("XREADGROUP")[0][-1], ">")

    def test_running_requests_are_touched(self) -> None:
        """A round first resets the idle time of the requests running here, then claims."""
        self.read(("5-0", self.request("Ping")), ("6-0", self.request("Ping")))
        self.clock.advance(30.0)
        args, d = self.writer.take("XCLAIM")
        self.assertEqual(args, ("XCLAIM", KEY, "txami", "c1", "0", "5-0", "6-0", "JUSTID"))
        self.assertNotIn("XAUTOCLAIM", self.writer.commands())
        d.callback(["5-0", "6-0"])
        self.claim(self.writer, ["0-0", [], []])
        # Nothing claimed: the next read stays a blocking one.
        self.read()
        self.assertEqual(self.reader.take("XREADGROUP")[0][6:8], ("BLOCK", "5000"))

    def test_claim_during_a_pending_read_reads_again(self) -> None:
        """Requests claimed while pending ones are being read are read by a second pass."""
        self.read(("5-0", self.request("Ping")))
        self.reader.take("XREADGROUP")  # lost with the connection
        self.consumer.redis_lost()
        self.consumer.redis_ready(self.reader)  # type: ignore[arg-type]
        self.reader.take("XGROUP")[1].callback("OK")
        self.claim(self.reader, ["0-0", [], []])
        self.clock.advance(30.0)
        self.writer.take("XCLAIM")[1].callback(["5-0"])
        self.claim(self.writer, ["0-0", ["2-0"], []])
        self.pending([], count=63)
        self.pending([["2-0", ["id", "r2", "action", "Ping", "reply_to", "replies"]]], count=63)
        self.assertEqual(len(self.session.factory.sent), 2)

    def test_one_round_at_a_time(self) -> None:
        """A round still waiting for Redis holds the next one back."""
        self.clock.advance(30.0)
        self.clock.advance(30.0)
        self.assertEqual(self.writer.commands(), ["XAUTOCLAIM"])
        self.claim(self.writer, ["0-0", [], []])
        self.clock.advance(30.0)
        self.assertEqual(self.writer.commands(), ["XAUTOCLAIM"])

    def test_claim_failure_is_not_fatal(self) -> None:
        """A refused claim is logged and the next round tries again."""
        self.clock.advance(30.0)
        self.writer.take("XAUTOCLAIM")[1].errback(RedisError("LOADING"))
        self.clock.advance(30.0)
        self.assertEqual(self.writer.commands(), ["XAUTOCLAIM"])

    def test_connection_lost_during_a_round(self) -> None:
        """A round cut by a lost connection ends quietly; the next one runs."""
        self.clock.advance(30.0)
        self.writer.take("XAUTOCLAIM")[1].errback(RedisNotConnected("gone"))
        self.clock.advance(30.0)
        self.claim(self.writer, ["0-0", [], []])
        self.assertEqual(self.flushLoggedErrors(), [])

    def restart(self) -> None:
        """The reader reconnects: groups made, then the start-up claim is sent."""
        self.reader.take("XREADGROUP")  # lost with the connection
        self.consumer.redis_lost()
        self.consumer.redis_ready(self.reader)  # type: ignore[arg-type]
        self.reader.take("XGROUP")[1].callback("OK")

    def test_start_up_claim_lost(self) -> None:
        """The connection lost during the start-up claim: nothing is read until it is back."""
        self.restart()
        self.reader.take("XAUTOCLAIM")[1].errback(RedisNotConnected("gone"))
        self.assertEqual(self.reader.calls, [])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_odd_claim_answer(self) -> None:
        """An answer that is no XAUTOCLAIM reply is logged; the pending read goes on."""
        self.restart()
        self.reader.take("XAUTOCLAIM")[1].callback(42)
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)
        self.pending([])

    def test_redis_without_xautoclaim(self) -> None:
        """A Redis before 6.2 refuses XAUTOCLAIM: claiming stops, reading goes on."""
        self.clock.advance(30.0)
        self.writer.take("XAUTOCLAIM")[1].errback(
            RedisError("unknown command 'XAUTOCLAIM', with args beginning with: ")
        )
        self.clock.advance(300.0)
        self.assertEqual(self.writer.calls, [])
        self.read(("5-0", self.request("Ping")))
        self.assertEqual(len(self.session.factory.sent), 1)

    def test_no_round_while_redis_is_down(self) -> None:
        """With the writer disconnected no round starts."""
        self.writer.connected = False
        self.clock.advance(60.0)
        self.assertEqual(self.writer.calls, [])

    def test_stopped(self) -> None:
        """Stopping the consumer stops its rounds."""
        self.consumer.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ClaimOffTests(SynchronousTestCase):
    """``claim-idle = 0``: nothing is ever claimed."""

    def test_off(self) -> None:
        """No XAUTOCLAIM at start, none later, and no timer."""
        clock, reader, writer = Clock(), FakeConnection(), FakeConnection()
        consumer = ActionConsumer(
            clock,
            reader,  # type: ignore[arg-type]
            writer,  # type: ignore[arg-type]
            {"east": FakeSession()},  # type: ignore[dict-item]
            RedisConfig(consumer="c1", claim_idle=0),
        )
        consumer.startService()
        reader.take("XGROUP")[1].callback("OK")
        self.assertEqual(reader.commands(), ["XREADGROUP"])
        self.assertEqual(clock.getDelayedCalls(), [])
