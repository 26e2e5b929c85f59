"""
Tests for the HTTP bridge (txami.daemon.web), in memory: real `Site` and HTTP parsing
over a `StringTransport`, and a real `AMIProtocol` over another one standing
in for the factory (so the bytes an HTTP call puts on the AMI wire are checked).
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import Clock, StringTransport
from twisted.logger import LogEvent, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site

from txami.daemon.hub import EventHub
from txami.daemon.metrics import Metrics
from txami.daemon.web import EventStreamResource, make_resource, make_site
from txami.message import Message, new_action_id
from txami.protocol import AMIProtocol

TOKEN = "s3cret-token-value"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HANGUP = Message.parse(b"Event: Hangup\r\nChannel: PJSIP/100-00000001\r\nCause: 16")
NEWCHANNEL = Message.parse(b"Event: Newchannel\r\nChannel: PJSIP/100-00000002")


class Response:
    """A parsed HTTP response and the connection it came on."""

    def __init__(self, transport: StringTransport, channel: Any) -> None:
        self.transport = transport
        self.channel = channel

    def _parts(self) -> tuple[int, dict[str, str], bytes]:
        head, _, body = self.transport.value().partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        code = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(": ")
            headers[name.lower()] = value
        if headers.get("transfer-encoding") == "chunked":
            body = _dechunk(body)
        return code, headers, body

    @property
    def code(self) -> int:
        return self._parts()[0]

    @property
    def headers(self) -> dict[str, str]:
        return self._parts()[1]

    @property
    def body(self) -> bytes:
        return self._parts()[2]

    def json(self) -> Any:
        return json.loads(self.body)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


def request(
    site: Site,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Response:
    """Send one HTTP/1.1 request to ``site`` over a fresh StringTransport."""
    address = IPv4Address("TCP", "127.0.0.1", 40000)
    channel = site.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    channel.makeConnection(transport)
    lines = [f"{method} {path} HTTP/1.1"]
    if not any(name.lower() == "host" for name in headers or {}):
        lines.append("Host: 127.0.0.1")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    channel.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    return Response(transport, channel)


class Bridge:
    """A site over a hub, metrics and a real AMIProtocol on a StringTransport."""

    def __init__(self, token: str | None = TOKEN, **stream_options: Any) -> None:
        self.clock = Clock()
        self.hub = EventHub(self.clock)
        self.metrics = Metrics()
        self.protocol = AMIProtocol(self.clock, timeout=10.0)
        self.ami = StringTransport()
        self.protocol.makeConnection(self.ami)
        self.protocol.dataReceived(b"Asterisk Call Manager/9.0.0\r\n")
        self.state = {"logged_in": True, "ami_version": "9.0.0"}
        self.events = EventStreamResource(self.hub, self.clock, **stream_options)
        resource = make_resource(
            sender=self.protocol,
            health=lambda: self.state,
            hub=self.hub,
            metrics=self.metrics,
            clock=self.clock,
            token=token,
            events=self.events,
        )
        self.site = make_site(resource, self.clock)
        self.site.startFactory()  # turns the access log on, as listening does

    def sent(self) -> list[Message]:
        """The actions written to the AMI transport so far (and forget them)."""
        data = self.ami.value()
        self.ami.clear()
        return [Message.parse(block) for block in data.split(b"\r\n\r\n") if block]

    def answer(self, action: Message, text: str) -> None:
        """Feed the server's answer ``text`` (CRLF-less lines joined by \\n) to ``action``."""
        body = text.replace("\n", "\r\n").replace("{id}", action.action_id or "")
        self.protocol.dataReceived(body.encode("utf-8") + b"\r\n\r\n")


class AuthTests(SynchronousTestCase):
    """The bearer token guards every endpoint."""

    def setUp(self) -> None:
        self.bridge = Bridge()

    def test_every_endpoint_needs_the_token(self) -> None:
        """Without the token, every path (even unknown ones) answers 401 and a challenge."""
        for method, path in [
            ("GET", "/"),
            ("GET", "/health"),
            ("GET", "/events"),
            ("POST", "/actions/Ping"),
            ("GET", "/metrics"),
            ("GET", "/nope"),
        ]:
            response = request(self.bridge.site, method, path)
            self.assertEqual(response.code, 401, path)
            self.assertEqual(response.headers["www-authenticate"], 'Bearer realm="txami"')
            self.assertEqual(response.json()["error"], "unauthorized")
        self.assertEqual(self.bridge.sent(), [])
        self.assertEqual(self.bridge.hub.sinks, ())

    def test_wrong_token(self) -> None:
        """A wrong token, another scheme, or the token without a scheme all get 401."""
        for value in [
            f"Bearer {TOKEN}x",
            f"Basic {TOKEN}",
            TOKEN,
            "Bearer",
            f"Bearer {TOKEN[:-1]}",
        ]:
            response = request(self.bridge.site, "GET", "/health", {"Authorization": value})
            self.assertEqual(response.code, 401, value)

    def test_right_token(self) -> None:
        """The right token (any case of the scheme) is let in."""
        for value in [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER  {TOKEN} "]:
            response = request(self.bridge.site, "GET", "/health", {"Authorization": value})
            self.assertEqual(response.code, 200, value)

    def test_no_token_configured(self) -> None:
        """Without a configured token, requests need no Authorization header."""
        bridge = Bridge(token=None)
        self.assertEqual(request(bridge.site, "GET", "/health").code, 200)

    def test_token_never_logged(self) -> None:
        """Neither a right nor a wrong token appears in any log event."""
        logged: list[LogEvent] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        request(self.bridge.site, "GET", "/health", AUTH)
        request(self.bridge.site, "GET", "/health", {"Authorization": "Bearer wrong-one"})
        request(self.bridge.site, "POST", "/actions/Ping", AUTH, b"{}")
        self.assertNotEqual(logged, [])
        text = "\n".join(formatEvent(event) + repr(event) for event in logged)
        self.assertNotIn(TOKEN, text)
        self.assertNotIn("wrong-one", text)

    def test_root_lists_endpoints(self) -> None:
        """GET / with the token lists the endpoints; an unknown path is a JSON 404."""
        response = request(self.bridge.site, "GET", "/", AUTH)
        self.assertEqual(
            response.json(), {"endpoints": ["/health", "/events", "/actions/{Action}", "/metrics"]}
        )
        missing = request(self.bridge.site, "GET", "/nope", AUTH)
        self.assertEqual((missing.code, missing.json()["error"]), (404, "not_found"))


class CrossOriginTests(SynchronousTestCase):
    """Without a token, a web page elsewhere cannot use the daemon through a browser."""

    def setUp(self) -> None:
        self.bridge = Bridge(token=None)

    def test_other_origin_refused(self) -> None:
        """A request from another origin (a page's fetch or form) is 403; nothing is sent."""
        for origin in ("http://evil.example", "null", "http://127.0.0.1:9999", "https://x.test"):
            for method, path in (("POST", "/actions/Ping"), ("GET", "/health")):
                response = request(
                    self.bridge.site,
                    method,
                    path,
                    {"Origin": origin, "Content-Type": "text/plain"},
                    b"{}" if method == "POST" else b"",
                )
                self.assertEqual(
                    (response.code, response.json()["error"]), (403, "cross_origin"), origin
                )
        self.assertEqual(self.bridge.sent(), [])

    def test_same_origin_and_programs(self) -> None:
        """The daemon's own pages (Origin is the Host) and programs (no Origin) are let in."""
        for headers in (
            {},
            {"Origin": "http://127.0.0.1"},
            {"Origin": "http://localhost:8088", "Host": "LocalHost:8088"},
            {"Origin": "https://[::1]:8443", "Host": "[::1]:8443"},
        ):
            response = request(self.bridge.site, "POST", "/actions/Ping", headers, b"{}")
            [ping] = self.bridge.sent()
            self.bridge.answer(ping, "Response: Success\nActionID: {id}\nPing: Pong")
            self.assertEqual(response.code, 200, headers)

    def test_foreign_host_refused(self) -> None:
        """A Host that is not loopback (DNS rebinding) is 403; loopback names are let in."""
        for host in ("evil.example:8088", "10.0.0.1", "127.0.0.1.evil.example", "[2001:db8::1]"):
            response = request(self.bridge.site, "GET", "/health", {"Host": host})
            self.assertEqual(
                (response.code, response.json()["error"]), (403, "foreign_host"), host
            )
        for host in ("127.0.0.1:8088", "localhost", "[::1]:8088", "127.1.2.3"):
            response = request(self.bridge.site, "GET", "/health", {"Host": host})
            self.assertEqual(response.code, 200, host)

    def test_any_host_over_a_unix_socket(self) -> None:
        """On a UNIX socket (no browser reaches it) the Host header is not checked."""
        address = UNIXAddress(b"/run/txami/http.sock")
        channel = self.bridge.site.buildProtocol(address)
        transport = StringTransport(hostAddress=address, peerAddress=address)
        channel.makeConnection(transport)
        channel.dataReceived(b"GET /health HTTP/1.1\r\nHost: anything.example\r\n\r\n")
        self.assertEqual(Response(transport, channel).code, 200)

    def test_token_guards_instead(self) -> None:
        """With a token, Origin and Host are not checked: a page cannot send the token."""
        bridge = Bridge()
        headers = {"Origin": "http://evil.example", "Host": "evil.example", **AUTH}
        self.assertEqual(request(bridge.site, "GET", "/health", headers).code, 200)


class HealthTests(SynchronousTestCase):
    """GET /health."""

    def test_logged_in(self) -> None:
        """200 and the health dict as JSON while logged in."""
        bridge = Bridge()
        response = request(bridge.site, "GET", "/health", AUTH)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers["content-type"], "application/json")
        self.assertEqual(response.json(), {"logged_in": True, "ami_version": "9.0.0"})

    def test_not_logged_in(self) -> None:
        """503 while not logged in, with the same dict."""
        bridge = Bridge()
        bridge.state = {"logged_in": False, "ami_version": None}
        response = request(bridge.site, "GET", "/health", AUTH)
        self.assertEqual((response.code, response.json()["logged_in"]), (503, False))

    def test_post_not_allowed(self) -> None:
        """Another method gets a JSON 405 with an Allow header."""
        response = request(Bridge().site, "POST", "/health", AUTH)
        self.assertEqual((response.code, response.headers["allow"]), (405, "GET, HEAD"))


class MetricsResourceTests(SynchronousTestCase):
    """GET /metrics."""

    def test_text(self) -> None:
        """The Prometheus text, with its content type."""
        bridge = Bridge()
        bridge.metrics.action_finished("Ping", "success", 0.001)
        response = request(bridge.site, "GET", "/metrics", AUTH)
        self.assertEqual(response.code, 200)
        self.assertEqual(
            response.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8"
        )
        self.assertEqual(response.body.decode("utf-8"), bridge.metrics.render())


class ActionTests(SynchronousTestCase):
    """POST /actions/{Action}."""

    def setUp(self) -> None:
        self.bridge = Bridge()

    def post(self, path: str, body: bytes = b"") -> Response:
        return request(self.bridge.site, "POST", path, AUTH, body)

    def test_ping(self) -> None:
        """An empty body sends the bare action; the response comes back as JSON, 200."""
        response = self.post("/actions/Ping")
        [ping] = self.bridge.sent()
        self.assertEqual([k for k, _ in ping], ["Action", "ActionID"])
        self.assertEqual(ping["Action"], "Ping")
        self.assertEqual(response.transport.value(), b"")
        self.bridge.answer(
            ping, "Response: Success\nActionID: {id}\nPing: Pong\nTimestamp: 1714557600.000000"
        )
        self.assertEqual(response.code, 200)
        self.assertEqual(
            response.json(),
            {
                "response": {
                    "Response": "Success",
                    "ActionID": ping.action_id,
                    "Ping": "Pong",
                    "Timestamp": "1714557600.000000",
                },
                "events": [],
                "list_complete": None,
            },
        )
        self.assertEqual(self.bridge.metrics.actions_by_outcome(), {("Ping", "success"): 1})

    def test_headers_and_repeats(self) -> None:
        """Body keys become headers in order; a list repeats one; numbers are text; null omits."""
        self.post(
            "/actions/Originate",
            b'{"Channel": "PJSIP/100", "Variable": ["A=1", "B=2"], "Timeout": 30000,'
            b' "Account": null, "Async": true}',
        )
        [action] = self.bridge.sent()
        self.assertEqual(
            action.pairs()[2:],
            [
                ("Channel", "PJSIP/100"),
                ("Variable", "A=1"),
                ("Variable", "B=2"),
                ("Timeout", "30000"),
                ("Async", "true"),
            ],
        )

    def test_list_action(self) -> None:
        """A list action answers with its items and the completing event."""
        response = self.post("/actions/Status")
        [status] = self.bridge.sent()
        self.bridge.answer(
            status,
            "Response: Success\nActionID: {id}\nEventList: start\nMessage: Status will follow",
        )
        self.bridge.answer(status, "Event: Status\nActionID: {id}\nChannel: PJSIP/100-01")
        self.bridge.answer(status, "Event: Status\nActionID: {id}\nChannel: PJSIP/101-02")
        self.bridge.answer(
            status, "Event: StatusComplete\nActionID: {id}\nEventList: Complete\nListItems: 2"
        )
        body = response.json()
        self.assertEqual(response.code, 200)
        self.assertEqual(
            [event["Channel"] for event in body["events"]], ["PJSIP/100-01", "PJSIP/101-02"]
        )
        self.assertEqual(body["list_complete"]["ListItems"], "2")
        self.assertEqual(body["response"]["EventList"], "start")

    def test_ami_error(self) -> None:
        """Response: Error gives 502 with the AMI message and the whole response."""
        response = self.post("/actions/Hangup", b'{"Channel": "PJSIP/nope"}')
        [hangup] = self.bridge.sent()
        self.bridge.answer(hangup, "Response: Error\nActionID: {id}\nMessage: No such channel")
        self.assertEqual(response.code, 502)
        self.assertEqual(
            response.json(),
            {
                "error": "AMIError",
                "message": "No such channel",
                "response": {
                    "Response": "Error",
                    "ActionID": hangup.action_id,
                    "Message": "No such channel",
                },
            },
        )
        self.assertEqual(self.bridge.metrics.actions_by_outcome(), {("Hangup", "error"): 1})

    def test_timeout(self) -> None:
        """No answer within ?timeout= seconds gives 504."""
        response = self.post("/actions/Ping?timeout=2.5")
        self.bridge.clock.advance(2.4)
        self.assertEqual(response.transport.value(), b"")
        self.bridge.clock.advance(0.1)
        self.assertEqual(response.code, 504)
        self.assertEqual(response.json()["error"], "ActionTimeout")
        self.assertEqual(self.bridge.metrics.actions_by_outcome(), {("Ping", "timeout"): 1})

    def test_not_connected(self) -> None:
        """With no connection, 503 at once and nothing written."""
        self.bridge.protocol.connectionLost()
        response = self.post("/actions/Ping")
        self.assertEqual((response.code, response.json()["error"]), (503, "NotConnected"))
        self.assertEqual(self.bridge.metrics.actions_by_outcome(), {("Ping", "not_connected"): 1})

    def test_connection_lost(self) -> None:
        """The connection dropping while the action is pending gives 502 ConnectionLost."""
        response = self.post("/actions/Ping")
        self.bridge.protocol.connectionLost()
        self.assertEqual((response.code, response.json()["error"]), (502, "ConnectionLost"))

    def test_crlf_refused(self) -> None:
        """A header value with CR/LF is 400 and nothing reaches the AMI connection."""
        response = self.post(
            "/actions/Getvar", b'{"Variable": "X\\r\\nAction: Originate\\r\\nChannel: Local/1"}'
        )
        self.assertEqual((response.code, response.json()["error"]), (400, "bad_request"))
        self.assertEqual(self.bridge.ami.value(), b"")

    def test_crlf_in_action_name_refused(self) -> None:
        """An action name smuggling CR/LF through %0D%0A is 400, nothing written."""
        response = self.post("/actions/Ping%0D%0AAction:%20Originate")
        self.assertEqual(response.code, 400)
        self.assertEqual(self.bridge.ami.value(), b"")

    def test_names_asterisk_would_read_as_another(self) -> None:
        """%20Logoff (Asterisk skips a name's leading blanks) and other spaced names are 400."""
        for path in (
            "/actions/%20Logoff",
            "/actions/%09Events",
            "/actions/%01Filter",
            "/actions/Ping%20",
            "/actions/Queue%20Pause",
        ):
            response = self.post(path)
            self.assertEqual((response.code, response.json()["error"]), (400, "bad_request"), path)
        self.assertEqual(self.bridge.ami.value(), b"")

    def test_action_id_in_the_body_refused(self) -> None:
        """A client's ActionID (which could take another client's answers) is 400, not sent."""
        probe = new_action_id()
        prefix, _, number = probe.rpartition(".")
        for value in (f"{prefix}.{int(number) + 1}", "mine-1", ["a", "b"]):
            body = json.dumps({"actionid": value}).encode()
            response = self.post("/actions/Ping", body)
            self.assertEqual((response.code, response.json()["error"]), (400, "bad_request"))
            self.assertIn("ActionID", response.json()["message"])
        self.assertEqual(self.bridge.ami.value(), b"")

    def test_synchronous_originate_refused(self) -> None:
        """An Originate without Async (it would hold the shared session) is 400; Async is sent."""
        for body in (
            b'{"Channel": "Local/1000@txami-test", "Exten": "1000"}',
            b'{"Channel": "Local/1000@txami-test", "Async": false}',
            b'{"Channel": "Local/1000@txami-test", "async": "no"}',
        ):
            response = self.post("/actions/Originate", body)
            self.assertEqual((response.code, response.json()["error"]), (400, "bad_request"), body)
            self.assertIn("Async", response.json()["message"])
        self.assertEqual(self.bridge.ami.value(), b"")
        for value in (b"true", b'"yes"', b"1", b'"On"', b'["true"]'):
            self.post("/actions/originate", b'{"Channel": "Local/1", "ASYNC": ' + value + b"}")
            [action] = self.bridge.sent()
            self.assertEqual(action.name, "originate", value)

    def test_malformed_bodies(self) -> None:
        """Bodies that are not a flat JSON object of headers are 400 with a reason."""
        for body in [
            b"{",
            b"[1, 2]",
            b'"text"',
            b'{"Channel": {"nested": 1}}',
            b'{"Channel": [["x"]]}',
            b'{"Action": "Originate"}',
            b"\xff\xfe",
        ]:
            response = self.post("/actions/Ping", body)
            self.assertEqual((response.code, response.json()["error"]), (400, "bad_request"), body)
        self.assertEqual(self.bridge.ami.value(), b"")

    def test_bad_timeouts(self) -> None:
        """A timeout that is not a number in (0, 3600] is 400."""
        for value in ["x", "0", "-1", "3601", "nan"]:
            response = self.post(f"/actions/Ping?timeout={value}")
            self.assertEqual(response.code, 400, value)
        self.assertEqual(self.bridge.ami.value(), b"")

    def test_reserved_actions(self) -> None:
        """Actions that manage or block the daemon's own session are 403, in any case."""
        for name in ["Login", "logoff", "Challenge", "EVENTS", "Filter", "WaitEvent"]:
            response = self.post(f"/actions/{name}")
            self.assertEqual((response.code, response.json()["error"]), (403, "reserved_action"))
        self.assertEqual(self.bridge.ami.value(), b"")

    def test_too_large(self) -> None:
        """A body over 64 KiB is 413."""
        response = self.post("/actions/Ping", b'{"A": "' + b"x" * 65536 + b'"}')
        self.assertEqual(response.code, 413)

    def test_bad_paths_and_methods(self) -> None:
        """/actions/ without a name is 404; GET on an action is 405."""
        self.assertEqual(self.post("/actions/").code, 404)
        self.assertEqual(self.post("/actions/Ping/extra").code, 404)
        response = request(self.bridge.site, "GET", "/actions/Ping", AUTH)
        self.assertEqual((response.code, response.headers["allow"]), (405, "POST"))
        self.assertEqual(request(self.bridge.site, "GET", "/actions", AUTH).code, 404)

    def test_client_gone_before_answer(self) -> None:
        """If the HTTP client leaves first, the answer is dropped but still counted."""
        response = self.post("/actions/Ping")
        [ping] = self.bridge.sent()
        response.channel.connectionLost(Failure(ConnectionDone()))
        self.bridge.answer(ping, "Response: Success\nActionID: {id}\nPing: Pong")
        self.assertEqual(response.transport.value(), b"")
        self.assertEqual(self.bridge.metrics.actions_by_outcome(), {("Ping", "success"): 1})


class EventStreamTests(SynchronousTestCase):
    """GET /events: Server-Sent Events."""

    def open(self, bridge: Bridge, query: str = "") -> Response:
        response = request(bridge.site, "GET", "/events" + query, AUTH)
        self.assertEqual(response.code, 200)
        return response

    def data_lines(self, response: Response) -> list[Any]:
        return [
            json.loads(line[6:])
            for line in response.body.decode("ascii").split("\n")
            if line.startswith("data: ")
        ]

    def test_stream(self) -> None:
        """Events arrive as data: lines of event JSON, with SSE headers."""
        bridge = Bridge()
        response = self.open(bridge)
        self.assertEqual(response.headers["content-type"], "text/event-stream")
        self.assertEqual(response.headers["cache-control"], "no-store")
        bridge.hub(HANGUP)
        bridge.hub(NEWCHANNEL)
        self.assertEqual(
            response.body,
            b": txami event stream\n\n"
            b'data: {"@timestamp":"1970-01-01T00:00:00.000000Z","Event":"Hangup",'
            b'"Channel":"PJSIP/100-00000001","Cause":"16"}\n\n'
            b'data: {"@timestamp":"1970-01-01T00:00:00.000000Z","Event":"Newchannel",'
            b'"Channel":"PJSIP/100-00000002"}\n\n',
        )

    def test_name_filter(self) -> None:
        """?name= keeps only the named events, without regard to case; repeats add up."""
        bridge = Bridge()
        one = self.open(bridge, "?name=hangup,USEREVENT")
        two = self.open(bridge, "?name=Newchannel&name=Hangup")
        bridge.hub(HANGUP)
        bridge.hub(NEWCHANNEL)
        bridge.hub(Message([("Event", "UserEvent")]))
        self.assertEqual([e["Event"] for e in self.data_lines(one)], ["Hangup", "UserEvent"])
        self.assertEqual([e["Event"] for e in self.data_lines(two)], ["Hangup", "Newchannel"])

    def test_non_utf8_event(self) -> None:
        """An event with bytes that are not UTF-8 streams as ASCII JSON with \\udcXX escapes."""
        bridge = Bridge()
        response = self.open(bridge)
        bridge.hub(Message.parse(b"Event: UserEvent\r\nData: caf\xe9"))
        [event] = self.data_lines(response)
        self.assertEqual(event["Data"].encode("utf-8", "surrogateescape"), b"caf\xe9")

    def test_keepalive(self) -> None:
        """A comment line is written every 15 s so proxies keep the stream open."""
        bridge = Bridge()
        response = self.open(bridge)
        response.transport.clear()
        bridge.clock.advance(15)
        self.assertEqual(_dechunk(response.transport.value()), b":\n\n")
        bridge.clock.advance(15)
        self.assertEqual(_dechunk(response.transport.value()), b":\n\n:\n\n")

    def test_paused_then_resumed(self) -> None:
        """While the socket is full, events wait; on resume they go out in order."""
        bridge = Bridge()
        response = self.open(bridge)
        response.transport.producer.pauseProducing()
        bridge.hub(HANGUP)
        bridge.hub(NEWCHANNEL)
        self.assertEqual(self.data_lines(response), [])
        response.transport.producer.resumeProducing()
        self.assertEqual([e["Event"] for e in self.data_lines(response)], ["Hangup", "Newchannel"])

    def test_slow_client_dropped(self) -> None:
        """Past max_queued_bytes waiting for a paused client, it is aborted and forgotten."""
        bridge = Bridge(max_queued_bytes=300)
        response = self.open(bridge)
        other = self.open(bridge)
        response.transport.producer.pauseProducing()
        bridge.hub(HANGUP)
        bridge.hub(HANGUP)
        self.assertFalse(response.transport.disconnecting)
        bridge.hub(HANGUP)
        # StringTransport.abortConnection sets disconnected (loseConnection would not).
        self.assertTrue(response.transport.disconnected)
        self.assertEqual(bridge.events.dropped, 1)
        self.assertEqual(len(bridge.events.streams), 1)
        self.assertEqual(len(self.data_lines(other)), 3)
        self.assertFalse(other.transport.disconnecting)

    def test_client_disconnect_unsubscribes(self) -> None:
        """A client that leaves is unsubscribed and its keepalive cancelled."""
        bridge = Bridge()
        response = self.open(bridge)
        self.assertEqual(len(bridge.hub.sinks), 1)
        response.channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((bridge.hub.sinks, bridge.events.streams), ((), set()))
        self.assertFalse(
            any(call.func.__name__ == "_ping" for call in bridge.clock.getDelayedCalls())
        )

    def test_close_all(self) -> None:
        """close_all finishes every stream (the terminating chunk is written)."""
        bridge = Bridge()
        response = self.open(bridge)
        bridge.events.close_all()
        self.assertTrue(response.transport.value().endswith(b"0\r\n\r\n"))
        self.assertEqual(bridge.hub.sinks, ())

    def test_head(self) -> None:
        """HEAD /events answers the stream's headers without opening a stream."""
        bridge = Bridge()
        response = request(bridge.site, "HEAD", "/events", AUTH)
        self.assertEqual(
            (response.code, response.headers["content-type"]), (200, "text/event-stream")
        )
        self.assertEqual((bridge.events.streams, bridge.hub.sinks), (set(), ()))

    def test_max_clients(self) -> None:
        """Past max_clients streams, a new one gets 503."""
        bridge = Bridge(max_clients=1)
        self.open(bridge)
        response = request(bridge.site, "GET", "/events", AUTH)
        self.assertEqual((response.code, response.json()["error"]), (503, "too_many_streams"))
