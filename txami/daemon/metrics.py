"""
`Metrics`: the daemon's counters, rendered in the Prometheus text format.

What is counted here: events by name and actions (run through the HTTP bridge)
by name and outcome, with a latency histogram per action.  Values that live
elsewhere (the connected gauge, the reconnect count) are read at render time
from callables given to `Metrics.add_value`.

Label values come from the server (event names) and from HTTP callers
(action names), so each label keeps at most ``max_label_values`` distinct
values; later new ones are counted under ``"_other"`` and memory stays bounded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Final

from txami.daemon.hub import ReceivedEvent

__all__ = ["CONTENT_TYPE", "DURATION_BUCKETS", "OTHER", "OUTCOMES", "Metrics"]

#: The Content-Type of `Metrics.render`'s output.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
#: Upper bounds (seconds) of the action latency histogram's buckets.
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: The label value that stands for every value beyond ``max_label_values``.
OTHER: Final = "_other"
#: The outcomes an action is counted under.
OUTCOMES: Final = ("success", "error", "timeout", "not_connected", "connection_lost")


def _escape(value: str) -> str:
    """A label value as the text format wants it (and as valid UTF-8)."""
    value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int) or (math.isfinite(value) and value == int(value)):
        return str(int(value))
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


class _Histogram:
    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * len(DURATION_BUCKETS)
        self.count = 0
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        for index, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                self.buckets[index] += 1


class Metrics:
    """Counters and a latency histogram, plus read-at-render values; see the module doc."""

    def __init__(self, max_label_values: int = 256) -> None:
        self.max_label_values = max_label_values
        self._events: dict[str, int] = {}
        self._actions: dict[tuple[str, str], int] = {}
        self._durations: dict[str, _Histogram] = {}
        self._values: list[tuple[str, str, str, Callable[[], float]]] = []

    def _label(self, value: str, known: Iterable[str], count: int) -> str:
        if value in known or count < self.max_label_values:
            return value
        return OTHER

    def event_received(self, received: ReceivedEvent) -> None:
        """Count one event by its name (an `EventHub` sink)."""
        events = self._events
        name = self._label(received.name, events, len(events))
        events[name] = events.get(name, 0) + 1

    def action_finished(self, action: str, outcome: str, seconds: float) -> None:
        """Count one action by name and outcome (one of `OUTCOMES`), and its latency."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        durations = self._durations
        action = self._label(action, durations, len(durations))
        histogram = durations.get(action)
        if histogram is None:
            histogram = durations[action] = _Histogram()
        histogram.observe(seconds)
        key = (action, outcome)
        self._actions[key] = self._actions.get(key, 0) + 1

    def add_value(self, name: str, kind: str, help: str, read: Callable[[], float]) -> None:
        """Render metric ``name`` (``"gauge"`` or ``"counter"``) as ``read()`` at each render."""
        if kind not in ("gauge", "counter"):
            raise ValueError(f"kind must be 'gauge' or 'counter', not {kind!r}")
        self._values.append((name, kind, help, read))

    def events_by_name(self) -> dict[str, int]:
        """A copy of the event counts."""
        return dict(self._events)

    def actions_by_outcome(self) -> dict[tuple[str, str], int]:
        """A copy of the action counts, keyed by ``(action, outcome)``."""
        return dict(self._actions)

    def render(self) -> str:
        """Everything, in the Prometheus text exposition format (version 0.0.4)."""
        lines: list[str] = []
        add = lines.append
        add("# HELP txami_events_total AMI events received, by event name.")
        add("# TYPE txami_events_total counter")
        for name, count in sorted(self._events.items()):
            add(f'txami_events_total{{event="{_escape(name)}"}} {count}')
        add("# HELP txami_actions_total AMI actions run over HTTP, by action and outcome.")
        add("# TYPE txami_actions_total counter")
        for (action, outcome), count in sorted(self._actions.items()):
            add(f'txami_actions_total{{action="{_escape(action)}",outcome="{outcome}"}} {count}')
        add("# HELP txami_action_duration_seconds Time from sending an action to its outcome.")
        add("# TYPE txami_action_duration_seconds histogram")
        for action, histogram in sorted(self._durations.items()):
            label = f'action="{_escape(action)}"'
            for bound, count in zip(DURATION_BUCKETS, histogram.buckets, strict=True):
                add(f'txami_action_duration_seconds_bucket{{{label},le="{bound}"}} {count}')
            add(f'txami_action_duration_seconds_bucket{{{label},le="+Inf"}} {histogram.count}')
            add(f"txami_action_duration_seconds_sum{{{label}}} {_number(histogram.total)}")
            add(f"txami_action_duration_seconds_count{{{label}}} {histogram.count}")
        for name, kind, help, read in self._values:
            add(f"# HELP {name} {help}")
            add(f"# TYPE {name} {kind}")
            add(f"{name} {_number(read())}")
        return "\n".join(lines) + "\n"
