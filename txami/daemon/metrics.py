"""
`Metrics`: one PBX's counters; `MetricsRegistry`: every PBX's, in the Prometheus text format.

Each PBX has its own `Metrics`, and every sample carries its name as the
``pbx`` label.  What is counted here: events by name; actions run over HTTP
by name and outcome (with a latency histogram per action) and through Redis
by name and outcome; events published to the stream, dropped (by reason),
and the time from receipt to the stream's acknowledgement.  Values that live
elsewhere (the connected gauge, the buffer's size) are read at render time
from callables given to `Metrics.add_value` (per PBX) or
`MetricsRegistry.add_value` (the daemon's own).

Label values come from the server (event names) and from HTTP callers
(action names), so each label keeps at most ``max_label_values`` distinct
values; later new ones are counted under ``"_other"`` and memory stays bounded.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable
from itertools import islice, repeat
from operator import le, sub
from typing import Final

from txami.daemon.hub import EventHub, ReceivedEvent

__all__ = [
    "CONTENT_TYPE",
    "DROP_REASONS",
    "DURATION_BUCKETS",
    "OTHER",
    "OUTCOMES",
    "PUBLISH_BUCKETS",
    "REDIS_OUTCOMES",
    "Metrics",
    "MetricsRegistry",
]

#: The Content-Type of `Metrics.render`'s output.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
#: Upper bounds (seconds) of the action latency histogram's buckets.
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Upper bounds (seconds) of the publish latency histogram (receipt to acknowledgement).
PUBLISH_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
#: The label value that stands for every value beyond ``max_label_values``.
OTHER: Final = "_other"
#: The outcomes an HTTP action is counted under.
OUTCOMES: Final = ("success", "error", "timeout", "not_connected", "connection_lost")
#: The outcomes of an action requested through Redis (the reply's ``outcome``).
REDIS_OUTCOMES: Final = ("ok", "error", "timeout", "expired", "unknown")
#: Why an event was dropped before reaching the stream.
DROP_REASONS: Final = ("buffer_full", "total_buffer_full", "rejected")


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
    """Observations counted per bucket (found by bisection), made cumulative when rendered."""

    __slots__ = ("bounds", "buckets", "count", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)
        self.count = 0
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.buckets[bisect_left(self.bounds, seconds)] += 1

    def observe_since(self, times: list[float], now: float) -> None:
        """
        `observe` ``now - time`` for each of ``times``.  Times in order (as
        receipt times are) give falling durations, so each bucket's share is
        found by bisecting them rather than one bisection each, and times
        that are all the same (the events of one read) fall in one bucket;
        the total is summed in one go (it may differ from one at a time in
        its last bits).
        """
        count = len(times)
        self.count += count
        bounds, buckets = self.bounds, self.buckets
        if count > 4 and times[0] == times[-1] and times.count(times[0]) == count:
            # One time for all, as for the events of one read: one bucket.
            seconds = now - times[0]
            self.total += seconds * count
            buckets[bisect_left(bounds, seconds)] += count
            return
        if count <= 4:
            for time in times:
                seconds = now - time
                self.total += seconds
                buckets[bisect_left(bounds, seconds)] += 1
            return
        # The durations negated (``time - now``), which rise with the times.
        waited = list(map(sub, times, repeat(now)))
        self.total -= sum(waited)
        if not all(map(le, waited, islice(waited, 1, None))):
            for negated in waited:
                buckets[bisect_left(bounds, -negated)] += 1
            return
        first = bisect_left(bounds, -waited[0])
        last = bisect_left(bounds, -waited[-1])
        start = 0
        for bucket in range(first, last, -1):
            # Those that waited longer than the next smaller bucket's bound.
            stop = bisect_left(waited, -bounds[bucket - 1], start)
            buckets[bucket] += stop - start
            start = stop
        buckets[last] += count - start

    def samples(self, name: str, labels: str) -> Iterable[str]:
        running = 0
        for bound, count in zip(self.bounds, self.buckets, strict=False):
            running += count
            yield f'{name}_bucket{{{labels},le="{bound}"}} {running}'
        yield f'{name}_bucket{{{labels},le="+Inf"}} {self.count}'
        yield f"{name}_sum{{{labels}}} {_number(self.total)}"
        yield f"{name}_count{{{labels}}} {self.count}"


#: A family: its kind, help text and samples.
_Family = tuple[str, str, list[str]]


class Metrics:
    """One PBX's counters, histograms and read-at-render values; see the module doc."""

    def __init__(self, max_label_values: int = 256, pbx: str = "default") -> None:
        self.max_label_values = max_label_values
        self.pbx = pbx
        self._label_pbx = f'pbx="{_escape(pbx)}"'
        self._events: dict[str, int] = {}
        self._actions: dict[tuple[str, str], int] = {}
        self._durations: dict[str, _Histogram] = {}
        self._redis_actions: dict[tuple[str, str], int] = {}
        self._values: list[tuple[str, str, str, Callable[[], float]]] = []
        #: Events (and markers) the stream acknowledged, and their receipt-to-ack latency.
        self.published = 0
        self.publish_latency = _Histogram(PUBLISH_BUCKETS)
        #: Events dropped before reaching the stream, by reason (`DROP_REASONS`).
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        #: Action requests claimed (``XAUTOCLAIM``) after another consumer left them idle.
        self.redis_actions_claimed = 0

    def _label(self, value: str, known: Iterable[str], count: int) -> str:
        if value in known or count < self.max_label_values:
            return value
        return OTHER

    def count_events(self, hub: EventHub) -> None:
        """Count every later event of ``hub`` by its name (as `event_received` would)."""
        hub.count_into(self._events, self.max_label_values, OTHER)

    def event_received(self, received: ReceivedEvent) -> None:
        """Count one event by its name (an `EventHub` sink; `count_events` is cheaper)."""
        try:
            self._events[received.name] += 1
        except KeyError:
            events = self._events
            name = received.name if len(events) < self.max_label_values else OTHER
            events[name] = events.get(name, 0) + 1

    def action_finished(self, action: str, outcome: str, seconds: float) -> None:
        """Count one HTTP action by name and outcome (one of `OUTCOMES`), and its latency."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        durations = self._durations
        action = self._label(action, durations, len(durations))
        histogram = durations.get(action)
        if histogram is None:
            histogram = durations[action] = _Histogram(DURATION_BUCKETS)
        histogram.observe(seconds)
        key = (action, outcome)
        self._actions[key] = self._actions.get(key, 0) + 1

    def redis_action_finished(self, action: str, outcome: str) -> None:
        """Count one action requested through Redis by name and outcome (`REDIS_OUTCOMES`)."""
        if outcome not in REDIS_OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        counts = self._redis_actions
        names = {name for name, _ in counts}
        key = (self._label(action, names, len(names)), outcome)
        counts[key] = counts.get(key, 0) + 1

    def event_published(self, seconds: float) -> None:
        """Count one entry the stream acknowledged, ``seconds`` after its receipt."""
        self.published += 1
        self.publish_latency.observe(seconds)

    def events_published(self, received: list[float], now: float) -> None:
        """Count the entries the stream acknowledged ``now``, received at ``received``."""
        self.published += len(received)
        self.publish_latency.observe_since(received, now)

    def event_dropped(self, reason: str, count: int = 1) -> None:
        """Count ``count`` events dropped for ``reason`` (one of `DROP_REASONS`)."""
        self.dropped[reason] += count

    def add_value(self, name: str, kind: str, help: str, read: Callable[[], float]) -> None:
        """Render metric ``name`` (``"gauge"`` or ``"counter"``) as ``read()`` at each render."""
        if kind not in ("gauge", "counter"):
            raise ValueError(f"kind must be 'gauge' or 'counter', not {kind!r}")
        self._values.append((name, kind, help, read))

    def events_by_name(self) -> dict[str, int]:
        """A copy of the event counts."""
        return dict(self._events)

    def actions_by_outcome(self) -> dict[tuple[str, str], int]:
        """A copy of the HTTP action counts, keyed by ``(action, outcome)``."""
        return dict(self._actions)

    def redis_actions_by_outcome(self) -> dict[tuple[str, str], int]:
        """A copy of the Redis action counts, keyed by ``(action, outcome)``."""
        return dict(self._redis_actions)

    def families(self, publishing: bool) -> Iterable[tuple[str, _Family]]:
        """This PBX's samples, family by family (the publishing ones if ``publishing``)."""
        pbx = self._label_pbx
        yield (
            "txami_events_total",
            (
                "counter",
                "AMI events received, by PBX and event name.",
                [
                    f'txami_events_total{{{pbx},event="{_escape(name)}"}} {count}'
                    for name, count in sorted(self._events.items())
                ],
            ),
        )
        yield (
            "txami_actions_total",
            (
                "counter",
                "AMI actions run over HTTP, by PBX, action and outcome.",
                [
                    f'txami_actions_total{{{pbx},action="{_escape(a)}",outcome="{o}"}} {n}'
                    for (a, o), n in sorted(self._actions.items())
                ],
            ),
        )
        samples: list[str] = []
        for action, histogram in sorted(self._durations.items()):
            samples.extend(
                histogram.samples(
                    "txami_action_duration_seconds", f'{pbx},action="{_escape(action)}"'
                )
            )
        yield (
            "txami_action_duration_seconds",
            ("histogram", "Time from sending an HTTP action to its outcome.", samples),
        )
        if publishing:
            yield (
                "txami_redis_actions_total",
                (
                    "counter",
                    "AMI actions requested through Redis, by PBX, action and outcome.",
                    [
                        f'txami_redis_actions_total{{{pbx},action="{_escape(a)}",'
                        f'outcome="{o}"}} {n}'
                        for (a, o), n in sorted(self._redis_actions.items())
                    ],
                ),
            )
            yield (
                "txami_redis_actions_claimed_total",
                (
                    "counter",
                    "Action requests claimed through Redis after another consumer left them idle.",
                    [f"txami_redis_actions_claimed_total{{{pbx}}} {self.redis_actions_claimed}"],
                ),
            )
            yield (
                "txami_events_published_total",
                (
                    "counter",
                    "Stream entries (events and markers) acknowledged by Redis.",
                    [f"txami_events_published_total{{{pbx}}} {self.published}"],
                ),
            )
            yield (
                "txami_events_dropped_total",
                (
                    "counter",
                    "Events dropped before reaching the stream, by reason.",
                    [
                        f'txami_events_dropped_total{{{pbx},reason="{reason}"}} {count}'
                        for reason, count in self.dropped.items()
                    ],
                ),
            )
            yield (
                "txami_publish_latency_seconds",
                (
                    "histogram",
                    "Time from receiving an event to Redis acknowledging its entry.",
                    list(self.publish_latency.samples("txami_publish_latency_seconds", pbx)),
                ),
            )
        for name, kind, help, read in self._values:
            yield name, (kind, help, [f"{name}{{{pbx}}} {_number(read())}"])

    def render(self) -> str:
        """This PBX alone, in the Prometheus text exposition format (version 0.0.4)."""
        registry = MetricsRegistry()
        registry.add(self)
        return registry.render()


class MetricsRegistry:
    """The `Metrics` of every PBX and the daemon's own values, rendered together."""

    def __init__(self) -> None:
        self.pbxs: list[Metrics] = []
        self._values: list[tuple[str, str, str, Callable[[], float]]] = []
        #: Whether the publishing families are rendered (the daemon publishes to Redis).
        self.publishing = False

    def add(self, metrics: Metrics) -> None:
        """Render ``metrics`` (one PBX's) too."""
        self.pbxs.append(metrics)

    def add_value(self, name: str, kind: str, help: str, read: Callable[[], float]) -> None:
        """Render the daemon-wide metric ``name`` as ``read()`` at each render."""
        if kind not in ("gauge", "counter"):
            raise ValueError(f"kind must be 'gauge' or 'counter', not {kind!r}")
        self._values.append((name, kind, help, read))

    def render(self) -> str:
        """Everything, each family once with every PBX's samples, in the text format."""
        families: dict[str, _Family] = {}
        for metrics in self.pbxs:
            for name, (kind, help, samples) in metrics.families(self.publishing):
                present = families.get(name)
                if present is None:
                    families[name] = (kind, help, list(samples))
                else:
                    present[2].extend(samples)
        for name, kind, help, read in self._values:
            families[name] = (kind, help, [f"{name} {_number(read())}"])
        lines: list[str] = []
        for name, (kind, help, samples) in families.items():
            lines.append(f"# HELP {name} {help}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(samples)
        return "\n".join(lines) + "\n"
