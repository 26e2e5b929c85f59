"""
txami.testing: a fake Asterisk Manager Interface server for tests.

`FakeAsterisk` answers like Asterisk 20 (the banner, plaintext and MD5
logins, permission classes, Asterisk's error texts, list actions) from a
small in-memory `PBX`, and lets a test script actions, raise events and
inject faults.  `connected_pair` logs a txami client in to it in memory,
`listen` serves it on 127.0.0.1, and `replay` feeds recorded server bytes to
a protocol::

    fake = FakeAsterisk(clock)
    client, session, pump = connected_pair(fake, clock)
    d = client.ping()
    pump.flush()

``fake.pbx`` models calls, bridges, queues, conferences, parking, transfers
and device states with Asterisk 20's events; tests drive it without AMI
(``fake.pbx.incoming_call("600")``, ``pause_member``, ``set_device_state``...).

`FakeAGI` plays Asterisk's side of an AGI session, to test AGI handlers
(`txami.testing.agi`).
"""

from txami.testing.actions import response
from txami.testing.agi import FakeAGI, FakeAsyncAGI
from txami.testing.helpers import ChunkPump, connected_pair, listen, replay
from txami.testing.pbx import PBX, Bridge, Channel, IAXPeer, Mailbox, Queue, QueueMember
from txami.testing.permissions import AMIUser
from txami.testing.server import BOOTING_ACTIONS, ActionHandler, FakeAsterisk, FakeSession

__all__ = [
    "BOOTING_ACTIONS",
    "PBX",
    "AMIUser",
    "ActionHandler",
    "Bridge",
    "Channel",
    "ChunkPump",
    "FakeAGI",
    "FakeAsterisk",
    "FakeAsyncAGI",
    "FakeSession",
    "IAXPeer",
    "Mailbox",
    "Queue",
    "QueueMember",
    "connected_pair",
    "listen",
    "replay",
    "response",
]
