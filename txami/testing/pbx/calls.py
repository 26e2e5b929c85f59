"""
Calls of the fake PBX (`CallsMixin`): channels are made, dialled, answered and
hung up here, with the events and the order Asterisk 20 gives them.

* An outgoing call (`CallsMixin.dial`) is what Originate, Dial, Queue and an
  attended transfer place.  ``Local/exten@context`` makes the ``;1``/``;2``
  pair Asterisk makes (``Newchannel`` twice, the variables and caller IDs
  copied to ``;2``, ``LocalBridge``), ``DialBegin``, then ``;2`` runs the
  dialplan and ``;1`` answers when ``;2`` does (``DialEnd``).  Any other
  technology makes one channel that rings for ``ring_time`` seconds, then
  answers or fails as ``endpoint_outcomes`` says.
* A hangup follows ``core_unreal.c`` and ``pbx.c``: a channel that ran the
  dialplan raises ``SoftHangupRequest`` (cause 16, the "PBX ended" flag) as
  it stops; a Local half that goes asks the other half to go
  (``HangupRequest`` with its cause; ``CHANLOCALSTATUS`` copied from a Dial's
  ``DIALSTATUS``); a bridged channel leaves its bridge first, which ends a
  Dial's or Queue's bridge for the other party too.
* Local channel optimisation: once both halves of an optimisable Local pair
  are bridged, ``;1``'s bridge gets the channel ``;2`` is bridged with
  (``LocalOptimizationBegin``, ``BridgeEnter`` with ``SwapUniqueid``,
  ``LocalOptimizationEnd``) and the pair hangs up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from twisted.internet.interfaces import IDelayedCall

from txami.testing.pbx.bridges import Bridge, BridgesMixin
from txami.testing.pbx.channels import Channel, parse_caller_id
from txami.testing.pbx.core import EmitHook, operation
from txami.testing.timers import Timers

__all__ = ["CallsMixin", "Dialing", "OriginateCallback"]

#: Outcome callback of `CallsMixin.originate`: ``(answered, reason, channel)``.
OriginateCallback = Callable[[bool, int, Channel | None], None]

#: OriginateResponse ``Reason`` -> (``DialStatus``, hangup cause) of a failed call.
_FAILURES = {
    0: ("CHANUNAVAIL", 20),
    1: ("CANCEL", 21),
    3: ("NOANSWER", 19),
    5: ("BUSY", 17),
    8: ("CONGESTION", 34),
}
#: A failed call's hangup cause -> its DialStatus.
_STATUS_OF_CAUSE = {17: "BUSY", 34: "CONGESTION", 19: "NOANSWER", 21: "CANCEL"}


@dataclass(eq=False)
class Dialing:
    """
    One outgoing call being placed: by Originate (no ``caller``), Dial,
    Queue or a transfer.  ``before_end`` runs when the callee answers, before
    ``DialEnd``; ``answered`` after it; ``failed(dest, dialstatus)`` when the
    call fails (``dest`` `None` when no channel could be made).
    """

    caller: Channel | None
    dial_string: str
    answered: Callable[[Channel], None] | None = None
    failed: Callable[[Channel | None, str], None] | None = None
    before_end: Callable[[Channel], None] | None = None
    timer: IDelayedCall | None = field(default=None, repr=False)
    done: bool = False


class CallsMixin(BridgesMixin):
    """Channels, outgoing calls and hangups (see the module's docstring)."""

    def __init__(self, timers: Timers, emit: EmitHook | None = None) -> None:
        super().__init__(timers, emit)
        #: Channel technologies Originate accepts (lower case).
        self.technologies = {"local", "pjsip", "sip", "iax2", "dahdi", "console", "test"}
        #: Seconds a non-Local channel rings before it answers (or fails).
        self.ring_time = 0.0
        #: How a non-Local call ends, by its dial string (``PJSIP/100``): an
        #: OriginateResponse ``Reason`` (4 answered, the default; 0 failed,
        #: 1 hung up, 3 no answer, 5 busy, 8 congestion).
        self.endpoint_outcomes: dict[str, int] = {}
        #: Seconds after both halves of an optimisable Local pair are bridged
        #: before the pair optimises itself away (Asterisk: once media flows).
        self.local_optimization_delay = 0.0

    # --- channels --------------------------------------------------------------------

    @operation
    def create_channel(
        self,
        name: str | None = None,
        *,
        technology: str = "PJSIP",
        resource: str = "100",
        state: int = 6,
        caller_id: str = "",
        context: str = "default",
        exten: str = "s",
        priority: int = 1,
        application: str = "",
        data: str = "",
        variables: dict[str, str] | None = None,
        linkedid: str | None = None,
    ) -> Channel:
        """
        Add a channel as if a call had arrived (raises ``Newchannel``): for tests
        that need a channel to hang up, redirect or list without originating.
        ``name`` defaults to ``technology/resource-<sequence>``.
        """
        if name is None:
            name = f"{technology}/{resource}-{self._next_sequence():08x}"
        channel = self._new_channel(name, state, context, exten, linkedid or "", priority=priority)
        channel.application, channel.data = application, data
        channel.variables.update(variables or {})
        if caller_id:
            channel.caller_name, channel.caller_num = parse_caller_id(caller_id)
        if state == 6:
            channel.answered_at = self.clock.seconds()
        self._announce(channel)
        return channel

    @operation
    def set_state(self, channel: Channel, state: int) -> None:
        """Change a channel's state (``Newstate``); a Local ``;2`` answering answers ``;1``."""
        if channel.hungup or channel.state == state:
            return
        channel.state = state
        if state == 6 and channel.answered_at is None:
            channel.answered_at = self.clock.seconds()
        self.publish(channel)
        peer = channel.peer
        if (
            state == 6
            and peer is not None
            and channel.name.endswith(";2")
            and not peer.hungup
            and peer.state != 6
        ):
            self._answered(peer)

    @operation
    def set_caller_id(self, channel: Channel, caller_id: str) -> None:
        """Change a channel's caller ID (``NewCallerid``)."""
        channel.caller_name, channel.caller_num = parse_caller_id(caller_id)
        self.publish(channel)

    def _local_pair(
        self, resource: str, linkedid: str = ""
    ) -> tuple[Channel, Channel, str, str, str]:
        """A new Local pair (not announced): ``(one, two, exten, context, options)``."""
        target, _, options = resource.partition("/")
        exten, _, context = target.partition("@")
        context = context or "default"
        base = f"Local/{target}-{self._next_sequence():08x}"
        one = self._new_channel(base + ";1", 0, context, exten, linkedid)
        two = self._new_channel(base + ";2", 4, context, exten, linkedid or one.uniqueid)
        one.peer, two.peer = two, one
        return one, two, exten, context, options

    def _connected_line_changed(self, channel: Channel) -> None:
        """A Local half's connected line becomes its other half's caller ID (not yet reported)."""
        super()._connected_line_changed(channel)
        peer = channel.peer
        if channel.technology == "Local" and peer is not None and not peer.hungup:
            peer.caller_num, peer.caller_name = channel.connected_num, channel.connected_name

    # --- outgoing calls ------------------------------------------------------------

    def dial(
        self,
        target: str,
        dialing: Dialing,
        *,
        setup: Callable[[Channel], None] | None = None,
        ringing: Callable[[Channel], None] | None = None,
        timeout: float = 0.0,
        linkedid: str = "",
        report_dial: bool = True,
    ) -> Channel | None:
        """
        Place a call to ``target`` (``Local/exten@context[/n]`` or ``TECH/resource``).

        ``setup(channel)`` prepares the new channel (variables, caller IDs: what
        the application that dials sets) before it is called; ``ringing``
        runs just before ``DialBegin``.  ``timeout`` (seconds, 0 for none) ends
        an unanswered call with NOANSWER.  Returns the outgoing channel (the
        ``;1`` of a Local pair), or `None` if none could be made (``failed`` ran).
        """
        technology, _, resource = target.partition("/")
        if technology.lower() not in self.technologies or not resource:
            self._dial_failed(dialing, None, "CHANUNAVAIL")
            return None
        if technology.lower() == "local":
            one, two, exten, context, options = self._local_pair(resource, linkedid)
            self._announce(one)
            self._announce(two)
            one.call = dialing
            if setup is not None:
                setup(one)
            if not self._extension_exists(context, exten):
                # Asterisk refuses the call: both halves go without asking each other.
                one.peer = two.peer = None
                one.call = None
                self._destroy(two)
                self._destroy(one)
                self._dial_failed(dialing, one, "CHANUNAVAIL")
                return None
            self._local_call(one, two, exten, context, "n" not in options)
            if report_dial:
                if ringing is not None:
                    ringing(one)
                self._dial_begin(dialing, one)
            if timeout > 0:
                dialing.timer = self._schedule(timeout, self._no_answer, one)
            self._soon(self._start_pbx, two, context, exten, 1)
            return one
        name = f"{technology}/{resource}-{self._next_sequence():08x}"
        channel = self._new_channel(name, 0, "default", "s", linkedid)
        self._announce(channel)
        channel.call = dialing
        if setup is not None:
            setup(channel)
        if ringing is not None:
            ringing(channel)
        self._dial_begin(dialing, channel)
        self.set_state(channel, 5)
        if dialing.caller is not None:
            caller = dialing.caller.snapshot()
            self.emit("DialState", [*caller, *channel.snapshot("Dest"), ("DialStatus", "RINGING")])
        outcome = self.endpoint_outcomes.get(target, 4)
        ring = self.ring_time
        if outcome == 4 and timeout > 0 and ring > timeout:
            outcome, ring = 3, timeout
        if ring > 0:
            channel.timer = self._schedule(ring, self._ring_ended, channel, outcome)
        else:
            self._ring_ended(channel, outcome)
        return channel

    def _local_call(
        self, one: Channel, two: Channel, exten: str, context: str, optimize: bool
    ) -> None:
        """What ``local_call`` does: copy ``;1``'s variables and caller IDs to ``;2``."""
        # Asterisk keeps a channel's variables newest first: ;2 gets them in that order.
        for name, value in reversed(list(one.variables.items())):
            self.set_channel_var(two, name, value)
        two.caller_num, two.caller_name = one.connected_num, one.connected_name
        two.connected_num, two.connected_name = one.caller_num, one.caller_name
        two.account_code = one.account_code
        self.publish(two)
        self.emit(
            "LocalBridge",
            [
                *one.snapshot("LocalOne"),
                *two.snapshot("LocalTwo"),
                ("Context", context),
                ("Exten", exten),
                ("LocalOptimization", "Yes" if optimize else "No"),
            ],
        )
        two.optimizable = optimize

    def _dial_begin(self, dialing: Dialing, dest: Channel) -> None:
        caller = dialing.caller.snapshot() if dialing.caller is not None else []
        self.emit(
            "DialBegin", [*caller, *dest.snapshot("Dest"), ("DialString", dialing.dial_string)]
        )

    def _dial_end(self, dialing: Dialing, dest: Channel, status: str) -> None:
        # Asterisk reports DialEnd with fresh snapshots of both channels, not the last
        # published ones (DialBegin uses those).
        caller = dialing.caller.current().headers() if dialing.caller is not None else []
        self.emit("DialEnd", [*caller, *dest.current().headers("Dest"), ("DialStatus", status)])

    def _ring_ended(self, channel: Channel, outcome: int) -> None:
        channel.timer = None
        if channel.hungup:
            return
        if outcome == 4:
            self._answered(channel)
        else:
            status, cause = _FAILURES.get(outcome, ("CHANUNAVAIL", 0))
            self._fail_outgoing(channel, status, cause)

    def _no_answer(self, channel: Channel) -> None:
        dialing = channel.call
        if isinstance(dialing, Dialing):
            dialing.timer = None
            self._fail_outgoing(channel, "NOANSWER", 19)

    def _fail_outgoing(self, channel: Channel, status: str, cause: int) -> None:
        """An outgoing call that will not be answered: ``DialEnd``, hangup, ``failed``."""
        dialing = channel.call
        channel.call = None
        if isinstance(dialing, Dialing) and not dialing.done:
            dialing.done = True
            self.timers.cancel(dialing.timer)
            self._dial_end(dialing, channel, status)
            self.hangup(channel, cause)
            if dialing.failed is not None:
                dialing.failed(channel, status)
        else:
            self.hangup(channel, cause)

    def _dial_failed(self, dialing: Dialing, channel: Channel | None, status: str) -> None:
        if dialing.done:
            return
        dialing.done = True
        self.timers.cancel(dialing.timer)
        if dialing.failed is not None:
            dialing.failed(channel, status)

    @operation
    def cancel_dial(self, channel: Channel, cause: int = 16) -> None:
        """Stop an unanswered outgoing call (its caller gave up): ``DialEnd CANCEL``, hangup."""
        dialing = channel.call
        if isinstance(dialing, Dialing) and not dialing.done:
            dialing.done = True
            channel.call = None
            self.timers.cancel(dialing.timer)
            self._dial_end(dialing, channel, "CANCEL")
        self.hangup(channel, cause)

    def _answered(self, channel: Channel) -> None:
        """An outgoing channel answered: ``Newstate``, ``DialEnd``, then its caller goes on."""
        channel.state = 6
        if channel.answered_at is None:
            channel.answered_at = self.clock.seconds()
        self.publish(channel)
        dialing = channel.call
        channel.call = None
        if not isinstance(dialing, Dialing) or dialing.done:
            return
        dialing.done = True
        self.timers.cancel(dialing.timer)
        if dialing.before_end is not None:
            dialing.before_end(channel)
        self._dial_end(dialing, channel, "ANSWER")
        if dialing.answered is not None and not channel.hungup:
            dialing.answered(channel)

    # --- originate -----------------------------------------------------------

    @operation
    def originate(
        self,
        channel: str,
        *,
        exten: str = "",
        context: str = "",
        priority: int = 1,
        application: str = "",
        data: str = "",
        timeout: float = 30.0,
        caller_id: str = "",
        variables: Iterable[tuple[str, str]] = (),
        account: str = "",
        done: OriginateCallback | None = None,
    ) -> Channel | None:
        """
        Place a call from ``channel`` to ``exten@context`` (or ``application(data)``),
        as the Originate action does; returns the outgoing channel (`None` if
        none could be made).

        ``done(answered, reason, channel)`` is called once: when the channel
        answers (reason 4) or fails (0 no such channel or extension, 1 hung up,
        3 no answer within ``timeout`` seconds, 5 busy, 8 congestion).
        """
        self.calls_processed += 1
        vars_ = list(variables)
        cid = parse_caller_id(caller_id) if caller_id else None
        reported: list[bool] = []

        def report(answered: bool, reason: int, outgoing: Channel | None) -> None:
            if not reported:
                reported.append(True)
                if done is not None:
                    done(answered, reason, outgoing)

        def setup(new: Channel) -> None:
            new.account_code = account
            if new.technology == "Local":
                new.application, new.data = "AppDial2", "(Outgoing Line)"
                self.publish(new)
                # Asterisk sets the variables on ;1 last to first (so ;2 gets them in order).
                for name, value in vars_[::-1]:
                    self.set_channel_var(new, name, value)
            else:
                for name, value in vars_:
                    self.set_channel_var(new, name, value)
            if cid is not None:
                new.caller_name, new.caller_num = cid
                self.publish(new)
                new.connected_name, new.connected_num = cid
                self.publish(new)

        def answered(outgoing: Channel) -> None:
            report(True, 4, outgoing)
            if outgoing.hungup:
                return
            if application:
                self._run_application(outgoing, application, data)
            else:
                self._start_pbx(outgoing, context or "default", exten, priority)

        def failed(outgoing: Channel | None, status: str) -> None:
            reason = {"BUSY": 5, "CONGESTION": 8, "NOANSWER": 3, "CANCEL": 1}.get(status, 0)
            if status == "CHANUNAVAIL" and outgoing is not None and outgoing.technology == "Local":
                reason = 0
            report(False, reason, outgoing)

        dialing = Dialing(None, channel.partition("/")[2], answered, failed)
        return self.dial(channel, dialing, setup=setup, timeout=timeout)

    def _start_pbx(self, channel: Channel, context: str, exten: str, priority: int) -> None:
        """Run the dialplan on ``channel`` (the dialplan layer does it)."""

    def _run_application(self, channel: Channel, application: str, data: str) -> None:
        """Run one application on ``channel``, then hang up (Originate's Application)."""

    def _extension_exists(self, context: str, exten: str) -> bool:
        return False

    # --- hangups -------------------------------------------------------------

    @operation
    def hangup(self, channel: Channel, cause: int = 16) -> None:
        """
        Hang ``channel`` up with Q.850 ``cause`` (what the Hangup action does),
        and the other half of a Local pair: see the module's docstring for the events.
        """
        if channel.hungup:
            return
        channel.cause = cause
        self._end(channel)

    def _end(self, channel: Channel) -> None:
        """The channel notices it must go: its application stops, it leaves its bridge."""
        if channel.hungup:
            return
        channel.ending = True
        if isinstance(channel.bridge, Bridge) and channel.cause == 0:
            channel.cause = 16  # a bridged channel leaves with Normal Clearing
        self._interrupt(channel)
        if channel.hungup:
            return
        bridge = channel.bridge
        if isinstance(bridge, Bridge):
            self._hangup_in_bridge(channel, bridge)
        if channel.in_pbx:
            channel.in_pbx = False
            self.channel_event("SoftHangupRequest", channel, ("Cause", "16"))
        self._destroy(channel)

    def _interrupt(self, channel: Channel) -> None:
        """Stop what ``channel`` is doing (its application, a call it places or waits for)."""
        self.timers.cancel(channel.timer)
        channel.timer = None
        dialing = channel.call
        if isinstance(dialing, Dialing) and not dialing.done:
            dialing.done = True
            channel.call = None
            self.timers.cancel(dialing.timer)
            if dialing.caller is not None:
                self._dial_end(dialing, channel, "CANCEL")
            elif dialing.failed is not None:
                dialing.failed(channel, "CANCEL")
        stop, channel.stop_app = channel.stop_app, None
        if stop is not None:
            stop()

    def _hangup_in_bridge(self, channel: Channel, bridge: Bridge) -> None:
        """A bridged channel hangs up: it leaves, and a Dial's or Queue's bridge ends."""
        others = [c for c in bridge.channels if c is not channel]
        if bridge.dissolve_on_hangup and len(bridge.channels) <= 2 and not bridge.hidden:
            for member in [channel, *others]:
                self._unset_peer(member)
            self._bridge_ending(bridge, channel)
            self._pull(bridge, channel, unset=False)
            self._after_bridge(channel)
            for member in others:
                self._pull(bridge, member, unset=False)
            self.destroy_bridge(bridge)
            for member in others:
                self._kicked(member, bridge)
        else:
            self.leave_bridge(channel)
            self._after_bridge(channel)
            if not bridge.channels and not bridge.hidden and bridge.dissolve_on_hangup:
                self.destroy_bridge(bridge)

    def _after_bridge(self, channel: Channel) -> None:
        """What bridged a channel that hangs up tidies up (Dial's and Queue's variables)."""
        after, channel.after_bridge = channel.after_bridge, None
        if after is not None:
            after()

    def _bridge_ending(self, bridge: Bridge, by: Channel) -> None:
        """A two-party bridge ends because ``by`` hangs up (queues report AgentComplete)."""

    def _kicked(self, channel: Channel, bridge: Bridge) -> None:
        """``channel`` was put out of a bridge that ended: what bridged it decides."""
        after, channel.after_bridge = channel.after_bridge, None
        if after is not None:
            after()
        elif not channel.in_pbx:
            self.hangup(channel, channel.cause or 16)

    def _destroy(self, channel: Channel) -> None:
        """The channel goes: its Local half is told, ``Hangup`` is raised."""
        if channel.hungup:
            return
        peer = channel.peer if channel.peer is not None and not channel.peer.hungup else None
        if peer is not None:
            if channel.name.endswith(";2"):
                status = channel.variables.get("DIALSTATUS")
                if status is not None:
                    peer.cause = channel.cause
                    self.set_channel_var(peer, "CHANLOCALSTATUS", status)
                peer.cause = channel.cause
                self.channel_event("HangupRequest", peer, ("Cause", str(channel.cause)))
            else:
                if peer.cause == 0:
                    peer.cause = channel.cause
                if peer.in_pbx:
                    self.channel_event("HangupRequest", peer, ("Cause", str(channel.cause)))
        self.timers.cancel(channel.timer)
        self.timers.cancel(channel.hangup_timer)
        channel.timer = channel.hangup_timer = None
        channel.hungup = True
        self.publish(channel)
        self.channels.pop(channel.name, None)
        self._channel_destroyed(channel)
        dialing = channel.call
        if isinstance(dialing, Dialing) and not dialing.done:
            channel.call = None
            self._dial_failed(dialing, channel, _STATUS_OF_CAUSE.get(channel.cause, "CHANUNAVAIL"))
        if peer is not None:
            self._end(peer)

    def hangup_later(self, channel: Channel, seconds: float) -> None:
        """Hang ``channel`` up after ``seconds`` (AbsoluteTimeout; 0 cancels)."""
        self.timers.cancel(channel.hangup_timer)
        channel.hangup_timer = None
        if seconds > 0:
            channel.hangup_timer = self._schedule(seconds, self._timed_out, channel)

    def _timed_out(self, channel: Channel) -> None:
        channel.hangup_timer = None
        self.hangup(channel, cause=0)

    @operation
    def hangup_all(self) -> None:
        """Hang up every channel (cause 16)."""
        for channel in list(self.channels.values()):
            self.hangup(channel, 16)

    # --- hold and music --------------------------------------------------------------

    @operation
    def hold(self, channel: Channel, music_class: str = "") -> None:
        """Put ``channel`` on hold (``Hold``), as a phone's hold button does."""
        if channel.hungup or channel.on_hold:
            return
        channel.on_hold = True
        extra = [("MusicClass", music_class)] if music_class else []
        self.channel_event("Hold", channel, *extra)

    @operation
    def unhold(self, channel: Channel) -> None:
        """Take ``channel`` off hold (``Unhold``)."""
        if channel.hungup or not channel.on_hold:
            return
        channel.on_hold = False
        self.channel_event("Unhold", channel)

    def start_music(self, channel: Channel, music_class: str = "default") -> None:
        """``MusicOnHoldStart`` on ``channel`` (a caller waiting in a queue, a parked call)."""
        if channel.music_class is not None:
            return
        channel.music_class = music_class
        self.channel_event("MusicOnHoldStart", channel, ("Class", music_class))

    def stop_music(self, channel: Channel) -> None:
        """``MusicOnHoldStop`` on ``channel``, if music was playing."""
        if channel.music_class is not None:
            channel.music_class = None
            self.channel_event("MusicOnHoldStop", channel)

    # --- Local channel optimisation -------------------------------------------------

    def _check_optimization(self, channel: Channel) -> None:
        """If ``channel``'s Local pair is optimisable and both halves are bridged, optimise."""
        one = channel if channel.name.endswith(";1") else channel.peer
        if one is None or one.technology != "Local" or one.peer is None:
            return
        two = one.peer
        if not two.optimizable or one.optimizing:
            return
        if not isinstance(one.bridge, Bridge) or not isinstance(two.bridge, Bridge):
            return
        one.optimizing = True
        delay = self.local_optimization_delay
        self._schedule(delay, self._optimize, one, two)

    def _optimize(self, one: Channel, two: Channel) -> None:
        """Swap the channel bridged with ``;2`` into ``;1``'s bridge; the pair goes."""
        if one.hungup or two.hungup:
            return
        keep, source = one.bridge, two.bridge
        if not isinstance(keep, Bridge) or not isinstance(source, Bridge):
            return
        others = [c for c in source.channels if c is not two]
        if len(others) != 1:
            return
        mover = others[0]
        self.emit(
            "LocalOptimizationBegin",
            [
                *one.snapshot("LocalOne"),
                *two.snapshot("LocalTwo"),
                *mover.snapshot("Source"),
                ("DestUniqueId", two.uniqueid),
                ("Id", "0"),
            ],
        )
        for half in (one, two):
            self._unset_peer(half)
        self._pull(source, mover, unset=False)
        self._pull(keep, one, unset=False)
        self.enter_bridge(keep, mover, one)
        self.emit(
            "LocalOptimizationEnd",
            [*one.snapshot("LocalOne"), *two.snapshot("LocalTwo"), ("Success", "No"), ("Id", "0")],
        )
        self._optimized(one, two, mover, keep)
        # The pair goes: ;1 first, then ;2 (alone in its bridge) ends its Dial.
        one.cause = two.cause = 16
        self._end(one)

    def _optimized(self, one: Channel, two: Channel, mover: Channel, bridge: Bridge) -> None:
        """A Local pair optimised away: ``mover`` now stands in ``bridge`` for ``one``."""
