"""
Call queues of the fake PBX (`Queue`, `QueueMember`, `QueuesMixin`), as app_queue runs them.

A caller that runs ``Queue(name)`` joins (``QueueCallerJoin``, music on hold)
and waits; while it waits the queue rings its available members (not paused,
not busy; ``ringall`` rings them all, the other strategies one at a time) by
placing a call to each member's interface (``AgentCalled``, ``DialBegin``).
The first to answer is bridged with the caller (``QueueCallerLeave``,
``AgentConnect``); the others are cancelled.  When the call ends the member
gets ``AgentComplete`` and the queue's counters move (completed, average
hold and talk time as app_queue computes them, the member's calls taken and
last call).  A caller that hangs up while waiting raises
``QueueCallerAbandon``; one that waits ``timeout`` seconds leaves with the
dialplan's next priority.  A member not answered within the queue's
``timeout`` raises ``AgentRingNoAnswer`` and is tried again after ``retry``.

Members follow their state interface's device state (``QueueMemberStatus``
when it changes), pause and unpause (``QueueMemberPause``, with the
``Queue:name_pause_iface`` device), and are added and removed
(``QueueMemberAdded``/``QueueMemberRemoved``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.interfaces import IDelayedCall

from txami.testing.pbx.bridges import Bridge
from txami.testing.pbx.calls import Dialing
from txami.testing.pbx.channels import Channel
from txami.testing.pbx.core import EmitHook, operation
from txami.testing.pbx.dialplan import DialplanMixin
from txami.testing.timers import Timers

__all__ = ["MEMBER_STATUS", "Queue", "QueueMember", "QueuesMixin"]

#: Device state -> app_queue's member status number.
MEMBER_STATUS = {
    "UNKNOWN": 0,
    "NOT_INUSE": 1,
    "INUSE": 2,
    "BUSY": 3,
    "INVALID": 4,
    "UNAVAILABLE": 5,
    "RINGING": 6,
    "RINGINUSE": 7,
    "ONHOLD": 8,
}


@dataclass
class QueueMember:
    """A static or dynamic member (agent) of a queue."""

    interface: str
    name: str = ""
    state_interface: str = ""
    membership: str = "static"
    penalty: int = 0
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    paused: bool = False
    paused_reason: str = ""
    status: int = 1
    in_call: bool = False
    login_time: int = 0
    ring_in_use: bool = True
    wrapup_time: int = 0

    @property
    def device(self) -> str:
        """The device whose state the member follows (options such as ``/n`` dropped)."""
        state = self.state_interface or self.interface
        if state.lower().startswith("local/"):
            tech, _, rest = state.partition("/")
            target, _, _options = rest.partition("/")
            return f"{tech}/{target}"
        return state

    @property
    def available(self) -> bool:
        """Whether the queue may ring the member now."""
        if self.paused or self.in_call:
            return False
        if self.status in (1, 0):
            return True
        return self.ring_in_use and self.status in (2, 8)

    def headers(self, queue: str) -> list[tuple[str, str]]:
        """The member headers of QueueMemberStatus/Pause/Added/Removed."""
        return [
            ("Queue", queue),
            ("MemberName", self.name or self.interface),
            ("Interface", self.interface),
            ("StateInterface", self.state_interface or self.interface),
            ("Membership", self.membership),
            ("Penalty", str(self.penalty)),
            ("CallsTaken", str(self.calls_taken)),
            ("LastCall", str(self.last_call)),
            ("LastPause", str(self.last_pause)),
            ("LoginTime", str(self.login_time)),
            ("InCall", "1" if self.in_call else "0"),
            ("Status", str(self.status)),
            ("Paused", "1" if self.paused else "0"),
            ("PausedReason", self.paused_reason),
            ("Ringinuse", "1" if self.ring_in_use else "0"),
            ("Wrapuptime", str(self.wrapup_time)),
        ]


@dataclass(eq=False)
class _Waiting:
    """A caller waiting in a queue, and the calls placed to members for it."""

    channel: Channel
    joined: float
    position: int
    then: Callable[[], None]
    attempts: dict[str, Channel] = field(default_factory=dict)
    timer: IDelayedCall | None = None


@dataclass(eq=False)
class _QueueCall:
    """A caller bridged with a member: what AgentComplete and the counters need."""

    queue: Queue
    member: QueueMember
    caller: Channel
    agent: Channel
    held: int
    started: float
    #: Whether the caller was answered within the queue's service level.
    in_service_level: bool


@dataclass
class Queue:
    """An app_queue queue: its parameters, counters, members and waiting callers."""

    name: str
    strategy: str = "ringall"
    max: int = 0
    service_level: int = 0
    weight: int = 0
    #: Seconds a member rings before the queue gives up on it (``timeout``).
    timeout: int = 15
    #: Seconds before members are tried again (``retry``).
    retry: int = 5
    music_class: str = "default"
    completed: int = 0
    abandoned: int = 0
    #: Calls answered, and calls abandoned, within ``service_level`` seconds.
    completed_in_sl: int = 0
    abandoned_in_sl: int = 0
    hold_time: int = 0
    talk_time: int = 0
    members: list[QueueMember] = field(default_factory=list)
    callers: list[Channel] = field(default_factory=list)

    def member(self, interface: str) -> QueueMember | None:
        """The member whose interface is ``interface`` (case does not matter)."""
        low = interface.lower()
        return next((m for m in self.members if m.interface.lower() == low), None)


class QueuesMixin(DialplanMixin):
    """Queues, their callers and members (see the module's docstring)."""

    def __init__(self, timers: Timers, emit: EmitHook | None = None) -> None:
        super().__init__(timers, emit)
        #: Queues by name.
        self.queues: dict[str, Queue] = {}
        self._waiting: dict[str, _Waiting] = {}
        self._queue_calls: dict[str, _QueueCall] = {}

    # --- the Queue application -----------------------------------------------------

    def _app_queue(self, channel: Channel, data: str, then: Callable[[], None]) -> bool:
        args = data.split(",")
        queue = self.queues.get(args[0])
        if queue is None:
            self.set_channel_var(channel, "QUEUESTATUS", "UNKNOWN")
            return True
        timeout = 0.0
        if len(args) > 4 and args[4].strip():
            try:
                timeout = float(args[4])
            except ValueError:
                timeout = 0.0
        for name in ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS"):
            self.set_channel_var(channel, name, "")
        self.set_channel_var(channel, "QUEUEWAIT", "")
        self.set_channel_var(channel, "QUEUEWAIT_MS", "")
        if not queue.callers:
            self.set_device_state(f"Queue:{queue.name}", "RINGING")
        queue.callers.append(channel)
        channel.queue = queue.name
        waiting = _Waiting(channel, self.clock.seconds(), len(queue.callers), then)
        self._waiting[channel.uniqueid] = waiting
        self.emit(
            "QueueCallerJoin",
            [
                *channel.snapshot(),
                ("Queue", queue.name),
                ("Position", str(len(queue.callers))),
                ("Count", str(len(queue.callers))),
            ],
        )
        self.start_music(channel, queue.music_class)
        channel.stop_app = lambda: self._abandon(channel)
        if timeout > 0:
            waiting.timer = self._schedule(timeout, self._queue_timeout, channel)
        self._ring_members(queue)
        return False

    def queue_joined(self, channel: Channel) -> float:
        """When ``channel`` joined the queue it waits in (clock seconds)."""
        waiting = self._waiting.get(channel.uniqueid)
        return waiting.joined if waiting is not None else channel.created

    def _queue_of(self, channel: Channel) -> Queue | None:
        return self.queues.get(channel.queue or "")

    def _leave(self, queue: Queue, channel: Channel) -> int:
        """Take ``channel`` out of the waiting callers (``QueueCallerLeave``); its position."""
        position = queue.callers.index(channel) + 1
        queue.callers.remove(channel)
        channel.queue = None
        waiting = self._waiting.pop(channel.uniqueid, None)
        if waiting is not None:
            self.timers.cancel(waiting.timer)
            for attempt in list(waiting.attempts.values()):
                self._cancel_attempt(attempt)
        if not queue.callers:
            self.set_device_state(f"Queue:{queue.name}", "NOT_INUSE")
        self.emit(
            "QueueCallerLeave",
            [
                *channel.snapshot(),
                ("Queue", queue.name),
                ("Position", str(position)),
                ("Count", str(len(queue.callers))),
            ],
        )
        return position

    def _wait_variables(self, channel: Channel, waited: float) -> None:
        self.set_channel_var(channel, "QUEUEWAIT", str(int(waited)))
        self.set_channel_var(channel, "QUEUEWAIT_MS", str(int(waited * 1000)))

    def _abandon(self, channel: Channel) -> None:
        """The caller hung up while waiting."""
        queue = self._queue_of(channel)
        waiting = self._waiting.get(channel.uniqueid)
        if queue is None or channel not in queue.callers or waiting is None:
            return
        self.stop_music(channel)
        waited = self.clock.seconds() - waiting.joined
        self._wait_variables(channel, waited)
        self.set_channel_var(channel, "DIALEDTIME", str(int(waited)))
        self.set_channel_var(channel, "DIALEDTIME_MS", str(int(waited * 1000)))
        self.set_channel_var(channel, "ANSWEREDTIME", "0")
        self.set_channel_var(channel, "ANSWEREDTIME_MS", "0")
        self.set_channel_var(channel, "ABANDONED", "TRUE")
        position = queue.callers.index(channel) + 1
        queue.abandoned += 1
        if int(waited) <= queue.service_level:
            queue.abandoned_in_sl += 1
        self.emit(
            "QueueCallerAbandon",
            [
                *channel.snapshot(),
                ("Queue", queue.name),
                ("Position", str(position)),
                ("OriginalPosition", str(waiting.position)),
                ("HoldTime", str(int(waited))),
            ],
        )
        position = self._leave(queue, channel)
        self.set_channel_var(channel, "QUEUEPOSITION", str(position))

    def _queue_timeout(self, channel: Channel) -> None:
        """The caller waited the Queue's timeout: it leaves and its dialplan goes on."""
        queue = self._queue_of(channel)
        waiting = self._waiting.get(channel.uniqueid)
        if queue is None or waiting is None or channel.hungup:
            return
        waiting.timer = None
        channel.stop_app = None
        self.stop_music(channel)
        self._wait_variables(channel, self.clock.seconds() - waiting.joined)
        position = self._leave(queue, channel)
        self.set_channel_var(channel, "QUEUEPOSITION", str(position))
        self.set_channel_var(channel, "QUEUESTATUS", "TIMEOUT")
        waiting.then()

    # --- ringing members -------------------------------------------------------------

    def _ring_members(self, queue: Queue) -> None:
        """Ring the members the first waiting caller should ring now."""
        if not queue.callers:
            return
        caller = queue.callers[0]
        waiting = self._waiting.get(caller.uniqueid)
        if waiting is None or waiting.attempts:
            return
        members = [m for m in queue.members if m.available]
        if queue.strategy != "ringall":
            members = members[:1]
        for member in members:
            if caller.queue != queue.name or caller.hungup:
                break
            self._ring_member(queue, waiting, member)

    def _ring_member(self, queue: Queue, waiting: _Waiting, member: QueueMember) -> None:
        caller = waiting.channel

        number = member.interface.partition("/")[2]

        def setup(agent: Channel) -> None:
            agent.application, agent.data = "AppQueue", "(Outgoing Line)"
            agent.caller_num, agent.caller_name = caller.caller_num, caller.caller_name
            self.publish(agent)
            self.set_channel_var(agent, "DIALEDPEERNUMBER", number)
            # Set now, reported when the member answers.
            agent.connected_num, agent.connected_name = caller.caller_num, caller.caller_name
            agent.exten = caller.exten

        def ringing(agent: Channel) -> None:
            waiting.attempts[member.interface] = agent
            self.emit(
                "AgentCalled",
                [
                    *caller.snapshot(),
                    *agent.current().headers("Dest"),
                    ("Queue", queue.name),
                    ("Interface", member.interface),
                    ("MemberName", member.name or member.interface),
                ],
            )

        def before_end(agent: Channel) -> None:
            self.publish(agent)

        def answered(agent: Channel) -> None:
            waiting.attempts.pop(member.interface, None)
            self._connect(queue, waiting, member, agent)

        def failed(agent: Channel | None, status: str) -> None:
            waiting.attempts.pop(member.interface, None)
            if status == "NOANSWER" and agent is not None:
                self.emit(
                    "AgentRingNoAnswer",
                    [
                        *caller.snapshot(),
                        *agent.snapshot("Dest"),
                        ("Queue", queue.name),
                        ("Interface", member.interface),
                        ("MemberName", member.name or member.interface),
                        ("RingTime", str(queue.timeout * 1000)),
                    ],
                )
            if caller.queue == queue.name and not waiting.attempts:
                waiting.timer = self._schedule(queue.retry, self._retry, queue, caller)

        dialing = Dialing(caller, member.interface, answered, failed, before_end)
        self.dial(
            member.interface,
            dialing,
            setup=setup,
            ringing=ringing,
            timeout=float(queue.timeout),
            linkedid=caller.linkedid,
        )

    def _retry(self, queue: Queue, caller: Channel) -> None:
        waiting = self._waiting.get(caller.uniqueid)
        if waiting is not None:
            waiting.timer = None
            self._ring_members(queue)

    def _cancel_attempt(self, agent: Channel) -> None:
        if not agent.hungup:
            self.cancel_dial(agent, 26)

    def _connect(
        self, queue: Queue, waiting: _Waiting, member: QueueMember, agent: Channel
    ) -> None:
        """A member answered: the caller leaves the queue and is bridged with it."""
        caller = waiting.channel
        caller.stop_app = None
        for other in list(waiting.attempts.values()):
            self._cancel_attempt(other)
        waiting.attempts.clear()
        self.stop_music(caller)
        waited = self.clock.seconds() - waiting.joined
        position = self._leave(queue, caller)
        self.set_channel_var(caller, "QUEUEPOSITION", str(position))
        self._wait_variables(caller, waited)
        if queue.completed + queue.abandoned == 0:  # app_queue's recalc_holdtime
            queue.hold_time = int(waited)
        else:
            queue.hold_time = (queue.hold_time * 3 + int(waited)) >> 2
        ring_time = 0
        self.emit(
            "AgentConnect",
            [
                *caller.snapshot(),
                *agent.snapshot("Dest"),
                ("Queue", queue.name),
                ("Interface", member.interface),
                ("MemberName", member.name or member.interface),
                ("HoldTime", str(int(waited))),
                ("RingTime", str(ring_time)),
            ],
        )
        member.in_call = True
        bridge = self.create_bridge()
        self.enter_bridge(bridge, agent, peers=False)
        self.enter_bridge(bridge, caller, peers=False)
        self.set_bridge_peers(bridge)
        self._queue_calls[bridge.uniqueid] = _QueueCall(
            queue,
            member,
            caller,
            agent,
            int(waited),
            self.clock.seconds(),
            int(waited) <= queue.service_level,
        )
        bridged_at = self.clock.seconds()

        def after_bridge() -> None:
            self._complete(bridge, "agent")
            now = self.clock.seconds()
            talk, total = now - bridged_at, now - waiting.joined
            self.set_channel_var(caller, "ANSWEREDTIME", str(int(talk)))
            self.set_channel_var(caller, "ANSWEREDTIME_MS", str(int(talk * 1000)))
            self.set_channel_var(caller, "DIALEDTIME", str(int(total)))
            self.set_channel_var(caller, "DIALEDTIME_MS", str(int(total * 1000)))
            if not caller.hungup and not caller.ending:
                waiting.then()

        caller.after_bridge = after_bridge

    def _bridge_ending(self, bridge: Bridge, by: Channel) -> None:
        super()._bridge_ending(bridge, by)
        call = self._queue_calls.get(bridge.uniqueid)
        if call is not None:
            self._complete(bridge, "caller" if by is call.caller else "agent")

    def _complete(self, bridge: Bridge, reason: str) -> None:
        """The queue call in ``bridge`` ended: ``AgentComplete``, counters."""
        call = self._queue_calls.pop(bridge.uniqueid, None)
        if call is None:
            return
        queue, member, caller, agent = call.queue, call.member, call.caller, call.agent
        held, talked = call.held, int(self.clock.seconds() - call.started)
        self.emit(
            "AgentComplete",
            [
                *caller.snapshot(),
                *agent.snapshot("Dest"),
                ("Queue", queue.name),
                ("Interface", member.interface),
                ("MemberName", member.name or member.interface),
                ("HoldTime", str(held)),
                ("TalkTime", str(talked)),
                ("Reason", reason),
            ],
        )
        member.in_call = False
        member.calls_taken += 1
        member.last_call = int(self.now())
        queue.completed += 1
        if call.in_service_level:
            queue.completed_in_sl += 1
        if queue.completed == 1:
            queue.talk_time = talked
        else:
            queue.talk_time = (queue.talk_time * 3 + talked) >> 2
        self._ring_members(queue)

    # --- members -----------------------------------------------------------------------

    def _device_state_changed(self, device: str, state: str) -> None:
        """app_queue's ``device_state_cb``: members follow their device, then ``_avail``."""
        super()._device_state_changed(device, state)
        status = MEMBER_STATUS.get(state, 0)
        for queue in self.queues.values():
            found = False
            for member in queue.members:
                if member.device.lower() != device.lower():
                    continue
                found = True
                if member.status != status:
                    member.status = status
                    self.emit("QueueMemberStatus", member.headers(queue.name))
            if found:
                available = any(m.available for m in queue.members)
                self.set_device_state(
                    f"Queue:{queue.name}_avail", "NOT_INUSE" if available else "INUSE"
                )
                self._soon(self._ring_members, queue)

    @operation
    def pause_member(
        self, queue_name: str | None, interface: str, paused: bool, reason: str = ""
    ) -> bool:
        """
        Pause or unpause ``interface`` in ``queue_name`` (every queue if `None`),
        as QueuePause does (``QueueMemberPause``); whether it is a member anywhere.
        """
        found = False
        for queue in self.queues.values():
            if queue_name and queue.name != queue_name:
                continue
            member = queue.member(interface)
            if member is None:
                continue
            found = True
            member.paused = paused
            member.paused_reason = reason if paused else ""
            if paused:
                member.last_pause = int(self.now())
            self.set_device_state(
                f"Queue:{queue.name}_pause_{member.interface}", "INUSE" if paused else "NOT_INUSE"
            )
            if member.available:
                self.set_device_state(f"Queue:{queue.name}_avail", "NOT_INUSE")
            elif not any(m.available for m in queue.members):
                self.set_device_state(f"Queue:{queue.name}_avail", "INUSE")
            self.emit("QueueMemberPause", member.headers(queue.name))
            if not paused:
                self._ring_members(queue)
        return found

    @operation
    def add_member(
        self,
        queue_name: str,
        interface: str,
        *,
        name: str = "",
        state_interface: str = "",
        penalty: int = 0,
        paused: bool = False,
        reason: str = "",
    ) -> QueueMember | None:
        """
        Add a dynamic member (QueueAdd: ``QueueMemberAdded``); `None` if the
        queue is unknown or ``interface`` is already a member.
        """
        queue = self.queues.get(queue_name)
        if queue is None or queue.member(interface) is not None:
            return None
        now = int(self.now())
        member = QueueMember(
            interface,
            name or interface,
            state_interface or interface,
            "dynamic",
            penalty,
            paused=paused,
            paused_reason=reason if paused else "",
            last_pause=now if paused else 0,
            login_time=now,
        )
        member.status = MEMBER_STATUS.get(self.device_state(member.device), 0)
        if member.status == 4:
            member.status = 1
        queue.members.append(member)
        self.set_device_state(
            f"Queue:{queue.name}_pause_{interface}", "INUSE" if paused else "NOT_INUSE"
        )
        self.emit("QueueMemberAdded", member.headers(queue.name))
        self._ring_members(queue)
        return member

    @operation
    def remove_member(self, queue_name: str, interface: str) -> bool:
        """Remove a dynamic member (QueueRemove: ``QueueMemberRemoved``); whether it was one."""
        queue = self.queues.get(queue_name)
        member = queue.member(interface) if queue is not None else None
        if queue is None or member is None:
            return False
        queue.members.remove(member)
        self.emit("QueueMemberRemoved", member.headers(queue.name))
        self.set_device_state(f"Queue:{queue.name}_pause_{member.interface}", "NOT_INUSE")
        return True
