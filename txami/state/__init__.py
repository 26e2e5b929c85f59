"""
txami.state: the live model of an Asterisk server (`PBXState`).

Channels, bridges, calls, queues, device states and hints, kept true from
the AMI event stream across reconnects; listeners (`IStateListener`,
`StateListenerMixin`) hear of every change; `PBXState.snapshot` gives it all
as JSON-able data.  The guide is ``docs/state.rst``.
"""

from txami.state.device import DeviceState, Hint, PresenceState
from txami.state.errors import ObjectGone, StateStopped
from txami.state.listener import IStateListener, StateListenerMixin
from txami.state.objects import Bridge, Call, Channel
from txami.state.pbxstate import PBXState
from txami.state.queue import Queue, QueueEntry, QueueMember
from txami.state.snapshot import SNAPSHOT_VERSION

__all__ = [
    "SNAPSHOT_VERSION",
    "Bridge",
    "Call",
    "Channel",
    "DeviceState",
    "Hint",
    "IStateListener",
    "ObjectGone",
    "PBXState",
    "PresenceState",
    "Queue",
    "QueueEntry",
    "QueueMember",
    "StateListenerMixin",
    "StateStopped",
]
