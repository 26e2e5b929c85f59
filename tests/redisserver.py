"""
A real Redis for integration tests: Debian's ``redis-server`` on a free port of 127.0.0.1.

`RedisServer` starts one in a private directory (append-only file, fsync on
every write, so what Redis acknowledged survives a ``kill -9``), can kill
and restart it on the same port and data, and stops it at the end.
`RedisClient` is a tiny blocking client for the tests' own checks (the
daemon under test uses txredisapi).  Tests skip with `SKIP` where
``redis-server`` or txredisapi is not installed.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import time
from typing import Any

#: The redis-server binary, if installed.
REDIS_SERVER = shutil.which("redis-server")


def _skip() -> str | None:
    if REDIS_SERVER is None:
        return "no redis-server here: apt-get install redis-server (as .ci/run does)"
    try:
        import txredisapi  # noqa: F401
    except ImportError:
        return "txredisapi is not installed: pip install -e '.[test]'"
    return None


#: Why Redis tests skip here, or None.
SKIP = _skip()


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process (see the module doc); `stop` it in a cleanup."""

    def __init__(self, directory: str, port: int | None = None) -> None:
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        """Start it and return once it accepts connections."""
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.directory,
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--daemonize",
                "no",
                "--loglevel",
                "notice",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        buffer = b""
        fd = self.process.stdout.fileno()
        while b"Ready to accept connections" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None:
                self.kill()
                raise RuntimeError(f"redis-server did not start: {buffer[-500:]!r}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                buffer += os.read(fd, 65536)
        # Keep reading its output in the background would need a thread: close the pipe
        # instead; redis-server ignores SIGPIPE and goes on.
        self.process.stdout.close()

    def kill(self) -> None:
        """``kill -9`` it (what it acknowledged is in its append-only file)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=30)

    def stop(self) -> None:
        """Stop it for good."""
        self.kill()

    def client(self) -> RedisClient:
        return RedisClient(self.port)


class RedisClient:
    """A minimal blocking RESP client for the tests' checks."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __call__(self, *args: Any) -> Any:
        parts = [str(a).encode() if not isinstance(a, bytes) else a for a in args]
        command = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        self.sock.sendall(command)
        return self._reply()

    def _reply(self) -> Any:
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.file.read(size + 2)[:-2]
            return data.decode("utf-8", "surrogateescape")
        if kind == b"*":
            count = int(rest)
            if count < 0:
                return None
            return [self._reply() for _ in range(count)]
        raise RuntimeError(f"unexpected reply {line!r}")

    def entries(self, key: str) -> list[tuple[str, dict[str, str]]]:
        """Every entry of stream ``key``: (id, fields)."""
        reply = self("XRANGE", key, "-", "+")
        return [(entry_id, dict(zip(f[0::2], f[1::2], strict=True))) for entry_id, f in reply]
