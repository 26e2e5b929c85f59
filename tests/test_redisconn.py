"""Tests for txami.daemon.redisconn: the reply parser, the command encoding and the watchdog."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.redisserver import SKIP
from txami.daemon.config import RedisConfig
from txami.daemon.redisconn import (
    SEND_LIMIT,
    RedisConnection,
    RedisNotConnected,
    _Incomplete,
    _parse_reply,
    _protocol_class,
)


class ParserTests(SynchronousTestCase):
    """_parse_reply reads RESP2 replies, text stays text and numbers stay text."""

    def parse(self, data: bytes) -> Any:
        value, position = _parse_reply(data, 0, ValueError)
        self.assertEqual(position, len(data))
        return value

    def test_kinds(self) -> None:
        """Status, error, integer, bulk (UTF-8 or not), null and nested arrays."""
        self.assertEqual(self.parse(b"+OK\r\n"), "OK")
        self.assertEqual(self.parse(b":42\r\n"), 42)
        self.assertEqual(self.parse(b"$13\r\n1700000000.42\r\n"), "1700000000.42")
        self.assertEqual(self.parse(b"$2\r\n\xe9x\r\n"), b"\xe9x")
        self.assertIsNone(self.parse(b"$-1\r\n"))
        self.assertIsNone(self.parse(b"*-1\r\n"))
        self.assertEqual(
            self.parse(b"*2\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\na\r\n$0\r\n\r\n$1\r\nb\r\n"),
            [["1-1", ["a", ""]], "b"],
        )
        error = self.parse(b"-ERR no such key\r\n")
        self.assertEqual((type(error), str(error)), (ValueError, "no such key"))
        self.assertEqual(str(self.parse(b"-BUSYGROUP exists\r\n")), "BUSYGROUP exists")

    def test_incomplete(self) -> None:
        """A reply cut anywhere is incomplete, never wrong."""
        whole = b"*2\r\n$3\r\nabc\r\n:1\r\n"
        for cut in range(len(whole)):
            with self.assertRaises(_Incomplete):
                _parse_reply(whole[:cut], 0, ValueError)

    def test_protocol(self) -> None:
        """The protocol answers pipelined commands in order, across split reads."""
        if SKIP:
            raise self.skipTest(SKIP)
        protocol = _protocol_class()(charset="utf-8", replyTimeout=None, convertNumbers=False)
        transport = StringTransport()
        protocol.makeConnection(transport)
        answers: list[Any] = []
        for key in ("a", "b", "c"):
            protocol.execute_command("GET", key).addBoth(answers.append)
        self.assertEqual(
            transport.value(),
            b"".join(b"*2\r\n$3\r\nGET\r\n$1\r\n%s\r\n" % key for key in (b"a", b"b", b"c")),
        )
        data = b"$2\r\n12\r\n$-1\r\n-ERR x\r\n"
        protocol.dataReceived(data[:5])
        protocol.dataReceived(data[5:])
        self.assertEqual(answers[:2], ["12", None])
        self.assertEqual(str(answers[2].value), "x")

    def test_garbage_aborts(self) -> None:
        """Bytes that are no reply abort the connection."""
        if SKIP:
            raise self.skipTest(SKIP)
        protocol = _protocol_class()(charset="utf-8", replyTimeout=None, convertNumbers=False)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(b"?what\r\n")
        self.assertTrue(transport.disconnecting or transport.disconnected)
        self.flushLoggedErrors()


class WatchdogTests(SynchronousTestCase):
    """A connection with unanswered commands and nothing heard for a period is aborted."""

    def test_hung_redis(self) -> None:
        """Heard from: kept; silent while commands wait: aborted."""
        if SKIP:
            raise self.skipTest(SKIP)
        clock = Clock()
        connection = RedisConnection(clock, RedisConfig(), reply_timeout=10.0)
        protocol = _protocol_class()(charset="utf-8", replyTimeout=None, convertNumbers=False)
        transport = StringTransport()
        protocol.makeConnection(transport)
        connection.protocol = protocol
        connection._watch()
        self.assertFalse(transport.disconnecting)
        protocol.execute_command("PING")
        protocol.heard = True
        connection._watch()
        self.assertFalse(transport.disconnecting)
        connection._watch()
        self.assertTrue(transport.disconnecting)


class _Receiver:
    """Records what a batch's answers were."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, Any]] = []
        self.failures: list[Any] = []

    def answered(self, count: int, rejected: Any) -> None:
        self.answers.append((count, rejected))

    def failed(self, reason: Any) -> None:
        self.failures.append(reason)

    def total(self) -> int:
        return sum(count for count, _ in self.answers)


class _Layer:
    """A transport with Twisted's per-turn send limit, over ``transport`` (as TLS is)."""

    SEND_LIMIT = 128 * 1024

    def __init__(self, transport: Any = None) -> None:
        self.transport = transport


class BatchTests(SynchronousTestCase):
    """send_batch: many commands written at once, their answers to one receiver, in order."""

    def setUp(self) -> None:
        if SKIP:
            raise self.skipTest(SKIP)
        self.protocol = _protocol_class()(charset="utf-8", replyTimeout=None, convertNumbers=False)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def test_send_limit_lifted(self) -> None:
        """A new connection's transport, and the one under it, may send a whole batch a turn."""
        tcp = _Layer()
        tls = _Layer(tcp)
        tls.loseConnection = self.transport.loseConnection  # type: ignore[attr-defined]
        protocol = _protocol_class()(charset="utf-8", replyTimeout=None, convertNumbers=False)
        protocol.makeConnection(tls)
        self.assertEqual((tls.SEND_LIMIT, tcp.SEND_LIMIT), (SEND_LIMIT, SEND_LIMIT))
        self.assertEqual(_Layer.SEND_LIMIT, 128 * 1024)
        self.assertGreaterEqual(SEND_LIMIT, 16 * 1024 * 1024)

    def test_runs_split_anywhere(self) -> None:
        """Answers cut at any byte reach the right receivers, commands' replies in between."""
        ids = b"".join(b"$%d\r\n%s\r\n" % (len(i), i) for i in (b"1-0", b"12-3", b"170-11"))
        data = ids + b"$2\r\nok\r\n" + ids[:9] + b"-OOM full\r\n" + ids[9:]
        for cut in range(len(data) + 1):
            protocol = _protocol_class()(charset="utf-8", replyTimeout=None, convertNumbers=False)
            protocol.makeConnection(StringTransport())
            first, second = _Receiver(), _Receiver()
            got: list[Any] = []
            protocol.send_batch(b"x", 3, first)
            protocol.execute_command("GET", "k").addCallback(got.append)
            protocol.send_batch(b"y", 4, second)
            protocol.dataReceived(data[:cut])
            protocol.dataReceived(data[cut:])
            self.assertEqual((first.total(), first.failures), (3, []))
            self.assertEqual(got, ["ok"])
            self.assertEqual((second.total(), second.failures), (4, []))
            refused = [r for _, r in second.answers if r]
            self.assertEqual([(r[0][0], str(r[0][1])) for r in refused], [(0, "OOM full")])
            offset = 0
            for count, rejected in second.answers:
                if rejected:
                    self.assertEqual(offset, 1)
                offset += count
            self.assertFalse(protocol.awaited)

    def test_one_run_for_many_answers(self) -> None:
        """A read of many entry IDs is one answer for all of them (no call per entry)."""
        receiver = _Receiver()
        self.protocol.send_batch(b"XADD...", 100, receiver)
        self.assertEqual(self.transport.value(), b"XADD...")
        self.protocol.dataReceived(b"$15\r\n1700000000000-0\r\n" * 100)
        self.assertEqual(receiver.answers, [(100, None)])

    def test_connection_lost(self) -> None:
        """A batch not all answered when the connection goes fails once; answered ones stay."""
        receiver, later = _Receiver(), _Receiver()
        self.protocol.send_batch(b"", 3, receiver)
        self.protocol.send_batch(b"", 1, later)
        self.protocol.dataReceived(b"$3\r\n1-0\r\n")
        self.protocol.connectionLost(Failure(ConnectionDone()))  # type: ignore[no-untyped-call]
        self.assertEqual(receiver.answers, [(1, None)])
        self.assertEqual((len(receiver.failures), len(later.failures)), (1, 1))
        self.assertFalse(self.protocol.awaited)

    def test_watchdog_sees_batches(self) -> None:
        """A batch awaiting its answers counts as a command waiting for the watchdog."""
        clock = Clock()
        connection = RedisConnection(clock, RedisConfig(), reply_timeout=10.0)
        connection.protocol = self.protocol
        self.protocol.send_batch(b"", 1, _Receiver())
        connection._watch()
        connection._watch()
        self.assertTrue(self.transport.disconnecting)

    def test_not_connected(self) -> None:
        """A batch given while the connection is down fails at once."""
        connection = RedisConnection(Clock(), RedisConfig())
        receiver = _Receiver()
        connection.send_batch(b"", 2, receiver)
        self.assertEqual(len(receiver.failures), 1)
        self.assertIsInstance(receiver.failures[0].value, RedisNotConnected)


class _Endpoint:
    """Connects at once, each time to a new StringTransport; remembers the protocols."""

    def __init__(self) -> None:
        self.protocols: list[Any] = []

    def connect(self, factory: Any) -> Any:
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(StringTransport())
        self.protocols.append(protocol)
        return succeed(protocol)


class _Listener:
    def __init__(self) -> None:
        self.events: list[str] = []

    def redis_ready(self, connection: Any) -> None:
        self.events.append("ready")

    def redis_lost(self) -> None:
        self.events.append("lost")


class SetupTests(SynchronousTestCase):
    """AUTH/SELECT/PING on each new connection; any loss during the setup just reconnects."""

    def setUp(self) -> None:
        if SKIP:
            raise self.skipTest(SKIP)
        self.clock = Clock()
        self.endpoint = _Endpoint()

    def start(self, config: RedisConfig) -> RedisConnection:
        connection = RedisConnection(self.clock, config, reply_timeout=None)
        connection._endpoint = lambda: self.endpoint  # type: ignore[method-assign]
        connection._random.seed(1)
        self.listener = _Listener()
        connection.add_listener(self.listener)
        connection.startService()
        self.addCleanup(connection.stopService)
        return connection

    def written(self, index: int = -1) -> bytes:
        protocol = self.endpoint.protocols[index]
        data: bytes = protocol.transport.value()
        protocol.transport.clear()
        return data

    def lose(self, index: int = -1) -> None:
        """The connection's end, as the reactor delivers it (through ClientService's proxy)."""
        self.endpoint.protocols[index].connectionLost(Failure(ConnectionDone()))  # type: ignore[no-untyped-call]

    def test_lost_while_preparing(self) -> None:
        """Lost before PING's answer: no error, not ready, and the next connection is."""
        connection = self.start(RedisConfig())
        self.assertEqual(self.written(), b"*1\r\n$4\r\nPING\r\n")
        self.lose()
        self.assertEqual((connection.connected, self.listener.events), (False, []))
        self.clock.advance(connection.initial_delay * connection.factor * 2)
        self.assertEqual(len(self.endpoint.protocols), 2)
        self.endpoint.protocols[1].dataReceived(b"+PONG\r\n")
        self.assertEqual((connection.connected, self.listener.events), (True, ["ready"]))
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_refused_then_closed(self) -> None:
        """A refused password is logged without it, the connection closed and retried later."""
        connection = self.start(RedisConfig(password="hunter2"))
        self.assertIn(b"AUTH", self.written())
        self.endpoint.protocols[0].dataReceived(b"-WRONGPASS invalid password\r\n")
        self.clock.advance(0)
        self.assertTrue(self.endpoint.protocols[0].transport.disconnecting)
        self.lose()
        self.assertFalse(connection.connected)
        self.clock.advance(connection.initial_delay * connection.factor * 2)
        self.assertEqual(len(self.endpoint.protocols), 2)
        # The second refusal waits longer before closing: the backoff grows.
        self.endpoint.protocols[1].dataReceived(b"-WRONGPASS invalid password\r\n")
        self.assertFalse(self.endpoint.protocols[1].transport.disconnecting)
        self.clock.advance(connection.initial_delay * connection.factor)
        self.assertTrue(self.endpoint.protocols[1].transport.disconnecting)
        self.lose()
        self.clock.advance(connection.initial_delay * connection.factor * 2)
        self.endpoint.protocols[2].dataReceived(b"+OK\r\n")
        self.endpoint.protocols[2].dataReceived(b"+PONG\r\n")
        self.assertEqual((connection.connected, self.listener.events), (True, ["ready"]))
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_ready_then_lost(self) -> None:
        """A ready connection's loss is told to the listeners, and it reconnects."""
        connection = self.start(RedisConfig(db=3))
        self.assertEqual(self.written(), b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n")
        self.endpoint.protocols[0].dataReceived(b"+OK\r\n")
        self.assertEqual(self.written(), b"*1\r\n$4\r\nPING\r\n")
        self.endpoint.protocols[0].dataReceived(b"+PONG\r\n")
        self.lose()
        self.assertEqual((connection.connected, self.listener.events), (False, ["ready", "lost"]))
        self.clock.advance(connection.initial_delay * connection.factor * 2)
        self.endpoint.protocols[1].dataReceived(b"+OK\r\n")
        self.endpoint.protocols[1].dataReceived(b"+PONG\r\n")
        self.assertEqual(self.listener.events, ["ready", "lost", "ready"])

    def test_command_lost_with_the_connection(self) -> None:
        """A command unanswered when the connection is lost fails with RedisNotConnected."""
        connection = self.start(RedisConfig())
        self.endpoint.protocols[0].dataReceived(b"+PONG\r\n")
        failures: list[Failure] = []
        connection.execute("GET", "x").addErrback(failures.append)
        self.lose()
        self.assertIsInstance(failures[0].value, RedisNotConnected)
