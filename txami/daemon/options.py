"""
``twistd txami``: the command line (`Options`), and `makeService`, which
builds the daemon's service tree from it.

Every check that can fail is made while parsing, so a bad command line stops
twistd at once with a one-line `usage.UsageError` instead of a daemon that
starts and then misbehaves.  The AMI secret never comes from the command line
(``ps`` shows arguments to every user): it is read from ``--secret-file`` or
the ``TXAMI_SECRET`` environment variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from collections.abc import Callable
from typing import Any, ClassVar, TextIO

from twisted.application.service import IService
from twisted.internet import endpoints
from twisted.python import usage

from txami.daemon.eventlog import EventLog
from txami.daemon.service import AMIClientService, BridgeService
from txami.factory import AMIFactory

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_TLS_PORT",
    "SECRET_ENV",
    "Options",
    "build_service",
    "makeService",
]

#: The AMI port when ``--port`` is not given (Asterisk's default), and with ``--tls``.
DEFAULT_PORT = 5038
DEFAULT_TLS_PORT = 5039
#: The environment variable read for the secret when ``--secret-file`` is not given.
SECRET_ENV = "TXAMI_SECRET"

_MASK = re.compile(r"[A-Za-z]+(,[A-Za-z]+)*\Z")
_LOCAL_ENDPOINTS = frozenset({"unix"})
_TCP_ENDPOINTS = frozenset({"tcp", "tcp6", "ssl"})
# The options --demo replaces, and the flags that mark them as given.
_DEMO_CONFLICTS = ("host", "port", "tls", "tls-ca", "username", "secret-file")


def _read_text(path: str, what: str) -> str:
    """The first line of file ``path``, without its line ending; UsageError if unusable."""
    try:
        with open(path, "rb") as f:
            data = f.read(65537)
    except OSError as error:
        raise usage.UsageError(f"cannot read {what} {path}: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise usage.UsageError(f"{what} {path} is not UTF-8 text") from None
    lines = text.splitlines()
    value = lines[0].strip() if lines else ""
    if not value:
        raise usage.UsageError(f"{what} {path} is empty")
    if len(data) > 65536 or any(line.strip() for line in lines[1:]):
        raise usage.UsageError(f"{what} {path} must hold one line")
    return value


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


def _tls_options(host: str, ca: str | None) -> Any:
    """Client TLS options for ``host`` (trusting the CAs in PEM file ``ca``); UsageError if bad."""
    try:
        from txami.connect import tls_options

        return tls_options(host, ca=ca)
    except ImportError:  # pragma: no cover - pyOpenSSL is not installed
        raise usage.UsageError("TLS needs pyOpenSSL: pip install 'txami[tls]'") from None
    except OSError as error:
        raise usage.UsageError(f"cannot read --tls-ca {ca}: {error.strerror}") from None
    except Exception:
        raise usage.UsageError(f"--tls-ca {ca} holds no valid PEM certificate") from None


class Options(usage.Options):
    """The options of ``twistd txami``; see ``twistd txami --help``."""

    synopsis = "[options]"
    longdesc = (
        "Keep one AMI session logged in (reconnecting after any drop) and bridge it: "
        "events as JSON lines (--log-events) and, over HTTP (--http), a health check, "
        "a Server-Sent Events stream, actions and Prometheus metrics.  The secret is "
        f"read from --secret-file or the {SECRET_ENV} environment variable.  "
        "--demo runs against an embedded fake Asterisk with a little call traffic."
    )

    optFlags: ClassVar[list[list[str | None]]] = [
        ["tls", None, "Connect over TLS (Asterisk's tlsbindport, usually 5039)."],
        ["demo", None, "Run an embedded fake Asterisk with demo call traffic and connect to it."],
    ]
    optParameters: ClassVar[list[list[str | None]]] = [
        ["host", "h", None, "The Asterisk host to connect to (default: localhost)."],
        [
            "port",
            "p",
            None,
            f"The AMI port (default: {DEFAULT_PORT}; {DEFAULT_TLS_PORT} with TLS).",
        ],
        ["tls-ca", None, None, "PEM file of the CA certificate(s) to trust (implies --tls)."],
        ["username", "u", None, "The AMI user (a section of manager.conf)."],
        ["secret-file", None, None, f"File holding the AMI secret (else ${SECRET_ENV})."],
        [
            "auth",
            None,
            "plain",
            "Login method: plain, or md5 (the secret never crosses the wire).",
        ],
        ["events", None, "on", "Login event mask: on, off, or classes such as call,system."],
        ["log-events", None, None, "Write every event as a JSON line to PATH (- for stdout)."],
        ["log-events-rotate", None, "10000000", "Rotate the event log file at this many bytes."],
        ["log-events-keep", None, "10", "How many rotated event log files to keep."],
        [
            "http",
            None,
            None,
            "Serve the HTTP bridge on this server endpoint, e.g. tcp:8088:interface=127.0.0.1.",
        ],
        ["http-token-file", None, None, "File holding the bearer token HTTP clients must send."],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["filters"] = []
        #: The AMI secret and the HTTP token, set by `postOptions`; kept out of the
        #: option dict so that no repr of the options ever shows them.
        self.secret = ""
        self.http_token: str | None = None
        #: The client TLS options (with ``--tls``), made by `postOptions`.
        self.tls_options: Any = None

    def opt_filter(self, value: str) -> None:
        """An AMI event filter, e.g. 'Event: Hangup' (repeatable; re-applied after each login)."""
        if not value or any(c in value for c in "\r\n\0"):
            raise usage.UsageError("--filter must be one non-empty line")
        self["filters"].append(value)

    def opt_secret(self, value: str) -> None:
        """Refused: a secret on the command line is visible to every user (use --secret-file)."""
        raise usage.UsageError(
            f"--secret is not accepted (ps shows it to every user): "
            f"use --secret-file PATH or set {SECRET_ENV}"
        )

    def postOptions(self) -> None:
        """Check the options together; read the secret and token files."""
        if self["demo"]:
            for name in _DEMO_CONFLICTS:
                if self[name]:
                    raise usage.UsageError(
                        f"--demo runs its own server and cannot be combined with --{name}"
                    )
        if self["auth"] not in ("plain", "md5"):
            raise usage.UsageError(f"--auth must be plain or md5, not {self['auth']!r}")
        if not _MASK.match(self["events"]):
            raise usage.UsageError(
                f"--events must be on, off or classes such as call,system, not {self['events']!r}"
            )
        self._check_log()
        self._check_http()
        if self["demo"]:
            return
        self["host"] = self["host"] or "localhost"
        if self["tls-ca"]:
            self["tls"] = True
        self["port"] = self._port()
        if not self["username"]:
            raise usage.UsageError("--username is required (the AMI user from manager.conf)")
        if self["secret-file"]:
            self.secret = _read_text(self["secret-file"], "--secret-file")
        else:
            secret = os.environ.get(SECRET_ENV, "")
            if not secret:
                raise usage.UsageError(
                    f"no AMI secret: give --secret-file PATH or set {SECRET_ENV}"
                )
            self.secret = secret
        if self["tls"]:
            self.tls_options = _tls_options(self["host"], self["tls-ca"])

    def _port(self) -> int:
        raw = self["port"]
        if raw is None:
            return DEFAULT_TLS_PORT if self["tls"] else DEFAULT_PORT
        try:
            port = int(raw)
        except ValueError:
            port = 0
        if not 1 <= port <= 65535:
            raise usage.UsageError(f"--port must be a number from 1 to 65535, not {raw!r}")
        return port

    def _positive(self, name: str) -> int:
        raw = self[name]
        try:
            value = int(raw)
        except (TypeError, ValueError):
            value = 0
        if value < 1:
            raise usage.UsageError(f"--{name} must be a whole number above 0, not {raw!r}")
        return value

    def _check_log(self) -> None:
        self["log-events-rotate"] = self._positive("log-events-rotate")
        self["log-events-keep"] = self._positive("log-events-keep")
        path = self["log-events"]
        if path == "-" and self.parent is not None and not self.parent.get("nodaemon", True):
            # As twistd itself refuses --logfile=- without -n: a daemon's stdout is /dev/null.
            raise usage.UsageError("--log-events - needs twistd -n (a daemon has no stdout)")
        if path is None or path == "-":
            return
        if os.path.isdir(path):
            raise usage.UsageError(f"--log-events {path} is a directory")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise usage.UsageError(f"cannot write --log-events {path}: no directory {directory}")
        target = path if os.path.exists(path) else directory
        if not os.access(target, os.W_OK):
            raise usage.UsageError(f"cannot write --log-events {path}: permission denied")

    def _check_http(self) -> None:
        description = self["http"]
        token_file = self["http-token-file"]
        if description is None:
            if token_file:
                raise usage.UsageError("--http-token-file needs --http")
            return
        from twisted.internet.testing import MemoryReactor

        try:
            # Parsing only: nothing listens on this reactor.
            endpoints.serverFromString(MemoryReactor(), description)  # type: ignore[no-untyped-call]
        except Exception as error:
            raise usage.UsageError(f"bad --http endpoint {description!r}: {error}") from None
        if token_file:
            self.http_token = _read_text(token_file, "--http-token-file")
            return
        kind, interface = _endpoint_kind(description)
        if kind in _LOCAL_ENDPOINTS or (interface is not None and _is_loopback(interface)):
            return
        raise usage.UsageError(
            f"--http {description} listens beyond loopback: give --http-token-file, "
            "or listen on interface=127.0.0.1"
        )


def _stdout() -> TextIO:
    """The real standard output, even after twistd has redirected `sys.stdout` to its log."""
    from twisted.logger import LoggingFile

    if isinstance(sys.stdout, LoggingFile) and sys.__stdout__ is not None:
        return sys.__stdout__
    return sys.stdout


def makeService(options: Options, reactor: Any = None) -> IService:
    """
    The daemon's `BridgeService`, built from parsed ``options`` (on the
    global reactor unless ``reactor`` is given, as tests do).
    """
    if reactor is None:
        from twisted.internet import reactor
    return build_service(options, reactor, stdout=_stdout())


def build_service(options: Options, reactor: Any, *, stdout: TextIO) -> BridgeService:
    """The daemon described by parsed `Options`."""
    if options["demo"]:
        from txami.daemon.demo import DEMO_SECRET, DEMO_USERNAME, DemoPBXService

        username, secret = DEMO_USERNAME, DEMO_SECRET
    else:
        username, secret = options["username"], options.secret
    factory = AMIFactory(
        username,
        secret,
        reactor=reactor,
        auth=options["auth"],
        events=options["events"],
        filters=options["filters"],
        retry_on_auth_failure=True,
    )
    bridge = BridgeService(factory, reactor)
    port: int | Callable[[], int]
    if options["demo"]:
        demo = DemoPBXService(reactor)
        bridge.demo = demo
        demo.setServiceParent(bridge)  # type: ignore[no-untyped-call]
        host, port, tls = "127.0.0.1", demo.port_number, None
    else:
        host, port, tls = options["host"], options["port"], options.tls_options
    log_path = options["log-events"]
    if log_path is not None:
        if log_path == "-":
            log = EventLog(bridge.hub, stream=stdout)
        else:
            log = EventLog(
                bridge.hub,
                path=log_path,
                rotate_length=options["log-events-rotate"],
                max_rotated_files=options["log-events-keep"],
            )
        bridge.add_event_log(log)
    if options["http"] is not None:
        endpoint = endpoints.serverFromString(reactor, options["http"])  # type: ignore[no-untyped-call]
        bridge.add_http(endpoint, options.http_token)
    bridge.add_client(AMIClientService(factory, reactor, host, port, tls))
    return bridge
