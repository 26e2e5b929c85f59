"""
The JSON form of AMI messages, shared by the event log, the event stream and
the HTTP action answers.

A message becomes one JSON object: every header in wire order, a repeated
header (``Variable``, ``Output``, ...) as a list of its values.  An event also
gets ``"@timestamp"``, the time txami received it (UTC, ISO 8601).

txami decodes the wire with ``surrogateescape``, so bytes that are not UTF-8
live on as lone surrogates (U+DC80..U+DCFF).  Those cannot be encoded as
UTF-8, so the output is pure ASCII (``ensure_ascii``): such a byte ``0xE9``
appears as ``"\\udce9"``, which no JSON writer or reader chokes on, and from
which Python gets the byte back with ``.encode("utf-8", "surrogateescape")``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from txami.message import Message

__all__ = [
    "TIMESTAMP_KEY",
    "dumps",
    "event_dict",
    "event_json",
    "format_timestamp",
    "message_dict",
]

#: The key that carries the receive time; a header of that very name moves to ``"_@timestamp"``.
TIMESTAMP_KEY = "@timestamp"


def message_dict(message: Message) -> dict[str, Any]:
    """Every header of ``message`` in wire order; a repeated header maps to a list."""
    result: dict[str, Any] = {}
    for name, value in message.pairs():
        if name in result:
            present = result[name]
            if isinstance(present, list):
                present.append(value)
            else:
                result[name] = [present, value]
        else:
            result[name] = value
    return result


def format_timestamp(seconds: float) -> str:
    """``seconds`` since the epoch as UTC ISO 8601 with microseconds, e.g. ``...T10:00:00.5Z``."""
    stamp = datetime.fromtimestamp(seconds, timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def event_dict(event: Message, received: float) -> dict[str, Any]:
    """The receive time under `TIMESTAMP_KEY`, then the headers of ``event``."""
    headers = message_dict(event)
    clash = headers.pop(TIMESTAMP_KEY, None)
    result: dict[str, Any] = {TIMESTAMP_KEY: format_timestamp(received)}
    result.update(headers)
    if clash is not None:
        result["_" + TIMESTAMP_KEY] = clash
    return result


def dumps(value: Any) -> str:
    """Compact, pure-ASCII JSON; never fails on lone surrogates."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def event_json(event: Message, received: float) -> str:
    """One event as one line of JSON (without the newline)."""
    return dumps(event_dict(event, received))
