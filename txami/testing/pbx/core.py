"""
`PBXCore`: the base of the fake PBX: its clock, its identities, its variables,
and the one place channel events are decided.

The fake PBX is built in layers, one module per concept, each a subclass of
the one below (``core`` < ``devices`` < ``bridges`` < ``calls`` < ``dialplan`` <
``queues`` < ``confbridge`` < ``parking`` < ``transfers`` < ``scenarios``;
``system`` assembles them with ``directory`` into `PBX`).  A lower layer tells the
upper ones what happened through hook methods (``_channel_destroyed``,
``_device_state_changed``, ``_left_bridge``, ...) that the upper layers
extend, so no module imports one above it.

`PBXCore.publish` does what Asterisk's ``manager_channels.c`` does with
channel snapshots: it compares the channel as it is with the snapshot last
reported and raises ``Newchannel``, ``Newstate``/``Hangup``, ``Newexten``,
``NewCallerid``, ``NewAccountCode`` and ``NewConnectedLine``, in that order,
for what changed.  ``Newexten`` follows Asterisk's rule: only when the
context, extension or priority changed (or the application was set for the
first time), which is why an ``Answer`` at a channel's current place raises
no ``Newexten``.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import txami.testing.pbx.channels
from txami.testing.pbx.channels import CAUSES, Channel, Snapshot, parse_caller_id
from txami.testing.permissions import event_class
from txami.testing.timers import Timers

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall, IReactorTime

__all__ = ["EmitHook", "PBXCore", "operation"]

#: Emit hook: ``emit(event_name, headers, event_class)``.
EmitHook = Callable[[str, list[tuple[str, str]], int], None]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_Core = TypeVar("_Core", bound="PBXCore")


def operation(
    method: Callable[Concatenate[_Core, _P], _R],
) -> Callable[Concatenate[_Core, _P], _R]:
    """
    Mark a public method as one operation of the PBX: what it sets going
    elsewhere (`PBXCore._soon`) runs once it is done, as another thread of
    Asterisk would, not in the middle of it.
    """

    def run(self: _Core, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if self._working:
            return method(self, *args, **kwargs)
        self._working = True
        try:
            result = method(self, *args, **kwargs)
            self._drain()
        finally:
            self._working = False
        return result

    run.__name__ = getattr(method, "__name__", "operation")
    run.__qualname__ = getattr(method, "__qualname__", run.__name__)
    run.__doc__ = method.__doc__
    return run


_FUNCTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$")


class PBXCore:
    """
    The fake PBX's clock, identities, variables and channel events.

    ``timers`` schedules call progress on the server's clock; ``emit`` (set by
    the server) receives every event.  All attributes are plain, public data
    that tests may read and change.
    """

    #: The Asterisk version reported by CoreSettings and ``core show version``.
    asterisk_version = "20.20.1"

    def __init__(self, timers: Timers, emit: EmitHook | None = None) -> None:
        self.timers = timers
        self.clock: IReactorTime = timers.clock
        self.emit_hook = emit
        #: Live channels by name.
        # Qualified, so the API reference does not confuse it with txami.Channel.
        self.channels: dict[str, txami.testing.pbx.channels.Channel] = {}
        #: The next channel sequence number (the ``-0000000a`` in channel names).
        self.channel_sequence = 0
        self._uniqueid_counter = 0
        self._bridge_counter = 0
        #: Global dialplan variables.
        self.globals: dict[str, str] = {}
        #: Asterisk's database: ``"/family/key"`` -> value.
        self.db: dict[str, str] = {}
        #: CLI commands a test adds or overrides: command text -> output lines, or a
        #: callable ``(args) -> (succeeded, lines)``.
        self.cli: dict[str, Sequence[str] | Callable[[list[str]], tuple[bool, list[str]]]] = {}
        #: Calls processed since start (``core show channels``).
        self.calls_processed = 0
        self._start = self.clock.seconds()
        #: The epoch that uniqueids and start dates count from.
        self.epoch = 1_700_000_000.0 if self._start < 1_000_000_000 else 0.0
        #: Makes each new BridgeUniqueid (`None`: UUID-like ids from a counter); a
        #: test replaying a capture can hand out the capture's ids.
        self.bridge_id_source: Callable[[], str] | None = None
        self._pending: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._working = False

    # --- operations ------------------------------------------------------------

    def _soon(self, func: Callable[..., Any], *args: Any) -> None:
        """
        Run ``func(*args)`` once the current operation is done (what another
        thread of Asterisk would do next: a Local channel's far side starting
        its dialplan, a channel put out of a bridge going on).
        """
        self._pending.append((func, args))
        if not self._working:
            self._working = True
            try:
                self._drain()
            finally:
                self._working = False

    def _drain(self) -> None:
        while self._pending:
            func, args = self._pending.popleft()
            func(*args)

    def _schedule(self, delay: float, func: Callable[..., Any], *args: Any) -> IDelayedCall:
        """Run ``func(*args)`` after ``delay`` seconds, as one operation."""
        return self.timers.call_later(delay, self._as_operation, func, *args)

    @operation
    def _as_operation(self, func: Callable[..., Any], *args: Any) -> None:
        func(*args)

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
        return f"{int(self.now())}.{self._uniqueid_counter - 1}"

    def _next_sequence(self) -> int:
        value = self.channel_sequence
        self.channel_sequence += 1
        return value

    def _next_bridge_id(self) -> str:
        if self.bridge_id_source is not None:
            return self.bridge_id_source()
        self._bridge_counter += 1
        n = self._bridge_counter
        return f"{n:08x}-7a31-4c5e-9f00-{int(self.start_time) % 10**12:012d}"

    # --- events -------------------------------------------------------------

    def emit(self, name: str, headers: list[tuple[str, str]]) -> None:
        """Raise event ``name`` (its class from the event table) through the hook."""
        if self.emit_hook is not None:
            self.emit_hook(name, headers, event_class(name))

    def channel_event(self, name: str, channel: Channel, *extra: tuple[str, str]) -> None:
        """Raise ``name`` about ``channel`` (its last reported snapshot) with ``extra``."""
        self.emit(name, [*channel.snapshot(), *extra])

    def publish(self, channel: Channel) -> None:
        """
        Report the channel as it is now: raise the events for what changed
        since its last snapshot, as Asterisk's channel snapshot monitors do.
        """
        old = channel.published
        new = channel.current()
        if old == new:
            return
        channel.published = new
        events: list[tuple[str, list[tuple[str, str]]]] = []
        if old is None:
            events.append(("Newchannel", []))
        elif new.dead and not old.dead:
            cause = new.cause
            events.append(
                ("Hangup", [("Cause", str(cause)), ("Cause-txt", CAUSES.get(cause, "Unknown"))])
            )
        elif old.state != new.state:
            events.append(("Newstate", []))
        if (
            new.application
            and not new.dead
            and (
                old is None
                or (not old.application and new.application)
                or old.location != new.location
            )
        ):
            events.append(
                (
                    "Newexten",
                    [
                        ("Extension", new.exten),
                        ("Application", new.application),
                        ("AppData", new.data),
                    ],
                )
            )
        if old is not None and (old.caller_num, old.caller_name) != (
            new.caller_num,
            new.caller_name,
        ):
            presentation = (
                "0 (Presentation Allowed, Not Screened)"
                if new.caller_num
                else "67 (Number Unavailable)"
            )
            events.append(("NewCallerid", [("CID-CallingPres", presentation)]))
        if old is not None and old.account_code != new.account_code:
            events.append(("NewAccountCode", [("OldAccountCode", old.account_code)]))
        if old is not None and (old.connected_num, old.connected_name) != (
            new.connected_num,
            new.connected_name,
        ):
            events.append(("NewConnectedLine", []))
        headers = new.headers()
        for name, extra in events:
            self.emit(name, [*headers, *extra])
        if old is not None and old.state != new.state and not new.dead:
            self._channel_state_changed(channel)
        if any(name == "NewConnectedLine" for name, _ in events):
            self._connected_line_changed(channel)

    # --- hooks the upper layers extend ----------------------------------------

    def _channel_state_changed(self, channel: Channel) -> None:
        """A channel's state changed (after its ``Newstate``)."""

    def _channel_destroyed(self, channel: Channel) -> None:
        """A channel is gone (after its ``Hangup``)."""

    def _connected_line_changed(self, channel: Channel) -> None:
        """A channel's connected line changed (after its ``NewConnectedLine``)."""

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

    def _new_channel(
        self,
        name: str,
        state: int,
        context: str,
        exten: str,
        linkedid: str = "",
        *,
        priority: int = 1,
    ) -> Channel:
        """A channel object (not yet announced: `_announce` raises its ``Newchannel``)."""
        uniqueid = self._next_uniqueid()
        return Channel(
            name,
            uniqueid,
            linkedid or uniqueid,
            state=state,
            context=context,
            exten=exten,
            priority=priority,
            created=self.clock.seconds(),
        )

    def _announce(self, channel: Channel) -> None:
        """Add ``channel`` to the live channels and raise its ``Newchannel``."""
        self.channels[channel.name] = channel
        self.publish(channel)

    # --- variables and functions ---------------------------------------------

    def get_var(self, channel: Channel | None, name: str) -> str | None:
        """
        A variable or dialplan function value as Getvar reads it (`None` if
        unset): channel variables, then globals; ``CALLERID()``, ``CHANNEL()``,
        ``DB()``, ``GLOBAL()``, and the functions upper layers add
        (``DEVICE_STATE()``, ``EXTENSION_STATE()``, ``PRESENCE_STATE()``).
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
        value = self._read_function(function, argument)
        return "" if value is None else value

    def _read_function(self, function: str, argument: str) -> str | None:
        """The value of dialplan function ``function(argument)`` (upper layers add theirs)."""
        return None

    def _write_function(self, function: str, argument: str, value: str) -> bool:
        """Write dialplan function ``function(argument)``; whether it is known."""
        return False

    def set_var(self, channel: Channel | None, name: str, value: str) -> None:
        """Set a global (``channel`` `None`) or channel variable, or write a function."""
        match = _FUNCTION.match(name)
        if match is not None:
            function, argument = match.group(1).upper(), match.group(2)
            if function == "DB":
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
                self.publish(channel)
            else:
                self._write_function(function, argument, value)
            return
        if channel is None:
            self._set_global(name, value)
        else:
            self.set_channel_var(channel, name, value)

    def _set_global(self, name: str, value: str) -> None:
        self.globals[name] = value
        self.emit(
            "VarSet",
            [("Channel", "none"), ("Uniqueid", "none"), ("Variable", name), ("Value", value)],
        )

    def set_channel_var(self, channel: Channel, name: str, value: str) -> None:
        """Set a channel variable (``VarSet``)."""
        channel.variables[name] = value
        self.channel_event("VarSet", channel, ("Variable", name), ("Value", value))

    # --- setup ---------------------------------------------------------------

    def stop(self) -> None:
        """Cancel every scheduled call progress (channels stay as they are)."""
        self.timers.cancel_all()
        for channel in self.channels.values():
            channel.timer = channel.hangup_timer = None


def snapshot_of(channel: Channel) -> Snapshot:
    """The snapshot events about ``channel`` report (its last published one)."""
    return channel.published or channel.current()
