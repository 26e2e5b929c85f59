"""
How the built-in actions write their answers, as Asterisk's manager.c does:
``Response: Success``/``Error`` with the ActionID echoed, and list actions
(``EventList: start``, one event per item, ``EventList: Complete`` with
``ListItems``).  Also C's forgiving number and boolean parsing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from txami.message import Message
from txami.testing.handler import Action, Pairs, Session

__all__ = [
    "ack",
    "complete",
    "error",
    "id_pairs",
    "item",
    "list_start",
    "response",
    "scan_int",
    "true",
]

_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
_INT = re.compile(r"\s*([+-]?\d+)")


def response(
    action: Message,
    message: str | None = None,
    *,
    status: str = "Success",
    headers: Sequence[tuple[str, str]] = (),
) -> Message:
    """
    The reply to ``action`` as Asterisk shapes one: ``Response``, the action's
    ``ActionID`` (if it had one), ``Message`` (if given), then ``headers``.
    For handlers given to ``FakeAsterisk.add_action``.
    """
    pairs: Pairs = [("Response", status)]
    action_id = action.get("ActionID")
    if action_id:
        pairs.append(("ActionID", action_id))
    if message is not None:
        pairs.append(("Message", message))
    pairs.extend(headers)
    return Message(pairs)


def id_pairs(action: Action) -> Pairs:
    """``[("ActionID", id)]``, or nothing when the action had none."""
    action_id = action.action_id
    return [("ActionID", action_id)] if action_id else []


def ack(
    session: Session, action: Action, message: str | None = None, *extra: tuple[str, str]
) -> None:
    """Answer ``Response: Success`` (with ``Message`` if given, then ``extra``)."""
    pairs: Pairs = [("Response", "Success"), *id_pairs(action)]
    if message is not None:
        pairs.append(("Message", message))
    pairs.extend(extra)
    session.write_response(pairs)


def error(session: Session, action: Action, message: str, *extra: tuple[str, str]) -> None:
    """Answer ``Response: Error`` with ``message``."""
    session.write_response(
        [("Response", "Error"), *id_pairs(action), ("Message", message), *extra]
    )


def list_start(session: Session, action: Action, message: str) -> None:
    """Start a list: ``Response: Success``, ``EventList: start``, ``message``."""
    session.write_response(
        [("Response", "Success"), *id_pairs(action), ("EventList", "start"), ("Message", message)]
    )


def item(session: Session, event: str, pairs: Pairs) -> None:
    """One list item (an event; ``pairs`` carry the ActionID where Asterisk puts it)."""
    session.write_response([("Event", event), *pairs])


def complete(
    session: Session, action: Action, event: str, count: int, *extra: tuple[str, str]
) -> None:
    """End a list: ``event`` with ``EventList: Complete`` and ``ListItems``."""
    session.write_response(
        [
            ("Event", event),
            *id_pairs(action),
            ("EventList", "Complete"),
            ("ListItems", str(count)),
            *extra,
        ]
    )


def scan_int(text: str) -> int | None:
    """C's ``sscanf("%d")``: a leading integer, or `None`."""
    match = _INT.match(text)
    return int(match.group(1)) if match else None


def true(text: str) -> bool:
    """Asterisk's ``ast_true``."""
    return text.strip().lower() in _TRUE
