"""``txami command "core show channels"``: run an Asterisk CLI command, print its output."""

from __future__ import annotations

from twisted.python import usage

from txami.cli.context import Context
from txami.cli.options import CommandOptions

__all__ = ["Options", "run"]


class Options(CommandOptions):
    """The options and arguments of ``txami command``."""

    synopsis = 'Usage: txami command "CLI COMMAND" [options]'
    longdesc = (
        "Run an Asterisk CLI command through AMI (as asterisk -rx does on the PBX) and "
        "print its output lines exactly as the CLI prints them.  Several words are joined "
        "with spaces.  Exit 1 if the CLI refuses the command (its complaint on stderr)."
    )

    def parseArgs(self, *words: str) -> None:
        """The command, as one argument or as words."""
        command = " ".join(words).strip()
        if not command:
            raise usage.UsageError('give the CLI command, e.g. txami command "core show uptime"')
        if any(c in command for c in "\r\n\0"):
            raise usage.UsageError("the CLI command must be one line")
        self["command"] = command


async def run(context: Context) -> int:
    """Send ``Command``; print every ``Output`` line as it is."""
    factory = await context.connect()
    response = await context.wait(
        factory.send_action(
            "Command",
            [("Command", context.options["command"])],
            action_timeout=context.settings.timeout,
        )
    )
    context.out.lines(response.getall("Output"))
    return 0
