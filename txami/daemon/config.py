"""
The daemon's configuration: the PBXs it bridges, its ``[http]`` and ``[redis]`` sections.

``twistd txami --config FILE`` reads the INI file of `txami.config` (one
``[pbx:NAME]`` section per Asterisk) plus two sections of its own::

    [http]
    listen = tcp:8088:interface=127.0.0.1
    token-file = /etc/txami/http.token
    # or, instead of token-file, tokens with scopes (txami.daemon.acl):
    # acl = /etc/txami/http-acl.ini

    [redis]
    url = redis://127.0.0.1:6379/0
    password-file = /etc/txami/redis.secret
    prefix = txami
    maxlen = 100000

Every problem of the whole file is reported at once (``FILE:LINE: ...``) by
one `txami.config.ConfigError`, and the daemon does not start.  The
command-line flags (``--host``, ``--http``, ...) describe one PBX called
``default`` and go through the same checks (`check_endpoint`,
`check_http_exposure`, `txami.config.check_pbx`), so a flag and a key can
never disagree on what is valid.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from txami.config import (
    ConfigError,
    PBXConfig,
    Section,
    load_config,
    read_secret_file,
)
from txami.daemon.acl import AccessList, load_acl

__all__ = [
    "DAEMON_SECTIONS",
    "HTTP_KEYS",
    "REDIS_KEYS",
    "DaemonConfig",
    "HTTPConfig",
    "RedisConfig",
    "check_endpoint",
    "check_http_exposure",
    "load_daemon_config",
    "parse_redis_url",
    "pbx_tls_options",
]

#: The sections of the file besides ``[pbx:NAME]``.
DAEMON_SECTIONS = frozenset({"http", "redis"})
#: The keys of ``[http]``.
HTTP_KEYS = frozenset({"listen", "token-file", "acl"})
#: The keys of ``[redis]`` and their defaults (None: no default).
REDIS_DEFAULTS: Mapping[str, str | None] = {
    "url": None,
    "password-file": None,
    "tls": "no",
    "tls-ca": None,
    "prefix": "txami",
    "maxlen": "100000",
    "window": "4096",
    "buffer-events": "100000",
    "buffer-bytes": "64000000",
    "total-buffer-events": "1000000",
    "total-buffer-bytes": "256000000",
    "actions": "yes",
    "group": "txami",
    "consumer": None,
    "guard-ttl": "86400",
    "claim-idle": "60",
}
REDIS_KEYS = frozenset(REDIS_DEFAULTS)

_LOCAL_ENDPOINTS = frozenset({"unix"})
_TCP_ENDPOINTS = frozenset({"tcp", "tcp6", "ssl"})
_BOOLEANS = {"1": True, "yes": True, "true": True, "on": True}
_BOOLEANS.update({"0": False, "no": False, "false": False, "off": False})
_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")
#: The ``[redis]`` numbers for which 0 means "off".
_MAY_BE_ZERO = frozenset({"maxlen", "claim-idle"})


# --- validators shared by the file and the command line ------------------------------------------


def check_endpoint(description: str) -> str | None:
    """Why ``description`` is not a Twisted server endpoint string, or None if it is."""
    from twisted.internet import endpoints
    from twisted.internet.testing import MemoryReactor

    try:
        # Parsing only: nothing listens on this reactor.
        endpoints.serverFromString(MemoryReactor(), description)  # type: ignore[no-untyped-call]
    except Exception as error:
        return f"bad endpoint {description!r}: {error}"
    return None


def _endpoint_kind(description: str) -> tuple[str, str | None]:
    """
    The type of a server endpoint string and, for TCP-like ones, its
    ``interface`` (``""`` means every interface; `None` for other types).
    """
    parts = re.split(r"(?<!\\):", description)
    kind = parts[0].lower()
    if kind not in _TCP_ENDPOINTS:
        return kind, None
    interface = ""
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        if eq and key == "interface":
            interface = value.replace("\\:", ":")
    return kind, interface


def _is_loopback(interface: str) -> bool:
    if interface == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface).is_loopback
    except ValueError:
        return False


def check_http_exposure(description: str, has_token: bool) -> str | None:
    """
    Why the HTTP bridge may not listen on ``description`` as configured (it
    listens beyond loopback without a token), or None if it may.
    """
    if has_token:
        return None
    kind, interface = _endpoint_kind(description)
    if kind in _LOCAL_ENDPOINTS or (interface is not None and _is_loopback(interface)):
        return None
    return "listens beyond loopback: give a token file or an acl, or listen on interface=127.0.0.1"


def parse_redis_url(url: str) -> tuple[str, int, int, bool]:
    """
    ``(host, port, db, tls)`` from ``redis://host:port/db`` (``rediss://``
    for TLS; port 6379 and db 0 by default).  `ValueError` with a reason if
    the URL is not one; a password in the URL is refused (use a file).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"url must start with redis:// or rediss://, not {url!r}")
    if parts.password is not None or parts.username is not None:
        raise ValueError("url must not hold a user or password: use password-file")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"url has a bad port: {url!r}") from None
    host = unquote(parts.hostname or "")
    if not host:
        raise ValueError(f"url has no host: {url!r}")
    path = parts.path.strip("/")
    if not path:
        db = 0
    elif path.isdecimal() and int(path) < 100000:
        db = int(path)
    else:
        raise ValueError(f"url's path must be a database number, not {parts.path!r}")
    if parts.query or parts.fragment:
        raise ValueError("url must not have a query or fragment: use the section's keys")
    return host, port, db, parts.scheme == "rediss"


def pbx_tls_options(pbx: PBXConfig) -> Any:
    """Client TLS options for ``pbx`` (None without TLS); `ValueError` with a reason."""
    if not pbx.tls:
        return None
    try:
        return pbx.tls_options()
    except ImportError:  # pragma: no cover - pyOpenSSL is not installed
        raise ValueError("TLS needs pyOpenSSL: pip install 'txami[tls]'") from None
    except OSError as error:
        raise ValueError(f"cannot read tls-ca {pbx.tls_ca}: {error.strerror}") from None
    except Exception:
        raise ValueError(f"tls-ca {pbx.tls_ca} holds no valid PEM certificate") from None


# --- the configuration objects ----------------------------------------------------------------


@dataclass(frozen=True)
class HTTPConfig:
    """
    The HTTP bridge: where it listens, and the bearer token clients must
    send (``token``) or the tokens and what each may do (``access``).
    """

    listen: str
    token: str | None = field(default=None, repr=False)
    source: str = ""
    access: AccessList | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class RedisConfig:
    """
    Where Redis is and how the daemon uses it; see the module doc and
    ``docs/multi-pbx.rst`` for every key.
    """

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca: str | None = None
    prefix: str = "txami"
    #: ``XADD ... MAXLEN ~ maxlen`` (0: no trimming).
    maxlen: int = 100_000
    #: XADDs sent and not yet acknowledged, at most.
    window: int = 4096
    #: Per-PBX and global buffer bounds while Redis is slow or down.
    buffer_events: int = 100_000
    buffer_bytes: int = 64_000_000
    total_buffer_events: int = 1_000_000
    total_buffer_bytes: int = 256_000_000
    #: Whether to read action requests from ``<prefix>:{NAME}:actions``.
    actions: bool = True
    group: str = "txami"
    consumer: str = field(default_factory=lambda: f"txami-{socket.gethostname()}")
    #: Seconds the side-effect guard of an action request lives.
    guard_ttl: int = 86_400
    #: Seconds a request may stay pending with a consumer before another claims it (0: never).
    claim_idle: int = 60
    source: str = ""

    def tls_options(self) -> Any:
        """Client TLS options for Redis (None without TLS)."""
        if not self.tls:
            return None
        from txami.connect import tls_options

        return tls_options(self.host, ca=self.tls_ca)


@dataclass(frozen=True)
class DaemonConfig:
    """Everything the daemon runs: PBXs in file order (with their TLS options), HTTP, Redis."""

    pbxs: Mapping[str, PBXConfig]
    tls: Mapping[str, Any] = field(default_factory=dict, repr=False)
    http: HTTPConfig | None = None
    redis: RedisConfig | None = None
    path: str = ""


# --- reading the sections ------------------------------------------------------------------------


class _Checker:
    """Collects the problems of one section as ``FILE:LINE: [section] message``."""

    def __init__(self, section: Section, known: frozenset[str], problems: list[str]) -> None:
        self.section = section
        self.problems = problems
        for key, values in section.values.items():
            if key not in known:
                self.bad(key, f"unknown key {key!r} (known: {', '.join(sorted(known))})")
            elif len(values) > 1:
                self.bad(key, f"{key} is given {len(values)} times")
            elif "\n" in values[0]:
                self.bad(key, f"{key} must be one line")

    def bad(self, key: str | None, message: str) -> None:
        self.problems.append(f"{self.section.where(key)}: [{self.section.name}] {message}")

    def get(self, key: str, default: str | None = None) -> str | None:
        values = self.section.values.get(key)
        if not values or len(values) > 1 or "\n" in values[0]:
            return default
        return values[0].strip()

    def number(self, key: str, default: str, minimum: int = 1) -> int:
        text = self.get(key, default) or ""
        if text.isdecimal() and int(text) >= minimum:
            return int(text)
        self.bad(key, f"{key} must be a whole number of at least {minimum}, not {text!r}")
        return int(default)

    def boolean(self, key: str, default: str) -> bool:
        text = (self.get(key, default) or "").lower()
        if text in _BOOLEANS:
            return _BOOLEANS[text]
        self.bad(key, f"{key} must be yes or no, not {text!r}")
        return False

    def secret(self, key: str) -> str | None:
        path = self.get(key)
        if not path:
            return None
        try:
            return read_secret_file(path)
        except ValueError as error:
            self.bad(key, f"{key}: {error}")
            return None


def _http(section: Section, problems: list[str]) -> HTTPConfig | None:
    check = _Checker(section, HTTP_KEYS, problems)
    before = len(problems)
    listen = check.get("listen")
    token = check.secret("token-file")
    acl_path = check.get("acl")
    access = None
    if acl_path and check.get("token-file"):
        check.bad("acl", "give token-file or acl, not both (acl can grant everything to a token)")
    elif acl_path:
        try:
            access = load_acl(acl_path)
        except ConfigError as error:
            for problem in error.problems:
                check.bad("acl", f"acl: {problem}")
    if not listen:
        check.bad(None, "listen is required (an endpoint such as tcp:8088:interface=127.0.0.1)")
    else:
        tokens = token is not None or bool(acl_path)
        why = check_endpoint(listen) or check_http_exposure(listen, tokens)
        if why is not None:
            check.bad("listen", f"listen {why}")
    if len(problems) > before or not listen:
        return None
    return HTTPConfig(listen, token, section.where(), access)


def _redis(section: Section, problems: list[str]) -> RedisConfig | None:
    check = _Checker(section, REDIS_KEYS, problems)
    before = len(problems)
    d = REDIS_DEFAULTS
    url = check.get("url")
    host, port, db, url_tls = "", 0, 0, False
    if not url:
        check.bad(None, "url is required, as redis://host:port/db")
    else:
        try:
            host, port, db, url_tls = parse_redis_url(url)
        except ValueError as error:
            check.bad("url", str(error))
    tls_ca = check.get("tls-ca")
    tls = check.boolean("tls", "no") or url_tls or bool(tls_ca)
    if tls_ca:
        import os.path

        if not os.path.isfile(os.path.expanduser(tls_ca)):
            check.bad("tls-ca", f"tls-ca {tls_ca} is not a file")
    prefix = check.get("prefix", "txami") or ""
    if not _PREFIX.match(prefix):
        check.bad("prefix", f"prefix must be 1-64 letters, digits or _.:-, not {prefix!r}")
    group = check.get("group", "txami") or ""
    if not _PREFIX.match(group):
        check.bad("group", f"group must be 1-64 letters, digits or _.:-, not {group!r}")
    consumer = check.get("consumer")
    if consumer is not None and not _PREFIX.match(consumer):
        check.bad("consumer", f"consumer must be 1-64 letters, digits or _.:-, not {consumer!r}")
    numbers = {
        key: check.number(key, d[key] or "1", minimum=0 if key in _MAY_BE_ZERO else 1)
        for key in (
            "maxlen",
            "window",
            "buffer-events",
            "buffer-bytes",
            "total-buffer-events",
            "total-buffer-bytes",
            "guard-ttl",
            "claim-idle",
        )
    }
    if numbers["total-buffer-events"] < numbers["buffer-events"]:
        check.bad("total-buffer-events", "total-buffer-events must be at least buffer-events")
    if numbers["total-buffer-bytes"] < numbers["buffer-bytes"]:
        check.bad("total-buffer-bytes", "total-buffer-bytes must be at least buffer-bytes")
    actions = check.boolean("actions", "yes")
    password = check.secret("password-file")
    if len(problems) > before:
        return None
    extra: dict[str, Any] = {} if consumer is None else {"consumer": consumer}
    return RedisConfig(
        host=host,
        port=port,
        db=db,
        password=password,
        tls=tls,
        tls_ca=tls_ca,
        prefix=prefix,
        maxlen=numbers["maxlen"],
        window=numbers["window"],
        buffer_events=numbers["buffer-events"],
        buffer_bytes=numbers["buffer-bytes"],
        total_buffer_events=numbers["total-buffer-events"],
        total_buffer_bytes=numbers["total-buffer-bytes"],
        actions=actions,
        group=group,
        guard_ttl=numbers["guard-ttl"],
        claim_idle=numbers["claim-idle"],
        source=section.where(),
        **extra,
    )


_SECTION_READERS: Mapping[str, Callable[[Section, list[str]], object]] = {
    "http": _http,
    "redis": _redis,
}


def load_daemon_config(path: str) -> DaemonConfig:
    """
    Read and check the daemon's file at ``path``: every ``[pbx:NAME]``, the
    ``[http]`` and ``[redis]`` sections, each PBX's TLS certificates.
    `txami.config.ConfigError` lists every problem of the file at once.
    """
    built: dict[str, object] = {}
    tls: dict[str, Any] = {}

    def check(sections: Mapping[str, Section]) -> list[str]:
        problems: list[str] = []
        for name, section in sections.items():
            built[name] = _SECTION_READERS[name](section, problems)
        return problems

    def check_pbxs(pbxs: Mapping[str, PBXConfig], sections: Mapping[str, Section]) -> list[str]:
        """The PBXs' TLS certificates, and that there is one PBX at least."""
        problems: list[str] = []
        if not sections:
            problems.append(f"{path}: no [pbx:NAME] section: the daemon needs at least one PBX")
        for name, pbx in pbxs.items():
            try:
                tls[name] = pbx_tls_options(pbx)
            except ValueError as error:
                where = sections[f"pbx:{name}"].where("tls-ca" if pbx.tls_ca else "tls")
                problems.append(f"{where}: [pbx:{name}] {error}")
        return problems

    config = load_config(
        path, known_sections=DAEMON_SECTIONS, check_sections=check, check_pbxs=check_pbxs
    )
    http = built.get("http")
    redis = built.get("redis")
    assert http is None or isinstance(http, HTTPConfig)
    assert redis is None or isinstance(redis, RedisConfig)
    return DaemonConfig(config.pbxs, tls, http, redis, config.path)
