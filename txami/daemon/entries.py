"""
The stream format: one Redis stream per PBX and what each entry holds.

Keys (the braces are a Redis Cluster hash tag, so each PBX's keys share a slot):

- ``<prefix>:{NAME}:events``: the PBX's events and markers;
- ``<prefix>:{NAME}:actions``: action requests, read with a consumer group;
- ``<prefix>:{NAME}:guard:<id>``: the side-effect guard of request ``id``.

An entry's fields, in order: ``v`` (the schema, ``1``), ``pbx`` (the
``[pbx:NAME]`` section's name), ``epoch`` (+1 per AMI login, continued from
the stream's last entry when the daemon restarts), ``seq`` (per epoch: the
session's start marker is 0, its events 1, 2, ...), ``event`` (the event's
name), ``ts`` (receipt time, Unix epoch milliseconds) and ``json`` (the
event log's JSON line for the event).

Markers are entries whose ``event`` is one of:

- ``TxamiSessionStart``: a new AMI login (``seq`` 0); what came before in the
  stream belongs to an earlier session;
- ``TxamiSessionEnd``: the AMI connection was lost (``seq``: after the
  session's last event);
- ``TxamiGap``: events were dropped in front of it; its ``seq`` is the last
  dropped event's, and its JSON says how many (``Dropped``) and which
  (``FirstSeq`` .. ``LastSeq``).
"""

from __future__ import annotations

from typing import Any

from txami.jsonform import PBX_KEY, TIMESTAMP_KEY, dumps, format_timestamp

__all__ = [
    "GAP",
    "MARKERS",
    "SCHEMA_VERSION",
    "SESSION_END",
    "SESSION_START",
    "Entry",
    "actions_key",
    "events_key",
    "guard_key",
    "marker_json",
]

#: The ``v`` field of every entry.
SCHEMA_VERSION = "1"
SESSION_START = "TxamiSessionStart"
SESSION_END = "TxamiSessionEnd"
GAP = "TxamiGap"
MARKERS = frozenset({SESSION_START, SESSION_END, GAP})

#: Bytes an entry costs besides its JSON line (fields, keys, bookkeeping), for the byte bounds.
ENTRY_OVERHEAD = 160


def events_key(prefix: str, pbx: str) -> str:
    """The stream of ``pbx``'s events and markers."""
    return f"{prefix}:{{{pbx}}}:events"


def actions_key(prefix: str, pbx: str) -> str:
    """The stream of ``pbx``'s action requests."""
    return f"{prefix}:{{{pbx}}}:actions"


def guard_key(prefix: str, pbx: str, request_id: str) -> str:
    """The key that guards action request ``request_id`` of ``pbx`` against a second run."""
    return f"{prefix}:{{{pbx}}}:guard:{request_id}"


def marker_json(pbx: str, event: str, received: float, **details: Any) -> str:
    """The JSON line of a marker: like an event's, with txami's own headers."""
    fields: dict[str, Any] = {TIMESTAMP_KEY: format_timestamp(received), PBX_KEY: pbx}
    fields["Event"] = event
    fields.update(details)
    return dumps(fields)


class Entry:
    """
    One stream entry waiting to be published: an event or a marker, with
    its session's ``epoch`` (the daemon's own count; the publisher adds the
    stream's base) and ``seq``.  ``size`` is what it counts against the byte
    bounds.  ``gap`` is the run of dropped events just in front of it, if
    any: ``[count, first seq, last seq]``.
    """

    __slots__ = ("epoch", "event", "gap", "json", "received", "seq", "size")

    def __init__(self, epoch: int, seq: int, event: str, received: float, json: str) -> None:
        self.epoch = epoch
        self.seq = seq
        self.event = event
        self.received = received
        self.json = json
        self.size = len(json) + len(event) + ENTRY_OVERHEAD
        self.gap: list[int] | None = None

    @property
    def ts(self) -> str:
        """The ``ts`` field: the receipt time in Unix epoch milliseconds."""
        return str(int(self.received * 1000.0))

    @property
    def is_marker(self) -> bool:
        """Whether this is one of txami's markers rather than an AMI event."""
        return self.event in MARKERS

    def __repr__(self) -> str:
        return f"<Entry {self.event} epoch={self.epoch} seq={self.seq}>"
