"""
Fake AMI server for the benchmark, run in its own process.

Every byte it sends is precomputed at start-up, and each connection is served by
a thread doing blocking ``recv``/``sendall`` on its own socket, so the server
costs a memcpy per message while the client parses it: the server is never the
bottleneck.  ``sendall`` blocks while the client's socket buffer is full, which is
the flow control: the S1 stream is one shared buffer however slow the client.

What a connection gets depends on the ``Username`` it logs in with:

- ``s1``: right after the ``Login`` response, the whole event stream.
- ``s7``: the whole event stream too, but only once a ``go`` login has come
  (on any connection) after this one's: S7's daemon logs in all its sessions,
  then says ``go``, so that what it measures from then on is the event path
  alone, every session's login and setup done.
- ``go``: the ``Login`` is answered, and every ``s7`` connection logged in
  before it starts its stream.
- ``s4``: every action but ``Login``/``Logoff`` is read and never answered; once
  ``--pending`` such actions have arrived, the server sends one
  ``Event: BenchHeld`` so the client knows they all left its buffers.
- ``s6``: ``CoreShowChannels`` and ``BridgeList`` answer ``--channels``
  channels and their bridges (`bench.statedata`), as a state model's sync
  asks; its other actions get errors.
- anything else: ``Ping`` answers ``Pong``, ``Status`` answers the precomputed
  list, other actions an error.

``Logoff`` always answers ``Goodbye`` and closes.  The process prints
``{"port": N}`` on stdout when it listens, and exits when its stdin closes (so
it never outlives the runner), or on SIGTERM.

Run alone: ``python -m bench.server --events 1000``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import socketserver
import sys
import threading
from dataclasses import dataclass

from bench import data, statedata

PONG = b"Response: Success\r\nActionID: %s\r\nPing: Pong\r\nTimestamp: 1795694721.833487\r\n\r\n"
LOGIN_OK = b"Response: Success\r\nActionID: %s\r\nMessage: Authentication accepted\r\n\r\n"
GOODBYE = b"Response: Goodbye\r\nActionID: %s\r\nMessage: Thanks for all the fish.\r\n\r\n"
UNKNOWN = b"Response: Error\r\nActionID: %s\r\nMessage: Invalid/unknown command\r\n\r\n"
HELD = b"Event: BenchHeld\r\nPrivilege: system,all\r\nHeld: %d\r\n\r\n"


@dataclass(frozen=True)
class Payloads:
    """Everything the server sends, built once before it listens."""

    stream: bytes  # S1: the event stream
    status_parts: list[bytes]  # S3: one Status answer, split on the ActionID
    pending: int  # S4: held actions before ``Event: BenchHeld``
    channel_parts: list[bytes] | None = None  # S6: CoreShowChannels, split on the ActionID
    bridge_parts: list[bytes] | None = None  # S6: its BridgeList


def parse_action(block: bytes) -> tuple[bytes, bytes, bytes]:
    """Return ``(action name lower-cased, ActionID, Username)`` of one action block."""
    name = action_id = username = b""
    for line in block.split(b"\r\n"):
        key, _, value = line.partition(b":")
        key = key.strip().lower()
        if key == b"action":
            name = value.strip().lower()
        elif key == b"actionid":
            action_id = value.strip()
        elif key == b"username":
            username = value.strip()
    return name, action_id, username


def reply(template: bytes, action_id: bytes) -> bytes:
    """Fill ``template``'s ActionID, dropping the header when the action had none."""
    if action_id:
        return template % action_id
    return (template % b"").replace(b"ActionID: \r\n", b"", 1)


class AMIHandler(socketserver.BaseRequestHandler):
    """One client connection: read actions, answer from precomputed bytes."""

    server: AMIServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A client that goes away is no server error: the client reports its own.
        with contextlib.suppress(OSError):
            self.serve(sock)

    def serve(self, sock: socket.socket) -> None:
        payloads = self.server.payloads
        server = self.server
        mode = b""
        held = 0
        buffer = b""
        sock.sendall(data.BANNER)
        while True:
            chunk = sock.recv(262144)
            if not chunk:
                return
            *blocks, buffer = (buffer + chunk).split(data.END)
            out: list[bytes] = []
            for block in blocks:
                name, action_id, username = parse_action(block)
                if name == b"login":
                    mode = username
                    gate = server.gate_count()
                    out.append(reply(LOGIN_OK, action_id))
                    if mode == b"go":
                        server.open_gate()
                    elif mode in (b"s1", b"s7"):
                        sock.sendall(b"".join(out))
                        out.clear()
                        if mode == b"s7":
                            server.wait_for_gate(gate)
                        sock.sendall(payloads.stream)
                elif name == b"logoff":
                    out.append(reply(GOODBYE, action_id))
                    sock.sendall(b"".join(out))
                    sock.shutdown(socket.SHUT_RDWR)
                    return
                elif mode == b"s4":
                    held += 1
                    if held == payloads.pending:
                        out.append(HELD % held)
                elif name == b"ping":
                    out.append(reply(PONG, action_id))
                elif name == b"status":
                    out.append(action_id.join(payloads.status_parts))
                elif mode == b"s6" and name == b"coreshowchannels" and payloads.channel_parts:
                    out.append(action_id.join(payloads.channel_parts))
                elif mode == b"s6" and name == b"bridgelist" and payloads.bridge_parts:
                    out.append(action_id.join(payloads.bridge_parts))
                else:
                    out.append(reply(UNKNOWN, action_id))
            if out:
                sock.sendall(b"".join(out))


class AMIServer(socketserver.ThreadingTCPServer):
    """Threaded TCP server on 127.0.0.1 holding the precomputed payloads."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, payloads: Payloads, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), AMIHandler)
        self.payloads = payloads
        self._gate = threading.Condition()
        self._gates_opened = 0

    def gate_count(self) -> int:
        """How many ``go`` logins have come so far."""
        with self._gate:
            return self._gates_opened

    def open_gate(self) -> None:
        """A ``go`` login: start the streams of the ``s7`` connections waiting."""
        with self._gate:
            self._gates_opened += 1
            self._gate.notify_all()

    def wait_for_gate(self, count: int) -> None:
        """Block until a ``go`` login has come after ``count`` had (see `gate_count`)."""
        with self._gate:
            self._gate.wait_for(lambda: self._gates_opened > count)


def main(argv: list[str] | None = None) -> int:
    """Build the payloads, listen, print the port, serve until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="S1 stream length")
    parser.add_argument("--items", type=int, default=5_000, help="items per Status list")
    parser.add_argument("--pending", type=int, default=10_000, help="S4 held actions")
    parser.add_argument("--channels", type=int, default=0, help="S6 channels (0: no S6)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    payloads = Payloads(
        stream=data.event_stream(args.events),
        status_parts=data.status_list_parts(args.items),
        pending=args.pending,
        channel_parts=statedata.channel_list_parts(args.channels) if args.channels else None,
        bridge_parts=statedata.bridge_list_parts(args.channels) if args.channels else None,
    )
    server = AMIServer(payloads, args.port)
    thread = threading.Thread(target=server.serve_forever, name="ami-server", daemon=True)
    thread.start()
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    try:
        while sys.stdin.buffer.read(65536):
            pass  # the runner never writes: EOF means it is gone
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
