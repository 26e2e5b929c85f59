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

from typing import Any, Final

from txami.jsonform import PBX_KEY, TIMESTAMP_KEY, dumps, format_timestamp

__all__ = [
    "EPOCH",
    "EVENT",
    "GAP",
    "JSON",
    "MARKERS",
    "RECEIVED",
    "SCHEMA_VERSION",
    "SEQ",
    "SESSION_END",
    "SESSION_START",
    "Entry",
    "actions_key",
    "entry_size",
    "entry_ts",
    "events_key",
    "guard_key",
    "is_marker",
    "make_entry",
    "marker_json",
]

#: The ``v`` field of every entry.
SCHEMA_VERSION = "1"
SESSION_START = "TxamiSessionStart"
SESSION_END = "TxamiSessionEnd"
GAP = "TxamiGap"
MARKERS = frozenset({SESSION_START, SESSION_END, GAP})

#: Bytes an entry costs besides its JSON line (fields, keys, the tuple), for the byte bounds.
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


#: One stream entry waiting to be published, an event or a marker:
#: ``(epoch, seq, event, received, json)``.  ``epoch`` is the daemon's own count
#: of the PBX's sessions (the publisher adds the stream's base), ``received`` the
#: receipt time in seconds.  A plain tuple rather than an object: one is made for
#: every event, and a tuple costs a fifth of what an instance of a class does.
#: The indexes below name its fields.
Entry = tuple[int, int, str, float, str]

EPOCH: Final = 0
SEQ: Final = 1
EVENT: Final = 2
RECEIVED: Final = 3
JSON: Final = 4


def make_entry(epoch: int, seq: int, event: str, received: float, json: str) -> Entry:
    """An entry (see `Entry`) from its fields."""
    return (epoch, seq, event, received, json)


def entry_size(entry: Entry) -> int:
    """What ``entry`` counts against the byte bounds: its JSON line and `ENTRY_OVERHEAD`."""
    return len(entry[JSON]) + ENTRY_OVERHEAD


def entry_ts(entry: Entry) -> str:
    """The ``ts`` field: the receipt time in Unix epoch milliseconds."""
    return str(int(entry[RECEIVED] * 1000.0))


def is_marker(entry: Entry) -> bool:
    """Whether ``entry`` is one of txami's markers rather than an AMI event."""
    return entry[EVENT] in MARKERS
