"""
What the fake PBX has configured besides calls: voicemail boxes and IAX2 peers (`DirectoryMixin`).
"""

from __future__ import annotations

from dataclasses import dataclass

from txami.testing.pbx.core import EmitHook, PBXCore
from txami.testing.timers import Timers

__all__ = ["DirectoryMixin", "IAXPeer", "Mailbox"]


@dataclass
class Mailbox:
    """A voicemail box: message counts and the user it belongs to."""

    new: int = 0
    old: int = 0
    urgent: int = 0
    fullname: str = ""
    email: str = ""


@dataclass
class IAXPeer:
    """An IAX2 peer from iax.conf (``host=dynamic`` when ``host`` is `None`)."""

    name: str
    host: str | None = None
    port: int = 4569
    trunk: bool = False
    encryption: bool = False
    status: str = "Unmonitored"
    description: str = ""


class DirectoryMixin(PBXCore):
    """Voicemail boxes (``MessageWaiting``) and IAX2 peers."""

    def __init__(self, timers: Timers, emit: EmitHook | None = None) -> None:
        super().__init__(timers, emit)
        #: Voicemail boxes: ``"box@context"`` -> `Mailbox`.
        self.mailboxes: dict[str, Mailbox] = {}
        #: IAX2 peers, in the order IAXpeers lists them.
        self.iax_peers: list[IAXPeer] = []

    def mailbox(self, spec: str) -> tuple[str, Mailbox]:
        """The box ``spec`` names (``"1234"`` means ``"1234@default"``); empty if unknown."""
        box, _, context = spec.partition("@")
        key = f"{box}@{context or 'default'}"
        return spec, self.mailboxes.get(key, Mailbox())

    def set_mailbox(self, spec: str, new: int, old: int, urgent: int = 0) -> None:
        """Change a box's message counts and raise ``MessageWaiting``."""
        box, _, context = spec.partition("@")
        key = f"{box}@{context or 'default'}"
        mailbox = self.mailboxes.setdefault(key, Mailbox())
        mailbox.new, mailbox.old, mailbox.urgent = new, old, urgent
        self.emit(
            "MessageWaiting",
            [
                ("Mailbox", key),
                ("Waiting", "1" if new else "0"),
                ("New", str(new)),
                ("Old", str(old)),
            ],
        )
