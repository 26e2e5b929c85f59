"""
AsyncAGI with txami.agi: drive calls through the AMI connection, no AGI port.

In the dialplan::

    exten => 901,1,Answer()
     same => n,AGI(agi:async)
     same => n,Hangup()

Run it against Asterisk (the AMI user needs the ``agi`` class, read and write)::

    TXAMI_SECRET=... python examples/agi_async.py --host pbx.example.com --username admin

or try it without Asterisk, against txami's fake server and a fake channel::

    python examples/agi_async.py --demo

docs/agi.rst quotes this file; the test suite runs the demo, and the handler
against the real Asterisk when one is configured.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import react

from txami import connect
from txami.agi import AGICommands, AsyncAGI, AsyncAGIServer


async def handler(agi: AGICommands) -> None:
    """
    Answer, note the call in a channel variable, and wait up to five seconds
    for a key.  Returning ends AsyncAGI (txami sends ``ASYNCAGI BREAK``), and
    the channel carries on in the dialplan.
    """
    await agi.answer()
    await agi.set_variable("TXAMI_HANDLED_BY", "examples/agi_async.py")
    pressed = await agi.wait_for_digit(5000)
    await agi.set_variable("TXAMI_PRESSED", pressed.digit or "none")
    await agi.verbose(f"txami example: {agi.env.channel} pressed {pressed.digit or 'nothing'}")


async def serve(reactor: Any, host: str, port: int, username: str, secret: str) -> None:
    """Run `handler` for every channel that enters AsyncAGI, until the process is stopped."""
    ami = await connect(reactor, host, port, username=username, secret=secret)
    AsyncAGIServer(ami, handler).start()
    print(f"AsyncAGI over AMI at {host}:{port}; Ctrl-C stops")
    await Deferred()  # forever


async def demo(reactor: Any, say: Any = print) -> None:
    """One fake channel in AsyncAGI on txami's fake Asterisk, driven by `handler`."""
    from txami.testing import FakeAsterisk, listen
    from txami.testing.agi import FakeAGI, FakeAsyncAGI

    fake = FakeAsterisk(reactor)
    asyncagi = FakeAsyncAGI(fake)
    listening = listen(fake, reactor)
    ami = await connect(
        reactor, "127.0.0.1", listening.getHost().port, username="admin", secret="adminsecret"
    )
    started: Deferred[AsyncAGI] = Deferred()

    def tracked(agi: AsyncAGI) -> Any:
        started.callback(agi)
        return handler(agi)

    server = AsyncAGIServer(ami, tracked)
    server.start()
    try:
        channel = FakeAGI(channel="PJSIP/100-00000001", digits="5")
        asyncagi.start(channel)
        session = await started
        await session.when_ended()
        await server.stop()
    finally:
        await ami.stop()
        await listening.stopListening()
        fake.stop()
    for line in channel.commands:
        say(f"> {line}")
    say(f"TXAMI_PRESSED={channel.variables['TXAMI_PRESSED']}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5038)
    parser.add_argument("--username", default="admin")
    parser.add_argument("--demo", action="store_true", help="use a fake server and channel")
    args = parser.parse_args(argv)
    if args.demo:
        react(lambda reactor: Deferred.fromCoroutine(demo(reactor)))
        return
    secret = os.environ.get("TXAMI_SECRET", "")
    if not secret:
        parser.error("set TXAMI_SECRET to the AMI user's secret")
    react(
        lambda reactor: Deferred.fromCoroutine(
            serve(reactor, args.host, args.port, args.username, secret)
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
