"""
Unit tests of `txami.connect` on a `MemoryReactorClock`: what it connects to,
when its Deferred fires or fails, and the TLS options it builds.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectionRefusedError, TimeoutError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.certs import TLS_SKIP, make_pki
from tests.factory_harness import BANNER
from txami import AMIFactory, AuthenticationError, connect, tls_options
from txami.message import Message
from txami.protocol import AMIProtocol


class Server:
    """The server end of a connection completed by hand on a MemoryReactorClock."""

    def __init__(self, factory: AMIFactory) -> None:
        self.protocol: AMIProtocol = factory.buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(BANNER)

    def answer_login(self, status: str = "Success") -> None:
        """Answer the Login written so far."""
        data = self.transport.value()
        (login,) = [Message.parse(p) for p in data.split(b"\r\n\r\n") if p]
        self.protocol.dataReceived(
            f"Response: {status}\r\nActionID: {login.action_id}\r\n"
            "Message: Authentication whatever\r\n\r\n".encode()
        )


class ConnectTests(SynchronousTestCase):
    """`connect` over plain TCP."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    def start(self, **options: Any) -> Any:
        """Call connect with the test user and ``options``."""
        options.setdefault("username", "admin")
        options.setdefault("secret", "adminsecret")
        return connect(self.reactor, **options)

    def factory(self) -> AMIFactory:
        """The factory connect handed to the reactor."""
        factory = self.reactor.tcpClients[0][2]
        assert isinstance(factory, AMIFactory)
        return factory

    def fail_attempt(self) -> None:
        """Fail the connection attempt in progress with ConnectionRefusedError."""
        self.factory().clientConnectionFailed(
            self.reactor.connectors[0], Failure(ConnectionRefusedError())
        )

    def test_defaults(self) -> None:
        """By default connect goes to 127.0.0.1:5038 over TCP, with a 30 s attempt timeout."""
        self.start()
        host, port, factory, timeout, _ = self.reactor.tcpClients[0]
        self.assertEqual((host, port, timeout), ("127.0.0.1", 5038, 30.0))
        self.assertIsInstance(factory, AMIFactory)
        self.assertEqual(self.reactor.sslClients, [])

    def test_fires_after_first_login(self) -> None:
        """The Deferred fires with the factory once the first login succeeded."""
        d = self.start(host="pbx.example", port=6000, events="call")
        self.assertEqual(self.reactor.tcpClients[0][:2], ("pbx.example", 6000))
        factory = self.factory()
        self.assertEqual(factory.login_events, "call")
        server = Server(factory)
        self.assertNoResult(d)
        server.answer_login()
        self.assertIs(self.successResultOf(d), factory)
        self.assertIs(factory.protocol_instance, server.protocol)
        self.reactor.advance(30)
        self.assertFalse(factory.stopped)

    def test_factory_options_forwarded(self) -> None:
        """Extra keywords configure the AMIFactory."""
        self.start(auth="md5", keepalive=None, retry_on_auth_failure=True, initial_delay=0.25)
        factory = self.factory()
        self.assertEqual(
            (factory.auth, factory.keepalive, factory.retry_on_auth_failure, factory.delay),
            ("md5", None, True, 0.25),
        )
        self.assertIs(factory.reactor, self.reactor)

    def test_auth_failure(self) -> None:
        """A refused first login errbacks AuthenticationError and stops the factory."""
        d = self.start()
        server = Server(self.factory())
        server.answer_login("Error")
        error = self.failureResultOf(d, AuthenticationError).value
        self.assertEqual(error.username, "admin")
        self.assertTrue(self.factory().stopped)
        self.assertTrue(server.transport.disconnecting)

    def test_retries_until_connect_timeout(self) -> None:
        """Refused attempts are retried until connect_timeout, then the last error is given."""
        d = self.start(connect_timeout=10, initial_delay=1, factor=2, jitter=0)
        factory = self.factory()
        self.fail_attempt()
        self.reactor.advance(1)
        self.fail_attempt()
        self.reactor.advance(2)
        self.fail_attempt()
        self.assertNoResult(d)
        self.assertEqual(factory.connection_failures, 3)
        self.reactor.advance(7)
        self.failureResultOf(d, ConnectionRefusedError)
        self.assertTrue(factory.stopped)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.reactor.advance(3600)
        self.assertEqual(factory.connection_failures, 3)

    def test_timeout_without_any_error(self) -> None:
        """If no attempt even finished, connect_timeout errbacks TimeoutError."""
        d = self.start(connect_timeout=5)
        self.reactor.advance(5)
        error = self.failureResultOf(d, TimeoutError).value
        self.assertIn("no AMI login within 5 s", str(error))
        self.assertTrue(self.reactor.connectors[0].stoppedConnecting)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_no_connect_timeout(self) -> None:
        """With connect_timeout=None the first connection is awaited for ever."""
        d = self.start(connect_timeout=None)
        for _ in range(50):
            self.fail_attempt()
            self.reactor.advance(30)
        self.assertNoResult(d)
        Server(self.factory()).answer_login()
        self.assertIs(self.successResultOf(d), self.factory())

    def test_auth_retry_then_timeout(self) -> None:
        """With retry_on_auth_failure, refused logins go on until connect_timeout."""
        d = self.start(connect_timeout=10, retry_on_auth_failure=True, jitter=0)
        Server(self.factory()).answer_login("Error")
        self.assertNoResult(d)
        self.reactor.advance(10)
        self.failureResultOf(d, AuthenticationError)
        self.assertTrue(self.factory().stopped)

    def test_cancel(self) -> None:
        """Cancelling the Deferred stops the factory: CancelledError, no retries."""
        d = self.start()
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertTrue(self.factory().stopped)
        self.assertTrue(self.reactor.connectors[0].stoppedConnecting)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_tls_arguments_need_tls(self) -> None:
        """tls_ca or insecure_skip_tls_verify without tls=True is a mistake, refused."""
        self.assertRaises(ValueError, self.start, tls_ca="/x.pem")
        self.assertRaises(ValueError, self.start, insecure_skip_tls_verify=True)
        self.assertRaises(ValueError, self.start, tls=object(), tls_ca="/x.pem")
        self.assertEqual(self.reactor.tcpClients, [])


class TLSConnectTests(SynchronousTestCase):
    """`connect` and `tls_options` with TLS."""

    skip = TLS_SKIP

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    def start(self, **options: Any) -> Any:
        """Call connect with the test user and ``options``."""
        return connect(self.reactor, username="admin", secret="adminsecret", **options)

    def test_tls_true(self) -> None:
        """tls=True uses connectSSL, port 5039 and hostname-checking client options."""
        from twisted.internet._sslverify import ClientTLSOptions

        self.start(host="pbx.example", tls=True)
        host, port, factory, options, timeout, _ = self.reactor.sslClients[0]
        self.assertEqual((host, port, timeout), ("pbx.example", 5039, 30.0))
        self.assertIsInstance(factory, AMIFactory)
        self.assertIsInstance(options, ClientTLSOptions)
        self.assertEqual(options._hostname, "pbx.example")
        self.assertEqual(self.reactor.tcpClients, [])

    def test_explicit_port(self) -> None:
        """An explicit port wins over the TLS default."""
        self.start(tls=True, port=5038)
        self.assertEqual(self.reactor.sslClients[0][1], 5038)

    def test_custom_options_object(self) -> None:
        """A TLS options object is used as given."""
        options = object()
        self.start(tls=options)
        self.assertIs(self.reactor.sslClients[0][3], options)

    def test_private_ca(self) -> None:
        """tls_ca makes optionsForClientTLS trust exactly the CA certificate in that file."""
        from twisted.internet import ssl

        calls: list[tuple[str, Any]] = []
        real = ssl.optionsForClientTLS

        def recording(hostname: str, trustRoot: Any = None, **kw: Any) -> Any:  # noqa: N803
            calls.append((hostname, trustRoot))
            return real(hostname, trustRoot=trustRoot, **kw)

        self.patch(ssl, "optionsForClientTLS", recording)
        pki = make_pki(self.mktemp())
        self.start(tls=True, tls_ca=pki.ca_pem)
        ((hostname, trust),) = calls
        self.assertEqual(hostname, "127.0.0.1")
        with open(pki.ca_pem, "rb") as pem:
            expected = ssl.Certificate.loadPEM(pem.read()).digest()
        self.assertEqual([ssl.Certificate(c).digest() for c in trust._caCerts], [expected])
        self.assertEqual(self.reactor.sslClients[0][3]._hostname, "127.0.0.1")

    def test_ca_file_with_several_certificates(self) -> None:
        """Every certificate of a PEM bundle is loaded."""
        from txami.connect import _load_certificates

        first, second = make_pki(self.mktemp()), make_pki(self.mktemp())
        bundle = self.mktemp() + "-bundle.pem"
        with open(bundle, "wb") as out:
            for path in (first.ca_pem, second.ca_pem):
                with open(path, "rb") as pem:
                    out.write(b"# a comment line\n" + pem.read())
        certificates = _load_certificates(bundle)
        self.assertEqual(
            [c.getSubject().commonName for c in certificates],
            [b"txami test CA", b"txami test CA"],
        )
        self.assertNotEqual(certificates[0].digest(), certificates[1].digest())

    def test_ca_file_without_certificate(self) -> None:
        """A CA file with no certificate is refused with ValueError."""
        path = self.mktemp()
        with open(path, "w") as out:
            out.write("not a certificate\n")
        error = self.assertRaises(ValueError, tls_options, "h", ca=path)
        self.assertEqual(str(error), f"no PEM certificate in {path!r}")

    def test_insecure(self) -> None:
        """insecure_skip_tls_verify gives options that do not verify, and says so in the log."""
        from twisted.internet.ssl import CertificateOptions

        options = tls_options("h", insecure_skip_tls_verify=True)
        self.assertIsInstance(options, CertificateOptions)
        self.assertFalse(options.verify)
        self.assertRaises(ValueError, tls_options, "h", ca="/x.pem", insecure_skip_tls_verify=True)
