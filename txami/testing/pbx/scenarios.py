"""
Driving the fake PBX from a test or a demo, without AMI (`ScenariosMixin`, `DemoTraffic`).

Everything a scenario needs is a method of `PBX`; this layer adds the ones
that start calls the way a phone or an operator would, and a demo that keeps
the PBX busy:

* `ScenariosMixin.incoming_call`: a phone calls an extension (an inbound
  ``PJSIP/...`` channel runs the dialplan there: ``600`` puts it in the
  queue, ``1010`` bridges it to ``1000``, ``680`` joins the conference);
* `ScenariosMixin.call`: what Originate does, a Local channel to an extension
  running an application on its near side;
* `ScenariosMixin.rename`: a channel changes its name (``Rename``);
* and, from the layers below, `hangup`, `redirect`, `blind_transfer`,
  `attended_transfer`, `park`, `hold`/`unhold`, `pause_member`,
  `add_member`/`remove_member`, `set_device_state`, `set_presence_state`,
  `set_hint`, `set_mailbox`.

Every change raises the events Asterisk raises for it, so a client connected
to the `FakeAsterisk` (or a state model fed by it) sees them as from a real
server.  Time is the server's clock: with a `Clock`, calls advance only when
the test advances it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from twisted.internet.interfaces import IDelayedCall

from txami.testing.pbx.channels import Channel, parse_caller_id
from txami.testing.pbx.core import EmitHook, operation
from txami.testing.pbx.transfers import TransfersMixin
from txami.testing.timers import Timers

__all__ = ["DemoTraffic", "ScenariosMixin"]

_DEMO_STATES = ("INUSE", "RINGING", "NOT_INUSE", "ONHOLD", "NOT_INUSE", "BUSY", "NOT_INUSE")


@dataclass(eq=False)
class DemoTraffic:
    """
    What `ScenariosMixin.start_demo` keeps going: long calls, a queue with
    waiting callers and working agents, changing hints.  `stop` ends it
    (calls in progress go on until they end).
    """

    pbx: ScenariosMixin
    interval: float
    long_calls: int
    long_call_seconds: float
    queue: str
    queue_exten: str
    queue_callers: int
    long_exten: str
    context: str
    devices: Sequence[str]
    timer: IDelayedCall | None = field(default=None, repr=False)
    calls: list[Channel] = field(default_factory=list, repr=False)
    callers: list[Channel] = field(default_factory=list, repr=False)
    ticks: int = 0
    running: bool = True

    def stop(self) -> None:
        """Stop starting calls and changing states."""
        self.running = False
        self.pbx.timers.cancel(self.timer)
        self.timer = None

    def tick(self) -> None:
        """One step of the demo: top calls and queue callers up, change one hint."""
        self.timer = None
        if not self.running:
            return
        self.ticks += 1
        pbx = self.pbx
        self.calls = [c for c in self.calls if not c.hungup]
        if len(self.calls) < self.long_calls:
            number = 5550100 + self.ticks % 100
            call = pbx.incoming_call(
                self.long_exten, self.context, caller_id=f'"Demo Long {self.ticks}" <{number}>'
            )
            self.calls.append(call)
            pbx.hangup_later(call, self.long_call_seconds)
        self.callers = [c for c in self.callers if not c.hungup]
        waiting = [c for c in self.callers if c.queue == self.queue]
        if len(waiting) < self.queue_callers:
            number = 5550200 + self.ticks % 100
            caller = pbx.incoming_call(
                self.queue_exten, self.context, caller_id=f'"Demo Caller {self.ticks}" <{number}>'
            )
            self.callers.append(caller)
            # A caller hangs up after a while, answered or not.
            pbx.hangup_later(caller, self.long_call_seconds / 2)
        if self.devices:
            device = self.devices[self.ticks % len(self.devices)]
            pbx.set_device_state(device, _DEMO_STATES[self.ticks % len(_DEMO_STATES)])
        self.timer = pbx._schedule(self.interval, self.tick)


class ScenariosMixin(TransfersMixin):
    """Starting calls as phones and operators do, and the demo (see the module's docstring)."""

    def __init__(self, timers: Timers, emit: EmitHook | None = None) -> None:
        super().__init__(timers, emit)
        #: The context `incoming_call` and `call` use when none is given.
        self.default_context = "default"

    @operation
    def incoming_call(
        self,
        exten: str,
        context: str = "",
        *,
        caller_id: str = "",
        technology: str = "PJSIP",
        endpoint: str = "",
        variables: Iterable[tuple[str, str]] = (),
    ) -> Channel:
        """
        A phone calls ``exten@context``: an inbound channel
        (``PJSIP/<endpoint>-0000000a``, ringing) runs the dialplan there, as a
        call from a SIP phone would.  ``endpoint`` defaults to the caller
        number (or ``phone``).  Returns the channel; it may already be gone
        if the extension hangs up at once.
        """
        context = context or self.default_context
        name, number = parse_caller_id(caller_id) if caller_id else ("", "")
        resource = endpoint or number or "phone"
        channel = self._new_channel(
            f"{technology}/{resource}-{self._next_sequence():08x}", 4, context, exten
        )
        channel.caller_name, channel.caller_num = name, number
        for key, value in variables:
            channel.variables[key] = value
        self._announce(channel)
        self.calls_processed += 1
        self._start_pbx(channel, context, exten, 1)
        return channel

    @operation
    def call(
        self,
        exten: str,
        context: str = "",
        *,
        caller_id: str = "",
        application: str = "Echo",
        data: str = "",
        variables: Iterable[tuple[str, str]] = (),
        timeout: float = 30.0,
    ) -> Channel | None:
        """
        Call ``exten@context`` as Originate does (``Local/exten@context``,
        ``application(data)`` on the near side once answered); returns the
        near ``;1`` channel, or `None` if the call could not be placed.
        """
        context = context or self.default_context
        return self.originate(
            f"Local/{exten}@{context}",
            application=application,
            data=data,
            caller_id=caller_id,
            variables=variables,
            timeout=timeout,
        )

    @operation
    def rename(self, channel: Channel, new_name: str) -> None:
        """
        Rename ``channel`` (``Rename``, as ``ast_change_name`` raises it: the
        old name, ``Newname``, the Uniqueid); later events carry the new name.
        Asterisk renames channels in masquerades (call pick-up, some transfers).
        """
        self.emit(
            "Rename",
            [("Channel", channel.name), ("Newname", new_name), ("Uniqueid", channel.uniqueid)],
        )
        self.channels.pop(channel.name, None)
        channel.name = new_name
        if not channel.hungup:
            self.channels[new_name] = channel
        if channel.published is not None:
            channel.published = channel.published._replace(name=new_name)

    def start_demo(
        self,
        interval: float = 2.0,
        *,
        long_calls: int = 2,
        long_call_seconds: float = 120.0,
        queue: str = "support",
        queue_exten: str = "600",
        queue_callers: int = 2,
        paused_members: Sequence[str] = (),
        long_exten: str = "1010",
        context: str = "",
        devices: Sequence[str] = (),
    ) -> DemoTraffic:
        """
        Keep the PBX busy for a demo: ``long_calls`` calls to ``long_exten``
        (each ``long_call_seconds`` long), ``queue_callers`` callers waiting
        in ``queue`` (through ``queue_exten``; pause some members with
        ``paused_members`` so that callers wait), and every ``interval``
        seconds one of ``devices`` (the hints' devices by default) changes
        state.  Returns the `DemoTraffic`; ``stop()`` it.
        """
        for member in paused_members:
            self.pause_member(queue, member, True, "demo")
        if not devices:
            devices = sorted({d for hint in self.hints.values() for d in hint.split("&")})
        demo = DemoTraffic(
            self,
            interval,
            long_calls,
            long_call_seconds,
            queue,
            queue_exten,
            queue_callers,
            long_exten,
            context or self.default_context,
            tuple(devices),
        )
        demo.timer = self._schedule(0, demo.tick)
        return demo
