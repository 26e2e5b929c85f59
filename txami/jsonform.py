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

`event_json` (and `event_lines`, for the events of one read) is on the
daemon's path for every event, so it has a fast way for the usual event (see
`_Shapes`); what it returns is always exactly ``dumps(event_dict(event,
received, pbx))``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from txami.message import Message

__all__ = [
    "PBX_KEY",
    "TIMESTAMP_KEY",
    "dumps",
    "event_dict",
    "event_json",
    "event_lines",
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


# One encoder, made once: json.dumps with these arguments builds a new one per call.
_ENCODE = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


def dumps(value: Any) -> str:
    """Compact, pure-ASCII JSON; never fails on lone surrogates."""
    return _ENCODE(value)


def event_json(event: Message, received: float, pbx: str | None = None) -> str:
    """One event as one line of JSON (without the newline); see `event_dict`."""
    return event_lines((event,), received, pbx)[0]


def event_lines(events: Iterable[Message], received: float, pbx: str | None = None) -> list[str]:
    """
    `event_json` of each of ``events``, all received at ``received`` from
    ``pbx``: the events of one read, made in one pass.
    """
    lines: list[str] = []
    add = lines.append
    head = ""
    fast = 0.0 <= received < _LATEST
    for event in events:
        text = event._text  # a received message's text (None for one built from pairs)
        if text is not None and fast:
            shapes = _BY_EVENT.get(event.name)  # type: ignore[arg-type]
            if shapes is not None:
                for fullmatch, line in shapes:
                    found = fullmatch(text)
                    if found is not None:
                        if not head:
                            cached = _head  # one read of the shared tuple (threads)
                            if received != cached[0] or pbx != cached[1]:
                                cached = _head_of(received, pbx)
                            head = cached[2]
                        parts = line.copy()  # the shared template stays untouched
                        parts[0] = head
                        parts[2:-1:2] = found.groups()
                        add("".join(parts))
                        break
                else:
                    add(_general(event, text, received, pbx))
                continue
        add(_general(event, text, received, pbx))
    return lines


def _general(event: Message, text: str | None, received: float, pbx: str | None) -> str:
    """The JSON line the general way (and the event's layout noted, for the fast way)."""
    result = dumps(event_dict(event, received, pbx))
    if text is not None:
        _SHAPES.saw(event, text)
    return result


# --- the fast way ------------------------------------------------------------------------------

#: What a value (or a header name) may hold to be written into JSON as it is:
#: printable ASCII but the quote and the backslash, which JSON escapes.
_PLAIN = r"[ !#-\[\]-~]"
_PLAIN_NAME = re.compile(r"[ !#-9;-\[\]-~]*")  # the same, and no colon (a name ends at one)
_CLASHES = frozenset({TIMESTAMP_KEY, PBX_KEY})


class _Shapes:
    """
    Header layouts (the names, in order) of the events seen, each with a
    regular expression that matches exactly the texts of that layout whose
    values JSON writes as they are.

    An event's JSON line is then one join of the layout's line, a list of
    the cached parts (the head, each header's ``"Name":"``) with the slots
    for the timestamp's microseconds, the PBX and the values the match found
    filled in: no parse into pairs, no dict, no escaping pass.  A layout
    qualifies when its names are distinct, none is ``@timestamp`` or ``pbx``
    and each is plain printable ASCII without a colon; the expression admits
    one line per header, each ``Name: value`` with a plain value, joined by
    CRLF.  For such a text, the
    parse of `Message.pairs` gives exactly those names and values, and
    `event_dict` and `dumps` write them exactly so.  Anything else (repeats,
    clashes, non-ASCII, quotes, control characters, a bare CR or LF, a line
    without a colon) fails the match and takes the general way.

    A layout is compiled the second time it is seen; memory stays bounded
    (`MAX_PER_EVENT` layouts per event name, `MAX_EVENTS` names).
    """

    MAX_PER_EVENT = 8
    MAX_EVENTS = 512
    MAX_CANDIDATES = 4096

    def __init__(self) -> None:
        self.by_event: dict[str, list[tuple[Any, list[str]]]] = {}
        self._candidates: dict[tuple[str, ...], int] = {}
        self.layouts = 0

    def saw(self, event: Message, text: str) -> None:
        """An event took the general way: remember its layout, compile it when seen again."""
        name = event.name
        if name is None or not text.isascii():
            return
        shapes = self.by_event.get(name)
        if shapes is None:
            if len(self.by_event) >= self.MAX_EVENTS:
                return
        elif len(shapes) >= self.MAX_PER_EVENT:
            return
        names = tuple([header for header, _ in event.pairs()])
        candidates = self._candidates
        seen = candidates.get(names, 0)
        if not seen:
            if len(candidates) >= self.MAX_CANDIDATES:
                candidates.clear()
            candidates[names] = 1
            return
        del candidates[names]
        self._learn(name, names, text)

    def _learn(self, event_name: str, names: tuple[str, ...], text: str) -> None:
        if len(set(names)) != len(names) or _CLASHES.intersection(names):
            return
        if not all(_PLAIN_NAME.fullmatch(name) for name in names):
            return
        pattern = re.compile(
            "\r\n".join(f"{re.escape(name)}: ({_PLAIN}*+)" for name in names), re.ASCII
        )
        if pattern.fullmatch(text) is None:
            return  # a value needs escaping: a later event of this layout may not
        # The line: a slot for the head (the timestamp and the PBX), then each
        # header's ``"Name":"`` (after the first, ``","Name":"``) and its value's
        # slot, then the end.
        line: list[str] = [""]
        for index, name in enumerate(names):
            line += ['"' + name + '":"' if index == 0 else '","' + name + '":"', ""]
        line.append('"}')
        shape = (pattern.fullmatch, line)
        shapes = self.by_event.setdefault(event_name, [])
        if len(shapes) < self.MAX_PER_EVENT:
            shapes.append(shape)
            self.layouts += 1


_SHAPES = _Shapes()
_BY_EVENT = _SHAPES.by_event

_HEAD = '{"' + TIMESTAMP_KEY + '":"'
#: The last second formatted, and the timestamp's text up to its microseconds.
_stamp = (-1.0, "")
#: The last line head made: the receive time, the PBX, and the head's text.
_head: tuple[float, str | None, str] = (-1.0, None, "")
_DIGITS = [f"{number:03d}" for number in range(1000)]
_TAILS: dict[str | None, str] = {None: 'Z",'}
#: Receive times the fast way writes (the rest take the general way): 0 .. year 3000.
_LATEST = 32503680000.0


def _head_of(received: float, pbx: str | None) -> tuple[float, str | None, str]:
    """
    The head of the lines of events received at ``received`` from ``pbx``:
    ``{"@timestamp":"...Z",`` and the PBX's field.  The events of one read
    share their receive time, so the last head is kept (one tuple, replaced
    whole: safe if threads call this too).
    """
    global _stamp, _head
    # The receive time as `format_timestamp` writes it: the date and the time of day
    # change once a second; the microseconds are rounded as `datetime.fromtimestamp`
    # rounds them (half to even).
    fraction = received % 1.0
    micro = round(fraction * 1e6)
    whole = received - fraction
    if micro >= 1000000:
        micro -= 1000000
        whole += 1.0
    stamp = _stamp
    if whole != stamp[0]:
        stamp = _stamp = (whole, _HEAD + format_timestamp(whole)[:-7])
    text = (
        stamp[1] + _DIGITS[micro // 1000] + _DIGITS[micro % 1000] + (_TAILS.get(pbx) or _tail(pbx))
    )
    head = _head = (received, pbx, text)
    return head


def _tail(pbx: str | None) -> str:
    """What follows the microseconds: ``Z",`` and the PBX's name, if any, in JSON."""
    tail = 'Z",' if pbx is None else f'Z","{PBX_KEY}":{dumps(pbx)},'
    if len(_TAILS) < 4096:
        _TAILS[pbx] = tail
    return tail
