"""
The real Asterisk for integration tests, as `.ci/run` starts it.

`.ci/run` starts ``../shared/asterisk`` and exports its ``env`` script's
variables (``TXAMI_TEST_AMI=host:port``, ``TXAMI_TEST_AMI_TLS``,
``TXAMI_TEST_CA``, ...).  Where they are not set (a user's plain clone), the
tests that need the server skip with `SKIP`, which says how to run them.

The server is shared by every test of a run: give each originated call a
unique caller ID (`unique_tag`) and match events on it, hang up what you
originate, and bound every wait with `wait_for`.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from txami import AMIFactory, connect

T = TypeVar("T")

#: Why real-server tests skip here, or None when a server is configured.
SKIP: str | None = (
    None
    if os.environ.get("TXAMI_TEST_AMI")
    else "no real Asterisk configured: run ../shared/asterisk/start and "
    'eval "$(../shared/asterisk/env)" (as .ci/run does) to set TXAMI_TEST_AMI'
)

#: The AMI users of ../shared/asterisk/etc/manager.conf.
USERS = {"admin": "adminsecret", "reader": "readersecret", "caller": "callersecret"}
#: The dialplan context of the test server.
CONTEXT = "txami-test"

_counter = itertools.count(1)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port of 127.0.0.1 free right now (TCP, or UDP with ``socket.SOCK_DGRAM``)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def address(variable: str = "TXAMI_TEST_AMI") -> tuple[str, int]:
    """``(host, port)`` from an env variable of the form ``host:port``."""
    host, _, port = os.environ[variable].rpartition(":")
    return host, int(port)


def unique_tag(prefix: str = "tx") -> str:
    """A caller ID number no other test of this run (or an earlier run) uses."""
    return f"{prefix}{os.getpid() % 10000:04d}{next(_counter):04d}{int(time.time()) % 1000:03d}"


async def connect_user(reactor: Any, username: str = "admin", **options: Any) -> AMIFactory:
    """A logged-in `AMIFactory` on the real server (stop it in a cleanup)."""
    host, port = address()
    return await connect(reactor, host, port, username=username, secret=USERS[username], **options)


async def wait_for(
    reactor: Any,
    condition: Callable[[], T | None],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> T:
    """
    Poll ``condition`` until it returns something other than None/False and
    return that; fail with `TimeoutError` naming ``what`` after ``timeout``
    seconds.  For state that no Deferred announces; prefer a Deferred.
    """
    deadline = reactor.seconds() + timeout
    while True:
        value = condition()
        if value is not None and value is not False:
            return value
        if reactor.seconds() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g} s")
        await deferLater(reactor, interval, lambda: None)


def with_timeout(reactor: Any, d: Deferred[T], timeout: float, what: str) -> Deferred[T]:
    """``d``, cancelled with a `TimeoutError`-like failure after ``timeout`` seconds."""
    return d.addTimeout(timeout, reactor, onTimeoutCancel=_timeout_error(what, timeout))


def _timeout_error(what: str, timeout: float) -> Callable[[object, float], Any]:
    def on_timeout(result: object, seconds: float) -> Any:
        raise TimeoutError(f"{what} not reached within {timeout:g} s")

    return on_timeout
