"""
``txami calls``: the calls up on the PBX, one block per call, live.

A call (`txami.state.Call`: channels joined by bridges, Local pairs and
dials) is shown as a line saying how long it lasts, whether it was
answered and which bridges hold it, then one row per channel, like a tidy
``core show channels`` grouped by call: name, state, caller ID, connected
line, location, application, duration and bridge.  `txami.cli.live` keeps
it up to date (in place on a terminal), or prints it once (``--once``), or
as JSON (``--json``: the calls, channels and bridges of
`PBXState.snapshot`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from txami.cli.context import Context
from txami.cli.live import View, ViewOptions, run_view
from txami.cli.table import Column, clean, duration, layout, party, plural, render_rows
from txami.state import Bridge, Call, Channel, PBXState

__all__ = ["COLUMNS", "CallsView", "Options", "bridge_labels", "run"]

#: The channel table.  When it is too wide, Application narrows first, then Connected,
#: Location, and Channel and Caller ID together; if that is not enough, Connected is left
#: out, then Location, then Bridge.
COLUMNS = (
    Column("Channel", shrink=4, minimum=20),
    Column("State", minimum=4),
    Column("Caller ID", shrink=4, minimum=14),
    Column("Connected", shrink=2, minimum=14, drop=1),
    Column("Location", shrink=3, minimum=14, drop=2),
    Column("Application", shrink=1, minimum=14),
    Column("Duration", right=True),
    Column("Bridge", drop=3),
)
#: The fewest leading characters of a BridgeUniqueid shown (a UUID: 8 is plenty).
_BRIDGE_ID = 8
_INDENT = "  "


class Options(ViewOptions):
    """The options of ``txami calls``."""

    synopsis = "Usage: txami calls [--once] [--json] [--width N] [--rate N] [options]"
    longdesc = (
        "Show the calls up on the PBX, one block per call (its channels with caller ID, "
        "connected line, state, location, application, duration and bridge), kept up to "
        "date in place on a terminal until Ctrl-C or q.  Piped, it prints a snapshot at "
        "each change; --once prints one and exits; --json prints snapshots as JSON."
    )


def bridge_labels(bridges: list[Bridge]) -> dict[Bridge, str]:
    """
    Each bridge's shortest unique prefix of at least 8 characters of its
    uniqueid, `clean` (an ARI client may choose a bridge's id).
    """
    ids = {b.uniqueid for b in bridges}
    length = _BRIDGE_ID
    while length < max((len(i) for i in ids), default=0):
        if len({i[:length] for i in ids}) == len(ids):
            break
        length += 1
    return {b: clean(b.uniqueid[:length]) for b in bridges}


def _describe(bridge: Bridge, label: str) -> str:
    """``bridge 1a2b3c4d (basic, simple_bridge)``; ConfBridge's names its conference."""
    kind = f"{bridge.creator} {bridge.name}".strip() or bridge.type
    parts = [p for p in (kind, bridge.technology) if p]
    return f"bridge {label} ({', '.join(clean(p) for p in parts)})" if parts else f"bridge {label}"


def _location(channel: Channel) -> str:
    if not channel.context or not channel.exten:
        return ""
    return f"{channel.exten}@{channel.context}:{channel.priority}"


def _row(channel: Channel, now: float, labels: dict[Bridge, str], call: Call) -> list[str]:
    state = channel.state_desc + (" (hold)" if channel.on_hold else "")
    application = f"{channel.application}({channel.app_data})" if channel.application else ""
    bridge = channel.bridge
    if bridge is None:
        where = ""
    elif bridge.call is call:
        where = labels[bridge]
    elif bridge.type == "parking":  # a parking lot's holding bridge, which is no call's
        where = "parked"
    else:  # another holding bridge
        where = f"{labels[bridge]} ({clean(bridge.type or bridge.technology)})"
    return [
        clean(channel.name),
        clean(state),
        clean(party(channel.caller_id_name, channel.caller_id_num)),
        clean(party(channel.connected_line_name, channel.connected_line_num)),
        clean(_location(channel)),
        clean(application),
        duration(now - channel.created),
        where,
    ]


def _heading(call: Call, now: float, labels: dict[Bridge, str]) -> str:
    parts = [
        plural(len(call.channels), "channel"),
        duration(now - call.started),
        "answered" if call.answered is not None else "not answered",
    ]
    parts.extend(_describe(bridge, labels[bridge]) for bridge in call.bridges)
    return f"Call {clean(call.id)}: {', '.join(parts)}"


class CallsView(View):
    """What ``txami calls`` shows, and the changes it redraws on."""

    name = "calls"
    empty = "No calls."
    topics: ClassVar[Mapping[str, str]] = {
        "channels": "the calls",
        "dialplan": "the channels' applications",
    }

    def body(self, state: PBXState, now: float, width: int | None) -> list[str]:
        """One heading per call, oldest first, then its channels; one column title on top."""
        calls = sorted(state.calls.values(), key=lambda c: (c.started, c.id))
        if not calls:
            return []
        bridges = {c.bridge: None for call in calls for c in call.channels if c.bridge is not None}
        labels = bridge_labels(list(bridges))
        rows = [[_row(c, now, labels, call) for c in call.channels] for call in calls]
        widths = layout(COLUMNS, [r for block in rows for r in block], width, len(_INDENT))
        lines = render_rows(COLUMNS, widths, [], _INDENT)
        for call, block in zip(calls, rows, strict=True):
            if len(lines) > 1:
                lines.append("")
            lines.append(_heading(call, now, labels))
            lines.extend(render_rows(COLUMNS, widths, block, _INDENT, title=False))
        return lines

    def summary(self, state: PBXState) -> str:
        """``2 calls, 5 channels``."""
        return f"{plural(len(state.calls), 'call')}, {plural(len(state.channels), 'channel')}"

    def json(self, state: PBXState) -> dict[str, Any]:
        """The snapshot's calls, channels and bridges (with its version, time, server, limits)."""
        snapshot = state.snapshot()
        keep = ("version", "time", "synced", "server", "limits", "calls", "channels", "bridges")
        return {key: snapshot[key] for key in keep}

    # Every change of a channel, bridge or call may change what is shown.
    def channel_new(self, channel: Any) -> None:
        self.changed()

    def channel_updated(self, channel: Any, changed_fields: frozenset[str]) -> None:
        self.changed()

    def channel_gone(self, channel: Any, reason: str) -> None:
        self.changed()

    def bridge_new(self, bridge: Any) -> None:
        self.changed()

    def bridge_updated(self, bridge: Any, changed_fields: frozenset[str]) -> None:
        self.changed()

    def bridge_gone(self, bridge: Any, reason: str) -> None:
        self.changed()

    def call_new(self, call: Any) -> None:
        self.changed()

    def call_updated(self, call: Any, changed_fields: frozenset[str]) -> None:
        self.changed()

    def call_merged(self, call: Any, into: Any) -> None:
        self.changed()

    def call_ended(self, call: Any, reason: str) -> None:
        self.changed()


async def run(context: Context) -> int:
    """Follow the calls until Ctrl-C (or print them once)."""
    return await run_view(context, CallsView(context.options))
