"""Tests for txami.daemon.redisengine: the XADD commands a batch is written as."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from txami.daemon.entries import Entry, make_entry
from txami.daemon.redisconn import _parse_reply
from txami.daemon.redisengine import RedisStreamEngine


class _Connection:
    """Keeps what the engine writes."""

    connected = True

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, int]] = []

    def add_listener(self, listener: Any) -> None:
        pass

    def send_batch(self, data: bytes, count: int, receiver: Any) -> None:
        self.sent.append((data, count))


def _commands(data: bytes) -> list[list[Any]]:
    """The RESP arrays in ``data``, each a command's arguments (bytes where not UTF-8)."""
    commands = []
    position = 0
    while position < len(data):
        command, position = _parse_reply(data, position, Exception)
        commands.append(command)
    return commands


def _expected(pbx: str, epoch: int, entry: Entry) -> list[Any]:
    _, seq, event, received, line = entry
    sent = line.encode("utf-8", "surrogateescape")
    try:
        json: Any = sent.decode("utf-8")
    except UnicodeDecodeError:
        json = sent  # what a reader sees of a byte that is not UTF-8
    return [
        "XADD",
        f"txami:{{{pbx}}}:events",
        "MAXLEN",
        "~",
        "1000",
        "*",
        "v",
        "1",
        "pbx",
        pbx,
        "epoch",
        str(epoch),
        "seq",
        str(seq),
        "event",
        event,
        "ts",
        str(int(received * 1000)),
        "json",
        json,
    ]


class EncodingTests(SynchronousTestCase):
    """A batch is written as one XADD per entry, whatever its entries hold."""

    def setUp(self) -> None:
        self.connection = _Connection()
        self.engine = RedisStreamEngine(self.connection, "txami", 1000)  # type: ignore[arg-type]

    def _send(self, runs: list[Any]) -> list[list[Any]]:
        self.engine.send(runs, None)  # type: ignore[arg-type]
        [(data, count)] = self.connection.sent
        commands = _commands(data)
        self.assertEqual(count, len(commands))
        return commands

    def test_usual_run(self) -> None:
        """Entries of known shape, several epochs and PBXs: each its XADD, in order."""
        a = [make_entry(1, seq, "Newchannel", 1700000000.0 + seq / 7, '{"a":1}') for seq in (1, 2)]
        a.append(make_entry(2, 0, "TxamiSessionStart", 1700000001.0005, '{"b":"c"}'))
        b = [make_entry(1, 9, "Hangup", 1700000002.25, "{}")]
        commands = self._send([("p1", 10, a), ("p2", 0, b)])
        expected = [_expected("p1", 11, e) for e in a[:2]]
        expected += [_expected("p1", 12, a[2]), _expected("p2", 1, b[0])]
        self.assertEqual(commands, expected)
        self.assertEqual(commands[0][17], "1700000000142")

    def test_unusual_entries(self) -> None:
        """Non-ASCII and long JSON lines, a new event name and a short ts take the general way."""
        entries = [
            make_entry(1, 1, "Hangup", 1700000000.5, '{"x":"\u00e9"}'),
            make_entry(1, 2, "Brand\u00e9New", 1700000000.5, '{"x":"' + "y" * 20000 + '"}'),
            make_entry(1, 3, "Hangup", 5.0, "{}"),
            make_entry(1, 4, "Hangup", 1700000000.75, '{"z":"\udce9"}'),
        ]
        commands = self._send([("p", 0, entries)])
        self.assertEqual(commands, [_expected("p", 1, e) for e in entries])
        self.assertEqual(commands[3][19], b'{"z":"\xe9"}')
