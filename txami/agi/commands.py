"""
The AGI commands as methods: `AGICommands`, shared by both transports.

Each method builds one command line and hands it to ``_execute``, which
`FastAGIProtocol` writes to its socket and `AsyncAGI` sends in an AMI ``AGI``
action; so ``agi.get_variable("X")`` is the same code over FastAGI and
AsyncAGI.  Any other command goes through `send_command`.

Arguments are quoted as Asterisk's ``parse_args`` reads them: words are
separated by spaces or tabs, ``"..."`` groups a word (``""`` is an empty
argument), and a backslash makes the next character literal.  An argument is
sent bare when it needs none of that, else in double quotes with ``"`` and
``\\`` escaped.  CR, LF and NUL would end the command line and let an
argument smuggle in another command, so they are refused with `ValueError`
before anything is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred

from txami.agi.results import AGIResult
from txami.message import _forbidden_char

if TYPE_CHECKING:
    from txami.agi.environment import AGIEnvironment

__all__ = ["AGICommands", "Argument", "command_line", "quote"]

#: What a command argument may be: text, or a whole number (sent in decimal).
Argument = str | int

_SPECIAL = frozenset(' \t"\\')


def _text(argument: Argument) -> str:
    if isinstance(argument, bool) or not isinstance(argument, (str, int)):
        raise TypeError(f"an AGI argument must be str or int, not {type(argument).__name__}")
    return argument if isinstance(argument, str) else str(argument)


def quote(argument: Argument) -> str:
    """
    ``argument`` as one word of an AGI command line.

    >>> quote("hello"), quote(""), quote('say "hi"'), quote(42)
    ('hello', '""', '"say \\\\"hi\\\\""', '42')
    """
    text = _text(argument)
    bad = _forbidden_char(text)
    if bad is not None:
        raise ValueError(
            f"AGI argument {text!r} contains {bad!r}, which would end the command line "
            f"and could inject another command"
        )
    if text and not _SPECIAL.intersection(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def command_line(command: str, *arguments: Argument) -> str:
    """
    ``command`` (sent as written, e.g. ``"SAY ALPHA"``) followed by the quoted
    ``arguments``; `ValueError` if any part holds CR, LF or NUL.
    """
    bad = _forbidden_char(command)
    if bad is not None:
        raise ValueError(
            f"AGI command {command!r} contains {bad!r}, which would end the command line "
            f"and could inject another command"
        )
    if not command.strip():
        raise ValueError("an AGI command needs a name")
    return " ".join([command, *(quote(a) for a in arguments)])


def _ignore(result: AGIResult) -> None:
    return None


def _value_or_none(result: AGIResult) -> str | None:
    """``200 result=1 (VALUE)`` gives VALUE; ``200 result=0`` (not set, not found) gives None."""
    if result.result == "1":
        return result.data if result.data is not None else ""
    return None


def _succeeded(result: AGIResult) -> bool:
    return result.result == "1"


def _state(result: AGIResult) -> int:
    value = result.value
    return value if value is not None else -1


class AGICommands:
    """
    The AGI commands of Asterisk 20 as Deferred-returning methods.

    Each Deferred fires once: with the typed value the method documents, or
    with `AGIError` (``510``/``520``), `AGIHangup` (the channel is gone; every
    later command fails the same way at once) or `AGIConnectionLost`.
    Commands run in the order they are called; calling the next one before
    the previous answered is fine (they queue).
    """

    #: The session's ``agi_*`` variables.
    env: AGIEnvironment

    def _execute(self, line: str) -> Deferred[AGIResult]:
        raise NotImplementedError

    def send_command(self, command: str, *arguments: Argument) -> Deferred[AGIResult]:
        """
        Run any AGI command: ``command`` is sent as written (``"SAY ALPHA"``,
        or a whole line you quoted yourself) and each of ``arguments`` is
        quoted and appended.  Fires with the `AGIResult`.
        """
        return self._execute(command_line(command, *arguments))

    # --- the call ----------------------------------------------------------------------------

    def answer(self) -> Deferred[AGIResult]:
        """Answer the channel (``ANSWER``): result ``0``, or ``-1`` on failure."""
        return self._execute("ANSWER")

    def hangup(self, channel: str | None = None) -> Deferred[AGIResult]:
        """
        Hang up this channel, or ``channel`` (``HANGUP``): result ``1``, or
        ``-1`` if no such channel.  Hanging up this channel makes Asterisk
        send ``HANGUP``, so the later commands fail with `AGIHangup`.
        """
        if channel is None:
            return self._execute("HANGUP")
        return self._execute(command_line("HANGUP", channel))

    def channel_status(self, channel: str | None = None) -> Deferred[int]:
        """
        The state of this channel or of ``channel`` (``CHANNEL STATUS``): 0 down
        and available, 1 down but reserved, 2 off hook, 3 digits dialed, 4 ringing
        (line), 5 ringing (remote), 6 up, 7 busy; ``-1`` if no such channel.
        """
        if channel is None:
            return self._execute("CHANNEL STATUS").addCallback(_state)
        return self._execute(command_line("CHANNEL STATUS", channel)).addCallback(_state)

    def exec(self, application: str, *arguments: Argument) -> Deferred[AGIResult]:
        """
        Run a dialplan application (``EXEC``) with ``arguments`` joined by
        commas, as the dialplan writes them: ``agi.exec("Dial", "PJSIP/100", 30)``.
        Result: the application's return value (``-2``: no such application).
        """
        if not arguments:
            return self._execute(command_line("EXEC", application))
        data = ",".join(_text(a) for a in arguments)
        return self._execute(command_line("EXEC", application, data))

    def set_autohangup(self, seconds: float) -> Deferred[None]:
        """Hang the channel up ``seconds`` from now, 0 to cancel (``SET AUTOHANGUP``)."""
        return self._execute(command_line("SET AUTOHANGUP", f"{seconds:g}")).addCallback(_ignore)

    def set_callerid(self, callerid: str) -> Deferred[None]:
        """Set the caller ID, e.g. ``'"Alice" <100>'`` (``SET CALLERID``)."""
        return self._execute(command_line("SET CALLERID", callerid)).addCallback(_ignore)

    def set_music(self, on: bool, moh_class: str | None = None) -> Deferred[None]:
        """Start (``on``) or stop music on hold, optionally of ``moh_class`` (``SET MUSIC``)."""
        arguments: list[Argument] = ["on" if on else "off"]
        if moh_class is not None:
            arguments.append(moh_class)
        return self._execute(command_line("SET MUSIC", *arguments)).addCallback(_ignore)

    # --- where the call goes after AGI -------------------------------------------------------

    def set_context(self, context: str) -> Deferred[None]:
        """Continue the dialplan in ``context`` when AGI ends (``SET CONTEXT``)."""
        return self._execute(command_line("SET CONTEXT", context)).addCallback(_ignore)

    def set_extension(self, extension: str) -> Deferred[None]:
        """Continue the dialplan at ``extension`` when AGI ends (``SET EXTENSION``)."""
        return self._execute(command_line("SET EXTENSION", extension)).addCallback(_ignore)

    def set_priority(self, priority: int | str) -> Deferred[None]:
        """Continue at ``priority`` (a number or a label) when AGI ends (``SET PRIORITY``)."""
        return self._execute(command_line("SET PRIORITY", priority)).addCallback(_ignore)

    # --- sound and digits ----------------------------------------------------------------------

    def stream_file(
        self, filename: str, escape_digits: str = "", offset: int | None = None
    ) -> Deferred[AGIResult]:
        """
        Play ``filename`` (no extension) until it ends or the caller presses one
        of ``escape_digits`` (``STREAM FILE``).  Result: ``0``, or the digit
        pressed (`AGIResult.digit`), or ``-1`` (no such file, or a hangup);
        `AGIResult.endpos` is the sample offset where playback stopped.
        """
        arguments: list[Argument] = [filename, escape_digits]
        if offset is not None:
            arguments.append(offset)
        return self._execute(command_line("STREAM FILE", *arguments))

    def get_option(
        self, filename: str, escape_digits: str = "", timeout: int | None = None
    ) -> Deferred[AGIResult]:
        """
        As `stream_file`, then wait up to ``timeout`` ms for one of
        ``escape_digits`` (``GET OPTION``); result ``0`` if none came.
        """
        arguments: list[Argument] = [filename, escape_digits]
        if timeout is not None:
            arguments.append(timeout)
        return self._execute(command_line("GET OPTION", *arguments))

    def get_data(
        self, filename: str, timeout: int | None = None, max_digits: int | None = None
    ) -> Deferred[AGIResult]:
        """
        Play ``filename`` and read up to ``max_digits`` digits, waiting
        ``timeout`` ms after each (``GET DATA``; 0 or `None`: Asterisk's
        default).  The digits are `AGIResult.result` (``""`` if none), with
        `AGIResult.timed_out` if the caller stopped typing; ``-1`` on failure.
        """
        arguments: list[Argument] = [filename]
        if timeout is not None or max_digits is not None:
            arguments.append(timeout if timeout is not None else 0)
        if max_digits is not None:
            arguments.append(max_digits)
        return self._execute(command_line("GET DATA", *arguments))

    def wait_for_digit(self, timeout: int = -1) -> Deferred[AGIResult]:
        """
        Wait up to ``timeout`` ms (``-1``: for ever) for a DTMF digit (``WAIT
        FOR DIGIT``): `AGIResult.digit`, or result ``0`` on timeout, ``-1`` on failure.
        """
        return self._execute(command_line("WAIT FOR DIGIT", timeout))

    def say_digits(self, digits: str | int, escape_digits: str = "") -> Deferred[AGIResult]:
        """Say ``digits`` one by one (``SAY DIGITS``); result as `stream_file`'s."""
        return self._execute(command_line("SAY DIGITS", digits, escape_digits))

    def say_number(
        self, number: int, escape_digits: str = "", gender: str | None = None
    ) -> Deferred[AGIResult]:
        """Say ``number`` (``SAY NUMBER``), optionally in ``gender``; result as `stream_file`'s."""
        arguments: list[Argument] = [number, escape_digits]
        if gender is not None:
            arguments.append(gender)
        return self._execute(command_line("SAY NUMBER", *arguments))

    def say_alpha(self, text: str, escape_digits: str = "") -> Deferred[AGIResult]:
        """Spell ``text`` out (``SAY ALPHA``); result as `stream_file`'s."""
        return self._execute(command_line("SAY ALPHA", text, escape_digits))

    # --- variables ---------------------------------------------------------------------------

    def set_variable(self, name: str, value: str | int) -> Deferred[None]:
        """Set variable ``name`` (or write a dialplan function) to ``value`` (``SET VARIABLE``)."""
        return self._execute(command_line("SET VARIABLE", name, value)).addCallback(_ignore)

    def get_variable(self, name: str) -> Deferred[str | None]:
        """
        The value of channel variable ``name``, or of a dialplan function such
        as ``"CALLERID(num)"`` (``GET VARIABLE``); `None` if it is not set.
        """
        return self._execute(command_line("GET VARIABLE", name)).addCallback(_value_or_none)

    def get_full_variable(
        self, expression: str, channel: str | None = None
    ) -> Deferred[str | None]:
        """
        ``expression`` with its ``${...}`` substituted, as the dialplan would,
        on this channel or ``channel`` (``GET FULL VARIABLE``); `None` if no
        such channel.
        """
        arguments: list[Argument] = [expression]
        if channel is not None:
            arguments.append(channel)
        return self._execute(command_line("GET FULL VARIABLE", *arguments)).addCallback(
            _value_or_none
        )

    # --- Asterisk's database -----------------------------------------------------------------

    def database_get(self, family: str, key: str) -> Deferred[str | None]:
        """The value under ``family/key`` (``DATABASE GET``), or `None` if there is none."""
        return self._execute(command_line("DATABASE GET", family, key)).addCallback(_value_or_none)

    def database_put(self, family: str, key: str, value: str | int) -> Deferred[bool]:
        """Store ``value`` under ``family/key`` (``DATABASE PUT``); whether it was stored."""
        return self._execute(command_line("DATABASE PUT", family, key, value)).addCallback(
            _succeeded
        )

    def database_del(self, family: str, key: str) -> Deferred[bool]:
        """Delete ``family/key`` (``DATABASE DEL``); Asterisk 20 answers `True` even if absent."""
        return self._execute(command_line("DATABASE DEL", family, key)).addCallback(_succeeded)

    def database_deltree(self, family: str, keytree: str | None = None) -> Deferred[bool]:
        """Delete ``family`` (or its ``keytree``) (``DATABASE DELTREE``); whether it succeeded."""
        arguments: list[Argument] = [family]
        if keytree is not None:
            arguments.append(keytree)
        return self._execute(command_line("DATABASE DELTREE", *arguments)).addCallback(_succeeded)

    # --- logging -----------------------------------------------------------------------------

    def verbose(self, message: str, level: int = 1) -> Deferred[None]:
        """Log ``message`` at verbose ``level`` in Asterisk's console and log (``VERBOSE``)."""
        return self._execute(command_line("VERBOSE", message, level)).addCallback(_ignore)

    def noop(self) -> Deferred[None]:
        """Do nothing (``NOOP``): a round trip, e.g. to check the channel is still there."""
        return self._execute("NOOP").addCallback(_ignore)
