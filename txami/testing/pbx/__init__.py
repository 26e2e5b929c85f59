"""
`PBX`: the small in-memory telephone system behind `FakeAsterisk`'s actions.

It holds what the built-in actions read and change: channels and the calls
that create them, bridges, queues, conferences, parked calls, variables,
Asterisk's database, device, hint and presence states, voicemail boxes, IAX2
peers and the dialplan channels run.  Every change raises the events
Asterisk 20 raises for it, in Asterisk's order, through the ``emit`` hook the
server installs.  Time is the server's clock, so with a `Clock` a call
advances only when the test advances it.

The PBX is built in layers, one module per concept, each a subclass of the
one below (see `txami.testing.pbx.core`): `channels` and `core`, `devices`,
`bridges`, `calls`, `dialplan`, `queues`, `confbridge`, `parking`,
`transfers`, and `scenarios` (the methods tests and demos drive it with).
`directory` holds voicemail boxes and IAX2 peers; `capture` configures the
PBX like the real Asterisk of ``../shared/asterisk``.
"""

from __future__ import annotations

from txami.testing.pbx.bridges import Bridge
from txami.testing.pbx.capture import load_capture_defaults
from txami.testing.pbx.channels import Channel, parse_caller_id
from txami.testing.pbx.confbridge import Conference
from txami.testing.pbx.directory import IAXPeer, Mailbox
from txami.testing.pbx.parking import ParkedCall, ParkingLot
from txami.testing.pbx.queues import Queue, QueueMember
from txami.testing.pbx.scenarios import DemoTraffic
from txami.testing.pbx.system import PBX

__all__ = [
    "PBX",
    "Bridge",
    "Channel",
    "Conference",
    "DemoTraffic",
    "IAXPeer",
    "Mailbox",
    "ParkedCall",
    "ParkingLot",
    "Queue",
    "QueueMember",
    "load_capture_defaults",
    "parse_caller_id",
]
