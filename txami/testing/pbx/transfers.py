"""
Transfers of the fake PBX (`TransfersMixin`), as Asterisk 20's bridge_basic.c does them.

* A blind transfer (the BlindTransfer action, ``#1``) sends the transferer's
  bridge peer to an extension: ``BLINDTRANSFER`` set on both, the two-party
  bridge ends (``BlindTransfer``), the transferee runs the dialplan there and
  the transferer goes on with its own dialplan.
* An attended transfer (the Atxfer action, ``*2``) puts the transferer on
  hold (``Hold``; its peer hears music), calls the target into a second
  bridge and moves the transferer there to consult.  When the transferer
  hangs up the transfer completes: the second bridge is merged into the
  first (``BridgeMerge``), the target joins the transferee
  (``AttendedTransfer`` with ``DestType: Bridge``).  If the target hangs up
  first, the transferer goes back to its first bridge.

Unlike Asterisk, the fake does not check the transfer features (Dial's
``t``/``T``, ``BRIDGE_FEATURES``) nor use DTMF: the actions always may transfer.
"""

from __future__ import annotations

from dataclasses import dataclass

from txami.testing.pbx.bridges import Bridge
from txami.testing.pbx.calls import Dialing
from txami.testing.pbx.channels import Channel
from txami.testing.pbx.core import EmitHook, operation
from txami.testing.pbx.parking import ParkingMixin
from txami.testing.timers import Timers

__all__ = ["TransfersMixin"]


@dataclass(eq=False)
class _Consultation:
    """An attended transfer in progress: who transfers whom to whom, in which bridges."""

    transferer: Channel
    first: Bridge
    second: Bridge
    target: Channel | None = None


class TransfersMixin(ParkingMixin):
    """Blind and attended transfers (see the module's docstring)."""

    def __init__(self, timers: Timers, emit: EmitHook | None = None) -> None:
        super().__init__(timers, emit)
        self._consultations: dict[str, _Consultation] = {}

    # --- blind transfers -----------------------------------------------------------

    @operation
    def blind_transfer(self, transferer: Channel, exten: str, context: str = "") -> str:
        """
        Blind-transfer ``transferer``'s bridge peer to ``exten@context`` (the
        transferer's context if empty).  Returns ``"Success"``, or why not:
        ``"Invalid"`` (not in a two-party bridge).
        """
        bridge = transferer.bridge
        context = context or transferer.context
        if not isinstance(bridge, Bridge) or bridge.holding or bridge.hidden:
            return "Invalid"
        others = [c for c in bridge.channels if c is not transferer]
        if len(others) != 1:
            return "Invalid"
        transferee = others[0]
        self.channel_event("Unhold", transferer)
        self.set_channel_var(transferer, "BLINDTRANSFER", transferee.name)
        self.set_channel_var(transferee, "BLINDTRANSFER", transferer.name)
        for member in (transferer, transferee):
            self._unset_peer(member)
        self.emit(
            "BlindTransfer",
            [
                ("Result", "Success"),
                *transferer.snapshot("Transferer"),
                *transferee.snapshot("Transferee"),
                *bridge.headers(),
                ("IsExternal", "Yes"),
                ("Context", context),
                ("Extension", exten),
            ],
        )
        transferee.context, transferee.exten, transferee.priority = context, exten, 1
        self.publish(transferee)
        transferee.after_bridge = None
        self._pull(bridge, transferee, unset=False)
        self._pull(bridge, transferer, unset=False)
        self.destroy_bridge(bridge)
        self._soon(self._kicked, transferer, bridge)
        self._soon(self._start_pbx, transferee, context, exten, 1)
        return "Success"

    # --- attended transfers ----------------------------------------------------------

    @operation
    def attended_transfer(self, transferer: Channel, exten: str, context: str = "") -> str:
        """
        Start an attended transfer of ``transferer``'s bridge peer to
        ``exten@context``: the transferer consults the target in a second
        bridge; its hangup completes the transfer.  Returns ``"Success"`` or
        ``"Invalid"`` (not bridged, or already transferring).
        """
        first = transferer.bridge
        context = context or transferer.context
        if not isinstance(first, Bridge) or transferer.uniqueid in self._consultations:
            return "Invalid"
        self.hold(transferer)
        for member in first.channels:
            if member is not transferer:
                self.start_music(member, "default")
        second = self.create_bridge()
        consultation = _Consultation(transferer, first, second)
        self._consultations[transferer.uniqueid] = consultation

        def setup(target: Channel) -> None:
            self.set_channel_var(target, "TRANSFERERNAME", transferer.name)
            self.set_channel_var(target, "ATTENDEDTRANSFER", transferer.name)
            target.connected_num = transferer.caller_num
            target.connected_name = transferer.caller_name

        def answered(target: Channel) -> None:
            self._consult(consultation)

        def failed(target: Channel | None, status: str) -> None:
            self._abort_transfer(consultation)

        dialing = Dialing(None, f"{exten}@{context}", answered, failed)
        target = self.dial(
            f"Local/{exten}@{context}",
            dialing,
            setup=setup,
            linkedid=transferer.linkedid,
            report_dial=False,
        )
        if target is None:
            return "Success"
        consultation.target = target
        self.publish(target)
        self.enter_bridge(second, target)
        self.set_channel_var(target, "ATTENDEDTRANSFER", "")
        target.variables.pop("ATTENDEDTRANSFER", None)
        target.after_bridge = None
        return "Success"

    def _consult(self, consultation: _Consultation) -> None:
        """The target answered: the transferer moves to the second bridge to talk to it."""
        transferer = consultation.transferer
        if transferer.hungup or consultation.second.destroyed:
            return
        self._pull(consultation.first, transferer, unset=False)
        self.enter_bridge(consultation.second, transferer)
        self.update_connected_lines(consultation.second)

    def _abort_transfer(self, consultation: _Consultation) -> None:
        """The target did not answer or hung up: the transferer goes back."""
        self._consultations.pop(consultation.transferer.uniqueid, None)
        transferer = consultation.transferer
        for member in consultation.first.channels:
            self.stop_music(member)
        if not consultation.second.destroyed:
            if transferer.bridge is consultation.second:
                self._pull(consultation.second, transferer, unset=True)
            self.destroy_bridge(consultation.second)
        if not transferer.hungup and not consultation.first.destroyed:
            self.unhold(transferer)
            if transferer.bridge is not consultation.first:
                self.enter_bridge(consultation.first, transferer)

    def _hangup_in_bridge(self, channel: Channel, bridge: Bridge) -> None:
        consultation = self._consultations.get(channel.uniqueid)
        if consultation is not None and bridge is consultation.second:
            self._complete_transfer(consultation)
            return
        if consultation is not None:
            # The transferer hangs up before the target answered: the transfer is off.
            self._consultations.pop(channel.uniqueid, None)
            target = consultation.target
            if target is not None and not target.hungup:
                self.cancel_dial(target)
            for member in consultation.first.channels:
                self.stop_music(member)
            if not consultation.second.destroyed:
                self.destroy_bridge(consultation.second)
        for other in list(self._consultations.values()):
            if other.target is channel and bridge is other.second:
                self.leave_bridge(channel)
                self._abort_transfer(other)
                return
        super()._hangup_in_bridge(channel, bridge)

    def _complete_transfer(self, consultation: _Consultation) -> None:
        """The transferer hung up while consulting: the target joins the transferee."""
        self._consultations.pop(consultation.transferer.uniqueid, None)
        transferer, first, second = (
            consultation.transferer,
            consultation.first,
            consultation.second,
        )
        self.leave_bridge(transferer, peers=False)
        transferees = list(first.channels)
        for member in transferees:
            self.stop_music(member)
        self.merge_bridges(first, second)
        self.emit(
            "AttendedTransfer",
            [
                ("Result", "Success"),
                *transferer.snapshot("OrigTransferer"),
                *first.headers("OrigBridge"),
                *transferer.snapshot("SecondTransferer"),
                *second.headers("SecondBridge"),
                *(transferees[0].snapshot("Transferee") if transferees else []),
                ("IsExternal", "No"),
                ("DestType", "Bridge"),
                ("DestBridgeUniqueid", first.uniqueid),
            ],
        )
        self.update_connected_lines(first)
        after, transferer.after_bridge = transferer.after_bridge, None
        if after is not None:
            after()
