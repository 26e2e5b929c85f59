"""
An in-memory daemon for the console's tests: `build_service` from real
options (one PBX called ``default``, an access list), its HTTP tree served by
a `Site` over `StringTransport` (`tests.test_web.request`), its AMI factory
logged in to txami's fake Asterisk through iosim, all on one
`MemoryReactorClock`.  Nothing touches the network or real time.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from tests.test_web import Response, request
from txami.daemon.options import build_service
from txami.daemon.service import BridgeService
from txami.daemon.statefeed import StateFeed
from txami.tap import Options
from txami.testing import FakeAsterisk, connected_pair

#: May read and run the board's actions (and *Status, Ping).
OPERATOR = "operator-token-0123"
#: May read only (given in the file by its SHA-256).
WALLBOARD = "wallboard-token-4567"
#: May run Ping and QueuePause only, and read nothing.
SCRIPT = "script-token-89ab"


def acl_text(directory: str) -> str:
    """The access list of the tests, its token files written into ``directory``."""
    operator = os.path.join(directory, "operator.token")
    with open(operator, "w") as f:
        f.write(OPERATOR + "\n")
    script = os.path.join(directory, "script.token")
    with open(script, "w") as f:
        f.write(SCRIPT + "\n")
    wallboard = hashlib.sha256(WALLBOARD.encode()).hexdigest()
    return (
        f"[token:operator]\ntoken-file = {operator}\nread = yes\n"
        "actions = Ping, *Status, Hangup, Redirect, Originate, QueuePause\n\n"
        f"[token:wallboard]\nsha256 = {wallboard}\nread = yes\n\n"
        f"[token:script]\ntoken-file = {script}\nactions = Ping, QueuePause\n"
    )


def sse_messages(body: bytes) -> list[tuple[str, Any]]:
    """The ``(event, data)`` of each message of a Server-Sent Events body (comments skipped)."""
    found = []
    for block in body.decode("ascii").split("\n\n"):
        event, data = "message", None
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if data is not None:
            found.append((event, data))
    return found


class Console:
    """One daemon, its fake PBX and its clock (see the module doc)."""

    def __init__(self, test: SynchronousTestCase, *more: str, acl: bool = True) -> None:
        directory = os.path.abspath(test.mktemp())
        os.makedirs(directory)
        secret = os.path.join(directory, "secret")
        with open(secret, "w") as f:
            f.write("adminsecret\n")
        arguments = ["-u", "admin", "--secret-file", secret, "--http", "tcp:0:interface=127.0.0.1"]
        if acl:
            path = os.path.join(directory, "acl.ini")
            with open(path, "w") as f:
                f.write(acl_text(directory))
            arguments += ["--http-acl", path]
        options = Options()
        options.parseOptions([*arguments, *more])
        self.reactor = MemoryReactorClock()
        self.bridge: BridgeService = build_service(options, self.reactor, stdout=io.StringIO())
        http = self.bridge.http
        assert http is not None
        self.http = http
        http.startService()
        http.site.startFactory()
        test.addCleanup(http.stopService)
        self.fake = FakeAsterisk(self.reactor)
        test.addCleanup(self.fake.stop)
        self.pbx = self.fake.pbx
        self.factory = self.bridge.factory
        self.connect()

    @property
    def feed(self) -> StateFeed:
        """The one PBX's state feed."""
        return self.http.feeds[0]

    def connect(self) -> None:
        """Connect the factory to the fake and log in (again, after a drop)."""
        protocol = self.factory.buildProtocol(None)
        _, _, self.pump = connected_pair(self.fake, self.reactor, username=None, protocol=protocol)
        self.pump.flush()

    def step(self, seconds: float = 0.0) -> None:
        """Let ``seconds`` pass, then move every byte both ways."""
        if seconds:
            self.reactor.advance(seconds)
        self.pump.flush()

    def get(
        self, path: str, token: str | None = OPERATOR, method: str = "GET", body: bytes = b""
    ) -> Response:
        """One request with ``token`` (None: no Authorization header)."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        response = request(self.http.site, method, path, headers, body)
        self.pump.flush()
        return response

    def sent(self) -> list[str]:
        """The names of the actions the fake received, in order."""
        return [action.name or "" for _, action in self.fake.actions_received]
