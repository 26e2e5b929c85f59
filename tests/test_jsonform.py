"""
Tests for the fast way of `txami.jsonform.event_json`: whatever the event, its
line is exactly ``dumps(event_dict(...))``, the general way's.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from txami import jsonform
from txami.jsonform import dumps, event_dict, event_json, format_timestamp
from txami.message import Message

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Few names, so that layouts repeat; values mostly plain, some with one character to escape.
names = st.sampled_from(
    ["Channel", "Uniqueid", "Exten", "Channel", "pbx", "@timestamp", "A:B", "\xdc", 'Q"', "B\\"]
)
plain = st.text(st.sampled_from(list("ab 1.:/-")), max_size=5)
special = st.sampled_from(list('"\\\x00\x1f\x7f\xe9\u20ac\udce9\t\r\n'))
values = plain | st.builds(lambda a, c, b: a + c + b, plain, special, plain)
layouts = st.lists(st.tuples(names, values), max_size=4)
separators = st.sampled_from([": ", ": ", ": ", ":", ":  "])
times = st.floats(min_value=0, max_value=4e9) | st.sampled_from(
    [0.0, 0.5, 0.9999995, 1.0000005, 1700000000.0000005, 1700000000.9999996, 1e-7, 3.3e10]
)


def fresh_shapes() -> Any:
    """Patches event_json to start with no layout learned (the cache holds 8 per event name)."""
    shapes = jsonform._Shapes()
    return mock.patch.multiple(jsonform, _SHAPES=shapes, _BY_EVENT=shapes.by_event)


def text_of(event: str, pairs: list[tuple[str, str]], sep: str) -> str:
    return "\r\n".join(f"{name}{sep}{value}" for name, value in [("Event", event), *pairs])


class FastWayTests(SynchronousTestCase):
    """event_json gives the general way's line, fast way or not."""

    @SETTINGS
    @given(st.sampled_from(["Newchannel", "Hangup"]), layouts, separators, times, st.booleans())
    @example("Hangup", [("pbx", "a")], ": ", 1.0, True)
    @example("Hangup", [("@timestamp", "a")], ": ", 1.0, False)
    @example("Hangup", [("Channel", "a"), ("Channel", "b")], ": ", 1.0, False)
    @example("Hangup", [('Q"', "a")], ": ", 1.0, False)
    @example("Hangup", [("A", 'x"y\\')], ": ", 1.0, False)
    @example("Hangup", [("A", "\x7f")], ": ", 1.0, False)
    def test_same_line(
        self,
        name: str,
        pairs: list[tuple[str, str]],
        sep: str,
        received: float,
        with_pbx: bool,
    ) -> None:
        """Three events of one layout (learned by then) each give exactly the general line."""
        pbx = "east" if with_pbx else None
        with fresh_shapes():
            for _ in range(3):
                event = Message.parse(text_of(name, pairs, sep))
                self.assertEqual(
                    event_json(event, received, pbx), dumps(event_dict(event, received, pbx))
                )

    @SETTINGS
    @given(times)
    def test_timestamps(self, received: float) -> None:
        """The fast way's timestamp is format_timestamp's, rounding included."""
        event = Message.parse("Event: Stamp\r\nA: 1")
        with fresh_shapes():
            event_json(event, 1.0)
            event_json(event, 1.0)
            line = event_json(Message.parse("Event: Stamp\r\nA: 1"), received)
        self.assertEqual(line, dumps(event_dict(event, received)))
        if received < 3e10:
            self.assertIn(format_timestamp(received), line)

    def test_fast_way_taken(self) -> None:
        """A layout seen twice is learned: its next event needs no dict and no encoder."""
        text = "Event: Learned\r\nChannel: PJSIP/1\r\nUniqueid: 1700000000.1"
        with fresh_shapes():
            event_json(Message.parse(text), 5.0, "east")
            self.assertEqual(jsonform._SHAPES.layouts, 0)
            event_json(Message.parse(text), 5.0, "east")
            self.assertEqual(jsonform._SHAPES.layouts, 1)
            with mock.patch.object(jsonform, "event_dict", side_effect=AssertionError):
                line = event_json(Message.parse(text.replace("0.1", "0.2")), 7.25, "east")
        self.assertEqual(
            line,
            '{"@timestamp":"1970-01-01T00:00:07.250000Z","pbx":"east","Event":"Learned",'
            '"Channel":"PJSIP/1","Uniqueid":"1700000000.2"}',
        )

    def test_same_time_other_pbx(self) -> None:
        """Lines of one receive time but another PBX (or none) each get their own head."""
        text = "Event: Heads\r\nA: 1"
        pbxs = ("a", "a", "b", None, "a")
        with fresh_shapes():
            lines = [event_json(Message.parse(text), 9.5, pbx) for pbx in pbxs]
        self.assertEqual(
            lines,
            [dumps(event_dict(Message.parse(text), 9.5, pbx)) for pbx in pbxs],
        )
        self.assertEqual(len(set(lines)), 3)

    def test_messages_built_from_pairs(self) -> None:
        """A message built in code (no wire text) takes the general way."""
        event = Message([("Event", "Built"), ("A", '"q"')])
        self.assertEqual(event_json(event, 1.0), dumps(event_dict(event, 1.0)))
