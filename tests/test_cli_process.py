"""
``python -m txami`` as a real process against txami's fake Asterisk on
127.0.0.1: what each command prints, its exit code, Ctrl-C and SIGTERM, a
lost connection, a closed pipe, and that the secret is never printed.

The fake runs on the real reactor for I/O; every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import re
import signal
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.trial.unittest import TestCase

from tests.clirun import Result, Txami, reactor, spawn
from tests.realpbx import wait_for
from txami.testing import FakeAsterisk, listen

SECRET = "s3cret-that-must-never-show"


class FakePBXProcessTests(TestCase):
    """Each test runs txami against a fresh fake Asterisk."""

    timeout = 60

    def setUp(self) -> None:
        self.fake = FakeAsterisk(reactor)
        self.fake.auth_failure_delay = 0.0
        self.fake.add_user("cli", SECRET)
        port = listen(self.fake, reactor)
        self.port = port.getHost().port
        self.addCleanup(port.stopListening)
        self.addCleanup(self.fake.stop)
        self.home = os.path.abspath(self.mktemp())
        os.makedirs(self.home)
        self.where = f"127.0.0.1:{self.port}"

    def connection(self, username: str = "cli") -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.port), "-u", username]

    def start(self, *arguments: str, secret: str | None = SECRET) -> Txami:
        environ = {"TXAMI_SECRET": secret} if secret is not None else {}
        child = spawn(arguments, self.home, environ)
        self.addCleanup(child.cleanup)
        return child

    def run_txami(self, *arguments: str, secret: str | None = SECRET) -> Deferred[Result]:
        return self.start(*arguments, secret=secret).when_ended()

    def sent(self, name: str) -> list[Any]:
        """The actions named ``name`` the fake received, in order."""
        return [a for _, a in self.fake.actions_received if (a.name or "").lower() == name.lower()]

    def assert_logged_off(self) -> None:
        """The session ended with Logoff, the last action the fake received."""
        self.assertEqual(self.fake.actions_received[-1][1].name, "Logoff")

    # --- ping -----------------------------------------------------------------------------------

    async def test_ping(self) -> None:
        """ping prints the round trip on one line, exits 0, logs in with events off, logs off."""
        result = await self.run_txami("ping", *self.connection())
        self.assertEqual((result.code, result.error), (0, ""))
        self.assertRegex(
            result.text, rf"\APong from {re.escape(self.where)} \(AMI 9\.0\.0\): \d+\.\d\d ms\n\Z"
        )
        [login] = self.sent("Login")
        self.assertEqual((login["Username"], login["Events"]), ("cli", "off"))
        self.assertEqual(len(self.sent("Ping")), 1)
        self.assert_logged_off()

    async def test_options_before_the_command_md5_and_config(self) -> None:
        """Shared options work before the command; --auth md5; a [pbx:NAME] of the default file."""
        result = await self.run_txami(*self.connection(), "--auth", "md5", "ping")
        self.assertEqual((result.code, result.error), (0, ""), result)
        self.assertEqual(self.sent("Login")[0]["AuthType"], "MD5")
        self.assertNotIn("Secret", self.sent("Login")[0])
        directory = os.path.join(self.home, ".config", "txami")
        os.makedirs(directory)
        with open(os.path.join(self.home, "cli.secret"), "w") as f:
            f.write(SECRET + "\n")
        with open(os.path.join(directory, "txami.ini"), "w") as f:
            f.write(
                f"[pbx:fake]\nhost = 127.0.0.1\nport = {self.port}\nusername = cli\n"
                f"secret-file = {self.home}/cli.secret\n"
            )
        # No option at all: the only PBX of ~/.config/txami/txami.ini, secret from its file.
        result = await self.run_txami("ping", secret=None)
        self.assertEqual((result.code, result.error), (0, ""), result)
        self.assertTrue(result.text.startswith(f"Pong from {self.where} "), result)

    # --- action ---------------------------------------------------------------------------------

    async def test_action_text(self) -> None:
        """action sends the headers as given (repeats, '=' in values) and prints the response."""
        result = await self.run_txami(
            "action", "UserEvent", "UserEvent=CliTest", "Variable=A=1", "Variable=B=2",
            *self.connection(),
        )  # fmt: skip
        self.assertEqual((result.code, result.error), (0, ""))
        [sent] = self.sent("UserEvent")
        self.assertEqual(sent.getall("Variable"), ["A=1", "B=2"])
        self.assertEqual(sent["UserEvent"], "CliTest")
        self.assertEqual(
            result.text, f"Response: Success\nActionID: {sent.action_id}\nMessage: Event Sent\n\n"
        )

    async def test_list_action_text_and_json(self) -> None:
        """A list action prints its response, every item and the closing event; --json parses."""
        text, as_json = await gatherResults(
            [
                self.run_txami("action", "IAXpeerlist", *self.connection(), *form)
                for form in ((), ("--json",))
            ]
        )
        self.assertEqual((text.code, text.error, as_json.code, as_json.error), (0, "", 0, ""))
        blocks = text.text.split("\n\n")
        self.assertEqual(blocks[-1], "")
        heads = [block.splitlines()[0] for block in blocks[:-1]]
        self.assertEqual(
            heads,
            [
                "Response: Success",
                "Event: PeerEntry",
                "Event: PeerEntry",
                "Event: PeerlistComplete",
            ],
        )
        self.assertIn("\nObjectName: txpeer1\n", text.text)
        answer = json.loads(as_json.text)
        self.assertEqual(sorted(answer), ["items", "list_complete", "response"])
        self.assertEqual(answer["response"]["EventList"], "start")
        self.assertEqual(
            sorted(item["ObjectName"] for item in answer["items"]), ["txpeer1", "txpeer2"]
        )
        self.assertEqual(answer["list_complete"]["ListItems"], "2")
        self.assertEqual(as_json.text.count("\n"), 1)

    async def test_jsonl(self) -> None:
        """--jsonl: one JSON line per item, even for items sent without ActionID (IAXpeers)."""
        result, ping = await gatherResults(
            [
                self.run_txami("action", "IAXpeers", "--jsonl", *self.connection()),
                self.run_txami("action", "Ping", "--jsonl", *self.connection()),
            ]
        )
        self.assertEqual((result.code, result.error), (0, ""))
        lines = [json.loads(line) for line in result.text.splitlines()]
        self.assertEqual(sorted(line["ObjectName"] for line in lines), ["txpeer1", "txpeer2"])
        self.assertEqual({line["Event"] for line in lines}, {"PeerEntry"})
        self.assertEqual(json.loads(ping.text)["Ping"], "Pong")

    async def test_action_error(self) -> None:
        """An action Asterisk refuses: exit 1, its message on stderr, nothing on stdout."""
        result = await self.run_txami(
            "action", "Hangup", "Channel=PJSIP/nobody-1", *self.connection()
        )
        self.assertEqual(
            (result.code, result.text, result.error),
            (1, "", "txami: Hangup failed: No such channel\n"),
        )
        self.assert_logged_off()

    # --- command --------------------------------------------------------------------------------

    async def test_command_output_exact(self) -> None:
        """command prints the CLI's lines as they are: spaces, blank lines, non-UTF-8 bytes."""
        lines = ["Header with trailing spaces   ", "  indented", "", "caf\udce9 done"]
        self.fake.pbx.cli["txami cli test"] = lines
        result = await self.run_txami("command", "txami", "cli", "test", *self.connection())
        self.assertEqual((result.code, result.error), (0, ""))
        self.assertEqual(
            result.out, b"Header with trailing spaces   \n  indented\n\ncaf\xe9 done\n"
        )
        self.assertEqual(self.sent("Command")[0]["Command"], "txami cli test")

    async def test_command_unknown(self) -> None:
        """A command the CLI does not know: exit 1 and the CLI's complaint on stderr."""
        result = await self.run_txami("command", "no such thing", *self.connection())
        self.assertEqual(result.code, 1)
        self.assertEqual(result.text, "")
        self.assertRegex(result.error, r"\Atxami: No such command 'no such thing' .*\n\Z")

    # --- events ---------------------------------------------------------------------------------

    async def wait_for_session(self, child: Txami, *, filters: int = 0) -> None:
        """Until the fake has a logged-in session (with ``filters`` Filter actions answered)."""

        def ready() -> bool:
            if child.result is not None:
                raise AssertionError(f"txami ended: {child.result}")
            return (
                any(s.logged_in for s in self.fake.sessions)
                and len(self.sent("Filter")) >= filters
            )

        await wait_for(reactor, ready, timeout=20, what="txami's session")

    async def test_events_names_sigint(self) -> None:
        """events --name prints matching events as AMI text (bytes kept); Ctrl-C ends it with 0."""
        child = self.start("events", "--name", "userevent", "--name", "Queue*", *self.connection())
        await self.wait_for_session(child, filters=2)
        self.assertEqual(
            [a["Filter"] for a in self.sent("Filter")],
            ["^Event: [Uu][Ss][Ee][Rr][Ee][Vv][Ee][Nn][Tt]", "^Event: [Qq][Uu][Ee][Uu][Ee].*"],
        )
        self.fake.emit_event("Newchannel", Channel="Local/1@x-1")
        self.fake.send_raw(b"Event: UserEvent\r\nPrivilege: user,all\r\nData: caf\xe9\r\n\r\n")
        self.fake.emit_event("QueueMemberStatus", Queue="support", Privilege="agent,all")
        await child.output(lambda out: out.count(b"\n\n") >= 2)
        child.signal(signal.SIGINT)
        result = await child.when_ended()
        self.assertEqual((result.code, result.error), (0, ""))
        self.assertEqual(
            result.out,
            b"Event: UserEvent\nPrivilege: user,all\nData: caf\xe9\n\n"
            b"Event: QueueMemberStatus\nQueue: support\nPrivilege: agent,all\n\n",
        )
        self.assert_logged_off()

    async def test_events_json_count(self) -> None:
        """--json --count 2: the first two events as JSON lines, then exit 0 by itself."""
        result = await self.run_txami("events", "--json", "--count", "2", *self.connection())
        self.assertEqual((result.code, result.error), (0, ""))
        events = [json.loads(line) for line in result.text.splitlines()]
        # The fake, like Asterisk, greets a new session with these two.
        self.assertEqual([e["Event"] for e in events], ["FullyBooted", "SuccessfulAuth"])
        self.assertEqual(list(events[0])[:2], ["@timestamp", "Event"])
        self.assertEqual(events[1]["AccountID"], "cli")
        self.assertNotIn(SECRET, result.text)
        self.assert_logged_off()

    async def test_events_mask_filter_and_sigterm(self) -> None:
        """--events and --filter go to the server as given; SIGTERM ends a tail with 0."""
        child = self.start(
            "events", "--events", "call", "--filter", "Event: Hangup", "--name", "Hangup",
            *self.connection(),
        )  # fmt: skip
        await self.wait_for_session(child, filters=1)
        self.assertEqual(self.sent("Login")[0]["Events"], "call")
        self.assertEqual([a["Filter"] for a in self.sent("Filter")], ["Event: Hangup"])
        self.fake.emit_event("Hangup", Channel="Local/1@x-1", Cause="16")
        await child.output(lambda out: b"Cause: 16\n\n" in out)
        child.signal(signal.SIGTERM)
        result = await child.when_ended()
        self.assertEqual((result.code, result.error), (0, ""))
        self.assertEqual(result.text.count("Event: Hangup\n"), 1)

    async def test_events_connection_lost(self) -> None:
        """The server drops the connection: exit 3 with one line saying so."""
        child = self.start("events", "--debug", *self.connection())
        # Logged at once when the tail is ready (its handler registered).
        await child.errors(lambda err: b"printing the events of" in err)
        self.fake.drop_all()
        result = await child.when_ended()
        self.assertEqual(result.code, 3)
        self.assertRegex(
            result.error, rf"\ntxami: the connection to {re.escape(self.where)} was lost: .+\n"
        )
        self.assertEqual(result.error.count("txami: "), 1)

    async def test_events_closed_pipe(self) -> None:
        """When the reader of stdout goes away (| head), the tail ends quietly with 0."""
        child = self.start("events", "--name", "UserEvent", *self.connection())
        await self.wait_for_session(child, filters=1)
        child.transport.closeStdout()  # type: ignore[union-attr]
        self.fake.emit_event("UserEvent", UserEvent="One")
        result = await child.when_ended()
        self.assertEqual((result.code, result.error), (0, ""))

    # --- failures -------------------------------------------------------------------------------

    async def test_interrupted_one_shot(self) -> None:
        """Ctrl-C while an action waits: exit 130, 'interrupted', and the session logs off."""
        self.fake.delay_action("Ping", None)
        child = self.start("ping", *self.connection())
        await wait_for(reactor, lambda: bool(self.sent("Ping")), timeout=20, what="the Ping")
        child.signal(signal.SIGINT)
        result = await child.when_ended()
        self.assertEqual(
            (result.code, result.text, result.error), (130, "", "txami: interrupted\n")
        )
        self.assert_logged_off()

    async def test_action_timeout(self) -> None:
        """No answer within --timeout: exit 4, one line naming the action and the wait."""
        self.fake.delay_action("Ping", None)
        result = await self.run_txami("ping", "--timeout", "0.5", *self.connection())
        self.assertEqual(
            (result.code, result.text, result.error),
            (4, "", f"txami: Ping: no answer from {self.where} within 0.5 s\n"),
        )

    async def test_login_timeout(self) -> None:
        """A server that accepts and then says nothing: exit 4 after --timeout."""
        self.fake.stall()
        result = await self.run_txami("ping", "-t", "0.5", *self.connection())
        self.assertEqual(
            (result.code, result.error),
            (4, f"txami: connected to {self.where}, but the login got no answer within 0.5 s\n"),
        )

    async def test_cannot_connect(self) -> None:
        """Nothing listens on the port: exit 3, 'connection refused', no retry."""
        closed = listen(FakeAsterisk(reactor), reactor)
        number = closed.getHost().port
        await closed.stopListening()
        result = await self.run_txami("ping", "-h", "127.0.0.1", "-p", str(number), "-u", "cli")
        self.assertEqual(
            (result.code, result.text, result.error),
            (3, "", f"txami: cannot connect to 127.0.0.1:{number}: connection refused\n"),
        )

    async def test_secret_never_printed(self) -> None:
        """With --debug, neither a right nor a wrong secret shows; a refused login exits 3."""
        right, wrong = await gatherResults(
            [
                self.run_txami("--debug", "ping", *self.connection()),
                self.run_txami("ping", "--debug", *self.connection(), secret="wrong-" + SECRET),
            ]
        )
        self.assertEqual(right.code, 0, right)
        self.assertIn("logged in to AMI 9.0.0 as 'cli'", right.error)
        self.assertEqual(wrong.code, 3)
        self.assertIn(
            f"txami: {self.where}: login as 'cli' refused: Authentication failed\n", wrong.error
        )
        self.assertIn("Traceback", wrong.error)
        for result in (right, wrong):
            for stream in (result.out, result.err):
                self.assertNotIn(SECRET.encode(), stream)

    async def test_usage_error(self) -> None:
        """A secret on the command line is refused: exit 2, one line and the help hint."""
        result = await self.run_txami("ping", "--secret", SECRET, *self.connection())
        self.assertEqual(result.code, 2)
        self.assertEqual(
            result.error,
            "txami: --secret is not accepted (ps shows it to every user): use --secret-file "
            "PATH or set TXAMI_SECRET\nTry 'txami ping --help'.\n",
        )
        self.assertEqual(self.fake.actions_received, [])
