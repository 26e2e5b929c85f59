"""
Record ``tests/data/boot.raw``: what a real Asterisk answers to a login made
while it boots (``FakeAsterisk.restart(boot_seconds=...)`` follows it).

Starts a private server of ``../shared/asterisk`` on free ports, logs in as
soon as AMI takes connections, sends the state model's lists at once, and
reads for a few seconds, through ``FullyBooted``.  The server must still be
booting at the login: the recording is refused otherwise (run it again).
This is a development tool, not a test: it uses plain sockets and real time::

    python -m tests.record_boot
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.realpbx import free_port
from tests.test_state_replay import SYNC_ACTIONS

DATA = Path(__file__).parent / "data"
ASTERISK = Path(__file__).parent.parent.parent / "shared" / "asterisk"
#: The lists a sync sends (but its ``Command``), then two more lists of modules and the core.
LISTS = [*SYNC_ACTIONS[:-1], "QueueSummary", "Status"]


def record(seconds: float = 6.0) -> tuple[bytes, bytes]:
    """Boot a private server, log in at once, send `LISTS`; return (sent, received)."""
    root = tempfile.mkdtemp(prefix="txami-boot-")
    port = free_port(socket.SOCK_STREAM)
    env = {
        **os.environ,
        "TXAMI_AMI_PORT": str(port),
        "TXAMI_AMI_TLS_PORT": str(free_port(socket.SOCK_STREAM)),
        "TXAMI_IAX_PORT": str(free_port(socket.SOCK_DGRAM)),
    }
    start = subprocess.Popen([str(ASTERISK / "start"), root], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        sent = b"Action: Login\r\nActionID: 1\r\nUsername: admin\r\nSecret: adminsecret\r\n\r\n"
        for number, name in enumerate(LISTS, 2):
            sent += f"Action: {name}\r\nActionID: {number}\r\n\r\n".encode()
        conn.sendall(sent)
        conn.settimeout(0.1)
        received = b""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            received += chunk
        conn.close()
        return sent, received
    finally:
        start.wait()
        subprocess.run([str(ASTERISK / "stop"), root], env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", root])


def main() -> None:
    """Record into ``tests/data/boot.raw`` and ``boot.sent.raw``."""
    sent, received = record()
    login = received.split(b"\r\n\r\n")[1]
    if b"FullyBooted" in login or b"Event: FullyBooted" not in received:
        sys.exit("Asterisk had booted before the login (or did not boot): run it again")
    (DATA / "boot.sent.raw").write_bytes(sent)
    (DATA / "boot.raw").write_bytes(received)
    print("recorded boot")


if __name__ == "__main__":
    main()
