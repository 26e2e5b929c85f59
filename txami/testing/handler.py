"""
What an action handler of the fake is given: the received `Action`, and the
`Session` and `Server` it may use; and `ActionEntry`, a row of the server's
action table.

The built-in handlers (`txami.testing.actions`) are written against the two
typing protocols rather than against `FakeSession` and `FakeAsterisk`, which
import the handlers: so the handlers and the server do not import each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

from txami.message import Message
from txami.testing.parser import header, headers

if TYPE_CHECKING:
    import re

    from twisted.internet.defer import Deferred

    from txami.testing.pbx import PBX
    from txami.testing.permissions import AMIUser

__all__ = ["Action", "ActionEntry", "Handler", "Pairs", "Server", "Session"]

Pairs = list[tuple[str, str]]
#: A built-in handler: writes its answer, or returns a Deferred that does.
Handler = Callable[["Session", "Action"], "Deferred[None] | None"]


class Action:
    """One received action: its lines, and lookups as ``astman_get_header`` does them."""

    __slots__ = ("lines", "message", "name")

    def __init__(self, lines: list[str], message: Message, name: str) -> None:
        self.lines = lines
        self.message = message
        self.name = name

    def get(self, name: str) -> str:
        """The first value of header ``name`` (leading blanks skipped), or ``""``."""
        return header(self.lines, name)

    def getall(self, name: str) -> list[str]:
        """Every value of header ``name``."""
        return headers(self.lines, name)

    @property
    def action_id(self) -> str:
        """The ActionID to echo (``""`` for none)."""
        return header(self.lines, "ActionID")


class ActionEntry(NamedTuple):
    """An action the server knows: its name, handler, write classes and synopsis."""

    name: str
    handler: Handler
    authority: int
    synopsis: str


class Server(Protocol):
    """The server side a handler sees (`FakeAsterisk`)."""

    @property
    def pbx(self) -> PBX:
        """The simulated PBX."""

    @property
    def ami_version(self) -> str:
        """The version in the banner."""

    @property
    def command_framing(self) -> str:
        """``"modern"`` or ``"follows"``: how ``Command`` output is framed."""

    @property
    def booting(self) -> bool:
        """Whether Asterisk is still booting (its modules not loaded yet)."""

    def find_user(self, name: str) -> AMIUser | None:
        """The AMI user called ``name``, if any."""

    def actions(self) -> list[ActionEntry]:
        """Every action the server answers."""

    def action_info(self, name: str) -> tuple[str, str] | None:
        """``(synopsis, privilege text)`` of action ``name``."""

    def new_challenge(self) -> str:
        """A fresh MD5 login challenge."""

    def broadcast(self, category: int, text: str, data: bytes | None = None) -> int:
        """Send an event block to every session that admits it."""


class Session(Protocol):
    """The session a handler answers on (`FakeSession`)."""

    logged_in: bool
    challenge: str
    event_mask: int
    read_mask: int
    write_mask: int
    white_filters: list[re.Pattern[str]]
    black_filters: list[re.Pattern[str]]

    @property
    def factory(self) -> Server:
        """The server this session belongs to."""

    def write_response(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Write a response or list item."""

    def write_raw_response(self, text: str) -> None:
        """Write an unframed answer."""

    def accept_login(self, user: AMIUser, events: str) -> None:
        """Log ``user`` in."""

    def refuse_login(self, action_id: str) -> None:
        """Refuse the login and close."""

    def close_after_answer(self) -> None:
        """Close once the current answer is written."""

    def security_event(
        self,
        name: str,
        severity: str,
        version: int,
        *,
        account: str | None = None,
        request: str | None = None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Raise one of Asterisk's security events about this session."""
