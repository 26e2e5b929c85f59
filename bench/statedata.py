"""
Benchmark input for the state model: a sync's lists and a call stream,
made from real Asterisk 20 traffic.

``data/state-lists.raw`` is one admin connection's ``CoreShowChannels`` and
``BridgeList`` answers while 20 bridged pairs (1010, four Local channels
each) and 20 lone calls (1000) were up: 120 channels, 21 bridges.  The S6
lists repeat those rows with every ``Uniqueid``, ``Linkedid``, Local channel
name and bridge id rewritten per copy, so that ``count`` channels are
distinct but keep their real links (pairs, bridges).

The 100,000-call check feeds ``events-stream.raw`` (300 calls) again and
again, each round's Uniqueids rewritten, so that every call is new.
"""

from __future__ import annotations

import re
from functools import lru_cache

from bench.data import ACTION_ID_SLOT, DATA_DIR, END, real_events, split_messages

LISTS_FILE = DATA_DIR / "state-lists.raw"

_UNIQUEID = re.compile(rb"(: )(\d{10})\.(\d+)(\r?$)", re.MULTILINE)
_LOCAL = re.compile(rb"(Local/[^;\r\n]*)(;[12])")
_UUID = re.compile(rb"\b[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b")


@lru_cache(maxsize=1)
def _rows() -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """The recorded CoreShowChannel rows and BridgeListItem rows, ActionID lines removed."""
    channels, bridges = [], []
    for block in split_messages(LISTS_FILE.read_bytes()):
        lines = [line for line in block.split(b"\r\n") if not line.startswith(b"ActionID: ")]
        if lines[0] == b"Event: CoreShowChannel":
            channels.append(b"\r\n".join(lines))
        elif lines[0] == b"Event: BridgeListItem":
            bridges.append(b"\r\n".join(lines))
    if not channels or not bridges:
        raise RuntimeError(f"no CoreShowChannel or BridgeListItem rows in {LISTS_FILE}")
    return tuple(channels), tuple(bridges)


def _copy(row: bytes, n: int) -> bytes:
    """``row`` as copy ``n``: its ids and Local names made distinct from other copies'."""
    row = _UNIQUEID.sub(lambda m: b"%s%d.%d%s" % (m[1], 1_700_000_000 + n, int(m[3]), m[4]), row)
    row = _LOCAL.sub(lambda m: m[1] + b"-%d" % n + m[2], row)
    return _UUID.sub(lambda m: b"%08x" % n + m[1], row)


def _list(name: str, complete: str, rows: list[bytes]) -> list[bytes]:
    slot = ACTION_ID_SLOT
    head = (
        b"Response: Success\r\nActionID: " + slot + b"\r\nEventList: start\r\n"
        b"Message: " + name.encode() + b" will follow\r\n\r\n"
    )
    body = b"".join(row + b"\r\nActionID: " + slot + END for row in rows)
    tail = (
        b"Event: "
        + complete.encode()
        + b"\r\nActionID: "
        + slot
        + b"\r\nEventList: Complete\r\nListItems: %d\r\n\r\n" % len(rows)
    )
    return (head + body + tail).split(slot)


def channel_list_parts(count: int) -> list[bytes]:
    """A ``CoreShowChannels`` answer with ``count`` channels, split on the ActionID slot."""
    channels, _ = _rows()
    rows = [_copy(channels[i % len(channels)], i // len(channels)) for i in range(count)]
    return _list("Channels", "CoreShowChannelsComplete", rows)


def bridge_list_parts(count: int) -> list[bytes]:
    """The ``BridgeList`` answer for the bridges of `channel_list_parts` (``count`` channels)."""
    channels, bridges = _rows()
    copies = -(-count // len(channels))
    rows = [_copy(bridge, n) for n in range(copies) for bridge in bridges]
    return _list("Bridges", "BridgeListComplete", rows)


def call_round(n: int) -> bytes:
    """The 300 calls of ``events-stream.raw`` as one buffer, their Uniqueids made round ``n``'s."""
    stream = _stream()
    return stream.replace(b": 17956947", b": %08d" % (10_000_000 + n))


@lru_cache(maxsize=1)
def _stream() -> bytes:
    events = real_events()
    if not all(b": 17956947" in e for e in events if b"Uniqueid: " in e):
        raise RuntimeError("the event stream's Uniqueids no longer start with 17956947")
    return END.join(events) + END
