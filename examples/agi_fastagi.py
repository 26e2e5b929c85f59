"""
A FastAGI server with txami.agi: Asterisk hands each call to `handler`.

In the dialplan::

    exten => 900,1,AGI(agi://127.0.0.1:4573/greet,Alice)

Serve it (one of)::

    python examples/agi_fastagi.py --port 4573
    twistd -n txami-agi --port tcp:4573 --handler examples.agi_fastagi.handler

or try it without Asterisk, against txami's fake channel::

    python examples/agi_fastagi.py --demo

docs/agi.rst quotes this file; the test suite runs the demo, and the same
handler under ``twistd txami-agi``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import react

from txami.agi import AGICommands, FastAGIFactory


async def handler(agi: AGICommands) -> None:
    """
    Answer, greet the caller, read up to four digits and keep them in a
    channel variable; count the calls in Asterisk's database.  If the caller
    hangs up, the next command raises `AGIHangup` and the handler just ends.
    """
    env = agi.env
    name = env.arguments[0] if env.arguments else env.caller_id_name
    await agi.answer()
    await agi.verbose(f"txami example: {name} calls from {env.caller_id} on {env.channel}")
    await agi.stream_file("hello-world")
    entered = await agi.get_data("enter-number", timeout=3000, max_digits=4)
    if entered.failed:  # -1: a missing sound file, or a hangup
        await agi.verbose("txami example: could not read digits")
    else:
        await agi.set_variable("TXAMI_ENTERED", entered.result)
    calls = int(await agi.database_get("txami-example", "calls") or "0") + 1
    await agi.database_put("txami-example", "calls", calls)
    await agi.set_variable("TXAMI_CALLS", calls)


async def serve(reactor: Any, port: int, interface: str) -> None:
    """Serve `handler` on ``interface:port`` until the process is stopped."""
    listening = reactor.listenTCP(
        port, FastAGIFactory(handler, reactor=reactor), interface=interface
    )
    print(f"FastAGI on {interface}:{listening.getHost().port}; Ctrl-C stops")
    await Deferred()  # forever


async def demo(reactor: Any, say: Any = print) -> None:
    """Serve `handler` on a free port and call it once from txami's fake channel."""
    from txami.testing.agi import FakeAGI

    listening = reactor.listenTCP(
        0, FastAGIFactory(handler, reactor=reactor), interface="127.0.0.1"
    )
    try:
        channel = FakeAGI(arguments=["Alice"], caller_id="100", digits="42#", script="greet")
        await channel.connect(reactor, "127.0.0.1", listening.getHost().port)
    finally:
        await listening.stopListening()
    for line in channel.commands:
        say(f"> {line}")
    say(f"TXAMI_ENTERED={channel.variables['TXAMI_ENTERED']}")
    say(f"TXAMI_CALLS={channel.variables['TXAMI_CALLS']}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--port", type=int, default=4573)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--demo", action="store_true", help="call the handler from a fake channel")
    args = parser.parse_args(argv)
    if args.demo:
        react(lambda reactor: Deferred.fromCoroutine(demo(reactor)))
    else:
        react(lambda reactor: Deferred.fromCoroutine(serve(reactor, args.port, args.interface)))


if __name__ == "__main__":
    main(sys.argv[1:])
