"""
What the session can see, and so what the model cannot track: the self-check
behind `PBXState.limits`.

Tracking needs events of four read classes: ``call`` (channels, bridges,
calls, device states, hints, presence), ``dialplan`` (``Newexten``: a
channel's ``application``), ``agent`` (queues) and ``system``
(``FullyBooted``, one way to notice an Asterisk restart); and the list
actions of the sync, which need the ``system`` or ``reporting`` write class
(``CoreShowChannels``, ``CoreStatus``) or ``call``/``reporting``
(``DeviceStateList``, ``ExtensionStateList``, ``PresenceStateList``).

Three things can take events away: the user's read permissions
(manager.conf; read here with ``manager show user`` when the session may run
CLI commands, else judged from ``FullyBooted``), the session's event mask
(``Events``) and its filters (``Filter``).  Each limit is one entry of a
mapping: what cannot be tracked -> why, in words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = [
    "NEEDED",
    "NEEDED_CLASSES",
    "TOPICS",
    "add_limit",
    "classes_of_mask",
    "describe",
    "filter_limits",
    "limits_of_classes",
    "read_permissions",
]

#: What the model tracks from events: (topic, the read class, the events it uses).
NEEDED: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "channels",
        "call",
        (
            "Newchannel",
            "Newstate",
            "Hangup",
            "NewCallerid",
            "NewConnectedLine",
            "NewAccountCode",
            "Rename",
            "Hold",
            "Unhold",
            "DialBegin",
            "DialState",
            "DialEnd",
            "LocalBridge",
            "LocalOptimizationBegin",
            "LocalOptimizationEnd",
            "BridgeCreate",
            "BridgeEnter",
            "BridgeLeave",
            "BridgeDestroy",
            "BridgeMerge",
        ),
    ),
    (
        "devices",
        "call",
        ("DeviceStateChange", "ExtensionStatus", "PresenceStateChange", "PresenceStatus"),
    ),
    ("dialplan", "dialplan", ("Newexten",)),
    (
        "queues",
        "agent",
        (
            "QueueCallerJoin",
            "QueueCallerLeave",
            "QueueCallerAbandon",
            "QueueMemberAdded",
            "QueueMemberRemoved",
            "QueueMemberStatus",
            "QueueMemberPause",
            "QueueMemberPenalty",
            "QueueMemberRinginuse",
            "AgentConnect",
            "AgentComplete",
        ),
    ),
    ("restarts", "system", ("FullyBooted",)),
)

#: The read classes the model needs.
NEEDED_CLASSES = frozenset(cls for _, cls, _ in NEEDED)

#: What each limit topic covers, for the log line.
TOPICS = {
    "channels": "channels, bridges and calls",
    "dialplan": "the channels' dialplan application",
    "queues": "queues, their members, callers and counters",
    "devices": "device states, hints and presence",
    "restarts": "noticing an Asterisk restart",
    "filters": "events the filters may drop",
}

_ALL = NEEDED_CLASSES
_ON = frozenset({"on", "yes", "true", "all", "1"})
_OFF = frozenset({"off", "no", "false", "0", ""})


def classes_of_mask(mask: str) -> frozenset[str] | None:
    """The needed classes an event mask lets through; `None` if it cannot be read."""
    words = [w.strip().lower() for w in mask.split(",")]
    if len(words) == 1 and words[0] in _ON:
        return _ALL
    if len(words) == 1 and words[0] in _OFF:
        return frozenset()
    if any(w.isdigit() for w in words):
        return None  # a numeric mask: not worth decoding
    if "all" in words:
        return _ALL
    return frozenset(w for w in words if w in _ALL)


def read_permissions(output: Iterable[str]) -> frozenset[str] | None:
    """The read classes in ``manager show user`` output, or `None` if absent."""
    for line in output:
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() == "read perm":
            words = {w.strip().lower() for w in value.split(",")}
            return _ALL if "all" in words else frozenset(words & _ALL)
    return None


def limits_of_classes(classes: frozenset[str], why: str) -> dict[str, str]:
    """One limit per needed class missing from ``classes`` (``why`` says whose classes)."""
    found: dict[str, str] = {}
    for topic, name, _ in NEEDED:
        if name not in classes:
            reason = f"no '{name}' events: {why} lacks that class"
            if name == "system":
                reason += " (CoreStatus is used instead, if permitted)"
            add_limit(found, topic, reason)
    return found


def add_limit(limits: dict[str, str], topic: str, reason: str) -> None:
    """Record ``reason`` under ``topic`` (after any reason already there)."""
    earlier = limits.get(topic)
    limits[topic] = reason if not earlier or reason in earlier else f"{earlier}; {reason}"


def filter_limits(rules: Iterable[str]) -> dict[str, str]:
    """
    The needed events that the session's filter rules drop.  A rule is
    Asterisk's regular expression over the event text, ``!`` first to
    exclude.  Rules that look at other headers than ``Event`` cannot be
    judged here and are reported as possibly dropping events.
    """
    include: list[re.Pattern[str]] = []
    exclude: list[re.Pattern[str]] = []
    unclear: list[str] = []
    for rule in rules:
        negate = rule.startswith("!")
        body = rule[1:] if negate else rule
        try:
            pattern = re.compile(body)
        except re.error:
            unclear.append(rule)
            continue
        if not re.match(r"\^?Event", body, re.IGNORECASE):
            unclear.append(rule)
        (exclude if negate else include).append(pattern)
    found: dict[str, str] = {}
    for topic, _, events in NEEDED:
        dropped = []
        for event in events:
            text = f"Event: {event}\r\n"
            passes = (not include or any(p.search(text) for p in include)) and not any(
                p.search(text) for p in exclude
            )
            if not passes:
                dropped.append(event)
        if dropped:
            add_limit(found, topic, "the session's filters drop " + ", ".join(dropped))
    if unclear:
        found["filters"] = (
            "filters on other headers than Event may drop events the model needs: "
            + "; ".join(unclear)
        )
    return found


def describe(limits: Mapping[str, str]) -> str:
    """One line for the log."""
    if not limits:
        return "the AMI session can see everything the state model tracks"
    return "the state model cannot track everything: " + " | ".join(
        f"{topic} ({TOPICS.get(topic, topic)}): {why}" for topic, why in limits.items()
    )
