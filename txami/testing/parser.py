"""
How Asterisk reads a client's bytes: the request parser of manager.c, byte for byte.

Asterisk reads into a 1025-byte buffer and takes one line at a time, ended by
CRLF or a bare LF.  A line that fills the buffer without an end is thrown away
but for its last byte, and the message it belongs to is answered with ``Failed
to parse message: line too long``.  A message keeps at most 128 lines; a longer
one is answered with ``Too many lines in message or allocation failure``.  A
NUL ends a line early (it is a C string), so a line that starts with NUL is
empty and ends the message.  Messages are made of lines, not parsed headers:
`header` looks a name up the way ``astman_get_header`` does.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MAX_HEADERS", "MAX_LINE", "Request", "RequestParser", "header"]

#: Bytes a line may reach before Asterisk discards it (its buffer less the NUL).
MAX_LINE = 1024
#: Lines a message may hold (AST_MAX_MANHEADERS).
MAX_HEADERS = 128

_COMPACT_AT = 1 << 16


class Request:
    """One message read from a client: its lines, and the parse error it earned, if any."""

    __slots__ = ("error", "lines")

    def __init__(self, lines: list[str], error: str | None = None) -> None:
        self.lines = lines
        self.error = error

    def __repr__(self) -> str:
        return f"Request({len(self.lines)} lines, error={self.error!r})"


class RequestParser:
    """Turn client bytes into `Request` objects, one at a time, as Asterisk would."""

    def __init__(self) -> None:
        self._line = b""
        self._pending = bytearray()
        self._pos = 0
        self._lines: list[str] = []
        self._lost = False
        self._too_long = False

    def feed(self, data: bytes) -> None:
        """Add bytes read from the client."""
        self._pending += data

    @property
    def buffered(self) -> int:
        """How many bytes are waiting to be parsed."""
        return len(self._pending) - self._pos + len(self._line)

    def _next_line(self) -> bytes | None:
        while True:
            end = self._line.find(b"\n")
            if end >= 0:
                line = self._line[:end]
                self._line = self._line[end + 1 :]
                return line[:-1] if line.endswith(b"\r") else line
            if len(self._line) >= MAX_LINE:
                # Asterisk keeps the last byte, in case it is the CR of a CRLF.
                self._line = self._line[-1:]
                self._too_long = True
                continue
            available = len(self._pending) - self._pos
            if available <= 0:
                return None
            take = min(MAX_LINE - len(self._line), available)
            self._line += bytes(self._pending[self._pos : self._pos + take])
            self._pos += take
            if self._pos >= _COMPACT_AT:
                del self._pending[: self._pos]
                self._pos = 0

    def next_request(self) -> Request | None:
        """The next complete message, or `None` until more bytes arrive."""
        while True:
            raw = self._next_line()
            if raw is None:
                return None
            nul = raw.find(b"\0")
            if nul >= 0:
                raw = raw[:nul]
            if raw:
                if len(self._lines) < MAX_HEADERS:
                    self._lines.append(raw.decode("utf-8", "surrogateescape"))
                else:
                    self._lost = True
                continue
            lines, self._lines = self._lines, []
            if self._lost:
                # Asterisk leaves the line-too-long state set on this path.
                self._lost = False
                return Request(lines, "Too many lines in message or allocation failure")
            if self._too_long:
                self._too_long = False
                return Request(lines, "Failed to parse message: line too long")
            return Request(lines)


def header(lines: Sequence[str], name: str, *, skip_empty: bool = False) -> str:
    """
    The value of header ``name`` in a request's ``lines``, as ``astman_get_header``
    finds it: the first line whose name matches without regard to case, with
    the leading blanks (and control characters) of the value skipped; ``""``
    if there is none.  ``skip_empty`` passes over empty values.
    """
    prefix = name.lower() + ":"
    size = len(prefix)
    for line in lines:
        if line[:size].lower() == prefix:
            value = line[size:]
            start = 0
            while start < len(value) and ord(value[start]) < 33:
                start += 1
            value = value[start:]
            if value or not skip_empty:
                return value
    return ""


def headers(lines: Sequence[str], name: str) -> list[str]:
    """Every value of header ``name`` in ``lines``, in order (blanks skipped as in `header`)."""
    prefix = name.lower() + ":"
    size = len(prefix)
    found = []
    for line in lines:
        if line[:size].lower() == prefix:
            value = line[size:]
            start = 0
            while start < len(value) and ord(value[start]) < 33:
                start += 1
            found.append(value[start:])
    return found
