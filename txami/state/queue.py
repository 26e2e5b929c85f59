"""
`Queue`, `QueueMember` and `QueueEntry`: an app_queue queue, its agents and
its waiting callers.

List rows and events name some fields differently (``Name``/``Location`` in
``QueueMember`` rows, ``MemberName``/``Interface`` in ``QueueMember*``
events); both are read into the same attributes here.
"""

from __future__ import annotations

import math
from typing import Any

from txami.message import Message
from txami.state.fields import header, intern_value, to_int
from txami.state.objects import Channel

__all__ = [
    "DEVICE_STATES",
    "MEMBER_FIELDS",
    "QUEUE_FIELDS",
    "Queue",
    "QueueEntry",
    "QueueMember",
]

#: Asterisk's device state numbers (a queue member's ``Status``) and names.
DEVICE_STATES = (
    "UNKNOWN",
    "NOT_INUSE",
    "INUSE",
    "BUSY",
    "INVALID",
    "UNAVAILABLE",
    "RINGING",
    "RINGINUSE",
    "ONHOLD",
)

#: The fields of `Queue.as_dict` (besides ``members`` and ``entries``).
QUEUE_FIELDS = (
    "name",
    "strategy",
    "max",
    "weight",
    "service_level",
    "calls",
    "holdtime",
    "talktime",
    "completed",
    "abandoned",
    "service_level_perf",
    "service_level_perf2",
)

#: Member attribute -> (list row header, event header, is a number).
_MEMBER_HEADERS: dict[str, tuple[str, str, bool]] = {
    "name": ("Name", "MemberName", False),
    "state_interface": ("StateInterface", "StateInterface", False),
    "membership": ("Membership", "Membership", False),
    "penalty": ("Penalty", "Penalty", True),
    "calls_taken": ("CallsTaken", "CallsTaken", True),
    "last_call": ("LastCall", "LastCall", True),
    "last_pause": ("LastPause", "LastPause", True),
    "login_time": ("LoginTime", "LoginTime", True),
    "in_call": ("InCall", "InCall", True),
    "status": ("Status", "Status", True),
    "paused": ("Paused", "Paused", True),
    "paused_reason": ("PausedReason", "PausedReason", False),
    "wrapup_time": ("Wrapuptime", "Wrapuptime", True),
    "ring_in_use": ("Ringinuse", "Ringinuse", True),
}

#: The fields of `QueueMember.as_dict`, in order.
MEMBER_FIELDS = ("interface", "status_text", *_MEMBER_HEADERS)

_BOOLEAN = frozenset({"in_call", "paused", "ring_in_use"})


class QueueMember:
    """
    An agent of a queue, by ``interface``.  ``status`` is its device state
    number (1 not in use, 2 in use, 6 ringing, ...; `status_text` its name),
    ``paused``/``in_call``/``ring_in_use`` are booleans, ``last_call``,
    ``last_pause`` and ``login_time`` Unix times (0: never), ``penalty``,
    ``calls_taken`` and ``wrapup_time`` numbers.  Fields a version of
    Asterisk does not send keep their defaults (``PausedReason``,
    ``LoginTime`` and ``Wrapuptime`` came with 13 to 16).
    """

    __slots__ = ("interface", *_MEMBER_HEADERS)

    def __init__(self, interface: str) -> None:
        self.interface = interface
        self.name = ""
        self.state_interface = ""
        self.membership = ""
        self.penalty = 0
        self.calls_taken = 0
        self.last_call = 0
        self.last_pause = 0
        self.login_time = 0
        self.in_call = False
        self.status = 0
        self.paused = False
        self.paused_reason = ""
        self.wrapup_time = 0
        self.ring_in_use = False

    def __repr__(self) -> str:
        paused = " paused" if self.paused else ""
        return f"<QueueMember {self.interface!r} {self.status_text}{paused}>"

    @property
    def status_text(self) -> str:
        """The name of `status` (``NOT_INUSE``, ``INUSE``, ``RINGING``, ...)."""
        status = self.status
        return DEVICE_STATES[status] if 0 <= status < len(DEVICE_STATES) else str(status)

    def apply(self, message: Message, text: str, row: bool) -> list[str] | None:
        """Take the fields a list row (``row``) or event carries; return those that changed."""
        changed: list[str] = []
        for attribute, (row_name, event_name, number) in _MEMBER_HEADERS.items():
            raw = header(message, row_name if row else event_name, text)
            if raw is None:
                continue
            value: Any
            if number:
                value = to_int(raw)
                if attribute in _BOOLEAN:
                    value = bool(value)
            else:
                value = intern_value(raw)
            if value != getattr(self, attribute):
                setattr(self, attribute, value)
                changed.append(attribute)
        return changed or None

    def as_dict(self) -> dict[str, Any]:
        """This member as plain JSON-able data."""
        found: dict[str, Any] = {"interface": self.interface, "status_text": self.status_text}
        for attribute in _MEMBER_HEADERS:
            found[attribute] = getattr(self, attribute)
        return found


class QueueEntry:
    """
    A caller waiting in a queue: its `Channel` (`None` if the model does not
    know it), ``uniqueid`` and ``name`` of that channel, its ``position``
    (1 is next; positions close up when a caller ahead leaves), when it
    ``joined`` (model clock) and its queue ``priority``.
    """

    __slots__ = ("abandoned", "channel", "joined", "name", "position", "priority", "uniqueid")

    def __init__(
        self, uniqueid: str, name: str, channel: Channel | None, position: int, joined: float
    ) -> None:
        self.uniqueid = uniqueid
        self.name = name
        self.channel = channel
        self.position = position
        self.joined = joined
        self.priority = 0
        self.abandoned = False

    def __repr__(self) -> str:
        return f"<QueueEntry {self.position}: {self.name!r}>"

    def as_dict(self) -> dict[str, Any]:
        """This entry as plain JSON-able data."""
        return {
            "uniqueid": self.uniqueid,
            "channel": self.name,
            "position": self.position,
            "joined": self.joined,
            "priority": self.priority,
        }


class Queue:
    """
    A queue: its parameters (``strategy``, ``max``, ``weight``,
    ``service_level``), its counters, its `members` (by interface) and its
    `entries` (waiting callers, in position order; `calls` is their number).

    The counters follow the events, as app_queue computes them, so they never
    freeze at the values of the last sync: ``completed`` counts
    ``AgentComplete``, ``abandoned`` ``QueueCallerAbandon``; ``holdtime`` and
    ``talktime`` are app_queue's running averages (3/4 old + 1/4 new, in
    seconds) fed with each ``AgentConnect``'s ``HoldTime`` and each
    ``AgentComplete``'s ``TalkTime``; ``service_level_perf`` (answered within
    ``service_level`` seconds, percent of completed) and
    ``service_level_perf2`` (the same, counting abandoned calls too) are
    recomputed from those.  Every sync re-reads them from ``QueueParams``.
    """

    __slots__ = (
        "_abandoned_in_sl",
        "_completed_in_sl",
        "_connected_in_sl",
        "abandoned",
        "completed",
        "entries",
        "holdtime",
        "max",
        "members",
        "name",
        "service_level",
        "service_level_perf",
        "service_level_perf2",
        "strategy",
        "talktime",
        "weight",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.strategy = ""
        self.max = 0
        self.weight = 0
        self.service_level = 0
        self.holdtime = 0
        self.talktime = 0
        self.completed = 0
        self.abandoned = 0
        self.service_level_perf = 0.0
        self.service_level_perf2 = 0.0
        self.members: dict[str, QueueMember] = {}
        self.entries: list[QueueEntry] = []
        self._completed_in_sl = 0
        self._abandoned_in_sl = 0
        #: Member interface -> whether its current call was answered within the service level.
        self._connected_in_sl: dict[str, bool] = {}

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} {len(self.members)} members {len(self.entries)} waiting>"

    @property
    def calls(self) -> int:
        """How many callers wait."""
        return len(self.entries)

    @property
    def available(self) -> int:
        """Members not paused whose device is not in use (app_queue's "available")."""
        return sum(1 for m in self.members.values() if not m.paused and m.status in (0, 1))

    @property
    def longest_wait(self) -> float | None:
        """When the caller waiting longest joined (model clock), or `None`."""
        return min((e.joined for e in self.entries), default=None)

    def entry(self, uniqueid: str) -> QueueEntry | None:
        """The waiting caller whose channel is ``uniqueid``, or `None`."""
        for entry in self.entries:
            if entry.uniqueid == uniqueid:
                return entry
        return None

    def apply_params(self, message: Message, text: str) -> list[str] | None:
        """Take a ``QueueParams`` row; return the fields that changed."""
        changed: list[str] = []
        for attribute, name in (
            ("strategy", "Strategy"),
            ("max", "Max"),
            ("weight", "Weight"),
            ("service_level", "ServiceLevel"),
            ("holdtime", "Holdtime"),
            ("talktime", "TalkTime"),
            ("completed", "Completed"),
            ("abandoned", "Abandoned"),
            ("service_level_perf", "ServicelevelPerf"),
            ("service_level_perf2", "ServicelevelPerf2"),
        ):
            raw = header(message, name, text)
            if raw is None:
                continue
            value: Any
            if attribute == "strategy":
                value = intern_value(raw)
            elif attribute.startswith("service_level_perf"):
                try:
                    value = float(raw)
                except ValueError:
                    continue
                if not math.isfinite(value):
                    continue
            else:
                value = to_int(raw)
            if value != getattr(self, attribute):
                setattr(self, attribute, value)
                changed.append(attribute)
        # What app_queue counts internally, recovered from its percentages.
        self._completed_in_sl = round(self.service_level_perf * self.completed / 100)
        both = round(self.service_level_perf2 * (self.completed + self.abandoned) / 100)
        self._abandoned_in_sl = max(0, both - self._completed_in_sl)
        return changed or None

    def recompute_perf(self) -> list[str]:
        """Recompute the service level percentages; the fields that changed."""
        changed = []
        completed, abandoned = self.completed, self.abandoned
        perf = round(100 * self._completed_in_sl / completed, 1) if completed else 0.0
        both = completed + abandoned
        perf2 = (
            round(100 * (self._completed_in_sl + self._abandoned_in_sl) / both, 1) if both else 0.0
        )
        if perf != self.service_level_perf:
            self.service_level_perf = perf
            changed.append("service_level_perf")
        if perf2 != self.service_level_perf2:
            self.service_level_perf2 = perf2
            changed.append("service_level_perf2")
        return changed

    def as_dict(self) -> dict[str, Any]:
        """This queue as plain JSON-able data, with its members and entries."""
        found: dict[str, Any] = {attribute: getattr(self, attribute) for attribute in QUEUE_FIELDS}
        found["members"] = {i: m.as_dict() for i, m in self.members.items()}
        found["entries"] = [e.as_dict() for e in self.entries]
        return found
