"""
Tests for scoped HTTP tokens in the daemon's tree (--http-acl wired into
txami.daemon.web and routes): 401 without a known token, 403 with a JSON
reason outside a token's scope and nothing sent to Asterisk, /whoami, the
board's files served without a token, and no token in any log line.
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogEvent, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from tests.consoleharness import OPERATOR, SCRIPT, WALLBOARD, Console, acl_text, sse_messages
from tests.test_web import request
from txami.daemon.options import build_service
from txami.tap import Options
from txami.testing import FakeAsterisk, connected_pair

EASTBOARD = "eastboard-token-cdef"
READ_PATHS = (
    "/health",
    "/metrics",
    "/state",
    "/pbx/default",
    "/pbx/default/health",
    "/pbx/default/state",
)


class ScopeTests(SynchronousTestCase):
    """One PBX; the operator, wallboard (read only) and script (actions only) tokens."""

    def setUp(self) -> None:
        self.console = Console(self)
        self.console.step(1)
        self.call = self.console.pbx.incoming_call("1000", caller_id="<201>")
        self.console.step()

    def test_unknown_token(self) -> None:
        """No token, a wrong one or another scheme: 401 everywhere, nothing sent."""
        console = self.console
        before = console.sent()
        for token in (None, "nope", OPERATOR + "x"):
            for path in (*READ_PATHS, "/whoami", "/events", "/state/stream", "/pbx"):
                response = console.get(path, token=token)
                self.assertEqual((response.code, response.json()["error"]), (401, "unauthorized"))
            response = console.get("/actions/Ping", token=token, method="POST")
            self.assertEqual(response.code, 401)
        basic = request(console.http.site, "GET", "/state", {"Authorization": f"Basic {OPERATOR}"})
        self.assertEqual(basic.code, 401)
        self.assertEqual(console.sent(), before)

    def test_read_only_token(self) -> None:
        """The wallboard reads everything; every action is 403 naming it, and is not sent."""
        console = self.console
        for path in READ_PATHS:
            self.assertIn(console.get(path, token=WALLBOARD).code, (200,), path)
        before = console.sent()
        for path, name in (
            ("/actions/Hangup", "Hangup"),
            ("/pbx/default/actions/Hangup", "Hangup"),
            ("/pbx/default/actions/Ping", "Ping"),
        ):
            body = f'{{"Channel": "{self.call.name}"}}'.encode()
            response = console.get(path, token=WALLBOARD, method="POST", body=body)
            self.assertEqual(
                (response.code, response.json()),
                (
                    403,
                    {
                        "error": "forbidden",
                        "message": f"the token 'wallboard' may not run {name} on PBX 'default'",
                        "token": "wallboard",
                        "refused": {"action": name, "pbx": "default"},
                    },
                ),
            )
        self.assertEqual(console.sent(), before)
        self.assertIn(self.call.name, console.pbx.channels)

    def test_actions_only_token(self) -> None:
        """The script may not read (403 naming the PBX, no stream opened) but may pause."""
        console = self.console
        for path in (*READ_PATHS, "/events", "/state/stream", "/pbx/default/events"):
            response = console.get(path, token=SCRIPT)
            self.assertEqual(
                (response.code, response.json()["refused"]), (403, {"read": "default"}), path
            )
        self.assertEqual(sum(len(r.streams) for r in console.http.state_streams), 0)
        self.assertEqual(sum(len(r.streams) for r in console.http.streams), 0)
        self.assertEqual(console.feed.sinks, ())
        response = console.get(
            "/actions/QueuePause",
            token=SCRIPT,
            method="POST",
            body=b'{"Queue": "support", "Interface": "Local/1001@txami-test/n", "Paused": true}',
        )
        self.assertEqual(response.code, 200)
        self.assertEqual(console.sent()[-1], "QueuePause")
        refused = console.get("/actions/QueueRemove", token=SCRIPT, method="POST", body=b"{}")
        self.assertEqual(refused.json()["refused"], {"action": "QueueRemove", "pbx": "default"})
        self.assertEqual(console.sent()[-1], "QueuePause")

    def test_operator_hangs_up(self) -> None:
        """The operator's Hangup (any case of the name) is sent and the channel goes."""
        console = self.console
        response = console.get(
            "/pbx/default/actions/hangup",
            method="POST",
            body=f'{{"Channel": "{self.call.name}"}}'.encode(),
        )
        self.assertEqual(response.code, 200)
        self.assertEqual(console.sent()[-1], "hangup")
        self.assertNotIn(self.call.uniqueid, console.get("/state").json()["channels"])
        refused = console.get("/actions/QueueRemove", method="POST", body=b"{}")
        self.assertEqual(refused.code, 403)

    def test_whoami(self) -> None:
        """/whoami describes each token's grant and the board's actions it may use."""
        console = self.console
        self.assertEqual(
            console.get("/whoami").json(),
            {
                "name": "operator",
                "read": True,
                "actions": ["ping", "*status", "hangup", "redirect", "originate", "queuepause"],
                "pbx": ["*"],
                "pbxs": {
                    "default": {
                        "read": True,
                        "actions": ["Hangup", "Redirect", "Originate", "QueuePause"],
                    }
                },
            },
        )
        self.assertEqual(
            console.get("/whoami", token=WALLBOARD).json()["pbxs"],
            {"default": {"read": True, "actions": []}},
        )
        self.assertEqual(
            console.get("/whoami", token=SCRIPT).json()["pbxs"],
            {"default": {"read": False, "actions": ["QueuePause"]}},
        )

    def test_board_files_need_no_token(self) -> None:
        """The page (GET / from a browser) and its files are served without a token."""
        console = self.console
        page = request(console.http.site, "GET", "/", {"Accept": "text/html,*/*;q=0.8"})
        self.assertEqual(page.code, 200)
        self.assertEqual(page.headers["content-type"], "text/html; charset=utf-8")
        self.assertIn(b'<script src="/board/board.js" defer></script>', page.body)
        self.assertIn("script-src 'self'", page.headers["content-security-policy"])
        self.assertEqual(page.headers["x-content-type-options"], "nosniff")
        for path, kind in (
            ("/board/board.js", "text/javascript; charset=utf-8"),
            ("/board/board.css", "text/css; charset=utf-8"),
            ("/board/", "text/html; charset=utf-8"),
        ):
            response = console.get(path, token=None)
            self.assertEqual((response.code, response.headers["content-type"]), (200, kind), path)
        self.assertEqual(console.get("/board/nope.js", token=None).code, 404)
        self.assertEqual(console.get("/board/board.js", token=None, method="POST").code, 405)
        self.assertEqual(console.get("/", token=None).code, 401)  # a program's GET /

    def test_no_token_in_logs(self) -> None:
        """Known, unknown and refused tokens never reach a log line."""
        logged: list[LogEvent] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        console = self.console
        console.get("/state")
        console.get("/state", token="wrong-token-xyz")
        console.get("/state", token=SCRIPT)
        console.get("/actions/Hangup", token=WALLBOARD, method="POST", body=b"{}")
        console.get("/actions/Ping", method="POST", body=b"{}")
        text = "\n".join(formatEvent(event) + repr(event) for event in logged)
        self.assertIn("refused run Hangup on PBX 'default' to the token 'wallboard'", text)
        for secret in (OPERATOR, WALLBOARD, SCRIPT, "wrong-token-xyz"):
            self.assertNotIn(secret, text)


class MultiPBXScopeTests(SynchronousTestCase):
    """Two PBXs and a token limited to one of them."""

    def setUp(self) -> None:
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        secret = os.path.join(directory, "secret")
        with open(secret, "w") as f:
            f.write("adminsecret\n")
        acl = os.path.join(directory, "acl.ini")
        with open(acl, "w") as f:
            f.write(acl_text(directory))
            f.write("pbx = east\n")  # the last section, [token:script], only east
            digest = hashlib.sha256(EASTBOARD.encode()).hexdigest()
            f.write(f"\n[token:eastboard]\nsha256 = {digest}\nread = yes\npbx = e*\n")
        path = os.path.join(directory, "t.ini")
        with open(path, "w") as f:
            for name in ("east", "west"):
                f.write(f"[pbx:{name}]\nusername = admin\nsecret-file = {secret}\n\n")
            f.write(f"[http]\nlisten = tcp:0:interface=127.0.0.1\nacl = {acl}\n")
        options = Options()
        options.parseOptions(["--config", path])
        reactor = MemoryReactorClock()
        self.bridge = build_service(options, reactor, stdout=io.StringIO())
        assert self.bridge.http is not None
        self.http = self.bridge.http
        self.http.startService()
        self.addCleanup(self.http.stopService)
        self.http.site.startFactory()
        self.fake = FakeAsterisk(reactor)
        self.addCleanup(self.fake.stop)
        east = self.bridge.sessions["east"].factory
        _, _, self.pump = connected_pair(
            self.fake, reactor, username=None, protocol=east.buildProtocol(None)
        )
        self.pump.flush()

    def get(self, path: str, token: str, method: str = "GET", body: bytes = b"") -> Any:
        response = request(
            self.http.site, method, path, {"Authorization": f"Bearer {token}"}, body
        )
        self.pump.flush()
        return response

    def test_pbx_scope(self) -> None:
        """east's token sees and may act on east only; daemon-wide reads need every PBX."""
        self.assertEqual(self.get("/pbx", SCRIPT).json(), {"pbxs": ["east"]})
        self.assertEqual(self.get("/pbx", OPERATOR).json(), {"pbxs": ["east", "west"]})
        response = self.get("/pbx/west/actions/Ping", SCRIPT, "POST", b"{}")
        self.assertEqual(response.json()["refused"], {"action": "Ping", "pbx": "west"})
        self.assertEqual(self.get("/pbx/east/actions/Ping", SCRIPT, "POST", b"{}").code, 200)
        self.assertEqual(
            self.get("/whoami", SCRIPT).json()["pbxs"],
            {"east": {"read": False, "actions": ["QueuePause"]}},
        )

    def test_state_of_several(self) -> None:
        """/state holds each PBX's snapshot; /state/stream opens with one snapshot per PBX."""
        state = self.get("/state", OPERATOR).json()
        self.assertEqual((state["version"], list(state["pbxs"])), (1, ["east", "west"]))
        self.assertEqual(
            (state["pbxs"]["east"]["synced"], state["pbxs"]["west"]["synced"]), (True, False)
        )
        stream = self.get("/state/stream", OPERATOR)
        self.assertEqual(
            [(event, data["pbx"]) for event, data in sse_messages(stream.body)],
            [("snapshot", "east"), ("snapshot", "west")],
        )
        self.assertEqual(self.get("/pbx/west/state", OPERATOR).json()["synced"], False)

    def test_read_scope(self) -> None:
        """A token that reads east only: east's paths answer, west's and daemon-wide ones 403."""
        for path in ("/pbx/east/state", "/pbx/east/health", "/pbx/east"):
            self.assertEqual(self.get(path, EASTBOARD).code, 200, path)
        for path in ("/pbx/west/state", "/pbx/west/state/stream", "/pbx/west/events", "/pbx/west"):
            response = self.get(path, EASTBOARD)
            self.assertEqual((response.code, response.json()["refused"]), (403, {"read": "west"}))
        for path in ("/state", "/state/stream", "/events", "/health", "/metrics"):
            response = self.get(path, EASTBOARD)
            self.assertEqual((response.code, response.json()["refused"]), (403, {"read": "west"}))
        self.assertEqual(self.get("/pbx", EASTBOARD).json(), {"pbxs": ["east"]})
        stream = self.get("/pbx/east/state/stream", EASTBOARD)
        self.assertEqual([e for e, _ in sse_messages(stream.body)], ["snapshot"])
