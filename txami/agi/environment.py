"""
`AGIEnvironment`: the ``agi_*`` variables Asterisk sends when an AGI session starts.

FastAGI sends them as ``agi_name: value`` lines ended by a blank line, after
``agi_network: yes`` (and ``agi_network_script: PATH`` when the URL has a
path); AsyncAGI sends the same lines URL-encoded in the ``Env`` header of
``AsyncAGIStart``.  The script's arguments are ``agi_arg_1``, ``agi_arg_2``, ...
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import unquote

from twisted.logger import Logger

__all__ = ["AGIEnvironment"]

_log = Logger(namespace="txami.agi")


def _number(text: str | None) -> int | None:
    if text is None:
        return None
    digits = text[1:] if text[:1] == "-" else text
    return int(text) if digits.isdecimal() and digits.isascii() else None


class AGIEnvironment:
    """
    The variables of one AGI session, by their meaning.

    Every ``agi_*`` variable is in `variables` under its full name, in the
    order received; the attributes below read the common ones (``""`` or
    `None` when Asterisk did not send it).

    >>> env = AGIEnvironment.from_lines(
    ...     ["agi_channel: Local/900@ctx-0001;2", "agi_priority: 2", "agi_arg_1: one"]
    ... )
    >>> env.channel, env.priority, env.arguments
    ('Local/900@ctx-0001;2', 2, ('one',))
    """

    def __init__(self, variables: Mapping[str, str]) -> None:
        #: Every variable, by its full name (``agi_channel``, ``agi_arg_1``, ...).
        self.variables: dict[str, str] = dict(variables)
        get = self.variables.get
        #: Whether this is FastAGI (``agi_network: yes``).
        self.network = get("agi_network", "") == "yes"
        #: The path of the ``agi://host:port/PATH`` URL (``agi_network_script``).
        self.network_script = get("agi_network_script", "")
        #: ``agi://host:port/PATH`` for FastAGI, ``async`` for AsyncAGI.
        self.request = get("agi_request", "")
        self.channel = get("agi_channel", "")
        self.language = get("agi_language", "")
        #: The channel technology (``agi_type``): ``PJSIP``, ``IAX2``, ``Local``, ...
        self.channel_type = get("agi_type", "")
        self.uniqueid = get("agi_uniqueid", "")
        #: The Asterisk version (``agi_version``).
        self.version = get("agi_version", "")
        #: The caller ID number (``agi_callerid``; ``unknown`` when there is none).
        self.caller_id = get("agi_callerid", "")
        self.caller_id_name = get("agi_calleridname", "")
        self.calling_pres = _number(get("agi_callingpres"))
        self.calling_ani2 = _number(get("agi_callingani2"))
        self.calling_ton = _number(get("agi_callington"))
        self.calling_tns = _number(get("agi_callingtns"))
        #: The dialed number (``agi_dnid``; ``unknown`` when there is none).
        self.dnid = get("agi_dnid", "")
        self.rdnis = get("agi_rdnis", "")
        self.context = get("agi_context", "")
        self.extension = get("agi_extension", "")
        self.priority = _number(get("agi_priority"))
        #: ``agi_enhanced``: ``1.0`` for EAGI (audio on fd 3), else ``0.0``.
        self.enhanced = get("agi_enhanced", "")
        self.account_code = get("agi_accountcode", "")
        self.thread_id = get("agi_threadid", "")
        numbered = []
        for name, value in self.variables.items():
            if name.startswith("agi_arg_"):
                index = _number(name[8:])
                if index is not None:
                    numbered.append((index, value))
        #: The arguments after the script in ``AGI(script,arg1,arg2)``, in order.
        self.arguments: tuple[str, ...] = tuple(value for _, value in sorted(numbered))

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> AGIEnvironment:
        """
        Read ``agi_name: value`` lines.  A line without a colon is logged and
        skipped; if a name repeats, the first value counts.
        """
        variables: dict[str, str] = {}
        for line in lines:
            name, colon, value = line.partition(":")
            if not colon:
                _log.warn(
                    "skipping an AGI environment line without a colon: {line!r}", line=line[:200]
                )
                continue
            if value.startswith(" "):
                value = value[1:]
            variables.setdefault(name.strip(), value)
        return cls(variables)

    @classmethod
    def from_url_encoded(cls, env: str) -> AGIEnvironment:
        """Read the URL-encoded ``Env`` header of an ``AsyncAGIStart`` event."""
        text = unquote(env, errors="surrogateescape")
        return cls.from_lines(line for line in text.split("\n") if line)

    def __getitem__(self, name: str) -> str:
        """A variable by its full name, e.g. ``env["agi_callerid"]``."""
        return self.variables[name]

    def get(self, name: str, default: str | None = None) -> str | None:
        """A variable by its full name, or ``default``."""
        return self.variables.get(name, default)

    def __repr__(self) -> str:
        return (
            f"AGIEnvironment(channel={self.channel!r}, request={self.request!r}, "
            f"arguments={self.arguments!r})"
        )
