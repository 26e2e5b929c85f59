"""
The exit codes of ``txami`` and the error that carries one to the exit.

Scripts rely on these numbers, so they never change meaning:

====  ==================================================================
0     success (and a tail ended by Ctrl-C, ``--count`` or a closed pipe)
1     the action failed: Asterisk answered with an error
2     usage: a bad command line, configuration file or secret file
3     cannot connect or log in, or the connection was lost
4     timeout: connected, but no answer within ``--timeout``
130   interrupted (Ctrl-C) before a one-shot command finished
====  ==================================================================

A command reports a failure by raising `CLIError`: one line for stderr and
its code.  `failure_exit` turns the exceptions txami delivers into one.
"""

from __future__ import annotations

from enum import IntEnum

from twisted.python.failure import Failure

from txami.errors import ActionTimeout, AMIError, AuthenticationError, ConnectionLost, NotConnected

__all__ = ["CLIError", "ExitCode", "Interrupted", "failure_exit"]


class ExitCode(IntEnum):
    """What the exit status of ``txami`` means."""

    OK = 0
    ACTION_FAILED = 1
    USAGE = 2
    CONNECT = 3
    TIMEOUT = 4
    INTERRUPTED = 130


class CLIError(Exception):
    """
    A command cannot go on: ``message`` (one line, or several for a
    configuration file's problems) goes to stderr and ``code`` is the exit
    status.  ``failure`` is the Failure behind it, if any, whose traceback
    ``--debug`` shows.
    """

    def __init__(self, code: ExitCode, message: str, failure: Failure | None = None) -> None:
        self.code = code
        self.message = message
        self.failure = failure
        super().__init__(code, message)

    def __str__(self) -> str:
        return self.message


class Interrupted(Exception):
    """Ctrl-C (SIGINT) or SIGTERM arrived while a command was waiting."""

    def __init__(self, signal_number: int) -> None:
        self.signal_number = signal_number
        super().__init__(signal_number)


def _command_failure(error: AMIError) -> str:
    """A failed ``Command``: the CLI's own complaint (its output), else the AMI message."""
    output = [line for line in error.output if line.strip()]
    if output:
        return "\n".join(output)
    return f"{error.action} failed: {error.message or error.response.name}"


def failure_exit(failure: Failure, where: str) -> CLIError:
    """
    The `CLIError` for a failed action on the session to ``where``
    (``host:port``): `AMIError` is 1 with the server's message,
    `ActionTimeout` 4, a lost or missing connection 3.  Anything else is
    unexpected and re-raised.
    """
    error = failure.value
    if isinstance(error, AuthenticationError):
        return CLIError(ExitCode.CONNECT, f"{where}: {error}", failure)
    if isinstance(error, AMIError):
        if error.action.lower() == "command":
            return CLIError(ExitCode.ACTION_FAILED, _command_failure(error), failure)
        message = error.message or error.response.name or "error"
        return CLIError(ExitCode.ACTION_FAILED, f"{error.action} failed: {message}", failure)
    if isinstance(error, ActionTimeout):
        return CLIError(
            ExitCode.TIMEOUT,
            f"{error.action}: no answer from {where} within {error.timeout:g} s",
            failure,
        )
    if isinstance(error, ConnectionLost):
        why = error.reason.getErrorMessage() if error.reason is not None else "closed"
        return CLIError(
            ExitCode.CONNECT,
            f"the connection to {where} was lost while {error.action} was pending "
            f"(it was sent; its outcome is unknown): {why}",
            failure,
        )
    if isinstance(error, NotConnected):
        return CLIError(ExitCode.CONNECT, f"{where}: {error}", failure)
    failure.raiseException()
    raise AssertionError("unreachable")  # pragma: no cover
