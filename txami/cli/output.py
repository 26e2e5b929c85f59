"""
What ``txami`` prints: AMI text blocks, JSON, and the standard output itself.

Text goes out as UTF-8 with ``surrogateescape``, so a byte the server sent
that is not UTF-8 reaches the terminal or the pipe unchanged, and every line
is flushed at once (a tail piped into ``grep`` or ``jq`` sees each event as it
arrives).  JSON uses `txami.jsonform`, the form of the daemon's event log.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from txami.jsonform import message_dict
from txami.message import Message

__all__ = ["Output", "OutputClosed", "action_json", "message_lines"]


class OutputClosed(Exception):
    """The reader of the standard output went away (``txami events | head``)."""


class Output:
    """A binary stream that takes text lines and flushes after each write."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    @property
    def stream(self) -> IO[bytes]:
        """The binary stream written to (a live view draws on it when it is a terminal)."""
        return self._stream

    def lines(self, lines: Iterable[str]) -> None:
        """Write each of ``lines`` with a newline, then flush; `OutputClosed` if nobody reads."""
        data = "".join(f"{line}\n" for line in lines).encode("utf-8", "surrogateescape")
        try:
            self._stream.write(data)
            self._stream.flush()
        except (BrokenPipeError, ValueError):  # ValueError: the stream itself was closed
            raise OutputClosed() from None

    def line(self, line: str) -> None:
        """Write one line (see `lines`)."""
        self.lines((line,))


def message_lines(message: Message) -> list[str]:
    """``message`` as AMI shows it: ``Name: Value`` lines in wire order, then a blank line."""
    return [f"{name}: {value}" for name, value in message.pairs()] + [""]


def action_json(response: Message) -> dict[str, Any]:
    """
    The ``--json`` answer of an action: ``response`` (its headers), ``items``
    (a list action's events, else empty) and ``list_complete`` (the event
    that ended the list, else null).
    """
    complete = response.list_complete
    return {
        "response": message_dict(response),
        "items": [message_dict(item) for item in response.events],
        "list_complete": message_dict(complete) if complete is not None else None,
    }
