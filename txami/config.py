"""
The txami configuration file: one ``[pbx:NAME]`` section per Asterisk.

The ``txami`` command line (``--config FILE --pbx NAME``) and the daemon
(``twistd txami --config FILE``) read the same INI file (`configparser`
syntax)::

    [pbx:east]
    host = pbx-east.example.net
    username = txami
    secret-file = /etc/txami/east.secret
    auth = md5

    [pbx:west]
    host = 10.1.2.3
    tls = yes
    tls-ca = /etc/txami/west-ca.pem
    username = txami
    secret-file = /etc/txami/west.secret
    events = call,agent
    filter = Event: Hangup
    filter = Event: Newchannel

Keys of a ``[pbx:NAME]`` section: ``host`` (default ``localhost``), ``port``
(5038, or 5039 with TLS), ``tls`` (yes/no), ``tls-ca`` (a PEM file; implies
``tls``), ``username`` (required), ``secret-file`` (else the ``TXAMI_SECRET``
environment variable), ``auth`` (``plain`` or ``md5``), ``events`` (the login
event mask: ``on``, ``off`` or classes such as ``call,system``) and
``filter`` (an AMI event filter; the key may repeat).

Other sections (the daemon's ``[http]`` and ``[redis]``) are kept, with the
line of every key, for the program that knows them: `load_config` checks only
the PBX sections.  Every problem in the file is collected and reported at
once by one `ConfigError`, each as ``FILE:LINE: what is wrong``, so a daemon
never starts half-configured.  Secrets are read when the file is loaded and
never appear in a repr.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_PORT",
    "DEFAULT_TLS_PORT",
    "PBX_KEYS",
    "SECRET_ENV",
    "Config",
    "ConfigError",
    "PBXCheck",
    "PBXConfig",
    "Section",
    "SectionCheck",
    "check_event_mask",
    "check_pbx",
    "load_config",
    "parse_config",
    "parse_sections",
    "raise_problems",
    "read_file",
    "read_secret_file",
]

#: The AMI port when none is given (Asterisk's default), and with TLS.
DEFAULT_PORT = 5038
DEFAULT_TLS_PORT = 5039
#: The environment variable read for the secret when no secret file is given.
SECRET_ENV = "TXAMI_SECRET"
#: Where the command line looks for the file when ``--config`` is not given.
DEFAULT_CONFIG = os.path.join("~", ".config", "txami", "txami.ini")
#: The keys a ``[pbx:NAME]`` section may have.
PBX_KEYS = frozenset(
    {"host", "port", "tls", "tls-ca", "username", "secret-file", "auth", "events", "filter"}
)

_PBX_SECTION = re.compile(r"pbx:(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})\Z")
_MASK = re.compile(r"[A-Za-z]+(,[A-Za-z]+)*\Z")
_SECTION_LINE = re.compile(r"\s*\[(?P<name>[^\]]+)\]")
_KEY_LINE = re.compile(r"(?P<key>[^\s=:][^=:]*?)\s*[=:]")
_MAX_SECRET_FILE = 65536


class ConfigError(ValueError):
    """
    The configuration file is unusable.  ``problems`` lists every problem
    found, each as ``FILE:LINE: message``; the message is all of them, one
    per line.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def check_event_mask(value: str) -> str | None:
    """Why ``value`` is not a login event mask (on, off, or classes), or None if it is."""
    if _MASK.match(value):
        return None
    return f"events must be on, off or classes such as call,system, not {value!r}"


def read_secret_file(path: str) -> str:
    """
    The first line of file ``path`` without its line ending: a secret or a
    token.  `ValueError` (with a message naming the file, never its content)
    if it cannot be read, is not UTF-8, is empty or holds more than one line.
    """
    try:
        with open(os.path.expanduser(path), "rb") as f:
            data = f.read(_MAX_SECRET_FILE + 1)
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    lines = text.splitlines()
    value = lines[0].strip() if lines else ""
    if not value:
        raise ValueError(f"{path} is empty")
    if len(data) > _MAX_SECRET_FILE or any(line.strip() for line in lines[1:]):
        raise ValueError(f"{path} must hold one line")
    return value


@dataclass(frozen=True)
class Section:
    """One section of the file: its values (repeated keys kept) and where each stands."""

    name: str
    path: str
    line: int
    values: Mapping[str, tuple[str, ...]]
    lines: Mapping[str, int]

    def get(self, key: str, default: str | None = None) -> str | None:
        """The last value of ``key``, or ``default``."""
        found = self.values.get(key)
        return found[-1] if found else default

    def getall(self, key: str) -> tuple[str, ...]:
        """Every value of ``key``, in file order."""
        return self.values.get(key, ())

    def where(self, key: str | None = None) -> str:
        """``FILE:LINE`` of ``key`` (or of the section header), for messages."""
        return f"{self.path}:{self.lines.get(key, self.line) if key else self.line}"


@dataclass(frozen=True)
class PBXConfig:
    """How to reach and log in to one Asterisk; the section name is its identity."""

    name: str
    username: str
    secret: str = field(repr=False)
    host: str = "localhost"
    port: int = DEFAULT_PORT
    tls: bool = False
    tls_ca: str | None = None
    auth: str = "plain"
    events: str = "on"
    filters: tuple[str, ...] = ()
    #: ``FILE:LINE`` of the section, for messages ("" when not from a file).
    source: str = ""

    def tls_options(self) -> object:
        """Client TLS options for this PBX (`txami.connect.tls_options`); None without TLS."""
        if not self.tls:
            return None
        from txami.connect import tls_options

        return tls_options(self.host, ca=self.tls_ca)


@dataclass(frozen=True)
class Config:
    """A loaded file: its PBXs by name (file order) and every other section by name."""

    path: str
    pbxs: Mapping[str, PBXConfig]
    sections: Mapping[str, Section]

    def pbx(self, name: str | None = None) -> PBXConfig:
        """
        The PBX called ``name``; without a name, the only one.  `KeyError`
        with a message listing the names there are.
        """
        if name is None:
            if len(self.pbxs) == 1:
                return next(iter(self.pbxs.values()))
            raise KeyError(f"{self.path} has {len(self.pbxs)} PBXs: say which ({self._names()})")
        try:
            return self.pbxs[name]
        except KeyError:
            raise KeyError(f"{self.path} has no [pbx:{name}] (it has: {self._names()})") from None

    def _names(self) -> str:
        return ", ".join(self.pbxs) or "none"


#: Stands between the occurrences of a repeated key while configparser joins lines.
_REPEAT = "\0"


class _MultiDict(dict[str, object]):
    """
    configparser storage that keeps every occurrence of a repeated key:
    while parsing, a value is a list of lines, and a repeated key's lines are
    appended to the first occurrence's list after a `_REPEAT` marker (the
    file holds no NUL: it is refused before parsing).
    """

    def __setitem__(self, key: str, value: object) -> None:
        previous = self.get(key)
        if isinstance(value, list) and isinstance(previous, list):
            previous.extend([_REPEAT, *value])
        else:
            super().__setitem__(key, value)


def _key_lines(text: str) -> dict[str, tuple[int, dict[str, int]]]:
    """
    Section name -> (its header's line, key -> line of the key's first
    occurrence).  configparser keeps no line numbers; headers and keys start
    at the first column, indented lines continue a value.
    """
    found: dict[str, tuple[int, dict[str, int]]] = {}
    current: dict[str, int] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line[:1].isspace() or line[:1] in ("#", ";"):
            continue
        section = _SECTION_LINE.match(line)
        if section is not None:
            current = found.setdefault(section.group("name").strip(), (number, {}))[1]
            continue
        key = _KEY_LINE.match(line)
        if key is not None and current is not None:
            current.setdefault(key.group("key").strip().lower(), number)
    return found


def parse_sections(text: str, path: str, problems: list[str]) -> list[Section]:
    """
    The sections of INI ``text`` (``path`` names it in messages), for any
    txami file of this syntax; what is wrong is added to ``problems`` as
    ``FILE:LINE: message`` (a NUL byte, a section given twice, a line that
    is not ``key = value``).  See `raise_problems`.
    """
    if "\0" in text:
        problems.append(f"{path}: the file holds a NUL byte")
        return []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        header = None if line[:1].isspace() else _SECTION_LINE.match(line)
        if header is None:
            continue
        name = header.group("name").strip()
        if name in seen:
            first = seen[name]
            problems.append(f"{path}:{number}: [{name}] appears twice (first at line {first})")
        seen.setdefault(name, number)
    parser = configparser.RawConfigParser(
        dict_type=_MultiDict,  # type: ignore[arg-type]
        strict=False,
        empty_lines_in_values=False,
        interpolation=None,
        default_section="\0none",
    )
    try:
        parser.read_string(text, source=path)
    except configparser.MissingSectionHeaderError as error:
        problems.append(f"{path}:{error.lineno}: a key before any [section]")
        return []
    except configparser.ParsingError as error:
        text_lines = text.splitlines()
        for lineno, _ in error.errors:
            line = text_lines[lineno - 1]
            problems.append(f"{path}:{lineno}: not a key = value line: {line!r}")
        return []
    lines = _key_lines(text)
    sections = []
    for name in parser.sections():
        first_line, keys = lines.get(name, (0, {}))
        raw = parser[name]
        values = {
            key: tuple(part.strip("\n") for part in value.split(f"\n{_REPEAT}\n"))
            for key, value in raw.items()
            if value is not None
        }
        sections.append(Section(name, path, first_line, values, keys))
    return sections


def _pbx(name: str, section: Section, problems: list[str]) -> PBXConfig | None:
    """The PBX a section describes, or None after adding its problems to ``problems``."""
    before = len(problems)

    def bad(key: str | None, message: str) -> None:
        problems.append(f"{section.where(key)}: [pbx:{name}] {message}")

    for key in section.values:
        if key not in PBX_KEYS:
            bad(key, f"unknown key {key!r} (known: {', '.join(sorted(PBX_KEYS))})")
    broken = set()
    for key, values in section.values.items():
        if key == "filter":
            continue
        if len(values) > 1:
            bad(key, f"{key} is given {len(values)} times")
            broken.add(key)
        elif "\n" in values[0]:
            bad(key, f"{key} must be one line")
            broken.add(key)

    def get(key: str, default: str | None = None) -> str | None:
        """The key's value, or ``default`` when it is missing or already reported."""
        return default if key in broken else section.get(key, default)

    host = get("host", "localhost") or ""
    if not host:
        bad("host", "host is empty")
    tls_text = (get("tls", "no") or "").lower()
    if tls_text not in configparser.RawConfigParser.BOOLEAN_STATES:
        bad("tls", f"tls must be yes or no, not {tls_text!r}")
    tls_ca = get("tls-ca") or None
    tls = configparser.RawConfigParser.BOOLEAN_STATES.get(tls_text, False) or tls_ca is not None
    if tls_ca is not None and not os.path.isfile(os.path.expanduser(tls_ca)):
        bad("tls-ca", f"tls-ca {tls_ca} is not a file")
    port_text = get("port")
    port = DEFAULT_TLS_PORT if tls else DEFAULT_PORT
    if port_text is not None:
        port = int(port_text) if port_text.isdecimal() else 0
        if not 1 <= port <= 65535:
            bad("port", f"port must be a number from 1 to 65535, not {port_text!r}")
    username = get("username") or ""
    if not username:
        bad(None, "username is required (the AMI user from manager.conf)")
    auth = get("auth", "plain") or ""
    if auth not in ("plain", "md5"):
        bad("auth", f"auth must be plain or md5, not {auth!r}")
    events = get("events", "on") or ""
    why = check_event_mask(events)
    if why is not None:
        bad("events", why)
    # Each line of a filter value is one filter: "filter = A" lines, or one
    # key whose indented continuation lines add more.
    filters = tuple(
        line.strip() for value in section.getall("filter") for line in value.splitlines()
    )
    if not all(filters):
        bad("filter", "a filter is empty")
    secret = ""
    secret_file = get("secret-file")
    if secret_file:
        try:
            secret = read_secret_file(secret_file)
        except ValueError as error:
            bad("secret-file", f"secret-file: {error}")
    else:
        secret = os.environ.get(SECRET_ENV, "")
        if not secret:
            bad(None, f"has no secret-file, and {SECRET_ENV} is not set")
    if len(problems) > before:
        return None
    return PBXConfig(
        name=name,
        username=username,
        secret=secret,
        host=host,
        port=port,
        tls=tls,
        tls_ca=os.path.expanduser(tls_ca) if tls_ca else None,
        auth=auth,
        events=events,
        filters=filters,
        source=section.where(),
    )


def read_file(path: str, what: str = "configuration") -> str:
    """The text of the file at ``path`` (``~`` expanded); `ConfigError` if unreadable."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            return f.read()
    except OSError as error:
        raise ConfigError([f"{path}: cannot read the {what}: {error.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: the {what} is not UTF-8 text"]) from None


def raise_problems(problems: list[str]) -> None:
    """Raise one `ConfigError` listing ``problems`` in file order, if there are any."""
    if problems:
        raise ConfigError(sorted(problems, key=_line_number))


def check_pbx(name: str, section: Section) -> PBXConfig:
    """
    The PBX that ``section`` describes under ``name``, checked as a
    ``[pbx:NAME]`` section of a file is; `ConfigError` lists every problem.
    The daemon builds its command-line PBX this way, so flags and file keys
    follow one set of rules.
    """
    problems: list[str] = []
    pbx = _pbx(name, section, problems)
    if pbx is None:
        raise ConfigError(problems)
    return pbx


#: Checks the other sections: returns their problems (``FILE:LINE: ...``), if any.
SectionCheck = Callable[[Mapping[str, Section]], list[str]]
#: Checks the PBXs further: given the well-formed PBXs by name and every
#: ``[pbx:...]`` section by section name (well-formed or not), returns the
#: problems (``FILE:LINE: ...``), if any.
PBXCheck = Callable[[Mapping[str, PBXConfig], Mapping[str, Section]], list[str]]


def load_config(
    path: str,
    *,
    known_sections: frozenset[str] | None = None,
    check_sections: SectionCheck | None = None,
    check_pbxs: PBXCheck | None = None,
) -> Config:
    """
    Read and check the file at ``path`` (``~`` expanded).  ``known_sections``
    names the other sections the caller accepts (the daemon: ``http``,
    ``redis``); `None` accepts any.  ``check_sections`` checks those other
    sections and ``check_pbxs`` the PBXs further (the daemon's own rules), so
    that their problems are reported with the file's others.  `ConfigError`
    lists every problem.
    """
    return parse_config(
        read_file(path),
        path,
        known_sections=known_sections,
        check_sections=check_sections,
        check_pbxs=check_pbxs,
    )


def parse_config(
    text: str,
    path: str = "<config>",
    *,
    known_sections: frozenset[str] | None = None,
    check_sections: SectionCheck | None = None,
    check_pbxs: PBXCheck | None = None,
) -> Config:
    """`load_config` for text already read; ``path`` names it in messages."""
    problems: list[str] = []
    pbxs: dict[str, PBXConfig] = {}
    pbx_sections: dict[str, Section] = {}
    others: dict[str, Section] = {}
    for section in parse_sections(text, path, problems):
        if section.name.startswith("pbx:"):
            pbx_sections[section.name] = section
        match = _PBX_SECTION.match(section.name)
        if match is not None:
            pbx = _pbx(match.group("name"), section, problems)
            if pbx is not None:
                pbxs[pbx.name] = pbx
        elif section.name.startswith("pbx:"):
            problems.append(
                f"{section.where()}: [{section.name}]: a PBX name is 1-64 letters, digits, "
                "'_', '.' or '-', starting with a letter or digit"
            )
        elif known_sections is not None and section.name not in known_sections:
            known = ", ".join(["pbx:NAME", *sorted(known_sections)])
            where = section.where()
            problems.append(f"{where}: unknown section [{section.name}] (known: {known})")
        else:
            others[section.name] = section
    if check_sections is not None:
        problems.extend(check_sections(others))
    if check_pbxs is not None:
        problems.extend(check_pbxs(pbxs, pbx_sections))
    raise_problems(problems)
    return Config(path, pbxs, others)


def _line_number(problem: str) -> int:
    """The line a ``FILE:LINE: ...`` problem names (0 if none), to report in file order."""
    match = re.match(r".*?:(\d+): ", problem)
    return int(match.group(1)) if match else 0
