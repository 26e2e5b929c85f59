"""
End-to-end tests of the daemon on 127.0.0.1: the real reactor for I/O only,
txami's fake Asterisk as the PBX, and Twisted's HTTP client as the consumer;
then ``twistd -n txami --demo`` as a real child process.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers

from tests.test_plugin import ROOT, keep_checkout_clean
from txami.daemon.options import build_service
from txami.daemon.service import BridgeService
from txami.tap import Options
from txami.testing import FakeAsterisk, listen

TOKEN = "e2e-token-0123456789"


class _SSEReader(Protocol):
    """Collects a Server-Sent Events body; fires ``found`` with the first event named ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.buffer = b""
        self.found: Deferred[dict[str, Any]] = Deferred()
        self.ended: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\n\n" in self.buffer:
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            if not block.startswith(b"data: ") or self.found.called:
                continue
            event = json.loads(block[6:])
            if event.get("Event") == self.name:
                self.found.callback(event)

    def connectionLost(self, reason: Failure) -> None:
        self.ended.callback(None)


class BridgeEndToEndTests(TestCase):
    """The whole bridge against the fake server, over real sockets on 127.0.0.1."""

    timeout = 20

    def setUp(self) -> Deferred[Any]:
        self.fake = FakeAsterisk(reactor)
        self.ami_port = listen(self.fake, reactor)
        self.addCleanup(self.ami_port.stopListening)
        self.addCleanup(self.fake.stop)
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        self.log_path = os.path.join(directory, "events.jsonl")
        token_path = os.path.join(directory, "token")
        with open(token_path, "w") as f:
            f.write(TOKEN + "\n")
        self.patch(os, "environ", {"TXAMI_SECRET": "adminsecret"})
        options = Options()
        options.parseOptions(
            [
                "-h",
                "127.0.0.1",
                "-p",
                str(self.ami_port.getHost().port),
                "-u",
                "admin",
                "--log-events",
                self.log_path,
                "--http",
                "tcp:0:interface=127.0.0.1",
                "--http-token-file",
                token_path,
            ]
        )
        self.bridge: BridgeService = build_service(options, reactor, stdout=io.StringIO())
        self.bridge.startService()
        self.addCleanup(self.stop_bridge)
        assert self.bridge.http is not None and self.bridge.http.listening is not None
        self.base = f"http://127.0.0.1:{self.bridge.http.listening.getHost().port}"  # type: ignore[attr-defined]
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.agent = Agent(reactor, pool=self.pool)
        return self.bridge.factory.when_ready()

    def stop_bridge(self) -> Deferred[None] | None:
        if self.bridge.running:
            return self.bridge.stopService()
        return None

    def request(
        self, method: bytes, path: str, body: bytes | None = None, token: str | None = TOKEN
    ) -> Deferred[Any]:
        headers = Headers()
        if token is not None:
            headers.addRawHeader(b"Authorization", b"Bearer " + token.encode())
        producer = FileBodyProducer(io.BytesIO(body)) if body is not None else None
        return self.agent.request(method, (self.base + path).encode(), headers, producer)

    @inlineCallbacks
    def call(
        self, method: bytes, path: str, body: bytes | None = None, token: str | None = TOKEN
    ) -> Any:
        response = yield self.request(method, path, body, token)
        data = yield readBody(response)
        return response.code, data

    @inlineCallbacks
    def test_event_reaches_log_and_stream(self) -> Any:
        """An event the server emits is one JSON line in the log and one SSE data line."""
        response = yield self.request(b"GET", "/events?name=userevent")
        self.assertEqual(response.code, 200)
        reader = _SSEReader("UserEvent")
        response.deliverBody(reader)
        reached = self.fake.emit_event("UserEvent", UserEvent="TxamiE2E", Data="hello")
        self.assertEqual(reached, 1)
        self.fake.emit_event("Newchannel", Channel="PJSIP/100-00000001")
        event = yield reader.found
        self.assertEqual((event["UserEvent"], event["Data"]), ("TxamiE2E", "hello"))
        with open(self.log_path) as f:
            lines = [json.loads(line) for line in f]
        # The fake, like Asterisk, first sends FullyBooted and SuccessfulAuth.
        self.assertEqual(
            [(e["Event"], e.get("UserEvent")) for e in lines],
            [
                ("FullyBooted", None),
                ("SuccessfulAuth", None),
                ("UserEvent", "TxamiE2E"),
                ("Newchannel", None),
            ],
        )
        self.assertEqual(lines[2], event)
        reader.transport.stopProducing()  # type: ignore[attr-defined]
        yield reader.ended

    @inlineCallbacks
    def test_non_utf8_event(self) -> Any:
        """An event holding bytes that are not UTF-8 is logged and streamed, byte for byte."""
        response = yield self.request(b"GET", "/events")
        reader = _SSEReader("UserEvent")
        response.deliverBody(reader)
        self.fake.send_raw(
            b"Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: Raw\r\nData: caf\xe9\r\n\r\n"
        )
        event = yield reader.found
        self.assertEqual(event["Data"].encode("utf-8", "surrogateescape"), b"caf\xe9")
        with open(self.log_path, "rb") as f:
            self.assertIn(b'"Data":"caf\\udce9"', f.read())
        reader.transport.stopProducing()  # type: ignore[attr-defined]
        yield reader.ended

    @inlineCallbacks
    def test_ping(self) -> Any:
        """POST /actions/Ping round-trips to the server and back as JSON."""
        code, body = yield self.call(b"POST", "/actions/Ping", b"{}")
        self.assertEqual(code, 200)
        answer = json.loads(body)
        self.assertEqual(
            (answer["response"]["Response"], answer["response"]["Ping"]), ("Success", "Pong")
        )
        self.assertEqual((answer["events"], answer["list_complete"]), ([], None))
        [(_, ping)] = [(s, a) for s, a in self.fake.actions_received if a.name == "Ping"]
        self.assertEqual(ping.action_id, answer["response"]["ActionID"])

    @inlineCallbacks
    def test_list_action(self) -> Any:
        """IAXpeerlist and IAXpeers (items without ActionID) return their items and end event."""
        for action in ("IAXpeerlist", "IAXpeers"):
            code, body = yield self.call(b"POST", "/actions/" + action)
            self.assertEqual(code, 200, action)
            answer = json.loads(body)
            self.assertEqual(
                sorted(item["ObjectName"] for item in answer["events"]), ["txpeer1", "txpeer2"]
            )
            self.assertEqual({item["Event"] for item in answer["events"]}, {"PeerEntry"})
            self.assertEqual(answer["list_complete"]["ListItems"], "2")

    @inlineCallbacks
    def test_ami_error(self) -> Any:
        """An action the server refuses gives 502 with the server's message."""
        code, body = yield self.call(b"POST", "/actions/Hangup", b'{"Channel": "PJSIP/nobody-1"}')
        self.assertEqual(code, 502)
        self.assertEqual(json.loads(body)["message"], "No such channel")

    @inlineCallbacks
    def test_token_required(self) -> Any:
        """Without the token (or with a wrong one) every endpoint answers 401."""
        for path in ("/health", "/metrics", "/events"):
            code, _ = yield self.call(b"GET", path, token=None)
            self.assertEqual(code, 401, path)
        code, _ = yield self.call(b"POST", "/actions/Ping", b"{}", token="wrong")
        self.assertEqual(code, 401)
        self.assertEqual([a.name for _, a in self.fake.actions_received if a.name == "Ping"], [])

    @inlineCallbacks
    def test_health_and_metrics(self) -> Any:
        """/health says logged in to AMI 9.0.0; /metrics counts events and the session."""
        code, body = yield self.call(b"GET", "/health")
        health = json.loads(body)
        self.assertEqual(code, 200)
        self.assertEqual(
            (
                health["connected"],
                health["logged_in"],
                health["ami_version"],
                health["reconnects"],
            ),
            (True, True, "9.0.0", 0),
        )
        self.fake.emit_event("Hangup", Channel="PJSIP/100-00000001", Cause="16")
        code, body = yield self.call(b"POST", "/actions/Ping", b"{}")
        code, body = yield self.call(b"GET", "/metrics")
        text = body.decode()
        self.assertIn('txami_events_total{pbx="default",event="Hangup"} 1\n', text)
        self.assertIn(
            'txami_actions_total{pbx="default",action="Ping",outcome="success"} 1\n', text
        )
        self.assertIn('txami_connected{pbx="default"} 1\n', text)
        self.assertIn('txami_logged_in{pbx="default"} 1\n', text)
        self.assertIn('txami_reconnects_total{pbx="default"} 0\n', text)

    @inlineCallbacks
    def test_stop_logs_off_and_never_reconnects(self) -> Any:
        """stopService sends Logoff, closes the stream, and leaves nothing to reconnect."""
        response = yield self.request(b"GET", "/events")
        reader = _SSEReader("Never")
        response.deliverBody(reader)
        factory = self.bridge.factory
        yield self.bridge.stopService()
        yield reader.ended
        self.assertEqual([a.name for _, a in self.fake.actions_received][-1:], ["Logoff"])
        self.assertEqual((factory.stopped, factory.continueTrying, factory.connects), (True, 0, 1))
        self.assertIsNone(factory.protocol_instance)
        pending = [
            call
            for call in reactor.getDelayedCalls()
            if getattr(call.func, "__self__", None) is factory
        ]
        self.assertEqual(pending, [])
        code, _ = yield self.call(b"GET", "/health").addErrback(lambda f: (None, b""))
        self.assertIsNone(code)


TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


def spawn_daemon(case: SynchronousTestCase, config: str, logfile: str) -> subprocess.Popen[bytes]:
    """``twistd -n txami --config CONFIG`` as a child process, killed when ``case`` ends."""
    twistd = [sys.executable, "-c", TWISTD, "-n", "--pidfile=", f"--logfile={logfile}"]
    process = subprocess.Popen(
        [*twistd, "txami", "--config", config],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def reap() -> None:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)

    case.addCleanup(reap)
    return process


def _read_line(stream: Any, deadline: float, wanted: Any) -> bytes:
    """Read ``stream`` (a pipe) until a line for which ``wanted(line)`` holds, or the deadline."""
    buffer = b""
    fd = stream.fileno()
    while True:
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if wanted(line):
                return line
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(
                f"no such line before the deadline; last output: {buffer[-500:]!r}"
            )
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError("the daemon's stdout closed before the line arrived")
            buffer += chunk


class TwistdDemoTests(SynchronousTestCase):
    """``twistd -n txami --demo`` as a real process."""

    def test_demo_prints_events_and_stops_on_sigterm(self) -> None:
        """The demo daemon prints JSON event lines within seconds and shuts down on SIGTERM."""
        keep_checkout_clean(self)
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        logfile = os.path.join(directory, "twistd.log")
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                TWISTD,
                "-n",
                "--pidfile=",
                f"--logfile={logfile}",
                "txami",
                "--demo",
                "--log-events",
                "-",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

        def reap() -> None:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
            assert process.stdout is not None and process.stderr is not None
            process.stdout.close()
            process.stderr.close()

        self.addCleanup(reap)
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        line = _read_line(process.stdout, deadline, lambda text: text.startswith(b"{"))
        event = json.loads(line)
        self.assertEqual(list(event)[:3], ["@timestamp", "pbx", "Event"])
        self.assertEqual(event["pbx"], "default")
        process.send_signal(signal.SIGTERM)
        # twistd shuts down cleanly, then re-raises the signal that stopped it
        # (twisted.application.app._exitWithSignal), as a process killed by it.
        self.assertEqual(process.wait(timeout=30), -signal.SIGTERM)
        with open(logfile) as f:
            log = f.read()
        self.assertIn("Received SIGTERM, shutting down.", log)
        self.assertIn("stopping the AMI client for 'admin'", log)
        self.assertIn("Server Shut Down.", log)
        self.assertNotIn("Traceback", log)
        self.assertNotIn("adminsecret", log)
