"""
Reading the headers the state model needs from an AMI message, quickly.

Asterisk (12 to 22) writes a channel's snapshot as one fixed run of headers
(``Channel``, ``ChannelState``, ... ``Uniqueid``, ``Linkedid``; Asterisk 12.0
lacks ``Language`` and ``Linkedid``), with a prefix when an event names
several channels (``DestChannel``, ``LocalOneChannel``, ``TransfereeChannel``,
...).  One regular expression reads the whole run in a single C-level pass,
which is what keeps a tracked event cheap; a message that does not follow
Asterisk's layout (another server, a hand-built message) falls back to
ordinary case-insensitive lookups, so nothing depends on the layout.
Single headers are found with Asterisk's own spelling first.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from txami.message import Message

__all__ = [
    "ChannelSnapshot",
    "bridge_fields",
    "channel_snapshot",
    "header",
    "intern_value",
    "newexten_fields",
    "row_fields",
    "text_of",
    "to_int",
]

#: A channel snapshot as read from an event or list row, indexed by the constants below.
ChannelSnapshot = tuple[str, ...]

NAME = 0
STATE = 1
STATE_DESC = 2
CALLER_NUM = 3
CALLER_NAME = 4
CONNECTED_NUM = 5
CONNECTED_NAME = 6
LANGUAGE = 7
ACCOUNT = 8
CONTEXT = 9
EXTEN = 10
PRIORITY = 11
UNIQUEID = 12
LINKEDID = 13

_KEYS = (
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
)

_INTERNED: dict[str, str] = {}
_INTS: dict[str, int] = {}
_CACHE_LIMIT = 4096


def intern_value(value: str) -> str:
    """
    One shared string object for a value that many channels repeat (a
    context, a state name, an application), so that thousands of channels do
    not each keep a copy.  The table is bounded: past its size, values are
    kept as they are.
    """
    found = _INTERNED.get(value)
    if found is not None:
        return found
    if len(_INTERNED) < _CACHE_LIMIT:
        _INTERNED[value] = value
    return value


def to_int(text: str, default: int = 0) -> int:
    """``int(text)`` for a header value (cached), ``default`` if it is not a number."""
    found = _INTS.get(text)
    if found is not None:
        return found
    try:
        value = int(text)
    except ValueError:
        return default
    if len(_INTS) < _CACHE_LIMIT:
        _INTS[text] = value
    return value


_PATTERNS: dict[tuple[str, str], Callable[[str], re.Match[str] | None]] = {}

#: What follows the snapshot in a ``Newexten`` event (other headers may come between).
_NEWEXTEN = r"\r\n(?:.*\r\n)*?Application: (.*)\r\nAppData: ([^\r\n]*)"
#: What follows the snapshot in a ``CoreShowChannel`` row (Asterisk 12.7+).
_ROW = (
    r"\r\n(?:.*\r\n)*?Application: (.*)\r\nApplicationData: (.*)\r\n"
    r"Duration: (.*)\r\nBridgeId: ([^\r\n]*)"
)


def _pattern(prefix: str, tail: str = "") -> Callable[[str], re.Match[str] | None]:
    found = _PATTERNS.get((prefix, tail))
    if found is None:
        p = re.escape(prefix)
        # "(.*)\r\n" (anything but a line feed, then CRLF) is the fastest way
        # sre has to take a value; a message with bare LFs takes the slow path.
        v = r"(.*)\r\n"
        found = re.compile(
            rf"\n{p}Channel: {v}{p}ChannelState: {v}{p}ChannelStateDesc: {v}"
            rf"{p}CallerIDNum: {v}{p}CallerIDName: {v}{p}ConnectedLineNum: {v}"
            rf"{p}ConnectedLineName: {v}(?:{p}Language: {v})?{p}AccountCode: {v}"
            rf"{p}Context: {v}{p}Exten: {v}{p}Priority: {v}{p}Uniqueid: ([^\r\n]*)"
            rf"(?:\r\n{p}Linkedid: ([^\r\n]*))?" + tail
        ).search
        if len(_PATTERNS) < 64:
            _PATTERNS[(prefix, tail)] = found
    return found


_SNAPSHOT = _pattern("")
_NEWEXTEN_SEARCH = _pattern("", _NEWEXTEN)
_ROW_SEARCH = _pattern("", _ROW)

_BRIDGE_KEYS = ("BridgeUniqueid", "BridgeType", "BridgeTechnology", "BridgeCreator", "BridgeName")
_BRIDGES: dict[str, Callable[[str], re.Match[str] | None]] = {}


def bridge_fields(
    message: Message, prefix: str = "", text: str | None = None
) -> tuple[str, ...] | None:
    """
    A bridge's ``(BridgeUniqueid, BridgeType, BridgeTechnology,
    BridgeCreator, BridgeName)`` (with ``prefix``), or `None` without a
    ``<prefix>BridgeUniqueid``.
    """
    if text is None:
        text = text_of(message)
    search = _BRIDGES.get(prefix)
    if search is None:
        p = re.escape(prefix)
        search = re.compile(
            rf"\n{p}BridgeUniqueid: (.*)\r\n{p}BridgeType: (.*)\r\n"
            rf"{p}BridgeTechnology: (.*)\r\n{p}BridgeCreator: (.*)\r\n"
            rf"{p}BridgeName: ([^\r\n]*)"
        ).search
        if len(_BRIDGES) < 16:
            _BRIDGES[prefix] = search
    match = search(text)
    if match is not None:
        return match.groups()
    if header(message, prefix + "BridgeUniqueid", text) is None:
        return None
    return tuple(header(message, prefix + key, text) or "" for key in _BRIDGE_KEYS)


def text_of(message: Message) -> str:
    """
    The message's text (rebuilt for a hand-made message).  Its first line
    names the event, so every header the model reads follows a line feed.
    """
    # The protocol keeps each received message's decoded text; reading it here
    # (package-internal) saves parsing every header of every tracked event.
    text = message._text
    if text is None:
        text = "\r\n".join(f"{k}: {v}" for k, v in message.pairs())
    return text


def channel_snapshot(
    message: Message, prefix: str = "", text: str | None = None
) -> ChannelSnapshot | None:
    """
    The channel snapshot headers (with ``prefix``) of ``message`` as a tuple,
    or `None` if it has no ``<prefix>Uniqueid``.  ``Language`` and
    ``Linkedid`` are ``""`` when absent (Asterisk 12.0).
    """
    if text is None:
        text = message._text
        if text is None:
            text = text_of(message)
    match = (_pattern(prefix) if prefix else _SNAPSHOT)(text)
    if match is not None:
        values = match.groups()
        if values[LANGUAGE] is None or values[LINKEDID] is None:
            return tuple(v or "" for v in values)
        return values
    return _slow_snapshot(message, prefix)


def _slow_snapshot(message: Message, prefix: str) -> ChannelSnapshot | None:
    """The snapshot by case-insensitive lookups (a layout other than Asterisk's)."""
    uniqueid = message.get(prefix + "Uniqueid")
    if uniqueid is None:
        return None
    return tuple(message.get(prefix + key, "") or "" for key in _KEYS)


def _with_tail(
    message: Message,
    search: Callable[[str], re.Match[str] | None],
    names: tuple[str, ...],
) -> tuple[ChannelSnapshot, tuple[str | None, ...]] | None:
    text = message._text
    if text is None:
        text = text_of(message)
    match = search(text)
    if match is not None:
        values = match.groups()
        snapshot = values[:14]
        if values[LANGUAGE] is None or values[LINKEDID] is None:
            snapshot = tuple(v or "" for v in snapshot)
        return snapshot, values[14:]
    found = _slow_snapshot(message, "")
    if found is None:
        return None
    return found, tuple(header(message, name, text) for name in names)


def newexten_fields(
    message: Message,
) -> tuple[ChannelSnapshot, tuple[str | None, ...]] | None:
    """A ``Newexten`` event's snapshot and its ``(Application, AppData)``."""
    return _with_tail(message, _NEWEXTEN_SEARCH, ("Application", "AppData"))


def row_fields(message: Message) -> tuple[ChannelSnapshot, tuple[str | None, ...]] | None:
    """
    A ``CoreShowChannel`` row's snapshot and its ``(Application,
    ApplicationData, Duration, BridgeId)``, each `None` if absent (Asterisk
    12.0 to 12.6 send neither of them).
    """
    return _with_tail(
        message, _ROW_SEARCH, ("Application", "ApplicationData", "Duration", "BridgeId")
    )


def header(message: Message, name: str, text: str | None = None) -> str | None:
    """
    The first value of header ``name``: found with Asterisk's spelling in
    ``text`` (`text_of` the message) when given, else any case.
    """
    if text is not None:
        key = "\n" + name + ": "
        start = text.find(key)
        if start >= 0:
            start += len(key)
            end = text.find("\n", start)
            if end < 0:
                return text[start:]
            return text[start : end - 1] if text[end - 1] == "\r" else text[start:end]
    return message.get(name)
