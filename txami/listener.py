"""
Connection events for applications: `IConnectionListener`.

`AMIFactory.add_connection_listener` takes any object; the factory calls each
of the methods below that the object has, so a listener may implement only
the ones it cares about (declaring the interface is optional).  A listener
that raises is logged; the factory and the other listeners carry on.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger
from zope.interface import Interface

__all__ = ["IConnectionListener"]

_log = Logger(namespace="txami.listener")


class IConnectionListener(Interface):
    """What `AMIFactory` tells about its connections; every method is optional."""

    def connected(protocol: Any) -> None:  # noqa: N805
        """A TCP (or TLS) connection was made; the login has not happened yet."""

    def logged_in(protocol: Any) -> None:  # noqa: N805
        """
        The session is logged in and its event mask and filters are restored:
        the factory's actions go to ``protocol`` from now on.
        """

    def disconnected(reason: Any) -> None:  # noqa: N805
        """A connection that had been made ended (``reason`` is the transport's Failure)."""

    def auth_failed(error: Any) -> None:  # noqa: N805
        """The server refused the login (``error`` is the `AuthenticationError`)."""

    def connection_failed(reason: Any) -> None:  # noqa: N805
        """A connection attempt failed before connecting (``reason`` is a Failure)."""


def notify(listeners: list[object], method: str, argument: object) -> None:
    """Call ``listener.method(argument)`` on every listener that has it; never raises."""
    for listener in list(listeners):
        callback = getattr(listener, method, None)
        if callback is None:
            continue
        try:
            callback(argument)
        except Exception:
            _log.failure(
                "connection listener {listener!r} raised in {method}",
                listener=listener,
                method=method,
            )
