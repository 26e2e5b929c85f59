"""
Live views of the PBX (``txami calls``, ``txami queues``): a `PBXState`
followed on the command's session, shown three ways.

- On a terminal: redrawn in place (`txami.cli.screen`) whenever the model
  changes, at most ``--rate`` times a second, and once a second for the
  durations; until Ctrl-C, SIGTERM or ``q`` (exit 0).
- Piped (or with ``--json``): a snapshot at the start and after each change
  (at most ``--rate`` a second), each a timestamp line, the view and its
  summary, then a blank line; or one JSON line each.
- ``--once``: one snapshot (text or JSON), then exit.

A view (`View`) says what to show; it is also the model's listener, and
calls `View.changed` for the changes it shows.  The connection is opened
with every event class, the model syncs, and a lost connection ends the
command with exit code 3; no complete sync within ``--timeout`` is 4.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any, ClassVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.python import usage
from twisted.python.failure import Failure

from txami.cli.context import Context
from txami.cli.exitcodes import CLIError, ExitCode, Interrupted
from txami.cli.options import CommandOptions
from txami.cli.screen import Screen
from txami.cli.session import describe_reason
from txami.cli.table import clean, cut, display_width
from txami.jsonform import dumps
from txami.state import PBXState, StateListenerMixin, StateStopped

__all__ = ["DEFAULT_RATE", "Throttle", "View", "ViewOptions", "run_view"]

#: Redraws (or snapshots) a second at most, unless ``--rate``.
DEFAULT_RATE = 4.0
#: Seconds the first sync may take beyond ``--timeout`` (its lists time out by themselves).
_SYNC_GRACE = 1.0


class ViewOptions(CommandOptions):
    """The options every live view takes."""

    optFlags: ClassVar[list[list[str | None]]] = [
        ["once", None, "Print one snapshot and exit."],
        ["json", None, "Print snapshots as JSON lines (the PBXState snapshot's parts)."],
    ]
    optParameters: ClassVar[list[list[str | None]]] = [
        [
            "width",
            None,
            None,
            "Fit the tables to N columns (default: the terminal's width; "
            "no limit when piped; 0: no limit).",
        ],
        ["rate", None, None, f"At most N updates a second (default {DEFAULT_RATE:g})."],
    ]

    def postOptions(self) -> None:
        """Check --width and --rate."""
        raw = self["width"]
        if raw is not None:
            if not raw.isdecimal() or not (int(raw) == 0 or 20 <= int(raw) <= 10000):
                raise usage.UsageError(f"--width must be 0 or a number from 20 up, not {raw!r}")
            self["width"] = int(raw)
        raw = self["rate"]
        if raw is None:
            self["rate"] = DEFAULT_RATE
        else:
            try:
                rate = float(raw)
            except ValueError:
                rate = 0.0
            if not 0.01 <= rate <= 100:
                raise usage.UsageError(f"--rate must be a number from 0.01 to 100, not {raw!r}")
            self["rate"] = rate


class View(StateListenerMixin):
    """
    What a live command shows.  Subclasses set `name`, `empty` and `topics`,
    write `body`, `summary` and `json`, and call `changed` from the listener
    methods whose changes they show.
    """

    #: The command's name (``calls``).
    name = ""
    #: What the view says when `body` has nothing to show.
    empty = ""
    #: The `PBXState.limits` topics that matter here -> what they take away, for a note.
    topics: ClassVar[Mapping[str, str]] = {}

    def __init__(self, options: Any) -> None:
        self.options = options
        #: The model, once the view runs.
        self.state: PBXState | None = None
        #: Called when something shown changed (set by `run_view`).
        self.on_change: Callable[[], None] = lambda: None

    def changed(self) -> None:
        """Something shown changed: redraw (soon)."""
        self.on_change()

    def check(self, state: PBXState) -> None:
        """After the first sync: raise `CLIError` if what was asked for is not there."""

    def body(self, state: PBXState, now: float, width: int | None) -> list[str]:
        """The lines of the view at ``now``, fitted to ``width`` columns (`None`: no limit)."""
        raise NotImplementedError

    def summary(self, state: PBXState) -> str:
        """One line: how much there is (``2 calls, 5 channels``)."""
        raise NotImplementedError

    def json(self, state: PBXState) -> dict[str, Any]:
        """The view as JSON-able data (parts of `PBXState.snapshot`)."""
        raise NotImplementedError

    def notes(self, state: PBXState) -> list[str]:
        """What this session cannot follow, for the topics of this view."""
        limits = state.limits
        return [
            f"cannot follow {what}: {clean(limits[topic])}"
            for topic, what in self.topics.items()
            if topic in limits
        ]


class Throttle:
    """
    Calls ``action`` after `changed`, at most ``rate`` times a second: the
    first change at once, the next ones gathered until the interval has
    passed.  A failure of ``action`` goes to ``failed``.
    """

    def __init__(
        self,
        clock: Any,
        rate: float,
        action: Callable[[], None],
        failed: Callable[[Failure], None],
    ) -> None:
        self._clock = clock
        self._interval = 1.0 / rate
        self._action = action
        self._failed = failed
        self._last = float("-inf")
        self._pending: IDelayedCall | None = None

    def changed(self) -> None:
        """Something changed: run the action now, or when the interval allows."""
        if self._pending is not None:
            return
        delay = max(0.0, self._last + self._interval - self._clock.seconds())
        self._pending = self._clock.callLater(delay, self._run)

    def run_now(self) -> None:
        """Run the action now (a pending run is folded into this one)."""
        self.cancel()
        self._run()

    def _run(self) -> None:
        self._pending = None
        self._last = self._clock.seconds()
        try:
            self._action()
        except Exception:
            self._failed(Failure())  # type: ignore[no-untyped-call]

    def cancel(self) -> None:
        """Forget a pending run."""
        pending, self._pending = self._pending, None
        if pending is not None and pending.active():
            pending.cancel()


class _Ending:
    """The connection listener of a view: a lost connection ends it (exit 3)."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.finished: Deferred[None] = Deferred()
        self.reason: Failure | None = None

    def lost(self, reason: Failure | None) -> CLIError:
        where = self.context.settings.where
        why = describe_reason(reason) if reason is not None else "closed"
        return CLIError(ExitCode.CONNECT, f"the connection to {where} was lost: {why}", reason)

    def disconnected(self, reason: Failure) -> None:
        self.reason = reason
        self.fail(Failure(self.lost(reason)))  # type: ignore[no-untyped-call]

    def fail(self, failure: Failure) -> None:
        if not self.finished.called:
            self.finished.errback(failure)

    def done(self) -> None:
        if not self.finished.called:
            self.finished.callback(None)


async def _first_sync(context: Context, state: PBXState, ending: _Ending) -> None:
    """Start the model; `CLIError` 3 if the connection goes first, 4 if the sync takes too long."""
    timeout = context.settings.timeout
    started = state.start()

    def too_late() -> None:
        started.cancel()

    deadline = context.reactor.callLater(timeout + _SYNC_GRACE, too_late)
    try:
        await context.wait(started)
    except StateStopped:
        raise ending.lost(ending.reason) from None
    except Exception as error:
        if not deadline.active() and not isinstance(error, Interrupted):
            raise CLIError(
                ExitCode.TIMEOUT,
                f"connected to {context.settings.where}, but what it lists "
                f"(channels, bridges, queues) was not complete within {timeout:g} s",
            ) from None
        raise
    finally:
        if deadline.active():
            deadline.cancel()


def _stamp(now: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))


async def run_view(context: Context, view: View) -> int:
    """Open the session, follow the model, show ``view`` as the options say; the exit code."""
    options = context.options
    factory = await context.connect(events="on")
    state = PBXState(factory)
    view.state = state
    ending = _Ending(context)
    factory.add_connection_listener(ending)
    state.add_listener(view)
    try:
        await _first_sync(context, state, ending)
        view.check(state)
        stream = context.out.stream
        width: int | None = options["width"]
        terminal = _isatty(stream) and not options["json"]
        if width is None and terminal:
            width = _columns(stream)
        if options["once"]:
            _print_notes(context, view, state)
            _print_snapshot(context, view, state, width, stamp=False)
            return 0
        with suppress(Interrupted):  # Ctrl-C is how a live view normally ends
            if terminal:
                await _run_screen(context, view, state, ending)
            else:
                await _run_stream(context, view, state, ending, width)
        return 0
    finally:
        state.stop()
        ending.finished.addErrback(lambda _: None)  # a loss nobody waited for any more


def _print_notes(context: Context, view: View, state: PBXState) -> None:
    """The view's notes, on stderr (the output stays the snapshot alone)."""
    for note in view.notes(state):
        context.note(note)


def _print_snapshot(
    context: Context, view: View, state: PBXState, width: int | None, *, stamp: bool
) -> None:
    if context.options["json"]:
        context.out.line(dumps(view.json(state)))
        return
    now = state.clock.seconds()
    lines = [_stamp(now)] if stamp else []
    body = view.body(state, now, width)
    lines.extend(body if width is None else (cut(line, width) for line in body))
    if body:
        lines.append("")
    lines.append(view.summary(state))
    if stamp:
        lines.append("")
    context.out.lines(lines)


async def _run_stream(
    context: Context, view: View, state: PBXState, ending: _Ending, width: int | None
) -> None:
    """A snapshot now and after each change, until the end."""
    _print_notes(context, view, state)

    def show() -> None:
        _print_snapshot(context, view, state, width, stamp=True)

    throttle = Throttle(state.clock, context.options["rate"], show, ending.fail)
    view.on_change = throttle.changed
    try:
        throttle.run_now()
        await context.wait(ending.finished)
    finally:
        view.on_change = lambda: None
        throttle.cancel()


async def _run_screen(context: Context, view: View, state: PBXState, ending: _Ending) -> None:
    """Redraw the view in place on the terminal until the end; the terminal is restored."""
    clock = state.clock
    width_option: int | None = context.options["width"]
    where = context.settings.where

    def frame(columns: int) -> list[str]:
        now = clock.seconds()
        width = columns if width_option is None else (width_option or None)
        left = f"txami {view.name}  {where}"
        right = f"{view.summary(state)}  {time.strftime('%H:%M:%S', time.localtime(now))}"
        room = columns - display_width(left) - display_width(right)
        title = left + " " * room + right if room >= 2 else cut(left + "  " + right, columns)
        body = view.body(state, now, width) or [view.empty]
        notes = [f"! {note}" for note in view.notes(state)]
        return [title, "", *body, *(["", *notes] if notes else [])]

    screen = Screen(context.reactor, context.out.stream, frame, on_quit=ending.done)
    throttle = Throttle(clock, context.options["rate"], screen.draw, ending.fail)
    ticking: list[IDelayedCall] = []

    def tick() -> None:
        ticking.clear()
        throttle.run_now()
        now = clock.seconds()
        ticking.append(clock.callLater(1.0 - now % 1.0 + 0.001, tick))

    view.on_change = throttle.changed
    screen.enter()
    try:
        tick()
        await context.wait(ending.finished)
    finally:
        view.on_change = lambda: None
        throttle.cancel()
        for call in ticking:
            if call.active():
                call.cancel()
        screen.leave()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _columns(stream: Any) -> int | None:
    try:
        return os.get_terminal_size(stream.fileno()).columns or None
    except (AttributeError, ValueError, OSError):
        return None
