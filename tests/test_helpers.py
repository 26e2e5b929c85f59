"""
The typed helper methods (`txami.actions.AMIActions`, mixed into `AMIProtocol`).

Replays: each helper is driven against a real capture.  The session hands the
helpers the capture's ActionIDs in order (`Session.pin_ids`), so the bytes a
helper writes can be compared with the capture's ``.sent.raw`` and the server's
bytes fed unchanged, in every feeding `replay_all_feedings` knows.  Where a
helper writes something other than the capture's client did, the difference
is asserted exactly (see `HelperSent`).

Unit tests: the bytes of the helpers no capture covers, and their timeouts.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

import txami.message
from tests.test_replay import (
    LogCapture,
    Session,
    action_blocks,
    capture_ids,
    md5_key,
    read_capture,
    replay_all_feedings,
)
from txami import (
    ActionTimeout,
    AMIError,
    AMIProtocol,
    AuthenticationError,
    Message,
    NotConnected,
    OriginateError,
)


def helper_start(
    sent_name: str, script: Callable[[Session, AMIProtocol], None]
) -> Callable[[Session], None]:
    """A replay ``start`` that pins the capture's ActionIDs and runs ``script``."""
    ids = capture_ids(read_capture(sent_name))

    def start(session: Session) -> None:
        session.pin_ids(ids)
        script(session, session.protocol)

    return start


class HelperReplayMixin:
    """Run a helper script against a capture and compare what it wrote."""

    def helper_replay(
        self,
        name: str,
        script: Callable[[Session, AMIProtocol], None],
        advance: float = 0.0,
        raw: str | None = None,
        sent: str | None = None,
    ) -> Session:
        case: SynchronousTestCase = self  # type: ignore[assignment]
        return replay_all_feedings(
            case,
            raw or f"{name}.raw",
            helper_start(sent or f"{name}.sent.raw", script),
            advance,
        )

    def assert_sent(
        self,
        session: Session,
        sent_name: str,
        login_events: dict[int, str] | None = None,
        reordered: set[int] | frozenset[int] = frozenset(),
    ) -> None:
        """
        The helpers wrote the capture's actions, byte for byte, except that:
        the Login blocks in ``login_events`` (index -> mask) carry an
        ``Events`` header the capture's client left out (txami always sends
        one), and the Originate blocks in ``reordered`` hold the same headers
        in another order, with ``Async: true`` for the capture's ``Async: yes``.
        """
        case: SynchronousTestCase = self  # type: ignore[assignment]
        written = action_blocks(session.transport.value())
        captured = action_blocks(read_capture(sent_name))
        case.assertEqual(len(written), len(captured))
        for index, (mine, theirs) in enumerate(zip(written, captured, strict=True)):
            if login_events and index in login_events:
                theirs += f"\r\nEvents: {login_events[index]}".encode()
            if index in reordered:
                mine_msg, theirs_msg = Message.parse(mine), Message.parse(theirs)
                case.assertEqual(mine_msg.pairs()[:2], theirs_msg.pairs()[:2])
                normal = [(k, "true" if (k, v) == ("Async", "yes") else v) for k, v in theirs_msg]
                case.assertEqual(sorted(mine_msg.pairs()), sorted(normal), index)
                case.assertEqual(mine_msg.getall("Variable"), theirs_msg.getall("Variable"))
            else:
                case.assertEqual(mine, theirs, index)

    def value(self, session: Session, key: str) -> Any:
        result = session.results[key]
        case: SynchronousTestCase = self  # type: ignore[assignment]
        if isinstance(result, Failure):
            case.fail(f"{key} failed: {result.getTraceback()}")
        return result

    def error(self, session: Session, key: str, kind: type[Exception] = AMIError) -> Any:
        result = session.results[key]
        case: SynchronousTestCase = self  # type: ignore[assignment]
        case.assertIsInstance(result, Failure, f"{key}: {result!r}")
        assert isinstance(result, Failure)
        case.assertIs(result.type, kind)
        return result.value


class LoginHelperTests(HelperReplayMixin, SynchronousTestCase):
    """login (plain and MD5), logoff, ping, events, challenge against the captures."""

    def test_login_plain(self) -> None:
        """login() writes the capture's Login (plus Events: on); fires with the acceptance."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track("logoff", p.logoff())

        s = self.helper_replay("login-success", script)
        self.assert_sent(s, "login-success.sent.raw", login_events={0: "on"})
        self.assertEqual(self.value(s, "login")["Message"], "Authentication accepted")
        self.assertEqual(self.value(s, "logoff").name, "Goodbye")
        self.assertFalse(s.protocol.logged_in)  # the Goodbye ended the session
        self.assertEqual(s.protocol.username, "admin")

    def test_login_refused(self) -> None:
        """A refused login errbacks AuthenticationError naming the user; logged_in stays False."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "wrongsecret"))

        s = self.helper_replay("login-failure", script)
        self.assert_sent(s, "login-failure.sent.raw", login_events={0: "on"})
        error = self.error(s, "login", AuthenticationError)
        self.assertEqual(error.username, "admin")
        self.assertEqual(error.message, "Authentication failed")
        self.assertEqual(error.response.action_id, "login-failure-02")
        self.assertEqual(str(error), "login as 'admin' refused: Authentication failed")
        self.assertIsInstance(error, AMIError)
        self.assertFalse(s.protocol.logged_in)
        self.assertIsNone(s.protocol.username)

    def test_login_unknown_user(self) -> None:
        """An unknown user is refused the same way."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("nosuchuser", "whatever"))

        s = self.helper_replay("login-failure.nouser", script)
        self.assert_sent(s, "login-failure.nouser.sent.raw", login_events={0: "on"})
        error = self.error(s, "login", AuthenticationError)
        self.assertEqual(str(error), "login as 'nosuchuser' refused: Authentication failed")

    def test_login_md5(self) -> None:
        """login(auth='md5') writes the capture's Challenge and exactly the capture's Key."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret", auth="md5"))

            def then_logoff(_: object) -> None:
                s.track("logoff", p.logoff())

            # The Logoff goes out once the login is done, as the capture's client sent it.
            s.deferreds["login"].addCallback(then_logoff)

        s = self.helper_replay("login-md5", script)
        self.assert_sent(s, "login-md5.sent.raw", login_events={1: "on"})
        key = Message.parse(action_blocks(s.transport.value())[1])["Key"]
        self.assertEqual(key, "d0c7b33337411eac7b0f12e5c1eb5b81")
        self.assertEqual(key, md5_key("951053600", "adminsecret"))
        self.assertNotIn(b"adminsecret", s.transport.value())
        self.assertEqual(self.value(s, "login")["Message"], "Authentication accepted")
        self.assertFalse(s.protocol.logged_in)  # the Goodbye ended the session

    def test_login_md5_refused(self) -> None:
        """A wrong MD5 secret sends md5(challenge + it) and errbacks AuthenticationError."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "not-the-secret", auth="md5"))

        s = self.helper_replay("login-md5.badkey", script)
        written = action_blocks(s.transport.value())
        self.assertEqual(written[0], action_blocks(read_capture("login-md5.badkey.sent.raw"))[0])
        self.assertEqual(
            Message.parse(written[1]).pairs(),
            [
                ("Action", "Login"),
                ("ActionID", "login-md5-05"),
                ("AuthType", "MD5"),
                ("Username", "admin"),
                ("Key", md5_key("591775001", "not-the-secret")),
                ("Events", "on"),
            ],
        )
        error = self.error(s, "login", AuthenticationError)
        self.assertEqual(str(error), "login as 'admin' refused: Authentication failed")

    def test_challenge_bad_auth_type(self) -> None:
        """challenge('SHA1') writes the capture's bytes and errbacks 'Must specify AuthType'."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("challenge", p.challenge("SHA1"))

        s = self.helper_replay("login-md5.badauthtype", script)
        self.assert_sent(s, "login-md5.badauthtype.sent.raw")
        self.assertEqual(self.error(s, "challenge").message, "Must specify AuthType")

    def test_md5_challenge_failure_is_not_authentication_error(self) -> None:
        """A Challenge failing in an MD5 login errbacks that AMIError, not AuthenticationError."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret", auth="md5"))

        s = self.helper_replay(
            "md5-bad-challenge",
            script,
            raw="login-md5.badauthtype.raw",
            sent="login-md5.badauthtype.sent.raw",
        )
        error = self.error(s, "login")
        self.assertEqual((error.action, error.message), ("Challenge", "Must specify AuthType"))

    def test_ping_and_preauth(self) -> None:
        """ping() before login errbacks 'Permission denied'; after it, fires with Pong."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("ping-1", p.ping())
            s.track("core", p.send_action("CoreStatus"))
            s.track("login", p.login("admin", "adminsecret"))
            s.track("ping-2", p.ping())
            s.track("logoff", p.logoff())

        s = self.helper_replay("preauth", script)
        self.assert_sent(s, "preauth.sent.raw", login_events={2: "on"})
        self.assertEqual(str(self.error(s, "ping-1")), "Ping failed: Permission denied")
        self.assertEqual(self.value(s, "ping-2")["Ping"], "Pong")
        self.assertEqual(self.value(s, "ping-2")["Timestamp"], "1795694613.991741")

    def test_ping_custom_id(self) -> None:
        """ping() answers resolve by ActionID, including one with spaces and a colon."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track("ping-1", p.ping())
            s.track("ping-2", p.ping())
            s.track("logoff", p.logoff())

        s = self.helper_replay("ping", script)
        self.assert_sent(s, "ping.sent.raw", login_events={0: "on"})
        self.assertEqual(self.value(s, "ping-1")["Timestamp"], "1795694613.164388")
        self.assertEqual(self.value(s, "ping-2").action_id, "custom id with spaces: and colon")

    def test_events_masks(self) -> None:
        """login(events='off'), events() with str, bool, list masks: the capture's bytes."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret", events="off"))
            s.track("u1", p.user_event("NotDelivered1"))
            s.track("on", p.events("on"))
            s.track("u2", p.user_event("Delivered1"))
            s.track("off", p.events(False))
            s.track("u3", p.user_event("NotDelivered2"))
            s.track("user", p.events("user"))
            s.track("u4", p.user_event("Delivered2"))
            s.track("classes", p.events(["system", "call"]))
            s.track("u5", p.user_event("NotDelivered3"))
            s.track("bogus", p.events("bogusclass"))
            s.track("missing", p.send_action("Events"))
            s.track("logoff", p.logoff())

        s = self.helper_replay("events", script)
        self.assert_sent(s, "events.sent.raw")
        self.assertEqual(self.value(s, "on")["Events"], "On")
        self.assertEqual(self.value(s, "off")["Events"], "Off")
        self.assertEqual(self.value(s, "bogus")["Events"], "Off")
        self.assertEqual(self.error(s, "missing").message, "Invalid event mask")
        self.assertEqual([e["UserEvent"] for e in s.events], ["Delivered1", "Delivered2"])

    def test_tls_session(self) -> None:
        """tls (decrypted bytes): login, ping and logoff over TLS behave the same."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track("ping", p.ping())
            s.track("core", p.send_action("CoreStatus"))
            s.track("logoff", p.logoff())

        s = self.helper_replay("tls", script)
        self.assert_sent(s, "tls.sent.raw", login_events={0: "on"})
        self.assertEqual(self.value(s, "ping")["Ping"], "Pong")
        self.assertEqual(s.fired, ["login", "ping", "core", "logoff"])

    def test_logoff(self) -> None:
        """logoff() fires with Goodbye."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track("logoff", p.logoff())

        s = self.helper_replay("logoff", script)
        self.assert_sent(s, "logoff.sent.raw", login_events={0: "on"})
        self.assertEqual(self.value(s, "logoff")["Message"], "Thanks for all the fish.")


class CommandHelperTests(HelperReplayMixin, SynchronousTestCase):
    """command() against the command and custom-sample captures."""

    def test_command(self) -> None:
        """command() fires with the Output lines exactly; an unknown command errbacks with them."""
        clis = [
            "core show version",
            "core show channels",
            "dialplan show txami-test",
            "core show applications",
            "manager show command Originate",
            "foo bar baz",
            "core show uptime seconds",
        ]

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            for cli in clis:
                s.track(cli, p.command(cli))
            s.track("none", p.send_action("Command"))
            s.track("logoff", p.logoff())

        s = self.helper_replay("command", script)
        self.assert_sent(s, "command.sent.raw", login_events={0: "on"})
        self.assertEqual(
            self.value(s, "core show version"),
            [
                "Asterisk 20.20.1 built by root @ vm on a x86_64 running Linux on 2026-11-26 "
                "11:45:01 UTC"
            ],
        )
        self.assertEqual(
            self.value(s, "core show channels"),
            [
                "Channel"
                + " " * 58
                + "Location"
                + " " * 25
                + "State   Application(Data)"
                + " " * 13,
                "0 active channels",
                "0 of 500 max active calls ( 0.00% of capacity)",
                "0 calls processed",
            ],
        )
        self.assertEqual(len(self.value(s, "dialplan show txami-test")), 44)
        self.assertEqual(
            self.value(s, "dialplan show txami-test")[-1],
            "-= 14 extensions (41 priorities) in 1 context. =-",
        )
        applications = self.value(s, "core show applications")
        self.assertEqual(len(applications), 126)
        self.assertEqual(applications[0], "    -= Registered Asterisk Applications =-")
        self.assertEqual(
            applications[1], "        AddQueueMember: Dynamically adds queue members. "
        )
        self.assertEqual(
            self.value(s, "core show uptime seconds"), ["System uptime: 17", "Last reload: 17"]
        )
        manual = self.value(s, "manager show command Originate")
        self.assertEqual(manual.count(""), 30)
        error = self.error(s, "foo bar baz")
        self.assertEqual(
            error.output,
            [
                "No such command 'foo bar baz' (type 'core show help foo bar' for other "
                "possible commands)"
            ],
        )
        self.assertEqual(self.error(s, "none").message, "No command provided")

    def test_custom_sample(self) -> None:
        """custom-sample: login, command, queue_summary and get_var write the capture's bytes."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret", events="off"))
            s.track("ping", p.ping())
            s.track("core", p.send_action("CoreStatus"))
            s.track("uptime", p.command("core show uptime"))
            s.track("summary", p.queue_summary("support"))
            s.track("var", p.get_var("TXAMI_GLOBAL"))
            s.track("logoff", p.logoff())

        s = self.helper_replay("custom-sample", script)
        self.assert_sent(s, "custom-sample.sent.raw")
        self.assertEqual(
            self.value(s, "uptime"),
            ["System uptime: 2 minutes, 39 seconds", "Last reload: 56 seconds"],
        )
        (summary,) = self.value(s, "summary")
        self.assertEqual(
            (summary.name, summary["Queue"], summary["Available"]),
            ("QueueSummary", "support", "2"),
        )
        self.assertEqual(self.value(s, "var"), "hello")
        self.assertEqual(s.events, [])


CHANNEL_0 = "Local/1000@txami-test-00000004;2"


def originate_long(p: AMIProtocol, n: int) -> Deferred[Message]:
    """The status/hangup/vars captures' long-lived call number ``n``."""
    return p.originate(
        "Local/1000@txami-test/n",
        application="Wait",
        data="600",
        caller_id=f'"Long {n}" <555100{n}>',
        variables={"TXAMI_CALL": n},
    )


class CallHelperTests(HelperReplayMixin, SynchronousTestCase):
    """originate, status, hangup, absolute_timeout, user_event against the captures."""

    def test_originate_sync(self) -> None:
        """originate() (synchronous) fires with the late 'Originate successfully queued'."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track(
                "call",
                p.originate(
                    "Local/1002@txami-test",
                    exten="1002",
                    context="txami-test",
                    priority=1,
                    caller_id='"Txami Sync" <5551002>',
                    timeout=30000,
                ),
            )
            s.track("logoff", p.logoff())

        s = self.helper_replay("originate-sync", script)
        self.assert_sent(s, "originate-sync.sent.raw", login_events={0: "on"}, reordered={1})
        response = self.value(s, "call")
        self.assertEqual(
            (response.kind, response["Message"]), ("response", "Originate successfully queued")
        )
        self.assertEqual(len(s.events), 27)

    def test_originate_async(self) -> None:
        """originate(async_=True) fires with OriginateResponse, which also reaches the handlers."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track(
                "call",
                p.originate(
                    "Local/1002@txami-test",
                    exten="1002",
                    context="txami-test",
                    priority=1,
                    caller_id='"Txami Async" <5552002>',
                    timeout=30000,
                    async_=True,
                ),
            )
            s.track("logoff", p.logoff())

        s = self.helper_replay("originate-async", script)
        self.assert_sent(s, "originate-async.sent.raw", login_events={0: "on"}, reordered={1})
        event = self.value(s, "call")
        self.assertEqual((event.kind, event.name), ("event", "OriginateResponse"))
        self.assertEqual((event["Response"], event["Reason"]), ("Success", "4"))
        self.assertEqual(event["Channel"], "Local/1002@txami-test-00000001;1")
        self.assertIn(event, s.events)
        self.assertEqual(len(s.events), 28)
        self.assertEqual(s.fired, ["login", "call", "logoff"])

    def test_originate_errors(self) -> None:
        """originate-errors: AMIError per refusal; the async failure errbacks OriginateError(0)."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            foo = {"exten": "1002", "context": "txami-test", "priority": 1}
            s.track("tech", p.originate("Foo/bar", **foo))  # type: ignore[arg-type]
            s.track("async", p.originate("Foo/bar", async_=True, **foo))  # type: ignore[arg-type]
            s.track("exten", p.originate("Local/9999@txami-test", **foo))  # type: ignore[arg-type]
            s.track("noslash", p.originate("NoSlashHere", exten="1002"))
            s.track("nochannel", p.send_action("Originate", Context="txami-test", Exten="1002"))
            s.track(
                "priority",
                p.originate(
                    "Local/1002@txami-test",
                    exten="1002",
                    context="txami-test",
                    priority="notanumber",
                ),
            )
            s.track("logoff", p.logoff())

        s = self.helper_replay("originate-errors", script)
        self.assert_sent(
            s, "originate-errors.sent.raw", login_events={0: "on"}, reordered={1, 2, 3}
        )
        for key, text in (
            ("tech", "Originate failed"),
            ("exten", "Originate failed"),
            ("noslash", "Invalid channel"),
            ("nochannel", "Channel not specified"),
            ("priority", "Invalid priority"),
        ):
            self.assertEqual(self.error(s, key).message, text)
        failed = self.error(s, "async", OriginateError)
        self.assertEqual(failed.reason, 0)
        self.assertEqual(failed.message, "Failure")
        self.assertEqual(failed.response.name, "OriginateResponse")
        self.assertEqual(str(failed), "Originate of 'Foo/bar' ended with 'Failure' (reason 0)")
        self.assertIn(failed.response, s.events)

    def test_originate_variables(self) -> None:
        """originate(variables=...) writes one Variable header per item, in order."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track(
                "call",
                p.originate(
                    "Local/710@txami-test/n",
                    context="txami-test",
                    exten="1002",
                    priority=1,
                    variables={
                        "FOO": "foo-value",
                        "BAR": "bar value with spaces",
                        "BAZ": "1,QUX=2",
                        "__INHERITED": "yes",
                    },
                    async_=True,
                ),
            )
            s.track("logoff", p.logoff())

        s = self.helper_replay("originate-variables", script)
        self.assert_sent(s, "originate-variables.sent.raw", login_events={0: "on"}, reordered={1})
        self.assertEqual(self.value(s, "call")["Channel"], "Local/710@txami-test-00000003;1")

    def test_status(self) -> None:
        """status(): lists of 6 and 1, repeated Variable headers in order, 'No such channel'."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret", events=False))
            for n in range(3):
                s.track(f"call-{n}", originate_long(p, n))
            s.track("all", p.status())
            s.track("one", p.status(CHANNEL_0))
            s.track("vars", p.status(CHANNEL_0, ["TXAMI_CALL", "CALLERID(num)", "NOSUCHVAR"]))
            s.track("allvars", p.send_action("Status", Channel=CHANNEL_0, AllVariables=True))
            s.track("none", p.status("Local/nosuch@txami-test-00000000;1"))
            s.track("logoff", p.logoff())

        s = self.helper_replay("status", script)
        self.assert_sent(s, "status.sent.raw")
        statuses = self.value(s, "all")
        self.assertIsInstance(statuses, list)
        self.assertEqual([e.name for e in statuses], ["Status"] * 6)
        self.assertEqual([e["Channel"] for e in self.value(s, "one")], [CHANNEL_0])
        (with_vars,) = self.value(s, "vars")
        self.assertEqual(
            with_vars.getall("Variable"),
            ["TXAMI_CALL=0", "CALLERID(num)=5551000", "NOSUCHVAR=(null)"],
        )
        self.assertEqual(self.value(s, "allvars").events[0].getall("Variable"), ["TXAMI_CALL=0"])
        self.assertEqual(self.error(s, "none").message, "No such channel")
        self.assertEqual(s.events, [])

    def test_hangup(self) -> None:
        """hangup(): plain, with cause, unknown channel; a /regex/ gives a list response."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            for n in range(3):
                s.track(f"call-{n}", originate_long(p, n))
            s.track("plain", p.hangup("Local/1000@txami-test-00000008;2"))
            s.track("busy", p.hangup("Local/1000@txami-test-00000007;2", cause=17))
            s.track("nosuch", p.hangup("Local/nosuch@txami-test-00000000;1"))
            s.track("regex", p.hangup("/^Local\\/1000@txami-test-.*;1$/"))
            s.track("nomatch", p.hangup("/^NoMatch.*/"))
            s.track("nochannel", p.send_action("Hangup"))
            s.track("logoff", p.logoff())

        s = self.helper_replay("hangup", script)
        self.assert_sent(s, "hangup.sent.raw", login_events={0: "on"})
        self.assertEqual(self.value(s, "plain")["Message"], "Channel Hungup")
        self.assertEqual(self.value(s, "busy")["Message"], "Channel Hungup")
        self.assertEqual(self.error(s, "nosuch").message, "No such channel")
        regex = self.value(s, "regex")
        self.assertEqual(
            [(e.name, e["Channel"]) for e in regex.events],
            [("ChannelHungup", "Local/1000@txami-test-00000009;1")],
        )
        self.assertEqual(self.value(s, "nomatch").events, [])
        self.assertEqual(self.error(s, "nochannel").message, "No channel specified")

    def test_absolute_timeout(self) -> None:
        """absolute_timeout(): 'Timeout Set', then 'No such channel'."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track("call", originate_long(p, 0))
            s.track("set", p.absolute_timeout("Local/1000@txami-test-0000000e;2", 2))
            s.track("nosuch", p.absolute_timeout("Local/nosuch@txami-test-00000000;1", 2))
            s.track("logoff", p.logoff())

        s = self.helper_replay("absolutetimeout", script)
        self.assert_sent(s, "absolutetimeout.sent.raw", login_events={0: "on"})
        self.assertEqual(self.value(s, "set")["Message"], "Timeout Set")
        self.assertEqual(self.error(s, "nosuch").message, "No such channel")

    def test_user_event(self) -> None:
        """user_event() with keyword and repeated headers; the events echo them."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track("kw", p.user_event("TxamiAmi", Header1="Value1", Foo="bar baz"))
            s.track("dup", p.user_event("TxamiDup", [("X", [1, 2, 3])]))
            s.track("noname", p.send_action("UserEvent"))
            s.track(
                "call",
                p.originate("Local/700@txami-test", application="Wait", data="2", async_=True),
            )
            s.track("logoff", p.logoff())

        s = self.helper_replay("userevent", script)
        self.assert_sent(s, "userevent.sent.raw", login_events={0: "on"}, reordered={4})
        self.assertEqual(self.value(s, "kw")["Message"], "Event Sent")
        user = [e for e in s.events if e.name == "UserEvent"]
        self.assertEqual(user[1].getall("X"), ["1", "2", "3"])
        self.assertEqual(self.value(s, "call")["Channel"], "Local/700@txami-test-00000015;1")

    def test_filter_hides_originate_response(self) -> None:
        """If a filter hides OriginateResponse, originate(async_=True) ends by its 35 s timeout."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track("f1", p.filter("Event: UserEvent"))
            s.track("u1", p.user_event("PassesFilter"))
            s.track(
                "call",
                p.originate("Local/1002@txami-test", application="Wait", data="1", async_=True),
            )
            s.track("f2", p.filter("!UserEvent: Blocked"))
            s.track("u2", p.user_event("Blocked"))
            s.track("u3", p.user_event("PassesFilter2"))
            s.track("bogus", p.filter("Event: X", operation="Bogus"))
            s.track("missing", p.send_action("Filter", Operation="Add"))
            s.track("regex", p.filter("Event: (unbalanced"))
            s.track("logoff", p.logoff())

        s = self.helper_replay("filter", script, advance=35.0)
        self.assert_sent(s, "filter.sent.raw", login_events={0: "on"}, reordered={3})
        self.assertEqual(self.value(s, "f1")["Message"], "Success")
        self.assertEqual(self.error(s, "bogus").message, "Unknown operation")
        self.assertEqual(
            self.error(s, "regex").message,
            "Filter did not compile.  Check the syntax of the filter given.",
        )
        timeout = self.error(s, "call", ActionTimeout)
        self.assertEqual(
            (timeout.action, timeout.action_id, timeout.timeout), ("Originate", "filter-04", 35.0)
        )
        self.assertEqual(s.fired[-1], "call")


class DataHelperTests(HelperReplayMixin, SynchronousTestCase):
    """get_var/set_var, db_get/db_put, mailboxes, extension_state, iax_peers, permissions."""

    def test_vars(self) -> None:
        """get_var() gives Value ('' if unset); set_var() takes ints; unknown channels errback."""
        channel = "Local/1000@txami-test-00000014;2"
        nosuch = "Local/nosuch@txami-test-00000000;1"

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track("global", p.get_var("TXAMI_GLOBAL"))
            s.track("set", p.set_var("TXAMI_NEW", "abc def"))
            s.track("new", p.get_var("TXAMI_NEW"))
            s.track("unset", p.get_var("NO_SUCH_VAR"))
            s.track("call", originate_long(p, 0))
            s.track("chan-set", p.set_var("FOO", "bar", channel=channel))
            s.track("chan-get", p.get_var("FOO", channel))
            s.track("callerid", p.get_var("CALLERID(all)", channel))
            s.track("state", p.get_var("CHANNEL(state)", channel))
            s.track("get-nosuch", p.get_var("FOO", nosuch))
            s.track("set-nosuch", p.set_var("FOO", 1, channel=nosuch))
            s.track("set-novar", p.send_action("Setvar", Value=1))
            s.track("get-novar", p.send_action("Getvar"))
            s.track("shell", p.get_var("SHELL(id)"))
            s.track("logoff", p.logoff())

        s = self.helper_replay("vars", script)
        self.assert_sent(s, "vars.sent.raw", login_events={0: "on"})
        for key, value in (
            ("global", "hello"),
            ("new", "abc def"),
            ("unset", ""),
            ("chan-get", "bar"),
            ("callerid", '"Long 0" <5551000>'),
            ("state", "Up"),
            ("shell", ""),
        ):
            self.assertEqual(self.value(s, key), value, key)
        self.assertEqual(self.value(s, "set")["Message"], "Variable Set")
        self.assertEqual(self.error(s, "get-nosuch").message, "No such channel")
        self.assertEqual(self.error(s, "set-nosuch").message, "No such channel")

    def test_db(self) -> None:
        """db_put() and db_get(): DBGet's list answer gives the value; a missing key errbacks."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track("put-1", p.db_put("txami", "k1", "value one"))
            s.track("put-2", p.db_put("txami", "sub/k2", "value two"))
            s.track("get", p.db_get("txami", "k1"))
            s.track("missing", p.db_get("txami", "nosuchkey"))
            s.track("tree", p.send_action("DBGetTree", Family="txami"))
            s.track("del", p.send_action("DBDel", Family="txami", Key="k1"))
            s.track("del-again", p.send_action("DBDel", Family="txami", Key="k1"))
            s.track("deltree", p.send_action("DBDelTree", Family="txami"))
            s.track("deltree-again", p.send_action("DBDelTree", Family="txami"))
            s.track("put-nokey", p.send_action("DBPut", Family="txami"))
            s.track("get-nofamily", p.send_action("DBGet"))
            s.track("logoff", p.logoff())

        s = self.helper_replay("db", script)
        self.assert_sent(s, "db.sent.raw", login_events={0: "on"})
        self.assertEqual(self.value(s, "put-1")["Message"], "Updated database successfully")
        self.assertEqual(self.value(s, "get"), "value one")
        self.assertEqual(self.error(s, "missing").message, "Database entry not found")
        self.assertEqual(len(self.value(s, "tree").events), 2)
        self.assertEqual(s.event_names(), ["FullyBooted", "SuccessfulAuth"])

    def test_pipelining(self) -> None:
        """Helpers pipelined in one go resolve in the server's order."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track("ping", p.ping())
            s.track("core", p.send_action("CoreStatus"))
            s.track("db", p.db_get("nosuch", "k"))
            s.track("list", p.send_action("ExtensionStateList"))
            s.track("ping-2", p.ping())
            s.track("dribble", p.ping())
            s.track("logoff", p.logoff())

        s = self.helper_replay("pipelining", script)
        self.assert_sent(s, "pipelining.sent.raw", login_events={0: "on"})
        self.assertEqual(
            s.fired, ["login", "ping", "core", "db", "list", "ping-2", "dribble", "logoff"]
        )
        self.assertEqual(self.error(s, "db").message, "Database entry not found")

    def test_mailbox(self) -> None:
        """mailbox_count() and mailbox_status() give the capture's counts."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track("count", p.mailbox_count("1234@default"))
            s.track("status", p.mailbox_status("1234@default"))
            s.track("count-nocontext", p.mailbox_count("1234"))
            s.track("count-empty", p.mailbox_count("1235@default"))
            s.track("count-missing", p.mailbox_count("9999@default"))
            s.track("status-missing", p.mailbox_status("9999@default"))
            s.track("count-nocontext-2", p.mailbox_count("9999@nosuchcontext"))
            s.track("count-none", p.send_action("MailboxCount"))
            s.track("status-none", p.send_action("MailboxStatus"))
            s.track("users", p.send_action("VoicemailUsersList"))
            s.track("logoff", p.logoff())

        s = self.helper_replay("mailbox", script)
        self.assert_sent(s, "mailbox.sent.raw", login_events={0: "on"})
        count = self.value(s, "count")
        self.assertEqual((count["NewMessages"], count["OldMessages"]), ("2", "1"))
        self.assertEqual(self.value(s, "status")["Waiting"], "1")
        self.assertEqual(self.value(s, "status-missing")["Waiting"], "0")
        self.assertEqual(self.error(s, "count-none").message, "Mailbox not specified")

    def test_extension_state(self) -> None:
        """extension_state() and set_var() of DEVICE_STATE against the capture."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track("idle", p.extension_state("2000", "txami-test"))
            s.track("unknown", p.extension_state("9999", "txami-test"))
            s.track("nocontext", p.extension_state("2000", "nosuchcontext"))
            s.track("set-1", p.set_var("DEVICE_STATE(Custom:txami2000)", "INUSE"))
            s.track("inuse", p.extension_state("2000", "txami-test"))
            s.track("set-2", p.set_var("DEVICE_STATE(Custom:txami2002)", "RINGING"))
            s.track("ringing", p.extension_state("2002", "txami-test"))
            s.track("list", p.send_action("ExtensionStateList"))
            s.track("devices", p.send_action("DeviceStateList"))
            s.track("set-3", p.set_var("DEVICE_STATE(Custom:txami2000)", "NOT_INUSE"))
            s.track("set-4", p.set_var("DEVICE_STATE(Custom:txami2002)", "NOT_INUSE"))
            s.track("logoff", p.logoff())

        s = self.helper_replay("extensionstate", script)
        self.assert_sent(s, "extensionstate.sent.raw", login_events={0: "on"})
        self.assertEqual(self.value(s, "idle")["StatusText"], "Idle")
        self.assertEqual(self.value(s, "unknown")["Status"], "-1")
        self.assertEqual(self.value(s, "inuse")["StatusText"], "InUse")
        self.assertEqual(self.value(s, "ringing")["Hint"], "Custom:txami2002&Custom:txami2003")

    def test_iax_peers(self) -> None:
        """iax_peers() gives exactly the 2 PeerEntry items without ActionID; handlers miss them."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("admin", "adminsecret"))
            s.track("peers", p.iax_peers())
            s.track("peerlist", p.send_action("IAXpeerlist"))
            s.track("old", p.send_action("IAX1peers"))
            s.track("registry", p.send_action("IAXregistry"))
            s.track("netstats", p.send_action("IAXnetstats", action_timeout=3.0))
            s.track("logoff", p.logoff())

        s = self.helper_replay("iax", script, advance=3.0)
        self.assert_sent(s, "iax.sent.raw", login_events={0: "on"})
        peers = self.value(s, "peers")
        self.assertEqual([(e.name, e.action_id) for e in peers], [("PeerEntry", None)] * 2)
        self.assertEqual(len(self.value(s, "peerlist").events), 2)
        self.assertEqual(s.event_names(), ["FullyBooted", "SuccessfulAuth", "RequestBadFormat"])
        self.assertEqual(self.error(s, "netstats", ActionTimeout).timeout, 3.0)

    def test_permission(self) -> None:
        """A read-only user may ping(); originate, command, status and set_var are denied."""

        def script(s: Session, p: AMIProtocol) -> None:
            s.track("login", p.login("reader", "readersecret"))
            s.track("ping", p.ping())
            s.track(
                "originate",
                p.originate(
                    "Local/1002@txami-test", exten="1002", context="txami-test", priority=1
                ),
            )
            s.track("command", p.command("core show version"))
            s.track("status", p.status())
            s.track("setvar", p.set_var("X", 1))
            s.track("list", p.send_action("ListCommands"))
            s.track("logoff", p.logoff())

        s = self.helper_replay("permission", script)
        self.assert_sent(s, "permission.sent.raw", login_events={0: "on"})
        for key in ("originate", "command", "status", "setvar"):
            self.assertEqual(self.error(s, key).message, "Permission denied")
        self.assertEqual(self.error(s, "command").output, [])
        self.assertEqual(self.value(s, "ping")["Ping"], "Pong")


class HelperBytesTests(SynchronousTestCase):
    """What the helpers no capture covers write, and their timeouts."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = StringTransport()
        self.protocol = AMIProtocol(self.clock)
        self.protocol.makeConnection(self.transport)

    def written(self) -> list[tuple[str, str]]:
        """The pairs of the one action written since the last call, ActionID left out."""
        data = self.transport.value()
        self.transport.clear()
        (block,) = action_blocks(data)
        pairs = Message.parse(block).pairs()
        self.assertEqual(pairs[1][0], "ActionID")
        self.last_id = pairs[1][1]
        return [pairs[0], *pairs[2:]]

    def test_redirect(self) -> None:
        """redirect() writes Channel, Exten, Context, Priority and the Extra* headers given."""
        self.protocol.redirect("SIP/a-1", "100", "default")
        self.assertEqual(
            self.written(),
            [
                ("Action", "Redirect"),
                ("Channel", "SIP/a-1"),
                ("Exten", "100"),
                ("Context", "default"),
                ("Priority", "1"),
            ],
        )
        self.protocol.redirect("SIP/a-1", "100", "default", 2, "SIP/b-2", "200", "other", 3)
        self.assertEqual(
            self.written()[5:],
            [
                ("ExtraChannel", "SIP/b-2"),
                ("ExtraExten", "200"),
                ("ExtraContext", "other"),
                ("ExtraPriority", "3"),
            ],
        )

    def test_monitor_helpers(self) -> None:
        """monitor(), stop_monitor(), change_monitor() write their headers; Mix only if true."""
        self.protocol.monitor("SIP/a-1")
        self.assertEqual(self.written(), [("Action", "Monitor"), ("Channel", "SIP/a-1")])
        self.protocol.monitor("SIP/a-1", file="rec", format="wav", mix=True)
        self.assertEqual(
            self.written(),
            [
                ("Action", "Monitor"),
                ("Channel", "SIP/a-1"),
                ("File", "rec"),
                ("Format", "wav"),
                ("Mix", "true"),
            ],
        )
        self.protocol.stop_monitor("SIP/a-1")
        self.assertEqual(self.written(), [("Action", "StopMonitor"), ("Channel", "SIP/a-1")])
        self.protocol.change_monitor("SIP/a-1", "other")
        self.assertEqual(
            self.written(),
            [("Action", "ChangeMonitor"), ("Channel", "SIP/a-1"), ("File", "other")],
        )

    def test_list_helpers(self) -> None:
        """core_show_channels(), queue_status() and queue_summary() fire with the list items."""
        d = self.protocol.core_show_channels()
        self.assertEqual(self.written(), [("Action", "CoreShowChannels")])
        action_id = self.last_id
        self.protocol.queue_status("support", "SIP/a")
        self.assertEqual(
            self.written(),
            [("Action", "QueueStatus"), ("Queue", "support"), ("Member", "SIP/a")],
        )
        self.protocol.queue_summary()
        self.assertEqual(self.written(), [("Action", "QueueSummary")])
        self.protocol.dataReceived(
            b"Asterisk Call Manager/9.0.0\r\n"
            + f"Response: Success\r\nActionID: {action_id}\r\nEventList: start\r\n\r\n".encode()
            + f"Event: CoreShowChannel\r\nActionID: {action_id}\r\nChannel: A\r\n\r\n".encode()
            + f"Event: CoreShowChannelsComplete\r\nActionID: {action_id}\r\n".encode()
            + b"EventList: Complete\r\nListItems: 1\r\n\r\n"
        )
        (item,) = self.successResultOf(d)
        self.assertEqual((item.name, item["Channel"]), ("CoreShowChannel", "A"))

    def test_db_put_and_set_var_convert_values(self) -> None:
        """db_put() and set_var() write ints as text; user_event keywords follow its headers."""
        self.protocol.db_put("fam", "key", 42)
        self.assertEqual(
            self.written(), [("Action", "DBPut"), ("Family", "fam"), ("Key", "key"), ("Val", "42")]
        )
        self.protocol.set_var("V", 7, channel="SIP/a-1")
        self.assertEqual(
            self.written(),
            [("Action", "Setvar"), ("Channel", "SIP/a-1"), ("Variable", "V"), ("Value", "7")],
        )
        self.protocol.user_event("Ev", {"A": 1, "B": None, "C": True}, D=[1, 2])
        self.assertEqual(
            self.written(),
            [
                ("Action", "UserEvent"),
                ("UserEvent", "Ev"),
                ("A", "1"),
                ("C", "true"),
                ("D", "1"),
                ("D", "2"),
            ],
        )

    def test_originate_timeouts(self) -> None:
        """originate() waits max(timeout, ring time + 5 s) unless action_timeout is given."""
        short = self.protocol.originate("SIP/a", application="Wait", data="1", timeout=10_000)
        ring = self.protocol.originate("SIP/a", application="Wait", data="1", timeout=60_000)
        default = self.protocol.originate("SIP/a", application="Wait", data="1")
        given = self.protocol.originate("SIP/a", application="Wait", data="1", action_timeout=2)
        results = {}
        for name, d in (("short", short), ("ring", ring), ("default", default), ("given", given)):
            d.addErrback(lambda f, name=name: results.setdefault(name, f.value.timeout))
        self.clock.advance(2)
        self.assertEqual(results, {"given": 2})
        self.clock.advance(28)
        self.assertEqual(results, {"given": 2, "short": 30.0})
        self.clock.advance(5)
        self.assertEqual(results, {"given": 2, "short": 30.0, "default": 35.0})
        self.clock.advance(30)
        self.assertEqual(results, {"given": 2, "short": 30.0, "default": 35.0, "ring": 65.0})

    def test_queues_modern_server(self) -> None:
        """queues() on Asterisk 15+ errbacks AMIError 'Invalid/unknown command'."""
        d = self.protocol.queues()
        data = self.transport.value()
        queues, ping = action_blocks(data)
        queues_id = Message.parse(queues)["ActionID"]
        ping_id = Message.parse(ping)["ActionID"]
        self.assertEqual(Message.parse(ping)["Action"], "Ping")
        self.protocol.dataReceived(
            b"Asterisk Call Manager/9.0.0\r\n"
            + f"Response: Error\r\nActionID: {queues_id}\r\n".encode()
            + b"Message: Invalid/unknown command: Queues. Use Action: ListCommands to show "
            b"available commands.\r\n\r\n"
            + f"Response: Success\r\nActionID: {ping_id}\r\nPing: Pong\r\n\r\n".encode()
        )
        error = self.failureResultOf(d, AMIError).value
        self.assertEqual(error.action, "Queues")
        self.assertEqual(self.protocol._pending, {})

    def test_queues_silent_server_times_out(self) -> None:
        """queues() against a silent server errbacks ActionTimeout, never an empty success
        (ids 9 and 10 make the Ping's deadline, "x.10", expire first)."""
        self.patch(txami.message, "_id_counter", itertools.count(9))
        d = self.protocol.queues()
        self.clock.advance(30)
        self.failureResultOf(d, ActionTimeout)

    def test_queues_old_server(self) -> None:
        """queues() on an old server takes the bare text before the Pong as its output lines."""
        d = self.protocol.queues()
        _, ping = action_blocks(self.transport.value())
        ping_id = Message.parse(ping)["ActionID"]
        handled: list[Message] = []
        self.protocol.add_event_handler("*", handled.append)
        self.protocol.dataReceived(
            b"Asterisk Call Manager/1.1\r\n"
            b"support      has 0 calls (max unlimited) in 'ringall' strategy, W:0\r\n"
            b"   Members: \r\n"
            b"      SIP/100 (Not in use) has taken no calls yet\r\n"
            b"   No Callers\r\n\r\n"
            b"default      has 0 calls (max unlimited)\r\n   No Members\r\n\r\n"
            + f"Response: Success\r\nActionID: {ping_id}\r\nPing: Pong\r\n\r\n".encode()
        )
        self.assertEqual(
            self.successResultOf(d),
            [
                "support      has 0 calls (max unlimited) in 'ringall' strategy, W:0",
                "   Members: ",
                "      SIP/100 (Not in use) has taken no calls yet",
                "   No Callers",
                "",
                "default      has 0 calls (max unlimited)",
                "   No Members",
            ],
        )
        self.assertEqual(handled, [])

    def test_helpers_refuse_injection(self) -> None:
        """A helper argument holding CR or LF raises ValueError and writes nothing."""
        logs = LogCapture(self)
        calls: list[Callable[[], object]] = [
            lambda: self.protocol.originate("SIP/a\r\nAction: Command"),
            lambda: self.protocol.hangup("SIP/a\n"),
            lambda: self.protocol.command("core show version\r\n\r\nAction: Logoff"),
            lambda: self.protocol.get_var("X\rY"),
            lambda: self.protocol.login("admin\r\nX: y", "secret"),
            lambda: self.protocol.login("admin", "se\ncret"),
            lambda: self.protocol.user_event("Ev", Bad="a\x00b"),
            lambda: self.protocol.filter("Event: X\r\n"),
        ]
        for call in calls:
            with self.assertRaises(ValueError) as raised:
                call()
            self.assertNotIn("se\ncret", str(raised.exception))
        self.assertEqual(self.transport.value(), b"")
        self.assertEqual(self.protocol.actions_sent, 0)
        self.assertEqual(logs.txami(), [])

    def test_md5_login_refuses_injection_before_writing(self) -> None:
        """login(auth='md5') with CR/LF in the user name raises ValueError and writes nothing."""
        with self.assertRaises(ValueError):
            self.protocol.login("admin\r\nX: y", "secret", auth="md5")
        self.assertEqual(self.transport.value(), b"")

    def test_login_bad_auth(self) -> None:
        """login() with an unknown auth raises ValueError and writes nothing."""
        with self.assertRaises(ValueError) as raised:
            self.protocol.login("admin", "secret", auth="sha1")
        self.assertEqual(str(raised.exception), "auth must be 'plain' or 'md5', not 'sha1'")
        self.assertEqual(self.transport.value(), b"")

    def test_helpers_not_connected(self) -> None:
        """Before connectionMade a helper fails at once with NotConnected."""
        protocol = AMIProtocol(self.clock)
        error = self.failureResultOf(protocol.ping(), NotConnected).value
        self.assertEqual(str(error), "cannot send Ping: not connected yet")
