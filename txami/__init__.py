"""
txami: a Twisted client for the Asterisk Manager Interface (AMI).

Everything a program needs is importable from here; the submodules hold one
concept each (`txami.message`, `txami.protocol`, `txami.errors`, ...).
"""

from txami.compat import AMIVersion
from txami.connect import connect, tls_options
from txami.dispatch import EventDispatcher, EventHandler, ReadEndHandler
from txami.errors import (
    ActionTimeout,
    AMIError,
    AuthenticationError,
    ConnectionLost,
    NotConnected,
    OriginateError,
    ProtocolError,
    TxamiError,
)
from txami.factory import AMIFactory
from txami.keepalive import Keepalive
from txami.listener import IConnectionListener
from txami.message import Message
from txami.protocol import AMIProtocol
from txami.state import (
    Bridge,
    Call,
    Channel,
    DeviceState,
    Hint,
    IStateListener,
    ObjectGone,
    PBXState,
    PresenceState,
    Queue,
    QueueEntry,
    QueueMember,
    StateListenerMixin,
    StateStopped,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "AMIError",
    "AMIFactory",
    "AMIProtocol",
    "AMIVersion",
    "ActionTimeout",
    "AuthenticationError",
    "Bridge",
    "Call",
    "Channel",
    "ConnectionLost",
    "DeviceState",
    "EventDispatcher",
    "EventHandler",
    "Hint",
    "IConnectionListener",
    "IStateListener",
    "Keepalive",
    "Message",
    "NotConnected",
    "ObjectGone",
    "OriginateError",
    "PBXState",
    "PresenceState",
    "ProtocolError",
    "Queue",
    "QueueEntry",
    "QueueMember",
    "ReadEndHandler",
    "StateListenerMixin",
    "StateStopped",
    "TxamiError",
    "__version__",
    "connect",
    "tls_options",
]
