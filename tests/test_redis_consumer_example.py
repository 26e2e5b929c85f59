"""
examples/redis_consumer.py (redis-py) against the daemon and a real Redis: it follows
the stream, and resynchronises on a new session and on a gap, with an action through Redis.
"""

from __future__ import annotations

import os
import sys

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue

from tests.redisserver import SKIP as REDIS_SKIP
from tests.test_plugin import ROOT
from tests.test_redis_streams import DaemonWithRedis, wait_for

EXAMPLE = os.path.join(ROOT, "examples", "redis_consumer.py")


def _skip() -> str | None:
    if REDIS_SKIP:
        return REDIS_SKIP
    try:
        import redis  # noqa: F401
    except ImportError:
        return "redis-py is not installed: pip install -e '.[test]'"
    return None


class ConsumerExampleTests(DaemonWithRedis):
    """The consumer example reads what the daemon published."""

    skip = _skip()

    async def test_follows_and_resynchronises(self) -> None:
        """It prints the events, resynchronises on the session start and on the gap."""
        fake = self.fake("east")
        bridge = self.start(self.config(self.pbx("east"), "buffer-events = 10\n"))
        await wait_for(lambda: len(self.stream("east")) == 3, "the session's first entries")
        fake.emit_event("Newchannel", Channel="PJSIP/100-00000001")
        fake.emit_event("Hangup", Channel="PJSIP/100-00000001", Cause="16")
        await wait_for(lambda: len(self.stream("east")) == 5, "two events")
        self.redis.kill()
        await wait_for(lambda: bridge.publisher.state == "down", "the loss noticed")
        for number in range(30):
            fake.emit_event("UserEvent", N=str(number))
        metrics = bridge.sessions["east"].metrics
        await wait_for(lambda: metrics.dropped["buffer_full"] == 20, "20 events dropped")
        self.redis.start()
        self.reconnect_client()
        await wait_for(lambda: bridge.publisher.empty(), "the buffer drained")
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            [EXAMPLE, self.redis.url, "east", "--from-start", "--idle-exit", "1"],
            env=dict(os.environ),
            reactor=reactor,
        )
        self.assertEqual((code, err), (0, b""))
        lines = out.decode().splitlines()
        self.assertEqual(
            lines[:6],
            [
                "east: resynchronising after a new AMI session (epoch 1)",
                "east: 0 channels up",
                "east: FullyBooted",
                "east: SuccessfulAuth",
                "east: Newchannel PJSIP/100-00000001",
                "east: Hangup PJSIP/100-00000001",
            ],
        )
        self.assertEqual(
            lines[6:8], ["east: resynchronising after a gap of 21 events", "east: 0 channels up"]
        )
        self.assertEqual(lines[8:], ["east: UserEvent"] * 9)
        self.assertEqual([key for key in self.client("KEYS", "txami:replies:*")], [])
