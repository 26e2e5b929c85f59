"""
The ``txami`` console script (and ``python -m txami``): parse, run one
command under `twisted.internet.task.react`, exit with its code.

Every failure ends as one line on stderr and an exit code of
`txami.cli.exitcodes`; a traceback only with ``--debug``, which also logs the
session (txami's log never holds a secret).  SIGINT and SIGTERM end a
command cleanly: a tail (``events``) or a live view (``calls``, ``queues``)
exits 0, a one-shot command 130; the session logs off either way, and a
second signal drops the connection at once.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, ClassVar, NoReturn, TextIO

from twisted.python import usage
from twisted.python.failure import Failure

from txami.cli import action, calls, command, events, ping, queues
from txami.cli.context import Context
from txami.cli.exitcodes import CLIError, ExitCode, Interrupted, failure_exit
from txami.cli.options import ConnectionOptions, Settings, resolve
from txami.cli.output import Output, OutputClosed

__all__ = ["COMMANDS", "TxamiOptions", "main"]

#: A command's body: runs on the `Context`, returns the exit code (or raises `CLIError`).
Runner = Callable[[Context], Coroutine[Any, Any, int]]

#: Every command: name -> (its options class, its body, its one-line help).
COMMANDS: Mapping[str, tuple[type[usage.Options], Runner, str]] = {
    "ping": (ping.Options, ping.run, "Log in and ping; print the round-trip time."),
    "action": (action.Options, action.run, "Send an AMI action; print its answer."),
    "command": (command.Options, command.run, "Run an Asterisk CLI command; print its output."),
    "events": (events.Options, events.run, "Print events as they arrive (until Ctrl-C)."),
    "calls": (calls.Options, calls.run, "Show the calls, live (--once: a snapshot)."),
    "queues": (queues.Options, queues.run, "Show the queues, live (--once: a snapshot)."),
}


class TxamiOptions(ConnectionOptions):
    """The command line of ``txami``: the shared options, then a command and its own."""

    synopsis = "Usage: txami [options] COMMAND [command options] [arguments]"
    longdesc = (
        "Talk to an Asterisk PBX over AMI from the shell.  Say which PBX with --host and "
        "--username (the secret in --secret-file or $TXAMI_SECRET), or with --pbx NAME from "
        "the configuration file.  Exit codes: 0 ok, 1 the action failed, 2 usage, "
        "3 cannot connect or log in, 4 timeout.  'txami COMMAND --help' for a command's options."
    )
    subCommands: ClassVar[list[list[Any]]] = [
        [name, None, options, doc] for name, (options, _, doc) in COMMANDS.items()
    ]

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.environ = os.environ if environ is None else environ
        #: What the options say, set by `postOptions`.
        self.settings: Settings | None = None

    def postOptions(self) -> None:
        """A command is required; resolve the PBX from the options of both levels."""
        if self.subCommand is None:
            raise usage.UsageError(f"give a command: {', '.join(COMMANDS)}")
        self.settings = resolve(self, self.subOptions, self.environ)


def _fail(stderr: TextIO, message: str) -> None:
    """Write ``message`` to stderr, each line prefixed with ``txami: ``."""
    stderr.write("".join(f"txami: {line}\n" for line in message.splitlines() or [""]))
    stderr.flush()


def _start_logging(stderr: TextIO, debug: bool) -> None:
    """With ``--debug``, txami's log to stderr; without, nowhere (and nothing buffered)."""
    from twisted.logger import globalLogBeginner, textFileLogObserver

    observers = [textFileLogObserver(stderr)] if debug else []
    globalLogBeginner.beginLoggingTo(observers, discardBuffer=True, redirectStandardIO=False)


class _Signals:
    """
    Catches SIGINT and SIGTERM from the start of `main`, so that none is lost
    (or raised as KeyboardInterrupt) before the command can hear it: they are
    kept until `deliver_to` names who hears them.
    """

    def __init__(self) -> None:
        self._caught: list[int] = []
        self._target: Callable[[int], None] | None = None

    def install(self) -> None:
        """Catch SIGINT and SIGTERM from now on."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, number: int, frame: object) -> None:
        if self._target is None:
            self._caught.append(number)
        else:
            self._target(number)

    def deliver_to(self, target: Callable[[int], None]) -> None:
        """Call ``target(signal_number)`` for each signal caught so far and from now on."""
        self._target = target
        caught, self._caught = self._caught, []
        for number in caught:
            target(number)


async def _run(
    reactor: Any, context: Context, body: Runner, signals: _Signals, stderr: TextIO
) -> None:
    """Run ``body``; turn how it ended into stderr and `SystemExit`."""
    debug = context.settings.debug
    signals.deliver_to(lambda number: reactor.callFromThread(context.interrupt, number))
    # Twisted installs its own SIGTERM handler when the reactor starts: take it back then.
    reactor.callWhenRunning(signals.install)
    code: int = ExitCode.OK
    try:
        code = await body(context)
    except CLIError as error:
        code = error.code
        if debug and error.failure is not None:
            stderr.write(error.failure.getTraceback())
        _fail(stderr, error.message)
    except Interrupted:
        code = ExitCode.INTERRUPTED
        _fail(stderr, "interrupted")
    except OutputClosed:
        code = ExitCode.OK
    except Exception as error:
        failure = Failure()  # type: ignore[no-untyped-call]
        try:
            exit_error = failure_exit(failure, context.settings.where)
        except Exception:  # not one of the errors a command expects (txami's own included)
            message = f"unexpected error: {type(error).__name__}: {error}"
            exit_error = CLIError(ExitCode.ACTION_FAILED, message, failure)
        code = exit_error.code
        if debug:
            stderr.write(failure.getTraceback())
        _fail(stderr, exit_error.message)
    finally:
        await context.close()
    raise SystemExit(int(code))


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run ``txami`` with ``argv`` (default: the process's arguments); never returns."""
    stderr = sys.stderr
    signals = _Signals()
    signals.install()
    try:
        options = TxamiOptions()
        try:
            options.parseOptions(list(sys.argv[1:] if argv is None else argv))  # type: ignore[no-untyped-call]
        except usage.UsageError as error:
            _fail(stderr, str(error))
            sub = getattr(options, "subCommand", None)
            stderr.write(f"Try 'txami{' ' + sub if sub else ''} --help'.\n")
            raise SystemExit(ExitCode.USAGE) from None
        settings = options.settings
        assert settings is not None and options.subCommand is not None
        _start_logging(stderr, settings.debug)
        from twisted.internet import reactor
        from twisted.internet.task import react

        _, body, _ = COMMANDS[options.subCommand]
        context = Context(reactor, settings, Output(sys.stdout.buffer), options.subOptions)
        react(_run, (context, body, signals, stderr))
    except KeyboardInterrupt:  # Ctrl-C before the handler was installed
        _fail(stderr, "interrupted")
        raise SystemExit(ExitCode.INTERRUPTED) from None
    except BrokenPipeError:  # --help into "| head"
        raise SystemExit(ExitCode.OK) from None
    finally:
        _quiet_stdout()


def _quiet_stdout() -> None:
    """
    If the reader of stdout went away, point stdout at /dev/null so that
    Python's final flush does not complain about the broken pipe.
    """
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
