"""
The exceptions an AGI command's Deferred fails with.

`AGIError` is Asterisk refusing a command (``510`` unknown, ``520`` wrong
arguments, with its usage text); `AGIHangup` is the channel gone (the
``HANGUP`` notification, ``511``, or the end of an AsyncAGI session), which
fails the command and every later one of the session at once;
`AGIConnectionLost` is the connection closing while the command waited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from txami.errors import ConnectionLost, TxamiError

if TYPE_CHECKING:
    from twisted.python.failure import Failure

__all__ = ["AGIConnectionLost", "AGIError", "AGIHangup"]


class AGIError(TxamiError):
    """
    Asterisk answered an AGI command with an error code instead of ``200``.

    ``command`` is the command line sent, ``code`` the reply's code (``510``
    invalid or unknown command, ``520`` invalid syntax), ``text`` the reply's
    first line after the code, and ``usage`` the usage text a ``520-`` reply
    carries between its first and last line (``""`` if none).
    """

    def __init__(self, command: str, code: int, text: str, usage: str = "") -> None:
        self.command = command
        self.code = code
        self.text = text
        self.usage = usage
        super().__init__(command, code, text)

    def __str__(self) -> str:
        return f"AGI command {self.command!r} failed: {self.code} {self.text}"


class AGIHangup(TxamiError):
    """
    The channel hung up, or left AGI: ``command`` (the command line) cannot run.

    ``reason`` says how txami learnt it: Asterisk's ``HANGUP`` notification,
    its ``511`` reply, the ``AsyncAGIEnd`` event, or AMI refusing the ``AGI``
    action for a channel that is gone.  Once a session has seen one, every
    later command of it fails at once with this error, without being sent.
    """

    def __init__(self, command: str, reason: str) -> None:
        self.command = command
        self.reason = reason
        super().__init__(command, reason)

    def __str__(self) -> str:
        return f"AGI command {self.command!r} cannot run: the channel hung up ({self.reason})"


class AGIConnectionLost(ConnectionLost):
    """
    The connection that carries the session closed while ``command`` waited
    for its answer (or before it could be sent).  Whether Asterisk ran it is
    unknown.  ``reason`` is the transport's Failure, if there was one.
    """

    def __init__(self, command: str, reason: Failure | None = None) -> None:
        self.command = command
        super().__init__(command, "", reason)

    def __str__(self) -> str:
        why = f": {self.reason.getErrorMessage()}" if self.reason is not None else ""
        return f"connection lost while AGI command {self.command!r} was pending{why}"
