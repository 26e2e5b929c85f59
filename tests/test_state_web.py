"""
Tests for the live state over HTTP (txami.daemon.statefeed, txami.daemon.stateweb):
``GET /state`` and the ``/state/stream`` snapshot and deltas, driven by calls on
the fake PBX, in memory (`tests.consoleharness`).
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.consoleharness import Console, sse_messages
from tests.test_web import Response, _dechunk, request
from txami.daemon.web import SSEStream
from txami.jsonform import dumps

AGENT_TWO = "Local/1001@txami-test/n"


def as_json(value: Any) -> Any:
    """``value`` as it reads after a trip through the daemon's JSON."""
    return json.loads(dumps(value))


def deltas(response: Response) -> list[dict[str, Any]]:
    """The delta messages a stream has received so far."""
    return [data for event, data in sse_messages(response.body) if event == "delta"]


def summary(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """``(op, type, key, changed or reason)`` of each delta."""
    return [
        (d["op"], d["type"], d.get("key"), d.get("changed", d.get("reason"))) for d in messages
    ]


_COLLECTIONS = {
    "channel": "channels",
    "bridge": "bridges",
    "call": "calls",
    "queue": "queues",
    "device": "devices",
    "hint": "hints",
    "presence": "presences",
}


def apply(state: dict[str, Any], delta: dict[str, Any]) -> None:
    """Apply one delta to a snapshot, as docs/board.rst tells a client to."""
    put = delta["op"] == "put"
    kind = delta["type"]
    if kind == "status":
        state["synced"] = delta["data"]["synced"]
    elif kind == "member":
        members = state["queues"][delta["queue"]]["members"]
        if put:
            members[delta["key"]] = delta["data"]
        else:
            del members[delta["key"]]
    elif kind == "entry":
        queue = state["queues"][delta["queue"]]
        entries = [e for e in queue["entries"] if e["uniqueid"] != delta["key"]]
        if put:
            entries.append(delta["data"])
        queue["entries"] = sorted(entries, key=lambda e: e["position"])
    elif put:
        state[_COLLECTIONS[kind]][delta["key"]] = delta["data"]
    else:
        del state[_COLLECTIONS[kind]][delta["key"]]


class StateResourceTests(SynchronousTestCase):
    """GET /state and /pbx/NAME/state."""

    def setUp(self) -> None:
        self.console = Console(self)
        self.console.step(1)

    def test_state_is_the_snapshot(self) -> None:
        """Both paths answer PBXState.snapshot() as JSON, with the calls of the moment."""
        console = self.console
        call = console.pbx.incoming_call("1010", caller_id='"Alice" <201>')
        console.step()
        expected = as_json(console.feed.state.snapshot())
        for path in ("/state", "/pbx/default/state"):
            response = console.get(path)
            self.assertEqual(
                (response.code, response.headers["content-type"]), (200, "application/json")
            )
            self.assertEqual(response.json(), expected)
        self.assertEqual(expected["channels"][call.uniqueid]["caller_id_name"], "Alice")
        self.assertEqual(len(expected["calls"]), 1)
        self.assertTrue(expected["synced"])

    def test_methods(self) -> None:
        """POST /state gets a JSON 405; an unknown child a JSON 404."""
        response = self.console.get("/state", method="POST")
        self.assertEqual((response.code, response.headers["allow"]), (405, "GET, HEAD"))
        self.assertEqual(self.console.get("/state/nope").code, 404)

    def test_endpoints_listed(self) -> None:
        """GET / (from a program) names the state endpoints and /whoami."""
        endpoints = self.console.get("/").json()["endpoints"]
        self.assertEqual(
            endpoints,
            [
                "/health",
                "/events",
                "/actions/{Action}",
                "/state",
                "/state/stream",
                "/metrics",
                "/whoami",
                "/pbx",
                "/pbx/default",
            ],
        )


class StateStreamTests(SynchronousTestCase):
    """GET /state/stream: a snapshot, then numbered deltas."""

    def setUp(self) -> None:
        self.console = Console(self)
        self.console.step(1)

    def open(self, path: str = "/state/stream") -> Response:
        response = self.console.get(path)
        self.assertEqual(
            (response.code, response.headers["content-type"]), (200, "text/event-stream")
        )
        return response

    def test_snapshot_first(self) -> None:
        """The stream opens with a comment and one snapshot: seq, pbx, status and the state."""
        console = self.console
        console.pbx.incoming_call("1000", caller_id="<201>")
        console.step()
        response = self.open()
        self.assertTrue(response.body.startswith(b": txami state stream\n\nevent: snapshot\n"))
        [(event, snapshot)] = sse_messages(response.body)
        self.assertEqual(event, "snapshot")
        self.assertEqual(
            {key: snapshot[key] for key in ("seq", "pbx", "status")},
            {
                "seq": 0,
                "pbx": "default",
                "status": {
                    "connected": True,
                    "logged_in": True,
                    "synced": True,
                    "last_error": None,
                },
            },
        )
        self.assertEqual(snapshot["state"], as_json(console.feed.state.snapshot()))

    def test_deltas_of_a_call(self) -> None:
        """A call that rings, answers and hangs up is one delta per change, numbered from 1."""
        console = self.console
        response = self.open()
        call = console.pbx.incoming_call("1000", caller_id='"Alice" <201>')
        console.step()
        console.pbx.hangup(call)
        console.step()
        messages = deltas(response)
        uid = call.uniqueid
        self.assertEqual(
            summary(messages),
            [
                ("put", "channel", uid, None),
                ("put", "call", uid, None),
                ("put", "channel", uid, ["application"]),
                ("put", "channel", uid, ["answered", "state", "state_desc"]),
                ("put", "call", uid, ["answered"]),
                ("put", "device", "PJSIP/201", None),
                ("put", "channel", uid, ["app_data", "application", "priority"]),
                ("delete", "channel", uid, "hangup"),
                ("delete", "call", uid, "hangup"),
                ("put", "device", "PJSIP/201", None),
            ],
        )
        self.assertEqual([d["seq"] for d in messages], list(range(1, 11)))
        self.assertEqual({d["pbx"] for d in messages}, {"default"})
        self.assertEqual(messages[0]["data"]["caller_id_name"], "Alice")
        self.assertNotIn("changed", messages[0])
        self.assertEqual(messages[9]["data"], {"device": "PJSIP/201", "state": "NOT_INUSE"})
        self.assertEqual(console.feed.seq, 10)

    def test_queue_members_entries_and_lamps(self) -> None:
        """Members, waiting callers, device states and hints each have their delta."""
        console = self.console
        response = self.open()
        console.pbx.pause_member("support", AGENT_TWO, True, "lunch")
        console.pbx.set_device_state("Custom:txami2000", "INUSE")
        console.pbx.set_hint("txami-test", "2000", None)
        console.step()
        found = [d for d in deltas(response) if d["type"] in ("member", "hint")]
        self.assertEqual(
            summary(found),
            [
                (
                    "put",
                    "member",
                    AGENT_TWO,
                    ["last_pause", "paused", "paused_reason", "ring_in_use"],
                ),
                ("put", "hint", "2000@txami-test", None),
                ("delete", "hint", "2000@txami-test", "removed"),
            ],
        )
        self.assertEqual(found[0]["queue"], "support")
        self.assertEqual(
            (found[0]["data"]["paused"], found[0]["data"]["paused_reason"]), (True, "lunch")
        )
        self.assertEqual(found[1]["data"]["status_text"], "InUse")
        caller = console.pbx.incoming_call("600", caller_id="<301>")
        console.step()
        entries = [d for d in deltas(response) if d["type"] == "entry"]
        self.assertEqual(
            summary(entries),
            [
                ("put", "entry", caller.uniqueid, None),
                ("delete", "entry", caller.uniqueid, "left"),
            ],
        )
        self.assertEqual(
            (entries[0]["queue"], entries[0]["data"]["position"], entries[1]["queue"]),
            ("support", 1, "support"),
        )

    def test_deltas_rebuild_the_state(self) -> None:
        """Two minutes of demo traffic: the snapshot plus the deltas is /state, every second."""
        console = self.console
        response = self.open()
        [(_, snapshot)] = sse_messages(response.body)
        state = snapshot["state"]
        demo = console.pbx.start_demo(2.0, paused_members=[AGENT_TWO], long_call_seconds=30)
        self.addCleanup(demo.stop)
        applied = 0
        kinds = set()
        for second in range(120):
            console.step(1)
            messages = deltas(response)
            for delta in messages[applied:]:
                apply(state, delta)
                kinds.add((delta["op"], delta["type"]))
            applied = len(messages)
            now = console.get("/state").json()
            state["time"] = now["time"]
            self.assertEqual(state, now, f"after {second + 1} s")
        self.assertEqual([d["seq"] for d in deltas(response)], list(range(1, applied + 1)))
        self.assertLessEqual(
            {
                ("put", "channel"),
                ("delete", "channel"),
                ("put", "bridge"),
                ("delete", "bridge"),
                ("put", "call"),
                ("delete", "call"),
                ("put", "member"),
                ("put", "entry"),
                ("delete", "entry"),
                ("put", "queue"),
                ("put", "device"),
                ("put", "hint"),
            },
            kinds,
        )

    def test_reconnect_status_resync_and_snapshot(self) -> None:
        """A drop is a status delta; after the re-sync, a resync message and a fresh snapshot."""
        console = self.console
        response = self.open()
        call = console.pbx.incoming_call("1000", caller_id="<201>")
        console.step()
        before = len(deltas(response))
        console.fake.drop_all()
        console.step(0.1)
        other = console.pbx.incoming_call("1000", caller_id="<202>")
        console.pbx.hangup(call)
        console.connect()
        console.step(1)
        messages = sse_messages(response.body)
        after = [d for e, d in messages if e == "delta"][before:]
        statuses = [
            (d["data"]["connected"], d["data"]["logged_in"], d["data"]["synced"])
            for d in after
            if d["type"] == "status"
        ]
        self.assertEqual(
            statuses, [(False, False, False), (True, False, False), (True, True, False)]
        )
        self.assertIn(("delete", "call", call.uniqueid, "gone while disconnected"), summary(after))
        self.assertIn(("put", "call", other.uniqueid, None), summary(after))
        (resync_event, resync), (snapshot_event, snapshot) = messages[-2:]
        self.assertEqual((resync_event, snapshot_event), ("resync", "snapshot"))
        self.assertEqual(resync, {"seq": after[-1]["seq"] + 1, "pbx": "default"})
        self.assertEqual(snapshot["seq"], resync["seq"])
        self.assertEqual(snapshot["status"]["synced"], True)
        state = as_json(console.feed.state.snapshot())
        self.assertEqual(snapshot["state"]["time"], state["time"] - 1)
        snapshot["state"]["time"] = state["time"]
        self.assertEqual(snapshot["state"], state)
        self.assertEqual(list(state["calls"]), [other.uniqueid])

    def test_listens_only_while_streamed(self) -> None:
        """Without a stream the feed makes no deltas; the last stream to leave detaches it."""
        console = self.console
        console.pbx.incoming_call("1000", caller_id="<201>")
        console.step()
        self.assertEqual((console.feed.seq, console.feed.sinks), (0, ()))
        response = self.open()
        self.assertEqual(len(console.feed.sinks), 1)
        response.channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(console.feed.sinks, ())
        console.pbx.incoming_call("1000", caller_id="<202>")
        console.step()
        self.assertEqual(console.feed.seq, 0)
        self.assertFalse(
            any(
                isinstance(getattr(call.func, "__self__", None), SSEStream)
                for call in console.reactor.getDelayedCalls()
            )
        )

    def test_paused_slow_and_dropped(self) -> None:
        """A paused client gets its deltas on resume; one too far behind is dropped."""
        console = self.console
        resource = console.http.state_streams[-1]  # /state/stream
        resource.max_queued_bytes = 3000
        slow = self.open()
        fine = self.open()
        slow.transport.producer.pauseProducing()
        console.pbx.incoming_call("1000", caller_id="<201>")
        console.step()
        self.assertEqual(deltas(slow), [])
        slow.transport.producer.resumeProducing()
        self.assertEqual(deltas(slow), deltas(fine))
        slow.transport.producer.pauseProducing()
        for number in range(10):
            console.pbx.incoming_call("1000", caller_id=f"<30{number}>")
        console.step()
        self.assertTrue(slow.transport.disconnected)
        self.assertEqual(resource.dropped, 1)
        self.assertFalse(fine.transport.disconnecting)
        self.assertEqual(len(console.feed.sinks), 1)
        metrics = console.get("/metrics").body.decode()
        self.assertIn("txami_state_stream_clients 1\n", metrics)
        self.assertIn("txami_state_stream_dropped_total 1\n", metrics)

    def test_stream_limit_keepalive_and_head(self) -> None:
        """At most max_clients streams (then 503); a comment every 15 s; HEAD opens none."""
        console = self.console
        resource = console.http.state_streams[-1]  # /state/stream
        resource.max_clients = 1
        response = self.open()
        refused = console.get("/state/stream")
        self.assertEqual((refused.code, refused.json()["error"]), (503, "too_many_streams"))
        response.transport.clear()
        console.reactor.advance(15)
        self.assertEqual(_dechunk(response.transport.value()), b":\n\n")
        head = console.get("/pbx/default/state/stream", method="HEAD")
        self.assertEqual((head.code, head.headers["content-type"]), (200, "text/event-stream"))
        self.assertEqual(len(console.http.state_streams[0].streams), 0)

    def test_stop_finishes_streams_and_detaches(self) -> None:
        """Stopping the HTTP service ends every state stream and stops the model."""
        console = self.console
        response = self.open()
        console.http.stopService()
        self.assertTrue(response.transport.value().endswith(b"0\r\n\r\n"))
        self.assertEqual(console.feed.sinks, ())
        console.pbx.incoming_call("1000", caller_id="<201>")
        console.step()
        self.assertEqual(dict(console.feed.state.channels), {})

    def test_per_pbx_path(self) -> None:
        """/pbx/default/state/stream streams the same messages as /state/stream."""
        console = self.console
        one = self.open()
        two = self.open("/pbx/default/state/stream")
        console.pbx.incoming_call("1000", caller_id="<201>")
        console.step()
        self.assertNotEqual(deltas(one), [])
        self.assertEqual(deltas(one), deltas(two))


class NoTokenTests(SynchronousTestCase):
    """A daemon with no token at all (it listens on loopback)."""

    def test_anonymous(self) -> None:
        """Every request may do everything; /whoami says so."""
        console = Console(self, acl=False)
        console.step(1)
        self.assertEqual(console.get("/state", token=None).code, 200)
        whoami = console.get("/whoami", token=None).json()
        self.assertEqual(
            whoami,
            {
                "name": "anonymous",
                "read": True,
                "actions": ["*"],
                "pbx": ["*"],
                "pbxs": {
                    "default": {
                        "read": True,
                        "actions": ["Hangup", "Redirect", "Originate", "QueuePause"],
                    }
                },
            },
        )
        response = request(
            console.http.site,
            "POST",
            "/pbx/default/actions/Hangup",
            {},
            b'{"Channel": "PJSIP/none-00000000"}',
        )
        console.step()
        self.assertEqual(response.code, 502)  # sent, and Asterisk had no such channel
        self.assertIn("Hangup", console.sent())
