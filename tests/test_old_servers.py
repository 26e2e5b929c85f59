"""
Old Asterisk releases (1.4 to 13.1): replays of byte streams built from their
source (``tests/data/old-*.raw``, each with a ``.md`` note naming the tag and
the function behind every block), and the rules of `txami.compat`.

Each replay drives the typed helpers with the stream's ActionIDs in send order
(`Session.pin_ids`), feeds the stream whole, in random chunks, one byte at a
time and split at every byte (`replay_all_feedings` checks that every feeding
gives the same outcome), then asserts the whole-feed outcome exactly: what
each Deferred fired with, once; that list items reached their action and no
event handler; that nothing is left pending.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.realpbx import SKIP, connect_user
from tests.test_replay import LogCapture, Session, action_blocks, replay_all_feedings
from txami import ActionTimeout, AMIError, AMIProtocol, Message
from txami.compat import MODERN, RULES, AMIVersion, iax_peers_from_text, rules_for
from txami.testing import FakeAsterisk, connected_pair
from txami.testing.pbx import IAXPeer, Queue, QueueMember

reactor: Any = _reactor


class OldReplayMixin:
    """Replay an ``old-*.raw`` stream with a helper script; check what every replay must."""

    def old_replay(
        self, name: str, ids: tuple[str, ...], script: Any, advance: float = 0.0
    ) -> Session:
        case: SynchronousTestCase = self  # type: ignore[assignment]

        def start(session: Session) -> None:
            session.pin_ids(list(ids))
            script(session, session.protocol)

        s = replay_all_feedings(case, f"{name}.raw", start, advance)
        # Every Deferred handed out fired, exactly once, and nothing is left waiting.
        case.assertEqual(sorted(s.results), sorted(s.deferreds))
        case.assertEqual(len(s.fired), len(set(s.fired)))
        case.assertEqual({e.mode for e in s.protocol._pending.values()} - {4, 5}, set())
        return s

    def value(self, session: Session, key: str) -> Any:
        result = session.results[key]
        case: SynchronousTestCase = self  # type: ignore[assignment]
        if isinstance(result, Failure):
            case.fail(f"{key} failed: {result.getTraceback()}")
        return result

    def failure(self, session: Session, key: str, kind: type[BaseException]) -> Any:
        result = session.results[key]
        case: SynchronousTestCase = self  # type: ignore[assignment]
        case.assertIsInstance(result, Failure, f"{key}: {result!r}")
        assert isinstance(result, Failure)
        case.assertIs(result.type, kind)
        return result.value


class Asterisk14Tests(OldReplayMixin, SynchronousTestCase):
    """old-1.4.raw: AMI 1.0 (Pong, Events On/Off, lists without EventList, text answers)."""

    IDS = (
        "o1",
        "o2",
        "o3",
        "o4",
        "o5",
        "o6",
        "o7",
        "o8",
        "o9",
        "p1",
        "p2",
        "p3",
        "c1",
        "c2",
        "p4",
    )

    def script(self, s: Session, p: AMIProtocol) -> None:
        s.track("login", p.login("admin", "secret"))
        s.track("ping", p.ping())
        s.track("off", p.events("off"))
        s.track("on", p.events("on"))
        s.track("status", p.status())
        s.track("sippeers", p.send_action("SIPpeers"))
        s.track("queuestatus", p.queue_status())
        s.track("agents", p.send_action("Agents"))
        s.track("parked", p.send_action("ParkedCalls"))
        s.track("db", p.db_get("cidname", "100"))
        s.track("iax", p.iax_peers())
        s.track("queues", p.queues())
        s.track("unknown", p.command("foo bar"))
        s.track("version", p.command("core show version"))

    def test_replay(self) -> None:
        """Every helper gets the 1.4 answer right; only Newchannel and Hangup reach handlers."""
        s = self.old_replay("old-1.4", self.IDS, self.script)
        p = s.protocol
        self.assertEqual(p.ami_version, "1.0")
        self.assertEqual(p._rules, rules_for("1.0"))
        self.assertEqual(self.value(s, "ping").pairs(), [("Response", "Pong"), ("ActionID", "o2")])
        self.assertEqual(self.value(s, "off").name, "Events Off")
        self.assertEqual(self.value(s, "on").name, "Events On")
        status = self.value(s, "status")
        self.assertEqual([(e.name, e.action_id) for e in status], [("Status", "o5")] * 2)
        self.assertEqual(status[1]["Link"], "SIP/300-0b2c3d4e")
        peers = self.value(s, "sippeers")
        self.assertEqual([e["ObjectName"] for e in peers.events], ["100", "200"])
        self.assertEqual(
            peers.list_complete.pairs()[:2], [("Event", "PeerlistComplete"), ("ListItems", "2")]
        )
        names = [e.name for e in self.value(s, "queuestatus")]
        self.assertEqual(names, ["QueueParams", "QueueMember"])
        agents = self.value(s, "agents")
        self.assertEqual([e["Agent"] for e in agents.events], ["1001"])
        self.assertEqual(agents.list_complete.name, "AgentsComplete")
        parked = self.value(s, "parked")
        self.assertEqual(
            (list(parked.events), parked.list_complete.name), ([], "ParkedCallsComplete")
        )
        self.assertEqual(self.value(s, "db"), "Alice")
        iax = self.value(s, "iax")
        self.assertEqual(
            [(e["ObjectName"], e["IPaddress"], e["IPport"], e["Dynamic"]) for e in iax],
            [("100", "192.168.1.20", "4569", "yes"), ("trunk-to-hq-lon", "-none-", "0", "no")],
        )
        self.assertEqual(
            [(e["Trunk"], e["Encryption"], e["Status"]) for e in iax],
            [("no", "yes", "OK (8 ms)"), ("yes", "no", "Unmonitored")],
        )
        self.assertEqual(
            self.value(s, "queues"),
            [
                "support      has 0 calls (max unlimited) in 'ringall' strategy (0s holdtime), "
                "W:0, C:0, A:0, SL:0.0% within 60s",
                "   Members: ",
                "      SIP/100 (Not in use) has taken no calls yet",
                "   No Callers",
            ],
        )
        error = self.failure(s, "unknown", AMIError)
        self.assertEqual(
            error.output,
            ["No such command 'foo bar' (type 'help foo' for other possible commands)"],
        )
        self.assertEqual(error.action, "Command")
        self.assertEqual(len(self.value(s, "version")), 1)
        self.assertEqual(s.event_names(), ["Newchannel", "Hangup"])
        # The DBGet list ended when the Ping txami sent behind it was answered.
        self.assertEqual(action_blocks(s.transport.value())[-1], b"Action: Ping\r\nActionID: p4")
        self.assertEqual(s.fired.index("db"), len(s.fired) - 1)
        self.assertEqual(p._pending, {})

    def test_iax_peers_text_as_sent(self) -> None:
        """send_action('IAXpeers') on 1.4 fires with the ActionID and the table as Output lines."""
        protocol, *_ = connect(b"Asterisk Call Manager/1.0\r\n")
        d = protocol.send_action("IAXpeers", ActionID="x")
        protocol.dataReceived(
            b"ActionID: x\r\nName/Username  Host\r\n1 iax2 peers [0 online]\r\n\r\n\r\n"
        )
        answer = self.successResultOf(d)
        self.assertEqual(
            answer.pairs(),
            [
                ("ActionID", "x"),
                ("Output", "Name/Username  Host"),
                ("Output", "1 iax2 peers [0 online]"),
            ],
        )
        self.assertEqual((answer.kind, answer.name, answer.events), ("response", None, ()))


class Asterisk160Tests(OldReplayMixin, SynchronousTestCase):
    """old-1.6.0.raw: untagged, unterminated answers run into each other; lists with no end."""

    IDS = ("o1", "o2", "o3", "o4", "o5", "p1", "p2", "p3", "p4")

    @staticmethod
    def script(s: Session, p: AMIProtocol) -> None:
        s.track("login", p.login("admin", "secret"))
        s.track("off", p.events("off"))
        s.track("ping", p.ping())
        s.track("on", p.events("on"))
        s.track("status", p.send_action("Status"))
        s.track("iax", p.iax_peers())
        s.track("db", p.db_get("cidname", "100"))

    def test_replay(self) -> None:
        """Glued answers reach their actions in order; lists end at their closing Pings."""
        s = self.old_replay("old-1.6.0", self.IDS, self.script)
        self.assertEqual(
            self.value(s, "off").pairs(), [("Response", "Success"), ("Events", "Off")]
        )
        self.assertEqual(
            self.value(s, "ping").pairs(), [("Response", "Success"), ("Ping", "Pong")]
        )
        self.assertEqual(self.value(s, "on").pairs(), [("Response", "Success"), ("Events", "On")])
        status = self.value(s, "status")
        self.assertEqual([e["Channel"] for e in status.events], ["SIP/100-08d1e2f0"])
        self.assertEqual(status.list_complete["Items"], "1")
        iax = self.value(s, "iax")
        self.assertEqual(
            [(e.name, e.action_id, e["ObjectName"]) for e in iax],
            [("PeerEntry", None, "100"), ("PeerEntry", None, "hq")],
        )
        self.assertEqual(self.value(s, "db"), "Alice")
        self.assertEqual(s.fired, ["login", "off", "ping", "on", "status", "iax", "db"])
        self.assertEqual(s.event_names(), ["Newchannel"])
        sent = [Message.parse(b) for b in action_blocks(s.transport.value())]
        self.assertEqual(
            [(m["Action"], m["ActionID"]) for m in sent[-2:]], [("Ping", "p3"), ("Ping", "p4")]
        )
        self.assertEqual(s.protocol._pending, {})

    def test_unterminated_at_once(self) -> None:
        """An unterminated Events answer with nothing after it fires events() at once."""
        protocol = AMIProtocol(Clock())
        protocol.makeConnection(StringTransport())
        d = protocol.events("on")
        protocol.dataReceived(b"Asterisk Call Manager/1.1\r\nResponse: Success\r\nEvents: On\r\n")
        self.assertEqual(self.successResultOf(d)["Events"], "On")
        self.assertEqual(protocol._buffer, b"")


class Asterisk161Tests(OldReplayMixin, SynchronousTestCase):
    """old-1.6.1.raw: a cancelled action keeps its place in line; queues() ends on a bare Pong."""

    IDS = ("o1", "o2", "o3", "o4", "p1")

    @staticmethod
    def script(s: Session, p: AMIProtocol) -> None:
        def logged_in(_: object) -> None:
            # Sent once the banner has told which rules apply, as a program would.
            s.track("cancelled", p.ping()).cancel()
            s.track("ping", p.ping())
            s.track("on", p.events("on"))
            s.track("queues", p.queues())

        s.track("login", p.login("admin", "secret")).addCallback(logged_in)

    def test_replay(self) -> None:
        """The first untagged Pong belongs to the cancelled Ping, the second to the live one."""
        s = self.old_replay("old-1.6.1", self.IDS, self.script)
        self.failure(s, "cancelled", CancelledError)
        self.assertEqual(self.value(s, "ping")["Ping"], "Pong")
        self.assertEqual(self.value(s, "on")["Events"], "On")
        self.assertEqual(
            self.value(s, "queues"),
            [
                "support      has 1 calls (max unlimited) in 'ringall' strategy (4s holdtime), "
                "W:0, C:3, A:1, SL:100.0% within 60s",
                "   Members: ",
                "      Alice (SIP/100) (dynamic) (Not in use) has taken 3 calls "
                "(last was 40 secs ago)",
                "   Callers: ",
                "      1. SIP/300-0b2c3d4e (wait: 0:04, prio: 0)",
            ],
        )
        self.assertEqual(s.fired, ["login", "cancelled", "ping", "on", "queues"])
        self.assertEqual(s.events, [])
        self.assertEqual(s.protocol._pending, {})


class Asterisk184Tests(OldReplayMixin, SynchronousTestCase):
    """old-1.8.4.raw: an untagged Events answer, DBGetComplete, header-like CLI output, app_rpt."""

    IDS = ("o1", "o2", "o3", "o4", "p1", "p2", "c1", "c2", "r1", "p3")

    @staticmethod
    def script(s: Session, p: AMIProtocol) -> None:
        s.track("login", p.login("admin", "secret"))
        s.track("on", p.events("on"))
        s.track("ping", p.ping())
        s.track("queuestatus", p.queue_status())
        s.track("db", p.db_get("cidname", "100"))
        s.track("iax", p.iax_peers())
        s.track("unknown", p.command("foo bar"))
        s.track("output", p.command("voicemail show summary"))
        s.track("rpt", p.send_action("RptStatus", Command="RptStat"))

    def test_replay(self) -> None:
        """Each answer reaches its action; CLI lines that look like headers stay output."""
        s = self.old_replay("old-1.8.4", self.IDS, self.script)
        self.assertEqual(self.value(s, "on").pairs(), [("Response", "Success"), ("Events", "On")])
        self.assertEqual(self.value(s, "ping")["Timestamp"], "1306000000.123456")
        self.assertEqual([e.name for e in self.value(s, "queuestatus")], ["QueueParams"])
        self.assertEqual(self.value(s, "db"), "Alice")
        self.assertEqual([e["ObjectName"] for e in self.value(s, "iax")], ["100"])
        error = self.failure(s, "unknown", AMIError)
        self.assertEqual(
            str(error),
            "Command failed: Follows (No such command 'foo bar' "
            "(type 'core show help foo' for other possible commands))",
        )
        self.assertEqual(
            self.value(s, "output"),
            ["Message: 2 new, 1 old", "Privilege: none", "ActionID: x", "", "last line"],
        )
        rpt = self.value(s, "rpt")
        self.assertEqual((rpt.kind, rpt.name, rpt.action_id), ("response", "Success", "r1"))
        self.assertEqual(rpt["Nodes"], "2000,2001")
        self.assertEqual(s.event_names(), ["FullyBooted", "Hangup"])
        # DBGetComplete ended the list before the closing Ping's answer, which changes nothing.
        self.assertLess(s.fired.index("db"), s.fired.index("iax"))
        self.assertEqual(s.protocol._pending, {})


class Asterisk131Tests(OldReplayMixin, SynchronousTestCase):
    """old-13.1.raw: the last releases before 13.2's consistent lists."""

    IDS = ("o1", "o2", "o3", "o4", "o5")

    @staticmethod
    def script(s: Session, p: AMIProtocol) -> None:
        s.track("login", p.login("admin", "secret"))
        s.track("summary", p.queue_summary())
        s.track("lots", p.send_action("Parkinglots"))
        s.track("channels", p.core_show_channels())
        s.track("widgets", p.send_action("WidgetList", list_complete="WidgetListComplete"))

    def test_replay(self) -> None:
        """Table lists, an EventList list and a list named by send_action all collect items."""
        s = self.old_replay("old-13.1", self.IDS, self.script)
        self.assertEqual([e["Queue"] for e in self.value(s, "summary")], ["sales", "support"])
        lots = self.value(s, "lots")
        self.assertEqual([e["Name"] for e in lots.events], ["default"])
        self.assertEqual(lots.list_complete.name, "ParkinglotsComplete")
        self.assertEqual(self.value(s, "channels"), [])
        widgets = self.value(s, "widgets")
        self.assertEqual([e["Widget"] for e in widgets.events], ["one"])
        self.assertEqual(widgets.list_complete["ListItems"], "1")
        self.assertEqual(s.event_names(), ["FullyBooted", "Hangup"])
        self.assertTrue(s.protocol.ami_version < "2.7.0")


def connect(banner: bytes) -> tuple[AMIProtocol, Clock, list[Message], LogCapture | None]:
    clock = Clock()
    protocol = AMIProtocol(clock)
    protocol.makeConnection(StringTransport())
    seen: list[Message] = []
    protocol.add_event_handler("*", seen.append)
    protocol.dataReceived(banner)
    return protocol, clock, seen, None


class ModernStrictnessTests(SynchronousTestCase):
    """The old-server rules stay off for 13.2 and later: today's strict behaviour."""

    def test_rules_off(self) -> None:
        """A modern banner installs no hook and keeps the modern rules."""
        protocol, *_ = connect(b"Asterisk Call Manager/9.0.0\r\n")
        self.assertIs(protocol._rules, MODERN)
        self.assertNotIn("lineReceived", vars(protocol))
        self.assertNotIn("_receive", vars(protocol))
        self.assertIsNone(protocol._list_ends)

    def test_pong_is_an_error(self) -> None:
        """'Response: Pong' fails on a modern (and a 1.6+) server, as an unknown status does."""
        for banner in (b"Asterisk Call Manager/9.0.0\r\n", b"Asterisk Call Manager/1.1\r\n"):
            protocol, *_ = connect(banner)
            d = protocol.send_action("Ping", ActionID="a")
            protocol.dataReceived(b"Response: Pong\r\nActionID: a\r\n\r\n")
            self.assertEqual(self.failureResultOf(d, AMIError).value.response.name, "Pong")

    def test_untagged_skipped(self) -> None:
        """A response without ActionID is logged and skipped; the action keeps waiting."""
        logs = LogCapture(self)
        protocol, clock, *_ = connect(b"Asterisk Call Manager/2.6.0\r\n")
        d = protocol.ping()
        protocol.dataReceived(b"Response: Success\r\nPing: Pong\r\n\r\n")
        self.assertNoResult(d)
        self.assertIn("skipping a response without ActionID", logs.lines()[-1][1])
        clock.advance(30)
        self.failureResultOf(d, ActionTimeout)

    def test_list_without_eventlist(self) -> None:
        """On 13.2+ a Status answer without EventList resolves at once; items reach handlers."""
        protocol, _, seen, _ = connect(b"Asterisk Call Manager/2.7.0\r\n")
        d = protocol.send_action("Status", ActionID="s")
        protocol.dataReceived(
            b"Response: Success\r\nActionID: s\r\nMessage: Channel status will follow\r\n\r\n"
            b"Event: Status\r\nChannel: SIP/1\r\nActionID: s\r\n\r\n"
            b"Event: StatusComplete\r\nActionID: s\r\n\r\n"
        )
        self.assertEqual(self.successResultOf(d).events, ())
        self.assertEqual([e.name for e in seen], ["Status", "StatusComplete"])

    def test_glued_not_split(self) -> None:
        """A modern server's block is never cut at an Event line inside it."""
        logs = LogCapture(self)
        protocol, _, seen, _ = connect(b"Asterisk Call Manager/9.0.0\r\n")
        protocol.dataReceived(b"Response: Success\r\nEvents: On\r\nEvent: X\r\n\r\n")
        self.assertEqual(seen, [])
        self.assertIn("skipping a response without ActionID", logs.lines()[-1][1])

    def test_named_list_complete(self) -> None:
        """send_action(list_complete=...) collects a list without EventList on any server."""
        protocol, _, seen, _ = connect(b"Asterisk Call Manager/9.0.0\r\n")
        d = protocol.send_action("WidgetList", ActionID="w", list_complete="WidgetListComplete")
        protocol.dataReceived(
            b"Response: Success\r\nActionID: w\r\n\r\n"
            b"Event: WidgetEntry\r\nActionID: w\r\n\r\n"
            b"Event: widgetlistcomplete\r\nActionID: w\r\n\r\n"
        )
        response = self.successResultOf(d)
        self.assertEqual([e.name for e in response.events], ["WidgetEntry"])
        self.assertEqual(response.list_complete.name, "widgetlistcomplete")  # type: ignore[union-attr]
        self.assertEqual(seen, [])

    def test_actionid_first_skipped(self) -> None:
        """From Asterisk 11 a block that does not start with Response or Event is skipped."""
        logs = LogCapture(self)
        protocol, *_ = connect(b"Asterisk Call Manager/1.3\r\n")
        d = protocol.send_action("RptStatus", ActionID="r")
        protocol.dataReceived(b"ActionID: r\r\nResponse: Success\r\n\r\n")
        self.assertNoResult(d)
        self.assertIn("neither a response nor an event", logs.lines()[-1][1])


class OldRuleEdgeTests(SynchronousTestCase):
    """Timeouts and odd orders under the old-server rules."""

    def test_list_timeout_swallows_late_items(self) -> None:
        """A table list that times out errbacks once; its late items never reach handlers."""
        protocol, clock, seen, _ = connect(b"Asterisk Call Manager/1.0\r\n")
        d = protocol.send_action("Status", ActionID="s", action_timeout=5)
        clock.advance(5)
        self.failureResultOf(d, ActionTimeout)
        protocol.dataReceived(
            b"Response: Success\r\nActionID: s\r\nMessage: Channel status will follow\r\n\r\n"
            b"Event: Status\r\nChannel: SIP/1\r\nActionID: s\r\n\r\n"
            b"Event: StatusComplete\r\nActionID: s\r\n\r\n"
            b"Event: Hangup\r\nChannel: SIP/1\r\n\r\n"
        )
        self.assertEqual([e.name for e in seen], ["Hangup"])
        self.assertEqual(protocol._pending, {})

    def test_timeout_mid_old_list(self) -> None:
        """An old list timing out mid-way drains up to its completion event."""
        protocol, clock, seen, _ = connect(b"Asterisk Call Manager/1.1\r\n")
        d = protocol.send_action("QueueStatus", ActionID="q", action_timeout=5)
        protocol.dataReceived(
            b"Response: Success\r\nActionID: q\r\nMessage: Queue status will follow\r\n\r\n"
            b"Event: QueueParams\r\nQueue: a\r\nActionID: q\r\n\r\n"
        )
        clock.advance(5)
        self.failureResultOf(d, ActionTimeout)
        protocol.dataReceived(
            b"Event: QueueMember\r\nQueue: a\r\nActionID: q\r\n\r\n"
            b"Event: QueueStatusComplete\r\nActionID: q\r\n\r\n"
            b"Event: Newchannel\r\n\r\n"
        )
        self.assertEqual([e.name for e in seen], ["Newchannel"])
        self.assertEqual(protocol._pending, {})

    def test_untagged_after_timeout(self) -> None:
        """An untagged answer to an action that timed out is swallowed, not given to the next."""
        protocol, clock, *_ = connect(b"Asterisk Call Manager/1.1\r\n")
        first = protocol.ping()
        clock.advance(30)
        self.failureResultOf(first, ActionTimeout)
        second = protocol.ping()
        protocol.dataReceived(b"Response: Success\r\nPing: Pong\r\n\r\n")
        self.assertNoResult(second)
        protocol.dataReceived(b"Response: Success\r\nPing: Pong\r\n\r\n")
        self.assertEqual(self.successResultOf(second)["Ping"], "Pong")

    def test_untagged_skips_raw_and_answered(self) -> None:
        """The oldest waiting action is the first with no response yet, never a Queues text."""
        protocol, *_ = connect(b"Asterisk Call Manager/1.1\r\n")
        status = protocol.send_action("Status", ActionID="s")
        protocol.dataReceived(b"Response: Success\r\nActionID: s\r\n\r\n")
        queues = protocol.queues()
        protocol.dataReceived(b"Response: Success\r\nPing: Pong\r\n\r\n")
        self.assertEqual(self.successResultOf(queues), [])
        self.assertNoResult(status)

    def test_closing_ping_error_ends_list(self) -> None:
        """An error answering the closing Ping still proves the list complete."""
        protocol, *_ = connect(b"Asterisk Call Manager/1.0\r\n")
        sent = protocol.transport
        d = protocol.db_get("f", "k")
        db_id = Message.parse(action_blocks(sent.value())[0])["ActionID"]  # type: ignore[union-attr]
        protocol.dataReceived(
            f"Response: Success\r\nActionID: {db_id}\r\n\r\n"
            f"Event: DBGetResponse\r\nVal: v\r\nActionID: {db_id}\r\n\r\n".encode()
        )
        ping_id = Message.parse(action_blocks(sent.value())[1])["ActionID"]  # type: ignore[union-attr]
        self.assertNoResult(d)
        protocol.dataReceived(f"Response: Error\r\nActionID: {ping_id}\r\n\r\n".encode())
        self.assertEqual(self.successResultOf(d), "v")

    def test_closing_ping_timeout_leaves_list_to_its_own(self) -> None:
        """If the closing Ping times out, the list ends by its own timeout, once."""
        protocol, clock, *_ = connect(b"Asterisk Call Manager/1.0\r\n")
        d = protocol.send_action("DBGet", ActionID="d", action_timeout=40)
        protocol.dataReceived(b"Response: Success\r\nActionID: d\r\n\r\n")
        clock.advance(30)
        self.assertNoResult(d)
        clock.advance(10)
        self.failureResultOf(d, ActionTimeout)

    def test_subclass_line_received_on_unterminated_server(self) -> None:
        """A subclass's own lineReceived still sees every message, each answer cut off alone."""
        lines: list[bytes] = []

        class Recording(AMIProtocol):
            def lineReceived(self, line: bytes) -> None:
                lines.append(line)
                super().lineReceived(line)

        protocol = Recording(Clock())
        protocol.makeConnection(StringTransport())
        d = protocol.events("on")
        protocol.dataReceived(
            b"Asterisk Call Manager/1.1\r\n"
            b"Response: Success\r\nEvents: On\r\nEvent: Newchannel\r\n\r\n"
            b"Response: Success\r\nEvents: Off\r\n"
        )
        self.assertEqual(self.successResultOf(d)["Events"], "On")
        self.assertEqual(
            lines,
            [
                b"Response: Success\r\nEvents: On",
                b"Event: Newchannel",
                b"Response: Success\r\nEvents: Off",
            ],
        )

    def test_connection_lost(self) -> None:
        """Old lists and untagged waits errback ConnectionLost when the connection ends."""
        from txami import ConnectionLost

        protocol, *_ = connect(b"Asterisk Call Manager/1.1\r\n")
        d1 = protocol.send_action("Status", ActionID="s")
        d2 = protocol.events("on")
        protocol.dataReceived(b"Response: Success\r\nActionID: s\r\n\r\n")
        protocol.connectionLost(Failure(Exception("gone")))
        self.failureResultOf(d1, ConnectionLost)
        self.failureResultOf(d2, ConnectionLost)


class VersionTests(SynchronousTestCase):
    """AMIVersion and the version -> rules table."""

    def test_ordering(self) -> None:
        """Versions compare by their numbers; equality stays textual."""
        self.assertLess(AMIVersion("2.7.0"), AMIVersion("2.10.6"))
        self.assertGreater(AMIVersion("10.0.0"), "9.0.0")
        self.assertTrue(AMIVersion("1.1") >= (1, 1, 0))
        self.assertTrue(AMIVersion("1.1") <= "1.1.0")
        self.assertEqual(AMIVersion("9.0.0"), "9.0.0")
        self.assertEqual(AMIVersion("2.8.0-rc1").numbers, (2, 8))
        self.assertEqual(AMIVersion("x").numbers, ())
        self.assertLess(AMIVersion("x"), "0.1")
        self.assertEqual(sorted(map(AMIVersion, ["5.0", "1.0", "13.1"])), ["1.0", "5.0", "13.1"])

    def test_banners(self) -> None:
        """Every banner's version is read and ordered: 1.0, 1.1, 1.3, 2.x, 5.0 ... 9.0.0."""
        for text in ("1.0", "1.1", "1.3", "2.6.0", "2.10.6", "5.0.2", "9.0.0"):
            protocol, *_ = connect(f"Asterisk Call Manager/{text}\r\n".encode())
            assert protocol.ami_version is not None
            self.assertEqual(
                (protocol.ami_version, type(protocol.ami_version)), (text, AMIVersion)
            )
        protocol, *_ = connect(b"Asterisk Call Manager/\r\n")
        self.assertIsNone(protocol.ami_version)

    def test_rules_by_version(self) -> None:
        """Each rule applies exactly from its first version up to its last."""
        expected = {
            "1.0": {"success_words", "loose_blocks", "list_ends", "closing_ping"},
            "1.1": {
                "untagged_answers",
                "unterminated_answers",
                "loose_blocks",
                "list_ends",
                "closing_ping",
            },
            "1.2": {"loose_blocks", "list_ends"},
            "1.3": {"list_ends"},
            "2.6.0": {"list_ends"},
            "2.7.0": set(),
            "9.0.0": set(),
            "": set(),
        }
        for version, fields in expected.items():
            rules = rules_for(version)
            on = {rule.field for rule in RULES if getattr(rules, rule.field)}
            self.assertEqual(on, fields, version)
            self.assertEqual(rules.modern, not fields)
        self.assertEqual(rules_for("1.0").closing_ping, {"dbget"})
        self.assertEqual(rules_for("1.1").closing_ping, {"dbget", "iaxpeers"})

    def test_documented(self) -> None:
        """docs/old-servers.rst gives every rule's versions and releases."""
        from twisted.python.filepath import FilePath

        text = FilePath(__file__).parent().sibling("docs").child("old-servers.rst").getContent()
        for rule in RULES:
            row = f"{rule.since} to < {rule.until}".encode()
            self.assertIn(row, text, rule.field)
            self.assertIn(rule.releases.encode(), text, rule.field)

    def test_iax_text_rows(self) -> None:
        """Only table rows become PeerEntry messages; heading, summary and junk are left out."""
        self.assertEqual(
            iax_peers_from_text(["Name/Username  Host", "", "1 iax2 peers", "x" * 80]), []
        )


class FakeReleaseTests(SynchronousTestCase):
    """FakeAsterisk(release=...) speaks each release's framings, and txami understands them."""

    RELEASES = (
        "1.4",
        "1.6.0",
        "1.6.0.2",
        "1.6.1",
        "1.6.2",
        "1.8.4",
        "11.25.3",
        "13.1.0",
        "13.2.0",
    )

    def run_release(self, release: str) -> tuple[dict[str, object], list[str], AMIProtocol]:
        clock = Clock()
        fake = FakeAsterisk(clock, release=release)
        pbx = fake.pbx
        pbx.db["/cidname/100"] = "Alice"
        pbx.queues.clear()
        pbx.queues["sales"] = Queue("sales", members=[QueueMember("SIP/100")])
        pbx.iax_peers[:] = [IAXPeer("hq", host="10.0.0.1")]
        for name in list(pbx.channels):
            del pbx.channels[name]
        pbx.create_channel("SIP/100-1")
        client, _, pump = connected_pair(fake, clock)
        seen: list[str] = []
        client.add_event_handler("*", lambda e: seen.append(e.name or ""))
        pump.flush()
        del seen[:]
        calls: dict[str, Deferred[Any]] = {
            "ping": client.ping(),
            "on": client.events("on"),
            "status": client.status(),
            "queuestatus": client.queue_status(),
            "summary": client.queue_summary(),
            "db": client.db_get("cidname", "100"),
            "iax": client.iax_peers(),
            "queues": client.queues(),
            "unknown": client.command("foo bar"),
            "vm": client.send_action("VoicemailUsersList"),
        }
        results: dict[str, object] = {}
        for key, d in calls.items():
            d.addBoth(lambda r, key=key: results.__setitem__(key, r))
        pump.flush()
        return results, seen, client

    def test_releases(self) -> None:
        """Every helper fires once with the release's data; no list item reaches a handler."""
        for release in self.RELEASES:
            results, seen, client = self.run_release(release)
            self.assertEqual(len(results), 10, release)
            for key in ("ping", "on", "vm"):
                self.assertIsInstance(results[key], Message, (release, key))
            self.assertEqual([m["Channel"] for m in results["status"]], ["SIP/100-1"], release)  # type: ignore[attr-defined]
            self.assertEqual(len(results["queuestatus"]), 2, release)  # type: ignore[arg-type]
            self.assertEqual(len(results["summary"]), 1, release)  # type: ignore[arg-type]
            self.assertEqual(results["db"], "Alice", release)
            self.assertEqual([m["ObjectName"] for m in results["iax"]], ["hq"], release)  # type: ignore[attr-defined]
            queues = results["queues"]
            self.assertIsInstance(queues, list, release)
            self.assertTrue(queues[0].startswith("sales"), release)  # type: ignore[index]
            unknown = results["unknown"]
            assert isinstance(unknown, Failure)
            self.assertIs(unknown.type, AMIError, release)
            self.assertFalse(
                {"Status", "QueueParams", "PeerEntry", "DBGetResponse", "StatusComplete"}
                & set(seen),
                (release, seen),
            )
            self.assertEqual(client._pending, {}, release)

    def test_banner(self) -> None:
        """A release sets the banner's AMI version; ami_version= still wins."""
        clock = Clock()
        self.assertEqual(FakeAsterisk(clock, release="1.4").ami_version, "1.0")
        self.assertEqual(FakeAsterisk(clock, release="1.8.4").ami_version, "1.1")
        self.assertEqual(FakeAsterisk(clock, release="13.1.0").ami_version, "2.6.0")
        self.assertEqual(FakeAsterisk(clock, release="16.2").ami_version, "5.0.0")
        self.assertEqual(FakeAsterisk(clock, release="1.8", ami_version="1.9").ami_version, "1.9")
        self.assertEqual(FakeAsterisk(clock, release="13.1.0").command_framing, "follows")
        self.assertEqual(FakeAsterisk(clock, release="14.0.0").command_framing, "modern")
        with self.assertRaises(ValueError):
            FakeAsterisk(clock, release="one")


class RealServerRulesTests(TestCase):
    """The real Asterisk 20 of this run gets none of the old-server rules."""

    skip = SKIP
    timeout = 30

    async def test_modern_rules(self) -> None:
        """Its banner is an AMIVersion of 9.x, no rule is on, and a list and a Ping work."""
        ami = await connect_user(reactor)
        self.addCleanup(ami.stop)
        protocol = await ami.when_ready()
        version = protocol.ami_version
        assert version is not None
        self.assertIsInstance(version, AMIVersion)
        self.assertTrue(version >= "9" and version > "2.7.0", version)
        self.assertIs(protocol._rules, MODERN)
        self.assertNotIn("lineReceived", vars(protocol))
        channels = await ami.core_show_channels()
        self.assertIsInstance(channels, list)
        self.assertEqual((await ami.ping())["Ping"], "Pong")
