"""
Benchmark input: real Asterisk 20 AMI traffic, loaded and precomputed as wire bytes.

``data/events-stream.raw.gz`` is the byte-exact capture of one admin connection
while 300 short calls ran (7,803 events; see ``/shared/transcripts/events-stream.md``),
and ``data/status.raw`` holds real ``Status`` list items.  The fake server repeats
them, so clients parse the real mix of event names, header counts and sizes.

Everything here is pure and deterministic: the runner computes the counts a client
must see from the same functions the server uses to build what it sends.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
EVENTS_FILE = DATA_DIR / "events-stream.raw.gz"
STATUS_FILE = DATA_DIR / "status.raw"

BANNER = b"Asterisk Call Manager/9.0.0\r\n"
END = b"\r\n\r\n"

#: Stands for the client's ActionID in precomputed templates; split on it and
#: ``action_id.join(parts)`` gives the bytes to send (one C-level join per list).
ACTION_ID_SLOT = b"\x00ACTIONID\x00"


def split_messages(raw: bytes) -> list[bytes]:
    """Cut a server->client capture into message blocks (banner and blank line removed)."""
    if raw.startswith(b"Asterisk Call Manager/"):
        raw = raw.partition(b"\r\n")[2]
    return [block for block in raw.split(END) if block]


@lru_cache(maxsize=1)
def real_events() -> tuple[bytes, ...]:
    """The 7,803 ``Event:`` blocks of the capture, in order (its responses are dropped)."""
    with gzip.open(EVENTS_FILE, "rb") as f:
        blocks = split_messages(f.read())
    return tuple(b for b in blocks if b.startswith(b"Event: "))


def event_stream(count: int) -> bytes:
    """``count`` events: the real sequence repeated as needed, as one wire buffer."""
    events = real_events()
    rounds, rest = divmod(count, len(events))
    whole = END.join(events) + END
    tail = END.join(events[:rest]) + END if rest else b""
    return whole * rounds + tail


def expected_with_uniqueid(count: int) -> int:
    """How many of the first ``count`` stream events carry a ``Uniqueid`` header."""
    flags = [b"\r\nUniqueid: " in e for e in real_events()]
    rounds, rest = divmod(count, len(flags))
    return rounds * sum(flags) + sum(flags[:rest])


@lru_cache(maxsize=1)
def real_status_items() -> tuple[bytes, ...]:
    """The items of the first real ``Status`` list, without their trailing ``ActionID`` line."""
    blocks = split_messages(STATUS_FILE.read_bytes())
    first_id = None
    items = []
    for block in blocks:
        if not block.startswith(b"Event: Status\r\n"):
            continue
        body, _, action_id = block.rpartition(b"\r\nActionID: ")
        if first_id is None:
            first_id = action_id
        if action_id == first_id:
            items.append(body)
    if not items:
        raise RuntimeError(f"no Status items found in {STATUS_FILE}")
    return tuple(items)


def status_list_parts(count: int) -> list[bytes]:
    """
    A complete ``Status`` answer with ``count`` items, split on the ActionID slot.

    Response (``EventList: start``), ``count`` real items (cycled) each ending in
    the ActionID as Asterisk sends them, then ``StatusComplete`` with
    ``ListItems``/``Items``.
    """
    slot = ACTION_ID_SLOT
    items = real_status_items()
    head = (
        b"Response: Success\r\nActionID: " + slot + b"\r\nEventList: start\r\n"
        b"Message: Channel status will follow\r\n\r\n"
    )
    body = b"".join(items[i % len(items)] + b"\r\nActionID: " + slot + END for i in range(count))
    tail = (
        b"Event: StatusComplete\r\nActionID: " + slot + b"\r\nEventList: Complete\r\n"
        b"ListItems: %d\r\nItems: %d\r\n\r\n" % (count, count)
    )
    return (head + body + tail).split(slot)
