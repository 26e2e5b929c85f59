"""
AGI handlers: the user's function that drives one call, and running it safely.

A handler is called with the session (`FastAGIProtocol` or `AsyncAGI`, both
`AGICommands`) and may return nothing, a Deferred, or a coroutine (an
``async def`` handler).  The session ends when that completes: FastAGI closes
the connection, AsyncAGI sends ``ASYNCAGI BREAK``; either way the channel
carries on in the dialplan.  A handler that raises or fails is logged (one that
ends with `AGIHangup`, the caller hanging up, without a traceback).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from txami.agi.commands import AGICommands
from txami.agi.errors import AGIHangup

__all__ = ["AGIHandler", "run_handler"]

#: A handler: ``handler(agi)``, returning None, a Deferred or a coroutine.
AGIHandler = Callable[[Any], Any]

_log = Logger(namespace="txami.agi")


def run_handler(handler: AGIHandler, agi: AGICommands) -> Deferred[None]:
    """
    Call ``handler(agi)``; a Deferred that fires with `None` once the handler
    is done.  It never fails: a handler's exception is logged with the channel.
    """
    try:
        result = handler(agi)
    except Exception:
        done: Deferred[Any] = fail()
    else:
        if inspect.iscoroutine(result):
            done = Deferred.fromCoroutine(result)
        elif isinstance(result, Deferred):
            done = result
        else:
            done = succeed(None)

    def finished(outcome: object) -> None:
        if not isinstance(outcome, Failure):
            return
        if isinstance(outcome.value, AGIHangup):
            # The caller hanging up mid-script is how most calls end: no traceback.
            _log.info(
                "AGI handler {handler!r} ended on channel {channel}: {error}",
                handler=handler,
                channel=agi.env.channel,
                error=outcome.value,
            )
        else:
            _log.failure(
                "AGI handler {handler!r} failed on channel {channel}",
                outcome,
                handler=handler,
                channel=agi.env.channel,
            )

    return done.addBoth(finished)
