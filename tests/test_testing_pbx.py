"""
txami.testing.pbx and .cli: the in-memory PBX behind the fake server, and its CLI.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txami.testing import PBX, FakeAsterisk
from txami.testing.cli import run_command
from txami.testing.pbx import Channel, load_capture_defaults, parse_caller_id
from txami.testing.permissions import (
    ALL,
    CALL,
    SYSTEM,
    USER,
    class_mask,
    class_string,
    event_class,
    event_mask,
)
from txami.testing.timers import Timers

DATA = Path(__file__).parent / "data"


class Recorder(SynchronousTestCase):
    """A PBX whose events are recorded as (name, headers)."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.events: list[tuple[str, dict[str, str]]] = []
        self.pbx = PBX(Timers(self.clock), lambda n, h, c: self.events.append((n, dict(h))))
        load_capture_defaults(self.pbx)
        self.addCleanup(self.pbx.stop)
        self.outcomes: list[tuple[bool, int, str | None]] = []

    def done(self, answered: bool, reason: int, channel: Channel | None) -> None:
        self.outcomes.append((answered, reason, channel.name if channel else None))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


class ChannelTests(Recorder):
    """Channels, hangups and timeouts."""

    def test_create_channel(self) -> None:
        """create_channel raises Newchannel with the full channel snapshot."""
        channel = self.pbx.create_channel(caller_id='"Ann" <200>', state=6)
        self.assertEqual(
            self.events,
            [
                (
                    "Newchannel",
                    {
                        "Channel": "PJSIP/100-00000000",
                        "ChannelState": "6",
                        "ChannelStateDesc": "Up",
                        "CallerIDNum": "200",
                        "CallerIDName": "Ann",
                        "ConnectedLineNum": "<unknown>",
                        "ConnectedLineName": "<unknown>",
                        "Language": "en",
                        "AccountCode": "",
                        "Context": "default",
                        "Exten": "s",
                        "Priority": "1",
                        "Uniqueid": "1700000000.0",
                        "Linkedid": "1700000000.0",
                    },
                )
            ],
        )
        self.assertIs(self.pbx.channel("pjsip/100-00000000"), channel)

    def test_hangup_local_pair(self) -> None:
        """Hanging up one half of a Local pair hangs up both, requests first."""
        self.pbx.originate("Local/1000@txami-test", application="Echo", done=self.done)
        del self.events[:]
        two = self.pbx.channel("Local/1000@txami-test-00000000;2")
        assert two is not None
        self.pbx.hangup(two, 17)
        self.assertEqual(
            [(n, h["Channel"], h["Cause"]) for n, h in self.events if "Cause" in h],
            [
                ("SoftHangupRequest", "Local/1000@txami-test-00000000;2", "16"),
                ("HangupRequest", "Local/1000@txami-test-00000000;1", "17"),
                ("Hangup", "Local/1000@txami-test-00000000;2", "17"),
                ("Hangup", "Local/1000@txami-test-00000000;1", "17"),
            ],
        )
        self.assertEqual(self.pbx.channels, {})

    def test_absolute_timeout(self) -> None:
        """hangup_later hangs up after the delay; 0 cancels it."""
        first = self.pbx.create_channel()
        second = self.pbx.create_channel()
        self.pbx.hangup_later(first, 2)
        self.pbx.hangup_later(second, 2)
        self.pbx.hangup_later(second, 0)
        self.clock.advance(2)
        self.assertEqual(list(self.pbx.channels.values()), [second])

    def test_caller_id_parsing(self) -> None:
        """Caller ids parse as Asterisk reads them."""
        self.assertEqual(parse_caller_id('"Long 0" <5551000>'), ("Long 0", "5551000"))
        self.assertEqual(parse_caller_id("Bob <200>"), ("Bob", "200"))
        self.assertEqual(parse_caller_id("5551000"), ("", "5551000"))
        self.assertEqual(parse_caller_id("Reception"), ("Reception", ""))


class OriginateTests(Recorder):
    """The call model."""

    def test_local_call_runs_the_dialplan(self) -> None:
        """Local/1002 answers at once, waits 1 s, then both halves hang up with cause 16."""
        self.pbx.originate(
            "Local/1002@txami-test", exten="1002", context="txami-test", done=self.done
        )
        self.assertEqual(self.outcomes, [(True, 4, "Local/1002@txami-test-00000000;1")])
        # Answer runs where ;1 already is (1002@txami-test:1): no Newexten for it.
        self.assertEqual(
            [(n, h.get("Channel", h.get("DestChannel", ""))[-2:]) for n, h in self.events],
            [
                ("Newchannel", ";1"),
                ("Newchannel", ";2"),
                ("Newexten", ";1"),
                ("LocalBridge", ""),
                ("DialBegin", ";1"),
                ("Newexten", ";2"),
                ("Newstate", ";2"),
                ("DeviceStateChange", ""),
                ("Newstate", ";1"),
                ("DeviceStateChange", ""),
                ("DialEnd", ";1"),
                ("Newexten", ";1"),
                ("Newexten", ";2"),
            ],
        )
        del self.events[:]
        self.clock.advance(1)
        self.assertEqual(
            [(n, h.get("Cause"), h.get("Channel", "")[-2:]) for n, h in self.events],
            [
                ("Newexten", None, ";1"),
                ("SoftHangupRequest", "16", ";1"),
                ("HangupRequest", "16", ";2"),
                ("Hangup", "16", ";1"),
                ("SoftHangupRequest", "16", ";2"),
                ("Hangup", "16", ";2"),
                ("DeviceStateChange", None, ""),
                ("DeviceStateChange", None, ""),
            ],
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_missing_extension(self) -> None:
        """A Local channel to a missing extension fails with reason 0, cause 0 hangups."""
        self.pbx.originate("Local/9999@txami-test", exten="1", context="x", done=self.done)
        self.assertEqual(self.outcomes, [(False, 0, "Local/9999@txami-test-00000000;1")])
        self.assertEqual(
            [(n, h.get("Cause")) for n, h in self.events if n == "Hangup"],
            [("Hangup", "0"), ("Hangup", "0")],
        )

    def test_unknown_technology(self) -> None:
        """An unknown technology fails at once, without any event."""
        self.pbx.originate("Foo/bar", exten="1002", context="txami-test", done=self.done)
        self.assertEqual((self.outcomes, self.events), ([(False, 0, None)], []))

    def test_ringing_endpoint(self) -> None:
        """A non-Local channel rings for ring_time, then answers and runs its destination."""
        self.pbx.ring_time = 2
        self.pbx.originate("PJSIP/100", application="Wait", data="1", done=self.done)
        self.assertEqual(
            self.names(), ["Newchannel", "DialBegin", "Newstate", "DeviceStateChange"]
        )
        self.assertEqual(self.events[2][1]["ChannelStateDesc"], "Ringing")
        self.assertEqual(self.events[3][1], {"Device": "PJSIP/100", "State": "RINGING"})
        self.clock.advance(2)
        self.assertEqual(self.outcomes, [(True, 4, "PJSIP/100-00000000")])
        self.clock.advance(1)
        self.assertEqual(self.names()[-2:], ["Hangup", "DeviceStateChange"])
        self.assertEqual(self.events[-1][1], {"Device": "PJSIP/100", "State": "NOT_INUSE"})
        self.assertEqual(self.pbx.channels, {})

    def test_endpoint_outcomes(self) -> None:
        """endpoint_outcomes decides busy and congestion, with their causes."""
        self.pbx.endpoint_outcomes.update({"SIP/busy": 5, "SIP/full": 8})
        self.pbx.originate("SIP/busy", exten="1", context="x", priority=1, done=self.done)
        self.pbx.originate("SIP/full", exten="1", context="x", priority=1, done=self.done)
        self.assertEqual([o[:2] for o in self.outcomes], [(False, 5), (False, 8)])
        ends = [(h["DialStatus"]) for n, h in self.events if n == "DialEnd"]
        causes = [(h["Cause"], h["Cause-txt"]) for n, h in self.events if n == "Hangup"]
        self.assertEqual(ends, ["BUSY", "CONGESTION"])
        self.assertEqual(causes, [("17", "User busy"), ("34", "Circuit/channel congestion")])

    def test_ring_timeout(self) -> None:
        """Ringing past the timeout fails with reason 3 (no answer)."""
        self.pbx.ring_time = 60
        self.pbx.originate(
            "PJSIP/100", exten="1002", context="txami-test", timeout=5, done=self.done
        )
        self.clock.advance(5)
        self.assertEqual(self.outcomes, [(False, 3, "PJSIP/100-00000000")])

    def test_local_unanswered_timeout(self) -> None:
        """A Local call whose dialplan never answers fails at the timeout with reason 3."""
        self.pbx.dialplan["txami-test"]["5000"] = [("Wait", "100")]
        self.pbx.originate(
            "Local/5000@txami-test", exten="1", context="x", timeout=3, done=self.done
        )
        self.clock.advance(3)
        self.assertEqual(self.outcomes, [(False, 3, "Local/5000@txami-test-00000000;1")])
        self.assertEqual(self.pbx.channels, {})

    def test_user_event_application(self) -> None:
        """UserEvent(name,Key: value) in the dialplan raises a UserEvent on the channel."""
        self.pbx.originate("Local/700@txami-test", application="Wait", data="2", done=self.done)
        [event] = [h for n, h in self.events if n == "UserEvent"]
        self.assertEqual(
            (event["Channel"], event["UserEvent"], event["Foo"]),
            ("Local/700@txami-test-00000000;2", "TxamiTest", "bar"),
        )

    def test_queue_application(self) -> None:
        """Queue() adds the caller to the queue until it hangs up (its members paused)."""
        self.pbx.pause_member("support", "Local/1000@txami-test/n", True)
        self.pbx.pause_member("support", "Local/1001@txami-test/n", True)
        self.pbx.originate("Local/600@txami-test", application="Wait", data="5", done=self.done)
        queue = self.pbx.queues["support"]
        self.assertEqual([c.name for c in queue.callers], ["Local/600@txami-test-00000000;2"])
        self.clock.advance(5)
        self.assertEqual(queue.callers, [])
        self.assertEqual(
            [n for n in self.names() if n.startswith("QueueCaller")],
            ["QueueCallerJoin", "QueueCallerAbandon", "QueueCallerLeave"],
        )


class StateTests(Recorder):
    """Variables, device and extension states, mailboxes."""

    def test_device_state_changes_hint(self) -> None:
        """A device change raises ExtensionStatus for its hint, then DeviceStateChange, once."""
        self.pbx.set_device_state("Custom:txami2000", "INUSE")
        self.pbx.set_device_state("Custom:txami2000", "INUSE")
        self.assertEqual(
            self.events,
            [
                (
                    "ExtensionStatus",
                    {
                        "Exten": "2000",
                        "Context": "txami-test",
                        "Hint": "Custom:txami2000",
                        "Status": "1",
                        "StatusText": "InUse",
                    },
                ),
                ("DeviceStateChange", {"Device": "Custom:txami2000", "State": "INUSE"}),
            ],
        )

    def test_hint_aggregation(self) -> None:
        """Hints combine device states as Asterisk does."""
        key = ("txami-test", "2002")
        for first, second, status in [
            ("RINGING", "INUSE", 9),
            ("RINGING", "NOT_INUSE", 8),
            ("BUSY", "NOT_INUSE", 2),
            ("ONHOLD", "NOT_INUSE", 16),
            ("UNAVAILABLE", "INVALID", 4),
            ("UNKNOWN", "NOT_INUSE", 0),
        ]:
            self.pbx.device_states.update({"Custom:txami2002": first, "Custom:txami2003": second})
            self.assertEqual(self.pbx.extension_state(*key)[1], status, (first, second))
        self.assertEqual(self.pbx.extension_state("txami-test", "1000"), ("", -1))

    def test_functions(self) -> None:
        """Getvar's dialplan functions read the model; SHELL reads empty."""
        channel = self.pbx.create_channel(caller_id='"Ann" <200>')
        self.pbx.db["/fam/key"] = "v"
        self.pbx.device_states["Custom:x"] = "BUSY"
        get = self.pbx.get_var
        self.assertEqual(get(channel, "CALLERID(all)"), '"Ann" <200>')
        self.assertEqual(get(channel, "CHANNEL(state)"), "Up")
        self.assertEqual(get(None, "DB(fam/key)"), "v")
        self.assertEqual(get(None, "GLOBAL(TXAMI_GLOBAL)"), "hello")
        self.assertEqual(get(channel, "TXAMI_GLOBAL"), "hello")
        self.assertEqual(get(None, "DEVICE_STATE(Custom:x)"), "BUSY")
        self.assertEqual(get(None, "EXTENSION_STATE(2001@txami-test)"), "NOT_INUSE")
        self.assertEqual(get(None, "SHELL(id)"), "")
        self.assertIsNone(get(None, "NOPE"))

    def test_set_callerid_function(self) -> None:
        """Setting CALLERID(num) changes the channel and raises NewCallerid."""
        channel = self.pbx.create_channel()
        self.pbx.set_var(channel, "CALLERID(num)", "300")
        self.assertEqual((channel.caller_num, self.names()[-1]), ("300", "NewCallerid"))

    def test_mailboxes(self) -> None:
        """A box without context is in 'default'; set_mailbox raises MessageWaiting."""
        self.assertEqual(self.pbx.mailbox("1234")[1].new, 2)
        self.assertEqual(self.pbx.mailbox("9999@x")[1].new, 0)
        self.pbx.set_mailbox("1235", 1, 4)
        self.assertEqual(
            self.events,
            [
                (
                    "MessageWaiting",
                    {"Mailbox": "1235@default", "Waiting": "1", "New": "1", "Old": "4"},
                )
            ],
        )


class PermissionTests(SynchronousTestCase):
    """manager.c's class lists, masks and event classes."""

    def test_class_lists(self) -> None:
        """Class lists read as Asterisk reads them, quirks included."""
        self.assertEqual(class_mask("call,system"), CALL | SYSTEM)
        self.assertEqual(class_mask("all"), ALL)
        self.assertEqual(class_mask("bogusclass"), 0)
        self.assertEqual(class_mask("cal,user"), CALL | USER, "an item matches as a prefix")

    def test_event_masks(self) -> None:
        """Events values: words, digits, classes, and empty."""
        self.assertEqual(
            [event_mask(v) for v in ("on", "off", "yes", "3", "user", "")],
            [ALL, 0, ALL, 3, USER, None],
        )

    def test_class_strings(self) -> None:
        """Privilege text is in Asterisk's order, ending with all."""
        self.assertEqual(class_string(CALL | SYSTEM), "system,call,all")
        self.assertEqual(class_string(0), "<none>")

    def test_event_classes(self) -> None:
        """Known events have Asterisk's class; a Privilege header overrides; default call."""
        self.assertEqual(event_class("Newexten"), class_mask("dialplan"))
        self.assertEqual(event_class("userevent"), USER)
        self.assertEqual(event_class("Whatever"), CALL)
        self.assertEqual(event_class("Newexten", "system,all"), SYSTEM)


class CLITests(SynchronousTestCase):
    """run_command's answers, against the capture's texts."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.fake = FakeAsterisk(self.clock)
        self.addCleanup(self.fake.stop)
        command = (DATA / "command.raw").read_bytes().decode()
        self.captured = {
            block.split("\r\n")[1][len("ActionID: ") :]: [
                line[len("Output: ") :]
                for line in block.split("\r\n")
                if line.startswith("Output: ")
            ]
            for block in command.split("\r\n\r\n")
            if block.startswith("Response: ")
        }

    def run_cli(self, command: str) -> tuple[bool, list[str]]:
        return run_command(self.fake.pbx, command, self.fake.action_info)

    def test_core_show_channels_idle(self) -> None:
        """With no channel, 'core show channels' prints what the capture shows."""
        self.assertEqual(self.run_cli("core show channels"), (True, self.captured["command-03"]))

    def test_no_such_command(self) -> None:
        """An unknown command fails with the capture's text."""
        self.assertEqual(self.run_cli("foo bar baz"), (False, self.captured["command-07"]))

    def test_dialplan_show(self) -> None:
        """'dialplan show txami-test' lists the capture's extensions and today's summary."""
        # The capture predates 1011-1013, 900 and 901; the summary is what the current
        # ../shared/asterisk prints for its dialplan (19 extensions, 56 priorities).
        ok, lines = self.run_cli("dialplan show txami-test")
        self.assertTrue(ok)
        self.assertEqual(lines[-1], "-= 19 extensions (56 priorities) in 1 context. =-")
        strip = [line.rsplit("[", 1)[0].rstrip() for line in lines]
        captured = [line.rsplit("[", 1)[0].rstrip() for line in self.captured["command-04"]]
        self.assertLessEqual(set(captured[:-1]), set(strip))

    def test_uptime(self) -> None:
        """Uptime prints in words, or in seconds."""
        self.clock.advance(159)
        self.assertEqual(
            self.run_cli("core show uptime"),
            (True, ["System uptime: 2 minutes, 39 seconds", "Last reload: 2 minutes, 39 seconds"]),
        )
        self.assertEqual(
            self.run_cli("core show uptime seconds"),
            (True, ["System uptime: 159", "Last reload: 159"]),
        )

    def test_scripted_commands(self) -> None:
        """pbx.cli adds commands: a list of lines, or a callable deciding success."""
        self.fake.pbx.cli["pjsip show endpoints"] = ["No objects found."]
        self.fake.pbx.cli["module reload x"] = lambda args: (False, [" ".join(args[2:])])
        self.assertEqual(self.run_cli("pjsip  show endpoints"), (True, ["No objects found."]))
        self.assertEqual(self.run_cli("module reload x"), (False, ["x"]))

    def test_database_show(self) -> None:
        """'database show' lists the database and counts the rows."""
        self.fake.pbx.db.update({"/a/b": "1", "/c/d": "2"})
        self.assertEqual(
            self.run_cli("database show a"),
            (True, [f"{'/a/b':<50}: {'1':<25}", "1 result found."]),
        )


class DemoTrafficTests(SynchronousTestCase):
    """start_demo_traffic and stop."""

    def test_demo_calls_and_stop(self) -> None:
        """Demo traffic originates a short call per interval; stop() leaves no timer."""
        clock = Clock()
        fake = FakeAsterisk(clock)
        names: list[str] = []
        fake.pbx.emit_hook = lambda n, h, c: names.append(n)
        fake.start_demo_traffic(interval=2)
        clock.advance(2)
        self.assertEqual(names.count("Newchannel"), 2)
        self.assertIn("OriginateResponse", names)
        clock.advance(0.2)
        self.assertEqual(names.count("Hangup"), 2)
        clock.advance(2)
        self.assertEqual(names.count("Newchannel"), 4)
        fake.stop_demo_traffic()
        clock.advance(10)
        self.assertEqual(names.count("Newchannel"), 4)
        fake.start_demo_traffic(interval=1)
        clock.advance(1)
        fake.stop()
        self.assertEqual([c for c in clock.getDelayedCalls() if c.active()], [])
