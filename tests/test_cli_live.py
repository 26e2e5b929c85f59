"""
``python -m txami calls`` and ``python -m txami queues`` as real processes
against txami's fake Asterisk: the exact snapshots of ``--once`` and of a
piped run (a new one after each change), ``--json``, the failures, and the
live view on a pseudo-terminal (a redraw after a change, ``q`` and Ctrl-C,
the terminal restored, also when the connection is lost).

The fake's PBX runs on a `Clock` that only the test advances, so the calls
it holds have exact ages; its sockets run on the real reactor.  Every wait
has a deadline.
"""

from __future__ import annotations

import json
import os
import re
import termios
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from tests.clirun import Result, Txami, reactor, spawn
from tests.realpbx import wait_for
from txami.cli.screen import ENTER, LEAVE
from txami.testing import FakeAsterisk, listen

SECRET = "s3cret-live"
#: The 1010 call: Alice's channel, and the Local pair it dialled and bridged.
ALICE = [
    "Call 1700000000.0: 3 channels, 00:01:05, answered, bridge 00000001 (basic, simple_bridge)",
    "  PJSIP/201-00000000                Up     Alice <201>                 1010@txami-test:2  "
    "Dial(Local/1000@txami-test/n,,g)  00:01:05  00000001",
    "  Local/1000@txami-test-00000001;1  Up     Alice <1010>  Alice <201>                      "
    "AppDial((Outgoing Line))          00:01:05  00000001",
    "  Local/1000@txami-test-00000001;2  Up     Alice <201>   Alice <1010>  1000@txami-test:2  "
    "Wait(3600)                        00:01:05",
]
#: Bob's call to 1000 (answers and waits).
BOB = [
    "Call 1700000060.3: 1 channel, 00:00:05, answered",
    "  PJSIP/202-00000002                Up     Bob <202>                   1000@txami-test:2  "
    "Wait(3600)                        00:00:05",
]
CALLS_TITLE = (
    "  Channel                           State  Caller ID     Connected     Location           "
    "Application                       Duration  Bridge"
)
#: Why the connection ended when the fake drops it (it aborts the connection).
DROPPED = "Connection to the other side was lost in a non-clean fashion."
_STAMP = re.compile(r"\A\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\Z")


class LiveTestCase(TestCase):
    """A fresh fake Asterisk whose PBX runs on a `Clock`."""

    timeout = 60

    def setUp(self) -> None:
        self.clock = Clock()
        self.fake = FakeAsterisk(self.clock)
        self.fake.auth_failure_delay = 0.0
        self.fake.add_user("cli", SECRET)
        port = listen(self.fake, reactor)
        self.port = port.getHost().port
        self.addCleanup(port.stopListening)
        self.addCleanup(self.fake.stop)
        self.home = os.path.abspath(self.mktemp())
        os.makedirs(self.home)
        self.where = f"127.0.0.1:{self.port}"
        self.pbx = self.fake.pbx
        self.pbx.default_context = "txami-test"

    def start(
        self, *arguments: str, user: str = "cli", terminal: tuple[int, int] | None = None
    ) -> Txami:
        connection = ["-h", "127.0.0.1", "-p", str(self.port), "-u", user]
        # TZ: a member's last call is printed in local time.
        environ = {"TXAMI_SECRET": SECRET, "TZ": "UTC"}
        child = spawn([*arguments, *connection], self.home, environ, terminal=terminal)
        self.addCleanup(child.cleanup)
        return child

    def run_txami(self, *arguments: str) -> Deferred[Result]:
        return self.start(*arguments).when_ended()

    def sent(self, name: str) -> list[Any]:
        return [a for _, a in self.fake.actions_received if (a.name or "").lower() == name.lower()]

    def two_calls(self) -> None:
        """Alice's call to 1010 (bridged), a minute later Bob's to 1000; 5 s after that."""
        self.pbx.incoming_call("1010", caller_id='"Alice" <201>')
        self.clock.advance(60)
        self.pbx.incoming_call("1000", caller_id='"Bob" <202>')
        self.clock.advance(5)

    def waiting_caller(self) -> None:
        """Carol is answered by Agent One (30 s); both agents pause; Bob waits 42 s."""
        carol = self.pbx.incoming_call("600", caller_id='"Carol" <203>')
        self.clock.advance(30)
        self.pbx.hangup(carol)
        self.clock.advance(60)
        self.pbx.pause_member("support", "Local/1000@txami-test/n", True, "lunch")
        self.pbx.pause_member("support", "Local/1001@txami-test/n", True)
        self.pbx.incoming_call("600", caller_id='"Bob" <202>')
        self.clock.advance(42)


class SnapshotTests(LiveTestCase):
    """--once and piped runs print exact snapshots."""

    async def test_calls_once(self) -> None:
        """calls --once: one block per call, oldest first, the summary; events on, logged off."""
        self.two_calls()
        result = await self.run_txami("calls", "--once")
        self.assertEqual((result.code, result.error), (0, ""))
        self.assertEqual(
            result.text.splitlines(), [CALLS_TITLE, *ALICE, "", *BOB, "", "2 calls, 4 channels"]
        )
        self.assertEqual(self.sent("Login")[0]["Events"], "on")
        self.assertEqual(self.fake.actions_received[-1][1].name, "Logoff")

    async def test_calls_once_width_and_empty(self) -> None:
        """--width fits the table (Connected, Location, Bridge left out); no calls is one line."""
        empty = await self.run_txami("calls", "--once")
        self.assertEqual((empty.code, empty.text, empty.error), (0, "0 calls, 0 channels\n", ""))
        self.two_calls()
        result = await self.run_txami("calls", "--once", "--width", "72")
        self.assertEqual((result.code, result.error), (0, ""))
        self.assertEqual(
            result.text.splitlines(),
            [
                "  Channel                  State  Caller ID     Application     Duration",
                "Call 1700000000.0: 3 channels, 00:01:05, answered, bridge 00000001 (bas\u2026",
                "  PJSIP/201-00000000       Up     Alice <201>   Dial(Local/10\u2026  00:01:05",
                "  Local/1000@txami-test-\u2026  Up     Alice <1010>  "
                "AppDial((Outg\u2026  00:01:05",
                "  Local/1000@txami-test-\u2026  Up     Alice <201>   Wait(3600)      00:01:05",
                "",
                "Call 1700000060.3: 1 channel, 00:00:05, answered",
                "  PJSIP/202-00000002       Up     Bob <202>     Wait(3600)      00:00:05",
                "",
                "2 calls, 4 channels",
            ],
        )

    async def test_queues_once(self) -> None:
        """queues --once: counters, members (pause reasons, calls taken), the waiting caller."""
        self.waiting_caller()
        result = await self.run_txami("queues", "--once")
        self.assertEqual((result.code, result.error), (0, ""))
        self.assertEqual(
            result.text.splitlines(),
            [
                "Queue support: 1 caller waiting (longest 00:00:42), "
                "0 of 2 members available, ringall",
                "  completed 1, abandoned 0, hold 0 s, talk 30 s",
                "  Member     Interface                Status      Paused       Taken  "
                "Last call   In call",
                "  Agent One  Local/1000@txami-test/n  Not in use  yes (lunch)      1  "
                "2023-11-14  no",
                "  Agent Two  Local/1001@txami-test/n  Not in use  yes              0  "
                "never       no",
                "  Position  Channel             Caller ID      Wait",
                "         1  PJSIP/202-00000003  Bob <202>  00:00:42",
                "",
                "1 queue, 1 caller waiting",
            ],
        )

    async def test_json(self) -> None:
        """--once --json: the snapshot's calls, channels and bridges; a NAMEd queue's entries."""
        self.two_calls()
        self.pbx.pause_member("support", "Local/1000@txami-test/n", True, "lunch")
        calls, queues = await gatherResults(
            [
                self.run_txami("calls", "--once", "--json"),
                self.run_txami("queues", "support", "--once", "--json"),
            ]
        )
        self.assertEqual((calls.code, calls.error, queues.code, queues.error), (0, "", 0, ""))
        self.assertEqual(calls.text.count("\n"), 1)
        found = json.loads(calls.text)
        self.assertEqual(
            list(found),
            ["version", "time", "synced", "server", "limits", "calls", "channels", "bridges"],
        )
        self.assertEqual((found["version"], found["synced"], found["limits"]), (1, True, {}))
        self.assertEqual(
            {call: [found["channels"][c]["name"] for c in v["channels"]]
             for call, v in found["calls"].items()},
            {
                "1700000000.0": [
                    "PJSIP/201-00000000",
                    "Local/1000@txami-test-00000001;1",
                    "Local/1000@txami-test-00000001;2",
                ],
                "1700000060.3": ["PJSIP/202-00000002"],
            },
        )  # fmt: skip
        self.assertEqual(list(found["bridges"]), ["00000001-7a31-4c5e-9f00-001700000000"])
        support = json.loads(queues.text)["queues"]["support"]
        member = support["members"]["Local/1000@txami-test/n"]
        self.assertEqual((member["paused"], member["paused_reason"]), (True, "lunch"))
        self.assertEqual(support["entries"], [])

    async def test_piped_snapshot_per_change(self) -> None:
        """Piped: a stamped snapshot now, another after a hangup; Ctrl-C ends it with 0."""
        self.two_calls()
        child = self.start("calls")
        await child.output(lambda out: out.endswith(b"calls, 4 channels\n\n"))
        self.pbx.hangup(self.pbx.channels["PJSIP/202-00000002"])
        await child.output(lambda out: out.endswith(b"1 call, 3 channels\n\n"))
        child.signal()
        result = await child.when_ended()
        self.assertEqual((result.code, result.error), (0, ""))
        # Each snapshot: a time stamp, the view, its summary, a blank line.
        snapshots = re.split(r"(?m)^(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$)", result.text)[1:]
        self.assertEqual(len(snapshots), 2, result.text)
        # Their ages grow with the real clock: only their form is checked here.
        ages = re.compile(r"\b00:0[01]:\d\d\b")
        first, second = ([ages.sub("AGE", line) for line in s.splitlines()] for s in snapshots)
        alice = [ages.sub("AGE", line) for line in ALICE]
        bob = [ages.sub("AGE", line) for line in BOB]
        for snapshot in (first, second):
            self.assertRegex(snapshot.pop(0), _STAMP)
        self.assertEqual(first, [CALLS_TITLE, *alice, "", *bob, "", "2 calls, 4 channels", ""])
        self.assertEqual(second, [CALLS_TITLE, *alice, "", "1 call, 3 channels", ""])


class FailureTests(LiveTestCase):
    """What ends a view early, and how it says so."""

    async def test_unknown_queue(self) -> None:
        """A queue NAMEd that does not exist: exit 1, one line listing the queues there are."""
        result = await self.run_txami("queues", "sales", "--once")
        self.assertEqual(
            (result.code, result.text, result.error),
            (1, "", "txami: no queue 'sales' on the PBX (its queues: support)\n"),
        )

    async def test_sync_timeout(self) -> None:
        """A list that never ends: exit 4 after --timeout, one line saying what was missing."""
        self.fake.delay_action("CoreShowChannels", None)
        result = await self.run_txami("calls", "--once", "--timeout", "0.5")
        self.assertEqual(
            (result.code, result.text, result.error),
            (
                4,
                "",
                f"txami: connected to {self.where}, but what it lists (channels, bridges, "
                "queues) was not complete within 0.5 s\n",
            ),
        )

    async def test_note_of_what_cannot_be_seen(self) -> None:
        """A user who may not list channels: the snapshot, and a note on stderr saying why."""
        self.fake.add_user("looker", SECRET, read="call,system", write="")
        result = await self.start("calls", "--once", user="looker").when_ended()
        self.assertEqual(
            (result.code, result.text, result.error),
            (
                0,
                "0 calls, 0 channels\n",
                "txami: note: cannot follow the calls: CoreShowChannels: Permission denied\n",
            ),
        )

    async def test_piped_connection_lost(self) -> None:
        """The server drops the connection: exit 3 with one line saying so."""
        child = self.start("queues")
        await child.output(lambda out: out.endswith(b"waiting\n\n"))
        self.fake.drop_all()
        result = await child.when_ended()
        self.assertEqual(result.code, 3)
        self.assertEqual(
            result.error,
            f"txami: the connection to {self.where} was lost: {DROPPED}\n",
        )


class TerminalTests(LiveTestCase):
    """The live view on a pseudo-terminal."""

    def frames(self, child: Txami) -> list[str]:
        """What each frame drawn so far shows (its text, escape sequences taken out)."""
        text = child.out.decode("utf-8", "replace")
        frames = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", f) for f in text.split("\x1b[H")]
        return [frame for frame in frames[1:] if frame]

    async def test_calls_redraw_and_ctrl_c(self) -> None:
        """A change is redrawn in place, a resize to the new width; Ctrl-C restores it all."""
        self.two_calls()
        child = self.start("calls", terminal=(132, 20))
        await child.output(lambda out: b"Call 1700000060.3" in out)
        self.assertTrue(child.out.startswith(ENTER.encode()), child.out[:40])
        mode = child.terminal_mode()[3]
        self.assertEqual(mode & (termios.ECHO | termios.ICANON), 0)
        first = [line.rstrip("\r") for line in self.frames(child)[0].split("\n")]
        self.assertRegex(
            first[0],
            rf"\Atxami calls  {re.escape(self.where)} +2 calls, 4 channels  \d\d:\d\d:\d\d\Z",
        )
        self.assertEqual(len(first[0]), 132)
        # The table fits the 132 columns (Application narrowed), the headings are whole.
        self.assertEqual((first[1], first[3]), ("", ALICE[0]))
        self.assertRegex(first[-1], r"\A  PJSIP/202-00000002 +Up +Bob <202> .* 00:00:05\Z")
        self.assertLessEqual(max(len(line) for line in first), 132)
        self.assertEqual(first[2].split(), CALLS_TITLE.split())
        self.pbx.incoming_call("1001", caller_id='"Carol" <203>')
        await child.output(lambda out: b"Carol <203>" in out)
        self.assertIn("3 calls, 5 channels", self.frames(child)[-1])
        # The screen was cleared once, on entering: every redraw overwrote the last in place.
        self.assertEqual(child.out.count(b"\x1b[2J"), 1)
        # A narrower window: the screen is cleared and the view drawn again to its width.
        child.resize(90, 20)
        await child.output(lambda out: out.count(b"\x1b[2J") == 2 and out.endswith(b"\x1b[J"))
        resized = [line.rstrip("\r") for line in self.frames(child)[-1].split("\n")]
        self.assertEqual(max(len(line) for line in resized), 90)
        self.assertIn("Carol <203>", self.frames(child)[-1])
        child.type(b"\x03")
        await child.output(lambda out: out.endswith(LEAVE.encode()))
        mode = child.terminal_mode()[3]
        self.assertEqual(mode & (termios.ECHO | termios.ICANON), termios.ECHO | termios.ICANON)
        result = await child.when_ended()
        self.assertEqual(result.code, 0)
        self.assertTrue(result.out.endswith(LEAVE.encode()))

    async def test_queues_q_quits(self) -> None:
        """A pause shows at once; q ends the view with 0 and gives the terminal back."""
        child = self.start("queues", terminal=(100, 24))
        await child.output(lambda out: b"Agent Two" in out)
        self.pbx.pause_member("support", "Local/1000@txami-test/n", True, "lunch")
        await wait_for(
            reactor, lambda: "yes (lunch)" in self.frames(child)[-1], timeout=20, what="redraw"
        )
        child.type(b"q")
        result = await child.when_ended()
        self.assertEqual(result.code, 0)
        self.assertTrue(result.out.endswith(LEAVE.encode()))

    async def test_connection_lost_after_restoring(self) -> None:
        """A lost connection: the terminal is restored first, then the one-line error, exit 3."""
        child = self.start("calls", terminal=(100, 24))
        await child.output(lambda out: b"No calls." in out)
        self.fake.drop_all()
        result = await child.when_ended()
        self.assertEqual(result.code, 3)
        _, leave, after = result.out.rpartition(LEAVE.encode())
        self.assertEqual(leave, LEAVE.encode())
        self.assertEqual(
            after.decode(),
            f"txami: the connection to {self.where} was lost: {DROPPED}\r\n",
        )
