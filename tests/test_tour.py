"""
examples/tour.py, the source of "One call per action" in docs/using.rst:
every typed helper, run over a real socket on 127.0.0.1 against txami's fake
Asterisk; and the output that page shows is what the tour prints.
"""

from __future__ import annotations

import re
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.test_integration import _FakeServerCase, load_example, reactor

GUIDE = Path(__file__).parent.parent / "docs" / "using.rst"
MARKER = ".. tour-output"

#: What the tour prints against the fake PBX (its uptime line aside).
EXPECTED = [
    "ping: Pong",
    "events: call,user",
    "filter: !Event: Newexten",
    "command: System uptime: <n> seconds",
    "originate: Originate successfully queued",
    "originate async: Success, reason 4",
    "originate async to nowhere: Failure, reason 0",
    "status: ['Local/1000@txami-test-00000000;1', 'Local/1000@txami-test-00000000;2',"
    " 'Local/1002@txami-test-00000001;1', 'Local/1002@txami-test-00000001;2']",
    "core_show_channels: True",
    "get_var: spring",
    "get_var (global): yes",
    "monitor, change_monitor, stop_monitor: ok",
    "absolute_timeout: ok",
    "redirect: ok",
    "hangup: Channel Hungup",
    "mailbox_count: 2 new, 1 old",
    "mailbox_status: waiting 1",
    "extension_state: Idle",
    "db_get: today",
    "user_event: TourDone",
    "queue_status: ['QueueParams', 'QueueMember', 'QueueMember']",
    "queue_summary: [('support', '2')]",
    "queues: Invalid/unknown command: Queues",
    "iax_peers: ['txpeer1', 'txpeer2']",
    "send_action: Asterisk 20.20.1",
]


class TourTests(_FakeServerCase):
    """The tour of every typed helper."""

    async def test_tour(self) -> None:
        """Every helper of the tour returns what the API guide shows, in order."""
        tour = load_example("tour")
        factory = self.start_factory()
        reactor.connectTCP("127.0.0.1", self.port_number, factory)
        await factory.when_ready()
        lines: list[str] = []
        await tour.tour(factory, say=lines.append)
        self.assertEqual(_normalized(lines), EXPECTED)
        self.assertEqual(self.fake.pbx.db["/tour/last_run"], "today")


def _normalized(lines: list[str]) -> list[str]:
    """The tour's lines, with the uptime (which varies) as ``<n>``."""
    return [re.sub(r"uptime: \d+ ", "uptime: <n> ", line) for line in lines]


def documented_output() -> list[str]:
    """The lines of the ``text`` block that follows the tour-output marker in the guide."""
    lines = GUIDE.read_text(encoding="utf-8").splitlines()
    start = lines.index(MARKER)
    while not lines[start].startswith(".. code-block:: text"):
        start += 1
    shown = []
    for line in lines[start + 2 :]:
        if line and not line.startswith("    "):
            break
        shown.append(line[4:])
    return [line for line in shown if line]


class DocumentedTourTests(SynchronousTestCase):
    """docs/using.rst shows what the tour prints."""

    def test_guide_shows_the_output(self) -> None:
        """The guide's output block is the tour's output, line for line."""
        self.assertEqual(_normalized(documented_output()), EXPECTED)
