"""
``twistd txami``: the command line (`Options`), and `makeService`, which
builds the daemon's service tree from it.

``--config FILE`` describes every PBX (``[pbx:NAME]``), the HTTP bridge
(``[http]``) and Redis (``[redis]``): see `txami.daemon.config`.  Without it,
the flags describe one PBX called ``default``, checked by the same rules as
the file's keys.

Every check that can fail is made while parsing, so a bad command line or
file stops twistd at once with a `usage.UsageError` (a file's problems all
at once, one per line) instead of a daemon that starts half-configured.  The
AMI secret never comes from the command line (``ps`` shows arguments to
every user): it is read from ``--secret-file`` or the ``TXAMI_SECRET``
environment variable.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any, ClassVar, TextIO

from twisted.application.service import IService
from twisted.internet import endpoints
from twisted.python import usage

from txami.config import (
    DEFAULT_PORT,
    DEFAULT_TLS_PORT,
    PBX_KEYS,
    SECRET_ENV,
    ConfigError,
    PBXConfig,
    Section,
    check_event_mask,
    check_pbx,
    read_secret_file,
)
from txami.daemon.acl import AccessList, load_acl
from txami.daemon.config import (
    DaemonConfig,
    HTTPConfig,
    check_endpoint,
    check_http_exposure,
    load_daemon_config,
    pbx_tls_options,
)
from txami.daemon.eventlog import EventLog
from txami.daemon.service import BridgeService
from txami.daemon.session import PBXSession

__all__ = [
    "DEFAULT_PBX",
    "DEFAULT_PORT",
    "DEFAULT_TLS_PORT",
    "SECRET_ENV",
    "Options",
    "build_service",
    "makeService",
]

#: The name of the PBX the flags describe.
DEFAULT_PBX = "default"
# The options --demo replaces, and the flags that mark them as given.
_DEMO_CONFLICTS = ("host", "port", "tls", "tls-ca", "username", "secret-file")
# The options --config replaces.
_CONFIG_CONFLICTS = (
    *_DEMO_CONFLICTS,
    "auth",
    "events",
    "http",
    "http-token-file",
    "http-acl",
    "demo",
)
_FLAG_SOURCE = "the command line"
_FLAG_KEYS = sorted(PBX_KEYS | {"http-token-file"}, key=len, reverse=True)


def _flag_message(message: str) -> str:
    """A problem of the file's rules said in terms of the flags (``--port must be ...``)."""
    prefix = f"{_FLAG_SOURCE}:0: [pbx:{DEFAULT_PBX}] "
    if message.startswith(prefix):
        message = message[len(prefix) :]
    if message.startswith("has no secret-file"):
        return f"no AMI secret: give --secret-file PATH or set {SECRET_ENV}"
    for key in _FLAG_KEYS:
        if message.startswith(f"{key}: "):
            inner = message[len(key) + 2 :]
            if inner.startswith("cannot read "):
                return f"cannot read --{key} {inner[len('cannot read ') :]}"
            return f"--{key} {inner}"
        if message.startswith(f"{key} "):
            return f"--{message}"
        if message.startswith(f"cannot read {key} "):
            return f"cannot read --{message[len('cannot read ') :]}"
    return message


def _flag_problem(problems: list[str]) -> usage.UsageError:
    return usage.UsageError("\n".join(_flag_message(problem) for problem in problems))


class Options(usage.Options):
    """The options of ``twistd txami``; see ``twistd txami --help``."""

    synopsis = "[options]"
    longdesc = (
        "Keep AMI sessions logged in (reconnecting after any drop) and bridge them: "
        "events as JSON lines (--log-events), over HTTP (a health check, a Server-Sent "
        "Events stream, actions, Prometheus metrics, the live state and a call board for "
        "the browser, with scoped tokens: --http-acl) and through Redis Streams.  "
        "--config FILE describes every PBX ([pbx:NAME]), [http] and [redis]; without it, "
        "the flags describe one PBX called 'default'.  The secret is read from "
        f"--secret-file or the {SECRET_ENV} environment variable.  "
        "--demo runs against an embedded fake Asterisk with a little call traffic."
    )

    optFlags: ClassVar[list[list[str | None]]] = [
        ["tls", None, "Connect over TLS (Asterisk's tlsbindport, usually 5039)."],
        ["demo", None, "Run an embedded fake Asterisk with demo call traffic and connect to it."],
    ]
    optParameters: ClassVar[list[list[str | None]]] = [
        [
            "config",
            None,
            None,
            "The configuration file: [pbx:NAME] sections, [http], [redis] "
            "(instead of the PBX and HTTP flags).",
        ],
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
            None,
            "Login method: plain (the default), or md5 (the secret never crosses the wire).",
        ],
        [
            "events",
            None,
            None,
            "Login event mask: on (the default), off, or classes: call,system.",
        ],
        ["log-events", None, None, "Write every event as a JSON line to PATH (- for stdout)."],
        ["log-events-rotate", None, "10000000", "Rotate the event log file at this many bytes."],
        ["log-events-keep", None, "10", "How many rotated event log files to keep."],
        [
            "http",
            None,
            None,
            "Serve the HTTP bridge and the call board on this server endpoint, "
            "e.g. tcp:8088:interface=127.0.0.1.",
        ],
        ["http-token-file", None, None, "File holding the bearer token HTTP clients must send."],
        [
            "http-acl",
            None,
            None,
            "INI file of HTTP tokens and what each may do (read, actions, PBXs); "
            "instead of --http-token-file.",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["filters"] = []
        #: The AMI secret and the HTTP token, set by `postOptions`; kept out of the
        #: option dict so that no repr of the options ever shows them.
        self.secret = ""
        self.http_token: str | None = None
        #: The tokens and their grants (with ``--http-acl``).
        self.http_access: AccessList | None = None
        #: The client TLS options (with ``--tls``), made by `postOptions`.
        self.tls_options: Any = None
        #: What the daemon runs, made by `postOptions` from the file or the flags.
        self.daemon_config = DaemonConfig({})

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
        """Check the options together; read the file, or the secret and token files."""
        if self["config"]:
            given = [name for name in _CONFIG_CONFLICTS if self[name]]
            if self["filters"]:
                given.append("filter")
            if given:
                raise usage.UsageError(
                    f"--config describes the PBXs and HTTP: --{given[0]} cannot be combined "
                    "with it (put it in the file)"
                )
            self._check_log()
            try:
                self.daemon_config = load_daemon_config(self["config"])
            except ConfigError as error:
                raise usage.UsageError(str(error)) from None
            if self.daemon_config.redis is not None:
                from txami.daemon.redisconn import redis_available

                why = redis_available()
                if why is not None:
                    raise usage.UsageError(f"{self.daemon_config.redis.source}: [redis] {why}")
            return
        if self["demo"]:
            for name in _DEMO_CONFLICTS:
                if self[name]:
                    raise usage.UsageError(
                        f"--demo runs its own server and cannot be combined with --{name}"
                    )
        pbx = self._check_pbx()
        self._check_log()
        http = self._check_http()
        if pbx is None:  # --demo: build_service makes the PBX
            self.daemon_config = DaemonConfig({}, {}, http)
            return
        self["host"], self["port"], self["tls"] = pbx.host, pbx.port, pbx.tls
        self.secret = pbx.secret
        try:
            self.tls_options = pbx_tls_options(pbx)
        except ValueError as error:
            raise _flag_problem([str(error)]) from None
        self.daemon_config = DaemonConfig({pbx.name: pbx}, {pbx.name: self.tls_options}, http)

    def _check_pbx(self) -> PBXConfig | None:
        """The PBX the flags describe, checked by the file's rules (None with --demo)."""
        values: dict[str, tuple[str, ...]] = {}
        for key in ("host", "port", "tls-ca", "username", "secret-file", "auth", "events"):
            if self[key] is not None:
                values[key] = (str(self[key]),)
        if self["tls"]:
            values["tls"] = ("yes",)
        if self["filters"]:
            values["filter"] = tuple(self["filters"])
        if self["demo"]:
            # The demo provides the server and the user: only the login's options apply.
            auth, events = self["auth"] or "plain", self["events"] or "on"
            if auth not in ("plain", "md5"):
                raise usage.UsageError(f"--auth must be plain or md5, not {auth!r}")
            why = check_event_mask(events)
            if why is not None:
                raise usage.UsageError(f"--{why}")
            self["auth"], self["events"] = auth, events
            return None
        section = Section(f"pbx:{DEFAULT_PBX}", _FLAG_SOURCE, 0, values, {})
        try:
            pbx = check_pbx(DEFAULT_PBX, section)
        except ConfigError as error:
            raise _flag_problem(error.problems) from None
        self["auth"], self["events"] = pbx.auth, pbx.events
        return pbx

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

    def _check_http(self) -> HTTPConfig | None:
        """The HTTP bridge the flags describe, checked by the ``[http]`` section's rules."""
        description = self["http"]
        token_file = self["http-token-file"]
        acl = self["http-acl"]
        if description is None:
            if token_file:
                raise usage.UsageError("--http-token-file needs --http")
            if acl:
                raise usage.UsageError("--http-acl needs --http")
            return None
        if token_file and acl:
            raise usage.UsageError(
                "give --http-token-file or --http-acl, not both "
                "(the access list can grant everything to a token)"
            )
        why = check_endpoint(description)
        if why is not None:
            raise usage.UsageError(why.replace("bad endpoint", "bad --http endpoint", 1))
        if token_file:
            try:
                self.http_token = read_secret_file(token_file)
            except ValueError as error:
                raise _flag_problem([f"http-token-file: {error}"]) from None
        if acl:
            try:
                self.http_access = load_acl(acl)
            except ConfigError as error:
                raise usage.UsageError(
                    f"--http-acl {acl}:\n" + "\n".join(error.problems)
                ) from None
        tokens = self.http_token is not None or self.http_access is not None
        if check_http_exposure(description, tokens) is not None:
            raise usage.UsageError(
                f"--http {description} listens beyond loopback: give --http-token-file "
                "or --http-acl, or listen on interface=127.0.0.1"
            )
        return HTTPConfig(description, self.http_token, _FLAG_SOURCE, self.http_access)


def _stdout() -> TextIO:
    """The real standard output, even after twistd has redirected `sys.stdout` to its log."""
    from twisted.logger import LoggingFile

    if isinstance(sys.stdout, LoggingFile) and sys.__stdout__ is not None:
        return sys.__stdout__
    return sys.stdout


def makeService(options: Options, reactor: Any = None) -> IService:
    """
    The daemon's `BridgeService`, built from parsed ``options`` (on the
    global reactor unless ``reactor`` is given, as tests do).  On the global
    reactor, as twistd calls it, its start-up objects are then frozen
    (`freeze_startup_objects`).
    """
    for_twistd = reactor is None
    if reactor is None:
        from twisted.internet import reactor
    service = build_service(options, reactor, stdout=_stdout())
    if for_twistd:
        freeze_startup_objects()
    return service


def freeze_startup_objects() -> None:
    """
    Leave the daemon's start-up objects out of the garbage collector's passes
    (`gc.freeze`), once its service tree is built.

    They live as long as the process: the modules, the classes, the service
    tree and, above all, the PBX buffers.  A full collection walks every
    object it tracks and everything they hold, so without this it would walk
    each buffered entry: with a million entries held while Redis is down,
    about 50 ms each time here, against nothing once frozen.  Only the twistd
    daemon does this (`makeService` on the global reactor), since it owns its
    process; a program that builds the service tree itself decides for itself.
    """
    gc.collect()
    gc.freeze()


def build_service(options: Options, reactor: Any, *, stdout: TextIO) -> BridgeService:
    """The daemon described by parsed `Options`."""
    config = options.daemon_config
    bridge = BridgeService(reactor)
    if options["demo"]:
        from txami.daemon.demo import DEMO_SECRET, DEMO_USERNAME, DemoPBXService

        demo = DemoPBXService(reactor)
        bridge.demo = demo
        bridge.add_service(demo)
        pbx = PBXConfig(
            DEFAULT_PBX,
            DEMO_USERNAME,
            DEMO_SECRET,
            host="127.0.0.1",
            auth=options["auth"],
            events=options["events"],
            filters=tuple(options["filters"]),
        )
        bridge.add_session(PBXSession(pbx, reactor, port=demo.port_number, uptime=bridge.uptime))
    else:
        for name, pbx in config.pbxs.items():
            session = PBXSession(
                pbx, reactor, tls_options=config.tls.get(name), uptime=bridge.uptime
            )
            bridge.add_session(session)
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
    if config.redis is not None:
        from txami.daemon.redisbridge import add_redis

        add_redis(bridge, config.redis, reactor)
    if config.http is not None:
        endpoint = endpoints.serverFromString(reactor, config.http.listen)  # type: ignore[no-untyped-call]
        bridge.add_http(endpoint, config.http.token, access=config.http.access)
    bridge.add_sessions()
    return bridge
