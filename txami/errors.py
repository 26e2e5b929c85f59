"""
The exceptions txami delivers, always as the Failure of a Deferred it handed out.

Each carries the facts as fields, so callers can `trap` a class and read what
happened without parsing text.  None of them ever holds a ``Secret`` or
``Key`` value: the response messages they carry redact both in their repr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twisted.python.failure import Failure

    from txami.message import Message

__all__ = [
    "AMIError",
    "ActionTimeout",
    "AuthenticationError",
    "ConnectionLost",
    "NotConnected",
    "OriginateError",
    "ProtocolError",
    "TxamiError",
]


class TxamiError(Exception):
    """The base of every txami exception."""


class AMIError(TxamiError):
    """
    Asterisk answered an action with ``Response: Error`` (or another failure).

    ``action`` is the action's name, ``message`` the server's ``Message``
    header (``""`` if it sent none) and ``response`` the whole response.
    """

    def __init__(self, action: str, response: Message) -> None:
        self.action = action
        self.response = response
        self.message: str = response.get("Message", "") or ""
        super().__init__(action, self.message)

    @property
    def output(self) -> list[str]:
        """The ``Output`` lines of a failed ``Command`` (empty for other actions)."""
        return self.response.getall("Output")

    def __str__(self) -> str:
        text = f"{self.action} failed: {self.message or self.response.name}"
        output = self.output
        if output:
            text += f" ({output[0]})"
        return text


class AuthenticationError(AMIError):
    """The server refused ``Login`` (a wrong secret, key or user name)."""

    def __init__(self, action: str, response: Message, username: str = "") -> None:
        self.username = username
        super().__init__(action, response)

    def __str__(self) -> str:
        return f"login as {self.username!r} refused: {self.message}"


class OriginateError(AMIError):
    """
    An asynchronous ``Originate`` ended without success.

    ``response`` is the ``OriginateResponse`` event; ``reason`` its numeric
    ``Reason`` (Asterisk's control frame code: 0 no such extension or number,
    1 no answer, 3 ringing then timeout, 5 busy, 8 congestion), or `None`.
    """

    def __init__(self, action: str, response: Message) -> None:
        super().__init__(action, response)
        raw = response.get("Reason")
        # isdecimal, not isdigit: int() refuses digits such as "²" that isdigit accepts,
        # and nothing the server sends may raise here (this runs inside dataReceived).
        self.reason: int | None = int(raw) if raw is not None and raw.isdecimal() else None
        self.message = response.get("Response", "") or ""

    def __str__(self) -> str:
        return (
            f"{self.action} of {self.response.get('Channel')!r} ended with "
            f"{self.message!r} (reason {self.reason})"
        )


class ActionTimeout(TxamiError):
    """No complete answer to the action arrived within ``timeout`` seconds."""

    def __init__(self, action: str, action_id: str, timeout: float) -> None:
        self.action = action
        self.action_id = action_id
        self.timeout = timeout
        super().__init__(action, action_id, timeout)

    def __str__(self) -> str:
        return f"{self.action} (ActionID {self.action_id}) got no answer within {self.timeout:g} s"


class ConnectionLost(TxamiError):
    """
    The connection closed while the action was pending.

    The action had been sent, so the server may or may not have carried it
    out; txami never sends it again by itself.  ``reason`` is the Failure the
    transport reported.
    """

    def __init__(self, action: str, action_id: str, reason: Failure | None = None) -> None:
        self.action = action
        self.action_id = action_id
        self.reason = reason
        super().__init__(action, action_id)

    def __str__(self) -> str:
        why = f": {self.reason.getErrorMessage()}" if self.reason is not None else ""
        return (
            f"connection lost while {self.action} (ActionID {self.action_id}) was pending; "
            f"it was sent and its outcome is unknown{why}"
        )


class NotConnected(TxamiError):
    """An action was requested while there was no connection to send it on."""

    def __init__(self, action: str, reason: str = "not connected") -> None:
        self.action = action
        self.reason = reason
        super().__init__(action, reason)

    def __str__(self) -> str:
        return f"cannot send {self.action}: {self.reason}"


class ProtocolError(TxamiError):
    """The server sent something txami will not accept (too large, too many headers)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)

    def __str__(self) -> str:
        return self.reason
