"""Tests for txami.metrics: counting and the Prometheus text format."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from txami.daemon.hub import ReceivedEvent
from txami.daemon.metrics import CONTENT_TYPE, OTHER, Metrics, MetricsRegistry
from txami.message import Message


def _event(name: str) -> ReceivedEvent:
    return ReceivedEvent(Message([("Event", name)]), 0.0)


class MetricsTests(SynchronousTestCase):
    """Counting events and actions and rendering them."""

    def test_empty(self) -> None:
        """With nothing counted, only the HELP and TYPE lines of the three families render."""
        self.assertEqual(
            Metrics().render(),
            "# HELP txami_events_total AMI events received, by PBX and event name.\n"
            "# TYPE txami_events_total counter\n"
            "# HELP txami_actions_total AMI actions run over HTTP, by PBX, action and outcome.\n"
            "# TYPE txami_actions_total counter\n"
            "# HELP txami_action_duration_seconds Time from sending an HTTP action to its "
            "outcome.\n"
            "# TYPE txami_action_duration_seconds histogram\n",
        )

    def test_events_by_name(self) -> None:
        """Events are counted per name and rendered sorted by name."""
        metrics = Metrics()
        for name in ("Newchannel", "Hangup", "Newchannel"):
            metrics.event_received(_event(name))
        self.assertEqual(metrics.events_by_name(), {"Newchannel": 2, "Hangup": 1})
        lines = metrics.render().splitlines()
        self.assertEqual(
            lines[2:4],
            [
                'txami_events_total{pbx="default",event="Hangup"} 1',
                'txami_events_total{pbx="default",event="Newchannel"} 2',
            ],
        )

    def test_actions_and_histogram(self) -> None:
        """An action is counted by outcome and its latency lands in the right buckets."""
        metrics = Metrics()
        metrics.action_finished("Ping", "success", 0.02)
        metrics.action_finished("Ping", "timeout", 40.0)
        text = metrics.render()
        self.assertIn(
            'txami_actions_total{pbx="default",action="Ping",outcome="success"} 1\n', text
        )
        self.assertIn(
            'txami_actions_total{pbx="default",action="Ping",outcome="timeout"} 1\n', text
        )
        self.assertIn(
            'txami_action_duration_seconds_bucket{pbx="default",action="Ping",le="0.01"} 0\n', text
        )
        self.assertIn(
            'txami_action_duration_seconds_bucket{pbx="default",action="Ping",le="0.025"} 1\n',
            text,
        )
        self.assertIn(
            'txami_action_duration_seconds_bucket{pbx="default",action="Ping",le="30.0"} 1\n', text
        )
        self.assertIn(
            'txami_action_duration_seconds_bucket{pbx="default",action="Ping",le="+Inf"} 2\n', text
        )
        self.assertIn(
            'txami_action_duration_seconds_sum{pbx="default",action="Ping"} 40.02\n', text
        )
        self.assertIn('txami_action_duration_seconds_count{pbx="default",action="Ping"} 2\n', text)
        self.assertEqual(
            metrics.actions_by_outcome(), {("Ping", "success"): 1, ("Ping", "timeout"): 1}
        )

    def test_publishing_families(self) -> None:
        """With publishing on, the Redis families render: actions, claims, published, dropped."""
        metrics = Metrics(pbx="east")
        metrics.events_published([10.0, 10.0], 10.5)
        metrics.event_dropped("rejected")
        metrics.redis_action_finished("Originate", "unknown")
        metrics.redis_actions_claimed += 2
        registry = MetricsRegistry()
        registry.add(metrics)
        self.assertNotIn("txami_redis", registry.render())
        registry.publishing = True
        lines = registry.render().splitlines()
        self.assertEqual(
            lines[6:20],
            [
                "# HELP txami_redis_actions_total AMI actions requested through Redis, by PBX, "
                "action and outcome.",
                "# TYPE txami_redis_actions_total counter",
                'txami_redis_actions_total{pbx="east",action="Originate",outcome="unknown"} 1',
                "# HELP txami_redis_actions_claimed_total Action requests claimed through Redis "
                "after another consumer left them idle.",
                "# TYPE txami_redis_actions_claimed_total counter",
                'txami_redis_actions_claimed_total{pbx="east"} 2',
                "# HELP txami_events_published_total Stream entries (events and markers) "
                "acknowledged by Redis.",
                "# TYPE txami_events_published_total counter",
                'txami_events_published_total{pbx="east"} 2',
                "# HELP txami_events_dropped_total Events dropped before reaching the stream, "
                "by reason.",
                "# TYPE txami_events_dropped_total counter",
                'txami_events_dropped_total{pbx="east",reason="buffer_full"} 0',
                'txami_events_dropped_total{pbx="east",reason="total_buffer_full"} 0',
                'txami_events_dropped_total{pbx="east",reason="rejected"} 1',
            ],
        )
        self.assertEqual(
            lines[-3:],
            [
                'txami_publish_latency_seconds_bucket{pbx="east",le="+Inf"} 2',
                'txami_publish_latency_seconds_sum{pbx="east"} 1',
                'txami_publish_latency_seconds_count{pbx="east"} 2',
            ],
        )

    def test_unknown_outcome(self) -> None:
        """An outcome outside OUTCOMES is a programming error: ValueError."""
        with self.assertRaises(ValueError):
            Metrics().action_finished("Ping", "maybe", 0.0)

    def test_label_escaping(self) -> None:
        """Quotes, backslashes, newlines and undecodable bytes cannot break a label value."""
        metrics = Metrics()
        metrics.event_received(_event('a"b\\c\nd\udce9'))
        self.assertIn(
            'txami_events_total{pbx="default",event="a\\"b\\\\c\\nd\ufffd"} 1\n', metrics.render()
        )
        metrics.render().encode("utf-8")

    def test_label_values_are_bounded(self) -> None:
        """Past max_label_values distinct names, new names are counted as _other."""
        metrics = Metrics(max_label_values=2)
        for name in ("A", "B", "C", "D", "A"):
            metrics.event_received(_event(name))
        for name in ("X", "Y", "Z"):
            metrics.action_finished(name, "success", 0.0)
        self.assertEqual(metrics.events_by_name(), {"A": 2, "B": 1, OTHER: 2})
        self.assertEqual(
            metrics.actions_by_outcome(),
            {("X", "success"): 1, ("Y", "success"): 1, (OTHER, "success"): 1},
        )

    def test_values_read_at_render(self) -> None:
        """add_value metrics are read at each render, ints without a decimal point."""
        metrics = Metrics()
        state = {"up": 0.0}
        metrics.add_value("txami_connected", "gauge", "Up or not.", lambda: state["up"])
        metrics.add_value("txami_uptime_seconds", "gauge", "Uptime.", lambda: 1.5)
        self.assertTrue(
            metrics.render().endswith(
                'txami_connected{pbx="default"} 0\n'
                + (
                    "# HELP txami_uptime_seconds Uptime.\n"
                    "# TYPE txami_uptime_seconds gauge\n"
                    'txami_uptime_seconds{pbx="default"} 1.5\n'
                )
            )
        )
        state["up"] = 1
        self.assertIn(
            "# HELP txami_connected Up or not.\n# TYPE txami_connected gauge\n"
            'txami_connected{pbx="default"} 1\n',
            metrics.render(),
        )

    def test_bad_kind(self) -> None:
        """Only gauges and counters can be added."""
        with self.assertRaises(ValueError):
            Metrics().add_value("x", "summary", "X.", lambda: 0)

    def test_content_type(self) -> None:
        """The content type is the text format's, version 0.0.4."""
        self.assertEqual(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")


class ObserveSinceTests(SynchronousTestCase):
    """_Histogram.observe_since counts as observe does, one duration at a time."""

    def test_same_buckets(self) -> None:
        """Times in order, out of order, all alike, few or none, on or past bounds: the same."""
        from txami.daemon.metrics import PUBLISH_BUCKETS, _Histogram

        now = 1000.0
        cases = [
            [now - 70, now - 60, now - 1.0, now - 0.25, now - 0.0025, now - 1e-4, now, now + 1],
            [now - 0.003, now - 2.0, now - 0.003, now],
            [now - 0.5, now - 0.1],
            [now - 5.0 + 0.001 * i for i in range(1000)],
            [now - 0.25] * 200,
            [now - 0.25] * 5 + [now - 0.5] + [now - 0.25] * 5,
            [now - 0.0025] * 3,
            [],
        ]
        for times in cases:
            batched, single = _Histogram(PUBLISH_BUCKETS), _Histogram(PUBLISH_BUCKETS)
            batched.observe_since(times, now)
            for time in times:
                single.observe(now - time)
            self.assertEqual((batched.buckets, batched.count), (single.buckets, single.count))
            self.assertAlmostEqual(batched.total, single.total, places=6)
