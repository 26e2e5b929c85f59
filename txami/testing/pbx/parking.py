"""
Call parking of the fake PBX (`ParkingLot`, `ParkedCall`, `ParkingMixin`), as res_parking does it.

A parked call waits in its lot's holding bridge (``BridgeType: parking``,
created at the first park and kept afterwards) with music on hold, in the
first free space (``ParkedCall``, the ``park:7001@parkedcalls`` device
``INUSE``).  Dialling the space (``ParkedCall(lot,space)``, the lot's
``parkedcalls`` extensions) picks it up into a new basic bridge
(``UnParkedCall``); a parked call that hangs up raises ``ParkedCallGiveUp``;
one left ``timeout`` seconds raises ``ParkedCallTimeOut`` and, as with
``comebacktoorigin=yes``, calls its parker back from the ``park-dial``
context.  The Park action parks a channel directly (its bridge peer goes
on), ``Park()`` in the dialplan parks the channel running it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.interfaces import IDelayedCall

from txami.testing.pbx.bridges import Bridge
from txami.testing.pbx.channels import Channel
from txami.testing.pbx.confbridge import ConfBridgeMixin
from txami.testing.pbx.core import EmitHook, operation
from txami.testing.pbx.dialplan import Step
from txami.testing.timers import Timers

__all__ = ["ParkedCall", "ParkingLot", "ParkingMixin"]


@dataclass(eq=False)
class ParkedCall:
    """A channel waiting in a parking space."""

    channel: Channel
    lot: str
    space: int
    parker_dial_string: str
    parked_at: float
    timeout: int
    timer: IDelayedCall | None = field(default=None, repr=False)


@dataclass
class ParkingLot:
    """A parking lot: its extension, spaces, context and timeout (res_parking.conf)."""

    name: str = "default"
    park_exten: str = "7000"
    first_space: int = 7001
    last_space: int = 7020
    context: str = "parkedcalls"
    timeout: int = 45
    comeback_to_origin: bool = True
    bridge: Bridge | None = None
    parked: dict[int, ParkedCall] = field(default_factory=dict)

    def free_space(self) -> int | None:
        """The first free space, or `None` when the lot is full."""
        for space in range(self.first_space, self.last_space + 1):
            if space not in self.parked:
                return space
        return None


class ParkingMixin(ConfBridgeMixin):
    """Parking lots and parked calls (see the module's docstring)."""

    def __init__(self, timers: Timers, emit: EmitHook | None = None) -> None:
        super().__init__(timers, emit)
        #: Parking lots by name.
        self.parking_lots: dict[str, ParkingLot] = {"default": ParkingLot()}

    # --- the lots' extensions ----------------------------------------------------------

    def _dynamic_extension(self, context: str, exten: str) -> list[Step] | None:
        for lot in self.parking_lots.values():
            if context != lot.context:
                continue
            if exten == lot.park_exten:
                return [("Park", lot.name)]
            if exten.isdigit() and lot.first_space <= int(exten) <= lot.last_space:
                return [("ParkedCall", f"{lot.name},{exten}")]
        if context == "park-dial":
            for lot in self.parking_lots.values():
                for parked in lot.parked.values():
                    if parked.parker_dial_string.replace("/", "_") == exten:
                        return [("Dial", f"{parked.parker_dial_string},30")]
        return super()._dynamic_extension(context, exten)

    def parked_calls(self, lot: str | None = None) -> list[ParkedCall]:
        """The parked calls (of ``lot``, or of every lot), by space."""
        found: list[ParkedCall] = []
        for parking in self.parking_lots.values():
            if lot is None or parking.name == lot:
                found.extend(parking.parked[s] for s in sorted(parking.parked))
        return found

    def parked_headers(self, parked: ParkedCall, *extra: tuple[str, str]) -> list[tuple[str, str]]:
        """The headers of ParkedCall and its kin: the parkee, then the lot and times."""
        now = self.clock.seconds()
        duration = int(now - parked.parked_at)
        remaining = max(0, parked.timeout - duration) if parked.timeout else 0
        return [
            *parked.channel.snapshot("Parkee"),
            *extra,
            ("ParkerDialString", parked.parker_dial_string),
            ("Parkinglot", parked.lot),
            ("ParkingSpace", str(parked.space)),
            ("ParkingTimeout", str(remaining)),
            ("ParkingDuration", str(duration)),
        ]

    # --- parking -------------------------------------------------------------------------

    @operation
    def park(
        self, channel: Channel, lot: str = "", timeout: int | None = None
    ) -> ParkedCall | None:
        """
        Park ``channel`` in ``lot`` (the default lot if empty): the Park action.
        It leaves its bridge (whose other party goes on); ``timeout`` seconds
        (the lot's if `None`, 0 for never).  `None` when the lot is full or
        unknown, or the channel's bridge lets no one be moved out (ConfBridge's:
        Asterisk sets the lot's bridge up, then fails).
        """
        parking = self.parking_lots.get(lot or "default")
        if parking is None or channel.hungup:
            return None
        space = parking.free_space()
        if space is None:
            return None
        if parking.bridge is None or parking.bridge.destroyed:
            parking.bridge = self.create_bridge(
                "parking", "holding_bridge", "Parking", parking.name, dissolve_on_hangup=False
            )
        old = channel.bridge
        if isinstance(old, Bridge) and old.masquerade_only:
            return None
        others: list[Channel] = []
        if isinstance(old, Bridge):
            others = [c for c in old.channels if c is not channel]
            self._pull(old, channel, unset=False)
        parked = ParkedCall(
            channel,
            parking.name,
            space,
            channel.device,
            self.clock.seconds(),
            parking.timeout if timeout is None else timeout,
        )
        parking.parked[space] = parked
        self.emit("ParkedCall", self.parked_headers(parked))
        self.set_device_state(f"park:{space}@{parking.context}", "INUSE")
        self.enter_bridge(parking.bridge, channel)
        self._unset_peer(channel)
        if isinstance(old, Bridge) and not old.destroyed:
            for member in others:
                self._unset_peer(member)
                self._pull(old, member, unset=False)
            self.destroy_bridge(old)
            for member in others:
                self._soon(self._kicked, member, old)
        self.start_music(channel, "default")
        channel.stop_app = lambda: self._give_up(parked)
        channel.after_bridge = None
        if parked.timeout:
            parked.timer = self._schedule(parked.timeout, self._park_timeout, parked)
        return parked

    def _app_park(self, channel: Channel, data: str, then: Callable[[], None]) -> bool:
        self.set_state(channel, 6)
        self.park(channel, data.split(",")[0])
        return False

    def _unpark(self, parked: ParkedCall) -> ParkingLot | None:
        parking = self.parking_lots.get(parked.lot)
        if parking is None or parking.parked.get(parked.space) is not parked:
            return None
        del parking.parked[parked.space]
        self.timers.cancel(parked.timer)
        parked.timer = None
        parked.channel.stop_app = None
        return parking

    def _give_up(self, parked: ParkedCall) -> None:
        """The parked call hung up."""
        parking = self._unpark(parked)
        if parking is None:
            return
        self.stop_music(parked.channel)
        self.emit("ParkedCallGiveUp", self.parked_headers(parked))
        self.set_device_state(f"park:{parked.space}@{parking.context}", "NOT_INUSE")
        if isinstance(parked.channel.bridge, Bridge):
            self.leave_bridge(parked.channel)

    def _park_timeout(self, parked: ParkedCall) -> None:
        """Nobody picked the call up: ``ParkedCallTimeOut``, it calls its parker back."""
        parked.timer = None
        channel = parked.channel
        parking = self.parking_lots.get(parked.lot)
        if parking is None or parking.parked.get(parked.space) is not parked:
            return
        flat = parked.parker_dial_string.replace("/", "_")
        for name, value in (
            ("PARKING_SPACE", str(parked.space)),
            ("PARKEDLOT", parked.lot),
            ("PARKER", parked.parker_dial_string),
            ("PARKER_FLAT", flat),
            ("BRIDGE_FEATURES", ""),
        ):
            self.set_channel_var(channel, name, value)
        self.stop_music(channel)
        self.set_device_state(f"park:{parked.space}@{parking.context}", "NOT_INUSE")
        self._soon(lambda: self.emit("ParkedCallTimeOut", self.parked_headers(parked)))
        self._unpark(parked)
        self.leave_bridge(channel)
        if parking.comeback_to_origin:
            channel.context, channel.exten, channel.priority = "park-dial", flat, 1
            self.publish(channel)
            channel.in_pbx = True
            steps = [("Dial", f"{parked.parker_dial_string},30")]
            channel.application, channel.data = steps[0]
            self._execute(channel, "Dial", steps[0][1], lambda: self._end(channel))
        else:
            self.hangup(channel, 16)

    def _app_parkedcall(self, channel: Channel, data: str, then: Callable[[], None]) -> bool:
        lot, _, space = data.partition(",")
        parking = self.parking_lots.get(lot or "default")
        parked = parking.parked.get(int(space)) if parking is not None and space else None
        if parking is None or parked is None:
            return True
        self.set_state(channel, 6)
        self._unpark(parked)
        bridge = self.create_bridge()
        parkee = parked.channel
        self.stop_music(parkee)
        self.set_device_state(f"park:{parked.space}@{parking.context}", "NOT_INUSE")
        if isinstance(parkee.bridge, Bridge):
            self._pull(parkee.bridge, parkee, unset=False)
        self.emit(
            "UnParkedCall",
            self.parked_headers(parked, *channel.snapshot("Retriever")),
        )
        self.enter_bridge(bridge, parkee, peers=False)
        self.enter_bridge(bridge, channel, peers=False)
        self.set_bridge_peers(bridge)
        self.update_connected_lines(bridge)
        channel.after_bridge = then
        return False
