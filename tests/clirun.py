"""
Running ``python -m txami`` as a real child process from a test.

The child is spawned on the real reactor (the test's fake Asterisk runs on
it too) and its output collected as bytes; every wait has a deadline, after
which the child is killed, so a test fails with what it printed instead of
hanging.  The child's ``HOME`` is the test's own directory, so no user's
configuration file is read, and its environment holds nothing else of the
test's.  With ``terminal=(columns, rows)`` the child runs on a
pseudo-terminal of that size (its controlling terminal, as in a shell):
stdout and stderr both arrive as `Txami.out`, and `Txami.type` sends keys.
"""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import sys
import termios
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
reactor: Any = _reactor

#: Seconds a child may run before the test gives up on it.
DEADLINE = 30.0


@dataclass
class Result:
    """How a finished child ended: its exit code (negative: killed by that signal), its output."""

    code: int
    out: bytes
    err: bytes

    @property
    def text(self) -> str:
        """stdout as text."""
        return self.out.decode("utf-8", "surrogateescape")

    @property
    def error(self) -> str:
        """stderr as text."""
        return self.err.decode("utf-8", "surrogateescape")


class Txami(ProcessProtocol):
    """A running ``python -m txami``: its output so far, and waits on it."""

    def __init__(self) -> None:
        self.out = b""
        self.err = b""
        self.result: Result | None = None
        self._ended: list[Deferred[Result]] = []
        self._waiters: list[tuple[Callable[[bytes], bool], Deferred[bytes]]] = []
        self._error_waiters: list[tuple[Callable[[bytes], bool], Deferred[bytes]]] = []
        self._timer: Any = None

    def outReceived(self, data: bytes) -> None:
        self.out += data
        self._check(self._waiters, self.out)

    def _check(
        self, waiters: list[tuple[Callable[[bytes], bool], Deferred[bytes]]], seen: bytes
    ) -> None:
        for entry in list(waiters):
            condition, waiter = entry
            if condition(seen):
                waiters.remove(entry)
                waiter.callback(seen)

    def errReceived(self, data: bytes) -> None:
        self.err += data
        self._check(self._error_waiters, self.err)

    def processEnded(self, reason: Failure) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        error = reason.value
        code = error.exitCode if error.exitCode is not None else -(error.signal or 0)
        self.result = result = Result(code, self.out, self.err)
        waiters = self._waiters + self._error_waiters
        self._waiters, self._error_waiters = [], []
        for _, waiter in waiters:
            waiter.errback(AssertionError(f"txami ended before the output expected: {result}"))
        ended, self._ended = self._ended, []
        for each in ended:
            each.callback(result)

    def _too_late(self) -> None:
        self._timer = None
        self.kill()

    def kill(self) -> None:
        """SIGKILL the child, if it still runs."""
        if self.result is None:
            self.transport.signalProcess("KILL")  # type: ignore[union-attr]

    def when_ended(self) -> Deferred[Result]:
        """A new Deferred that fires with the `Result` once the child has ended."""
        if self.result is not None:
            return succeed(self.result)
        waiter: Deferred[Result] = Deferred()
        self._ended.append(waiter)
        return waiter

    def output(self, condition: Callable[[bytes], bool]) -> Deferred[bytes]:
        """Fires with stdout so far once ``condition(stdout)`` holds."""
        return self._wait(self._waiters, self.out, condition)

    def errors(self, condition: Callable[[bytes], bool]) -> Deferred[bytes]:
        """Fires with stderr so far once ``condition(stderr)`` holds."""
        return self._wait(self._error_waiters, self.err, condition)

    def _wait(
        self,
        waiters: list[tuple[Callable[[bytes], bool], Deferred[bytes]]],
        seen: bytes,
        condition: Callable[[bytes], bool],
    ) -> Deferred[bytes]:
        waiter: Deferred[bytes] = Deferred()
        if condition(seen):
            waiter.callback(seen)
        elif self.result is not None:
            waiter.errback(AssertionError(f"txami ended: {self.result}"))
        else:
            waiters.append((condition, waiter))
        return waiter

    def signal(self, number: int = signal.SIGINT) -> None:
        """Send signal ``number`` to the child."""
        os.kill(self.transport.pid, number)  # type: ignore[union-attr]

    def type(self, keys: bytes) -> None:
        """Type ``keys`` on the child's terminal (``b"\\x03"`` is Ctrl-C)."""
        self.transport.write(keys)  # type: ignore[union-attr]

    def resize(self, columns: int, rows: int) -> None:
        """Resize the child's terminal (the kernel sends it SIGWINCH)."""
        size = struct.pack("HHHH", rows, columns, 0, 0)
        fcntl.ioctl(self.transport.fd, termios.TIOCSWINSZ, size)  # type: ignore[union-attr]

    def terminal_mode(self) -> list[Any]:
        """The child's terminal's attributes (`termios.tcgetattr`) as they are now."""
        return termios.tcgetattr(self.transport.fd)  # type: ignore[union-attr]

    def cleanup(self) -> Deferred[Result]:
        """For ``addCleanup``: kill the child if it still runs, and wait for its end."""
        self.kill()
        return self.when_ended()


def spawn(
    arguments: Sequence[str],
    home: str,
    environ: Mapping[str, str] | None = None,
    terminal: tuple[int, int] | None = None,
) -> Txami:
    """
    Start ``python -m txami ARGUMENTS`` with ``HOME=home`` and ``environ``
    added; on a pseudo-terminal of ``terminal`` (columns, rows) if given.
    """
    child = Txami()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LC_ALL": "C.UTF-8"}
    env.update(environ or {})
    use_pty: Any = False
    if terminal is not None:
        master, slave = pty.openpty()
        columns, rows = terminal
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        use_pty = (master, slave, os.ttyname(slave))
    reactor.spawnProcess(
        child,
        sys.executable,
        [sys.executable, "-m", "txami", *arguments],
        env=env,
        path=ROOT,
        usePTY=use_pty,
    )
    child._timer = reactor.callLater(DEADLINE, child._too_late)
    return child
