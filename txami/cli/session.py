"""
The one AMI session a ``txami`` command runs on: opening it, and why it failed.

A command line tool must answer at once, so unlike `txami.connect` nothing
is retried: the first refused connection, failed TLS handshake or refused
login ends the command (exit code 3), and so does a connection lost later.
``--timeout`` bounds the whole opening: no connection by then is exit code
3, a connection whose login got no answer is 4.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import (
    ConnectionDone,
    ConnectionRefusedError,
    DNSLookupError,
)
from twisted.internet.error import (
    TimeoutError as ConnectTimeoutError,
)
from twisted.python.failure import Failure

from txami.cli.exitcodes import CLIError, ExitCode
from txami.cli.options import Settings
from txami.errors import AuthenticationError
from txami.factory import AMIFactory
from txami.protocol import AMIProtocol

__all__ = ["describe_reason", "open_session"]

#: Extra seconds the Login itself may take, so that the command's own deadline decides first.
_LOGIN_GRACE = 5.0
#: Seconds `AMIFactory.stop` waits for the Logoff answer (then twice that to close).
_STOP_TIMEOUT = 2.0


def describe_reason(failure: Failure) -> str:
    """Why a connection failed or ended, in a few words."""
    error = failure.value
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, DNSLookupError):
        return "the host name does not resolve"
    if isinstance(error, ConnectTimeoutError):
        return "no answer to the connection attempt"
    if isinstance(error, ConnectionDone):
        return "the server closed the connection"
    ssl_error = _ssl_reason(error)
    if ssl_error is not None:
        return f"the TLS handshake failed: {ssl_error}"
    return failure.getErrorMessage()


def _ssl_reason(error: BaseException | None) -> str | None:
    """The reasons of an OpenSSL error (``certificate verify failed``), or None if it is none."""
    if error is None or type(error).__module__ != "OpenSSL.SSL":
        return None
    reasons = []
    for entry in error.args[0] if error.args and isinstance(error.args[0], list) else ():
        if isinstance(entry, tuple) and entry:
            reasons.append(str(entry[-1]))
    return ", ".join(reasons) or str(error) or type(error).__name__


class _Progress:
    """A connection listener: whether a connection was made, and the latest reason one ended."""

    def __init__(self) -> None:
        self.made = False
        self.reason: Failure | None = None

    def connected(self, protocol: AMIProtocol) -> None:
        self.made = True

    def connection_failed(self, reason: Failure) -> None:
        self.reason = reason

    def disconnected(self, reason: Failure) -> None:
        self.reason = reason


def open_session(
    reactor: Any,
    settings: Settings,
    *,
    events: str = "off",
    filters: Sequence[str] = (),
) -> Deferred[AMIFactory]:
    """
    Connect to the PBX of ``settings`` and log in with the event mask
    ``events`` and ``filters``; fires with the logged-in `AMIFactory`, whose
    actions then time out after ``settings.timeout`` seconds.  Errbacks
    `CLIError` (3 or 4) and leaves nothing behind if that fails.
    """
    pbx = settings.pbx
    where = settings.where
    timeout = settings.timeout
    factory = AMIFactory(
        pbx.username,
        pbx.secret,
        reactor=reactor,
        auth=pbx.auth,
        events=events,
        filters=filters,
        timeout=timeout + _LOGIN_GRACE,
    )
    # One attempt: the first failure ends the command, and so does a later loss.
    factory.maxRetries = 0  # type: ignore[assignment]
    factory.stop_timeout = _STOP_TIMEOUT
    progress = _Progress()
    factory.add_connection_listener(progress)

    deadline: Any = None

    def cancel(_: Deferred[AMIFactory]) -> None:
        if deadline.active():
            deadline.cancel()
        factory.stop()

    result: Deferred[AMIFactory] = Deferred(cancel)

    def too_late() -> None:
        if progress.made:
            message = f"connected to {where}, but the login got no answer within {timeout:g} s"
            error = CLIError(ExitCode.TIMEOUT, message)
        else:
            error = CLIError(ExitCode.CONNECT, f"cannot connect to {where} within {timeout:g} s")
        result.errback(error)
        factory.stop()

    def ready(protocol: AMIProtocol) -> None:
        if result.called:
            return
        if deadline.active():
            deadline.cancel()
        factory.timeout = timeout
        protocol.timeout = timeout
        factory.remove_connection_listener(progress)
        result.callback(factory)

    def failed(failure: Failure) -> None:
        if result.called:
            return
        if deadline.active():
            deadline.cancel()
        factory.stop()
        if isinstance(failure.value, AuthenticationError):
            error = CLIError(ExitCode.CONNECT, f"{where}: {failure.value}", failure)
        elif progress.reason is None:
            error = CLIError(ExitCode.CONNECT, f"cannot connect to {where}", failure)
        elif progress.made and _ssl_reason(progress.reason.value) is None:
            why = describe_reason(progress.reason)
            error = CLIError(ExitCode.CONNECT, f"no AMI login at {where}: {why}", progress.reason)
        else:
            why = describe_reason(progress.reason)
            message = f"cannot connect to {where}: {why}"
            error = CLIError(ExitCode.CONNECT, message, progress.reason)
        result.errback(error)

    deadline = reactor.callLater(timeout, too_late)
    factory.when_ready().addCallbacks(ready, failed)
    if settings.tls is None:
        reactor.connectTCP(pbx.host, pbx.port, factory, timeout=timeout)
    else:
        reactor.connectSSL(pbx.host, pbx.port, factory, settings.tls, timeout=timeout)
    return result
