"""
Device states, hints and presence states: `DeviceState`, `Hint` and
`PresenceState` (kept by `txami.state.devices`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["REMOVED", "DeviceState", "Hint", "PresenceState"]

#: Hint status numbers: -2 removed, -1 deactivated (the hint is gone or its
#: extension was removed), then bits: 1 in use, 2 busy, 4 unavailable,
#: 8 ringing, 16 on hold.
REMOVED = -2


class DeviceState:
    """A device and its state name (``NOT_INUSE``, ``INUSE``, ``RINGING``, ...)."""

    __slots__ = ("device", "state")

    def __init__(self, device: str, state: str) -> None:
        self.device = device
        self.state = state

    def __repr__(self) -> str:
        return f"<DeviceState {self.device!r} {self.state}>"

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "state": self.state}


class Hint:
    """
    A hint, by ``(exten, context)``: the device expression ``hint``, its
    aggregate ``status`` (an int: 0 idle, 1 in use, 2 busy, 4 unavailable, 8
    ringing, 16 on hold, sums of those; -1 deactivated and -2 removed mean the
    hint is gone) and ``status_text``; and its presence, if the hint has one.
    """

    __slots__ = (
        "context",
        "exten",
        "hint",
        "presence_message",
        "presence_status",
        "presence_subtype",
        "status",
        "status_text",
    )

    def __init__(self, exten: str, context: str) -> None:
        self.exten = exten
        self.context = context
        self.hint = ""
        self.status = -1
        self.status_text = ""
        self.presence_status = ""
        self.presence_subtype = ""
        self.presence_message = ""

    def __repr__(self) -> str:
        return f"<Hint {self.exten}@{self.context} {self.status_text}>"

    @property
    def key(self) -> str:
        """``exten@context``: the hint's key in the snapshot."""
        return f"{self.exten}@{self.context}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "exten": self.exten,
            "context": self.context,
            "hint": self.hint,
            "status": self.status,
            "status_text": self.status_text,
            "presence_status": self.presence_status,
            "presence_subtype": self.presence_subtype,
            "presence_message": self.presence_message,
        }


class PresenceState:
    """A presentity (``CustomPresence:alice``) and its ``status``, ``subtype`` and ``message``."""

    __slots__ = ("message", "presentity", "status", "subtype")

    def __init__(self, presentity: str) -> None:
        self.presentity = presentity
        self.status = ""
        self.subtype = ""
        self.message = ""

    def __repr__(self) -> str:
        return f"<PresenceState {self.presentity!r} {self.status}>"

    def as_dict(self) -> dict[str, Any]:
        return {
            "presentity": self.presentity,
            "status": self.status,
            "subtype": self.subtype,
            "message": self.message,
        }
