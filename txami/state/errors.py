"""
Why a `when_*()` Deferred of the state model failed: the awaited thing can no
longer happen.
"""

from __future__ import annotations

from txami.errors import TxamiError

__all__ = ["ObjectGone", "StateStopped"]


class ObjectGone(TxamiError):
    """
    The object went away before the awaited thing happened: a channel hung up
    before it answered, or left no bridge; a call ended.

    ``what`` names the object (``"channel 1700000000.12"``) and ``reason`` is
    the reason its listeners were given (``"hangup"``, ``"asterisk restarted"``, ...).
    """

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(what, reason)

    def __str__(self) -> str:
        return f"{self.what} is gone ({self.reason})"


class StateStopped(TxamiError):
    """The `PBXState` was stopped (or its connection ended for good) before it happened."""

    def __init__(self, reason: str = "the state model was stopped") -> None:
        self.reason = reason
        super().__init__(reason)

    def __str__(self) -> str:
        return self.reason
