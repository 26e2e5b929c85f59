"""
``twistd txami-agi``: host a FastAGI handler as a daemon.

::

    twistd -n txami-agi --port tcp:4573 --handler mypackage.calls.handle

``--handler`` names any importable callable ``handler(agi)`` (it may return
a Deferred or be ``async def``); ``--port`` is a Twisted server endpoint
(default ``tcp:4573:interface=127.0.0.1``: FastAGI has no authentication, so
listening beyond loopback is a choice to make explicitly).  Every check is
made while parsing, so a bad command line stops twistd at once.
"""

from __future__ import annotations

from typing import Any, ClassVar

from twisted.application import strports
from twisted.application.service import IService
from twisted.internet import endpoints
from twisted.python import reflect, usage

from txami.agi.fastagi import FastAGIFactory
from txami.agi.handler import AGIHandler

__all__ = ["DEFAULT_PORT", "Options", "makeService"]

#: The endpoint ``--port`` defaults to: Asterisk's FastAGI port, on loopback only.
DEFAULT_PORT = "tcp:4573:interface=127.0.0.1"


def load_handler(name: str) -> AGIHandler:
    """The callable named ``package.module.callable``; `usage.UsageError` if there is none."""
    if "." not in name:
        raise usage.UsageError(f"--handler must be package.module.callable, not {name!r}")
    try:
        handler = reflect.namedAny(name)  # type: ignore[no-untyped-call]
    except (reflect.ObjectNotFound, reflect.InvalidName, AttributeError, ValueError) as error:
        raise usage.UsageError(f"cannot find --handler {name}: {error}") from None
    except Exception as error:
        raise usage.UsageError(
            f"importing --handler {name} failed: {type(error).__name__}: {error}"
        ) from None
    if not callable(handler):
        raise usage.UsageError(f"--handler {name} is not callable")
    result: AGIHandler = handler
    return result


class Options(usage.Options):
    """The options of ``twistd txami-agi``; see ``twistd txami-agi --help``."""

    synopsis = "--handler package.module.callable [--port ENDPOINT]"
    longdesc = (
        "Serve FastAGI: Asterisk's AGI(agi://host:port/script,args) connects, and the "
        "handler drives the call with txami.agi's commands.  The connection closes (and "
        "the call carries on in the dialplan) when the handler is done."
    )

    optParameters: ClassVar[list[list[str | None]]] = [
        [
            "port",
            "p",
            DEFAULT_PORT,
            "The server endpoint to listen on, e.g. tcp:4573 (every interface).",
        ],
        ["handler", None, None, "The handler: an importable package.module.callable."],
        [
            "environment-timeout",
            None,
            "10",
            "Seconds a connection may take to send its AGI environment.",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        #: The loaded handler, set by `postOptions`.
        self.handler: AGIHandler | None = None

    def postOptions(self) -> None:
        """Load the handler, check the endpoint and the timeout."""
        if not self["handler"]:
            raise usage.UsageError("--handler is required (package.module.callable)")
        self.handler = load_handler(self["handler"])
        from twisted.internet.testing import MemoryReactor

        try:
            # Parsing only: nothing listens on this reactor.
            endpoints.serverFromString(MemoryReactor(), self["port"])  # type: ignore[no-untyped-call]
        except Exception as error:
            raise usage.UsageError(f"bad --port endpoint {self['port']!r}: {error}") from None
        raw = self["environment-timeout"]
        try:
            timeout = float(raw)
        except (TypeError, ValueError):
            timeout = 0.0
        if not timeout > 0:
            raise usage.UsageError(
                f"--environment-timeout must be a number of seconds above 0, not {raw!r}"
            )
        self["environment-timeout"] = timeout


def makeService(options: Options, reactor: Any = None) -> IService:
    """
    A service that listens on ``--port`` and runs the handler for every
    FastAGI connection (on the global reactor unless ``reactor`` is given).
    """
    if reactor is None:
        from twisted.internet import reactor
    assert options.handler is not None
    factory = FastAGIFactory(
        options.handler, reactor=reactor, environment_timeout=options["environment-timeout"]
    )
    service: IService = strports.service(options["port"], factory, reactor=reactor)
    return service
