"""
`RedisStreamEngine`: the `IStreamEngine` for Redis Streams.

Each entry is one ``XADD <prefix>:{NAME}:events MAXLEN ~ <maxlen> * v 1 pbx
NAME epoch E seq S event NAME ts MS json JSON`` (see `txami.daemon.entries`),
sent at once on the shared connection: commands are pipelined, and the
publisher's window bounds how many await their answer.  An error answer
(``OOM``, ``WRONGTYPE``, ...) rejects that entry; a lost connection leaves
the entries in doubt, settled with ``XREVRANGE <key> + - COUNT 1`` (`newest`)
when the connection is back.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from zope.interface import implementer

from txami.daemon.entries import SCHEMA_VERSION, Entry, events_key
from txami.daemon.publisher import EntryRejected, IEngineListener, IStreamEngine
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


@implementer(IStreamEngine)
class RedisStreamEngine:
    """Adds entries to ``<prefix>:{NAME}:events`` through a `RedisConnection`."""

    def __init__(self, connection: RedisConnection, prefix: str, maxlen: int) -> None:
        self.connection = connection
        self.prefix = prefix
        self.maxlen = maxlen
        self._listener: IEngineListener | None = None
        self._heads: dict[str, tuple[Any, ...]] = {}
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
        d = self.connection.execute(
            *self._head(pbx),
            b"epoch",
            str(epoch),
            b"seq",
            str(entry.seq),
            b"event",
            entry.event.encode("utf-8", "surrogateescape"),
            b"ts",
            entry.ts,
            b"json",
            entry.json,
        )
        return d.addErrback(_rejected, pbx)

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


def _rejected(failure: Failure, pbx: str) -> Failure:
    if isinstance(failure.value, RedisError):
        return Failure(EntryRejected(pbx, failure.getErrorMessage()))  # type: ignore[no-untyped-call]
    return failure
