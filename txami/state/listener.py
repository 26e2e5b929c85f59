"""
What `PBXState` tells its listeners: `IStateListener`, and
`StateListenerMixin` whose methods do nothing, so that a listener implements
only what it cares about.

Every change of the model reaches exactly one of these methods, after the
model is consistent again (a listener may read any object of the state from
inside a call).  ``changed_fields`` is a frozenset of attribute names.  A
listener that raises is logged; the other listeners and the state carry on.

Reasons given with ``*_gone``, ``*_left``, ``*_removed`` and ``call_ended``:

- ``"hangup"``: a ``Hangup`` event (a channel), or the last channel of a call hung up;
- ``"destroyed"``: a ``BridgeDestroy`` event;
- ``"left"``/``"abandoned"``: a queue caller left (answered, timed out, exited) / hung up;
- ``"removed"``: a queue member was removed (``QueueMemberRemoved``);
- ``"gone while disconnected"``: the re-sync after a reconnect no longer lists it;
- ``"not listed"``: a sync of this same session no longer lists it (its
  ending event is still on its way, or was filtered out);
- ``"asterisk restarted"``: Asterisk restarted while the connection was down;
- ``"unverifiable after reconnect"``: the session may not list what exists,
  so what was known before the reconnect cannot be checked and is dropped.
"""

from __future__ import annotations

from typing import Any

from zope.interface import Interface, implementer

__all__ = ["IStateListener", "StateListenerMixin"]


class IStateListener(Interface):
    """The changes of a `PBXState`, one method per kind of change."""

    def channel_new(channel: Any) -> None:  # noqa: N805
        """A channel appeared (created, or found by a sync)."""

    def channel_updated(channel: Any, changed_fields: frozenset[str]) -> None:  # noqa: N805
        """Fields of a channel changed (``state``, ``bridge``, ``call``, ``on_hold``, ...)."""

    def channel_gone(channel: Any, reason: str) -> None:  # noqa: N805
        """A channel hung up or vanished; it is no longer in `PBXState.channels`."""

    def bridge_new(bridge: Any) -> None:  # noqa: N805
        """A bridge appeared."""

    def bridge_updated(bridge: Any, changed_fields: frozenset[str]) -> None:  # noqa: N805
        """A bridge's members (``channels``), ``call`` or description changed."""

    def bridge_gone(bridge: Any, reason: str) -> None:  # noqa: N805
        """A bridge was destroyed or vanished."""

    def call_new(call: Any) -> None:  # noqa: N805
        """A call began (a new channel of no other call, or a part split off a call)."""

    def call_updated(call: Any, changed_fields: frozenset[str]) -> None:  # noqa: N805
        """A call's ``channels``, ``bridges``, ``answered`` or ``started`` changed."""

    def call_merged(call: Any, into: Any) -> None:  # noqa: N805
        """``call`` was joined to ``into`` (a transfer, a pickup, ...) and ends there."""

    def call_ended(call: Any, reason: str) -> None:  # noqa: N805
        """The last channel of a call is gone."""

    def queue_new(queue: Any) -> None:  # noqa: N805
        """A queue appeared."""

    def queue_updated(queue: Any, changed_fields: frozenset[str]) -> None:  # noqa: N805
        """A queue's parameters or counters changed (``completed``, ``holdtime``, ...)."""

    def queue_gone(queue: Any, reason: str) -> None:  # noqa: N805
        """A queue is no longer listed."""

    def queue_member_added(queue: Any, member: Any) -> None:  # noqa: N805
        """A member joined a queue."""

    def queue_member_updated(queue: Any, member: Any, changed_fields: frozenset[str]) -> None:  # noqa: N805
        """A member's status, pause, counters, ... changed."""

    def queue_member_removed(queue: Any, member: Any, reason: str) -> None:  # noqa: N805
        """A member left a queue."""

    def queue_entry_joined(queue: Any, entry: Any) -> None:  # noqa: N805
        """A caller joined a queue."""

    def queue_entry_updated(queue: Any, entry: Any, changed_fields: frozenset[str]) -> None:  # noqa: N805
        """A waiting caller's ``position`` changed (someone ahead left)."""

    def queue_entry_left(queue: Any, entry: Any, reason: str) -> None:  # noqa: N805
        """A caller left a queue (``"left"``, ``"abandoned"``, ...)."""

    def device_changed(device: Any) -> None:  # noqa: N805
        """A device state appeared or changed."""

    def hint_changed(hint: Any) -> None:  # noqa: N805
        """A hint appeared or its status changed; status -1/-2 means it was removed."""

    def presence_changed(presence: Any) -> None:  # noqa: N805
        """A presence state appeared or changed."""

    def synced(resynced: bool) -> None:  # noqa: N805
        """
        A sync completed: the first one (``False``), or a later one (``True``):
        after a reconnect, or when Asterisk finished booting after the last.
        """


@implementer(IStateListener)
class StateListenerMixin:
    """Every `IStateListener` method, doing nothing: subclass it and override what you need."""

    def channel_new(self, channel: Any) -> None:
        pass

    def channel_updated(self, channel: Any, changed_fields: frozenset[str]) -> None:
        pass

    def channel_gone(self, channel: Any, reason: str) -> None:
        pass

    def bridge_new(self, bridge: Any) -> None:
        pass

    def bridge_updated(self, bridge: Any, changed_fields: frozenset[str]) -> None:
        pass

    def bridge_gone(self, bridge: Any, reason: str) -> None:
        pass

    def call_new(self, call: Any) -> None:
        pass

    def call_updated(self, call: Any, changed_fields: frozenset[str]) -> None:
        pass

    def call_merged(self, call: Any, into: Any) -> None:
        pass

    def call_ended(self, call: Any, reason: str) -> None:
        pass

    def queue_new(self, queue: Any) -> None:
        pass

    def queue_updated(self, queue: Any, changed_fields: frozenset[str]) -> None:
        pass

    def queue_gone(self, queue: Any, reason: str) -> None:
        pass

    def queue_member_added(self, queue: Any, member: Any) -> None:
        pass

    def queue_member_updated(
        self, queue: Any, member: Any, changed_fields: frozenset[str]
    ) -> None:
        pass

    def queue_member_removed(self, queue: Any, member: Any, reason: str) -> None:
        pass

    def queue_entry_joined(self, queue: Any, entry: Any) -> None:
        pass

    def queue_entry_updated(self, queue: Any, entry: Any, changed_fields: frozenset[str]) -> None:
        pass

    def queue_entry_left(self, queue: Any, entry: Any, reason: str) -> None:
        pass

    def device_changed(self, device: Any) -> None:
        pass

    def hint_changed(self, hint: Any) -> None:
        pass

    def presence_changed(self, presence: Any) -> None:
        pass

    def synced(self, resynced: bool) -> None:
        pass
