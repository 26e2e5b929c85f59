"""
``txami action NAME [Header=Value ...]``: send one AMI action, print its answer.

Each argument is one header, split at its first ``=`` (so ``Variable=A=1``
sends ``Variable: A=1``); a header may repeat.  The answer is printed as AMI
text (the response, then a list action's items and its closing event), as
one JSON object (``--json``: ``response``, ``items``, ``list_complete``), or
as JSON lines (``--jsonl``: one line per item of a list action; the response
itself for any other action).
"""

from __future__ import annotations

from typing import ClassVar

from twisted.python import usage

from txami.actions import UNTAGGED_ITEMS
from txami.cli.context import Context
from txami.cli.options import CommandOptions
from txami.cli.output import action_json, message_lines
from txami.jsonform import dumps, message_dict
from txami.message import Message

__all__ = ["RESERVED_ACTIONS", "Options", "run"]

#: Actions txami sends itself to run the session; refused on the command line.
RESERVED_ACTIONS = frozenset({"login", "logoff", "challenge"})


def _check(pairs: list[tuple[str, str]]) -> None:
    """UsageError if a header would break the AMI framing (CR, LF, NUL, a bad name)."""
    try:
        Message(pairs).to_bytes()
    except ValueError as error:
        raise usage.UsageError(str(error)) from None


class Options(CommandOptions):
    """The options and arguments of ``txami action``."""

    synopsis = "Usage: txami action NAME [Header=Value ...] [options]"
    longdesc = (
        "Send the AMI action NAME with the headers given (Header=Value; a header may "
        "repeat; Variable=A=1 sends 'Variable: A=1') and print the response and, for a "
        "list action, every item.  Exit 1 if Asterisk answers with an error."
    )
    optFlags: ClassVar[list[list[str | None]]] = [
        ["json", None, "Print one JSON object: response, items, list_complete."],
        ["jsonl", None, "Print one JSON line per item (the response, for other actions)."],
    ]

    def parseArgs(self, *arguments: str) -> None:
        """NAME, then the headers."""
        if not arguments:
            raise usage.UsageError("give the action's NAME, e.g. txami action CoreShowChannels")
        name, *rest = arguments
        _check([("Action", name)])
        if not name or name.lower() in RESERVED_ACTIONS:
            raise usage.UsageError(f"{name!r}: txami logs in and off itself")
        headers = []
        for argument in rest:
            key, equals, value = argument.partition("=")
            if not equals:
                raise usage.UsageError(f"{argument!r} is not Header=Value")
            headers.append((key, value))
        _check(headers)
        self["name"] = name
        self["headers"] = headers

    def postOptions(self) -> None:
        """--json and --jsonl exclude each other."""
        if self["json"] and self["jsonl"]:
            raise usage.UsageError("give --json or --jsonl, not both")


async def run(context: Context) -> int:
    """Send the action; print its answer in the form asked for."""
    options = context.options
    name: str = options["name"]
    factory = await context.connect()
    response = await context.wait(
        factory.send_action(
            name,
            options["headers"],
            action_timeout=context.settings.timeout,
            untagged_items=UNTAGGED_ITEMS.get(name.lower()),
        )
    )
    complete = response.list_complete
    out = context.out
    if options["json"]:
        out.line(dumps(action_json(response)))
    elif options["jsonl"]:
        if complete is None and not response.events:
            out.line(dumps(message_dict(response)))
        else:
            out.lines(dumps(message_dict(item)) for item in response.events)
    else:
        lines = message_lines(response)
        for item in response.events:
            lines.extend(message_lines(item))
        if complete is not None:
            lines.extend(message_lines(complete))
        out.lines(lines)
    return 0
