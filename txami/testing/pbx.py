"""
`PBX`: the small in-memory telephone system behind `FakeAsterisk`'s actions.

It holds what the built-in actions read and change: channels and the calls
that create them, global and channel variables, Asterisk's database, device
states and the hints built on them, voicemail boxes, queues, IAX2 peers and
the dialplan that originated calls run.  Every change raises the events
Asterisk raises for it (``Newchannel``, ``Newstate``, ``Newexten``,
``Hangup``, ``VarSet``, ``DeviceStateChange``, ...) with the same headers,
through the ``emit`` hook the server installs.

The call model is deliberately simple: ``Local/exten@context`` makes the
``;1``/``;2`` channel pair Asterisk makes, and ``;2`` runs the dialplan; any
other technology makes one channel that rings for ``ring_time`` seconds and
then answers (or fails as ``endpoint_outcomes`` says).  Dialplan
applications are simulated: ``Answer``, ``Wait``, ``Hangup``, ``Busy``,
``Congestion``, ``UserEvent``, ``Set``, ``NoOp``/``Verbose``/``Log``/
``Playback``/``Progress``/``Ringing`` run at once, ``Queue`` joins a queue,
and anything else (``Echo``, ``Dial``, ``ConfBridge``, ...) keeps the channel
busy until it is hung up.  Time is the server's clock, so with a `Clock` a
call advances only when the test advances it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from twisted.internet.interfaces import IDelayedCall

from txami.testing.permissions import event_class
from txami.testing.timers import Timers

__all__ = [
    "CAUSES",
    "PBX",
    "Channel",
    "IAXPeer",
    "Mailbox",
    "Queue",
    "QueueMember",
    "parse_caller_id",
]

#: Emit hook: ``emit(event_name, headers, event_class)``.
EmitHook = Callable[[str, list[tuple[str, str]], int], None]
#: Outcome callback of `PBX.originate`: ``(answered, reason, channel)``.
OriginateCallback = Callable[[bool, int, "Channel | None"], None]

STATE_DESCRIPTIONS = {
    0: "Down",
    1: "Rsrvd",
    2: "OffHook",
    3: "Dialing",
    4: "Ring",
    5: "Ringing",
    6: "Up",
    7: "Busy",
    8: "Dialing Offhook",
    9: "Pre-ring",
}

#: Q.850 cause texts as Asterisk prints them in ``Cause-txt``.
CAUSES = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call Rejected",
    27: "Destination out of order",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    127: "Interworking, unspecified",
}

#: OriginateResponse ``Reason`` -> (``DialStatus``, hangup cause) of a failed call.
_FAILURES = {
    0: ("CHANUNAVAIL", 20),
    1: ("CANCEL", 21),
    3: ("NOANSWER", 19),
    5: ("BUSY", 17),
    8: ("CONGESTION", 34),
}

#: Extension state numbers and texts (``ExtensionState`` and ``ExtensionStatus``).
EXTENSION_STATES = {
    -1: "Unknown",
    0: "Idle",
    1: "InUse",
    2: "Busy",
    4: "Unavailable",
    8: "Ringing",
    9: "InUse&Ringing",
    16: "Hold",
    17: "InUse&Hold",
}

DEVICE_STATES = (
    "UNKNOWN",
    "NOT_INUSE",
    "INUSE",
    "BUSY",
    "INVALID",
    "UNAVAILABLE",
    "RINGING",
    "RINGINUSE",
    "ONHOLD",
)

_IMMEDIATE_APPS = frozenset(
    {"noop", "verbose", "log", "playback", "progress", "ringing", "set", "userevent", "answer"}
)
_FUNCTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$")


def parse_caller_id(text: str) -> tuple[str, str]:
    """``'"Name" <5551000>'`` -> ``("Name", "5551000")``; a bare number has no name."""
    text = text.strip()
    match = re.match(r'^\s*(?:"([^"]*)"|([^<]*?))\s*<([^>]*)>\s*$', text)
    if match:
        name = match.group(1) if match.group(1) is not None else (match.group(2) or "")
        return name.strip(), match.group(3).strip()
    if re.fullmatch(r"[0-9*#+]+", text):
        return "", text
    return text, ""


@dataclass(eq=False)
class Channel:
    """One channel: its identity, state, dialplan position and variables."""

    name: str
    uniqueid: str
    linkedid: str
    state: int = 0
    caller_num: str = ""
    caller_name: str = ""
    connected_num: str = ""
    connected_name: str = ""
    language: str = "en"
    account_code: str = ""
    context: str = "default"
    exten: str = "s"
    priority: int = 1
    application: str = ""
    data: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    created: float = 0.0
    peer: Channel | None = None
    hungup: bool = False
    queue: str | None = None
    timer: IDelayedCall | None = field(default=None, repr=False)
    hangup_timer: IDelayedCall | None = field(default=None, repr=False)
    call: _Call | None = field(default=None, repr=False)

    @property
    def technology(self) -> str:
        """``Local``, ``PJSIP``, ...: the part of the name before the slash."""
        return self.name.partition("/")[0]

    @property
    def state_description(self) -> str:
        """``Up``, ``Ring``, ... as Asterisk names the state."""
        return STATE_DESCRIPTIONS.get(self.state, "Unknown")

    def snapshot(self, prefix: str = "") -> list[tuple[str, str]]:
        """The channel headers every channel event starts with (``Channel`` ... ``Linkedid``)."""
        return [
            (prefix + "Channel", self.name),
            (prefix + "ChannelState", str(self.state)),
            (prefix + "ChannelStateDesc", self.state_description),
            (prefix + "CallerIDNum", self.caller_num or "<unknown>"),
            (prefix + "CallerIDName", self.caller_name or "<unknown>"),
            (prefix + "ConnectedLineNum", self.connected_num or "<unknown>"),
            (prefix + "ConnectedLineName", self.connected_name or "<unknown>"),
            (prefix + "Language", self.language),
            (prefix + "AccountCode", self.account_code),
            (prefix + "Context", self.context),
            (prefix + "Exten", self.exten),
            (prefix + "Priority", str(self.priority)),
            (prefix + "Uniqueid", self.uniqueid),
            (prefix + "Linkedid", self.linkedid),
        ]


@dataclass(eq=False)
class _Call:
    """An originated call waiting to be answered."""

    done: OriginateCallback | None
    exten: str
    context: str
    priority: int
    application: str
    data: str
    timer: IDelayedCall | None = None


@dataclass
class Mailbox:
    """A voicemail box: message counts and the user it belongs to."""

    new: int = 0
    old: int = 0
    urgent: int = 0
    fullname: str = ""
    email: str = ""


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
    paused: bool = False
    status: int = 1
    in_call: bool = False
    login_time: int = 0


@dataclass
class Queue:
    """An app_queue queue: its parameters, members and waiting callers."""

    name: str
    strategy: str = "ringall"
    max: int = 0
    service_level: int = 60
    weight: int = 0
    completed: int = 0
    abandoned: int = 0
    hold_time: int = 0
    talk_time: int = 0
    members: list[QueueMember] = field(default_factory=list)
    callers: list[Channel] = field(default_factory=list)


@dataclass
class IAXPeer:
    """An IAX2 peer from iax.conf (``host=dynamic`` when ``host`` is `None`)."""

    name: str
    host: str | None = None
    port: int = 4569
    trunk: bool = False
    encryption: bool = False
    status: str = "Unmonitored"
    description: str = ""


class PBX:
    """
    The fake Asterisk's state and call simulation.

    ``timers`` schedules call progress on the server's clock; ``emit`` (set by
    the server) receives every event.  All attributes are plain, public data
    that tests may change before or during a test.
    """

    #: The Asterisk version reported by CoreSettings and ``core show version``.
    asterisk_version = "20.20.1"

    def __init__(self, timers: Timers, emit: EmitHook | None = None) -> None:
        self.timers = timers
        self.clock = timers.clock
        self.emit_hook = emit
        #: Live channels by name.
        self.channels: dict[str, Channel] = {}
        #: The next channel sequence number (the ``-0000000a`` in channel names).
        self.channel_sequence = 0
        self._uniqueid_counter = 0
        #: Global dialplan variables.
        self.globals: dict[str, str] = {}
        #: Asterisk's database: ``"/family/key"`` -> value.
        self.db: dict[str, str] = {}
        #: Device states by device name (``"Custom:foo"`` -> ``"INUSE"``).
        self.device_states: dict[str, str] = {}
        #: Hints: ``(context, exten)`` -> devices joined by ``&``.
        self.hints: dict[tuple[str, str], str] = {}
        #: The dialplan: context -> exten -> ``[(application, data), ...]`` by priority.
        self.dialplan: dict[str, dict[str, list[tuple[str, str]]]] = {}
        #: Voicemail boxes: ``"box@context"`` -> `Mailbox`.
        self.mailboxes: dict[str, Mailbox] = {}
        #: Queues by name.
        self.queues: dict[str, Queue] = {}
        #: IAX2 peers, in the order IAXpeers lists them.
        self.iax_peers: list[IAXPeer] = []
        #: CLI commands a test adds or overrides: command text -> output lines, or a
        #: callable ``(args) -> (succeeded, lines)``.
        self.cli: dict[str, Sequence[str] | Callable[[list[str]], tuple[bool, list[str]]]] = {}
        #: Channel technologies Originate accepts (lower case).
        self.technologies = {"local", "pjsip", "sip", "iax2", "dahdi", "console", "test"}
        #: Seconds a non-Local channel rings before it answers (or fails).
        self.ring_time = 0.0
        #: How a non-Local Originate ends, by its ``Channel``: an OriginateResponse
        #: ``Reason`` (4 answered, the default; 0 failed, 1 hung up, 3 no answer,
        #: 5 busy, 8 congestion).
        self.endpoint_outcomes: dict[str, int] = {}
        #: Calls processed since start (``core show channels``).
        self.calls_processed = 0
        self._start = self.clock.seconds()
        #: The epoch that uniqueids and start dates count from.
        self.epoch = 1_700_000_000.0 if self._start < 1_000_000_000 else 0.0

    # --- time and identity ---------------------------------------------------

    @property
    def uptime(self) -> float:
        """Seconds since this PBX started."""
        return self.clock.seconds() - self._start

    def now(self) -> float:
        """The current wall-clock time as the PBX reports it (Unix seconds)."""
        return self.epoch + self.clock.seconds()

    @property
    def start_time(self) -> float:
        """When the PBX started (Unix seconds)."""
        return self.epoch + self._start

    def _next_uniqueid(self) -> str:
        self._uniqueid_counter += 1
        return f"{int(self.now())}.{self._uniqueid_counter}"

    def _next_sequence(self) -> int:
        value = self.channel_sequence
        self.channel_sequence += 1
        return value

    # --- events -------------------------------------------------------------

    def emit(self, name: str, headers: list[tuple[str, str]]) -> None:
        """Raise event ``name`` (its class from the event table) through the hook."""
        if self.emit_hook is not None:
            self.emit_hook(name, headers, event_class(name))

    def _channel_event(self, name: str, channel: Channel, *extra: tuple[str, str]) -> None:
        self.emit(name, [*channel.snapshot(), *extra])

    # --- channels ------------------------------------------------------------

    def channel(self, name: str) -> Channel | None:
        """The live channel called ``name`` (case does not matter), or `None`."""
        found = self.channels.get(name)
        if found is None:
            low = name.lower()
            for key, value in self.channels.items():
                if key.lower() == low:
                    return value
        return found

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
        uniqueid = self._next_uniqueid()
        channel = Channel(
            name,
            uniqueid,
            linkedid or uniqueid,
            state=state,
            context=context,
            exten=exten,
            priority=priority,
            application=application,
            data=data,
            variables=dict(variables or {}),
            created=self.clock.seconds(),
        )
        if caller_id:
            channel.caller_name, channel.caller_num = parse_caller_id(caller_id)
        self._add(channel)
        return channel

    def _new(self, name: str, state: int, context: str, exten: str, linkedid: str = "") -> Channel:
        uniqueid = self._next_uniqueid()
        return Channel(
            name,
            uniqueid,
            linkedid or uniqueid,
            state=state,
            context=context,
            exten=exten,
            created=self.clock.seconds(),
        )

    def _add(self, channel: Channel) -> None:
        self.channels[channel.name] = channel
        self._channel_event("Newchannel", channel)

    def set_state(self, channel: Channel, state: int) -> None:
        """Change a channel's state (``Newstate``); a Local ``;2`` answering answers ``;1``."""
        if channel.hungup or channel.state == state:
            return
        channel.state = state
        self._channel_event("Newstate", channel)
        peer = channel.peer
        if state == 6 and peer is not None and channel.name.endswith(";2") and peer.state != 6:
            self._answered(peer)

    def _set_caller(self, channel: Channel, name: str, number: str) -> None:
        channel.caller_name, channel.caller_num = name, number
        self._channel_event(
            "NewCallerid", channel, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")
        )
        channel.connected_name, channel.connected_num = name, number
        self._channel_event("NewConnectedLine", channel)

    def hangup(self, channel: Channel, cause: int = 16, soft_cause: int | None = 16) -> None:
        """
        Hang ``channel`` up, and the other half of a Local pair: ``SoftHangupRequest``
        (when ``soft_cause`` is given), ``HangupRequest`` on the peer, then
        ``Hangup`` for each with ``cause``.
        """
        if channel.hungup:
            return
        peer = channel.peer if channel.peer is not None and not channel.peer.hungup else None
        if soft_cause is not None:
            self._channel_event("SoftHangupRequest", channel, ("Cause", str(soft_cause)))
        if peer is not None:
            self._channel_event("HangupRequest", peer, ("Cause", str(cause)))
        self._destroy(channel, cause)
        if peer is not None:
            self._destroy(peer, cause)

    def _destroy(self, channel: Channel, cause: int) -> None:
        if channel.hungup:
            return
        channel.hungup = True
        self.timers.cancel(channel.timer)
        self.timers.cancel(channel.hangup_timer)
        channel.timer = channel.hangup_timer = None
        if channel.queue is not None:
            self._leave_queue(channel)
        self.channels.pop(channel.name, None)
        self._channel_event(
            "Hangup", channel, ("Cause", str(cause)), ("Cause-txt", CAUSES.get(cause, "Unknown"))
        )
        call = channel.call
        if call is not None:
            channel.call = None
            self._finish(call, False, 1, channel)

    def hangup_later(self, channel: Channel, seconds: float) -> None:
        """Hang ``channel`` up after ``seconds`` (AbsoluteTimeout; 0 cancels)."""
        self.timers.cancel(channel.hangup_timer)
        channel.hangup_timer = None
        if seconds > 0:
            channel.hangup_timer = self.timers.call_later(seconds, self._timed_out, channel)

    def _timed_out(self, channel: Channel) -> None:
        channel.hangup_timer = None
        self.hangup(channel, cause=0, soft_cause=16)

    def hangup_all(self) -> None:
        """Hang up every channel (cause 16)."""
        for channel in list(self.channels.values()):
            self.hangup(channel, 16, None)

    def redirect(self, channel: Channel, context: str, exten: str, priority: int) -> None:
        """Send ``channel`` to ``exten@context`` at ``priority`` (what Redirect does)."""
        self.timers.cancel(channel.timer)
        channel.timer = None
        if channel.queue is not None:
            self._leave_queue(channel)
        self._run(channel, context, exten, priority)

    # --- originate -----------------------------------------------------------

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
    ) -> None:
        """
        Place a call from ``channel`` to ``exten@context`` (or ``application(data)``).

        ``done(answered, reason, channel)`` is called once: when the channel
        answers (reason 4) or fails (0 no such channel or extension, 1 hung up,
        3 no answer within ``timeout`` seconds, 5 busy, 8 congestion).
        """
        self.calls_processed += 1
        call = _Call(done, exten, context, priority, application, data)
        technology, _, resource = channel.partition("/")
        if technology.lower() not in self.technologies or not resource:
            self._finish(call, False, 0, None)
            return
        vars_ = list(variables)
        cid = parse_caller_id(caller_id) if caller_id else None
        if technology.lower() == "local":
            self._originate_local(call, resource, vars_, cid, account, timeout)
        else:
            self._originate_endpoint(
                call, channel, technology, resource, vars_, cid, account, timeout
            )

    def _prepare(
        self,
        channel: Channel,
        variables: list[tuple[str, str]],
        cid: tuple[str, str] | None,
        account: str,
    ) -> None:
        channel.account_code = account
        for name, value in variables:
            self._set_channel_var(channel, name, value)
        if cid is not None:
            self._set_caller(channel, *cid)

    def _originate_local(
        self,
        call: _Call,
        resource: str,
        variables: list[tuple[str, str]],
        cid: tuple[str, str] | None,
        account: str,
        timeout: float,
    ) -> None:
        target, _, options = resource.partition("/")
        exten, _, context = target.partition("@")
        context = context or "default"
        base = f"Local/{target}-{self._next_sequence():08x}"
        one = self._new(base + ";1", 0, context, exten)
        two = self._new(base + ";2", 4, context, exten, one.uniqueid)
        one.peer, two.peer = two, one
        self._add(one)
        self._add(two)
        self._channel_event(
            "Newexten",
            one,
            ("Extension", exten),
            ("Application", "AppDial2"),
            ("AppData", "(Outgoing Line)"),
        )
        one.application, one.data = "AppDial2", "(Outgoing Line)"
        # Asterisk sets the variables on ;1 last to first, and on ;2 in order.
        self._prepare(one, variables[::-1], cid, account)
        self._prepare(two, variables, cid, account)
        if exten not in self.dialplan.get(context, {}):
            self._destroy(two, 0)
            self._destroy(one, 0)
            self._finish(call, False, 0, one)
            return
        one.call = call
        self.emit(
            "LocalBridge",
            [
                *one.snapshot("LocalOne"),
                *two.snapshot("LocalTwo"),
                ("Context", context),
                ("Exten", exten),
                ("LocalOptimization", "No" if "n" in options else "Yes"),
            ],
        )
        self.emit("DialBegin", [*one.snapshot("Dest"), ("DialString", resource)])
        self._run(two, context, exten, 1)
        if timeout > 0 and one.call is call and not one.hungup:
            call.timer = self.timers.call_later(timeout, self._no_answer, one)

    def _originate_endpoint(
        self,
        call: _Call,
        spec: str,
        technology: str,
        resource: str,
        variables: list[tuple[str, str]],
        cid: tuple[str, str] | None,
        account: str,
        timeout: float,
    ) -> None:
        name = f"{technology}/{resource}-{self._next_sequence():08x}"
        channel = self._new(name, 0, call.context or "default", call.exten or "s")
        self._add(channel)
        self._prepare(channel, variables, cid, account)
        channel.call = call
        self.emit("DialBegin", [*channel.snapshot("Dest"), ("DialString", resource)])
        self.set_state(channel, 5)
        outcome = self.endpoint_outcomes.get(spec, 4)
        ring = self.ring_time
        if outcome == 4 and timeout > 0 and ring > timeout:
            outcome, ring = 3, timeout
        if ring > 0:
            channel.timer = self.timers.call_later(ring, self._ring_ended, channel, outcome)
        else:
            self._ring_ended(channel, outcome)

    def _ring_ended(self, channel: Channel, outcome: int) -> None:
        channel.timer = None
        if channel.hungup:
            return
        if outcome == 4:
            self._answered(channel)
        else:
            self._fail_outbound(channel, outcome)

    def _no_answer(self, channel: Channel) -> None:
        call = channel.call
        if call is not None:
            call.timer = None
            self._fail_outbound(channel, 3)

    def _fail_outbound(self, channel: Channel, reason: int) -> None:
        status, cause = _FAILURES.get(reason, ("CHANUNAVAIL", 0))
        call = channel.call
        channel.call = None
        self.emit("DialEnd", [*channel.snapshot("Dest"), ("DialStatus", status)])
        self.hangup(channel, cause, None)
        if call is not None:
            self._finish(call, False, reason, channel)

    def _answered(self, channel: Channel) -> None:
        """An outbound channel answered: DialEnd, the Originate succeeds, the destination runs."""
        channel.state = 6
        self._channel_event("Newstate", channel)
        self.emit("DialEnd", [*channel.snapshot("Dest"), ("DialStatus", "ANSWER")])
        call = channel.call
        channel.call = None
        if call is None:
            return
        self._finish(call, True, 4, channel)
        if channel.hungup:
            return
        if call.application:
            channel.application, channel.data = call.application, call.data
            self._exec(
                channel, call.application, call.data, lambda: self.hangup(channel, 16, None)
            )
        else:
            self._run(channel, call.context or "default", call.exten, call.priority)

    def _finish(self, call: _Call, answered: bool, reason: int, channel: Channel | None) -> None:
        self.timers.cancel(call.timer)
        call.timer = None
        done, call.done = call.done, None
        if done is not None:
            done(answered, reason, channel)

    # --- the dialplan --------------------------------------------------------

    def _run(self, channel: Channel, context: str, exten: str, priority: int) -> None:
        if channel.hungup:
            return
        channel.context, channel.exten, channel.priority = context, exten, priority
        steps = self.dialplan.get(context, {}).get(exten)
        if steps is None or not 1 <= priority <= len(steps):
            self.hangup(channel, 16 if steps else 0, None)
            return
        application, data = steps[priority - 1]
        channel.application, channel.data = application, data
        self._channel_event(
            "Newexten",
            channel,
            ("Extension", exten),
            ("Application", application),
            ("AppData", data),
        )
        self._exec(
            channel, application, data, lambda: self._run(channel, context, exten, priority + 1)
        )

    def _exec(
        self, channel: Channel, application: str, data: str, then: Callable[[], None]
    ) -> None:
        app = application.lower()
        args = data.split(",")
        if app == "answer":
            self.set_state(channel, 6)
        elif app == "wait":
            try:
                seconds = float(args[0] or 0)
            except ValueError:
                seconds = 0.0
            channel.timer = self.timers.call_later(seconds, self._resume, channel, then)
            return
        elif app in ("hangup", "busy", "congestion"):
            default = {"hangup": 16, "busy": 17, "congestion": 34}[app]
            cause = int(args[0]) if args[0].isdigit() else default
            self.hangup(channel, cause, cause)
            return
        elif app == "userevent":
            extra = []
            for item in args[1:]:
                key, _, value = item.partition(":")
                extra.append((key.strip(), value.strip()))
            self._channel_event("UserEvent", channel, ("UserEvent", args[0]), *extra)
        elif app == "set":
            name, _, value = data.partition("=")
            self.set_var(channel, name, value)
        elif app == "queue":
            self._join_queue(channel, args[0])
            return
        elif app not in _IMMEDIATE_APPS:
            return  # Echo, Dial, ConfBridge, ...: busy until hung up
        if not channel.hungup:
            then()

    def _resume(self, channel: Channel, then: Callable[[], None]) -> None:
        channel.timer = None
        if not channel.hungup:
            then()

    def extension_exists(self, context: str, exten: str) -> bool:
        """Whether ``exten@context`` is in the dialplan."""
        return exten in self.dialplan.get(context, {})

    # --- queues --------------------------------------------------------------

    def _join_queue(self, channel: Channel, name: str) -> None:
        queue = self.queues.get(name)
        if queue is None:
            self.hangup(channel, 16, None)
            return
        queue.callers.append(channel)
        channel.queue = name
        self.emit(
            "QueueCallerJoin",
            [
                *channel.snapshot(),
                ("Queue", name),
                ("Position", str(len(queue.callers))),
                ("Count", str(len(queue.callers))),
            ],
        )

    def _leave_queue(self, channel: Channel) -> None:
        name, channel.queue = channel.queue, None
        queue = self.queues.get(name or "")
        if queue is None or channel not in queue.callers:
            return
        position = queue.callers.index(channel) + 1
        queue.callers.remove(channel)
        self.emit(
            "QueueCallerLeave",
            [
                *channel.snapshot(),
                ("Queue", queue.name),
                ("Count", str(len(queue.callers))),
                ("Position", str(position)),
            ],
        )

    # --- variables and functions ---------------------------------------------

    def get_var(self, channel: Channel | None, name: str) -> str | None:
        """
        A variable or dialplan function value as Getvar reads it (`None` if
        unset): channel variables, then globals; ``CALLERID()``, ``CHANNEL()``,
        ``DB()``, ``GLOBAL()``, ``DEVICE_STATE()``, ``EXTENSION_STATE()``.
        Other functions (``SHELL`` among them) read as empty.
        """
        match = _FUNCTION.match(name)
        if match is None:
            if channel is not None and name in channel.variables:
                return channel.variables[name]
            return self.globals.get(name)
        function, argument = match.group(1).upper(), match.group(2)
        if function == "CALLERID" and channel is not None:
            what = argument.lower()
            if what == "num":
                return channel.caller_num
            if what == "name":
                return channel.caller_name
            if what == "all":
                if channel.caller_name:
                    return f'"{channel.caller_name}" <{channel.caller_num}>'
                return channel.caller_num
        elif function == "CHANNEL" and channel is not None:
            return {
                "state": channel.state_description,
                "name": channel.name,
                "uniqueid": channel.uniqueid,
                "linkedid": channel.linkedid,
                "language": channel.language,
                "accountcode": channel.account_code,
                "context": channel.context,
                "exten": channel.exten,
            }.get(argument.lower(), "")
        elif function == "DB":
            return self.db.get("/" + argument.strip("/"))
        elif function == "GLOBAL":
            return self.globals.get(argument)
        elif function == "DEVICE_STATE":
            return self.device_states.get(argument, "UNKNOWN")
        elif function == "EXTENSION_STATE":
            exten, _, context = argument.partition("@")
            state = self.extension_state(context or "default", exten)[1]
            return {0: "NOT_INUSE", 1: "INUSE", 2: "BUSY", 4: "UNAVAILABLE", 8: "RINGING"}.get(
                state, "UNKNOWN"
            )
        return ""

    def set_var(self, channel: Channel | None, name: str, value: str) -> None:
        """Set a global (``channel`` `None`) or channel variable, or write a function."""
        match = _FUNCTION.match(name)
        if match is not None:
            function, argument = match.group(1).upper(), match.group(2)
            if function == "DEVICE_STATE":
                self.set_device_state(argument, value)
            elif function == "DB":
                self.db["/" + argument.strip("/")] = value
            elif function == "GLOBAL":
                self._set_global(argument, value)
            elif function == "CALLERID" and channel is not None:
                what = argument.lower()
                name_, number = channel.caller_name, channel.caller_num
                if what == "num":
                    number = value
                elif what == "name":
                    name_ = value
                else:
                    name_, number = parse_caller_id(value)
                channel.caller_name, channel.caller_num = name_, number
                self._channel_event(
                    "NewCallerid",
                    channel,
                    ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"),
                )
            return
        if channel is None:
            self._set_global(name, value)
        else:
            self._set_channel_var(channel, name, value)

    def _set_global(self, name: str, value: str) -> None:
        self.globals[name] = value
        self.emit(
            "VarSet",
            [("Channel", "none"), ("Uniqueid", "none"), ("Variable", name), ("Value", value)],
        )

    def _set_channel_var(self, channel: Channel, name: str, value: str) -> None:
        channel.variables[name] = value
        self._channel_event("VarSet", channel, ("Variable", name), ("Value", value))

    # --- device and extension states -----------------------------------------

    def set_device_state(self, device: str, state: str) -> None:
        """
        Set a device's state (``Custom:x`` devices are set this way): raises
        ``ExtensionStatus`` for every hint whose state changes, then
        ``DeviceStateChange``.
        """
        state = state.upper()
        before = {key: self.extension_state(*key)[1] for key in self.hints}
        old = self.device_states.get(device)
        self.device_states[device] = state
        for context, exten in self.hints:
            status = self.extension_state(context, exten)[1]
            if status != before[(context, exten)]:
                self.emit("ExtensionStatus", self.extension_status(context, exten))
        if old != state:
            self.emit("DeviceStateChange", [("Device", device), ("State", state)])

    def extension_status(self, context: str, exten: str) -> list[tuple[str, str]]:
        """The headers Asterisk reports a hint's state with (ExtensionState and its events)."""
        hint, status = self.extension_state(context, exten)
        return [
            ("Exten", exten),
            ("Context", context),
            ("Hint", hint),
            ("Status", str(status)),
            ("StatusText", EXTENSION_STATES.get(status, "Unknown")),
        ]

    def extension_state(self, context: str, exten: str) -> tuple[str, int]:
        """``(hint, status)`` of ``exten@context``: status -1 when it has no hint."""
        hint = self.hints.get((context, exten))
        if hint is None:
            return "", -1
        states = [self.device_states.get(device, "UNKNOWN") for device in hint.split("&")]
        ringing = any(s in ("RINGING", "RINGINUSE") for s in states)
        inuse = any(s in ("INUSE", "RINGINUSE", "BUSY", "ONHOLD") for s in states)
        if ringing and inuse:
            return hint, 9
        if ringing:
            return hint, 8
        if "BUSY" in states:
            return hint, 2
        if "INUSE" in states:
            return hint, 1
        if "ONHOLD" in states:
            return hint, 16
        if states and all(s in ("UNAVAILABLE", "INVALID") for s in states):
            return hint, 4
        return hint, 0

    # --- voicemail -----------------------------------------------------------

    def mailbox(self, spec: str) -> tuple[str, Mailbox]:
        """The box ``spec`` names (``"1234"`` means ``"1234@default"``); empty if unknown."""
        box, _, context = spec.partition("@")
        key = f"{box}@{context or 'default'}"
        return spec, self.mailboxes.get(key, Mailbox())

    def set_mailbox(self, spec: str, new: int, old: int, urgent: int = 0) -> None:
        """Change a box's message counts and raise ``MessageWaiting``."""
        box, _, context = spec.partition("@")
        key = f"{box}@{context or 'default'}"
        mailbox = self.mailboxes.setdefault(key, Mailbox())
        mailbox.new, mailbox.old, mailbox.urgent = new, old, urgent
        self.emit(
            "MessageWaiting",
            [
                ("Mailbox", key),
                ("Waiting", "1" if new else "0"),
                ("New", str(new)),
                ("Old", str(old)),
            ],
        )

    # --- setup ---------------------------------------------------------------

    def stop(self) -> None:
        """Cancel every scheduled call progress (channels stay as they are)."""
        self.timers.cancel_all()
        for channel in self.channels.values():
            channel.timer = channel.hangup_timer = None


def load_capture_defaults(pbx: PBX) -> None:
    """
    Configure ``pbx`` like the Asterisk the transcripts were captured from:
    context ``txami-test`` and its hints, mailbox 1234@default (2 new, 1 old),
    queue ``support``, IAX2 peers ``txpeer1``/``txpeer2``, ``TXAMI_GLOBAL``.
    """
    steps: dict[str, list[tuple[str, str]]] = {
        "1000": [("Answer", ""), ("Wait", "3600"), ("Hangup", "")],
        "1001": [("Answer", ""), ("Echo", "")],
        "1002": [("Answer", ""), ("Wait", "1"), ("Hangup", "")],
        "1003": [("Answer", ""), ("Wait", "0.2"), ("Hangup", "")],
        "1010": [("Answer", ""), ("Dial", "Local/1000@txami-test/n,,g"), ("Hangup", "")],
        "2000": [("Answer", ""), ("Wait", "5"), ("Hangup", "")],
        "2001": [("Hangup", "")],
        "2002": [("Hangup", "")],
        "2099": [("Set", "DEVICE_STATE(Custom:txami2000)=INUSE"), ("Hangup", "")],
        "600": [("Answer", ""), ("Queue", "support,,,,120"), ("Hangup", "")],
        "680": [("Answer", ""), ("ConfBridge", "680"), ("Hangup", "")],
        "700": [
            ("Answer", ""),
            ("UserEvent", "TxamiTest,Foo: bar"),
            ("Wait", "1"),
            ("Hangup", ""),
        ],
        "710": [
            ("Answer", ""),
            ("Verbose", "1,txami var FOO=${FOO} BAR=${BAR}"),
            ("Wait", "2"),
            ("Hangup", ""),
        ],
        "8500": [("Answer", ""), ("VoiceMailMain", "1234@default,s"), ("Hangup", "")],
    }
    pbx.dialplan["txami-test"] = steps
    pbx.hints[("txami-test", "2000")] = "Custom:txami2000"
    pbx.hints[("txami-test", "2001")] = "Custom:txami2001"
    pbx.hints[("txami-test", "2002")] = "Custom:txami2002&Custom:txami2003"
    pbx.globals["TXAMI_GLOBAL"] = "hello"
    pbx.mailboxes["1234@default"] = Mailbox(new=2, old=1, fullname="Txami Tester")
    pbx.mailboxes["1235@default"] = Mailbox(fullname="Empty Box")
    started = int(pbx.start_time)
    pbx.queues["support"] = Queue(
        "support",
        members=[
            QueueMember(
                "Local/1000@txami-test/n",
                "Agent One",
                "Local/1000@txami-test/n",
                login_time=started,
            ),
            QueueMember(
                "Local/1001@txami-test/n",
                "Agent Two",
                "Local/1001@txami-test/n",
                login_time=started,
            ),
        ],
    )
    pbx.iax_peers[:] = [IAXPeer("txpeer2"), IAXPeer("txpeer1", host="127.0.0.1")]
    pbx.device_states.update(
        {
            "confbridge:680": "NOT_INUSE",
            "Queue:support_avail": "NOT_INUSE",
            "MWI:1234@default": "INUSE",
            "MWI:1235@default": "NOT_INUSE",
            "Queue:support_pause_Local/1001@txami-test/n": "NOT_INUSE",
            "Queue:support_pause_Local/1000@txami-test/n": "NOT_INUSE",
        }
    )
