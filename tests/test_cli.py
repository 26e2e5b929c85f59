"""
In-process tests of txami.cli: the command line's parsing and checks, the
PBX it resolves to, output forms, exit codes, signals, and the opening of a
session (on a `MemoryReactorClock`).  tests/test_cli_process.py runs the
commands as real processes.
"""

from __future__ import annotations

import io
import os
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionRefusedError, DNSLookupError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txami.cli.context import Context
from txami.cli.events import name_filter, server_filters
from txami.cli.exitcodes import CLIError, Interrupted, failure_exit
from txami.cli.main import COMMANDS, TxamiOptions, _run, _Signals
from txami.cli.options import DEFAULT_TIMEOUT, Settings
from txami.cli.output import Output, OutputClosed, action_json, message_lines
from txami.cli.session import describe_reason, open_session
from txami.config import PBXConfig
from txami.errors import (
    ActionTimeout,
    AMIError,
    AuthenticationError,
    ConnectionLost,
    NotConnected,
    ProtocolError,
)
from txami.message import Message


class OptionsTestCase(SynchronousTestCase):
    """Parses command lines with a private HOME (no user's file) and environment."""

    def setUp(self) -> None:
        self.home = os.path.abspath(self.mktemp())
        os.makedirs(self.home)
        self.patch(os, "environ", {"HOME": self.home, "PATH": os.environ.get("PATH", "")})
        self.environ = {"TXAMI_SECRET": "s3cret"}

    def parse(self, *argv: str, environ: dict[str, str] | None = None) -> TxamiOptions:
        options = TxamiOptions(self.environ if environ is None else environ)
        options.parseOptions(list(argv))
        return options

    def settings(self, *argv: str) -> Settings:
        settings = self.parse(*argv).settings
        assert settings is not None
        return settings

    def refused(self, *argv: str, environ: dict[str, str] | None = None) -> str:
        return str(self.assertRaises(usage.UsageError, self.parse, *argv, environ=environ))

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.home, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path


class ConnectionOptionTests(OptionsTestCase):
    """Where the PBX is, from the command line."""

    def test_defaults(self) -> None:
        """--username alone: localhost:5038, plain login, $TXAMI_SECRET, the default timeout."""
        settings = self.settings("ping", "-u", "admin")
        pbx = settings.pbx
        self.assertEqual(
            (pbx.host, pbx.port, pbx.tls, pbx.auth, pbx.username, pbx.secret),
            ("localhost", 5038, False, "plain", "admin", "s3cret"),
        )
        self.assertEqual(
            (settings.timeout, settings.debug, settings.tls), (DEFAULT_TIMEOUT, False, None)
        )
        self.assertEqual(settings.where, "localhost:5038")

    def test_before_and_after_the_command(self) -> None:
        """Shared options may stand on either side of the command; those after it win."""
        settings = self.settings(
            "--host", "pbx1", "-p", "6000", "--debug", "ping", "-u", "admin", "--host", "pbx2"
        )
        self.assertEqual(
            (settings.pbx.host, settings.pbx.port, settings.debug), ("pbx2", 6000, True)
        )

    def test_secret_file(self) -> None:
        """--secret-file is read (its first line); it wins over $TXAMI_SECRET."""
        path = self.write("s", "from-file\n")
        self.assertEqual(
            self.settings("ping", "-u", "a", "--secret-file", path).pbx.secret, "from-file"
        )

    def test_refusals(self) -> None:
        """Each bad command line is refused with its own one-line reason."""
        cases = [
            (["ping", "-u", "a", "--secret", "x"], "--secret is not accepted"),
            (["ping", "-u", "a", "--port", "0"], "--port must be a number from 1 to 65535"),
            (["ping", "-u", "a", "--port", "http"], "--port must be a number from 1 to 65535"),
            (["ping", "-u", "a", "--auth", "digest"], "--auth must be plain or md5"),
            (["ping", "-u", "a", "--timeout", "0"], "--timeout must be a number of seconds"),
            (["ping", "-u", "a", "--timeout", "soon"], "--timeout must be a number of seconds"),
            (["ping", "-h", "pbx"], "--username is required"),
            (
                ["ping", "-u", "a", "--tls-ca", "/nonexistent.pem"],
                "--tls-ca /nonexistent.pem is not a file",
            ),
            (["ping", "-u", "a", "--secret-file", "/nonexistent"], "--secret-file: cannot read"),
            (
                ["ping", "-u", "a", "--pbx", "east"],
                "--username cannot be combined with --config or --pbx",
            ),
            (["ping"], "which PBX?"),
            ([], "give a command: ping, action, command, events"),
            (["frobnicate"], "Unknown command: frobnicate"),
            (["ping", "--bogus"], "option --bogus not recognized"),
        ]
        for argv, reason in cases:
            self.assertIn(reason, self.refused(*argv), argv)
        self.assertIn("no AMI secret", self.refused("ping", "-u", "a", environ={}))

    def test_tls(self) -> None:
        """--tls means port 5039 and client TLS options; a CA file that is no PEM is refused."""
        from tests.certs import TLS_SKIP

        if TLS_SKIP:
            raise self.skipTest(TLS_SKIP)
        settings = self.settings("ping", "-u", "a", "--tls")
        self.assertEqual((settings.pbx.port, settings.pbx.tls), (5039, True))
        self.assertIsNotNone(settings.tls)
        bad = self.write("bad.pem", "not a certificate\n")
        self.assertIn(
            f"the CA file {bad} holds no PEM certificate",
            self.refused("ping", "-u", "a", "--tls-ca", bad),
        )


class ConfigFileOptionTests(OptionsTestCase):
    """Where the PBX is, from a [pbx:NAME] section."""

    def setUp(self) -> None:
        super().setUp()
        secret = self.write("east.secret", "east-secret\n")
        self.text = (
            f"[pbx:east]\nhost = east.example\nusername = e\nsecret-file = {secret}\n"
            "events = call\nfilter = Event: Hangup\n\n"
            f"[pbx:west]\nhost = west.example\nport = 6038\nusername = w\nsecret-file = {secret}\n"
        )

    def test_config_and_pbx(self) -> None:
        """--config FILE --pbx NAME takes that section, keys and all."""
        path = self.write("pbxs.ini", self.text)
        settings = self.settings("--config", path, "ping", "--pbx", "west")
        self.assertEqual((settings.pbx.name, settings.where), ("west", "west.example:6038"))
        east = self.settings("ping", "-c", path, "--pbx", "east").pbx
        self.assertEqual(
            (east.events, east.filters, east.secret), ("call", ("Event: Hangup",), "east-secret")
        )

    def test_default_file(self) -> None:
        """~/.config/txami/txami.ini is read with --pbx alone, or with no option at all."""
        self.write(".config/txami/txami.ini", self.text)
        self.assertEqual(self.settings("ping", "--pbx", "east").pbx.host, "east.example")
        self.assertIn("has 2 PBXs: say which (east, west)", self.refused("ping"))
        self.assertIn(
            "has no [pbx:north] (it has: east, west)", self.refused("ping", "--pbx", "north")
        )
        self.assertEqual(self.settings("ping", "-u", "a").pbx.host, "localhost")

    def test_config_problems(self) -> None:
        """A broken file is refused with FILE:LINE of each problem; options cannot mix with it."""
        path = self.write("bad.ini", "[pbx:x]\nhost = h\nport = 99999\n")
        message = self.refused("ping", "--config", path)
        self.assertIn(f"{path}:3: [pbx:x] port must be a number from 1 to 65535", message)
        self.assertIn(f"{path}:1: [pbx:x] username is required", message)
        self.assertIn(
            "--host cannot be combined with --config or --pbx",
            self.refused("ping", "--config", path, "-h", "x"),
        )


class CommandOptionTests(OptionsTestCase):
    """Each command's own arguments and options."""

    def command(self, *argv: str) -> Any:
        return self.parse(*argv, "-u", "a").subOptions

    def test_action_headers(self) -> None:
        """Header=Value split at the first '='; repeats kept; options may follow them."""
        options = self.command(
            "action", "Originate", "Variable=A=1", "Variable=B=", "--json", "Async=true"
        )
        self.assertEqual(options["name"], "Originate")
        self.assertEqual(
            options["headers"], [("Variable", "A=1"), ("Variable", "B="), ("Async", "true")]
        )
        self.assertTrue(options["json"])
        after_dashes = self.parse("action", "-u", "a", "UserEvent", "--", "Body=--json").subOptions
        self.assertEqual(
            (after_dashes["headers"], after_dashes["json"]), ([("Body", "--json")], 0)
        )

    def test_action_refusals(self) -> None:
        """Headers that would break the framing, session actions and a missing name are refused."""
        cases = [
            (["action"], "give the action's NAME"),
            (["action", "Ping", "NoEquals"], "'NoEquals' is not Header=Value"),
            (["action", "Ping", "A=1\r\nAction: Originate"], "would inject"),
            (["action", "Ping", "A B: =1"], "is not a valid AMI header name"),
            (["action", "Ping", "=1"], "is not a valid AMI header name"),
            (["action", "Ping\nX"], "would inject"),
            (["action", "Login", "Username=x"], "txami logs in and off itself"),
            (["action", "logoff"], "txami logs in and off itself"),
            (["action", "Ping", "--json", "--jsonl"], "give --json or --jsonl, not both"),
        ]
        for argv, reason in cases:
            self.assertIn(reason, self.refused(*argv, "-u", "a"), argv)

    def test_command_words(self) -> None:
        """The CLI command may be one argument or several words."""
        self.assertEqual(
            self.command("command", "core show channels")["command"], "core show channels"
        )
        self.assertEqual(
            self.command("command", "core", "show", "uptime")["command"], "core show uptime"
        )
        self.assertIn("give the CLI command", self.refused("command", "-u", "a"))

    def test_events_options(self) -> None:
        """--name and --filter repeat; --count and --events are checked."""
        options = self.command(
            "events",
            "--name",
            "Hangup",
            "--name",
            "Queue*",
            "--filter",
            "Event: X",
            "-n",
            "3",
            "--events",
            "call,system",
        )
        self.assertEqual(
            (options["names"], options["filters"], options["count"], options["events"]),
            (["Hangup", "Queue*"], ["Event: X"], 3, "call,system"),
        )
        self.assertIn(
            "--count must be a whole number above 0",
            self.refused("events", "--count", "0", "-u", "a"),
        )
        self.assertIn(
            "events must be on, off or classes",
            self.refused("events", "--events", "call;x", "-u", "a"),
        )
        self.assertIn(
            "--filter must be one non-empty line",
            self.refused("events", "--filter", "", "-u", "a"),
        )

    def test_help_lists_every_command(self) -> None:
        """The top-level usage names each command; each command's usage starts with its own."""
        text = str(TxamiOptions({}))
        for name, (options, _, _) in COMMANDS.items():
            self.assertIn(name, text)
            self.assertTrue(str(options()).startswith(f"Usage: txami {name} "), name)
        self.assertIn("3 cannot connect or log in, 4 timeout", " ".join(text.split()))


class FilterTests(SynchronousTestCase):
    """The server-side filters made from --name patterns."""

    def test_name_filter(self) -> None:
        """A plain name or glob becomes a case-blind ^Event: regex; other characters none."""
        self.assertEqual(name_filter("Hangup"), "^Event: [Hh][Aa][Nn][Gg][Uu][Pp]")
        self.assertEqual(name_filter("Queue*"), "^Event: [Qq][Uu][Ee][Uu][Ee].*")
        self.assertEqual(name_filter("Dial?_2"), "^Event: [Dd][Ii][Aa][Ll]._2")
        self.assertIsNone(name_filter("[AB]gent"))
        self.assertIsNone(name_filter("Event: Hangup"))

    def test_matches_what_the_name_matches(self) -> None:
        """Each filter admits the event text of every name its pattern matches, in any case."""
        import re

        text = "Event: {}\r\nPrivilege: call,all\r\n"
        for pattern, names in [
            ("newexten", ["Newexten", "NewExten"]),
            ("Queue*", ["QueueMemberStatus", "Queue"]),
        ]:
            regex = re.compile(name_filter(pattern) or "")
            for name in names:
                self.assertTrue(regex.search(text.format(name)), (pattern, name))
            self.assertFalse(regex.search("Event: Hangup\r\nUserEvent: Newexten\r\n"))

    def test_all_or_nothing(self) -> None:
        """If one pattern cannot be a filter there are none (filters only ever add events)."""
        self.assertEqual(
            server_filters(["Hangup", "Newchannel"]),
            [
                "^Event: [Hh][Aa][Nn][Gg][Uu][Pp]",
                "^Event: [Nn][Ee][Ww][Cc][Hh][Aa][Nn][Nn][Ee][Ll]",
            ],
        )
        self.assertEqual(server_filters(["Hangup", "[AB]gent"]), [])
        self.assertEqual(server_filters([]), [])


class OutputTests(SynchronousTestCase):
    """The text and JSON forms, and the stream."""

    def test_message_lines(self) -> None:
        """Headers in wire order, repeats kept, values as they are, then a blank line."""
        message = Message([("Response", "Success"), ("Output", "  a  "), ("Output", "")])
        self.assertEqual(
            message_lines(message), ["Response: Success", "Output:   a  ", "Output: ", ""]
        )

    def test_action_json(self) -> None:
        """response, items and list_complete; a repeated header is a list."""
        response = Message.parse(b"Response: Success\r\nEventList: start")
        response.events = [Message([("Event", "PeerEntry"), ("V", "1"), ("V", "2")])]
        response.list_complete = Message([("Event", "PeerlistComplete"), ("ListItems", "1")])
        self.assertEqual(
            action_json(response),
            {
                "response": {"Response": "Success", "EventList": "start"},
                "items": [{"Event": "PeerEntry", "V": ["1", "2"]}],
                "list_complete": {"Event": "PeerlistComplete", "ListItems": "1"},
            },
        )
        self.assertEqual(
            action_json(Message([("Response", "Success")])),
            {"response": {"Response": "Success"}, "items": [], "list_complete": None},
        )

    def test_bytes_and_closed_stream(self) -> None:
        """Text goes out as UTF-8, other bytes unchanged; a closed stream is OutputClosed."""
        import io

        stream = io.BytesIO()
        Output(stream).lines(["caf\udce9", "é"])
        self.assertEqual(stream.getvalue(), b"caf\xe9\n\xc3\xa9\n")

        class Broken(io.BytesIO):
            def write(self, data: Any) -> int:
                raise BrokenPipeError()

        self.assertRaises(OutputClosed, Output(Broken()).line, "x")


class ExitCodeTests(SynchronousTestCase):
    """How txami's errors become exit codes and stderr lines."""

    def exit_of(self, error: Exception) -> CLIError:
        try:
            raise error
        except Exception:
            return failure_exit(Failure(), "pbx:5038")

    def test_codes(self) -> None:
        """AMIError 1, ActionTimeout 4, lost or no connection and refused login 3."""
        refused = Message([("Response", "Error"), ("Message", "No such channel")])
        cases = [
            (AMIError("Hangup", refused), 1, "Hangup failed: No such channel"),
            (ActionTimeout("Ping", "a.1", 2.5), 4, "Ping: no answer from pbx:5038 within 2.5 s"),
            (
                ConnectionLost("Ping", "a.1", Failure(ConnectionDone())),
                3,
                "the connection to pbx:5038 was lost while Ping was pending",
            ),
            (
                NotConnected("Ping", "not logged in"),
                3,
                "pbx:5038: cannot send Ping: not logged in",
            ),
            (
                AuthenticationError(
                    "Login",
                    Message([("Response", "Error"), ("Message", "Authentication failed")]),
                    "u",
                ),
                3,
                "pbx:5038: login as 'u' refused: Authentication failed",
            ),
        ]
        for error, code, message in cases:
            exit = self.exit_of(error)
            self.assertEqual(exit.code, code)
            self.assertIn(message, exit.message)

    def test_failed_command(self) -> None:
        """A failed Command reports the CLI's own lines, not 'Command output follows'."""
        response = Message(
            [
                ("Response", "Error"),
                ("Message", "Command output follows"),
                ("Output", "No such command 'x'"),
                ("Output", ""),
            ]
        )
        self.assertEqual(
            self.exit_of(AMIError("Command", response)).message, "No such command 'x'"
        )
        bare = Message([("Response", "Error"), ("Message", "Permission denied")])
        self.assertEqual(
            self.exit_of(AMIError("Command", bare)).message, "Command failed: Permission denied"
        )

    def test_unexpected_is_raised(self) -> None:
        """An error that is not txami's is not dressed up as one."""
        self.assertRaises(ZeroDivisionError, self.exit_of, ZeroDivisionError())

    def test_reasons(self) -> None:
        """Connection failures in a few words."""
        self.assertEqual(describe_reason(Failure(ConnectionRefusedError())), "connection refused")
        self.assertEqual(
            describe_reason(Failure(DNSLookupError("x"))), "the host name does not resolve"
        )
        self.assertEqual(
            describe_reason(Failure(ConnectionDone())), "the server closed the connection"
        )


def _settings(timeout: float = 5.0) -> Settings:
    pbx = PBXConfig(name="", username="admin", secret="adminsecret", host="127.0.0.1", port=5038)
    return Settings(pbx, None, timeout, False)


class ContextTests(SynchronousTestCase):
    """A signal ends every wait with Interrupted, and cancels what was awaited."""

    def test_wait(self) -> None:
        """A result passes through; a signal first: Interrupted, the awaited Deferred cancelled."""
        context = Context(MemoryReactorClock(), _settings(), Output(None), None)  # type: ignore[arg-type]
        done: Deferred[int] = Deferred()
        waited = context.wait(done)
        done.callback(7)
        self.assertEqual(self.successResultOf(waited), 7)
        cancelled: list[object] = []
        pending: Deferred[int] = Deferred(cancelled.append)
        waited = context.wait(pending)
        context.interrupt(2)
        self.assertEqual(self.failureResultOf(waited, Interrupted).value.signal_number, 2)
        self.assertEqual(cancelled, [pending])
        late_cancels: list[object] = []
        later: Deferred[int] = Deferred(late_cancels.append)
        self.failureResultOf(context.wait(later), Interrupted)
        self.assertEqual(late_cancels, [later])

    def test_failure_passes(self) -> None:
        """A failure of the awaited Deferred is the wait's failure."""
        context = Context(MemoryReactorClock(), _settings(), Output(None), None)  # type: ignore[arg-type]
        failing: Deferred[int] = Deferred()
        waited = context.wait(failing)
        failing.errback(ValueError("x"))
        self.failureResultOf(waited, ValueError)

    def test_second_signal_aborts(self) -> None:
        """A second signal drops the session's connection at once (a slow Logoff, say)."""
        context = Context(MemoryReactorClock(), _settings(), Output(None), None)  # type: ignore[arg-type]
        aborted: list[bool] = []

        class Protocol:
            def abort(self) -> None:
                aborted.append(True)

        context._protocol = Protocol()  # type: ignore[assignment]
        context.interrupt(2)
        self.assertEqual(aborted, [])
        context.interrupt(2)
        self.assertEqual(aborted, [True])


class RunTests(SynchronousTestCase):
    """How a command's end becomes stderr and an exit status (`txami.cli.main._run`)."""

    def run_body(self, error: Exception) -> tuple[int, str]:
        """The exit status and stderr of a command whose body raises ``error``."""

        async def body(context: Context) -> int:
            raise error

        reactor = MemoryReactorClock()
        context = Context(reactor, _settings(), Output(None), None)  # type: ignore[arg-type]
        stderr = io.StringIO()
        ran = Deferred.fromCoroutine(_run(reactor, context, body, _Signals(), stderr))
        code = self.failureResultOf(ran, SystemExit).value.code
        assert isinstance(code, int)
        return code, stderr.getvalue()

    def test_errors(self) -> None:
        """Known txami errors end with their code; any other error with 1, as unexpected."""
        code, stderr = self.run_body(ConnectionLost("Ping", "a.1", Failure(ConnectionDone())))
        self.assertEqual(code, 3)
        self.assertTrue(
            stderr.startswith("txami: the connection to 127.0.0.1:5038 was lost while Ping"),
            stderr,
        )
        self.assertEqual(
            self.run_body(ZeroDivisionError("x")),
            (1, "txami: unexpected error: ZeroDivisionError: x\n"),
        )
        self.assertEqual(
            self.run_body(ProtocolError("odd")),
            (1, "txami: unexpected error: ProtocolError: odd\n"),
        )


class OpenSessionTests(SynchronousTestCase):
    """open_session's outcomes, on a memory reactor."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.opened = open_session(self.reactor, _settings(timeout=5.0))
        [(host, port, self.factory, timeout, _)] = self.reactor.tcpClients
        self.assertEqual((host, port, timeout), ("127.0.0.1", 5038, 5.0))

    def connect(self) -> tuple[Any, StringTransport]:
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def error(self) -> CLIError:
        return self.failureResultOf(self.opened, CLIError).value

    def test_refused(self) -> None:
        """A refused connection is 3 at once, and nothing retries."""
        connector = self.reactor.connectors[0]
        self.factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError()))
        error = self.error()
        self.assertEqual(
            (error.code, error.message),
            (3, "cannot connect to 127.0.0.1:5038: connection refused"),
        )
        self.assertTrue(self.factory.stopped)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_no_connection_in_time(self) -> None:
        """No connection within the timeout is 3."""
        self.reactor.advance(5.0)
        error = self.error()
        self.assertEqual(
            (error.code, error.message), (3, "cannot connect to 127.0.0.1:5038 within 5 s")
        )

    def test_no_login_answer_in_time(self) -> None:
        """Connected, but the Login unanswered within the timeout: 4."""
        self.connect()
        self.reactor.advance(5.0)
        error = self.error()
        self.assertEqual(
            (error.code, error.message),
            (4, "connected to 127.0.0.1:5038, but the login got no answer within 5 s"),
        )

    def test_closed_before_login(self) -> None:
        """The server closes before answering the Login: 3, saying so."""
        protocol, _ = self.connect()
        protocol.connectionLost(Failure(ConnectionDone()))
        self.factory.clientConnectionLost(self.reactor.connectors[0], Failure(ConnectionDone()))
        error = self.error()
        self.assertEqual(
            (error.code, error.message),
            (3, "no AMI login at 127.0.0.1:5038: the server closed the connection"),
        )

    def test_logged_in(self) -> None:
        """A successful login fires with the factory; its actions then use the timeout."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"Asterisk Call Manager/9.0.0\r\n")
        login = Message.parse(transport.value().split(b"\r\n\r\n")[0])
        self.assertEqual((login["Username"], login["Events"]), ("admin", "off"))
        protocol.dataReceived(
            f"Response: Success\r\nActionID: {login.action_id}\r\n"
            "Message: Authentication accepted\r\n\r\n".encode()
        )
        self.assertIs(self.successResultOf(self.opened), self.factory)
        self.assertEqual((self.factory.timeout, protocol.timeout), (5.0, 5.0))
        self.assertEqual(
            [call for call in self.reactor.getDelayedCalls() if call.func.__name__ == "too_late"],
            [],
        )


class ConsoleScriptTests(SynchronousTestCase):
    """The wheel installs the ``txami`` console script."""

    from tests.test_packaging import SKIP as skip  # noqa: N811

    def test_entry_point(self) -> None:
        """entry_points.txt names txami.cli:main as the txami console script."""
        import zipfile

        from tests.test_packaging import build_wheel

        with zipfile.ZipFile(build_wheel()) as wheel:
            [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
            text = wheel.read(name).decode()
        self.assertIn("[console_scripts]\ntxami = txami.cli:main\n", text)
