"""
Integration tests of the daemon with a real Redis (Debian's redis-server, started on a
free port of 127.0.0.1 by each test) and several `txami.testing` fake PBXs: events in
order and once per PBX, Redis killed and restarted mid-stream, a PBX down or refusing
its login, actions through Redis (and a redelivered Originate after a daemon kill, with
``twistd`` as a real child process), and one PBX that is the real Asterisk.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IListeningPort
from twisted.trial.unittest import TestCase

from tests import realpbx
from tests.redisserver import SKIP, RedisServer, free_port
from tests.test_daemon_e2e import spawn_daemon
from tests.test_plugin import keep_checkout_clean
from txami.daemon.entries import GAP, SESSION_END, SESSION_START, actions_key, events_key
from txami.daemon.options import build_service
from txami.daemon.service import BridgeService
from txami.tap import Options
from txami.testing import FakeAsterisk, listen

Entries = list[tuple[str, dict[str, str]]]


def wait_for(condition: Any, what: str, timeout: float = 15.0) -> Deferred[Any]:
    """Poll ``condition`` on the real reactor until it is true, failing after ``timeout``."""
    return ensureDeferred(
        realpbx.wait_for(
            reactor, lambda: condition() or None, timeout=timeout, interval=0.01, what=what
        )
    )


def check_sequence(test: TestCase, entries: Entries, pbx: str) -> None:
    """Every entry is schema 1 of ``pbx``, and within each epoch seq only goes up by one."""
    last: tuple[int, int] | None = None
    for _, fields in entries:
        test.assertEqual((fields["v"], fields["pbx"]), ("1", pbx))
        test.assertEqual(json.loads(fields["json"])["pbx"], pbx)
        epoch, seq = int(fields["epoch"]), int(fields["seq"])
        if fields["event"] == SESSION_START:
            test.assertEqual(seq, 0)
            test.assertTrue(last is None or epoch > last[0], (last, fields))
        elif fields["event"] == GAP:
            # The gap marker stands for the dropped run: its seq is the run's last.
            assert last is not None
            body = json.loads(fields["json"])
            test.assertEqual(body["LastSeq"] - body["FirstSeq"] + 1, body["Dropped"])
            test.assertEqual(
                (epoch, body["FirstSeq"], seq), (last[0], last[1] + 1, body["LastSeq"])
            )
        else:
            test.assertIsNotNone(last)
            assert last is not None
            test.assertEqual((epoch, seq), (last[0], last[1] + 1), fields)
        last = (epoch, seq)


class DaemonWithRedis(TestCase):
    """A real Redis, fake PBXs, and the daemon in this process on the real reactor."""

    timeout = 60
    skip = SKIP

    def setUp(self) -> None:
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.redis = RedisServer(os.path.join(self.dir, "redis"))
        self.redis.start()
        self.addCleanup(self.redis.stop)
        self.secret = os.path.join(self.dir, "secret")
        with open(self.secret, "w") as f:
            f.write("adminsecret\n")
        self.fakes: dict[str, FakeAsterisk] = {}
        self.ports: dict[str, int] = {}
        self.client = self.redis.client()
        self.addCleanup(lambda: self.client.close())

    def fake(self, name: str) -> FakeAsterisk:
        fake = FakeAsterisk(reactor)
        port: IListeningPort = listen(fake, reactor)
        self.addCleanup(port.stopListening)
        self.addCleanup(fake.drop_all)
        self.addCleanup(fake.stop)
        self.fakes[name] = fake
        self.ports[name] = port.getHost().port  # type: ignore[attr-defined]
        return fake

    def config(self, pbxs: str, redis: str = "") -> str:
        path = os.path.join(self.dir, "txami.ini")
        with open(path, "w") as f:
            f.write(pbxs)
            f.write(f"[redis]\nurl = {self.redis.url}\nconsumer = txami-test\n{redis}")
        return path

    def pbx(self, name: str, port: int | None = None, secret: str | None = None) -> str:
        return (
            f"[pbx:{name}]\nhost = 127.0.0.1\nport = {port or self.ports[name]}\n"
            f"username = admin\nsecret-file = {secret or self.secret}\n\n"
        )

    def build(self, path: str) -> BridgeService:
        """The daemon of config file ``path``, not started, its Redis reconnecting fast."""
        options = Options()
        options.parseOptions(["--config", path])
        bridge = build_service(options, reactor, stdout=io.StringIO())
        for connection in bridge.redis:
            connection.initial_delay, connection.max_delay = 0.05, 0.2
        return bridge

    def launch(self, bridge: BridgeService) -> BridgeService:
        """Start ``bridge``, stopped again after the test."""
        bridge.startService()
        self.addCleanup(lambda: bridge.stopService() if bridge.running else None)
        return bridge

    def start(self, path: str) -> BridgeService:
        bridge = self.build(path)
        for session in bridge.sessions.values():
            session.factory.initialDelay = session.factory.delay = 0.05
            session.factory.maxDelay = 0.2
        return self.launch(bridge)

    def stream(self, pbx: str) -> Entries:
        return self.client.entries(events_key("txami", pbx))

    def events(self, pbx: str, name: str = "UserEvent") -> Entries:
        return [(i, f) for i, f in self.stream(pbx) if f["event"] == name]

    def reconnect_client(self) -> None:
        self.client.close()
        self.client = self.redis.client()

    def request(self, pbx: str, request_id: str, action: str, **headers: str) -> str:
        """Add an action request for ``pbx`` (replies to ``replies:test``); its entry id."""
        entry_id: str = self.client(
            "XADD",
            actions_key("txami", pbx),
            "*",
            "id",
            request_id,
            "action",
            action,
            "headers",
            json.dumps(headers),
            "reply_to",
            "replies:test",
            "deadline",
            str(int((time.time() + 30) * 1000)),
        )
        return entry_id


class EventStreamTests(DaemonWithRedis):
    """Events of several PBXs into their streams."""

    async def test_every_event_once_in_order_per_pbx(self) -> None:
        """Three PBXs' events each reach their own stream, once, in order, numbered."""
        names = ("east", "west", "north")
        for name in names:
            self.fake(name)
        bridge = self.start(self.config("".join(self.pbx(name) for name in names)))
        await wait_for(
            lambda: all(s.factory.protocol_instance for s in bridge.sessions.values()),
            "every PBX logged in",
        )
        for number in range(200):
            for name in names:
                self.fakes[name].emit_event("UserEvent", UserEvent=name, N=str(number))
        await wait_for(
            lambda: all(len(self.events(name)) == 200 for name in names), "600 events in Redis"
        )
        for name in names:
            entries = self.stream(name)
            check_sequence(self, entries, name)
            self.assertEqual(
                [f["event"] for _, f in entries[:3]],
                [SESSION_START, "FullyBooted", "SuccessfulAuth"],
            )
            users = [json.loads(f["json"]) for _, f in self.events(name)]
            self.assertEqual([u["N"] for u in users], [str(n) for n in range(200)])
            self.assertEqual({u["UserEvent"] for u in users}, {name})
            self.assertEqual(len(entries), 203)

    async def test_redis_killed_and_restarted(self) -> None:
        """Redis dies twice: within the buffer nothing is lost; beyond it, one exact gap."""
        fake = self.fake("east")
        bridge = self.start(self.config(self.pbx("east"), "buffer-events = 100\n"))
        await wait_for(lambda: len(self.stream("east")) == 3, "the session's first entries")
        # Killed while events flow: what was in flight is in doubt, then settled.
        for number in range(20):
            fake.emit_event("UserEvent", N=str(number))
        self.redis.kill()
        for number in range(20, 60):
            fake.emit_event("UserEvent", N=str(number))
        self.redis.start()
        self.reconnect_client()
        await wait_for(lambda: len(self.events("east")) == 60, "60 events after a restart")
        entries = self.stream("east")
        check_sequence(self, entries, "east")
        self.assertEqual(
            [json.loads(f["json"])["N"] for _, f in self.events("east")],
            [str(n) for n in range(60)],
        )
        self.assertEqual([f for _, f in entries if f["event"] == GAP], [])
        # Beyond the buffer: the oldest are dropped and reported by one gap marker.
        await wait_for(lambda: bridge.publisher.empty(), "the buffer drained")
        self.redis.kill()
        await wait_for(lambda: bridge.publisher.state == "down", "the loss noticed")
        for number in range(60, 360):
            fake.emit_event("UserEvent", N=str(number))
        metrics = bridge.sessions["east"].metrics
        await wait_for(lambda: metrics.dropped["buffer_full"] == 200, "200 events dropped")
        self.redis.start()
        self.reconnect_client()
        await wait_for(lambda: bridge.publisher.empty(), "the buffer drained again")
        entries = self.stream("east")
        check_sequence(self, entries, "east")
        [gap] = [json.loads(f["json"]) for _, f in entries if f["event"] == GAP]
        # 200 pushed out while Redis was down, and 10 % of the buffer more to leave
        # room while the backlog drained.
        dropped = metrics.dropped["buffer_full"]
        self.assertEqual((gap["Dropped"], dropped), (210, 210))
        numbers = [int(json.loads(f["json"])["N"]) for _, f in self.events("east")]
        self.assertEqual(numbers, list(range(60)) + list(range(270, 360)))
        self.assertEqual(len(set(i for i, _ in entries)), len(entries))

    async def test_one_pbx_down_one_refusing_while_others_flow(self) -> None:
        """A PBX that is down and one that refuses the login leave the others alone."""
        self.fake("up")
        refusing = self.fake("refusing")
        wrong = os.path.join(self.dir, "wrong")
        with open(wrong, "w") as f:
            f.write("not-the-secret\n")
        path = self.config(
            self.pbx("up")
            + self.pbx("down", port=free_port())
            + self.pbx("refusing", secret=wrong)
        )
        bridge = self.start(path)
        up = bridge.sessions["up"]
        await wait_for(lambda: up.factory.protocol_instance, "up logged in")
        await wait_for(
            lambda: bridge.sessions["refusing"].factory.auth_failures >= 2, "two refused logins"
        )
        await wait_for(
            lambda: bridge.sessions["down"].factory.connection_failures >= 2, "two failed connects"
        )
        for number in range(50):
            self.fakes["up"].emit_event("UserEvent", N=str(number))
        await wait_for(lambda: len(self.events("up")) == 50, "up's events")
        check_sequence(self, self.stream("up"), "up")
        self.assertEqual((self.stream("down"), self.stream("refusing")), ([], []))
        self.assertEqual(refusing.sessions, [])
        health = bridge.health()
        self.assertEqual(
            {name: h["logged_in"] for name, h in health["pbxs"].items()},
            {"up": True, "down": False, "refusing": False},
        )

    async def test_session_markers(self) -> None:
        """A dropped AMI connection ends the session; the next login starts epoch 2."""
        fake = self.fake("east")
        bridge = self.start(self.config(self.pbx("east")))
        session = bridge.sessions["east"]
        await wait_for(lambda: session.factory.protocol_instance, "logged in")
        fake.drop_all()
        await wait_for(lambda: session.factory.logins == 2, "logged in again")
        await wait_for(
            lambda: len([e for e in self.stream("east") if e[1]["event"] == SESSION_START]) == 2,
            "two sessions in the stream",
        )
        entries = self.stream("east")
        check_sequence(self, entries, "east")
        self.assertEqual(
            [(f["event"], f["epoch"]) for _, f in entries if f["event"].startswith("Txami")],
            [(SESSION_START, "1"), (SESSION_END, "1"), (SESSION_START, "2")],
        )


class ActionTests(DaemonWithRedis):
    """Actions requested through Redis."""

    def replies(self) -> list[dict[str, str]]:
        return [fields for _, fields in self.client.entries("replies:test")]

    async def test_round_trip(self) -> None:
        """A Ping request gets an ok reply with the response, and is acknowledged."""
        fake = self.fake("east")
        self.fake("west")
        bridge = self.start(self.config(self.pbx("east") + self.pbx("west")))
        await wait_for(lambda: bridge.sessions["east"].factory.protocol_instance, "logged in")
        self.request("east", "r1", "Ping")
        self.request("west", "r2", "Hangup", Channel="PJSIP/nobody-1")
        await wait_for(lambda: len(self.replies()) == 2, "two replies")
        replies = {r["id"]: r for r in self.replies()}
        self.assertEqual(replies["r1"]["outcome"], "ok")
        self.assertEqual(json.loads(replies["r1"]["json"])["response"]["Ping"], "Pong")
        self.assertEqual(replies["r2"]["outcome"], "error")
        self.assertEqual(json.loads(replies["r2"]["json"])["message"], "No such channel")
        self.assertEqual([a.name for _, a in fake.actions_received if a.name == "Ping"], ["Ping"])
        for pbx in ("east", "west"):
            await wait_for(
                lambda pbx=pbx: (
                    self.client("XPENDING", actions_key("txami", pbx), "txami")[0] == 0
                ),
                "every request acknowledged",
            )

    async def test_redelivered_originate_after_daemon_kill(self) -> None:
        """An Originate in flight when the daemon is killed is answered unknown, not re-sent."""
        keep_checkout_clean(self)
        fake = self.fake("east")
        fake.delay_action("Originate", None)
        path = self.config(self.pbx("east"))

        def daemon(name: str) -> subprocess.Popen[bytes]:
            return spawn_daemon(self, path, os.path.join(self.dir, name + ".log"))

        first = daemon("first")
        await wait_for(lambda: self.stream("east"), "the first daemon's session", timeout=30)
        self.request(
            "east",
            "call-1",
            "Originate",
            Channel="Local/1003@txami-test",
            Exten="1003",
            Async="true",
        )
        originates = lambda: [a for _, a in fake.actions_received if a.name == "Originate"]  # noqa: E731
        await wait_for(originates, "the Originate at the PBX")
        first.kill()
        first.wait(timeout=30)
        self.assertEqual(self.replies(), [])
        daemon("second")
        await wait_for(self.replies, "a reply from the second daemon", timeout=30)
        [reply] = self.replies()
        self.assertEqual((reply["id"], reply["outcome"]), ("call-1", "unknown"))
        self.assertEqual(len(originates()), 1)


class RealAsteriskTests(DaemonWithRedis):
    """One [pbx:...] section that is the real Asterisk of ../shared/asterisk."""

    skip = SKIP or realpbx.SKIP

    async def test_real_asterisk_into_redis(self) -> None:
        """Its session and events reach the stream; a UserEvent requested through Redis too."""
        host, port = realpbx.address()
        path = self.config(
            f"[pbx:real]\nhost = {host}\nport = {port}\nusername = admin\n"
            f"secret-file = {self.secret}\n\n"
        )
        bridge = self.start(path)
        await wait_for(lambda: bridge.sessions["real"].factory.protocol_instance, "logged in")
        tag = realpbx.unique_tag("redis")
        self.client(
            "XADD",
            actions_key("txami", "real"),
            "*",
            "id",
            tag,
            "action",
            "UserEvent",
            "headers",
            json.dumps({"UserEvent": "TxamiRedis", "Tag": tag}),
            "reply_to",
            "replies:real",
            "deadline",
            str(int((time.time() + 30) * 1000)),
        )
        await wait_for(lambda: self.client.entries("replies:real"), "the reply")
        [(_, reply)] = self.client.entries("replies:real")
        self.assertEqual(reply["outcome"], "ok")

        def tagged() -> Any:
            return [
                f
                for _, f in self.stream("real")
                if f["event"] == "UserEvent" and json.loads(f["json"]).get("Tag") == tag
            ]

        [event] = await wait_for(tagged, "the UserEvent in the stream")
        self.assertEqual(json.loads(event["json"])["UserEvent"], "TxamiRedis")
        entries = self.stream("real")
        self.assertEqual(entries[0][1]["event"], SESSION_START)
        check_sequence(self, entries, "real")
