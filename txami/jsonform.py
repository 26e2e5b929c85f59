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
    "PBX_KEY",
    "TIMESTAMP_KEY",
    "dumps",
    "event_dict",
    "event_json",
    "format_timestamp",
    "message_dict",
]

#: The key that carries the receive time; a header of that very name moves to ``"_@timestamp"``.
TIMESTAMP_KEY = "@timestamp"
#: The key that names the PBX an event came from (the daemon's event lines).
PBX_KEY = "pbx"


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


def event_dict(event: Message, received: float, pbx: str | None = None) -> dict[str, Any]:
    """
    The receive time under `TIMESTAMP_KEY`, then (if given) the name of the
    PBX it came from under `PBX_KEY`, then the headers of ``event``.  A
    header that has one of those names moves to ``"_" + name``.
    """
    headers = message_dict(event)
    clash = headers.pop(TIMESTAMP_KEY, None)
    result: dict[str, Any] = {TIMESTAMP_KEY: format_timestamp(received)}
    pbx_clash = None
    if pbx is not None:
        pbx_clash = headers.pop(PBX_KEY, None)
        result[PBX_KEY] = pbx
    result.update(headers)
    if clash is not None:
        result["_" + TIMESTAMP_KEY] = clash
    if pbx_clash is not None:
        result["_" + PBX_KEY] = pbx_clash
    return result


def dumps(value: Any) -> str:
    """Compact, pure-ASCII JSON; never fails on lone surrogates."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def event_json(event: Message, received: float, pbx: str | None = None) -> str:
    """One event as one line of JSON (without the newline); see `event_dict`."""
    return dumps(event_dict(event, received, pbx))
