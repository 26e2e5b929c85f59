"""
The objects of the call model: `Channel`, `Bridge` and `Call`.

They point at each other (a channel's bridge and call, a bridge's members, a
call's channels), so they live together.  Each is updated in place for its
whole life, so a program may hold one and read it later; each has an
``as_dict()`` that is its part of the snapshot.

A channel is keyed by its ``Uniqueid``; it is dropped from
`PBXState.channels` when it hangs up (its `hangup_cause` is then set).
Every event Asterisk 12+ sends about a channel carries the whole snapshot of
it, so each one refreshes every field.

A call is a connected component of channels, joined by the bridges they are
in, by the two halves of a Local channel, and by dials (see
`txami.state.grouping`).  It is not a ``Linkedid``: Asterisk rewrites
Linkedid when channels join a bridge, and never splits it again.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime

from txami.state.errors import ObjectGone
from txami.state.fields import (
    _INTERNED,
    _INTS,
    ChannelSnapshot,
    intern_value,
    to_int,
)
from txami.state.waiters import Waiters

__all__ = ["BRIDGE_FIELDS", "CALL_FIELDS", "CHANNEL_FIELDS", "UP", "Bridge", "Call", "Channel"]

#: The fields of `Channel.as_dict`, in order (the snapshot's channel shape).
CHANNEL_FIELDS = (
    "uniqueid",
    "linkedid",
    "name",
    "state",
    "state_desc",
    "caller_id_num",
    "caller_id_name",
    "connected_line_num",
    "connected_line_name",
    "language",
    "account_code",
    "context",
    "exten",
    "priority",
    "application",
    "app_data",
    "bridge",
    "call",
    "on_hold",
    "created",
    "answered",
    "hangup_cause",
)

#: The channel state Asterisk calls "Up" (answered).
UP = 6


#: What Asterisk prints for an empty caller ID or connected line.
_UNKNOWN = "<unknown>"


class Channel:
    """
    An Asterisk channel: the fields of Asterisk's channel snapshot, plus
    what the model adds (`bridge`, `call`, `on_hold`, times).

    ``state`` is Asterisk's state number (6 is Up) and ``state_desc`` its
    name; caller and connected-line fields are ``""`` where Asterisk says
    ``<unknown>``.  ``application``/``app_data`` are the last dialplan
    application that Asterisk announced (``Newexten``) or a list showed.
    ``created`` and ``answered`` are times on the model's clock (for a
    channel first seen by a list: its age as Asterisk reports it; if it was
    already answered then, ``answered`` is ``created``, since no list says
    when).  ``hangup_cause`` is `None` while the channel is up, the Q.850
    cause once it hung up, and 0 when it vanished without a ``Hangup`` event
    (gone while disconnected, or Asterisk restarted).
    """

    __slots__ = (
        "_born",
        "_links",
        "_peer",
        "_seq",
        "_waiters",
        "account_code",
        "answered",
        "app_data",
        "application",
        "bridge",
        "call",
        "caller_id_name",
        "caller_id_num",
        "connected_line_name",
        "connected_line_num",
        "context",
        "created",
        "exten",
        "hangup_cause",
        "language",
        "linkedid",
        "name",
        "on_hold",
        "priority",
        "state",
        "state_desc",
        "uniqueid",
    )

    uniqueid: str
    linkedid: str
    name: str
    state: int
    state_desc: str
    caller_id_num: str
    caller_id_name: str
    connected_line_num: str
    connected_line_name: str
    language: str
    account_code: str
    context: str
    exten: str
    priority: int
    application: str
    app_data: str
    bridge: Bridge | None
    call: Call | None
    on_hold: bool
    created: float
    answered: float | None
    hangup_cause: int | None
    #: Other channels linked to this one (dials, ...), with the link kinds as bits.
    _links: dict[Channel, int] | None
    #: The other half of a Local channel (kept apart from `_links`: every Local has one).
    _peer: Channel | None
    _waiters: Waiters | None
    _seq: int
    #: Whether `created` is known (a Newchannel was seen, or a list told the age).
    _born: bool

    def __init__(self, snapshot: ChannelSnapshot, now: float, seq: int = 0) -> None:
        (
            self.name,
            state,
            desc,
            caller_num,
            caller_name,
            connected_num,
            connected_name,
            language,
            account,
            context,
            exten,
            priority,
            self.uniqueid,
            self.linkedid,
        ) = snapshot
        interned = _INTERNED.get
        number = _INTS.get(state)
        self.state = number if number is not None else to_int(state)
        self.state_desc = interned(desc) or intern_value(desc)
        self.caller_id_num = "" if caller_num == _UNKNOWN else caller_num
        self.caller_id_name = "" if caller_name == _UNKNOWN else caller_name
        self.connected_line_num = "" if connected_num == _UNKNOWN else connected_num
        self.connected_line_name = "" if connected_name == _UNKNOWN else connected_name
        self.language = interned(language) or intern_value(language) if language else ""
        self.account_code = interned(account) or intern_value(account) if account else ""
        self.context = interned(context) or intern_value(context)
        self.exten = exten
        number = _INTS.get(priority)
        self.priority = number if number is not None else to_int(priority)
        self.application = ""
        self.app_data = ""
        self.bridge = None
        self.call = None
        self.on_hold = False
        self.created = now
        self.answered = now if self.state == UP else None
        self.hangup_cause = None
        self._links = None
        self._peer = None
        self._waiters = None
        self._seq = seq
        self._born = False

    def __repr__(self) -> str:
        gone = "" if self.hangup_cause is None else f" gone (cause {self.hangup_cause})"
        return f"<Channel {self.uniqueid} {self.name!r} {self.state_desc}{gone}>"

    # --- updating ----------------------------------------------------------------------------

    def update(self, snapshot: ChannelSnapshot, clock: IReactorTime) -> list[str] | None:
        """
        Take the fields of ``snapshot``; return the names of those that
        changed (`None` if none did).  Sets `answered` (from ``clock``) the
        first time the state is Up.
        """
        # One event per channel change: this is the model's hottest code, so
        # it is written out rather than looped over a field table.
        (
            name,
            state_text,
            desc,
            caller_num,
            caller_name,
            connected_num,
            connected_name,
            language,
            account,
            context,
            exten,
            priority_text,
            _,
            linkedid,
        ) = snapshot
        changed: list[str] | None = None
        if name != self.name:
            self.name = name
            changed = ["name"]
        state = _INTS.get(state_text)
        if state is None:
            state = to_int(state_text)
        if state != self.state:
            self.state = state
            self.state_desc = intern_value(desc)
            if changed is None:
                changed = []
            changed += ("state", "state_desc")
            if state == UP and self.answered is None:
                self.answered = clock.seconds()
                changed.append("answered")
        if caller_num == _UNKNOWN:
            caller_num = ""
        if caller_num != self.caller_id_num:
            self.caller_id_num = caller_num
            changed = (changed or []) + ["caller_id_num"]
        if caller_name == _UNKNOWN:
            caller_name = ""
        if caller_name != self.caller_id_name:
            self.caller_id_name = caller_name
            changed = (changed or []) + ["caller_id_name"]
        if connected_num == _UNKNOWN:
            connected_num = ""
        if connected_num != self.connected_line_num:
            self.connected_line_num = connected_num
            changed = (changed or []) + ["connected_line_num"]
        if connected_name == _UNKNOWN:
            connected_name = ""
        if connected_name != self.connected_line_name:
            self.connected_line_name = connected_name
            changed = (changed or []) + ["connected_line_name"]
        if context != self.context:
            self.context = intern_value(context)
            changed = (changed or []) + ["context"]
        if exten != self.exten:
            self.exten = exten
            changed = (changed or []) + ["exten"]
        priority = _INTS.get(priority_text)
        if priority is None:
            priority = to_int(priority_text)
        if priority != self.priority:
            self.priority = priority
            changed = (changed or []) + ["priority"]
        if linkedid != self.linkedid and linkedid:
            self.linkedid = linkedid
            changed = (changed or []) + ["linkedid"]
        if account != self.account_code:
            self.account_code = intern_value(account)
            changed = (changed or []) + ["account_code"]
        if language != self.language and language:
            self.language = intern_value(language)
            changed = (changed or []) + ["language"]
        return changed

    # --- waiting -----------------------------------------------------------------------------

    def _wait(self, name: str) -> Deferred[Any]:
        if self.hangup_cause is not None:
            return fail(ObjectGone(f"channel {self.uniqueid}", "hangup"))
        if self._waiters is None:
            self._waiters = Waiters()
        return self._waiters.add(name)

    def when_answered(self) -> Deferred[Channel]:
        """
        Fires with this channel once it is answered (at once if it is); fails
        with `ObjectGone` if it hangs up first, `StateStopped` if the state
        model stops first.
        """
        if self.answered is not None:
            return succeed(self)
        return self._wait("answered")

    def when_bridged(self) -> Deferred[Bridge]:
        """
        Fires with the `Bridge` once this channel is in one (at once if it
        is); fails with `ObjectGone` if it hangs up first, `StateStopped` if
        the state model stops first.
        """
        if self.bridge is not None:
            return succeed(self.bridge)
        return self._wait("bridged")

    def when_hung_up(self) -> Deferred[Channel]:
        """
        Fires with this channel once it has hung up (``hangup_cause`` set; at
        once if it has); fails with `StateStopped` if the state model stops first.
        """
        if self.hangup_cause is not None:
            return succeed(self)
        if self._waiters is None:
            self._waiters = Waiters()
        return self._waiters.add("hung_up")

    # --- output ------------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        """This channel as plain JSON-able data (the snapshot's channel shape)."""
        bridge = self.bridge
        call = self.call
        return {
            "uniqueid": self.uniqueid,
            "linkedid": self.linkedid,
            "name": self.name,
            "state": self.state,
            "state_desc": self.state_desc,
            "caller_id_num": self.caller_id_num,
            "caller_id_name": self.caller_id_name,
            "connected_line_num": self.connected_line_num,
            "connected_line_name": self.connected_line_name,
            "language": self.language,
            "account_code": self.account_code,
            "context": self.context,
            "exten": self.exten,
            "priority": self.priority,
            "application": self.application,
            "app_data": self.app_data,
            "bridge": bridge.uniqueid if bridge is not None else None,
            "call": call.id if call is not None else None,
            "on_hold": self.on_hold,
            "created": self.created,
            "answered": self.answered,
            "hangup_cause": self.hangup_cause,
        }


#: The fields of `Bridge.as_dict`, in order (the snapshot's bridge shape).
BRIDGE_FIELDS = (
    "uniqueid",
    "type",
    "technology",
    "creator",
    "name",
    "channels",
    "call",
    "created",
)

#: The bridge technology whose members wait side by side without talking.
HOLDING = "holding_bridge"


def _unknown(value: str) -> str:
    return "" if value == "<unknown>" else value


class Bridge:
    """
    An Asterisk bridge.  ``type`` is Asterisk's ``BridgeType`` (``basic``,
    ``base`` for ConfBridge, ``parking``, ``holding``), ``technology`` its
    ``BridgeTechnology`` (``simple_bridge``, ``native_rtp``, ``softmix``,
    ``holding_bridge``), ``creator`` and ``name`` are ``""`` when Asterisk
    says ``<unknown>`` (ConfBridge sets both: ``ConfBridge``, the conference).

    ``channels`` are the member channels in the order they joined (a channel
    that replaces another, as a Local channel optimising away does, takes its
    place; members found by a sync are in the order Asterisk listed them).
    ``call`` is the `Call` its members belong to, or `None` when it is empty
    or a holding bridge (a parking lot holds many unrelated calls).
    """

    __slots__ = (
        "call",
        "channels",
        "created",
        "creator",
        "name",
        "technology",
        "type",
        "uniqueid",
    )

    def __init__(
        self,
        uniqueid: str,
        type: str = "",
        technology: str = "",
        creator: str = "",
        name: str = "",
        created: float = 0.0,
    ) -> None:
        self.uniqueid = uniqueid
        self.type = intern_value(type)
        self.technology = intern_value(technology)
        self.creator = intern_value(_unknown(creator))
        self.name = _unknown(name)
        self.channels: list[Channel] = []
        self.call: Call | None = None
        self.created = created

    def __repr__(self) -> str:
        return (
            f"<Bridge {self.uniqueid} {self.type}/{self.technology} {len(self.channels)} channels>"
        )

    @property
    def connects(self) -> bool:
        """Whether its members talk to each other (so belong to one call)."""
        return self.technology != HOLDING

    def update(self, type: str, technology: str, creator: str, name: str) -> list[str] | None:
        """Take Asterisk's description; the names of the fields that changed, or `None`."""
        changed: list[str] = []
        if type and type != self.type:
            self.type = intern_value(type)
            changed.append("type")
        if technology and technology != self.technology:
            self.technology = intern_value(technology)
            changed.append("technology")
        creator = _unknown(creator)
        if creator != self.creator:
            self.creator = intern_value(creator)
            changed.append("creator")
        name = _unknown(name)
        if name != self.name:
            self.name = name
            changed.append("name")
        return changed or None

    def as_dict(self) -> dict[str, Any]:
        """This bridge as plain JSON-able data (the snapshot's bridge shape)."""
        call = self.call
        return {
            "uniqueid": self.uniqueid,
            "type": self.type,
            "technology": self.technology,
            "creator": self.creator,
            "name": self.name,
            "channels": [c.uniqueid for c in self.channels],
            "call": call.id if call is not None else None,
            "created": self.created,
        }


#: The fields of `Call.as_dict`, in order (the snapshot's call shape).
CALL_FIELDS = ("id", "channels", "bridges", "started", "answered")


class Call:
    """
    One call.  ``id`` is stable for the call's life: the ``Uniqueid`` of the
    channel it started with (with ``-2``, ``-3``, ... appended should that
    id still be taken).  ``started`` is when its oldest channel was created,
    ``answered`` when one of its channels was first answered (`None` before).
    ``ended`` is `None` while it lasts, then the reason it ended
    (``"hangup"``, ``"merged"``, ...).
    """

    __slots__ = ("_channels", "_seq", "_waiters", "answered", "ended", "id", "started")

    def __init__(self, id: str, started: float, seq: int = 0) -> None:
        self.id = id
        self.started = started
        self.answered: float | None = None
        self.ended: str | None = None
        self._channels: dict[Channel, None] = {}
        self._seq = seq
        self._waiters: Waiters | None = None

    def __repr__(self) -> str:
        return f"<Call {self.id} {len(self._channels)} channels>"

    @property
    def channels(self) -> tuple[Channel, ...]:
        """Its channels, oldest member first."""
        return tuple(self._channels)

    @property
    def bridges(self) -> tuple[Bridge, ...]:
        """The bridges its channels talk in (holding bridges excluded), in first-joined order."""
        found: dict[Bridge, None] = {}
        for channel in self._channels:
            bridge = channel.bridge
            if bridge is not None and bridge.connects:
                found[bridge] = None
        return tuple(found)

    def when_ended(self) -> Deferred[Call]:
        """
        Fires with this call once its last channel is gone (at once if it
        has ended); fails with `ObjectGone` if it is merged into another call
        first (``reason`` ``"merged"``), `StateStopped` if the model stops.
        """
        if self.ended == "merged":
            return fail(ObjectGone(f"call {self.id}", "merged"))
        if self.ended is not None:
            return succeed(self)
        if self._waiters is None:
            self._waiters = Waiters()
        return self._waiters.add("ended")

    def as_dict(self) -> dict[str, Any]:
        """This call as plain JSON-able data (the snapshot's call shape)."""
        return {
            "id": self.id,
            "channels": [c.uniqueid for c in self._channels],
            "bridges": [b.uniqueid for b in self.bridges],
            "started": self.started,
            "answered": self.answered,
        }
