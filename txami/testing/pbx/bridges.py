"""
Bridges of the fake PBX (`Bridge`, `BridgesMixin`): what joins channels in a call.

Asterisk 12 and later connect channels by putting them in a bridge: Dial and
Queue make a ``basic`` bridge of the caller and the answering channel,
ConfBridge a ``softmix`` one, parking a ``holding_bridge``.  The events follow
Asterisk's order: ``BridgeCreate`` (no channels yet), one ``BridgeEnter`` per
channel (with ``SwapUniqueid`` when it replaces a channel, as in Local channel
optimisation), ``BridgeLeave``, ``BridgeDestroy``; two bridges are joined with
``BridgeMerge``.  After each change the members' ``BRIDGEPEER`` variables are
set as ``bridge.c`` sets them: the other party in a two-party bridge, a comma
list in a bigger one, nothing in a holding bridge, and unset (``VarSet`` of an
empty value) on the channel that leaves.

Some bridges hold a channel no event names (ConfBridge's announcer): it counts
in ``BridgeNumChannels`` but is not listed; see `Bridge.hidden`.
"""

from __future__ import annotations

from txami.testing.pbx.channels import Bridge, Channel
from txami.testing.pbx.core import EmitHook
from txami.testing.pbx.devices import DevicesMixin
from txami.testing.timers import Timers

__all__ = ["Bridge", "BridgesMixin"]


class BridgesMixin(DevicesMixin):
    """Bridges and their events (see the module's docstring)."""

    def __init__(self, timers: Timers, emit: EmitHook | None = None) -> None:
        super().__init__(timers, emit)
        #: Live bridges by BridgeUniqueid, in creation order.
        self.bridges: dict[str, Bridge] = {}

    def create_bridge(
        self,
        type: str = "basic",
        technology: str = "simple_bridge",
        creator: str = "",
        name: str = "",
        *,
        dissolve_on_hangup: bool = True,
        masquerade_only: bool = False,
    ) -> Bridge:
        """Make a bridge and raise ``BridgeCreate``."""
        bridge = Bridge(
            self._next_bridge_id(),
            type,
            technology,
            creator,
            name,
            dissolve_on_hangup=dissolve_on_hangup,
            masquerade_only=masquerade_only,
        )
        self.bridges[bridge.uniqueid] = bridge
        self.emit("BridgeCreate", bridge.headers())
        return bridge

    def enter_bridge(
        self, bridge: Bridge, channel: Channel, swap: Channel | None = None, *, peers: bool = True
    ) -> None:
        """
        Put ``channel`` in ``bridge`` (``BridgeEnter``, then the members'
        ``BRIDGEPEER``); with ``swap``, it takes that member's place, which
        leaves without its ``BRIDGEPEER`` being unset first.
        """
        if channel.bridge is not None and channel.bridge is not bridge:
            self.leave_bridge(channel)
        if bridge.type == "basic":
            self._update_linkedids(channel, [c for c in bridge.channels if c is not swap])
        channel.bridge = bridge
        bridge.channels.append(channel)
        extra = [("SwapUniqueid", swap.uniqueid)] if swap is not None else []
        self.emit("BridgeEnter", [*bridge.headers(), *channel.snapshot(), *extra])
        if swap is not None and swap in bridge.channels:
            self._pull(bridge, swap, unset=False)
        if peers:
            self.set_bridge_peers(bridge)

    def _update_linkedids(self, channel: Channel, members: list[Channel]) -> None:
        """A basic bridge gives all its members the oldest Linkedid among them (no event)."""

        def age(linkedid: str) -> tuple[float, int]:
            seconds, _, counter = linkedid.partition(".")
            try:
                return float(seconds), int(counter or 0)
            except ValueError:
                return float("inf"), 0

        oldest = min([channel.linkedid, *(m.linkedid for m in members)], key=age)
        for member in [channel, *members]:
            if member.linkedid != oldest:
                member.linkedid = oldest
                if member.published is not None:
                    member.published = member.published._replace(linkedid=oldest)

    def leave_bridge(self, channel: Channel, *, peers: bool = True) -> Bridge | None:
        """
        Take ``channel`` out of its bridge (``BRIDGEPEER`` unset, ``BridgeLeave``,
        the others' ``BRIDGEPEER`` updated); returns the bridge it left.  Does
        not end the bridge: see `bridge_emptied` and `dissolve_bridge`.
        """
        bridge = channel.bridge
        if not isinstance(bridge, Bridge):
            return None
        self._pull(bridge, channel, unset=True)
        if peers:
            self.set_bridge_peers(bridge)
        return bridge

    def _pull(self, bridge: Bridge, channel: Channel, *, unset: bool) -> None:
        if channel not in bridge.channels:
            return
        if unset and not bridge.holding:
            self._unset_peer(channel)
        bridge.channels.remove(channel)
        channel.bridge = None
        self.emit("BridgeLeave", [*bridge.headers(), *channel.snapshot()])
        self._left_bridge(channel, bridge)

    def _left_bridge(self, channel: Channel, bridge: Bridge) -> None:
        """``channel`` left ``bridge`` (the application that bridged it goes on)."""

    def set_bridge_peers(self, bridge: Bridge) -> None:
        """Set ``BRIDGEPEER`` on every member, as Asterisk does after a change."""
        if bridge.holding or bridge.num_channels < 2:
            return
        names = bridge.hidden + [c.name for c in bridge.channels]
        members = list(bridge.channels)
        if bridge.num_channels == 2:
            if len(members) == 2:
                first, last = members
                self._set_peer(first, last.name)
                self._set_peer(last, first.name)
            else:
                self._set_peer(members[0], bridge.hidden[0])
            return
        for member in members:
            others = [n for n in names if n != member.name][:10]
            self._set_peer(member, ",".join(others))

    def update_connected_lines(self, bridge: Bridge) -> None:
        """
        In a two-party bridge, make each party's connected line the other's
        caller ID (``NewConnectedLine`` where it changes), as Asterisk does
        when a bridge is joined without Dial's connected-line inhibition
        (a parked call picked up, a transfer).
        """
        if bridge.holding or bridge.hidden or len(bridge.channels) != 2:
            return
        first, last = bridge.channels
        for channel, other in ((first, last), (last, first)):
            channel.connected_num, channel.connected_name = other.caller_num, other.caller_name
            self.publish(channel)

    def _set_peer(self, channel: Channel, value: str) -> None:
        self.set_channel_var(channel, "BRIDGEPEER", value)

    def _unset_peer(self, channel: Channel) -> None:
        """Unset ``channel``'s ``BRIDGEPEER`` (a ``VarSet`` of nothing), if it is set."""
        if channel.variables.get("BRIDGEPEER"):
            self.set_channel_var(channel, "BRIDGEPEER", "")
            channel.variables.pop("BRIDGEPEER", None)

    def dissolve_bridge(self, bridge: Bridge) -> None:
        """End ``bridge``: every member's ``BRIDGEPEER`` is unset, then each leaves."""
        if bridge.destroyed:
            return
        members = list(bridge.channels)
        if not bridge.holding:
            for member in members:
                self._unset_peer(member)
        for member in members:
            self._pull(bridge, member, unset=False)
        self.destroy_bridge(bridge)

    def destroy_bridge(self, bridge: Bridge) -> None:
        """Raise ``BridgeDestroy`` (the bridge must be empty of visible members)."""
        if bridge.destroyed:
            return
        for member in list(bridge.channels):
            self._pull(bridge, member, unset=True)
        bridge.hidden.clear()
        bridge.destroyed = True
        self.bridges.pop(bridge.uniqueid, None)
        self.emit("BridgeDestroy", bridge.headers())

    def merge_bridges(self, into: Bridge, source: Bridge) -> None:
        """Move every member of ``source`` into ``into`` (``BridgeMerge``), then destroy it."""
        self.emit("BridgeMerge", [*into.headers("ToBridge"), *source.headers("FromBridge")])
        for member in list(source.channels):
            self._pull(source, member, unset=False)
            self.enter_bridge(into, member, peers=False)
        self.set_bridge_peers(into)
        self._soon(self.destroy_bridge, source)

    def bridge_peer(self, channel: Channel) -> Channel | None:
        """The other member of ``channel``'s two-party bridge, if any."""
        bridge = channel.bridge
        if not isinstance(bridge, Bridge):
            return None
        others = [c for c in bridge.channels if c is not channel]
        return others[0] if len(others) == 1 and not bridge.hidden else None
