"""
`Channel`: one channel of the fake PBX, the snapshot Asterisk reports it by,
and the `Bridge` that joins channels in a call (bridges.py moves them in and out).

Asterisk does not describe a channel as it is, but as it was last
*published*: each change (a state, a caller ID, a step of the dialplan) is
published as a snapshot, and the manager compares the new snapshot with the
previous one to decide which events to raise (``Newstate``, ``Newexten``,
``NewCallerid``, ...; see `Snapshot` and ``PBXCore.publish``).  Every other
event that names a channel (``VarSet``, ``DialBegin``, ``BridgeEnter``) carries
the last published snapshot, which is why a channel's headers come from
`Channel.published` rather than from its live fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

__all__ = [
    "CAUSES",
    "STATE_DESCRIPTIONS",
    "Bridge",
    "Channel",
    "Snapshot",
    "parse_caller_id",
]

STATE_DESCRIPTIONS = {
    0: "Down",
    1: "Rsrvd",
    2: "OffHook",
    3: "Dialing",
    4: "Ring",
    5: "Ringing",
    6: "Up",
    7: "Busy",
    8: "Dialing Offhook",
    9: "Pre-ring",
}

#: Q.850 cause texts as Asterisk prints them in ``Cause-txt``.
CAUSES = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call Rejected",
    26: "Answered elsewhere",
    27: "Destination out of order",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    127: "Interworking, unspecified",
}


def parse_caller_id(text: str) -> tuple[str, str]:
    """``'"Name" <5551000>'`` -> ``("Name", "5551000")``; a bare number has no name."""
    text = text.strip()
    match = re.match(r'^\s*(?:"([^"]*)"|([^<]*?))\s*<([^>]*)>\s*$', text)
    if match:
        name = match.group(1) if match.group(1) is not None else (match.group(2) or "")
        return name.strip(), match.group(3).strip()
    if re.fullmatch(r"[0-9*#+]+", text):
        return "", text
    return text, ""


class Snapshot(NamedTuple):
    """What the manager knows of a channel: the fields its events report."""

    name: str
    state: int
    caller_num: str
    caller_name: str
    connected_num: str
    connected_name: str
    language: str
    account_code: str
    context: str
    exten: str
    priority: int
    application: str
    data: str
    uniqueid: str
    linkedid: str
    dead: bool
    cause: int

    @property
    def location(self) -> tuple[str, str, int]:
        """Context, extension and priority: what ``Newexten`` watches."""
        return self.context, self.exten, self.priority

    def headers(self, prefix: str = "") -> list[tuple[str, str]]:
        """The channel headers of every channel event (``Channel`` ... ``Linkedid``)."""
        return [
            (prefix + "Channel", self.name),
            (prefix + "ChannelState", str(self.state)),
            (prefix + "ChannelStateDesc", STATE_DESCRIPTIONS.get(self.state, "Unknown")),
            (prefix + "CallerIDNum", self.caller_num or "<unknown>"),
            (prefix + "CallerIDName", self.caller_name or "<unknown>"),
            (prefix + "ConnectedLineNum", self.connected_num or "<unknown>"),
            (prefix + "ConnectedLineName", self.connected_name or "<unknown>"),
            (prefix + "Language", self.language),
            (prefix + "AccountCode", self.account_code),
            (prefix + "Context", self.context),
            (prefix + "Exten", self.exten),
            (prefix + "Priority", str(self.priority)),
            (prefix + "Uniqueid", self.uniqueid),
            (prefix + "Linkedid", self.linkedid),
        ]


@dataclass(eq=False)
class Channel:
    """
    One channel: its identity, state, caller IDs, dialplan position and
    variables, and what it is doing (``bridge``, ``queue``, the Local ``peer``).

    The fields are the channel as it is now; `published` is the snapshot the
    manager last reported, from which events take their headers.
    """

    name: str
    uniqueid: str
    linkedid: str
    state: int = 0
    caller_num: str = ""
    caller_name: str = ""
    connected_num: str = ""
    connected_name: str = ""
    language: str = "en"
    account_code: str = ""
    context: str = "default"
    exten: str = "s"
    priority: int = 1
    application: str = ""
    data: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    created: float = 0.0
    #: When the channel answered (clock seconds), or `None`.
    answered_at: float | None = None
    #: The other half of a Local channel pair (``;1`` <-> ``;2``).
    peer: Channel | None = field(default=None, repr=False)
    #: Whether the channel is gone (its ``Hangup`` was raised).
    hungup: bool = False
    #: Whether it is hanging up (its application is stopped for that, not moved).
    ending: bool = False
    #: The Q.850 cause it hangs up with.
    cause: int = 0
    #: The queue it waits in, if any.
    queue: str | None = None
    #: The bridge it is in, if any.
    bridge: Bridge | None = field(default=None, repr=False)
    #: Whether it runs the dialplan (ending it raises ``SoftHangupRequest``).
    in_pbx: bool = False
    #: Whether it is on hold (``Hold`` raised, ``Unhold`` not yet).
    on_hold: bool = False
    #: The last snapshot the manager reported (`None` before ``Newchannel``).
    published: Snapshot | None = field(default=None, repr=False)
    timer: IDelayedCall | None = field(default=None, repr=False)
    hangup_timer: IDelayedCall | None = field(default=None, repr=False)
    #: Stops the application the channel runs (when it is hung up or redirected).
    stop_app: Callable[[], None] | None = field(default=None, repr=False)
    #: Where a redirect sends the channel once it is out of its bridge or application.
    goto: tuple[str, str, int] | None = None
    #: What the channel does when its bridge ends without it hanging up.
    after_bridge: Callable[[], None] | None = field(default=None, repr=False)
    #: The outgoing call (a ``Dialing``) waiting for this channel to answer, if any.
    call: object | None = field(default=None, repr=False)
    #: The music-on-hold class playing to the channel, if any.
    music_class: str | None = None
    #: Whether this Local ``;2`` may optimise its pair away (no ``/n``).
    optimizable: bool = False
    #: Whether its Local pair is optimising itself away.
    optimizing: bool = False

    @property
    def technology(self) -> str:
        """``Local``, ``PJSIP``, ...: the part of the name before the slash."""
        return self.name.partition("/")[0]

    @property
    def device(self) -> str:
        """The device it belongs to: its name without the ``-0000000a;1`` suffix."""
        base = self.name.rpartition("-")[0] if "-" in self.name else self.name
        return base or self.name

    @property
    def state_description(self) -> str:
        """``Up``, ``Ring``, ... as Asterisk names the state."""
        return STATE_DESCRIPTIONS.get(self.state, "Unknown")

    def current(self) -> Snapshot:
        """The snapshot of the channel as it is now."""
        return Snapshot(
            self.name,
            self.state,
            self.caller_num,
            self.caller_name,
            self.connected_num,
            self.connected_name,
            self.language,
            self.account_code,
            self.context,
            self.exten,
            self.priority,
            self.application,
            self.data,
            self.uniqueid,
            self.linkedid,
            self.hungup,
            self.cause,
        )

    def snapshot(self, prefix: str = "") -> list[tuple[str, str]]:
        """The channel headers as last reported (``Channel`` ... ``Linkedid``)."""
        return (self.published or self.current()).headers(prefix)


@dataclass(eq=False)
class Bridge:
    """One bridge: its identity, kind and members (in the order they joined)."""

    uniqueid: str
    type: str = "basic"
    technology: str = "simple_bridge"
    creator: str = ""
    name: str = ""
    video_source_mode: str = "none"
    #: The members events name, in join order.
    channels: list[Channel] = field(default_factory=list)
    #: Names of the members no event names (ConfBridge's announcer).
    hidden: list[str] = field(default_factory=list)
    #: Whether the bridge ends when a member hangs up (Dial's and Queue's do).
    dissolve_on_hangup: bool = True
    #: Whether a member may leave it only by a masquerade (ConfBridge's): Park refuses
    #: to move one out (``bridge_move_locked``'s ``AST_BRIDGE_FLAG_MASQUERADE_ONLY``).
    masquerade_only: bool = False
    #: Whether it is gone.
    destroyed: bool = False

    @property
    def num_channels(self) -> int:
        """``BridgeNumChannels``: members, hidden ones included."""
        return len(self.channels) + len(self.hidden)

    @property
    def holding(self) -> bool:
        """Whether this is a holding bridge (parking): no ``BRIDGEPEER``."""
        return self.technology == "holding_bridge"

    def headers(self, prefix: str = "Bridge") -> list[tuple[str, str]]:
        """The bridge headers of bridge events (``BridgeUniqueid`` ... ``VideoSourceMode``)."""
        return [
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Type", self.type),
            (f"{prefix}Technology", self.technology),
            (f"{prefix}Creator", self.creator or "<unknown>"),
            (f"{prefix}Name", self.name or "<unknown>"),
            (f"{prefix}NumChannels", str(self.num_channels)),
            (f"{prefix}VideoSourceMode", self.video_source_mode),
        ]
