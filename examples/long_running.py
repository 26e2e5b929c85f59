"""
A long-running AMI client: logs calls as they start and end, says when the
connection drops and comes back, and logs off cleanly on Ctrl-C.

    python examples/long_running.py --host pbx.example --username admin --secret ...
    python examples/long_running.py --tls --ca /etc/ssl/pbx-ca.pem ...

It keeps running while the PBX restarts: the same `txami.AMIFactory` (and so
the same event handlers) reconnects with backoff and logs in again.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

import txami

log = Logger(namespace="long_running")


class CallMonitor:
    """What the program does: event handlers and a connection listener."""

    def __init__(self, write: Callable[[str], object] = print) -> None:
        self.write = write
        self.active: dict[str, str] = {}
        self.factory: txami.AMIFactory | None = None
        self.connecting: Deferred[txami.AMIFactory] | None = None
        self._waiting: dict[str, list[Deferred[None]]] = {}

    # --- event handlers ---

    def new_channel(self, event: txami.Message) -> None:
        """A channel appeared: a call leg starts."""
        channel = event.get("Channel", "?") or "?"
        self.active[channel] = event.get("CallerIDNum", "") or ""
        self.write(f"call started: {channel} from {self.active[channel] or 'unknown'}")
        self._fire("event")

    def hangup(self, event: txami.Message) -> None:
        """A channel hung up."""
        channel = event.get("Channel", "?") or "?"
        self.active.pop(channel, None)
        self.write(f"call ended: {channel} ({event.get('Cause-txt', 'no cause')})")
        self._fire("event")

    # --- connection listener (txami.IConnectionListener; every method is optional) ---

    def logged_in(self, protocol: txami.AMIProtocol) -> None:
        """The session is (again) logged in."""
        self.write(f"logged in to AMI {protocol.ami_version}")
        self._fire("logged_in")

    def disconnected(self, reason: Failure) -> None:
        """The connection dropped; the factory reconnects by itself unless stopped."""
        factory = self.factory
        if factory is not None and not factory.stopped:
            self.write(f"connection lost ({reason.getErrorMessage()}); reconnecting")
        # Calls seen so far may have ended while we were away.
        self.active.clear()

    def auth_failed(self, error: txami.AuthenticationError) -> None:
        """The PBX refused the login (wrong secret, or the user was removed)."""
        self.write(f"login refused: {error}")

    # --- for tests: wait for the next occurrence ---

    def next(self, what: str) -> Deferred[None]:
        """A Deferred that fires at the next ``"started"``, ``"logged_in"`` or ``"event"``."""
        waiter: Deferred[None] = Deferred()
        self._waiting.setdefault(what, []).append(waiter)
        return waiter

    def _fire(self, what: str) -> None:
        for waiter in self._waiting.pop(what, []):
            waiter.callback(None)

    def shutdown(self) -> Deferred[None] | None:
        """Before the reactor stops (Ctrl-C): log off and close."""
        if self.factory is None:
            if self.connecting is not None:
                self.connecting.cancel()  # still trying to connect: give up
            return None
        return self.factory.stop()


async def run(
    reactor: Any, args: argparse.Namespace, until: Deferred[None], monitor: CallMonitor
) -> None:
    """Connect, subscribe, run until ``until`` fires, then stop."""
    monitor.connecting = txami.connect(
        reactor,
        args.host,
        args.port,
        username=args.username,
        secret=args.secret,
        tls=args.tls,
        tls_ca=args.ca,
        events="call",
        keepalive=args.keepalive,
        initial_delay=args.initial_delay,
    )
    try:
        factory = monitor.factory = await monitor.connecting
    except CancelledError:
        monitor.write("stopped before the first login")
        return
    # Handlers and listeners live on the factory: they survive every reconnect.
    factory.add_event_handler("Newchannel", monitor.new_channel)
    factory.add_event_handler("Hangup", monitor.hangup)
    factory.add_connection_listener(monitor)
    version = await factory.command("core show version")
    monitor.write(f"connected: {version[0] if version else 'unknown version'}")
    monitor._fire("started")
    await until
    await factory.stop()
    monitor.write(
        f"stopped after {factory.connects} connection(s), {factory.events_received} event(s)"
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line; the secret comes from $TXAMI_SECRET (``ps`` would show ``--secret``)."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="5038, or 5039 with --tls")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--secret", default=os.environ.get("TXAMI_SECRET", ""))
    parser.add_argument("--tls", action="store_true", help="AMI over TLS")
    parser.add_argument("--ca", default=None, help="PEM file of the CA to trust (with --tls)")
    parser.add_argument("--keepalive", type=float, default=20.0)
    parser.add_argument("--initial-delay", type=float, default=1.0)
    return parser.parse_args(list(argv))


def main(reactor: Any, *argv: str) -> Deferred[None]:
    """Run until Ctrl-C (SIGINT) or SIGTERM stops the reactor."""
    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    args = parse_args(argv)
    monitor = CallMonitor()
    # Stopping the reactor runs this first, and waits for the Logoff.
    reactor.addSystemEventTrigger("before", "shutdown", monitor.shutdown)
    return Deferred.fromCoroutine(run(reactor, args, Deferred(), monitor))


if __name__ == "__main__":
    from twisted.internet.task import react

    react(main, sys.argv[1:])
