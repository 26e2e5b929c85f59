"""Tests for txami.daemon.redisconn: the reply parser, the command encoding and the watchdog."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from tests.redisserver import SKIP
from txami.daemon.config import RedisConfig
from txami.daemon.redisconn import RedisConnection, _Incomplete, _parse_reply, _protocol_class


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
