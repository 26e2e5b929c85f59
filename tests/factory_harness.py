"""
An in-memory harness for `AMIFactory` unit tests: a fake connector, a fake
transport and a scripted server side, all driven by one `Clock`.

It plays the parts the reactor plays: a connection attempt is completed or
failed on the test's word, and a transport closed by the client reports
`connectionLost` to the protocol and `clientConnectionLost` to the factory on
the next clock tick, as a real transport does.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import (
    ConnectionAborted,
    ConnectionDone,
    ConnectionRefusedError,
    NotConnectingError,
    UserError,
)
from twisted.internet.interfaces import IConnector
from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from txami.factory import AMIFactory
from txami.message import Message
from txami.protocol import AMIProtocol

BANNER = b"Asterisk Call Manager/9.0.0\r\n"


@implementer(IConnector)
class FakeConnector:
    """An `IConnector` whose attempts the test completes or fails."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.attempts = 0
        self.state = "disconnected"
        self.stopped_connecting = 0

    def connect(self) -> None:
        """Start an attempt (the reactor would call ``startedConnecting``)."""
        assert self.state == "disconnected", self.state
        self.attempts += 1
        self.state = "connecting"
        self.harness.factory.startedConnecting(self)

    def stopConnecting(self) -> None:
        """Abandon an attempt in progress, as tcp.BaseClient does."""
        if self.state != "connecting":
            raise NotConnectingError()
        self.stopped_connecting += 1
        self.state = "disconnected"
        self.harness.factory.clientConnectionFailed(self, Failure(UserError()))

    def disconnect(self) -> None:
        """Close a connection or abandon an attempt."""
        if self.state == "connecting":
            self.stopConnecting()
        elif self.state == "connected":
            self.harness.server.transport.loseConnection()

    def getDestination(self) -> IPv4Address:
        """Where the attempts go."""
        return IPv4Address("TCP", "127.0.0.1", 5038)


class FakeTransport(StringTransport):
    """A transport whose close reaches the protocol and factory on the next tick."""

    def __init__(self, harness: Harness, protocol: AMIProtocol) -> None:
        super().__init__()
        self.harness = harness
        self.protocol = protocol
        self.closed = False
        self.aborted = False
        self._closing = False

    def loseConnection(self) -> None:
        """Close after the next tick, with ConnectionDone."""
        self._close_soon(ConnectionDone())

    def abortConnection(self) -> None:
        """Close after the next tick, with ConnectionAborted."""
        self.aborted = True
        self._close_soon(ConnectionAborted())

    def _close_soon(self, reason: Exception) -> None:
        super().loseConnection()
        if not self._closing and not self.closed:
            self._closing = True
            self.harness.clock.callLater(0, self.close, reason)

    def close(self, reason: Exception | None = None) -> None:
        """Report the connection gone (the server closing it, or the network)."""
        if self.closed:
            return
        self.closed = True
        self.disconnecting = True
        failure = Failure(reason if reason is not None else ConnectionDone())
        connector = self.harness.connector
        self.protocol.connectionLost(failure)
        connector.state = "disconnected"
        self.harness.factory.clientConnectionLost(connector, failure)


class ServerSide:
    """The server's end of one connection: reads the actions, writes answers."""

    def __init__(self, transport: FakeTransport, protocol: AMIProtocol) -> None:
        self.transport = transport
        self.protocol = protocol
        self._read = 0
        self.received: list[Message] = []

    def actions(self) -> list[Message]:
        """The actions written since the last call, parsed."""
        data = self.transport.value()
        new, self._read = data[self._read :], len(data)
        found = [Message.parse(part) for part in new.split(b"\r\n\r\n") if part]
        self.received.extend(found)
        return found

    def names(self) -> list[str | None]:
        """The names of the actions written since the last call."""
        return [action.name for action in self.actions()]

    def send(self, data: bytes) -> None:
        """Deliver raw bytes to the client."""
        self.protocol.dataReceived(data)

    def reply(self, action: Message, status: str = "Success", **headers: str) -> None:
        """Answer ``action`` with ``Response: status`` and ``headers``."""
        lines = [f"Response: {status}", f"ActionID: {action.action_id}"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    def event(self, name: str, **headers: str) -> None:
        """Send event ``name``."""
        lines = [f"Event: {name}", *(f"{k}: {v}" for k, v in headers.items())]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    def answer_login(self, accept: bool = True) -> Message:
        """Send the banner and answer the pending Login; returns the Login action."""
        self.send(BANNER)
        (login,) = [a for a in self.actions() if a.name == "Login"]
        if accept:
            self.reply(login, Message="Authentication accepted")
        else:
            self.reply(login, "Error", Message="Authentication failed")
        return login

    def answer_all(self, **headers: str) -> list[Message]:
        """Answer every action written since the last read with Success; returns them."""
        actions = self.actions()
        for action in actions:
            self.reply(action, **headers)
        return actions


class Harness:
    """One `AMIFactory` under test, its clock, connector and current connection."""

    def __init__(self, **options: Any) -> None:
        from twisted.internet.task import Clock

        self.clock = Clock()
        options.setdefault("jitter", 0)
        self.factory = AMIFactory("admin", "adminsecret", reactor=self.clock, **options)
        self.connector = FakeConnector(self)
        self.server: ServerSide
        self.connector.connect()

    def establish(self) -> ServerSide:
        """Complete the attempt in progress: a new connection and its server side."""
        assert self.connector.state == "connecting", self.connector.state
        self.connector.state = "connected"
        protocol = self.factory.buildProtocol(self.connector.getDestination())
        transport = FakeTransport(self, protocol)
        self.server = ServerSide(transport, protocol)
        protocol.makeConnection(transport)
        return self.server

    def log_in(self) -> ServerSide:
        """Complete the attempt and accept its Login (no session state to restore)."""
        server = self.establish()
        server.answer_login()
        return server

    def fail_attempt(self, reason: Exception | None = None) -> None:
        """Fail the attempt in progress (connection refused by default)."""
        assert self.connector.state == "connecting", self.connector.state
        self.connector.state = "disconnected"
        self.factory.clientConnectionFailed(
            self.connector, Failure(reason if reason is not None else ConnectionRefusedError())
        )

    def drop(self, reason: Exception | None = None) -> None:
        """The network drops the current connection."""
        self.server.transport.close(reason if reason is not None else ConnectionDone())

    def run_next_call(self) -> None:
        """Advance the clock exactly to the earliest pending call, so that it runs."""
        call = min(self.clock.getDelayedCalls(), key=lambda c: c.getTime())
        self.clock.advance(call.getTime() - self.clock.seconds())
        if call.active():  # the subtraction lost the last bit
            self.clock.advance(1e-9)

    def pending_calls(self) -> list[float]:
        """When the clock's pending calls are due (seconds from now, to the nanosecond)."""
        now = self.clock.seconds()
        return sorted(round(call.getTime() - now, 9) for call in self.clock.getDelayedCalls())


def capture_log(test: SynchronousTestCase) -> list[LogEvent]:
    """Collect every log event emitted during ``test``."""
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    test.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


def formatted(events: list[LogEvent]) -> str:
    """All the collected log events as text."""
    return "\n".join(formatEvent(event) for event in events)
