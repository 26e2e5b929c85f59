"""
Helpers to connect a client to a `FakeAsterisk`: in memory, over TCP, or from a recording.

`connected_pair` joins a txami `AMIProtocol` to a fake session through
Twisted's ``iosim`` and logs it in, all synchronously; `listen` opens a real
port on 127.0.0.1 for integration tests; `replay` feeds recorded server bytes
to any protocol, whole or cut into pieces.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IListeningPort, IProtocol, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.test import iosim

from txami.protocol import AMIProtocol
from txami.testing.server import FakeAsterisk, FakeSession

if TYPE_CHECKING:  # twisted.internet.ssl needs pyOpenSSL, an optional dependency
    from twisted.internet.ssl import ContextFactory

__all__ = ["ChunkPump", "connected_pair", "listen", "replay"]

_iosim: Any = iosim  # iosim is untyped

_SERVER_ADDRESS = IPv4Address("TCP", "127.0.0.1", 5038)
_client_ports = itertools.count(40000)


class ChunkPump(iosim.IOPump):
    """
    An ``iosim.IOPump`` that keeps write boundaries: each ``transport.write``
    arrives as its own ``dataReceived``, so a split `FakeAsterisk.send_raw`
    really reaches the client in pieces.
    """

    def pump(self, debug: bool = False, advanceClock: bool = True) -> bool:  # noqa: N803
        if advanceClock:
            self.clock.advance(0)
        moved = False
        for source, target in ((self.serverIO, self.clientIO), (self.clientIO, self.serverIO)):
            chunks, source.stream = source.stream, []
            for chunk in chunks:
                moved = True
                target.bufferReceived(chunk)
        if moved:
            return True
        base: Any = super()
        return bool(base.pump(debug, advanceClock=False))


def connected_pair(
    fake: FakeAsterisk,
    clock: IReactorTime,
    username: str | None = "admin",
    secret: str = "adminsecret",
    events: str = "on",
    protocol: AMIProtocol | None = None,
) -> tuple[AMIProtocol, FakeSession, iosim.IOPump]:
    """
    A txami client connected in memory to ``fake`` and logged in.

    Returns ``(client, session, pump)``: the `AMIProtocol` (``protocol`` if
    given, else a new one on ``clock``), the server's `FakeSession` and the
    pump that moves bytes (``pump.flush()`` after each client call).  The
    banner has been read and the Login answered; with ``username=None`` the
    client is only connected.  Raises the login's error if it was refused,
    and `RuntimeError` if it got no answer (a stalled or delayed server: use
    ``username=None`` and log in yourself).
    """
    client = protocol if protocol is not None else AMIProtocol(clock)
    peer = IPv4Address("TCP", "127.0.0.1", next(_client_ports))
    session = fake.buildProtocol(peer)
    server_io = _iosim.FakeTransport(
        session, isServer=True, hostAddress=_SERVER_ADDRESS, peerAddress=peer
    )
    client_io = _iosim.FakeTransport(
        client, isServer=False, hostAddress=peer, peerAddress=_SERVER_ADDRESS
    )
    server_side: Any = session
    client_side: Any = client
    server_side.makeConnection(server_io)
    client_side.makeConnection(client_io)
    pump_clock: Any = clock if hasattr(clock, "advance") else None
    make_pump: Any = ChunkPump
    pump: Any = make_pump(client, session, client_io, server_io, False, clock=pump_clock)
    pump.flush()
    if username is None:
        return client, session, pump
    outcome: list[Any] = []
    client.login(username, secret, events=events).addBoth(outcome.append)
    pump.flush()
    if not outcome:
        raise RuntimeError(f"the fake Asterisk did not answer the Login of {username!r}")
    result = outcome[0]
    if hasattr(result, "raiseException"):
        result.raiseException()
    return client, session, pump


def listen(
    fake: FakeAsterisk,
    reactor: Any,
    tls: ContextFactory | None = None,
    interface: str = "127.0.0.1",
) -> IListeningPort:
    """
    Listen for ``fake`` on a free port of 127.0.0.1 (TLS if ``tls`` is a
    server context factory); ``port.getHost().port`` is the number.
    Stop it with ``port.stopListening()``.
    """
    if tls is not None:
        port: IListeningPort = reactor.listenSSL(0, fake, tls, interface=interface)
    else:
        port = reactor.listenTCP(0, fake, interface=interface)
    return port


def replay(
    protocol: IProtocol | Protocol,
    data: bytes,
    chunks: Sequence[int] | random.Random | None = None,
    max_chunk: int = 256,
) -> list[int]:
    """
    Feed recorded server bytes to ``protocol.dataReceived``: whole (``chunks``
    `None`), cut into the given sizes (used in turn, repeated until the data
    ends), or cut at random sizes from 1 to ``max_chunk`` drawn from a seeded
    `random.Random`.  Returns the sizes used, so a failing seed can be
    reproduced.
    """
    if chunks is None:
        sizes = [len(data)] if data else []
    elif isinstance(chunks, random.Random):
        sizes = []
        left = len(data)
        while left > 0:
            size = min(left, chunks.randint(1, max_chunk))
            sizes.append(size)
            left -= size
    else:
        if not chunks or any(size <= 0 for size in chunks):
            raise ValueError("chunk sizes must be positive")
        sizes = []
        left = len(data)
        for size in itertools.cycle(chunks):
            if left <= 0:
                break
            sizes.append(min(size, left))
            left -= size
    position = 0
    for size in sizes:
        protocol.dataReceived(data[position : position + size])
        position += size
    return sizes
