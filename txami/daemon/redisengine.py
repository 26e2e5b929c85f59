"""
`RedisStreamEngine`: the `IStreamEngine` for Redis Streams.

Each entry is one ``XADD <prefix>:{NAME}:events MAXLEN ~ <maxlen> * v 1 pbx
NAME epoch E seq S event NAME ts MS json JSON`` (see `txami.daemon.entries`).
The publisher hands over its entries in batches (`RedisStreamEngine.send`):
each batch is encoded as Redis's wire format with one join and written at
once on the shared connection, and its answers are read in runs (see
`txami.daemon.redisconn`), so an entry costs no Deferred and no write of its
own.  Commands are pipelined; the publisher's window bounds how many await
their answer.  An error answer
(``OOM``, ``WRONGTYPE``, ...) rejects that entry; a lost connection leaves
the entries in doubt, settled with ``XREVRANGE <key> + - COUNT 1`` (`newest`)
when the connection is back.
"""

from __future__ import annotations

from itertools import groupby
from operator import itemgetter
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from zope.interface import implementer

from txami.daemon.entries import EPOCH, SCHEMA_VERSION, Entry, entry_ts, events_key
from txami.daemon.publisher import (
    EntryRejected,
    IBatchReceiver,
    IBatchStreamEngine,
    IEngineListener,
    Run,
)
from txami.daemon.redisconn import RedisConnection, RedisError

__all__ = ["RedisStreamEngine", "entry_position"]


def entry_position(fields: Any) -> tuple[int, int] | None:
    """``(epoch, seq)`` from an entry's flat field list, or None if it has none."""
    if not isinstance(fields, list):
        return None
    found = dict(zip(fields[0::2], fields[1::2], strict=False))
    epoch, seq = found.get("epoch"), found.get("seq")
    if not isinstance(epoch, str) or not isinstance(seq, str):
        return None
    if not (epoch.isdecimal() and seq.isdecimal()):
        return None
    return int(epoch), int(seq)


@implementer(IBatchStreamEngine)
class RedisStreamEngine:
    """Adds entries to ``<prefix>:{NAME}:events`` through a `RedisConnection`."""

    def __init__(self, connection: RedisConnection, prefix: str, maxlen: int) -> None:
        self.connection = connection
        self.prefix = prefix
        self.maxlen = maxlen
        self._listener: IEngineListener | None = None
        self._heads: dict[str, tuple[Any, ...]] = {}
        self._wire_heads: dict[tuple[str, int], str] = {}
        connection.add_listener(self)

    @property
    def connected(self) -> bool:
        """Whether entries can be sent now."""
        return self.connection.connected

    def set_listener(self, listener: IEngineListener) -> None:
        """Report readiness and losses to ``listener``."""
        self._listener = listener
        if self.connection.connected:
            listener.engine_ready()

    # RedisConnection's listener

    def redis_ready(self, connection: RedisConnection) -> None:
        if self._listener is not None:
            self._listener.engine_ready()

    def redis_lost(self) -> None:
        if self._listener is not None:
            self._listener.engine_lost()

    # IStreamEngine

    def _head(self, pbx: str) -> tuple[Any, ...]:
        """The command's start, the same for every entry of ``pbx``: encoded once."""
        head = self._heads.get(pbx)
        if head is None:
            key = events_key(self.prefix, pbx).encode("utf-8")
            trim: tuple[bytes, ...] = ()
            if self.maxlen:
                trim = (b"MAXLEN", b"~", str(self.maxlen).encode("ascii"))
            head = (b"XADD", key, *trim, b"*", b"v", SCHEMA_VERSION.encode(), b"pbx", pbx.encode())
            self._heads[pbx] = head
        return head

    def append(self, pbx: str, entry: Entry, epoch: int) -> Deferred[Any]:
        """XADD ``entry``; see `IStreamEngine.append`."""
        _, seq, event, _, json = entry
        d = self.connection.execute(
            *self._head(pbx),
            b"epoch",
            str(epoch),
            b"seq",
            str(seq),
            b"event",
            event.encode("utf-8", "surrogateescape"),
            b"ts",
            entry_ts(entry),
            b"json",
            json,
        )
        return d.addErrback(_rejected, pbx)

    def send(self, batch: list[Run], receiver: IBatchReceiver) -> None:
        """XADD every entry of ``batch`` in one write; see `IBatchStreamEngine.send`."""
        parts: list[str] = []
        count = 0
        for pbx, base, entries in batch:
            count += len(entries)
            if entries[0][EPOCH] == entries[-1][EPOCH]:  # a run's epochs never go down
                self._encode(parts, pbx, base + entries[0][EPOCH], entries)
            else:
                for epoch, group in groupby(entries, _epoch_of):
                    self._encode(parts, pbx, base + epoch, list(group))
        data = "".join(parts).encode("utf-8", "surrogateescape")
        self.connection.send_batch(data, count, receiver)

    def _encode(self, parts: list[str], pbx: str, epoch: int, entries: list[Entry]) -> None:
        """The XADDs of ``entries`` (``pbx``'s, all of ``epoch``), as RESP, into ``parts``."""
        head = self._wire_heads.get((pbx, epoch)) or self._wire_head(pbx, epoch)
        add = parts.extend
        sized = _LENGTHS
        json_sized = _JSON_SIZED
        events = _EVENTS
        # Each command's final CRLF is written in front of the next one's head (and
        # once after the last): one part fewer per entry.
        start = head[2:]
        # The ``ts`` field (`entry_ts`), made once per receive time: the entries of
        # one read share theirs.
        last = -1.0
        ts = ""
        plain = False
        for _, number, event, received, json in entries:
            if received != last:
                last = received
                ts = str(int(received * 1000.0))
                plain = len(ts) == 13
            seq = str(number)
            size = len(json)
            if plain and size < _KNOWN and json.isascii():
                add(
                    (
                        start,
                        sized[len(seq)],
                        seq,
                        events.get(event) or _event_field(event),
                        ts,
                        json_sized[size],
                        json,
                    )
                )
            else:
                add(
                    (
                        start,
                        _bulk(seq),
                        "$5\r\nevent\r\n",
                        _bulk(event),
                        "$2\r\nts\r\n",
                        _bulk(ts),
                        "$4\r\njson\r\n",
                        _bulk(json)[:-2],
                    )
                )
            start = head
        parts.append("\r\n")

    def _wire_head(self, pbx: str, epoch: int) -> str:
        """
        What every XADD of ``pbx`` in ``epoch`` starts with, up to the ``seq``
        field's value, after the CRLF that ends the command before it.
        """
        key = events_key(self.prefix, pbx)
        args = ["XADD", key]
        if self.maxlen:
            args += ["MAXLEN", "~", str(self.maxlen)]
        args += ["*", "v", SCHEMA_VERSION, "pbx", pbx, "epoch", str(epoch), "seq"]
        head = f"\r\n*{len(args) + 7}\r\n" + "".join(_bulk(arg) for arg in args)
        if len(self._wire_heads) >= 4096:
            self._wire_heads.clear()
        self._wire_heads[pbx, epoch] = head
        return head

    def newest(self, pbx: str) -> Deferred[tuple[int, int] | None]:
        """``(epoch, seq)`` of the stream's newest entry (None if empty or not txami's)."""
        d = self.connection.execute(
            "XREVRANGE", events_key(self.prefix, pbx), "+", "-", "COUNT", "1"
        )

        def position(reply: Any) -> tuple[int, int] | None:
            if not reply:
                return None
            entry = reply[0]
            return entry_position(entry[1] if isinstance(entry, list) and len(entry) > 1 else None)

        return d.addCallback(position)


#: Lengths below this have their RESP prefix (``$N\r\n``) made once, in `_LENGTHS`.
_KNOWN = 16384
_LENGTHS = [f"${size}\r\n" for size in range(32)]
#: From the end of the ``ts`` value to the start of a JSON line of each length below `_KNOWN`.
_JSON_SIZED = [f"\r\n$4\r\njson\r\n${size}\r\n" for size in range(_KNOWN)]
#: From the end of the ``seq`` value to the start of a 13-digit ``ts`` value, by event name.
_EVENTS: dict[str, str] = {}


def _event_field(event: str) -> str:
    """The ``event`` field as RESP, between the ``seq`` value and a 13-digit ``ts`` value."""
    field = f"\r\n$5\r\nevent\r\n{_bulk(event)}$2\r\nts\r\n$13\r\n"
    if len(_EVENTS) < 4096:
        _EVENTS[event] = field
    return field


_epoch_of = itemgetter(EPOCH)


def _bulk(text: str) -> str:
    """``text`` as a RESP bulk string (its length in the bytes it is sent as)."""
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogateescape"))
    return f"${size}\r\n{text}\r\n"


def _rejected(failure: Failure, pbx: str) -> Failure:
    if isinstance(failure.value, RedisError):
        return Failure(EntryRejected(pbx, failure.getErrorMessage()))  # type: ignore[no-untyped-call]
    return failure
