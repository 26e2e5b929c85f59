"""
`Channel`: one live Asterisk channel, keyed by its ``Uniqueid``.

A channel object is updated in place for its whole life (events, list rows,
re-syncs after reconnecting), so a program may hold it and read it later; it
is dropped from `PBXState.channels` when it hangs up (its `hangup_cause` is
then set).  Every event Asterisk 12+ sends about a channel carries the whole
snapshot of it, so each one refreshes every field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, fail, succeed

from txami.state.errors import ObjectGone
from txami.state.fields import (
    ACCOUNT,
    CALLER_NAME,
    CALLER_NUM,
    CONNECTED_NAME,
    CONNECTED_NUM,
    CONTEXT,
    EXTEN,
    LANGUAGE,
    LINKEDID,
    NAME,
    PRIORITY,
    STATE,
    STATE_DESC,
    UNIQUEID,
    ChannelSnapshot,
)
from txami.state.waiters import Waiters

if TYPE_CHECKING:
    from txami.state.bridge import Bridge
    from txami.state.call import Call

__all__ = ["CHANNEL_FIELDS", "Channel", "intern_value", "to_int"]

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

_INTERNED: dict[str, str] = {}
_INTS: dict[str, int] = {}
_CACHE_LIMIT = 4096


def intern_value(value: str) -> str:
    """
    One shared string object for a value that many channels repeat (a
    context, a state name, an application), so that thousands of channels do
    not each keep a copy.  The table is bounded: past its size, values are
    kept as they are.
    """
    found = _INTERNED.get(value)
    if found is not None:
        return found
    if len(_INTERNED) < _CACHE_LIMIT:
        _INTERNED[value] = value
    return value


def to_int(text: str, default: int = 0) -> int:
    """``int(text)`` for a header value (cached), ``default`` if it is not a number."""
    found = _INTS.get(text)
    if found is not None:
        return found
    try:
        value = int(text)
    except ValueError:
        return default
    if len(_INTS) < _CACHE_LIMIT:
        _INTS[text] = value
    return value


def _caller(value: str) -> str:
    # Asterisk prints an empty caller ID as "<unknown>".
    return "" if value == "<unknown>" else value


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
    _links: dict[Channel, int] | None
    _waiters: Waiters | None
    _seq: int
    _born: bool

    def __init__(self, snapshot: ChannelSnapshot, now: float, seq: int = 0) -> None:
        self.uniqueid = snapshot[UNIQUEID]
        self.linkedid = snapshot[LINKEDID]
        self.name = snapshot[NAME]
        self.state = to_int(snapshot[STATE])
        self.state_desc = intern_value(snapshot[STATE_DESC])
        self.caller_id_num = _caller(snapshot[CALLER_NUM])
        self.caller_id_name = _caller(snapshot[CALLER_NAME])
        self.connected_line_num = _caller(snapshot[CONNECTED_NUM])
        self.connected_line_name = _caller(snapshot[CONNECTED_NAME])
        self.language = intern_value(snapshot[LANGUAGE])
        self.account_code = intern_value(snapshot[ACCOUNT])
        self.context = intern_value(snapshot[CONTEXT])
        self.exten = intern_value(snapshot[EXTEN])
        self.priority = to_int(snapshot[PRIORITY])
        self.application = ""
        self.app_data = ""
        self.bridge = None
        self.call = None
        self.on_hold = False
        self.created = now
        self.answered = now if self.state == UP else None
        self.hangup_cause = None
        self._links = None
        self._waiters = None
        self._seq = seq
        self._born = False

    def __repr__(self) -> str:
        gone = "" if self.hangup_cause is None else f" gone (cause {self.hangup_cause})"
        return f"<Channel {self.uniqueid} {self.name!r} {self.state_desc}{gone}>"

    # --- updating ----------------------------------------------------------------------------

    def update(self, snapshot: ChannelSnapshot, now: float) -> list[str] | None:
        """
        Take the fields of ``snapshot``; return the names of those that
        changed (`None` if none did).  Sets `answered` the first time the
        state is Up.
        """
        changed: list[str] | None = None
        value = snapshot[NAME]
        if value != self.name:
            self.name = value
            changed = ["name"]
        value = snapshot[STATE]
        state = to_int(value)
        if state != self.state:
            self.state = state
            self.state_desc = intern_value(snapshot[STATE_DESC])
            if changed is None:
                changed = ["state", "state_desc"]
            else:
                changed += ("state", "state_desc")
            if state == UP and self.answered is None:
                self.answered = now
                changed.append("answered")
        value = snapshot[CALLER_NUM]
        if value != self.caller_id_num and _caller(value) != self.caller_id_num:
            self.caller_id_num = _caller(value)
            changed = [*(changed or ()), "caller_id_num"]
        value = snapshot[CALLER_NAME]
        if value != self.caller_id_name and _caller(value) != self.caller_id_name:
            self.caller_id_name = _caller(value)
            changed = [*(changed or ()), "caller_id_name"]
        value = snapshot[CONNECTED_NUM]
        if value != self.connected_line_num and _caller(value) != self.connected_line_num:
            self.connected_line_num = _caller(value)
            changed = [*(changed or ()), "connected_line_num"]
        value = snapshot[CONNECTED_NAME]
        if value != self.connected_line_name and _caller(value) != self.connected_line_name:
            self.connected_line_name = _caller(value)
            changed = [*(changed or ()), "connected_line_name"]
        value = snapshot[CONTEXT]
        if value != self.context:
            self.context = intern_value(value)
            changed = [*(changed or ()), "context"]
        value = snapshot[EXTEN]
        if value != self.exten:
            self.exten = intern_value(value)
            changed = [*(changed or ()), "exten"]
        priority = to_int(snapshot[PRIORITY])
        if priority != self.priority:
            self.priority = priority
            changed = [*(changed or ()), "priority"]
        value = snapshot[LINKEDID]
        if value != self.linkedid and value:
            self.linkedid = value
            changed = [*(changed or ()), "linkedid"]
        value = snapshot[ACCOUNT]
        if value != self.account_code:
            self.account_code = intern_value(value)
            changed = [*(changed or ()), "account_code"]
        value = snapshot[LANGUAGE]
        if value != self.language and value:
            self.language = intern_value(value)
            changed = [*(changed or ()), "language"]
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
