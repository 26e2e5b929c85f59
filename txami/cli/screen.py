"""
`Screen`: a view redrawn in place on a terminal, with the standard library only.

`Screen.enter` switches to the terminal's alternate screen (as ``top`` and
``less`` do, so the shell's screen comes back untouched), hides the cursor
and, when standard input is that terminal, stops it echoing keys and reads
them one at a time (``q`` quits, Ctrl-L redraws); Ctrl-C still sends SIGINT.
Each `Screen.draw` homes the cursor and writes the whole frame in one write,
every line cut to the width and cleared to its end, and the rest of the
screen cleared: no line is blanked before it is rewritten, so nothing
flickers, and a frame equal to the last is not written at all.  A resize
(SIGWINCH) redraws; Ctrl-Z (SIGTSTP) restores the terminal before the
process stops, and the view comes back on ``fg``.

`Screen.leave` puts everything back; it is safe to call twice, and it also
runs at interpreter exit should a path forget it.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import IO, Any

from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

from txami.cli.output import OutputClosed
from txami.cli.table import ELLIPSIS, cut

__all__ = ["ENTER", "LEAVE", "Screen", "compose"]

#: Alternate screen on, cursor hidden, cursor home, screen cleared.
ENTER = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J"
#: Cursor shown, alternate screen off (the shell's screen comes back).
LEAVE = "\x1b[?25h\x1b[?1049l"
_HOME = "\x1b[H"
_CLEAR_LINE = "\x1b[K"
_CLEAR_BELOW = "\x1b[J"
_CLEAR_ALL = "\x1b[2J"


def compose(lines: list[str], columns: int, rows: int) -> str:
    """
    The frame that shows ``lines`` (already `clean`) on a ``columns`` x
    ``rows`` screen: each line cut to the width; lines beyond the height
    replaced by a last line saying how many more there are.
    """
    if len(lines) > rows:
        more = len(lines) - rows + 1
        lines = [*lines[: rows - 1], f"{ELLIPSIS} {more} more lines (a taller window shows them)"]
    parts = [_HOME]
    for i, line in enumerate(lines):
        parts.append(cut(line, columns))
        parts.append(_CLEAR_LINE)
        if i < len(lines) - 1:
            parts.append("\r\n")
    parts.append(_CLEAR_BELOW)
    return "".join(parts)


@implementer(IReadDescriptor)
class _Keys:
    """Reads the keys typed on the terminal: ``q`` quits, Ctrl-L redraws."""

    def __init__(self, fd: int, screen: Screen) -> None:
        self._fd = fd
        self._screen = screen

    def fileno(self) -> int:
        return self._fd

    def doRead(self) -> None:
        try:
            data = os.read(self._fd, 1024)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the terminal went away
            self._screen.stop_reading()
            return
        if b"q" in data or b"Q" in data:
            self._screen.quit()
        elif b"\x0c" in data:
            self._screen.draw(full=True)

    def connectionLost(self, reason: Any) -> None:
        pass

    def logPrefix(self) -> str:
        return "txami-keys"


class Screen:
    """
    A terminal showing ``frame(columns)`` (a list of lines), redrawn by
    `draw`.  ``stream`` is the binary standard output (a terminal);
    ``on_quit`` is called when ``q`` is typed.  ``keys`` is the terminal
    input's descriptor (default: standard input, if it is a terminal).
    """

    def __init__(
        self,
        reactor: Any,
        stream: IO[bytes],
        frame: Callable[[int], list[str]],
        *,
        on_quit: Callable[[], None] = lambda: None,
        keys: int | None = None,
    ) -> None:
        self._reactor = reactor
        self._stream = stream
        self._frame = frame
        self._on_quit = on_quit
        if keys is None:
            keys = _stdin_terminal()
        self._keys_fd = keys
        self._keys: _Keys | None = None
        self._saved_mode: list[Any] | None = None
        self._saved_signals: dict[int, Any] = {}
        self._last = ""
        self._active = False
        #: Stopped by Ctrl-Z (or continued in the background): the terminal is not ours.
        self._suspended = False

    # --- the terminal ------------------------------------------------------------------------

    def enter(self) -> None:
        """Take over the terminal: alternate screen, no cursor, keys read one at a time."""
        if self._active:
            return
        self._active = True
        atexit.register(self.leave)
        self._take_keys()
        self._write(ENTER)
        self._last = ""
        for name, handler in (
            ("SIGWINCH", self._on_resize),
            ("SIGTSTP", self._on_suspend),
            ("SIGCONT", self._on_continue),
        ):
            number = getattr(signal, name, None)  # POSIX only
            if number is not None:
                self._saved_signals.setdefault(number, signal.signal(number, handler))
        self._start_reading()

    def _start_reading(self) -> None:
        if self._keys_fd is not None and self._keys is None:
            self._keys = _Keys(self._keys_fd, self)
            self._reactor.addReader(self._keys)

    def leave(self) -> None:
        """Give the terminal back as it was; safe to call more than once."""
        for number, handler in self._saved_signals.items():
            signal.signal(number, handler)
        self._saved_signals.clear()
        self._suspended = False
        self.stop_reading()
        self._restore()
        atexit.unregister(self.leave)

    def _restore(self) -> None:
        """Show the shell's screen and the cursor, echo keys again (no signal handlers touched)."""
        if not self._active:
            return
        self._active = False
        self._give_keys()  # first: once the screen is back, so is the keyboard
        with suppress(OutputClosed):
            self._write(LEAVE)

    def stop_reading(self) -> None:
        """Stop reading keys."""
        keys, self._keys = self._keys, None
        if keys is not None:
            self._reactor.removeReader(keys)

    def _take_keys(self) -> None:
        fd = self._keys_fd
        if fd is None:
            return
        import termios

        try:
            saved = termios.tcgetattr(fd)
        except termios.error:
            self._keys_fd = None
            return
        mode = termios.tcgetattr(fd)
        mode[3] &= ~(termios.ECHO | termios.ICANON)  # lflags: no echo, a key at a time
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, mode)
        self._saved_mode = saved

    def _give_keys(self) -> None:
        saved, self._saved_mode = self._saved_mode, None
        if saved is not None and self._keys_fd is not None:
            import termios

            with suppress(termios.error):
                termios.tcsetattr(self._keys_fd, termios.TCSANOW, saved)

    # --- drawing -----------------------------------------------------------------------------

    def size(self) -> tuple[int, int]:
        """The terminal's columns and rows (80 x 24 if it cannot say)."""
        try:
            size = os.get_terminal_size(self._stream.fileno())
        except (OSError, ValueError, AttributeError):
            return 80, 24
        return size.columns or 80, size.lines or 24

    def draw(self, full: bool = False) -> None:
        """Show the frame as it is now (``full``: clear the screen first)."""
        if self._suspended:
            self._resume()  # back in the foreground, should a SIGCONT have come too early
            return
        if not self._active:
            return
        columns, rows = self.size()
        text = compose(self._frame(columns), columns, rows)
        if full:
            self._last = ""
            text = _CLEAR_ALL + text
        if text != self._last:
            self._last = text
            self._write(text)

    def quit(self) -> None:
        """``q`` was typed."""
        self._on_quit()

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text.encode("utf-8", "replace"))
            self._stream.flush()
        except (OSError, ValueError):  # the terminal went away
            raise OutputClosed() from None

    # --- signals -----------------------------------------------------------------------------

    def _on_resize(self, number: int, frame: object) -> None:
        self._reactor.callFromThread(self._redraw_all)

    def _redraw_all(self) -> None:
        try:
            self.draw(full=True)
        except OutputClosed:
            self._on_quit()

    def _on_suspend(self, number: int, frame: object) -> None:
        """Ctrl-Z: give the terminal back, then stop as the default action would."""
        self._suspended = True
        self._restore()
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stops here (unless nobody could continue us)
        signal.signal(signal.SIGTSTP, self._on_suspend)
        self._reactor.callFromThread(self._resume)

    def _on_continue(self, number: int, frame: object) -> None:
        """Continued (``fg`` or ``bg``): take the terminal again if it is ours."""
        if self._suspended:
            self._reactor.callFromThread(self._resume)

    def _resume(self) -> None:
        """After a stop: take the terminal back and redraw, once in the foreground."""
        if not self._suspended or not self._saved_signals:
            return
        if not self._in_foreground():
            # Continued in the background (bg): the keys are not ours; wait for fg (a
            # SIGCONT, or the next draw finding the terminal ours again).
            self.stop_reading()
            return
        self._suspended = False
        self._active = True
        self._take_keys()
        self._start_reading()
        try:
            self._write(ENTER)
            self.draw(full=True)
        except OutputClosed:
            self._on_quit()

    def _in_foreground(self) -> bool:
        """Whether this process's group owns the terminal (else it may not draw or set modes)."""
        try:
            return os.tcgetpgrp(self._stream.fileno()) == os.getpgrp()
        except (OSError, ValueError, AttributeError):
            return True


def _stdin_terminal() -> int | None:
    """Standard input's descriptor if it is a terminal, else None."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return None
    return fd if os.isatty(fd) else None
