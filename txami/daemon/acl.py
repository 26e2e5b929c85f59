"""
Scoped HTTP access: which bearer token may do what (``--http-acl FILE``).

The file is INI, one ``[token:NAME]`` section per token::

    # The operators' board: read everything, and a few call-control actions.
    [token:operator]
    token-file = /etc/txami/operator.token
    read = yes
    actions = Ping, *Status, Hangup, Redirect, Originate, QueuePause

    # A wallboard: read only.  The token is given as its SHA-256 (hex), so the
    # file holds no secret: printf %s "$TOKEN" | sha256sum
    [token:wallboard]
    sha256 = 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
    read = yes

    # A provisioning script: actions only, on two PBXs of a multi-PBX daemon.
    [token:provisioning]
    token-file = /etc/txami/provisioning.token
    actions = QueueAdd, QueueRemove
    pbx = east, west

Keys: exactly one of ``token-file`` (a file holding the token on one line) or
``sha256`` (the token's SHA-256 in hex); ``read`` (yes/no, default no: health,
metrics, events, state and the board); ``actions`` (comma-separated action
name patterns, ``*`` and ``?`` as in shell globs, matched without regard to
case; default none); ``pbx`` (comma-separated PBX names or patterns, default
``*``).  A token that appears twice, an unknown key or section, a token with
no scope at all: every problem is reported at once with its file and line,
and the daemon does not start.

Only SHA-256 digests of tokens are kept in memory; a request's token is
hashed and compared in constant time.  No token ever reaches a log line, a
repr or a message: a grant is known by its section name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from txami.config import (
    Section,
    parse_sections,
    raise_problems,
    read_file,
    read_secret_file,
)

__all__ = [
    "ACL_KEYS",
    "ANONYMOUS",
    "EVERYTHING",
    "AccessList",
    "Grant",
    "load_acl",
    "parse_acl",
    "token_digest",
]

#: The keys of a ``[token:NAME]`` section.
ACL_KEYS = frozenset({"token-file", "sha256", "read", "actions", "pbx"})

_SECTION = re.compile(r"token:(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})\Z")
_PATTERN = re.compile(r"[A-Za-z0-9_*?]+\Z")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}\Z")
_BOOLEANS = {"yes": True, "true": True, "on": True, "1": True}
_BOOLEANS.update({"no": False, "false": False, "off": False, "0": False})


def token_digest(token: str) -> bytes:
    """The SHA-256 digest of ``token`` (UTF-8), as kept and compared."""
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True)
class Grant:
    """
    What one token may do.  ``actions`` are lower-cased glob patterns;
    ``pbxs`` are PBX name patterns (``("*",)`` for every PBX).
    """

    name: str
    read: bool = False
    actions: tuple[str, ...] = ()
    pbxs: tuple[str, ...] = ("*",)

    def may_use(self, pbx: str) -> bool:
        """Whether this token may reach PBX ``pbx`` at all."""
        return any(fnmatchcase(pbx, pattern) for pattern in self.pbxs)

    def may_read(self, pbx: str = "default") -> bool:
        """Whether this token may read (health, metrics, events, state, the board) of ``pbx``."""
        return self.read and self.may_use(pbx)

    def may_run(self, action: str, pbx: str = "default") -> bool:
        """Whether this token may send action ``action`` (any case) to ``pbx``."""
        name = action.lower()
        return self.may_use(pbx) and any(fnmatchcase(name, p) for p in self.actions)

    def allowed_actions(self, candidates: Iterable[str], pbx: str = "default") -> list[str]:
        """Those of ``candidates`` this token may run on ``pbx`` (for the board's buttons)."""
        return [action for action in candidates if self.may_run(action, pbx)]

    def describe(self) -> dict[str, object]:
        """The grant as JSON-able data, without anything secret."""
        return {
            "name": self.name,
            "read": self.read,
            "actions": list(self.actions),
            "pbx": list(self.pbxs),
        }


#: What the one-token form (``--http-token-file``) allows: everything.
EVERYTHING = Grant("token", read=True, actions=("*",))
#: What a request may do when the daemon has no token at all (it listens on loopback only).
ANONYMOUS = Grant("anonymous", read=True, actions=("*",))


class AccessList:
    """Bearer tokens and their grants; `grant_for` finds the one a request carries."""

    def __init__(self, grants: Sequence[tuple[bytes, Grant]]) -> None:
        self._grants = list(grants)

    @classmethod
    def single_token(cls, token: str) -> AccessList:
        """The one-token form: ``token`` may do everything."""
        return cls([(token_digest(token), EVERYTHING)])

    @property
    def grants(self) -> list[Grant]:
        """Every grant, in file order."""
        return [grant for _, grant in self._grants]

    def grant_for(self, authorization: bytes | None) -> Grant | None:
        """
        The grant of the token in an ``Authorization`` header value (``Bearer
        <token>``), or None.  Every stored digest is compared, in constant
        time, so the answer's timing says nothing about which token matched.
        """
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return None
        digest = hashlib.sha256(token.strip()).digest()
        found = None
        for stored, grant in self._grants:
            if hmac.compare_digest(stored, digest) and found is None:
                found = grant
        return found

    def __repr__(self) -> str:
        names = ", ".join(grant.name for grant in self.grants)
        return f"<AccessList of {len(self._grants)} tokens: {names}>"


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _grant(name: str, section: Section, problems: list[str]) -> tuple[bytes, Grant | None]:
    """
    A section's token digest (``b""`` if it has none) and grant (None after
    adding its problems to ``problems``).  The digest is found even when the
    section has other problems, so that a duplicate token is reported with them.
    """
    before = len(problems)

    def bad(key: str | None, message: str) -> None:
        problems.append(f"{section.where(key)}: [token:{name}] {message}")

    broken = set()
    for key, values in section.values.items():
        if key not in ACL_KEYS:
            bad(key, f"unknown key {key!r} (known: {', '.join(sorted(ACL_KEYS))})")
        elif len(values) > 1:
            bad(key, f"{key} is given {len(values)} times")
            broken.add(key)
        elif "\n" in values[0]:
            bad(key, f"{key} must be one line")
            broken.add(key)

    def get(key: str, default: str | None = None) -> str | None:
        """The key's value, or ``default`` when it is missing or already reported."""
        return default if key in broken else section.get(key, default)

    digest = b""
    token_file, sha256 = get("token-file"), get("sha256")
    if broken & {"token-file", "sha256"}:
        pass  # reported above
    elif (token_file is None) == (sha256 is None):
        bad(None, "needs exactly one of token-file and sha256")
    elif token_file is not None:
        try:
            digest = token_digest(read_secret_file(token_file))
        except ValueError as error:
            bad("token-file", f"token-file: {error}")
    elif sha256 is not None:
        if _SHA256.match(sha256):
            digest = bytes.fromhex(sha256)
        else:
            bad("sha256", "sha256 must be 64 hexadecimal digits (the token's SHA-256)")
    read_text = (get("read", "no") or "").lower()
    read = _BOOLEANS.get(read_text)
    if read is None:
        bad("read", f"read must be yes or no, not {read_text!r}")
    actions = _split(get("actions", "") or "")
    for pattern in actions:
        if not _PATTERN.match(pattern):
            bad("actions", f"{pattern!r} is not an action name pattern (letters, digits, * ?)")
    pbxs = _split(get("pbx", "*") or "")
    if not pbxs:
        bad("pbx", "pbx names no PBX (leave it out for every PBX)")
    for pattern in pbxs:
        if not re.fullmatch(r"[A-Za-z0-9_.*?-]+", pattern):
            bad("pbx", f"{pattern!r} is not a PBX name pattern")
    if not read and not actions and read is not None and not broken & {"read", "actions"}:
        bad(None, "grants nothing: give read = yes or actions")
    if len(problems) > before:
        return digest, None
    return digest, Grant(name, bool(read), tuple(a.lower() for a in actions), tuple(pbxs))


def parse_acl(text: str, path: str = "<acl>") -> AccessList:
    """The access list in INI ``text``; `ConfigError` lists every problem."""
    problems: list[str] = []
    grants: list[tuple[bytes, Grant]] = []
    where: dict[bytes, str] = {}
    sections = parse_sections(text, path, problems)
    for section in sections:
        match = _SECTION.match(section.name)
        if match is None:
            problems.append(
                f"{section.where()}: unknown section [{section.name}] (want [token:NAME], "
                "NAME of letters, digits, '_', '.' or '-')"
            )
            continue
        name = match.group("name")
        digest, grant = _grant(name, section, problems)
        if digest in where:
            problems.append(
                f"{section.where()}: [token:{name}] has the same token as {where[digest]}"
            )
            continue
        if digest:
            where[digest] = f"[token:{name}] ({section.where()})"
        if grant is not None:
            grants.append((digest, grant))
    if not sections and not problems:
        problems.append(f"{path}: no [token:NAME] section")
    raise_problems(problems)
    return AccessList(grants)


def load_acl(path: str) -> AccessList:
    """The access list in the file at ``path``; `ConfigError` lists every problem."""
    return parse_acl(read_file(path, "access list"), path)
