"""
Text tables for ``txami calls`` and ``txami queues``: safe cells, display
widths, and columns that shrink to fit a terminal.

Everything shown comes from the PBX, and a caller ID is chosen by whoever
calls: `clean` turns control characters (an escape sequence in a caller's
name would otherwise drive the operator's terminal) into ``?`` and bytes
that were not UTF-8 into U+FFFD.  Widths count what a terminal shows: East
Asian wide characters take two columns, combining marks none.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ELLIPSIS",
    "Column",
    "clean",
    "cut",
    "display_width",
    "duration",
    "layout",
    "party",
    "plural",
    "render_rows",
]

#: Marks a cell or a line that was cut to fit.
ELLIPSIS = "\u2026"
#: Columns between two table columns.
GAP = 2


def clean(text: str) -> str:
    """``text`` safe to print on a terminal: controls become ``?``, undecodable bytes U+FFFD."""
    if text.isprintable():
        return text
    out = []
    for c in text:
        if c.isprintable():
            out.append(c)
        elif c.isspace():
            out.append(" ")
        elif "\udc80" <= c <= "\udcff":  # a byte that was not UTF-8 (surrogateescape)
            out.append("\ufffd")
        else:
            out.append("?")
    return "".join(out)


def _char_width(c: str) -> int:
    if unicodedata.combining(c):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def display_width(text: str) -> int:
    """How many terminal columns ``text`` (already `clean`) takes."""
    if text.isascii():
        return len(text)
    return sum(_char_width(c) for c in text)


def cut(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` columns, ending with `ELLIPSIS` if it was cut."""
    if display_width(text) <= width:
        return text
    if width <= 0:
        return ""
    room = width - 1
    used = 0
    out = []
    for c in text:
        w = _char_width(c) if not c.isascii() else 1
        if used + w > room:
            break
        out.append(c)
        used += w
    return "".join(out) + ELLIPSIS


def _pad(text: str, width: int, right: bool) -> str:
    room = width - display_width(text)
    if room <= 0:
        return text
    return " " * room + text if right else text + " " * room


@dataclass(frozen=True)
class Column:
    """
    A table column: its ``title``, whether it is aligned ``right``, and how
    it gives way when the table is too wide.  First the columns with a
    ``shrink`` rank (1 first, then 2, ...) narrow, down to ``minimum``
    columns each (those of one rank in turns, the widest first); if that
    is not enough, the columns with a ``drop`` rank
    are left out (1 first, ...), and the others widen again as far as the
    room allows.  A rank of 0 never shrinks, or is never dropped.
    """

    title: str
    right: bool = False
    shrink: int = 0
    minimum: int = 8
    drop: int = 0


def layout(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int | None, indent: int = 0
) -> list[int]:
    """
    The width of each column (0: left out): wide enough for its title and
    every cell, then fitted into ``width`` terminal columns with ``indent``
    (`None`: no limit) as `Column` says.  If the table cannot fit even
    then, whoever prints the lines cuts them.
    """
    natural = [display_width(c.title) for c in columns]
    for row in rows:
        for i, cell in enumerate(row):
            w = display_width(cell)
            if w > natural[i]:
                natural[i] = w
    if width is None:
        return natural
    dropped: set[int] = set()
    widths = _shrink(columns, natural, dropped, width - indent)
    for rank in sorted({c.drop for c in columns if c.drop}):
        if sum(widths) + GAP * (len(columns) - len(dropped) - 1) <= width - indent:
            break
        dropped.update(i for i, c in enumerate(columns) if c.drop == rank)
        widths = _shrink(columns, natural, dropped, width - indent)
    return widths


def _shrink(
    columns: Sequence[Column], natural: list[int], dropped: set[int], room: int
) -> list[int]:
    """``natural`` narrowed by shrink rank until the kept columns fit in ``room``."""
    widths = [0 if i in dropped else w for i, w in enumerate(natural)]
    excess = sum(widths) + GAP * (len(columns) - len(dropped) - 1) - room
    for rank in sorted({c.shrink for c in columns if c.shrink}):
        ranked = [i for i, c in enumerate(columns) if c.shrink == rank and i not in dropped]
        while excess > 0:
            # The widest of the rank gives a column, so columns of one rank end up even.
            room_left = [(widths[i] - columns[i].minimum, widths[i], -i) for i in ranked]
            spare, _, negative = max(room_left, default=(0, 0, 0))
            if spare <= 0:
                break
            widths[-negative] -= 1
            excess -= 1
        if excess <= 0:
            break
    return widths


def render_rows(
    columns: Sequence[Column],
    widths: Sequence[int],
    rows: Sequence[Sequence[str]],
    indent: str = "",
    title: bool = True,
) -> list[str]:
    """
    The title line (if ``title``) and one line per row: each cell cut to its
    column's width, the columns `layout` left out (width 0) skipped.
    """
    lines = []
    if title:
        lines.append(_line(columns, widths, [c.title for c in columns], indent))
    lines.extend(_line(columns, widths, row, indent) for row in rows)
    return lines


def _line(
    columns: Sequence[Column], widths: Sequence[int], cells: Sequence[str], indent: str
) -> str:
    parts = [
        _pad(cut(cell, width), width, column.right)
        for column, width, cell in zip(columns, widths, cells, strict=True)
        if width > 0
    ]
    return (indent + (" " * GAP).join(parts)).rstrip()


# --- cells ---------------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """``HH:MM:SS`` of whole ``seconds`` (never negative), as Asterisk prints durations."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def party(name: str, number: str) -> str:
    """A caller ID or connected line: ``Alice <201>``, ``201``, ``Alice``, or ``""``."""
    if name and number:
        return f"{name} <{number}>" if name != number else number
    return name or number


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 call``, ``2 calls``."""
    return f"{count} {word if count == 1 else words or word + 's'}"
