"""
txami.testing's FakeAsterisk: sessions, permissions, events, scripted actions and faults,
driven through a real txami client in memory (`connected_pair`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

import txami.testing
from txami import AMIError, AMIProtocol, AuthenticationError, ConnectionLost, Message
from txami.errors import ActionTimeout, OriginateError
from txami.testing import FakeAsterisk, FakeSession, connected_pair, response
from txami.testing import permissions as perm
from txami.testing.actions import BUILTIN

DATA = Path(__file__).parent / "data"


class Harness(SynchronousTestCase):
    """A fake on a Clock, and helpers to connect clients to it."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.fake = FakeAsterisk(self.clock)
        self.addCleanup(self.fake.stop)

    def connect(
        self, username: str | None = "admin", secret: str = "adminsecret", **kw: str
    ) -> tuple[AMIProtocol, FakeSession, Any, list[Message]]:
        """A logged-in client, its session, the pump, and the events the client gets."""
        events: list[Message] = []
        client = AMIProtocol(self.clock)
        client.add_event_handler("*", events.append)
        _, session, pump = connected_pair(
            self.fake, self.clock, username=username, secret=secret, protocol=client, **kw
        )
        return client, session, pump, events

    def raw_session(self) -> tuple[FakeSession, StringTransport]:
        """A session on a StringTransport, for byte-exact checks."""
        session = self.fake.buildProtocol(None)
        transport = StringTransport()
        session.makeConnection(transport)
        transport.clear()
        return session, transport


class ExportTests(SynchronousTestCase):
    """The public names of txami.testing."""

    def test_all_names_exist(self) -> None:
        """Every name in txami.testing.__all__ exists, and the contract's names are there."""
        for name in txami.testing.__all__:
            self.assertTrue(hasattr(txami.testing, name), name)
        contract = {"FakeAsterisk", "FakeSession", "connected_pair", "listen", "replay"}
        self.assertLessEqual(contract, set(txami.testing.__all__))


class LoginTests(Harness):
    """Logging in, as the capture server's users."""

    def test_connected_pair_logs_in(self) -> None:
        """connected_pair returns a logged-in client and its session, banner read."""
        client, session, _, _ = self.connect()
        self.assertTrue(client.logged_in)
        self.assertEqual(client.ami_version, "9.0.0")
        self.assertEqual((session.username, session.logged_in), ("admin", True))
        self.assertEqual(self.fake.sessions, [session])

    def test_banner_follows_ami_version(self) -> None:
        """The banner carries the ami_version given to the factory."""
        fake = FakeAsterisk(self.clock, ami_version="2.10.4")
        client, _, _ = connected_pair(fake, self.clock, username=None)
        self.assertEqual(client.banner, "Asterisk Call Manager/2.10.4")

    def test_md5_login(self) -> None:
        """An MD5 challenge login with the right secret succeeds; the secret is never sent."""
        client, _session, pump, _ = self.connect(username=None)
        d = client.login("admin", "adminsecret", auth="md5")
        pump.flush()
        self.assertEqual(self.successResultOf(d)["Message"], "Authentication accepted")
        sent = [m for _, m in self.fake.actions_received]
        self.assertEqual([m.name for m in sent], ["Challenge", "Login"])
        self.assertNotIn("Secret", sent[1])

    def test_wrong_secret_is_refused_late_and_closes(self) -> None:
        """A wrong secret fails with AuthenticationError after 1 s and the server closes."""
        client, _session, pump, _ = self.connect(username=None)
        d = client.login("admin", "wrong")
        pump.flush()
        self.assertNoResult(d)
        self.clock.advance(1)
        pump.flush()
        error = self.failureResultOf(d, AuthenticationError).value
        self.assertEqual(error.message, "Authentication failed")
        self.assertEqual(self.fake.sessions, [])
        self.assertFalse(client.connected_and_open)

    def test_connected_pair_raises_a_refusal(self) -> None:
        """connected_pair raises the AuthenticationError of a refused login."""
        self.fake.auth_failure_delay = 0
        self.assertRaises(
            AuthenticationError, connected_pair, self.fake, self.clock, "nosuchuser", "x"
        )

    def test_connected_pair_without_answer(self) -> None:
        """connected_pair raises RuntimeError when the Login gets no answer."""
        self.fake.delay_action("Login", None)
        self.assertRaises(RuntimeError, connected_pair, self.fake, self.clock)

    def test_users_are_case_insensitive(self) -> None:
        """Asterisk finds users without regard to case."""
        _, session, _, _ = self.connect(username="ADMIN")
        self.assertEqual(session.username, "admin")

    def test_add_user(self) -> None:
        """add_user adds a user with its read and write classes."""
        self.fake.add_user("ops", "opssecret", read="user", write="")
        client, session, pump, _events = self.connect("ops", "opssecret")
        self.assertEqual((session.read_mask, session.write_mask), (perm.USER, 0))
        d = client.ping()
        pump.flush()
        self.assertEqual(self.successResultOf(d)["Ping"], "Pong")
        d = client.status()
        pump.flush()
        self.assertEqual(self.failureResultOf(d, AMIError).value.message, "Permission denied")

    def test_second_login_is_acknowledged(self) -> None:
        """A Login on a logged-in session answers 'Already authenticated'."""
        client, _, pump, _ = self.connect()
        d = client.send_action("Login", Username="reader", Secret="readersecret")
        pump.flush()
        self.assertEqual(self.successResultOf(d)["Message"], "Already authenticated")

    def test_login_events_off(self) -> None:
        """Events: off at login gives a zero event mask and no FullyBooted."""
        _, session, _, events = self.connect(events="off")
        self.assertEqual(session.event_mask, 0)
        self.assertEqual(self.fake.emit_event("UserEvent", UserEvent="x"), 0)
        self.assertEqual(events, [])

    def test_auth_timeout_closes_idle_connection(self) -> None:
        """A connection that never logs in is closed after auth_timeout seconds."""
        client, _, pump, _ = self.connect(username=None)
        self.clock.advance(29.9)
        pump.flush()
        self.assertTrue(client.connected_and_open)
        self.clock.advance(0.1)
        pump.flush()
        self.assertFalse(client.connected_and_open)
        self.assertEqual(self.fake.sessions, [])


class PermissionTests(Harness):
    """Read and write classes."""

    def test_listcommands_lines_match_the_real_server(self) -> None:
        """Every ListCommands line of the fake equals the capture server's line for it."""
        _, real = (DATA / "listcommands.raw").read_bytes().split(b"listcommands-02\r\n", 1)
        real_lines = set(real.split(b"\r\n\r\n")[0].decode().split("\r\n"))
        client, _, pump, _ = self.connect()
        d = client.send_action("ListCommands")
        pump.flush()
        mine = [
            f"{k}: {v}" for k, v in self.successResultOf(d) if k not in ("Response", "ActionID")
        ]
        self.assertEqual(len(mine), len(BUILTIN))
        self.assertLessEqual(set(mine), real_lines)

    def test_listcommands_lists_what_the_user_may_run(self) -> None:
        """reader (no write classes) sees only the actions that need no class."""
        client, _, pump, _ = self.connect("reader", "readersecret")
        d = client.send_action("ListCommands")
        pump.flush()
        names = [k for k, _ in self.successResultOf(d)][2:]
        self.assertEqual(
            names,
            [
                "BridgeInfo",
                "BridgeList",
                "Challenge",
                "Events",
                "ListCommands",
                "Login",
                "Logoff",
                "Ping",
                "QueueStatus",
                "QueueSummary",
            ],
        )

    def test_read_classes_filter_events(self) -> None:
        """caller (read=call) gets call events but neither user nor system ones."""
        _, _, pump, events = self.connect("caller", "callersecret")
        self.assertEqual(self.fake.emit_event("Newchannel", Channel="X/1"), 1)
        self.assertEqual(self.fake.emit_event("UserEvent", UserEvent="u"), 0)
        self.assertEqual(self.fake.emit_event("Reload", Module="x"), 0)
        pump.flush()
        self.assertEqual([e.name for e in events], ["Newchannel"])

    def test_originate_system_needs_system_class(self) -> None:
        """caller may not Originate the System application; admin may."""
        client, _, pump, _ = self.connect("caller", "callersecret")
        d = client.originate("Local/1002@txami-test", application="System", data="id")
        pump.flush()
        self.assertEqual(
            self.failureResultOf(d, AMIError).value.message,
            "Originate Access Forbidden: app or data blacklisted",
        )

    def test_permission_denied_raises_request_not_allowed(self) -> None:
        """A refused action raises RequestNotAllowed, seen by an admin session."""
        _, _, admin_pump, admin_events = self.connect()
        reader, _, pump, _ = self.connect("reader", "readersecret")
        d = reader.command("core show version")
        pump.flush()
        admin_pump.flush()
        self.assertEqual(self.failureResultOf(d, AMIError).value.message, "Permission denied")
        denied = [e for e in admin_events if e.name == "RequestNotAllowed"]
        self.assertEqual(len(denied), 1)
        self.assertEqual(
            (denied[0]["AccountID"], denied[0]["RequestType"]), ("reader", "Action: Command")
        )


class EventTests(Harness):
    """emit_event, event masks and filters."""

    def test_emit_event_adds_privilege_from_table(self) -> None:
        """emit_event adds Privilege from Asterisk's event classes, after the Event line."""
        _, _, pump, events = self.connect()
        del events[:]
        self.assertEqual(self.fake.emit_event("Newexten", Channel="SIP/1-1"), 1)
        self.assertEqual(self.fake.emit_event("MyEvent", Foo="bar"), 1)
        pump.flush()
        self.assertEqual(
            [list(e) for e in events],
            [
                [("Event", "Newexten"), ("Privilege", "dialplan,all"), ("Channel", "SIP/1-1")],
                [("Event", "MyEvent"), ("Privilege", "call,all"), ("Foo", "bar")],
            ],
        )

    def test_emit_event_privilege_header_sets_class(self) -> None:
        """A Privilege header given to emit_event decides who gets it and is kept as given."""
        _, _, pump, events = self.connect("caller", "callersecret")
        self.assertEqual(self.fake.emit_event("X", Privilege="system,all"), 0)
        self.assertEqual(self.fake.emit_event("Y", Privilege="call,all", A="1"), 1)
        pump.flush()
        self.assertEqual(
            [list(e) for e in events],
            [[("Event", "Y"), ("Privilege", "call,all"), ("A", "1")]],
        )

    def test_emit_event_pairs_for_odd_names(self) -> None:
        """Headers that are not identifiers go in as pairs, in order, repeats kept."""
        _, _, pump, events = self.connect()
        del events[:]
        self.fake.emit_event("Hangup", [("Cause-txt", "Normal Clearing"), ("V", "1"), ("V", "2")])
        self.fake.emit_event("Hangup", {"Cause-txt": "Unknown"}, Channel="SIP/1")
        pump.flush()
        self.assertEqual(events[0].getall("V"), ["1", "2"])
        self.assertEqual(events[0]["Cause-txt"], "Normal Clearing")
        self.assertEqual(
            list(events[1]),
            [
                ("Event", "Hangup"),
                ("Privilege", "call,all"),
                ("Cause-txt", "Unknown"),
                ("Channel", "SIP/1"),
            ],
        )

    def test_emit_event_refuses_injection(self) -> None:
        """A header value with CR or LF raises ValueError and nothing is sent."""
        _, _, pump, events = self.connect()
        del events[:]
        self.assertRaises(ValueError, self.fake.emit_event, "X", Foo="a\r\nEvent: Evil")
        pump.flush()
        self.assertEqual(events, [])

    def test_events_action_changes_mask(self) -> None:
        """Events: off stops events, a class list lets only those classes through."""
        client, session, pump, events = self.connect()
        del events[:]
        d = client.events("off")
        pump.flush()
        self.assertEqual(self.successResultOf(d)["Events"], "Off")
        self.assertEqual(self.fake.emit_event("Newchannel"), 0)
        d = client.events("user")
        pump.flush()
        self.assertEqual(self.successResultOf(d)["Events"], "On")
        self.assertEqual(session.event_mask, perm.USER)
        self.assertEqual(self.fake.emit_event("Newchannel"), 0)
        self.assertEqual(self.fake.emit_event("UserEvent", UserEvent="u"), 1)

    def test_filters(self) -> None:
        """A whitelist regex passes matching events; a blacklist drops matching ones."""
        client, session, pump, events = self.connect()
        del events[:]
        client.filter("Event: UserEvent")
        client.filter("!UserEvent: Blocked")
        pump.flush()
        self.assertEqual(len(session.white_filters), 1)
        self.assertEqual(self.fake.emit_event("Newchannel"), 0)
        self.assertEqual(self.fake.emit_event("UserEvent", UserEvent="Blocked"), 0)
        self.assertEqual(self.fake.emit_event("UserEvent", UserEvent="Open"), 1)

    def test_user_event_action_reaches_everyone(self) -> None:
        """UserEvent copies the action's headers, in order, to every listening session."""
        client, _, pump, events = self.connect()
        _, _, other_pump, other_events = self.connect("reader", "readersecret")
        d = client.user_event("Ping", [("A", "1"), ("A", "2")])
        pump.flush()
        other_pump.flush()
        self.assertEqual(self.successResultOf(d)["Message"], "Event Sent")
        [event] = [e for e in events if e.name == "UserEvent"]
        self.assertEqual(
            list(event)[2:],
            [("UserEvent", "Ping"), ("ActionID", d_id(self.fake)), ("A", "1"), ("A", "2")],
        )
        self.assertEqual([e.name for e in other_events], ["FullyBooted"], "no user class")

    def test_events_during_an_action_follow_its_response(self) -> None:
        """Events raised while an action is handled reach its session after the response."""
        client, _session, pump, _events = self.connect()
        seen: list[str] = []
        client.add_event_handler("UserEvent", lambda e: seen.append("event"))

        def handler(session: FakeSession, action: Message) -> Message:
            self.fake.emit_event("UserEvent", UserEvent="during")
            return response(action, "Done")

        self.fake.add_action("Work", handler)
        client.send_action("Work").addCallback(lambda r: seen.append("response"))
        pump.flush()
        self.assertEqual(seen, ["response", "event"])


class ScriptedActionTests(Harness):
    """add_action: handlers returning messages, lists, Deferreds or nothing."""

    def test_message(self) -> None:
        """A handler's Message is the response; the action is passed as a Message."""
        got: list[Message] = []

        def handler(session: FakeSession, action: Message) -> Message:
            got.append(action)
            return response(action, "Fine", headers=[("Answer", action["Question"])])

        self.fake.add_action("Ask", handler)
        client, _, pump, _ = self.connect()
        d = client.send_action("Ask", Question="42")
        pump.flush()
        result = self.successResultOf(d)
        self.assertEqual((result["Message"], result["Answer"]), ("Fine", "42"))
        self.assertEqual(got[0]["Question"], "42")

    def test_list(self) -> None:
        """A list is the response followed by its items: a list action for the client."""

        def handler(session: FakeSession, action: Message) -> list[Message]:
            aid = action["ActionID"]
            return [
                response(action, "Items will follow", headers=[("EventList", "start")]),
                Message([("Event", "Item"), ("ActionID", aid), ("N", "1")]),
                Message(
                    [("Event", "ItemsComplete"), ("ActionID", aid), ("EventList", "Complete")]
                ),
            ]

        self.fake.add_action("Items", handler)
        client, _, pump, _ = self.connect()
        d = client.send_action("Items")
        pump.flush()
        self.assertEqual([e["N"] for e in self.successResultOf(d).events], ["1"])

    def test_deferred(self) -> None:
        """A Deferred answer is written when it fires."""
        later: Deferred[Message] = Deferred()
        self.fake.add_action("Slow", lambda s, a: later)
        client, _, pump, _ = self.connect()
        d = client.send_action("Slow")
        pump.flush()
        self.assertNoResult(d)
        later.callback(Message([("Response", "Success"), ("ActionID", d_id(self.fake))]))
        pump.flush()
        self.assertEqual(self.successResultOf(d)["Response"], "Success")

    def test_deferred_holds_up_the_session(self) -> None:
        """While a Deferred answer is pending, later actions wait and events are held."""
        later: Deferred[Message] = Deferred()
        self.fake.add_action("Slow", lambda s, a: later)
        client, _, pump, events = self.connect()
        del events[:]
        slow = client.send_action("Slow")
        ping = client.ping()
        pump.flush()
        self.fake.emit_event("UserEvent", UserEvent="Meanwhile")
        pump.flush()
        self.assertNoResult(ping)
        self.assertEqual(events, [])
        later.callback(Message([("Response", "Success"), ("ActionID", d_id(self.fake))]))
        pump.flush()
        self.assertEqual(self.successResultOf(slow)["Response"], "Success")
        self.assertEqual(self.successResultOf(ping)["Ping"], "Pong")
        self.assertEqual([e["UserEvent"] for e in events], ["Meanwhile"])

    def test_none_never_answers(self) -> None:
        """A handler returning None answers nothing: the client times out."""
        self.fake.add_action("Silent", lambda s, a: None)
        client, _, pump, _ = self.connect()
        d = client.send_action("Silent", action_timeout=5)
        pump.flush()
        self.clock.advance(5)
        self.failureResultOf(d, ActionTimeout)

    def test_override_builtin_and_privilege(self) -> None:
        """add_action replaces a built-in; privilege makes it need a write class."""
        self.fake.add_action(
            "Ping", lambda s, a: response(a, headers=[("Ping", "Scripted")]), privilege="system"
        )
        admin, _, pump, _ = self.connect()
        reader, _, reader_pump, _ = self.connect("reader", "readersecret")
        d = admin.ping()
        pump.flush()
        self.assertEqual(self.successResultOf(d)["Ping"], "Scripted")
        d = reader.ping()
        reader_pump.flush()
        self.assertEqual(self.failureResultOf(d, AMIError).value.message, "Permission denied")

    def test_handler_error_is_logged_not_raised(self) -> None:
        """A handler that raises is logged; the session carries on answering."""

        def broken(session: FakeSession, action: Message) -> Message:
            raise RuntimeError("boom")

        self.fake.add_action("Broken", broken)
        client, _, pump, _ = self.connect()
        client.send_action("Broken")
        pump.flush()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        d = client.ping()
        pump.flush()
        self.assertEqual(self.successResultOf(d)["Ping"], "Pong")

    def test_unsafe_scripted_answer_is_logged(self) -> None:
        """A scripted answer holding CR/LF is not sent; the error is logged."""
        self.fake.add_action(
            "Bad", lambda s, a: Message([("Response", "Success"), ("X", "a\r\nb")])
        )
        client, _, pump, _ = self.connect()
        d = client.send_action("Bad", action_timeout=1)
        pump.flush()
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.clock.advance(1)
        self.failureResultOf(d, ActionTimeout)

    def test_actions_received(self) -> None:
        """actions_received lists every action with its session, in order."""
        client, session, pump, _ = self.connect()
        client.ping()
        nope = client.send_action("Nope")
        pump.flush()
        self.failureResultOf(nope, AMIError)
        self.assertEqual(
            [(s, m.name) for s, m in self.fake.actions_received],
            [(session, "Login"), (session, "Ping"), (session, "Nope")],
        )


def d_id(fake: FakeAsterisk) -> str:
    """The ActionID of the last action the fake received."""
    return fake.actions_received[-1][1]["ActionID"]


class FaultTests(Harness):
    """drop_all, stall/resume, delay_action, send_raw and abrupt disconnects."""

    def test_drop_all(self) -> None:
        """drop_all aborts every connection: pending actions fail with ConnectionLost."""
        client, _, pump, _ = self.connect()
        self.fake.delay_action("Ping", None)
        d = client.ping()
        pump.flush()
        self.fake.drop_all()
        pump.flush()
        self.failureResultOf(d, ConnectionLost)
        self.assertEqual(self.fake.sessions, [])

    def test_stall_and_resume(self) -> None:
        """A stalled server answers nothing and sends no events; resume catches up in order."""
        client, _, pump, events = self.connect()
        del events[:]
        self.fake.stall()
        d = client.ping()
        self.fake.emit_event("UserEvent", UserEvent="held")
        pump.flush()
        self.assertNoResult(d)
        self.assertEqual(events, [])
        order: list[str] = []
        d.addCallback(lambda r: order.append("pong"))
        client.add_event_handler("UserEvent", lambda e: order.append("event"))
        self.fake.resume()
        pump.flush()
        self.assertEqual(order, ["event", "pong"])

    def test_delay_action(self) -> None:
        """A delayed action is answered late; other actions are answered meanwhile."""
        client, _, pump, _ = self.connect()
        self.fake.delay_action("Ping", 5)
        slow = client.ping()
        fast = client.get_var("TXAMI_GLOBAL")
        pump.flush()
        self.assertEqual(self.successResultOf(fast), "hello")
        self.assertNoResult(slow)
        self.clock.advance(5)
        pump.flush()
        self.assertEqual(self.successResultOf(slow)["Ping"], "Pong")

    def test_delay_never_and_undo(self) -> None:
        """delay_action(name, None) never answers; popping the delay restores answers."""
        client, _, pump, _ = self.connect()
        self.fake.delay_action("ping", None)
        d = client.send_action("Ping", action_timeout=2)
        pump.flush()
        self.clock.advance(2)
        self.failureResultOf(d, ActionTimeout)
        self.fake.delays.pop("ping")
        d = client.ping()
        pump.flush()
        self.assertEqual(self.successResultOf(d)["Ping"], "Pong")

    def test_restart(self) -> None:
        """restart() drops the clients and starts a fresh PBX: no calls, uptime 0."""
        client, _, pump, _ = self.connect()
        self.fake.pbx.incoming_call("1000")
        self.clock.advance(30)
        self.fake.restart()
        pump.flush()
        self.successResultOf(client.when_disconnected())
        self.assertEqual((self.fake.pbx.channels, self.fake.pbx.uptime), ({}, 0))
        client, _, pump, events = self.connect()
        self.assertEqual(events[0]["Uptime"], "0")
        self.assertEqual(self.fake.pbx.incoming_call("1000").name, "PJSIP/phone-00000000")

    def test_restart_keeps_demo_traffic(self) -> None:
        """Demo traffic started before restart() goes on, into the fresh PBX."""
        self.fake.start_demo_traffic(interval=1)
        self.clock.advance(1)
        self.assertEqual(self.fake.pbx.calls_processed, 1)
        self.fake.restart()
        self.assertEqual(self.fake.pbx.calls_processed, 0)
        self.clock.advance(1)
        self.assertEqual(self.fake.pbx.calls_processed, 1)
        self.fake.stop()
        self.assertEqual([c for c in self.clock.getDelayedCalls() if c.active()], [])

    def test_restart_booting(self) -> None:
        """restart(boot_seconds) boots as Asterisk 20 does: core actions only, then FullyBooted."""
        self.clock.advance(100)
        self.fake.restart(boot_seconds=2)
        client, _, pump, events = self.connect()
        self.assertEqual([e for e in events if e.name == "FullyBooted"], [])
        queues = client.send_action("QueueStatus")
        hints = client.send_action("ExtensionStateList")
        status = client.send_action("CoreStatus")
        pump.flush()
        self.assertEqual(
            self.failureResultOf(queues, AMIError).value.response["Message"],
            "Invalid/unknown command: QueueStatus. Use Action: ListCommands to show available "
            "commands.",
        )
        self.assertEqual(self.successResultOf(hints).events, [])
        self.assertEqual(self.successResultOf(status)["Response"], "Success")
        self.clock.advance(2)
        pump.flush()
        (booted,) = [e for e in events if e.name == "FullyBooted"]
        self.assertEqual(
            booted.pairs(),
            [
                ("Event", "FullyBooted"),
                ("Privilege", "system,all"),
                ("Status", "Fully Booted"),
                ("Uptime", "2"),
                ("LastReload", "2"),
            ],
        )
        queues = client.send_action("QueueStatus")
        hints = client.send_action("ExtensionStateList")
        pump.flush()
        self.assertEqual(self.successResultOf(queues)["Response"], "Success")
        self.assertEqual(len(self.successResultOf(hints).events), len(self.fake.pbx.hints))
        self.assertNotEqual(self.fake.pbx.hints, {})
        self.assertEqual(self.connect()[3][0].name, "FullyBooted")

    def test_booting_list_commands(self) -> None:
        """ListCommands while booting names just the actions Asterisk 20 had then."""
        answered = {e.name.lower() for e in self.fake.actions()}
        self.fake.restart(boot_seconds=1)
        client, _, pump, _ = self.connect()
        listed = client.send_action("ListCommands")
        pump.flush()
        names = {name.lower() for name, _ in self.successResultOf(listed).pairs()}
        names -= {"response", "actionid"}
        self.assertEqual(names, answered & txami.testing.BOOTING_ACTIONS)
        self.assertEqual(({"corestatus", "queuestatus"} & names), {"corestatus"})

    def test_send_raw_split(self) -> None:
        """send_raw writes pieces cut at the offsets; the client gets them one by one."""
        client, _, pump, events = self.connect()
        del events[:]
        received: list[bytes] = []
        original = client.dataReceived

        def record(data: bytes) -> None:
            received.append(data)
            original(data)

        client.dataReceived = record  # type: ignore[method-assign]
        data = b"Event: Split\r\nA: 1\r\n\r\n"
        self.assertEqual(self.fake.send_raw(data, split_at=[3, 15]), 1)
        pump.flush()
        self.assertEqual(received, [data[:3], data[3:15], data[15:]])
        self.assertEqual([e.name for e in events], ["Split"])

    def test_send_raw_garbage(self) -> None:
        """Garbage from the server does not break the client's later actions."""
        client, _, pump, _ = self.connect()
        self.fake.send_raw(b"\x00\xff garbage without colon\r\n\r\n")
        pump.flush()
        d = client.ping()
        pump.flush()
        self.assertEqual(self.successResultOf(d)["Ping"], "Pong")

    def test_abrupt_disconnect_during_calls(self) -> None:
        """A session lost mid-action and mid-call raises nothing; events still flow elsewhere."""
        client, session, pump, _ = self.connect()
        _, _, other_pump, other_events = self.connect()
        self.fake.delay_action("Ping", 1)
        client.ping()
        client.originate("Local/1000@txami-test", exten="1000", context="txami-test", priority=1)
        pump.flush()
        session.connectionLost(Failure(ConnectionDone()))
        self.clock.advance(1)
        self.assertEqual(
            list(self.fake.pbx.channels),
            ["Local/1000@txami-test-00000000;1", "Local/1000@txami-test-00000000;2"],
        )
        self.fake.pbx.hangup_all()
        other_pump.flush()
        self.assertEqual(
            [e["Channel"] for e in other_events if e.name == "Hangup"],
            ["Local/1000@txami-test-00000000;1", "Local/1000@txami-test-00000000;2"],
        )
        self.assertEqual(self.fake.sessions, [self.fake.sessions[0]])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_logoff_closes(self) -> None:
        """Logoff answers Goodbye and the server closes the connection."""
        client, _, pump, _ = self.connect()
        d = client.logoff()
        pump.flush()
        self.assertEqual(self.successResultOf(d)["Message"], "Thanks for all the fish.")
        self.assertEqual(self.fake.sessions, [])
        self.successResultOf(client.when_disconnected())

    def test_stop_cancels_every_timer(self) -> None:
        """stop() cancels calls in progress, late answers, login pauses and demo traffic."""
        client, _, pump, _ = self.connect()
        self.fake.delay_action("Ping", 10)
        ping = client.ping()
        client.originate("Local/1000@txami-test", exten="1000", context="txami-test", priority=1)
        self.fake.start_demo_traffic(interval=1)
        other, _, other_pump, _ = self.connect(username=None)
        login = other.login("admin", "wrong")
        pump.flush()
        other_pump.flush()
        self.assertNotEqual(self.clock.getDelayedCalls(), [])
        self.fake.stop()
        client.transport.loseConnection()  # type: ignore[union-attr]
        other.transport.loseConnection()  # type: ignore[union-attr]
        pump.flush()
        other_pump.flush()
        self.assertEqual([c for c in self.clock.getDelayedCalls() if c.active()], [])
        self.failureResultOf(ping, ConnectionLost)
        self.failureResultOf(login, ConnectionLost)


class RawSessionTests(Harness):
    """Byte-exact answers on a StringTransport."""

    def test_command_follows_framing(self) -> None:
        """command_framing='follows' answers as Asterisk before 14 did."""
        fake = FakeAsterisk(self.clock, command_framing="follows")
        session = fake.buildProtocol(None)
        transport = StringTransport()
        session.makeConnection(transport)
        session.dataReceived(
            b"Action: Login\r\nUsername: admin\r\nSecret: adminsecret\r\nEvents: off\r\n\r\n"
        )
        transport.clear()
        session.dataReceived(
            b"Action: Command\r\nActionID: c1\r\nCommand: core show uptime seconds\r\n\r\n"
        )
        self.assertEqual(
            transport.value(),
            b"Response: Follows\r\nPrivilege: Command\r\nActionID: c1\r\n"
            b"System uptime: 0\nLast reload: 0\n--END COMMAND--\r\n\r\n",
        )

    def test_follows_framing_parsed_by_client(self) -> None:
        """txami's client reads the follows framing into the same output lines."""
        fake = FakeAsterisk(self.clock, command_framing="follows")
        client, _, pump = connected_pair(fake, self.clock)
        d = client.command("core show uptime seconds")
        pump.flush()
        self.assertEqual(self.successResultOf(d), ["System uptime: 0", "Last reload: 0"])

    def test_command_framing_is_checked(self) -> None:
        """An unknown command_framing is refused at once."""
        self.assertRaises(ValueError, FakeAsterisk, self.clock, command_framing="old")

    def test_iaxnetstats_lone_crlf(self) -> None:
        """IAXnetstats answers a lone CRLF and nothing else, as chan_iax2 does."""
        session, transport = self.raw_session()
        session.dataReceived(b"Action: Login\r\nUsername: admin\r\nSecret: adminsecret\r\n")
        session.dataReceived(b"Events: off\r\n\r\n")
        transport.clear()
        session.dataReceived(b"Action: IAXnetstats\r\nActionID: n\r\n\r\n")
        self.assertEqual(transport.value(), b"\r\n")

    def test_garbage_never_raises(self) -> None:
        """Random bytes into a session raise nothing and leave it answering."""
        import random

        rng = random.Random(7)
        session, transport = self.raw_session()
        for _ in range(200):
            session.dataReceived(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
        session.dataReceived(b"\r\n\r\nAction: Ping\r\nActionID: alive\r\n\r\n")
        self.assertIn(b"ActionID: alive\r\nMessage: Permission denied\r\n", transport.value())

    def test_line_too_long_answer(self) -> None:
        """A header line over 1024 bytes earns 'Failed to parse message: line too long'."""
        session, transport = self.raw_session()
        session.dataReceived(b"Action: Ping\r\nX: " + b"A" * 1500 + b"\r\n\r\n")
        self.assertEqual(
            transport.value(),
            b"Response: Error\r\nMessage: Failed to parse message: line too long\r\n\r\n",
        )

    def test_security_event_addresses(self) -> None:
        """Security events print the addresses as Asterisk does (IPV4/TCP/host/port)."""
        _, _, _pump, events = self.connect()
        [auth] = [e for e in events if e.name == "SuccessfulAuth"]
        self.assertEqual(auth["LocalAddress"], "IPV4/TCP/127.0.0.1/5038")
        self.assertTrue(auth["RemoteAddress"].startswith("IPV4/TCP/127.0.0.1/"))
        self.assertEqual(auth["AccountID"], "admin")


class CallTests(Harness):
    """Originate and the other call actions through the client's API."""

    def test_async_originate_success(self) -> None:
        """An async Originate fires with the OriginateResponse (Reason 4) once answered."""
        client, _, pump, _events = self.connect()
        d = client.originate(
            "PJSIP/100", exten="1002", context="txami-test", priority=1, async_=True
        )
        pump.flush()
        result = self.successResultOf(d)
        self.assertEqual((result["Response"], result["Reason"]), ("Success", "4"))
        self.assertEqual(result["Channel"], "PJSIP/100-00000000")

    def test_async_originate_busy(self) -> None:
        """An endpoint set to be busy fails the async Originate with OriginateError reason 5."""
        self.fake.pbx.endpoint_outcomes["PJSIP/200"] = 5
        client, _, pump, events = self.connect()
        d = client.originate(
            "PJSIP/200", exten="1002", context="txami-test", priority=1, async_=True
        )
        pump.flush()
        self.assertEqual(self.failureResultOf(d, OriginateError).value.reason, 5)
        hangups = [e for e in events if e.name == "Hangup"]
        self.assertEqual([(e["Cause"], e["Cause-txt"]) for e in hangups], [("17", "User busy")])

    def test_sync_originate_waits_for_ringing(self) -> None:
        """A synchronous Originate answers only when the ringing channel answers."""
        self.fake.pbx.ring_time = 3
        client, _, pump, _ = self.connect()
        d = client.originate("PJSIP/100", exten="1002", context="txami-test", priority=1)
        pump.flush()
        self.assertNoResult(d)
        self.clock.advance(3)
        pump.flush()
        self.assertEqual(self.successResultOf(d)["Message"], "Originate successfully queued")

    def test_sync_originate_no_answer(self) -> None:
        """Ringing longer than the Timeout fails a synchronous Originate."""
        self.fake.pbx.ring_time = 40
        client, _, pump, _ = self.connect()
        d = client.originate("SIP/9", exten="1002", context="txami-test", priority=1, timeout=5000)
        pump.flush()
        self.clock.advance(5)
        pump.flush()
        self.assertEqual(self.failureResultOf(d, AMIError).value.message, "Originate failed")

    def test_originate_without_priority(self) -> None:
        """Exten without Priority is refused, as Asterisk refuses it."""
        client, _, pump, _ = self.connect()
        d = client.originate("PJSIP/100", exten="1002", context="txami-test")
        pump.flush()
        self.assertEqual(
            self.failureResultOf(d, AMIError).value.message,
            "Originate with 'Exten' requires 'Context' and 'Priority'",
        )

    def test_redirect(self) -> None:
        """Redirect moves a channel to another extension, which then runs."""
        client, _, pump, events = self.connect()
        channel = self.fake.pbx.create_channel(context="txami-test", exten="1000", priority=2)
        d = client.redirect(channel.name, "1003", "txami-test")
        pump.flush()
        self.assertEqual(self.successResultOf(d)["Message"], "Redirect successful")
        self.clock.advance(0.2)
        pump.flush()
        self.assertEqual(
            [(e.name, e.get("Application")) for e in events if e.get("Channel") == channel.name],
            [
                ("Newchannel", None),
                ("Newexten", "Answer"),
                ("Newexten", "Wait"),
                ("Newexten", "Hangup"),
                ("SoftHangupRequest", None),
                ("Hangup", None),
            ],
        )

    def test_redirect_errors(self) -> None:
        """Redirect of an unknown channel names it, as Asterisk does."""
        client, _, pump, _ = self.connect()
        d = client.redirect("SIP/none-1", "1000", "txami-test")
        pump.flush()
        self.assertEqual(
            self.failureResultOf(d, AMIError).value.message, "Channel does not exist: SIP/none-1"
        )

    def test_core_show_channels(self) -> None:
        """CoreShowChannels lists each channel with its application and duration."""
        client, _, pump, _ = self.connect()
        self.fake.pbx.create_channel(application="Echo")
        self.clock.advance(65)
        d = client.core_show_channels()
        pump.flush()
        [item] = self.successResultOf(d)
        self.assertEqual(
            (item["Channel"], item["Application"], item["Duration"]),
            ("PJSIP/100-00000000", "Echo", "00:01:05"),
        )

    def test_sync_originate_holds_up_the_session(self) -> None:
        """A ringing sync Originate answers first; a Ping sent after it waits, events follow."""
        self.fake.pbx.ring_time = 3
        client, _, pump, events = self.connect()
        del events[:]
        originate = client.originate("PJSIP/100", application="Wait", data="10")
        ping = client.ping()
        pump.flush()
        self.assertNoResult(ping)
        self.assertEqual(events, [])
        self.clock.advance(3)
        pump.flush()
        self.successResultOf(originate)
        self.assertEqual(self.successResultOf(ping)["Ping"], "Pong")
        self.assertEqual([e.name for e in events][:3], ["Newchannel", "DialBegin", "Newstate"])

    def test_queue_status_shows_callers(self) -> None:
        """A call in the Queue application appears as a QueueEntry while no member is free."""
        client, _, pump, _ = self.connect()
        for member in ("Local/1000@txami-test/n", "Local/1001@txami-test/n"):
            self.fake.pbx.pause_member("support", member, True)
        d = client.originate("Local/600@txami-test", application="Wait", data="60")
        pump.flush()
        self.successResultOf(d)
        d = client.queue_status("support")
        pump.flush()
        items = self.successResultOf(d)
        self.assertEqual(
            [e.name for e in items], ["QueueParams", "QueueMember", "QueueMember", "QueueEntry"]
        )
        self.assertEqual(
            (items[0]["Calls"], items[3]["Channel"]), ("1", "Local/600@txami-test-00000000;2")
        )
