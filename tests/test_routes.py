"""
Tests for txami.daemon.routes: the HTTP tree of a daemon with several PBXs, in memory
(each PBX's factory logged in to its own fake Asterisk through iosim).
"""

from __future__ import annotations

import io
import os
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from tests.test_web import request
from txami.daemon.options import build_service
from txami.daemon.routes import PBX_CHILDREN
from txami.daemon.service import BridgeService
from txami.daemon.web import HealthResource
from txami.tap import Options
from txami.testing import FakeAsterisk, connected_pair


class MultiPBXRoutesTests(SynchronousTestCase):
    """Two PBXs: east logged in to a fake Asterisk, west never connected."""

    def setUp(self) -> None:
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        secret = os.path.join(directory, "secret")
        with open(secret, "w") as f:
            f.write("adminsecret\n")
        path = os.path.join(directory, "t.ini")
        with open(path, "w") as f:
            for name in ("east", "west"):
                f.write(f"[pbx:{name}]\nusername = admin\nsecret-file = {secret}\n\n")
            f.write("[http]\nlisten = tcp:0:interface=127.0.0.1\n")
        self.options = Options()
        self.options.parseOptions(["--config", path])
        self.reactor = MemoryReactorClock()
        self.bridge = self.build()
        self.fake = FakeAsterisk(self.reactor)
        east = self.bridge.sessions["east"].factory
        _, _, self.pump = connected_pair(
            self.fake, self.reactor, username=None, protocol=east.buildProtocol(None)
        )
        self.pump.flush()
        self.assertIsNotNone(east.protocol_instance)

    def build(self, **http_options: Any) -> BridgeService:
        bridge = build_service(self.options, self.reactor, stdout=io.StringIO())
        if http_options:
            assert bridge.http is not None
            bridge.removeService(bridge.http)  # type: ignore[no-untyped-call]
            bridge.add_http(bridge.http.endpoint, None, **http_options)
        assert bridge.http is not None
        bridge.http.site.startFactory()
        return bridge

    def get(self, path: str, method: str = "GET", body: bytes = b"") -> Any:
        assert self.bridge.http is not None
        response = request(self.bridge.http.site, method, path, body=body)
        self.pump.flush()
        return response

    def test_list_of_pbxs(self) -> None:
        """GET /pbx names the PBXs in file order; /pbx/NAME lists its endpoints."""
        self.assertEqual(self.get("/pbx").json(), {"pbxs": ["east", "west"]})
        self.assertEqual(
            self.get("/pbx/east").json(),
            {
                "pbx": "east",
                "endpoints": [
                    "/pbx/east/health",
                    "/pbx/east/events",
                    "/pbx/east/actions",
                    "/pbx/east/state",
                ],
            },
        )
        self.assertEqual(self.get("/pbx/nowhere/health").code, 404)

    def test_health_per_pbx(self) -> None:
        """Each PBX's health is its own: east 200, west 503; /health needs them all."""
        east = self.get("/pbx/east/health")
        self.assertEqual(
            (east.code, east.json()["pbx"], east.json()["logged_in"]), (200, "east", True)
        )
        west = self.get("/pbx/west/health")
        self.assertEqual((west.code, west.json()["logged_in"]), (503, False))
        summary = self.get("/health")
        self.assertEqual(summary.code, 503)
        self.assertEqual(
            {name: h["logged_in"] for name, h in summary.json()["pbxs"].items()},
            {"east": True, "west": False},
        )

    def test_actions_per_pbx(self) -> None:
        """POST /pbx/NAME/actions/X goes to that PBX only; /actions says where to go."""
        response = self.get("/pbx/east/actions/Ping", "POST", b"{}")
        self.assertEqual((response.code, response.json()["response"]["Ping"]), (200, "Pong"))
        self.assertEqual([a.name for _, a in self.fake.actions_received][-1:], ["Ping"])
        self.assertEqual(self.get("/pbx/west/actions/Ping", "POST", b"{}").code, 503)
        wrong = self.get("/actions/Ping", "POST", b"{}")
        self.assertEqual(
            (wrong.code, wrong.json()["message"]),
            (404, "this daemon bridges several PBXs: POST /pbx/NAME/actions/{Action}"),
        )
        metrics = self.get("/metrics").body.decode()
        self.assertIn(
            'txami_actions_total{pbx="east",action="Ping",outcome="success"} 1\n', metrics
        )
        self.assertIn(
            'txami_actions_total{pbx="west",action="Ping",outcome="not_connected"} 1\n', metrics
        )

    def test_events_per_pbx_and_merged(self) -> None:
        """/pbx/east/events has east's events; /events has every PBX's, each naming its PBX."""
        east = self.get("/pbx/east/events")
        merged = self.get("/events")
        self.fake.emit_event("UserEvent", UserEvent="Hi")
        self.pump.flush()
        self.bridge.sessions["west"].hub(self.fake_event("west"))
        for response, expected in (
            (east, [b'"pbx":"east"']),
            (merged, [b'"pbx":"east"', b'"pbx":"west"']),
        ):
            data = response.transport.value()
            for marker in expected:
                self.assertIn(marker, data)
        self.assertNotIn(b'"pbx":"west"', east.transport.value())

    def fake_event(self, name: str) -> Any:
        from txami.message import Message

        return Message([("Event", "UserEvent"), ("UserEvent", name)])

    def test_one_more_per_pbx_resource(self) -> None:
        """A new per-PBX resource is one more entry of PBX_CHILDREN."""
        children = (
            *PBX_CHILDREN,
            (
                "state",
                lambda session, context: HealthResource(
                    lambda: {"logged_in": True, "pbx": session.pbx}
                ),
            ),
        )
        self.bridge = self.build(children=children)
        response = self.get("/pbx/west/state")
        self.assertEqual((response.code, response.json()["pbx"]), (200, "west"))
