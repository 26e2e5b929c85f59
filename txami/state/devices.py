"""
`DeviceTracker`: device states, hints and presence states from their events
and lists.

Events: ``DeviceStateChange`` (a device, e.g. ``Custom:txami2000`` or
``PJSIP/100``), ``ExtensionStatus`` (a hint's aggregate state),
``PresenceStateChange`` (a presentity) and ``PresenceStatus`` (a hint's
presence).  The lists ``DeviceStateList``, ``ExtensionStateList`` and
``PresenceStateList`` (Asterisk 13+) use the same event names for their rows.

``DeviceStateList`` lists only the states Asterisk caches (custom devices,
queues, conferences, mailboxes), not every device that ever sent an event,
so a device is never dropped for being absent from it; a hint absent from
``ExtensionStateList`` was removed, and is reported with status -2.
"""

from __future__ import annotations

from collections.abc import Callable

from txami.message import Message
from txami.state.device import REMOVED, DeviceState, Hint, PresenceState
from txami.state.fields import header, intern_value, text_of, to_int
from txami.state.store import Store

__all__ = ["DeviceTracker"]


class DeviceTracker:
    """Applies device, hint and presence events and rows to a `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def handlers(self) -> dict[str, Callable[[Message], None]]:
        """Event name -> handler, for registration."""
        return {
            "DeviceStateChange": self.on_device,
            "ExtensionStatus": self.on_extension,
            "PresenceStateChange": self.on_presence,
            "PresenceStatus": self.on_hint_presence,
        }

    # --- applying ----------------------------------------------------------------------------

    def device(self, message: Message, text: str) -> DeviceState | None:
        """Apply a ``DeviceStateChange`` event or row."""
        name = header(message, "Device", text)
        state = header(message, "State", text)
        if not name or state is None:
            return None
        devices = self.store.devices
        device = devices.get(name)
        if device is None:
            device = devices[name] = DeviceState(name, intern_value(state))
        elif device.state == state:
            return device
        else:
            device.state = intern_value(state)
        self.store.outbox.note("device_changed", device)
        return device

    def hint(self, message: Message, text: str) -> Hint | None:
        """Apply an ``ExtensionStatus`` event or row (a removed hint is dropped)."""
        exten = header(message, "Exten", text)
        context = header(message, "Context", text)
        if exten is None or context is None:
            return None
        hints = self.store.hints
        key = (exten, context)
        hint = hints.get(key)
        status = to_int(header(message, "Status", text) or "", -1)
        if hint is None:
            if status < 0:
                return None
            hint = hints[key] = Hint(exten, context)
        changed = False
        for attribute, value in (
            ("hint", header(message, "Hint", text)),
            ("status_text", header(message, "StatusText", text)),
        ):
            if value is not None and value != getattr(hint, attribute):
                setattr(hint, attribute, value)
                changed = True
        if status != hint.status:
            hint.status = status
            changed = True
        if status < 0:
            del hints[key]
        if changed or status < 0:
            self.store.outbox.note("hint_changed", hint)
        return hint

    def remove_hint(self, hint: Hint) -> None:
        """Report a hint gone (status -2) and drop it."""
        if self.store.hints.pop((hint.exten, hint.context), None) is hint:
            hint.status = REMOVED
            hint.status_text = "Removed"
            self.store.outbox.note("hint_changed", hint)

    def presence(self, message: Message, text: str) -> PresenceState | None:
        """Apply a ``PresenceStateChange`` event or row."""
        name = header(message, "Presentity", text)
        if not name:
            return None
        presences = self.store.presences
        presence = presences.get(name)
        if presence is None:
            presence = presences[name] = PresenceState(name)
            changed = True
        else:
            changed = False
        for attribute, value in (
            ("status", header(message, "Status", text)),
            ("subtype", header(message, "Subtype", text)),
            ("message", header(message, "Message", text)),
        ):
            if value is not None and value != getattr(presence, attribute):
                setattr(presence, attribute, value)
                changed = True
        if changed:
            self.store.outbox.note("presence_changed", presence)
        return presence

    # --- events ------------------------------------------------------------------------------

    def on_device(self, event: Message) -> None:
        self.device(event, text_of(event))
        self.store.outbox.flush()

    def on_extension(self, event: Message) -> None:
        self.hint(event, text_of(event))
        self.store.outbox.flush()

    def on_presence(self, event: Message) -> None:
        self.presence(event, text_of(event))
        self.store.outbox.flush()

    def on_hint_presence(self, event: Message) -> None:
        text = text_of(event)
        exten = header(event, "Exten", text)
        context = header(event, "Context", text)
        hint = self.store.hints.get((exten or "", context or ""))
        if hint is None:
            return
        changed = False
        for attribute, name in (
            ("presence_status", "Status"),
            ("presence_subtype", "Subtype"),
            ("presence_message", "Message"),
        ):
            value = header(event, name, text)
            if value is not None and value != getattr(hint, attribute):
                setattr(hint, attribute, value)
                changed = True
        if changed:
            self.store.outbox.note("hint_changed", hint)
            self.store.outbox.flush()

    # --- list rows ---------------------------------------------------------------------------

    def apply_hints(self, rows: list[Message]) -> None:
        """Make the hints what ``ExtensionStateList`` says (absent ones are removed)."""
        listed = set()
        for row in rows:
            hint = self.hint(row, text_of(row))
            if hint is not None:
                listed.add((hint.exten, hint.context))
        for key, hint in list(self.store.hints.items()):
            if key not in listed:
                self.remove_hint(hint)
