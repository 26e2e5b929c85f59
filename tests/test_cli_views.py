"""
In-process tests of ``txami calls`` and ``txami queues``: the tables (safe
cells, widths, columns that shrink and drop), the views of a `PBXState`
kept by the fake Asterisk (on a `Clock`, so every duration is exact), the
redraw throttle, and the terminal `Screen` (frames, the alternate screen,
keys on a pseudo-terminal, signal handlers put back).
tests/test_cli_live.py runs the commands as real processes.
"""

from __future__ import annotations

import io
import os
import signal
import termios
import time
from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txami import PBXState
from txami.cli.calls import CallsView, bridge_labels
from txami.cli.exitcodes import CLIError, ExitCode
from txami.cli.live import DEFAULT_RATE, Throttle
from txami.cli.main import TxamiOptions
from txami.cli.queues import QueuesView, last_call
from txami.cli.screen import ENTER, LEAVE, Screen, compose
from txami.cli.table import (
    Column,
    clean,
    cut,
    display_width,
    duration,
    layout,
    party,
    plural,
    render_rows,
)
from txami.state import Bridge
from txami.testing import FakeAsterisk, connected_pair


class TableTests(SynchronousTestCase):
    """Cells, widths and column layout."""

    def test_clean(self) -> None:
        """Controls become '?', tabs and odd spaces a space, undecodable bytes U+FFFD."""
        text = "Alice"
        self.assertIs(clean(text), text)
        self.assertEqual(clean("Bob \x1b[31mred\x07"), "Bob ?[31mred?")
        self.assertEqual(clean("a\tb\u00a0c\n"), "a b c ")
        self.assertEqual(clean("caf\udce9 \u202eevil"), "caf\ufffd ?evil")

    def test_width_and_cut(self) -> None:
        """Wide characters count twice, combining marks not at all; cut ends with an ellipsis."""
        self.assertEqual(display_width("日本"), 4)
        self.assertEqual(display_width("e\u0301"), 1)
        self.assertEqual(cut("abc", 3), "abc")
        self.assertEqual(cut("abcd", 3), "ab\u2026")
        self.assertEqual(cut("日本語", 4), "日\u2026")
        self.assertEqual(cut("日本語", 5), "日本\u2026")
        self.assertEqual(cut("abc", 0), "")

    def test_layout_shrinks_by_rank_then_drops(self) -> None:
        """Rank 1 narrows first, a rank's columns in turns, then drops; the rest widen again."""
        columns = [
            Column("A", shrink=1, minimum=4),
            Column("B", shrink=2, minimum=3),
            Column("C", shrink=2, minimum=3),
            Column("D", drop=1),
        ]
        rows = [["a" * 10, "b" * 6, "c" * 8, "d" * 5]]
        # Natural: 10, 6, 8, 5 and three gaps of 2 = 35 (plus the indent).
        self.assertEqual(layout(columns, rows, None, 2), [10, 6, 8, 5])
        self.assertEqual(layout(columns, rows, 37, 2), [10, 6, 8, 5])
        self.assertEqual(layout(columns, rows, 33, 2), [6, 6, 8, 5])
        # A is at its minimum: B and C give in turns, the wider first.
        self.assertEqual(layout(columns, rows, 27, 2), [4, 5, 5, 5])
        self.assertEqual(layout(columns, rows, 25, 2), [4, 4, 4, 5])
        self.assertEqual(layout(columns, rows, 23, 2), [4, 3, 3, 5])
        # Too wide even at the minimums: D goes, and B and C get room back.
        self.assertEqual(layout(columns, rows, 22, 2), [4, 6, 6, 0])
        self.assertEqual(layout(columns, rows, 10, 2), [4, 3, 3, 0])

    def test_render_rows(self) -> None:
        """Cells padded and cut to their widths, right-aligned if asked, dropped ones skipped."""
        columns = [Column("Name"), Column("N", right=True), Column("Gone"), Column("Last")]
        lines = render_rows(
            columns, [5, 3, 0, 4], [["Alexander", "7", "x", ""], ["Bo", "123", "y", "z"]], "  "
        )
        expected = ["  Name     N  Last", "  Alex\u2026    7", "  Bo     123  z"]
        self.assertEqual(lines, expected)

    def test_cells(self) -> None:
        """Durations as HH:MM:SS, parties as 'Name <number>', counted words."""
        self.assertEqual(duration(3725.9), "01:02:05")
        self.assertEqual(duration(-3), "00:00:00")
        self.assertEqual(duration(360000), "100:00:00")
        self.assertEqual(party("Alice", "201"), "Alice <201>")
        self.assertEqual(party("201", "201"), "201")
        self.assertEqual(
            (party("", "201"), party("Alice", ""), party("", "")), ("201", "Alice", "")
        )
        self.assertEqual((plural(1, "call"), plural(2, "call")), ("1 call", "2 calls"))

    def test_bridge_labels(self) -> None:
        """Eight characters of the uniqueid, more only when two bridges would look alike."""
        one, two = Bridge("1234abcd-0000-1111"), Bridge("1234abcd-0000-2222")
        three = Bridge("ffff0000-0000-0000")
        self.assertEqual(bridge_labels([one, three]), {one: "1234abcd", three: "ffff0000"})
        self.assertEqual(
            bridge_labels([one, two, three]),
            {one: "1234abcd-0000-1", two: "1234abcd-0000-2", three: "ffff0000-0000-0"},
        )
        self.assertEqual(bridge_labels([]), {})
        odd = Bridge("\x1b[2J\x1b]0;x\x07")  # ARI lets a client choose a bridge's id
        self.assertEqual(bridge_labels([odd]), {odd: "?[2J?]0;"})

    def test_last_call(self) -> None:
        """Never, the local time of day within a day, else the local date."""
        now = 1_800_000_000.0
        self.assertEqual(last_call(0, now), "never")
        recent = int(now) - 3600
        self.assertEqual(last_call(recent, now), time.strftime("%H:%M:%S", time.localtime(recent)))
        old = int(now) - 3 * 86400
        self.assertEqual(last_call(old, now), time.strftime("%Y-%m-%d", time.localtime(old)))


class ViewTestCase(SynchronousTestCase):
    """A `PBXState` following the fake Asterisk in memory, on a `Clock`."""

    username = "admin"
    secret = "adminsecret"

    def setUp(self) -> None:
        self.clock = Clock()
        self.fake = FakeAsterisk(self.clock)
        self.addCleanup(self.fake.stop)
        self.ami, _, self.pump = connected_pair(
            self.fake, self.clock, username=self.username, secret=self.secret
        )
        self.state = PBXState(self.ami, clock=self.clock)
        started = self.state.start()
        self.pump.flush()
        self.successResultOf(started)
        self.pbx = self.fake.pbx
        self.pbx.default_context = "txami-test"

    def step(self, seconds: float = 0.0) -> None:
        """Deliver what the fake sent, then let ``seconds`` pass (and deliver again)."""
        self.pump.flush()
        self.clock.advance(seconds)
        self.pump.flush()

    def calls_scenario(self) -> None:
        """Alice calls 1010 (bridged) and is put on hold; Dave calls 1010 and is parked."""
        self.pbx.incoming_call("1010", caller_id='"Alice" <201>')
        self.step(60)
        dave = self.pbx.incoming_call("1010", caller_id='"Dave \x1b[2J" <204>')
        self.step(5)
        self.pbx.park(dave)
        self.step(3)
        self.pbx.hold(self.pbx.channels["PJSIP/201-00000000"])
        self.step(2)

    def queue_scenario(self) -> None:
        """Carol is answered by an agent and hangs up; both agents pause; Bob waits."""
        carol = self.pbx.incoming_call("600", caller_id='"Carol" <203>')
        self.step(30)
        self.pbx.hangup(carol)
        self.step(60)
        self.pbx.pause_member("support", "Local/1000@txami-test/n", True, "lunch")
        self.pbx.pause_member("support", "Local/1001@txami-test/n", True)
        self.pbx.incoming_call("600", caller_id='"Bob" <202>')
        self.step(42)


class CallsViewTests(ViewTestCase):
    """What ``txami calls`` shows."""

    def test_body(self) -> None:
        """One block per call, oldest first: its channels, hold, a parked call; no controls."""
        self.calls_scenario()
        view = CallsView({})
        lines = view.body(self.state, self.clock.seconds(), None)
        self.assertEqual(
            lines,
            [
                "  Channel                           State      Caller ID        Connected     "
                "Location           Application                       Duration  Bridge",
                "Call 1700000000.0: 3 channels, 00:01:10, answered, "
                "bridge 00000001 (basic, simple_bridge)",
                "  PJSIP/201-00000000                Up (hold)  Alice <201>                    "
                "1010@txami-test:2  Dial(Local/1000@txami-test/n,,g)  00:01:10  00000001",
                "  Local/1000@txami-test-00000001;1  Up         Alice <1010>     Alice <201>   "
                "                   AppDial((Outgoing Line))          00:01:10  00000001",
                "  Local/1000@txami-test-00000001;2  Up         Alice <201>      Alice <1010>  "
                "1000@txami-test:2  Wait(3600)                        00:01:10",
                "",
                "Call 1700000060.3: 1 channel, 00:00:10, answered",
                "  PJSIP/204-00000002                Up         Dave ?[2J <204>                "
                "1010@txami-test:2  Dial(Local/1000@txami-test/n,,g)  00:00:10  parked",
            ],
        )
        self.assertEqual(view.summary(self.state), "2 calls, 4 channels")

    def test_fits_the_width(self) -> None:
        """At 80 columns Connected, Location and Bridge are left out, long cells cut."""
        self.calls_scenario()
        lines = CallsView({}).body(self.state, self.clock.seconds(), 80)
        self.assertEqual(
            lines,
            [
                "  Channel                   State      Caller ID        Application     Duration",
                "Call 1700000000.0: 3 channels, 00:01:10, answered, "
                "bridge 00000001 (basic, simple_bridge)",
                "  PJSIP/201-00000000        Up (hold)  Alice <201>  "
                "    Dial(Local/10\u2026  00:01:10",
                "  Local/1000@txami-test-0\u2026  Up         Alice <1010>     "
                "AppDial((Outg\u2026  00:01:10",
                "  Local/1000@txami-test-0\u2026  Up         Alice <201>  "
                "    Wait(3600)      00:01:10",
                "",
                "Call 1700000060.3: 1 channel, 00:00:10, answered",
                "  PJSIP/204-00000002        Up         Dave ?[2J <204>  "
                "Dial(Local/10\u2026  00:00:10",
            ],
        )
        # The rows fit; a heading too long is cut by whoever prints it.
        self.assertEqual(max(display_width(line) for line in lines if line[:1] == " "), 80)

    def test_empty_and_json(self) -> None:
        """No calls: an empty body; JSON is the snapshot's calls, channels and bridges."""
        view = CallsView({})
        self.assertEqual(view.body(self.state, self.clock.seconds(), None), [])
        self.assertEqual(view.summary(self.state), "0 calls, 0 channels")
        self.calls_scenario()
        found = view.json(self.state)
        snapshot = self.state.snapshot()
        self.assertEqual(
            list(found),
            ["version", "time", "synced", "server", "limits", "calls", "channels", "bridges"],
        )
        for key in found:
            self.assertEqual(found[key], snapshot[key])
        self.assertEqual(sorted(found["calls"]), ["1700000000.0", "1700000060.3"])

    def test_changes_heard(self) -> None:
        """Every channel, bridge and call change asks for a redraw; a queue pause does not."""
        view = CallsView({})
        changes: list[None] = []
        view.on_change = lambda: changes.append(None)
        self.state.add_listener(view)
        self.pbx.incoming_call("1010", caller_id='"Alice" <201>')
        self.step()
        self.assertGreater(len(changes), 5)
        del changes[:]
        self.pbx.pause_member("support", "Local/1001@txami-test/n", True)
        self.step()
        self.assertEqual(changes, [])


class QueuesViewTests(ViewTestCase):
    """What ``txami queues`` shows."""

    def test_body(self) -> None:
        """Heading, counters, members by name with pauses and calls, waiting callers."""
        self.queue_scenario()
        view = QueuesView({"names": []})
        lines = view.body(self.state, self.clock.seconds(), None)
        agent = self.state.queues["support"].members["Local/1000@txami-test/n"]
        taken = last_call(agent.last_call, self.clock.seconds())
        self.assertEqual(
            lines,
            [
                "Queue support: 1 caller waiting (longest 00:00:42), "
                "0 of 2 members available, ringall",
                "  completed 1, abandoned 0, hold 0 s, talk 30 s",
                "  Member     Interface                Status      Paused       Taken  "
                "Last call   In call",
                "  Agent One  Local/1000@txami-test/n  Not in use  yes (lunch)      1  "
                f"{taken:10}  no",
                "  Agent Two  Local/1001@txami-test/n  Not in use  yes              0  "
                "never       no",
                "  Position  Channel             Caller ID      Wait",
                "         1  PJSIP/202-00000003  Bob <202>  00:00:42",
            ],
        )
        self.assertEqual(view.summary(self.state), "1 queue, 1 caller waiting")

    def test_names_check_and_json(self) -> None:
        """NAMEs choose queues; an unknown one is exit 1; JSON holds only those chosen."""
        self.pbx.queues["sales"] = self.pbx.queues["support"].__class__(name="sales")
        self.state.stop()
        self.state = PBXState(self.ami, clock=self.clock)
        started = self.state.start()
        self.pump.flush()
        self.successResultOf(started)
        sales = QueuesView({"names": ["sales"]})
        sales.check(self.state)
        self.assertEqual(
            sales.body(self.state, self.clock.seconds(), None),
            [
                "Queue sales: 0 callers waiting, 0 of 0 members available, ringall",
                "  completed 0, abandoned 0, hold 0 s, talk 0 s",
                "  No members.",
                "  No callers waiting.",
            ],
        )
        self.assertEqual(list(sales.json(self.state)["queues"]), ["sales"])
        error = self.assertRaises(
            CLIError, QueuesView({"names": ["sales", "nope"]}).check, self.state
        )
        self.assertEqual(
            (error.code, error.message),
            (ExitCode.ACTION_FAILED, "no queue 'nope' on the PBX (its queues: sales, support)"),
        )
        every = QueuesView({"names": []})
        self.assertEqual(list(every.json(self.state)["queues"]), ["sales", "support"])
        self.assertEqual(
            list(every.json(self.state)),
            ["version", "time", "synced", "server", "limits", "queues"],
        )

    def test_changes_heard(self) -> None:
        """A pause asks for a redraw; a call that is in no queue does not."""
        view = QueuesView({"names": []})
        changes: list[None] = []
        view.on_change = lambda: changes.append(None)
        view.state = self.state
        self.state.add_listener(view)
        self.pbx.incoming_call("1000", caller_id='"Eve" <205>')
        self.step()
        self.assertEqual(changes, [])
        self.pbx.pause_member("support", "Local/1001@txami-test/n", True)
        self.step()
        self.assertEqual(len(changes), 1)


class LimitedViewTests(ViewTestCase):
    """A session that may not list the channels says so."""

    username = "reader"
    secret = "readersecret"

    def test_notes(self) -> None:
        """The view's notes name what this session cannot follow, and why."""
        self.assertEqual(
            CallsView({}).notes(self.state),
            ["cannot follow the calls: CoreShowChannels: Permission denied"],
        )
        self.assertEqual(QueuesView({"names": []}).notes(self.state), [])


class ThrottleTests(SynchronousTestCase):
    """At most N runs a second; changes in between are gathered."""

    def test_rate(self) -> None:
        """The first change runs at once; later ones wait for the interval, folded into one."""
        clock = Clock()
        runs: list[float] = []
        throttle = Throttle(clock, 4.0, lambda: runs.append(clock.seconds()), self.fail)
        throttle.changed()
        clock.advance(0)
        self.assertEqual(runs, [0.0])
        clock.advance(0.1)
        throttle.changed()
        throttle.changed()
        clock.advance(0.1)
        self.assertEqual(runs, [0.0])
        clock.advance(0.05)
        self.assertEqual(runs, [0.0, 0.25])
        clock.advance(10)
        self.assertEqual(runs, [0.0, 0.25])
        throttle.changed()
        throttle.run_now()
        clock.advance(10)
        self.assertEqual(runs, [0.0, 0.25, 10.25])
        self.assertEqual(DEFAULT_RATE, 4.0)

    def test_failure(self) -> None:
        """An action that raises goes to the failure callback, not the reactor."""
        clock = Clock()
        failures: list[Failure] = []

        def broken() -> None:
            raise ValueError("drawn badly")

        throttle = Throttle(clock, 1.0, broken, failures.append)
        throttle.changed()
        clock.advance(0)
        self.assertEqual([f.getErrorMessage() for f in failures], ["drawn badly"])


class _Stream(io.BytesIO):
    """A binary stdout whose terminal size cannot be asked (so the screen is 80 x 24)."""

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no descriptor")


class _ThreadsReactor(MemoryReactor):
    """A `MemoryReactor` whose ``callFromThread`` calls wait for `run_calls`."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, tuple[Any, ...]]] = []

    def callFromThread(self, f: Any, *args: Any) -> None:
        self.calls.append((f, args))

    def run_calls(self) -> None:
        calls, self.calls = self.calls, []
        for f, args in calls:
            f(*args)


class ScreenTests(SynchronousTestCase):
    """Frames, the alternate screen, keys and signal handlers."""

    def test_compose(self) -> None:
        """Home, each line cut and cleared to its end, the rest cleared; overflow counted."""
        self.assertEqual(
            compose(["abcdef", "xy"], 4, 10), "\x1b[Habc\u2026\x1b[K\r\nxy\x1b[K\x1b[J"
        )
        self.assertEqual(
            compose(["1", "2", "3", "4"], 80, 3),
            "\x1b[H1\x1b[K\r\n2\x1b[K\r\n\u2026 2 more lines (a taller window shows them)"
            "\x1b[K\x1b[J",
        )

    def test_draw_and_leave(self) -> None:
        """Frames are written only when they change; leave restores once, handlers too."""
        before = signal.getsignal(signal.SIGWINCH)
        stream = _Stream()
        lines = ["one"]
        screen = Screen(MemoryReactor(), stream, lambda columns: list(lines), keys=None)
        screen.draw()
        self.assertEqual(stream.getvalue(), b"")  # not entered: nothing is drawn
        screen.enter()
        self.assertIsNot(signal.getsignal(signal.SIGWINCH), before)
        screen.draw()
        screen.draw()
        lines[0] = "two"
        screen.draw()
        screen.draw(full=True)
        screen.leave()
        screen.leave()
        frame_one = "\x1b[Hone\x1b[K\x1b[J"
        frame_two = "\x1b[Htwo\x1b[K\x1b[J"
        self.assertEqual(
            stream.getvalue().decode(),
            ENTER + frame_one + frame_two + "\x1b[2J" + frame_two + LEAVE,
        )
        self.assertIs(signal.getsignal(signal.SIGWINCH), before)

    def test_keys_on_a_terminal(self) -> None:
        """Keys stop echoing while the screen is up; q quits; the mode comes back."""
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        reactor = MemoryReactor()
        quits: list[None] = []
        screen = Screen(
            reactor, _Stream(), lambda columns: [], on_quit=lambda: quits.append(None), keys=slave
        )
        mode = termios.tcgetattr(slave)[3]
        self.assertTrue(mode & termios.ECHO and mode & termios.ICANON)
        screen.enter()
        self.addCleanup(screen.leave)
        self.assertFalse(termios.tcgetattr(slave)[3] & (termios.ECHO | termios.ICANON))
        [keys] = reactor.getReaders()
        os.write(master, b"x")
        keys.doRead()  # type: ignore[attr-defined]
        self.assertEqual(quits, [])
        os.write(master, b"q")
        keys.doRead()  # type: ignore[attr-defined]
        self.assertEqual(quits, [None])
        screen.leave()
        self.assertEqual(reactor.getReaders(), [])
        self.assertEqual(termios.tcgetattr(slave)[3], mode)

    def test_suspend_and_continue(self) -> None:
        """Ctrl-Z gives the terminal back before stopping; the view returns in the foreground."""
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        reactor = _ThreadsReactor()
        stream = _Stream()
        screen = Screen(reactor, stream, lambda columns: ["frame"], keys=slave)
        mode = termios.tcgetattr(slave)[3]
        stopped: list[tuple[int, int]] = []
        self.patch(os, "kill", lambda pid, number: stopped.append((pid, number)))
        foreground = [True]
        self.patch(screen, "_in_foreground", lambda: foreground[0])
        screen.enter()
        self.addCleanup(screen.leave)
        screen.draw()
        handler = signal.getsignal(signal.SIGTSTP)
        stream.seek(0)
        stream.truncate()
        handler(signal.SIGTSTP, None)  # type: ignore[operator]
        # The terminal was given back before the stop, and the handler is back after it.
        self.assertEqual(stopped, [(os.getpid(), signal.SIGTSTP)])
        self.assertEqual(stream.getvalue(), LEAVE.encode())
        self.assertEqual(termios.tcgetattr(slave)[3], mode)
        self.assertEqual(signal.getsignal(signal.SIGTSTP), handler)
        # Continued in the background: nothing drawn, no keys read, until the foreground.
        foreground[0] = False
        reactor.run_calls()
        screen.draw()
        self.assertEqual((stream.getvalue(), reactor.getReaders()), (LEAVE.encode(), []))
        foreground[0] = True
        screen.draw()
        self.assertEqual(
            stream.getvalue().decode(),
            LEAVE + ENTER + "\x1b[2J\x1b[Hframe\x1b[K\x1b[J",
        )
        self.assertEqual(len(reactor.getReaders()), 1)
        self.assertFalse(termios.tcgetattr(slave)[3] & termios.ECHO)


class ViewOptionTests(SynchronousTestCase):
    """The options of the live views."""

    def parse(self, *argv: str) -> Any:
        options = TxamiOptions({"TXAMI_SECRET": "s"})
        options.parseOptions([*argv, "-u", "admin"])
        return options.subOptions

    def test_defaults_and_values(self) -> None:
        """--once, --json, --width (0: no limit), --rate; queue NAMEs, repeats folded."""
        calls = self.parse("calls")
        self.assertEqual(
            (calls["once"], calls["json"], calls["width"], calls["rate"]), (0, 0, None, 4.0)
        )
        queues = self.parse("queues", "support", "--once", "sales", "support", "--width", "0")
        self.assertEqual(
            (queues["names"], queues["once"], queues["width"]), (["support", "sales"], 1, 0)
        )
        self.assertEqual(self.parse("calls", "--rate", "0.5", "--width", "132")["rate"], 0.5)

    def test_refusals(self) -> None:
        """A bad width or rate, or arguments to calls, are usage errors."""
        for argv, message in [
            (("calls", "--width", "10"), "--width must be 0 or a number from 20 up, not '10'"),
            (("calls", "--width", "x"), "--width must be 0 or a number from 20 up, not 'x'"),
            (("queues", "--rate", "0"), "--rate must be a number from 0.01 to 100, not '0'"),
            (("queues", "--rate", "fast"), "--rate must be a number from 0.01 to 100, not 'fast'"),
        ]:
            error = self.assertRaises(usage.UsageError, self.parse, *argv)
            self.assertEqual(str(error), message)
        self.assertRaises(usage.UsageError, self.parse, "calls", "extra")
