"""
`Grouping`: which channels form one `Call`, kept up to date as links appear
and disappear.

Channels are linked by:

- a bridge whose members talk (any technology but ``holding_bridge``: the
  members of a parking lot are not one call);
- the two halves of a Local channel (``LocalBridge``, or the ``;1``/``;2``
  names in a list);
- a dial: ``DialBegin`` links the caller and the dialled channel until a
  ``DialEnd`` that is not ``ANSWER``; and a channel Asterisk creates on
  behalf of another (its ``Linkedid`` at creation is the ``Uniqueid`` of a
  live channel) starts linked to that channel, so a callee is in its caller's
  call from its first event on;
- a Local channel optimising itself away: the channel that will take its
  place is linked to it from ``LocalOptimizationBegin`` on.

A call is a connected component of that graph.  A new link between two calls
merges them: the older call survives and the other is reported merged into
it.  A lost link may split a call: its biggest part keeps it (of parts of
equal size, the one with the oldest channel), and each other part becomes a
new call.  Links other than bridges last until one of their channels hangs
up, unless an event ends them sooner (a ``DialEnd`` that is not ``ANSWER``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from twisted.python.failure import Failure

from txami.state.errors import ObjectGone
from txami.state.objects import Bridge, Call, Channel
from txami.state.store import Store

__all__ = ["BIRTH", "DIAL", "LOCAL", "OPTIMIZING", "Grouping"]

#: Link kinds (bits: two channels may be linked for several reasons at once).
LOCAL = 1
DIAL = 2
BIRTH = 4
OPTIMIZING = 8


def _age(channel: Channel) -> tuple[float, int, str, int]:
    """
    Oldest first: by creation time, then by Uniqueid (``<seconds>.<counter>``:
    of two made in the same second, the shorter counter is the smaller).
    """
    uniqueid = channel.uniqueid
    return (channel.created, len(uniqueid), uniqueid, channel._seq)


def _neighbours(channel: Channel) -> Iterator[Channel]:
    peer = channel._peer
    if peer is not None:
        yield peer
    links = channel._links
    if links:
        yield from links
    bridge = channel.bridge
    if bridge is not None and bridge.connects:
        yield from bridge.channels


def _component(start: Channel, within: dict[Channel, None]) -> dict[Channel, None]:
    """The channels of ``within`` reachable from ``start`` (in discovery order)."""
    seen: dict[Channel, None] = {start: None}
    todo = [start]
    while todo:
        channel = todo.pop()
        for other in _neighbours(channel):
            if other not in seen and other in within:
                seen[other] = None
                todo.append(other)
    return seen


def _reaches(start: Channel, goal: Channel) -> bool:
    seen = {start}
    todo = [start]
    while todo:
        channel = todo.pop()
        for other in _neighbours(channel):
            if other is goal:
                return True
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return False


class Grouping:
    """Keeps `Store.calls` and each channel's and bridge's ``call`` right."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- calls -------------------------------------------------------------------------------

    def _new_call(self, channels: Iterable[Channel], follow: bool = True) -> Call:
        members = list(channels)
        if len(members) > 1:
            members.sort(key=_age)
        first = members[0]
        store = self.store
        base = call_id = first.uniqueid
        n = 1
        while call_id in store.calls or call_id in store.retired_calls:
            n += 1
            call_id = f"{base}-{n}"
        call = Call(call_id, first.created, store.next_seq())
        for channel in members:
            answered = channel.answered
            if answered is not None and (call.answered is None or answered < call.answered):
                call.answered = answered
        store.calls[call_id] = call
        outbox = store.outbox
        outbox.new("call_new", call)
        for channel in members:
            previous = channel.call
            call._channels[channel] = None
            channel.call = call
            if previous is not None:
                outbox.updated("channel_updated", channel, ("call",))
        if follow:
            self._bridges_follow(members)
        return call

    def _bridges_follow(self, channels: Iterable[Channel]) -> None:
        """Set the ``call`` of the bridges of ``channels`` to their members' call."""
        for channel in channels:
            bridge = channel.bridge
            if bridge is not None:
                self.bridge_call(bridge)

    def bridge_call(self, bridge: Bridge) -> None:
        """Recompute ``bridge.call``: its members' call, or `None` (empty, holding)."""
        call = bridge.channels[0].call if bridge.channels and bridge.connects else None
        if call is not bridge.call:
            bridge.call = call
            self.store.outbox.updated("bridge_updated", bridge, ("call",))

    def _end(self, call: Call, reason: str) -> None:
        store = self.store
        call.ended = reason
        if store.calls.get(call.id) is call:
            del store.calls[call.id]
            store.retired_calls.add(call.id, store.clock.seconds())
        store.outbox.gone("call_ended", call, call, reason)
        waiters = call._waiters
        if waiters:
            store.outbox.fire(waiters.take_all(), call)

    def _merge(self, one: Call, other: Call) -> Call:
        """Join two calls; the older survives and is returned."""
        if other._seq < one._seq:
            one, other = other, one
        store = self.store
        outbox = store.outbox
        moved = list(other._channels)
        for channel in moved:
            one._channels[channel] = None
            channel.call = one
            outbox.updated("channel_updated", channel, ("call",))
        other._channels.clear()
        changed = ["channels"]
        if other.started < one.started:
            one.started = other.started
            changed.append("started")
        if other.answered is not None and (one.answered is None or other.answered < one.answered):
            one.answered = other.answered
            changed.append("answered")
        self._bridges_follow(moved)
        other.ended = "merged"
        if store.calls.get(other.id) is other:
            del store.calls[other.id]
            store.retired_calls.add(other.id, store.clock.seconds())
        outbox.gone("call_merged", other, other, one)
        outbox.updated("call_updated", one, changed)
        waiters = other._waiters
        if waiters:
            gone = ObjectGone(f"call {other.id}", "merged")
            outbox.fire(waiters.take_all(), Failure(gone))  # type: ignore[no-untyped-call]
        return one

    def _split(self, call: Call) -> None:
        """Break ``call`` into its connected parts, if it has fallen apart."""
        remaining = dict(call._channels)
        if not remaining:
            return
        parts = []
        while remaining:
            start = min(remaining, key=lambda c: c._seq)
            part = _component(start, remaining)
            if len(part) == len(call._channels):
                return  # still in one piece
            for channel in part:
                del remaining[channel]
            parts.append(part)
        # The biggest part goes on as the call (of equal ones, the oldest).
        kept = max(parts, key=lambda p: (len(p), -min(c._seq for c in p)))
        call._channels = {c: None for c in call._channels if c in kept}
        self.store.outbox.updated("call_updated", call, ("channels",))
        for part in parts:
            if part is not kept:
                self._new_call(part)

    # --- channels ----------------------------------------------------------------------------

    def added(self, channel: Channel, requested_by: Channel | None = None) -> None:
        """Give a new channel its call: its requester's, else a call of its own."""
        if requested_by is not None and requested_by.call is not None:
            self.link(channel, requested_by, BIRTH)
        else:
            self._new_call((channel,))

    def removed(self, channel: Channel, reason: str) -> None:
        """Take a channel that is gone out of its call (its bridge must already be left)."""
        links = channel._links
        if links:
            for other in links:
                other_links = other._links
                if other_links is not None:
                    other_links.pop(channel, None)
            channel._links = None
        peer = channel._peer
        if peer is not None:
            if peer._peer is channel:
                peer._peer = None
            channel._peer = None
        call = channel.call
        if call is None:
            return
        del call._channels[channel]
        if not call._channels:
            self._end(call, reason)
            return
        self.store.outbox.updated("call_updated", call, ("channels",))
        if len(call._channels) > 1:
            self._split(call)

    # --- links -------------------------------------------------------------------------------

    def link(self, one: Channel, other: Channel, kind: int) -> None:
        """Link two channels (``kind`` is one of the link bits); merge their calls."""
        if one is other:
            return
        if kind == LOCAL:
            one._peer = other
            other._peer = one
            self._connect(one, other)
            return
        links = one._links
        if links is None:
            links = one._links = {}
        links[other] = links.get(other, 0) | kind
        links = other._links
        if links is None:
            links = other._links = {}
        links[one] = links.get(one, 0) | kind
        self._connect(one, other)

    def _connect(self, one: Channel, other: Channel) -> None:
        first, second = one.call, other.call
        if first is second:
            return  # the same call, or two channels not grouped yet (see adopt)
        if first is None or second is None:
            # A channel without a call yet (just created): join the other's.
            joining, call = (one, second) if first is None else (other, first)
            assert call is not None
            call._channels[joining] = None
            joining.call = call
            outbox = self.store.outbox
            outbox.updated("call_updated", call, ("channels",))
            if joining.answered is not None and call.answered is None:
                call.answered = joining.answered
                outbox.updated("call_updated", call, ("answered",))
            return
        self._merge(first, second)

    def unlink(self, one: Channel, other: Channel, kind: int) -> None:
        """Remove link ``kind`` between two channels; split their call if it fell apart."""
        links = one._links
        if not links or other not in links:
            return
        bits = links[other] & ~kind
        if bits == links[other]:
            return
        if bits:
            links[other] = bits
            other_links = other._links
            if other_links is not None:
                other_links[one] = bits
            return
        del links[other]
        other_links = other._links
        if other_links is not None:
            other_links.pop(one, None)
        call = one.call
        if call is not None and call is other.call and not _reaches(one, other):
            self._split(call)

    def linked(self, one: Channel, other: Channel, kind: int) -> bool:
        """Whether link ``kind`` joins the two channels."""
        if kind == LOCAL:
            return one._peer is other
        links = one._links
        return bool(links and links.get(other, 0) & kind)

    # --- bridges -----------------------------------------------------------------------------

    def entered(self, channel: Channel, bridge: Bridge) -> None:
        """``channel`` is now a member of ``bridge``: merge with the other members' call."""
        if bridge.connects:
            call = channel.call
            changed = len(bridge.channels) == 1
            for member in bridge.channels:
                if member is not channel and member.call is not call:
                    self._connect(member, channel)
                    call = channel.call
                    changed = True
            if changed and call is not None:
                self.store.outbox.updated("call_updated", call, ("bridges",))
        self.bridge_call(bridge)

    def left(self, channel: Channel, bridge: Bridge) -> None:
        """``channel`` is no longer in ``bridge``: split if that broke its call."""
        call = channel.call
        if call is not None and bridge.connects:
            # The members of a bridge reach each other: checking one is enough.
            if bridge.channels:
                member = bridge.channels[0]
                if member.call is call and not _reaches(channel, member):
                    self._split(call)
            call = channel.call
            if call is not None and not any(m.call is call for m in bridge.channels):
                self.store.outbox.updated("call_updated", call, ("bridges",))
        self.bridge_call(bridge)

    def adopt(self, channels: Iterable[Channel]) -> None:
        """
        Give calls to channels that have none yet (found by a sync): each
        connected group joins the call it touches (merging several, if it
        links them), or becomes a new call.  The caller then sets the
        ``call`` of the bridges those channels are in (`bridge_call`).
        """
        for channel in channels:
            if channel.call is not None:
                continue
            group = [channel]
            seen = {channel}
            calls: dict[Call, None] = {}
            index = 0
            while index < len(group):
                current = group[index]
                index += 1
                links = current._links
                others: list[Channel] = list(links) if links else []
                if current._peer is not None:
                    others.append(current._peer)
                bridge = current.bridge
                if bridge is not None and bridge.connects:
                    others += bridge.channels
                for other in others:
                    other_call = other.call
                    if other_call is not None:
                        calls[other_call] = None
                    elif other not in seen:
                        seen.add(other)
                        group.append(other)
            if not calls:
                self._new_call(group, follow=False)  # the caller sets the bridges' calls
                continue
            call = min(calls, key=lambda c: c._seq)
            for touched in calls:
                if touched is not call and touched.ended is None:
                    call = self._merge(call, touched)
            for member in sorted(group, key=lambda c: c._seq):
                self._connect(member, next(iter(call._channels)))

    def regroup(self, channels: Iterable[Channel]) -> None:
        """Re-check the calls of ``channels`` after links changed in bulk (a sync)."""
        calls = {c.call: None for c in channels if c.call is not None}
        for call in calls:
            if call.ended is None:
                self._split(call)
