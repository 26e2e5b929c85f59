"""
The plain `txami.AMIProtocol` under Twisted's `ClientService`, for programs
that prefer endpoints to `txami.AMIFactory`.

    TXAMI_SECRET=... python examples/client_service.py tcp:pbx.example:5038 admin
    TXAMI_SECRET=... python examples/client_service.py tls:pbx.example:5039 admin

`ClientService` reconnects with its own backoff and calls ``prepareConnection``
(here: Login) on every new connection; one shared `EventDispatcher` keeps the
handlers across connections.  What it does not do, and `AMIFactory` does:
stop on a refused login (it retries), restore Events/Filter state, keepalive
pings, connection listeners and counters.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import endpoints
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory

from txami import AMIProtocol, EventDispatcher, Message


def ami_client_service(
    reactor: Any,
    endpoint: IStreamClientEndpoint,
    username: str,
    secret: str,
    *,
    events: str = "on",
    dispatcher: EventDispatcher | None = None,
    retry_policy: Callable[[int], float] | None = None,
) -> ClientService:
    """
    A `ClientService` whose connections are `AMIProtocol` sessions logged in
    as ``username``.  ``retry_policy`` defaults to Twisted's backoff capped at
    30 s (plus up to 1 s of jitter).
    """
    shared = dispatcher if dispatcher is not None else EventDispatcher()
    factory = Factory.forProtocol(lambda: AMIProtocol(reactor, dispatcher=shared))

    def log_in(protocol: Any) -> Deferred[Message]:
        # A failure here (a refused login) makes ClientService drop the
        # connection and try again later; whenConnected waits for a success.
        ami: AMIProtocol = protocol
        return ami.login(username, secret, events=events)

    return ClientService(
        endpoint,
        factory,
        retryPolicy=retry_policy if retry_policy is not None else backoffPolicy(maxDelay=30),
        clock=reactor,
        prepareConnection=log_in,
    )


async def main(reactor: Any, description: str, username: str, secret: str) -> None:
    """Print every Hangup until Ctrl-C; then log off."""
    dispatcher = EventDispatcher()
    dispatcher.add("Hangup", lambda event: print("hangup", event.get("Channel")))
    endpoint = endpoints.clientFromString(reactor, description)  # type: ignore[no-untyped-call]
    service = ami_client_service(reactor, endpoint, username, secret, dispatcher=dispatcher)
    service.startService()

    # Stopping the reactor (Ctrl-C) first stops the service: no reconnect, connection closed.
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    protocol: Any = await service.whenConnected()
    print("logged in to AMI", protocol.ami_version)
    await Deferred()  # run until the reactor stops


if __name__ == "__main__":
    from twisted.internet.task import react

    secret = os.environ.get("TXAMI_SECRET", "")  # not on the command line: ps would show it
    react(
        lambda reactor, *argv: Deferred.fromCoroutine(main(reactor, *argv, secret)),
        sys.argv[1:],
    )
