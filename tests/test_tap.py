"""Tests for txami.tap: every option, every refused input, and makeService's wiring."""

from __future__ import annotations

import io
import os
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

import txami.daemon.options
from tests.certs import TLS_SKIP, make_pki
from txami.daemon.eventlog import EventLog
from txami.daemon.options import build_service
from txami.daemon.service import AMIClientService, BridgeService, HTTPService, PBXSession
from txami.tap import Options, makeService


class OptionsTestCase(SynchronousTestCase):
    """Helpers: files in a temp dir and a controlled environment."""

    def setUp(self) -> None:
        self.dir = os.path.abspath(self.mktemp())
        os.mkdir(self.dir)
        self.env: dict[str, str] = {}
        self.patch(os, "environ", self.env)

    def file(self, name: str, data: bytes) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def parse(self, *args: str) -> Options:
        options = Options()
        options.parseOptions(list(args))
        return options

    def refused(self, message: str, *args: str) -> None:
        """Parsing ``args`` raises UsageError with exactly ``message``."""
        with self.assertRaises(usage.UsageError) as caught:
            self.parse(*args)
        self.assertEqual(str(caught.exception), message)


class ConnectionOptionTests(OptionsTestCase):
    """--host, --port, --username, --auth, --events, --filter, --tls, --tls-ca."""

    def setUp(self) -> None:
        super().setUp()
        self.env["TXAMI_SECRET"] = "from-env"

    def test_defaults(self) -> None:
        """Only --username: localhost:5038, plain auth, events on, no filters, no sinks."""
        options = self.parse("--username", "admin")
        self.assertEqual(
            (
                options["host"],
                options["port"],
                options["username"],
                options["auth"],
                options["events"],
                options["filters"],
                options["tls"],
                options["log-events"],
                options["http"],
                options["demo"],
            ),
            ("localhost", 5038, "admin", "plain", "on", [], 0, None, None, 0),
        )
        self.assertEqual(
            (options.secret, options.tls_options, options.http_token), ("from-env", None, None)
        )

    def test_short_options(self) -> None:
        """-h is --host (usage.Options leaves it free), -p is --port, -u is --username."""
        options = self.parse("-h", "pbx.example", "-p", "5040", "-u", "bridge")
        self.assertEqual(
            (options["host"], options["port"], options["username"]),
            ("pbx.example", 5040, "bridge"),
        )
        self.assertIn("-h, --host=", str(Options()))

    def test_port_bounds(self) -> None:
        """Ports 1 and 65535 are accepted."""
        self.assertEqual(self.parse("-u", "a", "--port", "1")["port"], 1)
        self.assertEqual(self.parse("-u", "a", "--port", "65535")["port"], 65535)

    def test_bad_ports(self) -> None:
        """A port that is not a number from 1 to 65535 is refused."""
        for port in ["0", "65536", "-1", "x", "50 38", ""]:
            self.refused(
                f"--port must be a number from 1 to 65535, not {port!r}", "-u", "a", "--port", port
            )

    def test_missing_username(self) -> None:
        """Without --username (and --demo) parsing fails."""
        self.refused("--username is required (the AMI user from manager.conf)")

    def test_auth(self) -> None:
        """--auth md5 is accepted; anything but plain and md5 is refused."""
        self.assertEqual(self.parse("-u", "a", "--auth", "md5")["auth"], "md5")
        self.refused("--auth must be plain or md5, not 'sha1'", "-u", "a", "--auth", "sha1")
        self.refused("--auth must be plain or md5, not 'MD5'", "-u", "a", "--auth", "MD5")

    def test_events(self) -> None:
        """--events takes on, off or a comma list of classes, and nothing else."""
        for mask in ["on", "off", "call", "call,system,user"]:
            self.assertEqual(self.parse("-u", "a", "--events", mask)["events"], mask)
        self.refused("--events must be one line", "-u", "a", "--events", "on\r\nAction: Logoff")
        for mask in ["call, system", "call,", ""]:
            self.refused(
                f"--events must be on, off or classes such as call,system, not {mask!r}",
                "-u",
                "a",
                "--events",
                mask,
            )

    def test_filters(self) -> None:
        """--filter is repeatable and keeps the order given."""
        options = self.parse(
            "-u", "a", "--filter", "Event: Hangup", "--filter", "!Channel: Local/.*"
        )
        self.assertEqual(options["filters"], ["Event: Hangup", "!Channel: Local/.*"])

    def test_bad_filters(self) -> None:
        """An empty filter, or one holding CR, LF or NUL, is refused."""
        for rule in ["", "Event: Hangup\r\nAction: Logoff", "a\nb", "a\0b"]:
            self.refused("--filter must be one non-empty line", "-u", "a", "--filter", rule)

    def test_tls(self) -> None:
        """--tls makes client TLS options and moves the default port to 5039."""
        if TLS_SKIP:
            raise self.skipTest(TLS_SKIP)
        options = self.parse("-u", "a", "--tls")
        self.assertEqual((options["tls"], options["port"]), (1, 5039))
        self.assertIsNot(options.tls_options, None)
        self.assertEqual(self.parse("-u", "a", "--tls", "-p", "6000")["port"], 6000)

    def test_tls_ca(self) -> None:
        """--tls-ca loads the PEM CA and implies --tls."""
        if TLS_SKIP:
            raise self.skipTest(TLS_SKIP)
        pki = make_pki(os.path.join(self.dir, "pki"))
        options = self.parse("-u", "a", "--tls-ca", pki.ca_pem)
        self.assertEqual((options["tls"], options["port"]), (True, 5039))
        self.assertIsNot(options.tls_options, None)

    def test_bad_tls_ca(self) -> None:
        """A missing CA file, or one without a valid PEM certificate, is refused."""
        if TLS_SKIP:
            raise self.skipTest(TLS_SKIP)
        missing = os.path.join(self.dir, "missing.pem")
        self.refused(
            f"--tls-ca {missing} is not a file",
            "-u",
            "a",
            "--tls-ca",
            missing,
        )
        junk = self.file("junk.pem", b"not a certificate\n")
        self.refused(
            f"--tls-ca {junk} holds no valid PEM certificate", "-u", "a", "--tls-ca", junk
        )
        broken = self.file(
            "broken.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        )
        self.refused(
            f"--tls-ca {broken} holds no valid PEM certificate", "-u", "a", "--tls-ca", broken
        )


class SecretTests(OptionsTestCase):
    """--secret-file, TXAMI_SECRET, and the refused --secret."""

    def test_secret_file(self) -> None:
        """The file's line, without its line ending, is the secret."""
        path = self.file("secret", b"adminsecret\n")
        self.assertEqual(self.parse("-u", "a", "--secret-file", path).secret, "adminsecret")

    def test_secret_file_beats_environment(self) -> None:
        """With both, --secret-file wins (the command line beats the environment)."""
        self.env["TXAMI_SECRET"] = "from-env"
        path = self.file("secret", b"from-file")
        self.assertEqual(self.parse("-u", "a", "--secret-file", path).secret, "from-file")

    def test_environment(self) -> None:
        """Without --secret-file, TXAMI_SECRET is the secret."""
        self.env["TXAMI_SECRET"] = "from-env"
        self.assertEqual(self.parse("-u", "a").secret, "from-env")

    def test_no_secret(self) -> None:
        """Neither a file nor the variable (or an empty variable): refused."""
        self.refused("no AMI secret: give --secret-file PATH or set TXAMI_SECRET", "-u", "a")
        self.env["TXAMI_SECRET"] = ""
        self.refused("no AMI secret: give --secret-file PATH or set TXAMI_SECRET", "-u", "a")

    def test_unreadable_secret_file(self) -> None:
        """A secret file that cannot be read is refused, naming it and why."""
        missing = os.path.join(self.dir, "nope")
        self.refused(
            f"cannot read --secret-file {missing}: No such file or directory",
            "-u",
            "a",
            "--secret-file",
            missing,
        )
        self.refused(
            f"cannot read --secret-file {self.dir}: Is a directory",
            "-u",
            "a",
            "--secret-file",
            self.dir,
        )

    def test_bad_secret_files(self) -> None:
        """Empty, multi-line and non-UTF-8 secret files are refused."""
        empty = self.file("empty", b"\n")
        self.refused(f"--secret-file {empty} is empty", "-u", "a", "--secret-file", empty)
        two = self.file("two", b"one\ntwo\n")
        self.refused(f"--secret-file {two} must hold one line", "-u", "a", "--secret-file", two)
        latin = self.file("latin", b"caf\xe9\n")
        self.refused(f"--secret-file {latin} is not UTF-8 text", "-u", "a", "--secret-file", latin)

    def test_secret_option_refused(self) -> None:
        """--secret on the command line is refused with the reason and the alternatives."""
        self.refused(
            "--secret is not accepted (ps shows it to every user): "
            "use --secret-file PATH or set TXAMI_SECRET",
            "-u",
            "a",
            "--secret",
            "adminsecret",
        )

    def test_secrets_not_in_options_repr(self) -> None:
        """Neither the secret nor the token is in the options' repr or str."""
        secret = self.file("secret", b"very-secret-1\n")
        token = self.file("token", b"very-secret-2\n")
        options = self.parse(
            "-u", "a", "--secret-file", secret, "--http", "tcp:0", "--http-token-file", token
        )
        self.assertEqual((options.secret, options.http_token), ("very-secret-1", "very-secret-2"))
        for text in (repr(options), str(options), repr(dict(options))):
            self.assertNotIn("very-secret", text)


class SinkOptionTests(OptionsTestCase):
    """--log-events and its rotation, --http and --http-token-file."""

    def setUp(self) -> None:
        super().setUp()
        self.env["TXAMI_SECRET"] = "x"

    def test_log_events(self) -> None:
        """--log-events takes - (stdout) or a file in a writable directory."""
        self.assertEqual(self.parse("-u", "a", "--log-events", "-")["log-events"], "-")
        path = os.path.join(self.dir, "events.jsonl")
        options = self.parse("-u", "a", "--log-events", path)
        self.assertEqual(
            (options["log-events"], options["log-events-rotate"], options["log-events-keep"]),
            (path, 10_000_000, 10),
        )

    def test_stdout_needs_nodaemon(self) -> None:
        """--log-events - is refused when twistd daemonizes (no -n), accepted with -n."""
        options = Options()
        options.parent = {"nodaemon": False}  # type: ignore[assignment]
        with self.assertRaises(usage.UsageError) as caught:
            options.parseOptions(["-u", "a", "--log-events", "-"])
        self.assertEqual(
            str(caught.exception), "--log-events - needs twistd -n (a daemon has no stdout)"
        )
        options = Options()
        options.parent = {"nodaemon": True}  # type: ignore[assignment]
        options.parseOptions(["-u", "a", "--log-events", "-"])
        self.assertEqual(options["log-events"], "-")

    def test_bad_log_events(self) -> None:
        """A missing directory, or a directory as the path, is refused."""
        path = os.path.join(self.dir, "no", "events.jsonl")
        self.refused(
            f"cannot write --log-events {path}: no directory {os.path.dirname(path)}",
            "-u",
            "a",
            "--log-events",
            path,
        )
        self.refused(
            f"--log-events {self.dir} is a directory", "-u", "a", "--log-events", self.dir
        )

    def test_unwritable_log_events(self) -> None:
        """A file that cannot be written is refused (access is denied by a stand-in, so
        that the test holds for root too)."""
        path = self.file("events.jsonl", b"")
        asked: list[tuple[str, int]] = []

        def access(target: str, mode: int) -> bool:
            asked.append((target, mode))
            return False

        self.patch(txami.daemon.options.os, "access", access)
        self.refused(
            f"cannot write --log-events {path}: permission denied", "-u", "a", "--log-events", path
        )
        self.assertEqual(asked, [(path, os.W_OK)])

    def test_rotation_options(self) -> None:
        """--log-events-rotate and --log-events-keep take whole numbers above 0."""
        options = self.parse("-u", "a", "--log-events-rotate", "1000", "--log-events-keep", "3")
        self.assertEqual((options["log-events-rotate"], options["log-events-keep"]), (1000, 3))
        for name in ("log-events-rotate", "log-events-keep"):
            for value in ("0", "-5", "many"):
                self.refused(
                    f"--{name} must be a whole number above 0, not {value!r}",
                    "-u",
                    "a",
                    f"--{name}",
                    value,
                )

    def test_http_loopback_without_token(self) -> None:
        """Loopback TCP (v4, v6, localhost) and UNIX sockets need no token."""
        for endpoint in [
            "tcp:8088:interface=127.0.0.1",
            "tcp:8088:interface=127.0.0.2",
            "tcp:8088:interface=localhost",
            "tcp6:8088:interface=\\:\\:1",
            "unix:" + os.path.join(self.dir, "bridge.sock"),
        ]:
            options = self.parse("-u", "a", "--http", endpoint)
            self.assertEqual((options["http"], options.http_token), (endpoint, None))

    def test_http_beyond_loopback_needs_token(self) -> None:
        """Listening on every or a public interface without a token is refused."""
        for endpoint in [
            "tcp:8088",
            "tcp:8088:interface=0.0.0.0",
            "tcp:8088:interface=192.0.2.10",
            "tcp6:8088",
        ]:
            self.refused(
                f"--http {endpoint} listens beyond loopback: give --http-token-file "
                "or --http-acl, or listen on interface=127.0.0.1",
                "-u",
                "a",
                "--http",
                endpoint,
            )

    def test_http_with_token(self) -> None:
        """With a token file, any interface is allowed and the token is read."""
        token = self.file("token", b"  tok-en \n")
        options = self.parse("-u", "a", "--http", "tcp:8088", "--http-token-file", token)
        self.assertEqual(options.http_token, "tok-en")

    def test_bad_http_endpoint(self) -> None:
        """An endpoint string Twisted cannot parse is refused."""
        with self.assertRaises(usage.UsageError) as caught:
            self.parse("-u", "a", "--http", "nosuchkind:8088")
        self.assertTrue(
            str(caught.exception).startswith("bad --http endpoint 'nosuchkind:8088': ")
        )
        with self.assertRaises(usage.UsageError):
            self.parse("-u", "a", "--http", "tcp:notaport:interface=127.0.0.1")

    def test_bad_token_files(self) -> None:
        """A token file without --http, missing or empty is refused."""
        token = self.file("token", b"t\n")
        self.refused("--http-token-file needs --http", "-u", "a", "--http-token-file", token)
        empty = self.file("empty", b"")
        self.refused(
            f"--http-token-file {empty} is empty",
            "-u",
            "a",
            "--http",
            "tcp:8088",
            "--http-token-file",
            empty,
        )
        missing = os.path.join(self.dir, "missing")
        self.refused(
            f"cannot read --http-token-file {missing}: No such file or directory",
            "-u",
            "a",
            "--http",
            "tcp:8088",
            "--http-token-file",
            missing,
        )


class DemoOptionTests(OptionsTestCase):
    """--demo and what it cannot be combined with."""

    def test_demo_alone(self) -> None:
        """--demo needs no username, secret or host."""
        options = self.parse("--demo", "--log-events", "-")
        self.assertEqual((options["demo"], options["username"], options.secret), (1, None, ""))

    def test_demo_with_session_options(self) -> None:
        """--auth, --events and --filter still apply with --demo."""
        options = self.parse(
            "--demo", "--auth", "md5", "--events", "call", "--filter", "Event: Hangup"
        )
        self.assertEqual(
            (options["auth"], options["events"], options["filters"]),
            ("md5", "call", ["Event: Hangup"]),
        )

    def test_demo_conflicts(self) -> None:
        """--demo with any option naming a real server is refused, naming that option."""
        secret = self.file("secret", b"x")
        for args in [
            ("--host", "pbx"),
            ("-h", "pbx"),
            ("--port", "5038"),
            ("--tls",),
            ("--tls-ca", secret),
            ("--username", "admin"),
            ("--secret-file", secret),
        ]:
            name = {"-h": "host"}.get(args[0], args[0][2:])
            self.refused(
                f"--demo runs its own server and cannot be combined with --{name}", "--demo", *args
            )


class _FailingEndpoint:
    """A server endpoint whose port is taken."""

    def listen(self, factory: object) -> Deferred[object]:
        return fail(CannotListenError("127.0.0.1", 8088, OSError(98, "Address already in use")))


class MakeServiceTests(OptionsTestCase):
    """makeService / build_service: what the options turn into."""

    def setUp(self) -> None:
        super().setUp()
        self.env["TXAMI_SECRET"] = "adminsecret"
        self.reactor = MemoryReactorClock()

    def build(self, *args: str) -> BridgeService:
        return build_service(self.parse(*args), self.reactor, stdout=io.StringIO())

    def test_minimal(self) -> None:
        """Only the AMI client; it connects to host:port on start and stops the factory on stop."""
        bridge = self.build(
            "-u", "admin", "-h", "pbx.example", "-p", "5040", "--filter", "Event: Hangup"
        )
        self.assertEqual([type(s) for s in bridge], [PBXSession])
        self.assertEqual([type(s) for s in bridge.only], [AMIClientService])
        factory = bridge.factory
        self.assertEqual(
            (factory.username, factory.auth, factory.login_events, factory.filters),
            ("admin", "plain", "on", ["Event: Hangup"]),
        )
        bridge.startService()
        [(host, port, connected_factory, timeout, _)] = self.reactor.tcpClients
        self.assertEqual((host, port, timeout), ("pbx.example", 5040, 30.0))
        self.assertIs(connected_factory, factory)
        d = bridge.stopService()
        self.assertIsNone(self.successResultOf(d))
        self.assertTrue(factory.stopped)

    def test_all_sinks(self) -> None:
        """Event log, HTTP and client, in that start order; HTTP listens on start."""
        path = os.path.join(self.dir, "events.jsonl")
        bridge = self.build(
            "-u", "admin", "--log-events", path, "--http", "tcp:8088:interface=127.0.0.1"
        )
        self.assertEqual([type(s) for s in bridge], [EventLog, HTTPService, PBXSession])
        self.assertEqual(bridge.event_log.path if bridge.event_log else None, path)
        bridge.startService()
        [(port, _site, _, interface)] = self.reactor.tcpServers
        self.assertEqual((port, interface), (8088, "127.0.0.1"))
        self.assertTrue(os.path.exists(path))
        self.successResultOf(bridge.stopService())

    def test_stdout_log(self) -> None:
        """--log-events - writes to the stream makeService was given."""
        stream = io.StringIO()
        bridge = build_service(
            self.parse("-u", "a", "--log-events", "-"), self.reactor, stdout=stream
        )
        assert bridge.event_log is not None
        self.assertIs(bridge.event_log.stream, stream)

    def test_tls(self) -> None:
        """--tls connects with connectSSL and the options' TLS context."""
        if TLS_SKIP:
            raise self.skipTest(TLS_SKIP)
        options = self.parse("-u", "admin", "--tls")
        bridge = build_service(options, self.reactor, stdout=io.StringIO())
        bridge.startService()
        [(host, port, _, context, timeout, _)] = self.reactor.sslClients
        self.assertEqual((host, port, timeout), ("localhost", 5039, 30.0))
        self.assertIs(context, options.tls_options)
        self.successResultOf(bridge.stopService())

    def test_stop_order(self) -> None:
        """Children stop in reverse: the AMI client first, the event log last."""
        path = os.path.join(self.dir, "events.jsonl")
        bridge = self.build(
            "-u", "admin", "--log-events", path, "--http", "tcp:8088:interface=127.0.0.1"
        )
        stopped: list[str] = []
        for child in bridge:
            original = child.stopService

            def record(original: Any = original, name: str = type(child).__name__) -> Any:
                stopped.append(name)
                return original()

            child.stopService = record  # type: ignore[method-assign]
        bridge.startService()
        self.successResultOf(bridge.stopService())
        self.assertEqual(stopped, ["PBXSession", "HTTPService", "EventLog"])
        self.assertFalse(bridge.running)

    def test_stop_goes_on_after_a_failure(self) -> None:
        """A PBX or child that fails to stop is logged; the children after it still stop."""
        path = os.path.join(self.dir, "events.jsonl")
        bridge = self.build(
            "-u", "admin", "--log-events", path, "--http", "tcp:8088:interface=127.0.0.1"
        )
        bridge.startService()
        http = bridge.http
        assert http is not None and bridge.event_log is not None
        http.stopService = lambda: fail(RuntimeError("cannot stop"))  # type: ignore[method-assign]
        bridge.only.stopService = lambda: fail(KeyError("no"))  # type: ignore[method-assign]
        self.assertIsNone(self.successResultOf(bridge.stopService()))
        self.assertFalse(bridge.event_log.running)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)

    def test_health_before_connecting(self) -> None:
        """Before any connection, health reports nothing connected and nothing counted."""
        bridge = self.build("-u", "admin")
        self.assertEqual(
            bridge.health(),
            {
                "pbx": "default",
                "connected": False,
                "logged_in": False,
                "ami_version": None,
                "username": "admin",
                "uptime": 0.0,
                "reconnects": 0,
                "connects": 0,
                "logins": 0,
                "disconnects": 0,
                "events_received": 0,
                "actions_sent": 0,
                "last_error": None,
            },
        )
        self.assertIn('txami_connected{pbx="default"} 0\n', bridge.metrics.render())
        bridge.startService()
        self.reactor.advance(2.5)
        self.assertEqual(bridge.health()["uptime"], 2.5)
        self.successResultOf(bridge.stopService())

    def test_listen_failure_raises(self) -> None:
        """An HTTP endpoint that cannot listen makes startService raise (twistd then exits)."""
        bridge = self.build("-u", "admin")
        endpoint = _FailingEndpoint()
        http = bridge.add_http(endpoint, None)  # type: ignore[arg-type]
        with self.assertRaises(CannotListenError):
            http.privilegedStartService()

    def test_make_service(self) -> None:
        """makeService (the plugin's entry point) gives a BridgeService on the given reactor."""
        service = makeService(self.parse("-u", "admin"), self.reactor)
        self.assertIsInstance(service, BridgeService)

    def record_gc(self) -> list[str]:
        """Replace the options module's `gc` with one that records what is called."""
        calls: list[str] = []

        class RecordingGC:
            def collect(self) -> int:
                calls.append("collect")
                return 0

            def freeze(self) -> None:
                calls.append("freeze")

        self.patch(txami.daemon.options, "gc", RecordingGC())
        return calls

    def test_make_service_freezes_for_twistd(self) -> None:
        """On the global reactor (twistd's call) makeService collects, then freezes the objects."""
        calls = self.record_gc()
        built: list[BridgeService] = []
        real_build = txami.daemon.options.build_service

        def build(*args: Any, **kwargs: Any) -> BridgeService:
            self.assertEqual(calls, [])
            built.append(real_build(*args, **kwargs))
            return built[0]

        self.patch(txami.daemon.options, "build_service", build)
        service = makeService(self.parse("-u", "admin"))
        self.assertEqual((service, calls), (built[0], ["collect", "freeze"]))

    def test_make_service_given_reactor_leaves_gc(self) -> None:
        """With a reactor given (a program or a test builds it), makeService leaves gc alone."""
        calls = self.record_gc()
        makeService(self.parse("-u", "admin"), self.reactor)
        self.assertEqual(calls, [])
