"""
Follow the events of several PBXs through Redis Streams, and resynchronise on a gap.

The txami daemon (``twistd txami --config FILE`` with a ``[redis]`` section) adds
every event of PBX ``NAME`` to the stream ``txami:{NAME}:events``.  This consumer
(redis-py, ``pip install redis``) reads those streams from where it stopped, checks
that each PBX's ``seq`` follows on within its session (``epoch``), and whenever it
cannot be sure it saw everything - a new AMI session, a ``TxamiGap`` marker, a
``seq`` that skips - it resynchronises: it asks the PBX for its channels with a
``CoreShowChannels`` action sent through the PBX's request stream, and waits for
the reply.

    python examples/redis_consumer.py redis://127.0.0.1:6379/0 east west
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

import redis

PREFIX = "txami"


def events_key(pbx: str) -> str:
    return f"{PREFIX}:{{{pbx}}}:events"


def request(client: redis.Redis, pbx: str, action: str, headers: dict[str, Any]) -> Any:
    """Run ``action`` on ``pbx`` through Redis and return the reply's outcome and body."""
    request_id = uuid.uuid4().hex
    reply_to = f"{PREFIX}:replies:{request_id}"
    client.xadd(
        f"{PREFIX}:{{{pbx}}}:actions",
        {
            "id": request_id,
            "action": action,
            "headers": json.dumps(headers),
            "reply_to": reply_to,
            "deadline": str(int((time.time() + 10) * 1000)),
        },
    )
    try:
        answer = client.xread({reply_to: "0"}, count=1, block=15_000)
        if not answer:
            return "no reply", None
        [(_, [(_, fields)])] = answer
        return fields["outcome"], json.loads(fields["json"])
    finally:
        client.delete(reply_to)


class PBXFollower:
    """What the consumer knows about one PBX's stream."""

    def __init__(self, pbx: str) -> None:
        self.pbx = pbx
        self.epoch: int | None = None
        self.seq: int | None = None
        self.channels: set[str] = set()

    def entry(self, client: redis.Redis, fields: dict[str, str]) -> None:
        epoch, seq, name = int(fields["epoch"]), int(fields["seq"]), fields["event"]
        event = json.loads(fields["json"])
        if name == "TxamiSessionStart":
            self.resync(client, f"a new AMI session (epoch {epoch})")
        elif name == "TxamiGap":
            self.resync(client, f"a gap of {event['Dropped']} events")
        elif name == "TxamiSessionEnd":
            print(f"{self.pbx}: the AMI session {epoch} ended ({event['Reason']})")
        elif (epoch, seq) != (self.epoch, (self.seq or 0) + 1):
            # Not seen before, or something skipped: at-least-once delivery can
            # repeat an entry (skip it), but never silently lose one.
            if self.epoch == epoch and self.seq is not None and seq <= self.seq:
                return
            self.resync(client, f"seq {seq} after {self.seq} (epoch {epoch})")
        else:
            self.event(event)
        self.epoch, self.seq = epoch, seq

    def event(self, event: dict[str, Any]) -> None:
        name = event["Event"]
        if name == "Newchannel":
            self.channels.add(event["Channel"])
        elif name == "Hangup":
            self.channels.discard(event["Channel"])
        print(f"{self.pbx}: {name} {event.get('Channel', '')}".rstrip())

    def resync(self, client: redis.Redis, why: str) -> None:
        print(f"{self.pbx}: resynchronising after {why}")
        outcome, body = request(client, self.pbx, "CoreShowChannels", {})
        if outcome != "ok":
            print(f"{self.pbx}: could not list the channels: {outcome} {body}")
            return
        self.channels = {item["Channel"] for item in body["events"]}
        print(f"{self.pbx}: {len(self.channels)} channels up")


def follow(url: str, pbxs: list[str], start: str = "$", idle_exit: float | None = None) -> None:
    """Read every PBX's stream from ``start`` (``0``: the beginning) until interrupted."""
    client = redis.Redis.from_url(url, decode_responses=True)
    followers = {events_key(pbx): PBXFollower(pbx) for pbx in pbxs}
    positions = dict.fromkeys(followers, start)
    idle_since = time.monotonic()
    while True:
        answer = client.xread(positions, count=500, block=500)
        if not answer:
            if idle_exit is not None and time.monotonic() - idle_since > idle_exit:
                return
            continue
        idle_since = time.monotonic()
        for key, entries in answer:
            for entry_id, fields in entries:
                followers[key].entry(client, fields)
                positions[key] = entry_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="redis://host:port/db")
    parser.add_argument("pbxs", nargs="+", help="the [pbx:NAME] names to follow")
    parser.add_argument("--from-start", action="store_true", help="read the streams from 0")
    parser.add_argument("--idle-exit", type=float, help="exit after this many idle seconds")
    args = parser.parse_args()
    follow(args.url, args.pbxs, "0" if args.from_start else "$", args.idle_exit)


if __name__ == "__main__":
    main()
