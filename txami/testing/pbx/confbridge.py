"""
ConfBridge conferences of the fake PBX (`Conference`, `ConfBridgeMixin`).

``ConfBridge(name)`` puts the channel in the conference's ``softmix`` bridge
(``BridgeType: base``, ``BridgeCreator: ConfBridge``, ``BridgeName`` the
conference), creating it for the first caller: ``BridgeCreate``,
``ConfbridgeStart`` and the ``confbridge:name`` device going ``INUSE``.  As in
Asterisk, the conference bridge holds an announcer channel
(``CBAnn/name-0000000a;2``) that no event names but that counts in
``BridgeNumChannels`` and appears in ``BRIDGEPEER``.  Each member raises
``ConfbridgeJoin`` and, when it hangs up or is moved away,
``ConfbridgeLeave`` (with ``CONFBRIDGE_RESULT``); when the last member goes,
``ConfbridgeEnd`` and ``BridgeDestroy``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from txami.testing.pbx.bridges import Bridge
from txami.testing.pbx.channels import Channel
from txami.testing.pbx.core import EmitHook
from txami.testing.pbx.queues import QueuesMixin
from txami.testing.timers import Timers

__all__ = ["ConfBridgeMixin", "Conference"]


@dataclass(eq=False)
class Conference:
    """One running conference: its bridge, its members and when each joined."""

    name: str
    bridge: Bridge
    announcer: str
    joined: dict[str, float] = field(default_factory=dict)
    #: Members whose ConfbridgeJoin is not reported yet.
    announcing: list[Channel] = field(default_factory=list)

    @property
    def members(self) -> list[Channel]:
        """The members, in the order they joined."""
        return list(self.bridge.channels)


class ConfBridgeMixin(QueuesMixin):
    """ConfBridge conferences (see the module's docstring)."""

    def __init__(self, timers: Timers, emit: EmitHook | None = None) -> None:
        super().__init__(timers, emit)
        #: Running conferences by name.
        self.conferences: dict[str, Conference] = {}

    def _conference_headers(self, conference: Conference) -> list[tuple[str, str]]:
        return [("Conference", conference.name), *conference.bridge.headers()]

    def _app_confbridge(self, channel: Channel, data: str, then: Callable[[], None]) -> bool:
        name = data.split(",")[0].strip()
        if not name:
            return True
        self.set_state(channel, 6)
        conference = self.conferences.get(name)
        if conference is None:
            bridge = self.create_bridge(
                "base",
                "softmix",
                "ConfBridge",
                name,
                dissolve_on_hangup=False,
                masquerade_only=True,
            )
            announcer = f"CBAnn/{name}-{self._next_sequence():08x}"
            bridge.hidden.append(announcer + ";2")
            conference = Conference(name, bridge, announcer)
            self.conferences[name] = conference
            self.emit("ConfbridgeStart", self._conference_headers(conference))
            self.set_device_state(f"confbridge:{name}", "INUSE")
        conference.joined[channel.uniqueid] = self.clock.seconds()
        self.enter_bridge(conference.bridge, channel, peers=False)
        # ConfBridge reports a join once the member is in; a member joining meanwhile
        # gets the earlier joins reported first (with the bridge as it is by then).
        self._announce_joins(conference)
        self.set_bridge_peers(conference.bridge)
        conference.announcing.append(channel)
        self._soon(self._announce_joins, conference)

        def leave() -> None:
            self._leave_conference(conference, channel, "HANGUP" if channel.ending else "")

        channel.stop_app = leave
        return False

    def _announce_joins(self, conference: Conference) -> None:
        pending, conference.announcing = conference.announcing, []
        for channel in pending:
            if channel.hungup or channel.bridge is not conference.bridge:
                continue
            self.emit(
                "ConfbridgeJoin",
                [
                    *self._conference_headers(conference),
                    *channel.snapshot(),
                    ("Admin", "No"),
                    ("Muted", "No"),
                ],
            )

    def _leave_conference(self, conference: Conference, channel: Channel, result: str) -> None:
        """``channel`` leaves ``conference``; the conference ends with its last member."""
        bridge = conference.bridge
        if channel.bridge is not bridge:
            return
        before = bridge.headers()
        leave = [("Conference", conference.name), *before, *channel.snapshot(), ("Admin", "No")]
        last = len(bridge.channels) == 1
        self._unset_peer(channel)
        if not last:
            self.emit("ConfbridgeLeave", leave)
        self.leave_bridge(channel)
        if result:
            self.set_channel_var(channel, "CONFBRIDGE_RESULT", result)
        if last:
            self.emit("ConfbridgeLeave", leave)
        conference.joined.pop(channel.uniqueid, None)
        if not bridge.channels:
            self._end_conference(conference)

    def _end_conference(self, conference: Conference) -> None:
        self.conferences.pop(conference.name, None)
        self.emit("ConfbridgeEnd", self._conference_headers(conference))
        self.set_device_state(f"confbridge:{conference.name}", "NOT_INUSE")
        device = conference.announcer.rpartition("-")[0]
        self.emit("DeviceStateChange", [("Device", device), ("State", "INUSE")])
        self.emit("DeviceStateChange", [("Device", device), ("State", "UNKNOWN")])
        self.destroy_bridge(conference.bridge)

    def _conference_of(self, bridge: Bridge) -> Conference | None:
        return next((c for c in self.conferences.values() if c.bridge is bridge), None)

    def conference_members(self, name: str) -> list[Channel]:
        """The members of conference ``name`` (empty if it is not running)."""
        conference = self.conferences.get(name)
        return conference.members if conference is not None else []
