"""
How `FakeAsterisk` answers as an older Asterisk release: ``FakeAsterisk(clock,
release="1.6.0.2")`` speaks that release's framings, so code can be tested
against an old server too.

A release changes the banner (its AMI version) and, where that release
answered differently from Asterisk 20, these actions (facts from each
release's ``main/manager.c``, ``main/db.c``, ``channels/chan_iax2.c`` and
``apps/app_queue.c``):

- ``Ping``: ``Response: Pong`` before 1.6; no ActionID from 1.6.0 to 1.6.1,
  and no blank line after it in 1.6.0 and 1.6.0.1.
- ``Events``: ``Response: Events On``/``Events Off`` before 1.6; no ActionID
  from 1.6.0 to 1.8.4, no blank line up to 1.6.0.19 and 1.6.1.11, and no
  answer at all to an invalid mask before 1.8.
- ``Command``: the ``Response: Follows`` framing before 14.
- ``Queues``: the bare text of ``queue show`` before 15 (later: unknown action).
- List actions before 13.2 (``Status``, ``QueueStatus``, ``QueueSummary``,
  ``DBGet``, ``VoicemailUsersList``, ``IAXpeerlist``): no ``EventList``
  headers; ``DBGet`` without ``DBGetComplete`` before 1.8; ``IAXpeers``
  answering with its ActionID and the CLI table before 1.6, and with items but
  no completion event in 1.6.

Every other action answers as the modern fake does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, cast

from txami.testing import permissions as perm
from txami.testing.handler import Action, ActionEntry, Handler, Pairs, Session

__all__ = ["ami_version_of", "release_actions", "release_numbers"]

#: Each major release's AMI version (the banner's); 13.x moved within its series.
_AMI_VERSIONS: tuple[tuple[tuple[int, ...], str], ...] = (
    ((1, 6), "1.0"),
    ((10,), "1.1"),
    ((11,), "1.2"),
    ((12,), "1.3"),
    ((13,), "2.0.0"),
    ((13, 1), "2.5.0"),
    ((13, 2), "2.6.0"),
    ((14,), "2.7.0"),
    ((15,), "2.8.0"),
)


def release_numbers(release: str) -> tuple[int, ...]:
    """``"1.6.0.2"`` as ``(1, 6, 0, 2)``; `ValueError` if it is not a release number."""
    if not re.fullmatch(r"\d+(\.\d+)*", release):
        raise ValueError(f"release must be an Asterisk version such as '1.8.4', not {release!r}")
    return tuple(int(part) for part in release.split("."))


def ami_version_of(release: str) -> str:
    """The AMI version in the banner of Asterisk ``release``."""
    numbers = release_numbers(release)
    for before, version in _AMI_VERSIONS:
        if numbers < before:
            return version
    return f"{numbers[0] - 11}.0.0"  # 15: 4.0.0 ... 20: 9.0.0


def _between(numbers: tuple[int, ...], first: tuple[int, ...], until: tuple[int, ...]) -> bool:
    return first <= numbers < until


# --- answers ------------------------------------------------------------------------------


def _id_line(action: Action) -> str:
    action_id = action.action_id
    return f"ActionID: {action_id}\r\n" if action_id else ""


def _ping(numbers: tuple[int, ...]) -> Handler:
    def handle(session: Session, action: Action) -> None:
        if numbers < (1, 6):
            session.write_raw_response(f"Response: Pong\r\n{_id_line(action)}\r\n")
        elif numbers < (1, 6, 0, 2):
            session.write_raw_response("Response: Success\r\nPing: Pong\r\n")
        elif numbers < (1, 6, 2):
            session.write_raw_response("Response: Success\r\nPing: Pong\r\n\r\n")
        else:
            session.write_raw_response(
                f"Response: Success\r\n{_id_line(action)}Ping: Pong\r\n\r\n"
            )

    return handle


def _events(numbers: tuple[int, ...]) -> Handler:
    unterminated = _between(numbers, (1, 6), (1, 6, 0, 20)) or _between(
        numbers, (1, 6, 1), (1, 6, 1, 12)
    )

    def handle(session: Session, action: Action) -> None:
        mask = perm.event_mask(action.get("EventMask"))
        if mask is None:
            if numbers < (1, 6) or numbers >= (1, 8):
                session.write_raw_response(
                    f"Response: Error\r\n{_id_line(action)}Message: Invalid event mask\r\n\r\n"
                )
            return  # 1.6 does not answer an invalid mask at all
        session.event_mask = mask
        word = "On" if mask else "Off"
        if numbers < (1, 6):
            session.write_raw_response(f"Response: Events {word}\r\n{_id_line(action)}\r\n")
        else:
            end = "" if unterminated else "\r\n"
            session.write_raw_response(f"Response: Success\r\nEvents: {word}\r\n{end}")

    return handle


def _queues(session: Session, action: Action) -> None:
    """``queue show`` as app_queue of 1.8 prints it for the manager (CRLF lines)."""
    queues = session.factory.pbx.queues
    lines: list[str] = []
    if not queues:
        lines.append("No queues.")
    for queue in queues.values():
        limit = str(queue.max) if queue.max else "unlimited"
        lines.append(
            f"{queue.name:<12.12} has {len(queue.callers)} calls (max {limit}) in "
            f"'{queue.strategy}' strategy ({queue.hold_time}s holdtime, {queue.talk_time}s "
            f"talktime), W:{queue.weight}, C:{queue.completed}, A:{queue.abandoned}, "
            f"SL:0.0% within {queue.service_level}s"
        )
        if queue.members:
            lines.append("   Members: ")
            for member in queue.members:
                paused = " (paused)" if member.paused else ""
                lines.append(f"      {member.name or member.interface}{paused} (Not in use)")
        else:
            lines.append("   No Members")
        if queue.callers:
            lines.append("   Callers: ")
            lines += [
                f"      {n}. {c.name} (wait: 0:00, prio: 0)"
                for n, c in enumerate(queue.callers, 1)
            ]
        else:
            lines.append("   No Callers")
        lines.append("")
    session.write_raw_response("".join(f"{line}\r\n" for line in lines) + "\r\n\r\n")


def _iax_peers_text(session: Session, action: Action) -> None:
    """1.4's IAXpeers: the ActionID, then ``iax2 show peers`` as bare text."""
    row = "{:<15.15}  {:<15.15} {}  {:<15.15}  {:<5}{}  {} {:<10}\r\n"
    text = _id_line(action) + row.format(
        "Name/Username", "Host", "   ", "Mask", "Port", "   ", "   ", "Status"
    )
    peers = session.factory.pbx.iax_peers
    for peer in peers:
        text += row.format(
            peer.name,
            peer.host or "(Unspecified)",
            "(S)" if peer.host else "(D)",
            "255.255.255.255",
            peer.port if peer.host else 0,
            "(T)" if peer.trunk else "   ",
            "(E)" if peer.encryption else "   ",
            peer.status,
        )
    text += f"{len(peers)} iax2 peers [0 online, 0 offline, {len(peers)} unmonitored]\r\n"
    session.write_raw_response(text + "\r\n\r\n")


class _Rewriting:
    """A session whose written answers pass through ``rewrite`` (`None` drops one)."""

    def __init__(self, session: Session, rewrite: Callable[[Pairs], Pairs | None]) -> None:
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_rewrite", rewrite)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._session, name, value)

    def write_response(self, pairs: Iterable[tuple[str, str]]) -> None:
        rewritten = self._rewrite(list(pairs))
        if rewritten is not None:
            self._session.write_response(rewritten)


def _old_list(handler: Handler, drop_event: str = "") -> Handler:
    """``handler`` without ``EventList`` headers (and without the ``drop_event`` event)."""

    def rewrite(pairs: Pairs) -> Pairs | None:
        if drop_event and pairs[:1] == [("Event", drop_event)]:
            return None
        return [(k, v) for k, v in pairs if k.lower() != "eventlist"]

    def handle(session: Session, action: Action) -> Any:
        return handler(cast(Session, _Rewriting(session, rewrite)), action)

    return handle


def release_actions(release: str, builtin: dict[str, ActionEntry]) -> dict[str, ActionEntry]:
    """
    The entries of ``builtin`` (lower-case name -> entry) that Asterisk
    ``release`` answers differently, rewritten for it (plus ``Queues``).
    """
    numbers = release_numbers(release)
    changed: dict[str, Handler] = {}
    if numbers < (1, 8):
        changed["ping"] = _ping(numbers)
    if numbers < (1, 8, 5):
        changed["events"] = _events(numbers)
    if numbers < (13, 2):
        for name in ("status", "queuestatus", "queuesummary", "voicemailuserslist", "iaxpeerlist"):
            if name in builtin:
                changed[name] = _old_list(builtin[name].handler)
        if "dbget" in builtin:
            drop = "DBGetComplete" if numbers < (1, 8) else ""
            changed["dbget"] = _old_list(builtin["dbget"].handler, drop)
    if "iaxpeers" in builtin:
        if numbers < (1, 6):
            changed["iaxpeers"] = _iax_peers_text
        elif numbers < (1, 8):
            changed["iaxpeers"] = _old_list(builtin["iaxpeers"].handler, "PeerlistComplete")
    entries = {
        name: builtin[name]._replace(handler=handler)
        for name, handler in changed.items()
        if name in builtin
    }
    if numbers < (15,):
        entries["queues"] = ActionEntry("Queues", _queues, 0, "Queues.")
    return entries
