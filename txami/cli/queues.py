"""
``txami queues [NAME ...]``: the queues of the PBX with their members and
waiting callers, live.

Each queue gets a line with its callers, the longest wait and the members
available, a line of its counters (completed, abandoned, average hold and
talk times, the service level), a table of its members (status, paused and
why, calls taken, last call, in a call) and one of its waiting callers
(position, channel, caller ID, wait).  `txami.cli.live` keeps it up to
date, prints it once (``--once``) or as JSON (``--json``: the queues of
`PBXState.snapshot`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

from twisted.python import usage

from txami.cli.context import Context
from txami.cli.exitcodes import CLIError, ExitCode
from txami.cli.live import View, ViewOptions, run_view
from txami.cli.table import Column, clean, duration, layout, party, plural, render_rows
from txami.state import PBXState, Queue, QueueEntry, QueueMember

__all__ = ["CALLER_COLUMNS", "MEMBER_COLUMNS", "Options", "QueuesView", "last_call", "run"]

#: The member table: Interface narrows first, then Member and Paused; then Interface is
#: left out, then Last call.
MEMBER_COLUMNS = (
    Column("Member", shrink=2, minimum=10),
    Column("Interface", shrink=1, minimum=12, drop=1),
    Column("Status", minimum=6),
    Column("Paused", shrink=3, minimum=6),
    Column("Taken", right=True),
    Column("Last call", drop=2),
    Column("In call"),
)
#: The waiting callers: Caller ID narrows first, then Channel.
CALLER_COLUMNS = (
    Column("Position", right=True),
    Column("Channel", shrink=2, minimum=16),
    Column("Caller ID", shrink=1, minimum=10),
    Column("Wait", right=True),
)
#: A member's device state as app_queue's ``queue show`` names it.
STATUS = (
    "Unknown",
    "Not in use",
    "In use",
    "Busy",
    "Invalid",
    "Unavailable",
    "Ringing",
    "Ring+Inuse",
    "On Hold",
)
_INDENT = "  "


class Options(ViewOptions):
    """The options and arguments of ``txami queues``."""

    synopsis = "Usage: txami queues [NAME ...] [--once] [--json] [--width N] [--rate N] [options]"
    longdesc = (
        "Show the queues (all, or those NAMEd) with their counters, members (status, "
        "paused and why, calls taken, in a call) and waiting callers (position, wait), "
        "kept up to date in place on a terminal until Ctrl-C or q.  Piped, it prints a "
        "snapshot at each change; --once prints one and exits; --json prints snapshots "
        "as JSON."
    )

    def parseArgs(self, *names: str) -> None:
        """The queues to show (default: all)."""
        for name in names:
            if not name or any(c in name for c in "\r\n\0"):
                raise usage.UsageError(f"{name!r} is not a queue name")
        self["names"] = list(dict.fromkeys(names))


def last_call(when: int, now: float) -> str:
    """A member's last call: ``never``, the time of day within a day, else the date (local)."""
    if when <= 0:
        return "never"
    if -300 <= now - when < 86400:
        return time.strftime("%H:%M:%S", time.localtime(when))
    return time.strftime("%Y-%m-%d", time.localtime(when))


def _member_row(member: QueueMember, now: float) -> list[str]:
    status = member.status
    text = STATUS[status] if 0 <= status < len(STATUS) else str(status)
    if member.paused:
        paused = f"yes ({member.paused_reason})" if member.paused_reason else "yes"
    else:
        paused = "no"
    return [
        clean(member.name or member.interface),
        clean(member.interface),
        text,
        clean(paused),
        str(member.calls_taken),
        last_call(member.last_call, now),
        "yes" if member.in_call else "no",
    ]


def _members(queue: Queue) -> list[QueueMember]:
    """A queue's members by name (then interface), so an agent is easy to find and stays put."""
    return sorted(queue.members.values(), key=lambda m: (m.name or m.interface, m.interface))


def _caller_row(entry: QueueEntry, now: float) -> list[str]:
    channel = entry.channel
    caller = party(channel.caller_id_name, channel.caller_id_num) if channel is not None else ""
    return [str(entry.position), clean(entry.name), clean(caller), duration(now - entry.joined)]


def _heading(queue: Queue, now: float) -> list[str]:
    waiting = plural(queue.calls, "caller") + " waiting"
    longest = queue.longest_wait
    if longest is not None:
        waiting += f" (longest {duration(now - longest)})"
    members = f"{queue.available} of {plural(len(queue.members), 'member')} available"
    strategy = f", {clean(queue.strategy)}" if queue.strategy else ""
    limit = f", max {queue.max}" if queue.max > 0 else ""
    counters = [
        f"completed {queue.completed}",
        f"abandoned {queue.abandoned}",
        f"hold {queue.holdtime} s",
        f"talk {queue.talktime} s",
    ]
    if queue.service_level > 0:
        counters.append(
            f"service level {queue.service_level_perf:.1f}% within {queue.service_level} s"
        )
    return [
        f"Queue {clean(queue.name)}: {waiting}, {members}{strategy}{limit}",
        _INDENT + ", ".join(counters),
    ]


class QueuesView(View):
    """What ``txami queues`` shows, and the changes it redraws on."""

    name = "queues"
    empty = "No queues."
    topics: ClassVar[Mapping[str, str]] = {"queues": "the queues"}

    def __init__(self, options: Any) -> None:
        super().__init__(options)
        self.names: list[str] = options["names"]

    def _queues(self, state: PBXState) -> list[Queue]:
        queues = state.queues
        if self.names:
            return [queues[n] for n in self.names if n in queues]
        return [queues[n] for n in sorted(queues)]

    def check(self, state: PBXState) -> None:
        """Every queue NAMEd exists (`CLIError` 1 if one does not)."""
        missing = [n for n in self.names if n not in state.queues]
        if missing:
            known = ", ".join(sorted(state.queues)) or "none"
            raise CLIError(
                ExitCode.ACTION_FAILED,
                f"no queue {', '.join(map(repr, missing))} on the PBX (its queues: {known})",
            )

    def body(self, state: PBXState, now: float, width: int | None) -> list[str]:
        """Each queue: its heading, counters, members and waiting callers."""
        queues = self._queues(state)
        members = [[_member_row(m, now) for m in _members(q)] for q in queues]
        callers = [[_caller_row(e, now) for e in q.entries] for q in queues]
        indent = len(_INDENT)
        member_widths = layout(MEMBER_COLUMNS, [r for b in members for r in b], width, indent)
        caller_widths = layout(CALLER_COLUMNS, [r for b in callers for r in b], width, indent)
        lines: list[str] = []
        for queue, member_rows, caller_rows in zip(queues, members, callers, strict=True):
            if lines:
                lines.append("")
            lines.extend(_heading(queue, now))
            if member_rows:
                lines.extend(render_rows(MEMBER_COLUMNS, member_widths, member_rows, _INDENT))
            else:
                lines.append(_INDENT + "No members.")
            if caller_rows:
                lines.extend(render_rows(CALLER_COLUMNS, caller_widths, caller_rows, _INDENT))
            else:
                lines.append(_INDENT + "No callers waiting.")
        return lines

    def summary(self, state: PBXState) -> str:
        """``1 queue, 2 callers waiting``."""
        queues = self._queues(state)
        waiting = sum(q.calls for q in queues)
        return f"{plural(len(queues), 'queue')}, {plural(waiting, 'caller')} waiting"

    def json(self, state: PBXState) -> dict[str, Any]:
        """The snapshot's queues (those NAMEd), with its version, time, server and limits."""
        snapshot = state.snapshot()
        found = {key: snapshot[key] for key in ("version", "time", "synced", "server", "limits")}
        found["queues"] = {q.name: snapshot["queues"][q.name] for q in self._queues(state)}
        return found

    # What a queue shows: its own changes, and its waiting callers' caller IDs.
    def queue_new(self, queue: Any) -> None:
        self.changed()

    def queue_updated(self, queue: Any, changed_fields: frozenset[str]) -> None:
        self.changed()

    def queue_gone(self, queue: Any, reason: str) -> None:
        self.changed()

    def queue_member_added(self, queue: Any, member: Any) -> None:
        self.changed()

    def queue_member_updated(
        self, queue: Any, member: Any, changed_fields: frozenset[str]
    ) -> None:
        self.changed()

    def queue_member_removed(self, queue: Any, member: Any, reason: str) -> None:
        self.changed()

    def queue_entry_joined(self, queue: Any, entry: Any) -> None:
        self.changed()

    def queue_entry_updated(self, queue: Any, entry: Any, changed_fields: frozenset[str]) -> None:
        self.changed()

    def queue_entry_left(self, queue: Any, entry: Any, reason: str) -> None:
        self.changed()

    def channel_updated(self, channel: Any, changed_fields: frozenset[str]) -> None:
        if changed_fields & _CALLER_FIELDS and any(
            e.channel is channel for q in self._watched() for e in q.entries
        ):
            self.changed()

    def _watched(self) -> list[Queue]:
        state = self.state
        return self._queues(state) if state is not None else []


_CALLER_FIELDS = frozenset({"caller_id_name", "caller_id_num"})


async def run(context: Context) -> int:
    """Follow the queues until Ctrl-C (or print them once)."""
    return await run_view(context, QueuesView(context.options))
