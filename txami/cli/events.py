"""
``txami events``: print events as they arrive, until Ctrl-C or ``--count``.

Each event is printed as AMI text (its headers, then a blank line) or, with
``--json``, as one JSON line (`txami.jsonform`: the daemon's event log
form), flushed at once so the output pipes into ``jq`` or ``grep``.

``--name`` keeps the events whose name matches one of its patterns (any
case; a glob such as ``Queue*``).  The server is asked to send less, too:
the login event mask comes from ``--events`` (or the PBX's ``events`` key),
and the session's filters from ``--filter`` (or its ``filter`` keys); when
neither gives filters, each ``--name`` of letters, digits, ``_``, ``*`` and
``?`` becomes a filter ``^Event: NAME``, so Asterisk drops the other events
before they cross the network.
"""

from __future__ import annotations

import re
from contextlib import suppress
from fnmatch import fnmatchcase
from typing import Any, ClassVar

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from txami.cli.context import Context
from txami.cli.exitcodes import CLIError, ExitCode, Interrupted
from txami.cli.options import CommandOptions
from txami.cli.output import OutputClosed, message_lines
from txami.cli.session import describe_reason
from txami.config import check_event_mask
from txami.jsonform import event_json
from txami.message import Message

__all__ = ["Options", "name_filter", "run"]

_log = Logger(namespace="txami.cli.events")
_SIMPLE = re.compile(r"[A-Za-z0-9_*?]+\Z")


def name_filter(pattern: str) -> str | None:
    """
    The AMI filter (a POSIX regular expression) that lets through the events
    named ``pattern`` (any case, ``*`` and ``?`` globs), or None if the
    pattern has other characters.  It may let more through (it matches a
    prefix), never less.
    """
    if not _SIMPLE.match(pattern):
        return None
    parts = []
    for c in pattern:
        if c == "*":
            parts.append(".*")
        elif c == "?":
            parts.append(".")
        elif c.isalpha():
            parts.append(f"[{c.upper()}{c.lower()}]")
        else:
            parts.append(c)
    return "^Event: " + "".join(parts)


class Options(CommandOptions):
    """The options of ``txami events``."""

    synopsis = "Usage: txami events [--name PATTERN ...] [--json] [--count N] [options]"
    longdesc = (
        "Print events as they arrive, until Ctrl-C (exit 0) or --count events.  "
        "--name keeps the events whose name matches (any case, globs such as Queue*; "
        "repeatable).  --events sets the login event mask and --filter adds AMI "
        "filters, so the server sends less."
    )
    optFlags: ClassVar[list[list[str | None]]] = [
        ["json", None, "Print each event as one JSON line."],
    ]
    optParameters: ClassVar[list[list[str | None]]] = [
        ["count", "n", None, "Stop after N events."],
        ["events", None, None, "Login event mask: on, off, or classes such as call,system."],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["names"] = []
        self["filters"] = []

    def opt_name(self, pattern: str) -> None:
        """Print only events named PATTERN (any case; * and ? globs; repeatable)."""
        if not pattern:
            raise usage.UsageError("--name must not be empty")
        self["names"].append(pattern)

    def opt_filter(self, rule: str) -> None:
        """An AMI event filter, e.g. 'Event: Hangup' or '!Channel: Local/.*' (repeatable)."""
        if not rule or any(c in rule for c in "\r\n\0"):
            raise usage.UsageError("--filter must be one non-empty line")
        self["filters"].append(rule)

    def postOptions(self) -> None:
        """Check --count and --events."""
        raw = self["count"]
        if raw is not None:
            if not raw.isdecimal() or int(raw) < 1:
                raise usage.UsageError(f"--count must be a whole number above 0, not {raw!r}")
            self["count"] = int(raw)
        mask = self["events"]
        if mask is not None:
            why = check_event_mask(mask)
            if why is not None:
                raise usage.UsageError(f"--{why}")


def server_filters(names: list[str]) -> list[str]:
    """The filters for ``names`` (`name_filter`), or none if one of them cannot have one."""
    filters = [name_filter(name) for name in names]
    return [f for f in filters if f is not None] if None not in filters else []


class _Tail:
    """Prints the events that match; fires ``finished`` at the count or a lost connection."""

    def __init__(self, context: Context, names: list[str], count: int | None, json: bool) -> None:
        self.context = context
        self.names = [name.lower() for name in names]
        self.left = count
        self.json = json
        self.finished: Deferred[None] = Deferred()

    def event(self, event: Message) -> None:
        if self.finished.called:
            return
        name = (event.name or "").lower()
        if self.names and not any(fnmatchcase(name, pattern) for pattern in self.names):
            return
        if self.json:
            lines = [event_json(event, self.context.reactor.seconds())]
        else:
            lines = message_lines(event)
        try:
            self.context.out.lines(lines)
        except OutputClosed:
            self.finished.callback(None)
            return
        if self.left is not None:
            self.left -= 1
            if self.left <= 0:
                self.finished.callback(None)

    def disconnected(self, reason: Failure) -> None:
        if not self.finished.called:
            where = self.context.settings.where
            self.finished.errback(
                CLIError(
                    ExitCode.CONNECT,
                    f"the connection to {where} was lost: {describe_reason(reason)}",
                    reason,
                )
            )


async def run(context: Context) -> int:
    """Tail the events; 0 at Ctrl-C, at the count, or when the reader of the output goes."""
    options: Any = context.options
    pbx = context.settings.pbx
    names: list[str] = options["names"]
    filters = options["filters"] or list(pbx.filters) or server_filters(names)
    factory = await context.connect(events=options["events"] or pbx.events, filters=filters)
    tail = _Tail(context, names, options["count"], bool(options["json"]))
    factory.add_event_handler("*", tail.event)
    factory.add_connection_listener(tail)
    _log.info("printing the events of {where}", where=context.settings.where)
    with suppress(Interrupted):  # Ctrl-C is how a tail normally ends
        await context.wait(tail.finished)
    return 0
