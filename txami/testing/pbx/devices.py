"""
Device states, hints and presence states of the fake PBX (`DevicesMixin`).

Asterisk keeps two kinds of device states, and the fake follows it:

* *cached* ones (``Custom:`` devices set through ``DEVICE_STATE()``, queue
  devices, endpoint channels' devices such as ``PJSIP/100``): kept in
  `DevicesMixin.device_states`, listed by DeviceStateList, and raising
  ``DeviceStateChange`` only when they change;
* *uncached* ones (``Local/exten@context``): computed when a Local channel
  changes state or hangs up, raising ``DeviceStateChange`` every time, even
  when the value is the same (Asterisk publishes them uncached), and never
  listed.

A hint (``exten => 2000,hint,Custom:txami2000``) aggregates its devices' states;
an ``ExtensionStatus`` is raised when that aggregate changes.  Presence states
(``PRESENCE_STATE(CustomPresence:x)``) raise ``PresenceStateChange``.
"""

from __future__ import annotations

from txami.testing.pbx.channels import Channel
from txami.testing.pbx.core import EmitHook, PBXCore, operation
from txami.testing.timers import Timers

__all__ = ["DEVICE_STATES", "EXTENSION_STATES", "DevicesMixin"]

#: Extension state numbers and texts (``ExtensionState`` and ``ExtensionStatus``).
EXTENSION_STATES = {
    -2: "Removed",
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

#: ``DEVICE_STATE()`` value -> what ``EXTENSION_STATE()`` reads for a hint in that state.
_HINT_FUNCTION = {0: "NOT_INUSE", 1: "INUSE", 2: "BUSY", 4: "UNAVAILABLE", 8: "RINGING"}


class DevicesMixin(PBXCore):
    """Device states, hints and presence (see the module's docstring)."""

    def __init__(self, timers: Timers, emit: EmitHook | None = None) -> None:
        super().__init__(timers, emit)
        #: Cached device states by device name (``"Custom:foo"`` -> ``"INUSE"``).
        self.device_states: dict[str, str] = {}
        #: Hints: ``(context, exten)`` -> devices joined by ``&``.
        self.hints: dict[tuple[str, str], str] = {}
        #: Presence states: provider -> ``(state, subtype, message)``.
        self.presence_states: dict[str, tuple[str, str, str]] = {}

    # --- device states -----------------------------------------------------------

    @operation
    def set_device_state(self, device: str, state: str) -> None:
        """
        Set a cached device's state (``Custom:x`` devices are set this way):
        raises ``ExtensionStatus`` for every hint whose state changes, then
        ``DeviceStateChange``; nothing if the state is unchanged.
        """
        state = state.upper()
        if self.device_states.get(device) == state:
            return
        before = self._hint_states()
        self.device_states[device] = state
        self._hints_changed(before)
        self.emit("DeviceStateChange", [("Device", device), ("State", state)])
        self._device_state_changed(device, state)

    def device_state(self, device: str) -> str:
        """The state of ``device``: cached, or computed for Local and channel devices."""
        if device in self.device_states:
            return self.device_states[device]
        computed = self._computed_device_state(device)
        return computed if computed is not None else "UNKNOWN"

    def _computed_device_state(self, device: str) -> str | None:
        """The state of an uncached device (``Local/...``), or `None` if not one."""
        if device.lower().startswith("local/"):
            return self._local_device_state(device)
        return None

    def _local_device_state(self, device: str) -> str:
        """Asterisk's ``local_devicestate``: INUSE while a pair to the extension runs."""
        target = device.partition("/")[2]
        exten, _, context = target.partition("@")
        context = context.partition("/")[0]
        found = False
        for channel in self.channels.values():
            if channel.technology != "Local" or not channel.name.endswith(";1"):
                continue
            if channel.device.partition("/")[2] != f"{exten}@{context}":
                continue
            found = True
            peer = channel.peer
            if peer is not None and not peer.hungup and peer.in_pbx:
                return "INUSE"
        if found or self._extension_exists(context, exten):
            return "NOT_INUSE"
        return "INVALID"

    def _extension_exists(self, context: str, exten: str) -> bool:
        """Whether ``exten@context`` exists (the dialplan layer knows)."""
        return False

    def _device_state_changed(self, device: str, state: str) -> None:
        """A device's state was published (queue members follow their devices)."""

    def _publish_uncached(self, device: str, *, later: bool = False) -> None:
        """
        Publish an uncached device state: ``DeviceStateChange`` every time.
        ``later``: read the state once the current operation is done, as
        Asterisk's device state thread does after a hangup (so a whole call
        torn down at once reads as gone).
        """
        if later:
            self._soon(self._evaluate_uncached, device)
        else:
            self._evaluate_uncached(device)

    def _evaluate_uncached(self, device: str) -> None:
        before = self._hint_states()
        state = self.device_state(device)
        self._hints_changed(before)
        self.emit("DeviceStateChange", [("Device", device), ("State", state)])
        self._device_state_changed(device, state)

    def _channel_device_changed(self, channel: Channel) -> None:
        """A channel's device may have changed state (its state changed, or it hung up)."""
        if channel.technology == "Local":
            self._publish_uncached(channel.device, later=channel.hungup)
        elif channel.technology not in ("ConfBridge", "CBAnn", "Message"):
            self._update_endpoint_device(channel.device)

    def _update_endpoint_device(self, device: str) -> None:
        """A cached endpoint device (``PJSIP/100``): its state follows its channels."""
        states = [c.state for c in self.channels.values() if c.device == device and not c.hungup]
        if not states:
            state = "NOT_INUSE"
        elif any(s == 6 for s in states):
            state = "RINGINUSE" if any(s in (4, 5) for s in states) else "INUSE"
        elif any(s in (4, 5) for s in states):
            state = "RINGING"
        else:
            state = "INUSE"
        self.set_device_state(device, state)

    def _channel_state_changed(self, channel: Channel) -> None:
        super()._channel_state_changed(channel)
        self._channel_device_changed(channel)

    def _channel_destroyed(self, channel: Channel) -> None:
        super()._channel_destroyed(channel)
        self._channel_device_changed(channel)

    # --- hints -------------------------------------------------------------------

    def _hint_states(self) -> dict[tuple[str, str], int]:
        return {key: self.extension_state(*key)[1] for key in self.hints}

    def _hints_changed(self, before: dict[tuple[str, str], int]) -> None:
        for key in self.hints:
            if self.extension_state(*key)[1] != before.get(key):
                self.emit("ExtensionStatus", self.extension_status(*key))

    @operation
    def set_hint(self, context: str, exten: str, devices: str | None) -> None:
        """
        Add, change or remove (``devices`` `None`) the hint of ``exten@context``;
        raises ``ExtensionStatus`` (status -2, ``Removed``, for a removal).
        """
        key = (context, exten)
        if devices is None:
            hint = self.hints.pop(key, None)
            if hint is not None:
                self.emit(
                    "ExtensionStatus",
                    [
                        ("Exten", exten),
                        ("Context", context),
                        ("Hint", hint),
                        ("Status", "-2"),
                        ("StatusText", EXTENSION_STATES[-2]),
                    ],
                )
            return
        before = self.extension_state(context, exten)[1] if key in self.hints else None
        self.hints[key] = devices
        if self.extension_state(context, exten)[1] != before:
            self.emit("ExtensionStatus", self.extension_status(context, exten))

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
        states = [self.device_state(device) for device in hint.split("&")]
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

    # --- presence ----------------------------------------------------------------

    @operation
    def set_presence_state(
        self, provider: str, state: str, subtype: str = "", message: str = ""
    ) -> None:
        """Set a presence state (``CustomPresence:x``) and raise ``PresenceStateChange``."""
        self.presence_states[provider] = (state.lower(), subtype, message)
        self.emit(
            "PresenceStateChange",
            [
                ("Presentity", provider),
                ("Status", state.lower()),
                ("Subtype", subtype),
                ("Message", message),
            ],
        )

    def presence_state(self, provider: str) -> tuple[str, str, str]:
        """``(state, subtype, message)`` of a provider (``not_set`` if never set)."""
        return self.presence_states.get(provider, ("not_set", "", ""))

    # --- dialplan functions ------------------------------------------------------

    def _read_function(self, function: str, argument: str) -> str | None:
        if function == "DEVICE_STATE":
            return self.device_state(argument)
        if function == "EXTENSION_STATE":
            exten, _, context = argument.partition("@")
            status = self.extension_state(context or "default", exten)[1]
            return _HINT_FUNCTION.get(status, "UNKNOWN")
        if function == "PRESENCE_STATE":
            provider, _, field = argument.partition(",")
            state, subtype, message = self.presence_state(provider)
            what = field.partition(",")[0].strip().lower()
            return {"value": state, "subtype": subtype, "message": message}.get(what, "")
        return super()._read_function(function, argument)

    def _write_function(self, function: str, argument: str, value: str) -> bool:
        if function == "DEVICE_STATE":
            self.set_device_state(argument, value)
            return True
        if function == "PRESENCE_STATE":
            state, _, rest = value.partition(",")
            subtype, _, message = rest.partition(",")
            self.set_presence_state(argument, state, subtype, message)
            return True
        return super()._write_function(function, argument, value)
