"""
The options every ``txami`` command shares, and the PBX they name.

A PBX is given either on the command line (``--host``, ``--port``,
``--tls``, ``--tls-ca``, ``--username``, ``--secret-file``, ``--auth``) or as
a ``[pbx:NAME]`` section of a configuration file (``--config FILE --pbx
NAME``, the format of `txami.config`, which the daemon reads too).  Without
either, the file ``~/.config/txami/txami.ini`` is used if it exists.  The
secret never comes from the command line (``ps`` shows arguments to every
user): it is read from ``--secret-file`` or the ``TXAMI_SECRET`` environment
variable, and ``--secret`` is refused.

The options may stand before the command name or after it, and a
command's own options may follow its arguments (``txami action Ping
--json``).  Every check is made while parsing, so a bad command line ends
with exit code 2 before anything connects.
"""

from __future__ import annotations

import getopt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from twisted.python import usage

from txami.config import (
    DEFAULT_CONFIG,
    DEFAULT_PORT,
    DEFAULT_TLS_PORT,
    SECRET_ENV,
    ConfigError,
    PBXConfig,
    load_config,
    read_secret_file,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "CommandOptions",
    "ConnectionOptions",
    "Settings",
    "resolve",
]

#: Seconds to wait for the connection, the login and each answer, unless ``--timeout``.
DEFAULT_TIMEOUT = 10.0

#: The options that say where the PBX is, when no configuration file does.
_DIRECT = ("host", "port", "tls", "tls-ca", "username", "secret-file", "auth")
_SHARED = (*_DIRECT, "timeout", "config", "pbx", "debug")


class ConnectionOptions(usage.Options):
    """The options of the PBX connection, taken before or after the command name."""

    optFlags: ClassVar[list[list[str | None]]] = [
        ["tls", None, "Connect over TLS (Asterisk's tlsbindport, usually 5039)."],
        ["debug", None, "Log what txami does to stderr, and show tracebacks."],
    ]
    optParameters: ClassVar[list[list[str | None]]] = [
        ["host", "h", None, "The Asterisk host (default: localhost)."],
        ["port", "p", None, f"AMI port (default: {DEFAULT_PORT}; {DEFAULT_TLS_PORT} with TLS)."],
        ["tls-ca", None, None, "PEM file of the CA certificate(s) to trust (implies --tls)."],
        ["username", "u", None, "The AMI user (a section of manager.conf)."],
        ["secret-file", None, None, f"File holding the AMI secret (else ${SECRET_ENV})."],
        ["auth", None, None, "Login method: plain (default), or md5 (the secret stays home)."],
        [
            "timeout",
            "t",
            None,
            f"Seconds to wait to connect and log in, and for each answer "
            f"(default {DEFAULT_TIMEOUT:g}).",
        ],
        ["config", "c", None, f"The configuration file (default {DEFAULT_CONFIG})."],
        ["pbx", None, None, "The [pbx:NAME] section of the configuration file to use."],
    ]

    def opt_secret(self, value: str) -> None:
        """Refused: a secret on the command line is visible to every user (use --secret-file)."""
        raise usage.UsageError(
            "--secret is not accepted (ps shows it to every user): "
            f"use --secret-file PATH or set {SECRET_ENV}"
        )

    def opt_version(self) -> None:
        """Print the version of txami and exit."""
        from txami import __version__

        print(f"txami {__version__}")
        raise SystemExit(0)


class CommandOptions(ConnectionOptions):
    """
    A command's options.  Unlike Twisted's default, options may follow the
    arguments, as in ``txami action Ping --json`` (``--`` ends the options).
    """

    #: The command's usage line, e.g. ``Usage: txami ping [options]``.
    synopsis = "Usage: txami COMMAND [options]"

    def getSynopsis(self) -> str:
        """The command's own usage line (Twisted's would repeat the top level's)."""
        synopsis: str = self.synopsis
        return synopsis

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """Move every option before the arguments, then parse as usual."""
        if options is None:  # pragma: no cover - txami always passes its arguments
            raise TypeError("CommandOptions.parseOptions needs the arguments")
        takes_value = {"--" + name[:-1] for name in self.longOpt if name.endswith("=")}
        short: str = self.shortOpt
        takes_value.update(f"-{c}" for i, c in enumerate(short) if short[i + 1 : i + 2] == ":")
        try:
            found, arguments = getopt.gnu_getopt(list(options), short, self.longOpt)
        except getopt.GetoptError as error:
            raise usage.UsageError(str(error)) from None
        ordered: list[str] = []
        for name, value in found:
            if name in takes_value:
                ordered.append(f"{name}={value}" if name.startswith("--") else name + value)
            else:
                ordered.append(name)
        super().parseOptions([*ordered, "--", *arguments])  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Settings:
    """What the options say: the PBX, its client TLS options, the timeout, and ``--debug``."""

    pbx: PBXConfig
    tls: Any
    timeout: float
    debug: bool

    @property
    def where(self) -> str:
        """``host:port`` of the PBX, for messages."""
        host = self.pbx.host
        return f"[{host}]:{self.pbx.port}" if ":" in host else f"{host}:{self.pbx.port}"


def _merged(top: Mapping[str, Any], command: Mapping[str, Any]) -> dict[str, Any]:
    """The shared options, those given after the command name winning."""
    merged = {}
    for key in _SHARED:
        value = command.get(key)
        merged[key] = value if value else top.get(key)
    return merged


def _timeout(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < 1e6:
        raise usage.UsageError(f"--timeout must be a number of seconds above 0, not {raw!r}")
    return value


def _from_file(path: str, name: str | None) -> PBXConfig:
    try:
        config = load_config(path)
    except ConfigError as error:
        raise usage.UsageError(str(error)) from None
    try:
        return config.pbx(name)
    except KeyError as error:
        raise usage.UsageError(str(error.args[0])) from None


def _from_command_line(given: Mapping[str, Any], environ: Mapping[str, str]) -> PBXConfig:
    host = given["host"] or "localhost"
    tls_ca = given["tls-ca"]
    tls = bool(given["tls"] or tls_ca)
    if tls_ca is not None and not os.path.isfile(os.path.expanduser(tls_ca)):
        raise usage.UsageError(f"--tls-ca {tls_ca} is not a file")
    raw = given["port"]
    if raw is None:
        port = DEFAULT_TLS_PORT if tls else DEFAULT_PORT
    else:
        port = int(raw) if raw.isdecimal() else 0
        if not 1 <= port <= 65535:
            raise usage.UsageError(f"--port must be a number from 1 to 65535, not {raw!r}")
    auth = given["auth"] or "plain"
    if auth not in ("plain", "md5"):
        raise usage.UsageError(f"--auth must be plain or md5, not {auth!r}")
    username = given["username"]
    if not username:
        raise usage.UsageError("--username is required (the AMI user from manager.conf)")
    if given["secret-file"]:
        try:
            secret = read_secret_file(given["secret-file"])
        except ValueError as error:
            raise usage.UsageError(f"--secret-file: {error}") from None
    else:
        secret = environ.get(SECRET_ENV, "")
        if not secret:
            raise usage.UsageError(f"no AMI secret: give --secret-file PATH or set {SECRET_ENV}")
    return PBXConfig(
        name="",
        username=username,
        secret=secret,
        host=host,
        port=port,
        tls=tls,
        tls_ca=os.path.expanduser(tls_ca) if tls_ca else None,
        auth=auth,
    )


def _tls_options(pbx: PBXConfig) -> Any:
    """The client TLS options of ``pbx`` (None without TLS); UsageError if they cannot be made."""
    if not pbx.tls:
        return None
    try:
        return pbx.tls_options()
    except ImportError:  # pragma: no cover - depends on the environment
        raise usage.UsageError("TLS needs pyOpenSSL: pip install 'txami[tls]'") from None
    except OSError as error:
        raise usage.UsageError(f"cannot read the CA file {pbx.tls_ca}: {error.strerror}") from None
    except Exception:
        raise usage.UsageError(f"the CA file {pbx.tls_ca} holds no PEM certificate") from None


def resolve(
    top: Mapping[str, Any], command: Mapping[str, Any], environ: Mapping[str, str]
) -> Settings:
    """
    The `Settings` the parsed options (``top``: before the command name,
    ``command``: after it) describe; `usage.UsageError` if they do not
    describe one PBX.  ``environ`` is where ``TXAMI_SECRET`` is read.
    """
    given = _merged(top, command)
    timeout = _timeout(given["timeout"])
    direct = [key for key in _DIRECT if given[key]]
    if given["config"] or given["pbx"]:
        if direct:
            raise usage.UsageError(
                f"--{direct[0]} cannot be combined with --config or --pbx: "
                "the [pbx:NAME] section says how to connect"
            )
        pbx = _from_file(given["config"] or DEFAULT_CONFIG, given["pbx"])
    elif direct:
        pbx = _from_command_line(given, environ)
    elif os.path.isfile(os.path.expanduser(DEFAULT_CONFIG)):
        pbx = _from_file(DEFAULT_CONFIG, None)
    else:
        raise usage.UsageError(
            "which PBX? Give --host and --username (the secret in --secret-file or "
            f"${SECRET_ENV}), or --pbx NAME of a [pbx:NAME] section in {DEFAULT_CONFIG}"
        )
    return Settings(pbx, _tls_options(pbx), timeout, bool(given["debug"]))
