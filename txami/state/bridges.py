"""
`BridgeTracker`: bridges and their members, from ``BridgeCreate``,
``BridgeEnter``, ``BridgeLeave``, ``BridgeDestroy`` and ``BridgeMerge``.

Transfers need nothing of their own: whatever the kind (``BlindTransfer``;
``AttendedTransfer`` with ``DestType`` Bridge, Link, Threeway, App or Fail),
Asterisk carries it out with the bridge and channel events handled here and
in `txami.state.channels` (a bridge merge, channels leaving and entering,
Local channels linking two bridges, swaps), and the model follows those.  A
``BridgeMerge`` moves the merged bridge's members at once, so a call does
not fall apart between the ``BridgeLeave`` and ``BridgeEnter`` that follow
it; a ``BridgeEnter`` with ``SwapUniqueid`` puts the newcomer in the place
of the channel it replaces (a Local channel optimising itself away).
"""

from __future__ import annotations

from collections.abc import Callable

from txami.message import Message
from txami.state.channels import ChannelTracker
from txami.state.fields import bridge_fields, channel_snapshot, header, text_of
from txami.state.grouping import Grouping
from txami.state.objects import Bridge, Channel
from txami.state.store import Store

__all__ = ["BridgeTracker"]


class BridgeTracker:
    """Applies bridge events to a `Store`."""

    def __init__(self, store: Store, grouping: Grouping, channels: ChannelTracker) -> None:
        self.store = store
        self.grouping = grouping
        self.channels = channels
        channels.gone_hooks.insert(0, self._channel_gone)

    def handlers(self) -> dict[str, Callable[[Message], None]]:
        """Event name -> handler, for registration."""
        return {
            "BridgeCreate": self.on_bridge_create,
            "BridgeEnter": self.on_bridge_enter,
            "BridgeLeave": self.on_bridge_leave,
            "BridgeDestroy": self.on_bridge_destroy,
            "BridgeMerge": self.on_bridge_merge,
        }

    # --- bridges -----------------------------------------------------------------------------

    def described(
        self,
        uniqueid: str,
        type: str = "",
        technology: str = "",
        creator: str = "",
        name: str = "",
        *,
        create: bool = True,
    ) -> Bridge | None:
        """The bridge ``uniqueid`` with Asterisk's description applied (created if unknown)."""
        store = self.store
        bridge = store.bridges.get(uniqueid)
        if bridge is not None:
            connects = bridge.connects
            changed = bridge.update(type, technology, creator, name)
            if changed is not None:
                store.outbox.updated("bridge_updated", bridge, changed)
                if bridge.connects != connects:
                    self.grouping.regroup(bridge.channels)
                    for channel in bridge.channels:
                        self.grouping.entered(channel, bridge)
            return bridge
        if not create or uniqueid in store.bridge_tombstones:
            return None
        bridge = Bridge(uniqueid, type, technology, creator, name, store.clock.seconds())
        store.bridges[uniqueid] = bridge
        store.outbox.new("bridge_new", bridge)
        return bridge

    def _from_event(self, event: Message, text: str, prefix: str = "") -> Bridge | None:
        fields = bridge_fields(event, prefix, text)
        if fields is None or not fields[0]:
            return None
        return self.described(*fields)

    def destroyed(self, bridge: Bridge, reason: str, tombstone: bool = True) -> None:
        """Drop a bridge (its remaining members leave it first)."""
        store = self.store
        if store.bridges.get(bridge.uniqueid) is not bridge:
            return
        for channel in list(bridge.channels):
            self.leave(channel, bridge)
        del store.bridges[bridge.uniqueid]
        if tombstone:
            store.bridge_tombstones.add(bridge.uniqueid, store.clock.seconds())
        store.outbox.gone("bridge_gone", bridge, bridge, reason)

    def _channel_gone(self, channel: Channel, reason: str) -> None:
        if channel.bridge is not None:
            self.leave(channel, channel.bridge)

    # --- membership --------------------------------------------------------------------------

    def join(self, channel: Channel, bridge: Bridge, swap: Channel | None = None) -> None:
        """Make ``channel`` a member of ``bridge`` (in ``swap``'s place if it is there)."""
        old = channel.bridge
        if old is bridge:
            return
        outbox = self.store.outbox
        if old is not None:
            old.channels.remove(channel)
            outbox.updated("bridge_updated", old, ("channels",))
        members = bridge.channels
        if swap is not None and swap in members:
            members.insert(members.index(swap), channel)
        else:
            members.append(channel)
        channel.bridge = bridge
        outbox.updated("channel_updated", channel, ("bridge",))
        outbox.updated("bridge_updated", bridge, ("channels",))
        # Merge with the new bridge's call before checking what the old one held.
        self.grouping.entered(channel, bridge)
        if old is not None:
            self.grouping.left(channel, old)
        waiters = channel._waiters
        if waiters:
            outbox.fire(waiters.take("bridged"), bridge)

    def leave(self, channel: Channel, bridge: Bridge) -> None:
        """Take ``channel`` out of ``bridge`` (nothing if it is not a member)."""
        if channel.bridge is not bridge:
            return
        bridge.channels.remove(channel)
        channel.bridge = None
        outbox = self.store.outbox
        outbox.updated("channel_updated", channel, ("bridge",))
        outbox.updated("bridge_updated", bridge, ("channels",))
        self.grouping.left(channel, bridge)

    # --- events ------------------------------------------------------------------------------

    def on_bridge_create(self, event: Message) -> None:
        self._from_event(event, text_of(event))
        self.store.outbox.flush()

    def on_bridge_enter(self, event: Message) -> None:
        text = text_of(event)
        bridge = self._from_event(event, text)
        snapshot = channel_snapshot(event, "", text)
        channel = self.channels.seen(snapshot) if snapshot is not None else None
        if bridge is not None and channel is not None:
            swap_id = header(event, "SwapUniqueid", text)
            swap = self.store.channels.get(swap_id) if swap_id else None
            self.join(channel, bridge, swap)
        self.store.outbox.flush()

    def on_bridge_leave(self, event: Message) -> None:
        text = text_of(event)
        uniqueid = header(event, "BridgeUniqueid", text)
        bridge = self.store.bridges.get(uniqueid or "")
        snapshot = channel_snapshot(event, "", text)
        channel = self.channels.seen(snapshot) if snapshot is not None else None
        if bridge is not None and channel is not None:
            self.leave(channel, bridge)
        self.store.outbox.flush()

    def on_bridge_destroy(self, event: Message) -> None:
        uniqueid = header(event, "BridgeUniqueid", text_of(event))
        bridge = self.store.bridges.get(uniqueid or "")
        if bridge is not None:
            self.destroyed(bridge, "destroyed")
            self.store.outbox.flush()

    def on_bridge_merge(self, event: Message) -> None:
        text = text_of(event)
        to = self._from_event(event, text, "To")
        source = self._from_event(event, text, "From")
        if to is not None and source is not None and to is not source:
            self.move_all(source, to)
        self.store.outbox.flush()

    def move_all(self, source: Bridge, to: Bridge) -> None:
        """Move every member of ``source`` into ``to`` at once (a bridge merge)."""
        moving = list(source.channels)
        if not moving:
            return
        source.channels.clear()
        outbox = self.store.outbox
        for channel in moving:
            channel.bridge = to
            to.channels.append(channel)
            outbox.updated("channel_updated", channel, ("bridge",))
        outbox.updated("bridge_updated", source, ("channels",))
        outbox.updated("bridge_updated", to, ("channels",))
        for channel in moving:
            self.grouping.entered(channel, to)
        self.grouping.bridge_call(source)
