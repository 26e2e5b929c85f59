"""
The dialplan of the fake PBX (`DialplanMixin`): contexts, extensions and the
applications a channel runs, one priority after the other.

Each step sets the channel's place and application and publishes it, so
``Newexten`` comes exactly when Asterisk raises it (see `txami.testing.pbx.core`).
Applications are simulated: ``Answer``, ``Wait``, ``Hangup``, ``Busy``,
``Congestion``, ``UserEvent``, ``Set``, ``Goto``, ``NoOp``/``Verbose``/``Log``/
``Playback``/``Progress``/``Ringing`` run at once; ``Echo`` and
``MusicOnHold`` keep the channel until it is hung up (or redirected);
``Dial`` places calls and bridges the one that answers (with the variables
``app_dial`` sets); ``Queue``, ``ConfBridge``, ``Park`` and ``ParkedCall``
come from the upper layers.  An unknown application keeps the channel busy
until it is hung up.

A redirect (`DialplanMixin.redirect`) moves a channel to another place: out of
its bridge or application first, as Asterisk's async goto does.
"""

from __future__ import annotations

from collections.abc import Callable

from txami.testing.pbx.bridges import Bridge
from txami.testing.pbx.calls import CallsMixin, Dialing
from txami.testing.pbx.channels import Channel
from txami.testing.pbx.core import EmitHook, operation
from txami.testing.timers import Timers

__all__ = ["DialplanMixin", "Step"]

#: One priority of an extension: ``(application, data)``.
Step = tuple[str, str]

_IMMEDIATE_APPS = frozenset(
    {"noop", "verbose", "log", "playback", "progress", "ringing", "answer", "set"}
)
#: Dial's variables, reset (empty) when it starts.
_DIAL_VARIABLES = (
    "DIALSTATUS",
    "DIALEDPEERNUMBER",
    "DIALEDPEERNAME",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "RINGTIME",
    "RINGTIME_MS",
    "PROGRESSTIME",
    "PROGRESSTIME_MS",
)


class DialplanMixin(CallsMixin):
    """The dialplan and its applications (see the module's docstring)."""

    def __init__(self, timers: Timers, emit: EmitHook | None = None) -> None:
        super().__init__(timers, emit)
        #: The dialplan: context -> exten -> ``[(application, data), ...]`` by priority.
        self.dialplan: dict[str, dict[str, list[Step]]] = {}
        #: Contexts each context includes (``include => ...``).
        self.includes: dict[str, list[str]] = {}

    # --- lookups -----------------------------------------------------------------

    def _steps(self, context: str, exten: str) -> list[Step] | None:
        seen: set[str] = set()
        todo = [context]
        while todo:
            name = todo.pop(0)
            if name in seen:
                continue
            seen.add(name)
            steps = self.dialplan.get(name, {}).get(exten)
            if steps is not None:
                return steps
            todo.extend(self.includes.get(name, []))
        return self._dynamic_extension(context, exten)

    def _dynamic_extension(self, context: str, exten: str) -> list[Step] | None:
        """Extensions made by modules (parking spaces); none by default."""
        return None

    def extension_exists(self, context: str, exten: str) -> bool:
        """Whether ``exten@context`` is in the dialplan (includes followed)."""
        return self._steps(context, exten) is not None

    def _extension_exists(self, context: str, exten: str) -> bool:
        return self.extension_exists(context, exten)

    # --- running -----------------------------------------------------------------

    def _start_pbx(self, channel: Channel, context: str, exten: str, priority: int) -> None:
        if channel.hungup:
            return
        channel.in_pbx = True
        self._goto(channel, context, exten, priority)

    def _goto(self, channel: Channel, context: str, exten: str, priority: int) -> None:
        """Run ``exten@context`` from ``priority`` on ``channel`` (which runs the dialplan)."""
        channel.goto = None
        if channel.hungup:
            return
        channel.context, channel.exten, channel.priority = context, exten, priority
        steps = self._steps(context, exten)
        if steps is None or not 1 <= priority <= len(steps):
            # Nothing to run: the PBX ends (cause 16 at the end of an extension).
            if channel.cause == 0 and steps:
                channel.cause = 16
            self._end(channel)
            return
        application, data = steps[priority - 1]
        channel.application, channel.data = application, self._substitute(channel, data)
        self.publish(channel)
        self._execute(channel, application, channel.data, lambda: self._next(channel))

    def _next(self, channel: Channel) -> None:
        """Go on with the next priority (or where a redirect sends it; not when hanging up)."""
        if channel.hungup or channel.ending:
            return
        if channel.goto is not None:
            self._start_pbx(channel, *channel.goto)
        elif channel.in_pbx:
            self._goto(channel, channel.context, channel.exten, channel.priority + 1)

    def _run_application(self, channel: Channel, application: str, data: str) -> None:
        channel.application, channel.data = application, data
        self.publish(channel)
        self._execute(channel, application, data, lambda: self._end(channel))

    def _substitute(self, channel: Channel, data: str) -> str:
        """Expand ``${VAR}`` in application data (variables and globals only)."""
        if "${" not in data:
            return data
        out, rest = [], data
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out.append(before)
            out.append(self.get_var(channel, name) or "")
        out.append(rest)
        return "".join(out)

    def _execute(
        self, channel: Channel, application: str, data: str, then: Callable[[], None]
    ) -> None:
        """Run ``application(data)``; ``then()`` when it returns (not if it hangs up)."""
        app = application.lower()
        handler = getattr(self, f"_app_{app}", None)
        if handler is not None:
            if handler(channel, data, then):
                then()
            return
        if app in _IMMEDIATE_APPS:
            then()
        # Anything else keeps the channel until it is hung up or redirected.

    # --- applications ------------------------------------------------------------

    def _app_answer(self, channel: Channel, data: str, then: Callable[[], None]) -> bool:
        self.set_state(channel, 6)
        return True

    def _app_wait(self, channel: Channel, data: str, then: Callable[[], None]) -> bool:
        try:
            seconds = float(data.split(",")[0] or 0)
        except ValueError:
            seconds = 0.0
        self._wait(channel, seconds, then)
        return False

    def _wait(self, channel: Channel, seconds: float, then: Callable[[], None]) -> None:
        def done() -> None:
            channel.timer = None
            channel.stop_app = None
            if not channel.hungup:
                then()

        channel.timer = self._schedule(seconds, done)
        channel.stop_app = lambda: self.timers.cancel(channel.timer)

    def _app_hangup(self, channel: Channel, data: str, then: Callable[[], None]) -> bool:
        return self._hangup_app(channel, data, 16)

    def _app_busy(self, channel: Channel, data: str, then: Callable[[], None]) -> bool:
        return self._hangup_app(channel, data, 17)

    def _app_congestion(self, channel: Channel, data: str, then: Callable[[], None]) -> bool:
        return self._hangup_app(channel, data, 34)

    def _hangup_app(self, channel: Channel, data: str, default: int) -> bool:
        text = data.split(",")[0].strip()
        cause = int(text) if text.isdigit() else (channel.cause or default)
        self.hangup(channel, cause)
        return False

    def _app_userevent(self, channel: Channel, data: str, then: Callable[[], None]) -> bool:
        name, *items = data.split(",")
        extra = []
        for item in items:
            key, _, value = item.partition(":")
            extra.append((key.strip(), value.strip()))
        self.channel_event("UserEvent", channel, ("UserEvent", name), *extra)
        return True

    def _app_set(self, channel: Channel, data: str, then: Callable[[], None]) -> bool:
        name, _, value = data.partition("=")
        self.set_var(channel, name, value)
        return True

    def _app_goto(self, channel: Channel, data: str, then: Callable[[], None]) -> bool:
        parts = [p.strip() for p in data.split(",")]
        context, exten, priority = channel.context, channel.exten, 1
        if len(parts) == 3:
            context, exten, priority = parts[0], parts[1], int(parts[2] or 1)
        elif len(parts) == 2:
            exten, priority = parts[0], int(parts[1] or 1)
        elif parts and parts[0]:
            priority = int(parts[0])
        self._goto(channel, context, exten, priority)
        return False

    def _app_echo(self, channel: Channel, data: str, then: Callable[[], None]) -> bool:
        return False

    def _app_musiconhold(self, channel: Channel, data: str, then: Callable[[], None]) -> bool:
        music_class, _, duration = data.partition(",")
        self.start_music(channel, music_class or "default")

        def stop() -> None:
            self.timers.cancel(channel.timer)
            self.stop_music(channel)

        def done() -> None:
            self.stop_music(channel)
            then()

        if duration.strip():
            self._wait(channel, float(duration), done)
            channel.stop_app = stop
        else:
            channel.stop_app = stop
        return False

    # --- Dial ----------------------------------------------------------------------

    def _app_dial(self, channel: Channel, data: str, then: Callable[[], None]) -> bool:
        targets, _, rest = data.partition(",")
        timeout_text, _, options = rest.partition(",")
        try:
            timeout = float(timeout_text) if timeout_text.strip() else 0.0
        except ValueError:
            timeout = 0.0
        for name in _DIAL_VARIABLES:
            self.set_channel_var(channel, name, "")
        target = targets.split("&")[0]
        number = target.partition("/")[2]
        started = self.clock.seconds()

        def setup(callee: Channel) -> None:
            self.set_channel_var(callee, "DIALEDPEERNUMBER", number)
            callee.exten = channel.exten
            callee.application, callee.data = "AppDial", "(Outgoing Line)"
            callee.caller_num, callee.caller_name = channel.exten, channel.caller_name
            callee.connected_num = channel.caller_num
            callee.connected_name = channel.caller_name
            self.publish(callee)

        def before_end(callee: Channel) -> None:
            callee.exten = ""
            self.set_channel_var(channel, "DIALSTATUS", "ANSWER")
            self.set_channel_var(channel, "DIALEDPEERNAME", callee.name)
            self.set_channel_var(channel, "DIALEDPEERNUMBER", number)

        def answered(callee: Channel) -> None:
            channel.stop_app = None
            answered_at = self.clock.seconds()
            self.set_state(channel, 6)  # Dial answers its caller when the callee does
            bridge = self.create_bridge()
            self.publish(callee)
            self.enter_bridge(bridge, callee, peers=False)
            self.enter_bridge(bridge, channel, peers=False)
            self.set_bridge_peers(bridge)

            def bridge_over() -> None:
                if channel.goto is not None:  # redirected: Dial only reports its status
                    self.set_channel_var(channel, "DIALSTATUS", "ANSWER")
                    then()
                    return
                now = self.clock.seconds()
                talk, total = now - answered_at, now - started
                self.set_channel_var(channel, "ANSWEREDTIME", str(int(talk)))
                self.set_channel_var(channel, "ANSWEREDTIME_MS", str(int(talk * 1000)))
                self.set_channel_var(channel, "DIALEDTIME", str(int(total)))
                self.set_channel_var(channel, "DIALEDTIME_MS", str(int(total * 1000)))
                self.set_channel_var(channel, "DIALSTATUS", "ANSWER")
                if channel.ending or channel.hungup:
                    return
                if "g" in options:
                    then()
                else:
                    self.hangup(channel, channel.cause or 16)

            channel.after_bridge = bridge_over
            self._check_optimization(callee)
            self._check_optimization(channel)

        def failed(callee: Channel | None, status: str) -> None:
            channel.stop_app = None
            self.set_channel_var(channel, "DIALSTATUS", status)
            if not channel.hungup:
                then()

        dialing = Dialing(channel, number, answered, failed, before_end)
        callee = self.dial(
            target, dialing, setup=setup, timeout=timeout, linkedid=channel.linkedid
        )
        if callee is not None and not callee.hungup and callee.call is dialing:
            channel.stop_app = lambda: self.cancel_dial(callee)
        return False

    # --- redirects -----------------------------------------------------------------

    @operation
    def redirect(self, channel: Channel, context: str, exten: str, priority: int) -> None:
        """
        Send ``channel`` to ``exten@context`` at ``priority`` (what Redirect
        does): out of its bridge or application first, as Asterisk's async
        goto does.  A channel that ran no dialplan starts to.
        """
        self._redirect_all([(channel, context, exten, priority)])

    @operation
    def redirect_pair(
        self,
        first: tuple[Channel, str, str, int],
        second: tuple[Channel, str, str, int],
    ) -> None:
        """Redirect two channels at once (Redirect with ``ExtraChannel``)."""
        self._redirect_all([first, second])

    def _redirect_all(self, targets: list[tuple[Channel, str, str, int]]) -> None:
        moving = [t for t in targets if not t[0].hungup]
        names = {id(t[0]) for t in moving}
        bridges: list[Bridge] = []
        for channel, _, _, _ in moving:
            bridge = channel.bridge
            if isinstance(bridge, Bridge) and bridge not in bridges:
                bridges.append(bridge)
        # The bridges they leave lose the moving channels' BRIDGEPEER first.
        for bridge in bridges:
            for member in bridge.channels:
                if id(member) in names:
                    self._unset_peer(member)
        for channel, context, exten, priority in moving:
            channel.goto = (context, exten, priority)
            channel.context, channel.exten, channel.priority = context, exten, priority
            self.publish(channel)
        for channel, _, _, _ in moving:
            self._interrupt(channel)
        for bridge in bridges:
            leaving = [t[0] for t in moving if t[0].bridge is bridge]
            staying = [c for c in bridge.channels if id(c) not in names]
            dissolves = bridge.dissolve_on_hangup and not bridge.hidden
            for channel in leaving:
                self._pull(bridge, channel, unset=False)
            if dissolves and len(staying) <= 1:
                for member in staying:
                    self._unset_peer(member)
                    self._pull(bridge, member, unset=False)
                self.destroy_bridge(bridge)
                for member in staying:
                    self._soon(self._kicked, member, bridge)
            else:
                self.set_bridge_peers(bridge)
        # Those no application waits for start first (Asterisk's async goto); then the
        # applications that bridged the others (Dial) return and send them on.
        waiting = [t for t in moving if t[0].after_bridge is not None]
        for channel, _, _, _ in moving:
            if channel.after_bridge is None and channel.goto is not None and not channel.hungup:
                self._start_pbx(channel, *channel.goto)
        for channel, _, _, _ in waiting:
            self._after_bridge(channel)
            if channel.goto is not None and not channel.hungup:
                self._start_pbx(channel, *channel.goto)
