"""
Integration tests of the action consumer's two guarantees against a real Redis (Debian's
redis-server on a free port of 127.0.0.1) and a `txami.testing` fake PBX: requests left
pending by another consumer are claimed and answered (at start: one whose guard was set
answered unknown and not sent, one deleted meanwhile dropped; later: one run), and an
answered request delivered again (its group rewound) is acknowledged without a second
reply and not sent again.  One test kills a ``twistd`` child mid-Originate and lets a
second daemon, under another consumer name, claim the request; another lets a claimer
answer a request while this daemon's Originate still runs, whose late outcome is then not
added as a second reply (the reply's script, against the real Redis); with a Redis user
not allowed that script, replies are a transaction as before.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from twisted.logger import LogLevel, capturedLogs

from tests.test_daemon_e2e import spawn_daemon
from tests.test_plugin import keep_checkout_clean
from tests.test_redis_streams import DaemonWithRedis, wait_for
from txami.daemon.actionconsumer import GUARDED_REPLY
from txami.daemon.entries import actions_key, guard_key
from txami.daemon.service import BridgeService

KEY = actions_key("txami", "east")
ORIGINATE = {
    "Channel": "Local/1@default",
    "Exten": "1",
    "Context": "default",
    "Priority": "1",
    "Async": "true",
}


class ActionGapTests(DaemonWithRedis):
    """One fake PBX, east, and the daemon in this process; requests through a real Redis."""

    def start(self, path: str) -> BridgeService:
        """Start the daemon with its blocking reads shortened to 0.2 s (claims wait for them)."""
        bridge = self.build(path)
        assert bridge.actions is not None
        bridge.actions.block_ms = 200
        return self.launch(bridge)

    def replies(self) -> list[tuple[str, str]]:
        return [(f["id"], f["outcome"]) for _, f in self.client.entries("replies:test")]

    def pending(self) -> list[Any]:
        """The group's pending entries: [id, consumer, idle ms, deliveries] each."""
        result: list[Any] = self.client("XPENDING", KEY, "txami", "-", "+", "100")
        return result

    def originates(self) -> int:
        fake = self.fakes["east"]
        return len([a for _, a in fake.actions_received if a.name == "Originate"])

    def ghost_reads(self, consumer: str) -> None:
        """Another consumer reads every new request and never answers (a daemon that died)."""
        self.client("XREADGROUP", "GROUP", "txami", consumer, "COUNT", "100", "STREAMS", KEY, ">")

    async def logged_in(self, bridge: BridgeService) -> None:
        await wait_for(lambda: bridge.sessions["east"].factory.protocol_instance, "logged in")

    async def test_abandoned_requests_are_claimed(self) -> None:
        """Requests pending with a consumer that is gone are claimed, at start and later."""
        self.fake("east")
        self.client("XGROUP", "CREATE", KEY, "txami", "0", "MKSTREAM")
        sent = self.request("east", "o1", "Originate", **ORIGINATE)
        deleted = self.request("east", "d1", "Ping")
        self.ghost_reads("txami-ghost")
        # The dead daemon had sent the Originate: its guard is set; d1 is gone from the stream.
        self.client("SET", guard_key("txami", "east", "o1"), f"sent {sent}", "EX", "600")
        self.client("XDEL", KEY, deleted)
        await wait_for(
            lambda: all(idle >= 1000 for _, _, idle, _ in self.pending()), "idle for 1 s"
        )
        bridge = self.start(self.config(self.pbx("east"), "claim-idle = 1\n"))
        await wait_for(self.replies, "the Originate answered")
        await wait_for(lambda: self.pending() == [], "both gone from the pending list")
        self.assertEqual(self.replies(), [("o1", "unknown")])
        # Later, while the daemon runs, one more is left pending by another consumer (added
        # and read in one transaction, so that the daemon's blocked read does not get it).
        await self.logged_in(bridge)
        self.client("MULTI")
        self.request("east", "p1", "Ping")
        self.ghost_reads("txami-ghost-2")
        self.client("EXEC")
        [[_, consumer, _, _]] = self.pending()
        self.assertEqual(consumer, "txami-ghost-2")
        await wait_for(lambda: len(self.replies()) >= 2, "the claimed request answered")
        self.assertEqual(self.replies()[-1], ("p1", "ok"))
        await wait_for(lambda: self.pending() == [], "acknowledged")
        self.assertEqual(self.originates(), 0)

    async def test_answered_request_delivered_again(self) -> None:
        """An answered Originate delivered again is acknowledged: no second reply, not re-sent."""
        self.fake("east")
        await self.logged_in(self.start(self.config(self.pbx("east"))))
        entry = self.request("east", "o1", "Originate", **ORIGINATE)
        await wait_for(self.replies, "the reply")
        await wait_for(lambda: self.pending() == [], "acknowledged")
        self.assertEqual(self.replies(), [("o1", "ok")])
        self.assertEqual(self.client("GET", guard_key("txami", "east", "o1")), f"replied {entry}")
        # Rewound, the group delivers the answered request again (as a crash between the
        # reply and its XACK would have, before they were one transaction).
        self.client("XGROUP", "SETID", KEY, "txami", "0")
        self.request("east", "p1", "Ping")
        await wait_for(lambda: len(self.replies()) >= 2, "the Ping's reply")
        await wait_for(lambda: self.pending() == [], "both acknowledged")
        self.assertEqual(self.replies(), [("o1", "ok"), ("p1", "ok")])
        self.assertEqual(self.originates(), 1)

    async def test_late_outcome_after_a_claim_is_not_added(self) -> None:
        """An Originate another consumer claimed and answered meanwhile gets no second reply."""
        fake = self.fake("east")
        fake.delay_action("Originate", 2.0)
        bridge = self.start(self.config(self.pbx("east")))
        await self.logged_in(bridge)
        entry = self.request("east", "o1", "Originate", **ORIGINATE)
        await wait_for(self.originates, "the Originate at the PBX")
        guard = guard_key("txami", "east", "o1")
        self.assertEqual(self.client("GET", guard), f"sent {entry}")
        # What a daemon that claimed the request does (this one could not reach Redis for
        # claim-idle, say): it finds the guard set and answers unknown, by the same script.
        self.client("XCLAIM", KEY, "txami", "txami-b", "0", entry, "JUSTID")
        unknown = '{"error":"redelivered"}'
        args = ["replies:test", KEY, f"replied {entry}", "600", "10000", "o1", "unknown"]
        answered = self.client("EVAL", GUARDED_REPLY, "3", guard, *args, unknown, "txami", entry)
        self.assertEqual((answered, self.replies(), self.pending()), (1, [("o1", "unknown")], []))
        assert bridge.actions is not None
        with capturedLogs() as events:
            await wait_for(lambda: not bridge.actions.active, "this daemon's Originate answered")
        [late] = [e for e in events if e.get("outcome") == "ok"]
        self.assertEqual(
            (late["id"], late["entry"], late["log_level"]), ("o1", entry, LogLevel.warn)
        )
        self.assertEqual(self.replies(), [("o1", "unknown")])
        self.assertEqual(self.client("GET", guard), f"replied {entry}")
        self.assertEqual((self.pending(), self.originates()), ([], 1))

    async def test_guarded_reply_to_not_a_stream(self) -> None:
        """An Originate whose reply_to is not a stream: no reply, but guard replied and acked."""
        self.fake("east")
        bridge = self.start(self.config(self.pbx("east")))
        await self.logged_in(bridge)
        self.client("SET", "replies:test", "not a stream")
        entry = self.request("east", "o1", "Originate", **ORIGINATE)
        guard = guard_key("txami", "east", "o1")
        await wait_for(lambda: self.client("GET", guard) == f"replied {entry}", "answered")
        self.assertEqual(self.client("GET", "replies:test"), "not a stream")
        self.assertEqual((self.pending(), self.originates()), ([], 1))

    async def test_redis_without_eval(self) -> None:
        """A Redis user not allowed EVAL: an Originate is answered all the same, in a MULTI."""
        self.fake("east")
        self.client("ACL", "SETUSER", "default", "-eval")
        bridge = self.start(self.config(self.pbx("east")))
        await self.logged_in(bridge)
        entry = self.request("east", "o1", "Originate", **ORIGINATE)
        await wait_for(self.replies, "the reply")
        await wait_for(lambda: self.pending() == [], "acknowledged")
        self.assertEqual(self.replies(), [("o1", "ok")])
        self.assertEqual(self.client("GET", guard_key("txami", "east", "o1")), f"replied {entry}")
        assert bridge.actions is not None
        self.assertFalse(bridge.actions._can_script)

    def daemon(self, name: str, consumer: str, claim_idle: int) -> subprocess.Popen[bytes]:
        """``twistd txami`` as a child process, with its own consumer name; killed at the end."""
        path = os.path.join(self.dir, f"{name}.ini")
        with open(path, "w") as f:
            f.write(self.pbx("east"))
            f.write(
                f"[redis]\nurl = {self.redis.url}\nconsumer = {consumer}\n"
                f"claim-idle = {claim_idle}\n"
            )
        return spawn_daemon(self, path, os.path.join(self.dir, name + ".log"))

    async def test_killed_daemon_claimed_under_another_name(self) -> None:
        """An Originate in flight when its daemon dies is claimed by another: unknown, once."""
        keep_checkout_clean(self)
        fake = self.fake("east")
        fake.delay_action("Originate", None)
        first = self.daemon("first", "txami-a", 0)
        await wait_for(lambda: self.stream("east"), "the first daemon's session", timeout=30)
        self.request("east", "o1", "Originate", **ORIGINATE)
        await wait_for(self.originates, "the Originate at the PBX")
        first.kill()
        first.wait(timeout=30)
        [[_, consumer, _, _]] = self.pending()
        self.assertEqual((consumer, self.replies()), ("txami-a", []))
        self.daemon("second", "txami-b", 1)
        await wait_for(self.replies, "a reply from the second daemon", timeout=30)
        await wait_for(lambda: self.pending() == [], "acknowledged")
        self.assertEqual(self.replies(), [("o1", "unknown")])
        self.assertEqual(self.originates(), 1)
