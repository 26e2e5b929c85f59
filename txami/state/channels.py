"""
`ChannelTracker`: channels from events and list rows, applied idempotently.

Every event that names a channel carries its whole snapshot, and the
snapshot is applied as it is: a ``Newchannel`` for a known ``Uniqueid`` is
an update, an event for an unknown one (a channel older than the session)
creates it, a ``Hangup`` for an unknown one does nothing.  A channel that
hung up leaves a tombstone, so that a late event or list row cannot bring it
back; only a ``Newchannel`` can (Asterisk reuses a ``Uniqueid`` when an
``Originate`` assigns ``ChannelId``).

Events handled here: ``Newchannel``, ``Newstate``, ``Hangup``,
``Newexten``, ``NewCallerid``, ``NewConnectedLine``, ``NewAccountCode``,
``Rename``, ``Hold``/``Unhold``, ``DialBegin``/``DialState``/``DialEnd``,
``LocalBridge``, ``LocalOptimizationBegin``/``End``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.python.failure import Failure

from txami.message import Message
from txami.state.errors import ObjectGone
from txami.state.fields import (
    LINKEDID,
    UNIQUEID,
    ChannelSnapshot,
    channel_snapshot,
    header,
    intern_value,
    newexten_fields,
    text_of,
    to_int,
)
from txami.state.grouping import DIAL, LOCAL, OPTIMIZING, Grouping
from txami.state.objects import Channel
from txami.state.store import Store

__all__ = ["ChannelTracker"]

#: ``DialStatus`` values that do not end a dial.
_DIAL_GOES_ON = frozenset({"ANSWER", "RINGING", "PROCEEDING", "PROGRESS", ""})


class ChannelTracker:
    """Applies channel events to a `Store`."""

    def __init__(self, store: Store, grouping: Grouping) -> None:
        self.store = store
        self.grouping = grouping
        #: Called with ``(channel, reason)`` when a channel is gone, before it is
        #: dropped (the bridge tracker takes it out of its bridge, queues out of theirs).
        self.gone_hooks: list[Callable[[Channel, str], None]] = []

    def handlers(self) -> dict[str, Callable[[Message], None]]:
        """Event name -> handler, for registration."""
        return {
            "Newchannel": self.on_newchannel,
            "Newstate": self.on_snapshot,
            "NewCallerid": self.on_snapshot,
            "NewConnectedLine": self.on_snapshot,
            "NewAccountCode": self.on_snapshot,
            "Newexten": self.on_newexten,
            "Hangup": self.on_hangup,
            "Rename": self.on_rename,
            "Hold": self.on_hold,
            "Unhold": self.on_unhold,
            "DialBegin": self.on_dial_begin,
            "DialState": self.on_dial_state,
            "DialEnd": self.on_dial_end,
            "LocalBridge": self.on_local_bridge,
            "LocalOptimizationBegin": self.on_optimization_begin,
            "LocalOptimizationEnd": self.on_optimization_end,
        }

    # --- the core: applying a snapshot -------------------------------------------------------

    def seen(self, snapshot: ChannelSnapshot, new: bool = False) -> Channel | None:
        """
        The channel of ``snapshot``, updated from it, or created if unknown
        (``new``: from ``Newchannel``, which may reuse a tombstoned Uniqueid).
        `None` for a channel that has hung up.
        """
        store = self.store
        uniqueid = snapshot[UNIQUEID]
        channel = store.channels.get(uniqueid)
        if channel is not None:
            changed = channel.update(snapshot, store.clock)
            if store.unconfirmed:
                store.unconfirmed.discard(uniqueid)
            if changed is not None:
                self._changed(channel, changed)
            return channel
        tombstones = store.channel_tombstones
        if uniqueid in tombstones:
            if not new:
                return None
            tombstones.discard(uniqueid)
        return self.create(snapshot, new)

    def create(
        self, snapshot: ChannelSnapshot, new: bool, now: float | None = None, group: bool = True
    ) -> Channel:
        """
        Add a channel for ``snapshot`` and give it its call (unless not
        ``group``: a sync groups the channels it finds once all are known).
        """
        store = self.store
        channel = Channel(
            snapshot, store.clock.seconds() if now is None else now, store.next_seq()
        )
        channel._born = new
        store.channels[channel.uniqueid] = channel
        store.outbox.new("channel_new", channel)
        if not group:
            return channel
        requested_by = None
        if new:
            linkedid = snapshot[LINKEDID]
            if linkedid and linkedid != channel.uniqueid:
                requested_by = store.channels.get(linkedid)
                name = channel.name
                if (
                    requested_by is not None
                    and name.endswith(";2")
                    and requested_by.name == name[:-1] + "1"
                ):
                    # The ;2 half of a Local channel that ;1 requested: its peer
                    # (it joins ;1's call on linking).
                    if requested_by.call is None:
                        self.grouping.added(channel)
                    self.grouping.link(channel, requested_by, LOCAL)
                    return channel
        self.grouping.added(channel, requested_by)
        return channel

    def _changed(self, channel: Channel, changed: list[str]) -> None:
        store = self.store
        store.outbox.updated("channel_updated", channel, changed)
        if "answered" in changed:
            call = channel.call
            if call is not None and call.answered is None:
                call.answered = channel.answered
                store.outbox.updated("call_updated", call, ("answered",))
            waiters = channel._waiters
            if waiters:
                store.outbox.fire(waiters.take("answered"), channel)

    def set_field(self, channel: Channel, name: str, value: Any) -> None:
        """Set one field the snapshot does not carry, reporting it if it changed."""
        if getattr(channel, name) != value:
            setattr(channel, name, value)
            self.store.outbox.updated("channel_updated", channel, (name,))

    def gone(self, channel: Channel, reason: str, cause: int = 0, tombstone: bool = True) -> None:
        """
        Drop a channel that hung up or vanished, with everything that pointed
        at it; leave a tombstone unless told not to (a restart: its Uniqueid
        may come back as a new channel).
        """
        store = self.store
        uniqueid = channel.uniqueid
        if store.channels.get(uniqueid) is not channel:
            return
        channel.hangup_cause = cause
        for hook in self.gone_hooks:
            hook(channel, reason)
        del store.channels[uniqueid]
        store.unconfirmed.discard(uniqueid)
        if tombstone:
            store.channel_tombstones.add(uniqueid, store.clock.seconds())
        store.outbox.gone("channel_gone", channel, channel, reason)
        self.grouping.removed(channel, reason)
        waiters = channel._waiters
        if waiters:
            hung_up = waiters.take("hung_up")
            gone = ObjectGone(f"channel {uniqueid}", reason)
            failure = Failure(gone)  # type: ignore[no-untyped-call]
            store.outbox.fire(waiters.take_all(), failure)
            store.outbox.fire(hung_up, channel)

    # --- events ------------------------------------------------------------------------------

    def on_newchannel(self, event: Message) -> None:
        snapshot = channel_snapshot(event)
        if snapshot is not None:
            self.seen(snapshot, new=True)
            self.store.outbox.flush()

    def on_snapshot(self, event: Message) -> None:
        # The commonest event (Newstate, NewCallerid, ...): the known-channel
        # path of `seen` is written out here.
        snapshot = channel_snapshot(event)
        if snapshot is None:
            return
        store = self.store
        channel = store.channels.get(snapshot[UNIQUEID])
        if channel is None:
            self.seen(snapshot)
        else:
            changed = channel.update(snapshot, store.clock)
            if changed is not None:
                self._changed(channel, changed)
            if store.unconfirmed:
                store.unconfirmed.discard(channel.uniqueid)
        outbox = store.outbox
        if outbox.items:
            outbox.flush()

    def on_newexten(self, event: Message) -> None:
        found = newexten_fields(event)
        if found is None:
            return
        snapshot, (application, data) = found
        store = self.store
        channel = store.channels.get(snapshot[UNIQUEID])
        if channel is None:
            channel = self.seen(snapshot)
        else:
            changed = channel.update(snapshot, store.clock)
            if changed is not None:
                self._changed(channel, changed)
            if store.unconfirmed:
                store.unconfirmed.discard(channel.uniqueid)
        if channel is not None:
            if application is not None and application != channel.application:
                channel.application = intern_value(application)
                self.store.outbox.updated("channel_updated", channel, ("application",))
            if data is not None and data != channel.app_data:
                channel.app_data = data
                self.store.outbox.updated("channel_updated", channel, ("app_data",))
        self.store.outbox.flush()

    def on_hangup(self, event: Message) -> None:
        text = text_of(event)
        snapshot = channel_snapshot(event, "", text)
        if snapshot is None:
            return
        channel = self.store.channels.get(snapshot[UNIQUEID])
        if channel is not None:
            channel.update(snapshot, self.store.clock)
            self.gone(channel, "hangup", to_int(header(event, "Cause", text) or "0"))
            self.store.outbox.flush()

    def on_rename(self, event: Message) -> None:
        text = text_of(event)
        uniqueid = header(event, "Uniqueid", text)
        newname = header(event, "Newname", text)
        channel = self.store.channels.get(uniqueid or "")
        if channel is not None and newname:
            self.set_field(channel, "name", newname)
            self.store.outbox.flush()

    def _hold(self, event: Message, on_hold: bool) -> None:
        snapshot = channel_snapshot(event)
        if snapshot is None:
            return
        channel = self.seen(snapshot)
        if channel is not None:
            self.set_field(channel, "on_hold", on_hold)
        self.store.outbox.flush()

    def on_hold(self, event: Message) -> None:
        self._hold(event, True)

    def on_unhold(self, event: Message) -> None:
        self._hold(event, False)

    def _dial(self, event: Message) -> tuple[Channel | None, Channel | None, str]:
        text = text_of(event)
        dest_snapshot = channel_snapshot(event, "Dest", text)
        dest = self.seen(dest_snapshot) if dest_snapshot is not None else None
        caller_snapshot = channel_snapshot(event, "", text)
        caller = self.seen(caller_snapshot) if caller_snapshot is not None else None
        return caller, dest, text

    def on_dial_begin(self, event: Message) -> None:
        caller, dest, _ = self._dial(event)
        if caller is not None and dest is not None:
            self.grouping.link(caller, dest, DIAL)
        self.store.outbox.flush()

    def on_dial_state(self, event: Message) -> None:
        self._dial(event)
        self.store.outbox.flush()

    def on_dial_end(self, event: Message) -> None:
        caller, dest, text = self._dial(event)
        status = header(event, "DialStatus", text) or ""
        if caller is not None and dest is not None and status not in _DIAL_GOES_ON:
            self.grouping.unlink(caller, dest, DIAL)
        self.store.outbox.flush()

    def _pair(self, event: Message, text: str) -> tuple[Channel | None, Channel | None]:
        one_snapshot = channel_snapshot(event, "LocalOne", text)
        two_snapshot = channel_snapshot(event, "LocalTwo", text)
        one = self.seen(one_snapshot) if one_snapshot is not None else None
        two = self.seen(two_snapshot) if two_snapshot is not None else None
        return one, two

    def on_local_bridge(self, event: Message) -> None:
        one, two = self._pair(event, text_of(event))
        if one is not None and two is not None:
            self.grouping.link(one, two, LOCAL)
        self.store.outbox.flush()

    def on_optimization_begin(self, event: Message) -> None:
        text = text_of(event)
        one, two = self._pair(event, text)
        source_snapshot = channel_snapshot(event, "Source", text)
        source = self.seen(source_snapshot) if source_snapshot is not None else None
        if source is not None:
            # Keep the channel that will take a Local half's place linked to
            # the pair while it moves between bridges.
            for half in (one, two):
                if half is not None:
                    self.grouping.link(source, half, OPTIMIZING)
        self.store.outbox.flush()

    def on_optimization_end(self, event: Message) -> None:
        # The link stays until the Local halves hang up (right after a
        # successful optimisation): dropping it now would part the call from
        # the halves for a moment.
        self._pair(event, text_of(event))
        self.store.outbox.flush()
