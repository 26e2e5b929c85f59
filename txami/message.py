"""
The AMI message model: one ordered, multi-valued, case-insensitive header block.

Actions, responses and events are all `Message`.  A message received from the
server keeps its decoded text and parses headers only when asked: looking up one
header is a string search, and the full ``(name, value)`` list is built the first
time something needs all of it (iteration, ``getall``, ``len``, ``==``).  That is
what lets the protocol hand every event to Python code at the cost of a bare
split-and-dict loop.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from twisted.logger import Logger

__all__ = [
    "REDACTED_HEADERS",
    "HeaderValue",
    "Headers",
    "Message",
    "encode_action",
    "new_action_id",
]

#: Header names whose values never appear in a repr or a log line.
REDACTED_HEADERS = frozenset({"secret", "key"})

#: A value a caller may give for a header: scalars are converted with `str`
#: (`bool` becomes ``true``/``false``), a list or tuple repeats the header, and
#: `None` leaves the header out.
HeaderValue = str | int | float | bool | Sequence[str | int | float] | None

#: Headers as a mapping, or as ``(name, value)`` pairs when order or repeats matter.
Headers = Mapping[str, HeaderValue] | Iterable[tuple[str, HeaderValue]]

_log = Logger(namespace="txami.message")
_EMPTY: tuple[Message, ...] = ()


class _Unknown:
    """The type of `_UNKNOWN`: a header not looked up yet."""


_UNKNOWN = _Unknown()
_FORBIDDEN = ("\r", "\n", "\0")


def _scalar(value: str | int | float | bool) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pairs_of(headers: Headers | None) -> list[tuple[str, str]]:
    """Flatten caller-given headers into wire-order ``(name, value)`` string pairs."""
    if not headers:
        return []
    items: Iterable[tuple[str, HeaderValue]]
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs: list[tuple[str, str]] = []
    for name, value in items:
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            pairs.extend((name, _scalar(v)) for v in value)
        else:
            pairs.append((name, _scalar(value)))  # type: ignore[arg-type]
    return pairs


def _forbidden_char(text: str) -> str | None:
    """The first of CR, LF and NUL found in ``text`` (each ends a line on the wire), or `None`."""
    for bad in _FORBIDDEN:
        if bad in text:
            return bad
    return None


def _check_safe(pairs: Iterable[tuple[str, str]]) -> None:
    """Refuse any header that would break out of its line on the wire."""
    for name, value in pairs:
        for part, what in ((name, "name"), (value, "value")):
            bad = _forbidden_char(part)
            if bad is not None:
                shown = "***" if name.lower() in REDACTED_HEADERS and what == "value" else part
                raise ValueError(
                    f"AMI header {name!r} has a {what} containing {bad!r}, which would "
                    f"inject a header or an action: {shown!r}"
                )
        if not name or ":" in name or name != name.strip():
            raise ValueError(f"{name!r} is not a valid AMI header name")


_ID_PREFIX = secrets.token_hex(6)
#: The prefix and its dot, joined once: an ActionID is then one concatenation.
_ID_HEAD = _ID_PREFIX + "."
_id_counter = itertools.count(1)


def new_action_id() -> str:
    """
    A fresh ActionID: a random per-process prefix and a counter.

    Asterisk broadcasts ``OriginateResponse`` with the originator's ActionID
    to every session, so ids must not collide across processes or connections.
    """
    return _next_action_id()


#: `new_action_id` without the call: `next` of a chain of C iterators.
_next_action_id: Callable[[], str] = map(_ID_HEAD.__add__, map(str, _id_counter)).__next__


#: Header names that passed `encode_action`'s check (bounded: names come from code).
_CHECKED_NAMES: set[str] = set()


def encode_action(name: str, action_id: str, headers: Sequence[tuple[str, str]]) -> bytes:
    """
    Serialise an action: ``Action`` then ``ActionID`` first, then ``headers``.

    ``ActionID`` comes second so that Asterisk's own parse errors (such as
    ``line too long`` on a later header) still carry it.  Raises `ValueError`,
    naming the header, if any name or value holds CR, LF or NUL, or a name is
    empty or holds a colon (which would spoof another header): nothing is
    returned, so nothing can be written.
    """
    if headers:
        for key, _ in headers:
            if key not in _CHECKED_NAMES:
                if not key or ":" in key:
                    _check_safe(headers)
                elif len(_CHECKED_NAMES) < 4096:
                    _CHECKED_NAMES.add(key)
        body = "\r\n".join([f"{k}: {v}" for k, v in headers])
        text = "".join(("Action: ", name, "\r\nActionID: ", action_id, "\r\n", body, "\r\n\r\n"))
        breaks = len(headers) + 3
    else:
        text = "Action: " + name + "\r\nActionID: " + action_id + "\r\n\r\n"
        breaks = 3
    # One C-level pass each instead of three per header: a header is unsafe
    # exactly when the text holds more line breaks than its line ends.
    if text.count("\n") != breaks or text.count("\r") != breaks or "\0" in text:
        _check_safe([("Action", name), ("ActionID", action_id), *headers])
    return text.encode("utf-8", "surrogateescape")


#: Search keys by header name: ``("\\nname:", its length)``, the name in lower case.
_KEYS: dict[str, tuple[str, int]] = {}


def _key(name: str) -> tuple[str, int]:
    key = "\n" + name.lower() + ":"
    found = (key, len(key))
    if len(_KEYS) < 4096:  # names come from code, but do not let them grow without bound
        _KEYS[name] = found
    return found


_Search = Callable[[str], "re.Match[str] | None"]
#: `Message.get`'s searches by header name: ``(search, match, firsts)``, where
#: ``search`` finds the header on a line after the first, ``match`` on the first,
#: which can only hold it if it starts with one of ``firsts`` (the name's first
#: character in both cases).  Both ignore ASCII case.  The value is group 1 if its
#: line ends with CRLF (the CR left out), else group 2 (a bare LF or the text's end
#: ends it): the regex does what would otherwise cost a few Python steps per call.
_FINDERS: dict[str, tuple[_Search, _Search, str]] = {}


def _finders(name: str) -> tuple[_Search, _Search, str] | None:
    """`_FINDERS`' entry for ``name``; `None` for a name that is empty or not ASCII."""
    if not name or not name.isascii():
        return None
    pattern = re.escape(name) + ": ?(?:([^\n]*)\r\n|([^\n]*))"
    found = (
        re.compile("\n" + pattern, re.IGNORECASE | re.ASCII).search,
        re.compile(pattern, re.IGNORECASE | re.ASCII).match,
        name[0].lower() + name[0].upper(),
    )
    if len(_FINDERS) < 4096:  # names come from code, but do not let them grow without bound
        _FINDERS[name] = found
    return found


def _parse_lines(text: str, quiet: bool = False) -> list[tuple[str, str]]:
    """
    Split decoded message text into ``(name, value)`` pairs in wire order.

    Lines end with CRLF (a bare LF is accepted, as Asterisk itself does); the
    value is what follows the first colon, less one space.  Lines without a
    colon are logged (unless ``quiet``) and skipped; the text keeps them, so
    `Message.to_bytes` does too.
    """
    pairs = []
    for line in text.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        name, colon, value = line.partition(":")
        if not colon:
            if line and not quiet:
                _log.warn("skipping a header line without a colon: {line!r}", line=line[:200])
            continue
        if value.startswith(" "):
            value = value[1:]
        pairs.append((name, value))
    return pairs


class Message:
    """
    An AMI header block: an action, a response or an event.

    Headers keep their wire order and repeats (``Variable``, ``Output``, user
    headers); lookups by name ignore case, as Asterisk does.

    >>> msg = Message([("Event", "Hangup"), ("Channel", "PJSIP/100-01"), ("Cause", "16")])
    >>> msg.kind, msg.name, msg["channel"]
    ('event', 'Hangup', 'PJSIP/100-01')

    Only the response to a list action has `events` (its items, in order) and
    `list_complete` (the event that ended the list); for every other message
    they are empty and `None`.
    """

    __slots__ = (
        "_action_id",
        "_low",
        "_pairs",
        "_text",
        "events",
        "kind",
        "list_complete",
        "name",
    )

    _text: str | None
    #: Set by `get`: see there (``""`` when the message has no text).
    _low: str | None
    _pairs: list[tuple[str, str]] | None
    _action_id: str | _Unknown | None
    #: ``"response"``, ``"event"`` or ``"action"``, from the first header (else `None`).
    kind: str | None
    #: The event name, response status or action name: the first header's value.
    name: str | None
    events: Sequence[Message]
    list_complete: Message | None

    def __init__(self, headers: Headers | None = None) -> None:
        self._text = None
        self._low = ""
        self._pairs = pairs = _pairs_of(headers)
        self._action_id = _UNKNOWN
        self.kind, self.name = _classify(pairs[0] if pairs else None)
        self.events = _EMPTY
        self.list_complete = None

    @classmethod
    def parse(cls, data: bytes | str) -> Message:
        """
        Build a message from one block as read from the wire (without the
        blank line that ends it).  Bytes are decoded as UTF-8 and invalid bytes
        survive as surrogate escapes, so `to_bytes` gives them back unchanged.
        """
        if isinstance(data, bytes):
            data = data.decode("utf-8", "surrogateescape")
        return _from_text(data)

    # --- lookups -------------------------------------------------------------

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (any case), or ``default``."""
        text = self._text
        if not (text and text.isascii()):
            return self._get_lowered(name, default)
        # ASCII text: one search, ignoring case, for the name at a line start
        # (`_finders`); a match at the start too if the first line may be it.
        try:
            search, match, firsts = _FINDERS[name]
        except KeyError:
            finders = _finders(name)
            if finders is None:
                return self._get_lowered(name, default)
            search, match, firsts = finders
        found = (text[0] in firsts and match(text)) or search(text)
        if found is None:
            return default
        # Group 1 is `None` or, like group 2, maybe empty: "" if both are falsy.
        return found[1] or found[2] or ""

    def _get_lowered(self, name: str, default: str | None) -> str | None:
        """`get` for text that is not ASCII, by a search in its lower-cased copy."""
        low = self._low
        text = self._text
        if low is None:
            # The text in lower case between a line break and a line end: one search
            # then finds a header on any line, the first included, and the line end
            # after its value is always there.  ``""`` (as for a message built from
            # pairs) if lower-casing changed some character's length, so that
            # offsets in it would no longer match the text.
            assert text is not None
            low = f"\n{text}\r\n".lower()
            if not text.isascii() and len(low) != len(text) + 3:
                low = ""
            self._low = low
        if not low:
            return self._scan(name, default)
        key, size = _KEYS.get(name) or _key(name)
        start = low.find(key)
        if start < 0:
            return default
        # Offsets in `low` are one more than in the text.
        start += size
        if low[start] == " ":
            start += 1
        value = text[start - 1 : low.find("\r\n", start) - 1]  # type: ignore[index]
        if "\n" in value:  # the line ended with a bare LF (Asterisk reads those too)
            value = value[: value.find("\n")]
            if value.endswith("\r"):
                value = value[:-1]
        return value

    def _scan(self, name: str, default: str | None) -> str | None:
        key = name.lower()
        for k, v in self.pairs():
            if k.lower() == key:
                return v
        return default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def getall(self, name: str) -> list[str]:
        """Every value of header ``name`` (any case), in wire order."""
        key = name.lower()
        return [v for k, v in self.pairs() if k.lower() == key]

    def pairs(self) -> list[tuple[str, str]]:
        """All ``(name, value)`` pairs in wire order (a new list is not made per call)."""
        pairs = self._pairs
        if pairs is None:
            assert self._text is not None
            pairs = self._pairs = _parse_lines(self._text)
        return pairs

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.pairs())

    def __len__(self) -> int:
        return len(self.pairs())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        mine, theirs = self.pairs(), other.pairs()
        return len(mine) == len(theirs) and all(
            a.lower() == b.lower() and x == y for (a, x), (b, y) in zip(mine, theirs, strict=True)
        )

    __hash__ = None  # type: ignore[assignment]

    # --- what the message is -------------------------------------------------
    @property
    def action_id(self) -> str | None:
        """The ``ActionID`` header, or `None`."""
        action_id = self._action_id
        if action_id is _UNKNOWN:
            action_id = self._action_id = self.get("ActionID")
        return action_id  # type: ignore[return-value]

    # --- output ----------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """
        The message as it goes on the wire, ending with the blank line.

        A received message gives back exactly the bytes it was parsed from
        (except the two answers txami rebuilds as ``Output`` headers: pre-14
        ``Response: Follows`` Command output and pre-15 ``Queues`` text).
        Raises `ValueError` if a header built by a caller holds CR, LF or NUL.
        """
        if self._text is not None:
            return (self._text + "\r\n\r\n").encode("utf-8", "surrogateescape")
        pairs = self.pairs()
        _check_safe(pairs)
        return "".join(f"{k}: {v}\r\n" for k, v in pairs).encode("utf-8", "surrogateescape") + (
            b"\r\n"
        )

    def redacted_pairs(self) -> list[tuple[str, str]]:
        """The pairs with every `Secret` and `Key` value replaced by ``***``."""
        return [(k, "***") if k.lower() in REDACTED_HEADERS else (k, v) for k, v in self.pairs()]

    def __repr__(self) -> str:
        listed = self.events or self.list_complete is not None
        extra = f", events=<{len(self.events)} items>" if listed else ""
        return f"Message({self.redacted_pairs()!r}{extra})"


_KINDS = {"response": "response", "event": "event", "action": "action"}


def _classify(first: tuple[str, str] | None) -> tuple[str | None, str | None]:
    """``(kind, name)`` of a message whose first header is ``first``."""
    if first is None:
        return None, None
    kind = _KINDS.get(first[0].lower())
    return kind, (first[1] if kind is not None else None)


def _first_of(text: str) -> tuple[str, str] | None:
    end = text.find("\n")
    line = text if end < 0 else text[: end - 1] if text[end - 1 : end] == "\r" else text[:end]
    name, colon, value = line.partition(":")
    if not colon:
        pairs = _parse_lines(text, quiet=True)
        return pairs[0] if pairs else None
    return name, value[1:] if value.startswith(" ") else value


_new = object.__new__


def _from_text(
    text: str,
    kind: str | None = None,
    name: str | None = None,
    action_id: str | None = None,
) -> Message:
    """
    A text-backed message; the protocol's per-message constructor.  The
    protocol passes ``kind``, ``name`` and ``action_id`` when it has already
    read them.
    """
    msg: Message = _new(Message)
    msg._text = text
    msg._low = None
    msg._pairs = None
    msg._action_id = _UNKNOWN if action_id is None else action_id
    if kind is None:
        kind, name = _classify(_first_of(text))
    msg.kind = kind
    msg.name = name
    msg.events = _EMPTY
    msg.list_complete = None
    return msg


def _from_pairs(pairs: list[tuple[str, str]]) -> Message:
    """A message over already-flattened string pairs (no copy)."""
    msg: Message = _new(Message)
    msg._text = None
    msg._low = ""
    msg._pairs = pairs
    msg._action_id = _UNKNOWN
    msg.kind, msg.name = _classify(pairs[0] if pairs else None)
    msg.events = _EMPTY
    msg.list_complete = None
    return msg
