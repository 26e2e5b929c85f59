"""
`connect`: start an `AMIFactory` and wait for its first login; TLS options.

Asterisk serves AMI over TLS (``tlsenable=yes`` in manager.conf, usually on
port 5039).  Certificates are checked by default, against the system's trust
store and the host name; ``tls_ca`` trusts a private CA instead, and
``insecure_skip_tls_verify`` turns checking off (only for a test server with a
self-signed certificate: anyone on the path can then read the secret).  TLS
needs Twisted's ``tls`` extra (pyOpenSSL and service_identity).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import TimeoutError as ConnectTimeoutError
from twisted.logger import Logger
from twisted.python.failure import Failure

from txami.factory import AMIFactory
from txami.protocol import AMIProtocol

__all__ = ["connect", "tls_options"]

_log = Logger(namespace="txami.connect")

_PEM_END = b"-----END CERTIFICATE-----"


def _load_certificates(path: str) -> list[Any]:
    """Every PEM certificate in the file at ``path``, as Twisted `Certificate` objects."""
    from twisted.internet.ssl import Certificate

    with open(path, "rb") as pem:
        data = pem.read()
    blocks = [block + _PEM_END for block in data.split(_PEM_END) if b"-----BEGIN" in block]
    if not blocks:
        raise ValueError(f"no PEM certificate in {path!r}")
    return [Certificate.loadPEM(block) for block in blocks]


def tls_options(
    host: str, *, ca: str | None = None, insecure_skip_tls_verify: bool = False
) -> Any:
    """
    Client TLS options for an AMI server at ``host``.

    By default the server's certificate must chain to the system's trust
    store and name ``host`` (a DNS name or an IP address).  ``ca`` is the
    path of a PEM file of CA certificates to trust instead (a private CA, or
    the server's own self-signed certificate).  ``insecure_skip_tls_verify``
    accepts any certificate: encryption without authentication.
    """
    from twisted.internet import ssl

    if insecure_skip_tls_verify:
        if ca is not None:
            raise ValueError("give either ca or insecure_skip_tls_verify, not both")
        _log.warn(
            "TLS certificate checking is OFF for {host}: the server is not authenticated",
            host=host,
        )
        return ssl.CertificateOptions(verify=False)
    if ca is not None:
        certificates = _load_certificates(ca)
        trust = ssl.trustRootFromCertificates(certificates)  # type: ignore[no-untyped-call]
        return ssl.optionsForClientTLS(host, trustRoot=trust)
    return ssl.optionsForClientTLS(host)


def connect(
    reactor: Any,
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    username: str,
    secret: str,
    tls: Any = False,
    tls_ca: str | None = None,
    insecure_skip_tls_verify: bool = False,
    connect_timeout: float | None = 30.0,
    **factory_options: Any,
) -> Deferred[AMIFactory]:
    """
    Connect to ``host``:``port`` and log in; fires with the `AMIFactory` once
    the first login (and its session state) succeeded.

    ``reactor`` must provide ``IReactorTCP`` and ``IReactorTime`` (and
    ``IReactorSSL`` for TLS).  ``port`` defaults to 5038, or 5039 with TLS.
    ``tls`` is `False`, `True` (see `tls_options`, with ``tls_ca`` and
    ``insecure_skip_tls_verify``), or a Twisted client TLS options object
    used as it is.  ``factory_options`` go to `AMIFactory` (``auth``,
    ``events``, ``filters``, ``keepalive``, ``retry_on_auth_failure``, ...).

    Until the first login, failed attempts are retried with the factory's
    backoff for up to ``connect_timeout`` seconds (`None`: for ever).  The
    Deferred errbacks with `AuthenticationError` if the login is refused (and
    not retried), or after ``connect_timeout`` with the last connection
    error (`twisted.internet.error.TimeoutError` if there was none); the
    factory is then stopped, so nothing keeps retrying.  Cancelling the
    Deferred stops the factory too.  After the first login the factory
    reconnects for ever, until its `AMIFactory.stop`.
    """
    if tls is False:
        if tls_ca is not None or insecure_skip_tls_verify:
            raise ValueError("tls_ca and insecure_skip_tls_verify need tls=True")
        options = None
    elif tls is True:
        options = tls_options(host, ca=tls_ca, insecure_skip_tls_verify=insecure_skip_tls_verify)
    else:
        if tls_ca is not None or insecure_skip_tls_verify:
            raise ValueError("tls_ca and insecure_skip_tls_verify only apply with tls=True")
        options = tls
    if port is None:
        port = 5038 if options is None else 5039
    factory = AMIFactory(username, secret, reactor=reactor, **factory_options)

    timer: Any = None
    settled = False

    def settle() -> bool:
        """Stop the deadline; whether ``result`` is still to be fired."""
        nonlocal settled
        if timer is not None and timer.active():
            timer.cancel()
        first = not settled
        settled = True
        return first

    def cancel(result: Deferred[AMIFactory]) -> None:
        # Deferred.cancel then errbacks CancelledError.
        settle()
        factory.stop()

    result: Deferred[AMIFactory] = Deferred(cancel)

    def ready(protocol: AMIProtocol) -> None:
        if settle():
            result.callback(factory)

    def failed(failure: Failure) -> None:
        if settle():
            factory.stop()
            result.errback(failure)

    def too_late() -> None:
        nonlocal timer
        timer = None
        if not settle():
            return
        error = factory.last_error
        if error is None:
            late = ConnectTimeoutError(  # type: ignore[no-untyped-call]
                string=f"no AMI login within {connect_timeout:g} s"
            )
            error = Failure(late)  # type: ignore[no-untyped-call]
        _log.error(
            "could not log in to AMI at {host}:{port} within {timeout:g} s: {why}",
            host=host,
            port=port,
            timeout=connect_timeout,
            why=error.getErrorMessage(),
        )
        factory.stop()
        result.errback(error)

    factory.when_ready().addCallbacks(ready, failed)
    if connect_timeout is not None:
        timer = reactor.callLater(connect_timeout, too_late)
    timeout = connect_timeout if connect_timeout is not None else 30.0
    if options is None:
        reactor.connectTCP(host, port, factory, timeout=timeout)
    else:
        reactor.connectSSL(host, port, factory, options, timeout=timeout)
    return result
