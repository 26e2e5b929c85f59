"""
AGI replies: `AGIResult` for ``200 result=N (data) key=value``, and `outcome`,
which turns one whole reply (one line, or a ``520-`` block) into a result or
the error it means.

Asterisk writes a success as ``200 result=`` then the result text up to the
first space, then optionally ``(data)`` and ``key=value`` fields (only
``endpos=N`` today)::

    200 result=1 (hello world)
    200 result=-1 endpos=800
    200 result= (timeout)           GET DATA when no digit came

The data is written as is, so it may hold spaces and parentheses of its own
(``200 result=1 (a) b (c)``); it is read as everything between the first
``(`` and the ``)`` that precedes the trailing fields, so any value comes back
whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from txami.agi.errors import AGIError, AGIHangup

__all__ = ["AGIResult", "outcome", "parse_result"]

#: A trailing field such as ``endpos=800`` (its value holds no space or parenthesis).
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=[^ ()]*\Z")
#: The DTMF digits a result code may encode as its ASCII value.
_DTMF = frozenset("0123456789*#ABCDabcd")


class AGIResult:
    """
    A ``200`` reply: ``result`` is the text after ``result=`` (``"0"``,
    ``"-1"``, ``"49"``, the digits of GET DATA, possibly ``""``), ``data`` what
    stood in parentheses (`None` if nothing did) and ``fields`` the trailing
    ``key=value`` pairs.  ``line`` is the reply as received.

    >>> r = parse_result("200 result=49 endpos=1600")
    >>> r.value, r.digit, r.endpos, r.data
    (49, '1', 1600, None)
    """

    __slots__ = ("data", "fields", "line", "result")

    def __init__(
        self,
        result: str,
        data: str | None = None,
        fields: Mapping[str, str] | None = None,
        line: str = "",
    ) -> None:
        self.result = result
        self.data = data
        self.fields: Mapping[str, str] = dict(fields or {})
        self.line = line

    @property
    def value(self) -> int | None:
        """The result as a number, or `None` if it is not one (GET DATA's ``""``)."""
        text = self.result
        digits = text[1:] if text[:1] == "-" else text
        if digits and digits.isdecimal() and digits.isascii():
            return int(text)
        return None

    @property
    def failed(self) -> bool:
        """Whether the result is negative: Asterisk's "failure or hangup" for most commands."""
        value = self.value
        return value is not None and value < 0

    @property
    def digit(self) -> str | None:
        """
        The DTMF digit a positive result encodes as its ASCII value (STREAM
        FILE, WAIT FOR DIGIT, SAY ..., GET OPTION), else `None`.
        """
        value = self.value
        if value is None or not 0 < value < 128:
            return None
        char = chr(value)
        return char if char in _DTMF else None

    @property
    def endpos(self) -> int | None:
        """The ``endpos`` field (the sample offset where playback stopped), if any."""
        raw = self.fields.get("endpos")
        if raw is None:
            return None
        digits = raw[1:] if raw[:1] == "-" else raw
        return int(raw) if digits.isdecimal() and digits.isascii() else None

    @property
    def timed_out(self) -> bool:
        """Whether Asterisk marked the result ``(timeout)`` (GET DATA, RECEIVE CHAR, ...)."""
        return self.data == "timeout"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AGIResult):
            return NotImplemented
        return (self.result, self.data, dict(self.fields)) == (
            other.result,
            other.data,
            dict(other.fields),
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        extra = f", data={self.data!r}" if self.data is not None else ""
        if self.fields:
            extra += f", fields={dict(self.fields)!r}"
        return f"AGIResult(result={self.result!r}{extra})"


def parse_result(line: str) -> AGIResult:
    """
    Read a ``200 result=...`` line (without its line end).  A ``200`` line
    without ``result=`` gives an empty result whose ``data`` is the rest.
    """
    rest = line[4:] if line.startswith("200 ") else line[3:].lstrip(" ")
    if not rest.startswith("result="):
        return AGIResult("", rest or None, None, line)
    rest = rest[7:]
    space = rest.find(" ")
    if space < 0:
        return AGIResult(rest, None, None, line)
    result, tail = rest[:space], rest[space + 1 :]
    # Peel key=value fields off the end; what is left is the data.
    fields: list[tuple[str, str]] = []
    body = tail
    while body:
        head, _, last = body.rpartition(" ")
        if not _FIELD.match(last):
            break
        key, _, value = last.partition("=")
        fields.append((key, value))
        body = head
    if body.startswith("(") and not body.endswith(")"):
        # The "fields" were part of the data, which runs to the last ")" or the end.
        fields = []
        body = tail
    if not body:
        data = None
    elif body.startswith("(") and body.endswith(")") and len(body) >= 2:
        data = body[1:-1]
    elif body.startswith("("):
        data = body[1:]
    else:
        data = body
    return AGIResult(result, data, dict(reversed(fields)), line)


def reply_code(line: str) -> int | None:
    """The code of a reply line (``200``, ``510``, ``520`` of ``520-``...), or `None`."""
    head = line[:3]
    if len(head) == 3 and head.isdecimal() and head.isascii() and line[3:4] in ("", " ", "-"):
        return int(head)
    return None


def outcome(command: str, lines: Sequence[str]) -> AGIResult | AGIError | AGIHangup:
    """
    What one whole reply to ``command`` means: `AGIResult` for ``200``,
    `AGIHangup` for ``511`` (the command is not permitted on a dead channel),
    `AGIError` for any other code; ``lines`` is the reply's lines (a
    ``520-`` block included), without line ends.
    """
    first = lines[0]
    code = reply_code(first)
    if code == 200:
        return parse_result(first)
    text = first[4:] if len(first) > 3 else ""
    if code == 511:
        return AGIHangup(command, f"511 {text}")
    usage = "\n".join(lines[1:-1]) if len(lines) > 2 else ""
    if code is None:
        return AGIError(command, 0, first)
    return AGIError(command, code, text, usage)
