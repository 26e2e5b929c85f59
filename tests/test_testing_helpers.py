"""
txami.testing's helpers: replay (recorded bytes into a protocol) and listen (real sockets).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import SSL4ClientEndpoint, TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.certs import TLS_SKIP, make_pki, server_tls_options
from txami import AMIProtocol, Message
from txami.testing import FakeAsterisk, listen, replay

DATA = Path(__file__).parent / "data"


class Recorder:
    """A protocol that records each dataReceived."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.chunks.append(data)


class ReplayTests(SynchronousTestCase):
    """replay() cuts recorded bytes as asked."""

    def test_whole(self) -> None:
        """Without chunks the data arrives in one call."""
        recorder = Recorder()
        self.assertEqual(replay(recorder, b"abcdef"), [6])  # type: ignore[arg-type]
        self.assertEqual(recorder.chunks, [b"abcdef"])

    def test_sizes_repeat(self) -> None:
        """Given sizes are used in turn and repeated until the data ends."""
        recorder = Recorder()
        self.assertEqual(replay(recorder, b"abcdefg", [1, 2]), [1, 2, 1, 2, 1])  # type: ignore[arg-type]
        self.assertEqual(recorder.chunks, [b"a", b"bc", b"d", b"ef", b"g"])

    def test_random_sizes_are_reproducible(self) -> None:
        """A seeded Random gives the same cuts twice, covering all the data."""
        data = bytes(range(256)) * 8
        first, second = Recorder(), Recorder()
        sizes = replay(first, data, random.Random(5))  # type: ignore[arg-type]
        self.assertEqual(replay(second, data, random.Random(5)), sizes)  # type: ignore[arg-type]
        self.assertEqual(b"".join(first.chunks), data)
        self.assertTrue(all(1 <= size <= 256 for size in sizes))
        self.assertGreater(len(sizes), 8)

    def test_bad_sizes(self) -> None:
        """Empty or non-positive chunk sizes are refused."""
        self.assertRaises(ValueError, replay, Recorder(), b"ab", [])
        self.assertRaises(ValueError, replay, Recorder(), b"ab", [1, 0])

    def test_capture_into_client(self) -> None:
        """A capture replayed at random cuts into a txami client answers its Login."""
        for seed in range(5):
            client = AMIProtocol(Clock())
            client.makeConnection(StringTransport())
            d = client.send_action("Login", ActionID="login-success-01", Username="admin")
            events: list[Message] = []
            client.add_event_handler("*", events.append)
            replay(client, (DATA / "login-success.raw").read_bytes(), random.Random(seed))
            self.assertEqual(self.successResultOf(d)["Message"], "Authentication accepted")
            self.assertEqual([e.name for e in events], ["FullyBooted", "SuccessfulAuth"])


class ListenTests(TestCase):
    """listen() serves the fake on a real port of 127.0.0.1."""

    timeout = 10

    def setUp(self) -> None:
        self.fake = FakeAsterisk(reactor)
        self.addCleanup(self.fake.stop)

    async def session(self, endpoint: Any) -> None:
        """Log in over ``endpoint``, ping, receive an event, log off, and check it all."""
        client = AMIProtocol(reactor)
        events: list[Message] = []
        client.add_event_handler("UserEvent", events.append)
        await connectProtocol(endpoint, client)
        await client.login("admin", "adminsecret")
        self.assertEqual(self.fake.sessions[0].username, "admin")
        pong = await client.ping()
        self.assertEqual(pong["Ping"], "Pong")
        got: Deferred[None] = Deferred()
        client.add_event_handler("UserEvent", lambda e: got.callback(None))
        self.assertEqual(self.fake.emit_event("UserEvent", UserEvent="Over TCP"), 1)
        await got
        self.assertEqual(events[0]["UserEvent"], "Over TCP")
        await client.logoff()
        await client.when_disconnected()

    async def test_tcp(self) -> None:
        """A txami client logs in over TCP, pings, gets an event and logs off cleanly."""
        port = listen(self.fake, reactor)
        self.addCleanup(port.stopListening)
        host = port.getHost()
        self.assertEqual(host.host, "127.0.0.1")  # type: ignore[attr-defined]
        await self.session(TCP4ClientEndpoint(reactor, "127.0.0.1", host.port))  # type: ignore[attr-defined]
        self.assertEqual(self.fake.sessions, [])

    async def test_tls(self) -> None:
        """listen(tls=...) serves AMI over TLS."""
        if TLS_SKIP:
            self.skipTest(TLS_SKIP)
        from twisted.internet import ssl

        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        pki = make_pki(directory)
        port = listen(self.fake, reactor, tls=server_tls_options(pki))  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        with open(pki.ca_pem, "rb") as f:
            trust = ssl.Certificate.loadPEM(f.read())
        options = ssl.optionsForClientTLS("127.0.0.1", trustRoot=trust)
        number = port.getHost().port  # type: ignore[attr-defined]
        await self.session(SSL4ClientEndpoint(reactor, "127.0.0.1", number, options))
