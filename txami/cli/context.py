"""
`Context`: what a running ``txami`` command works with.

It holds the reactor, the settings, the output, and the session once
opened; it hears Ctrl-C (SIGINT) and SIGTERM, and `close` logs off.  A
command waits through `Context.wait`, which gives up with `Interrupted`
when a signal arrives, so every command ends cleanly however it is stopped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from txami.cli.exitcodes import Interrupted
from txami.cli.options import Settings
from txami.cli.output import Output
from txami.cli.session import open_session
from txami.factory import AMIFactory
from txami.protocol import AMIProtocol

__all__ = ["Context"]

_T = TypeVar("_T")


class Context:
    """The reactor, settings, output and session of one command run."""

    def __init__(
        self,
        reactor: Any,
        settings: Settings,
        out: Output,
        options: Any,
        stderr: TextIO | None = None,
    ) -> None:
        self.reactor = reactor
        self.settings = settings
        self.out = out
        self._stderr = stderr
        #: The command's own parsed options.
        self.options = options
        #: The session, once `connect` succeeded.
        self.factory: AMIFactory | None = None
        self._protocol: AMIProtocol | None = None
        #: The signal that interrupted the command, if one did.
        self.interrupted_by: int | None = None
        self._on_interrupt: list[Callable[[int], None]] = []

    # --- the session ---------------------------------------------------------------------------

    def connect(self, *, events: str = "off", filters: Sequence[str] = ()) -> Deferred[AMIFactory]:
        """Open the session (see `open_session`); `Interrupted` if a signal comes first."""

        def opened(factory: AMIFactory) -> AMIFactory:
            self.factory = factory
            self._protocol = factory.protocol_instance
            return factory

        opening = open_session(self.reactor, self.settings, events=events, filters=filters)
        return self.wait(opening.addCallback(opened))

    def close(self) -> Deferred[None]:
        """Log off and close the session, if there is one; fires once it is gone."""
        factory = self.factory
        if factory is None:
            return succeed(None)
        return factory.stop()

    def note(self, message: str) -> None:
        """Write ``txami: note: MESSAGE`` to stderr (something the output does not say)."""
        stderr = self._stderr if self._stderr is not None else sys.stderr
        stderr.write(f"txami: note: {message}\n")
        stderr.flush()

    # --- signals -------------------------------------------------------------------------------

    def interrupt(self, signal_number: int) -> None:
        """A signal arrived: end every `wait` with `Interrupted`; a second one aborts at once."""
        if self.interrupted_by is not None:
            if self._protocol is not None:
                self._protocol.abort()
            return
        self.interrupted_by = signal_number
        waiting, self._on_interrupt = self._on_interrupt, []
        for callback in waiting:
            callback(signal_number)

    def wait(self, waited: Deferred[_T]) -> Deferred[_T]:
        """
        ``waited``'s result; but if a signal arrives first, `Interrupted` (and
        ``waited`` is cancelled).
        """
        result: Deferred[_T] = Deferred()
        if self.interrupted_by is not None:
            waited.cancel()
            waited.addErrback(lambda _: None)
            result.errback(Interrupted(self.interrupted_by))
            return result

        def on_interrupt(signal_number: int) -> None:
            if not result.called:
                result.errback(Interrupted(signal_number))
                waited.cancel()

        def done(value: _T | Failure) -> None:
            if on_interrupt in self._on_interrupt:
                self._on_interrupt.remove(on_interrupt)
            if not result.called:
                if isinstance(value, Failure):
                    result.errback(value)
                else:
                    result.callback(value)

        self._on_interrupt.append(on_interrupt)
        waited.addBoth(done)
        return result
