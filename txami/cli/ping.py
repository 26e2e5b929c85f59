"""``txami ping``: log in, send one Ping, print the round-trip time."""

from __future__ import annotations

import time

from txami.cli.context import Context
from txami.cli.options import CommandOptions

__all__ = ["Options", "run"]


class Options(CommandOptions):
    """The options of ``txami ping``."""

    synopsis = "Usage: txami ping [options]"
    longdesc = "Log in, send a Ping, and print how long the Pong took (exit 0)."


async def run(context: Context) -> int:
    """Ping the PBX once; print ``Pong from HOST:PORT (AMI X.Y.Z): N ms``."""
    factory = await context.connect()
    protocol = factory.protocol_instance
    version = protocol.ami_version if protocol is not None else None
    started = time.perf_counter()
    await context.wait(factory.send_action("Ping"))
    elapsed = time.perf_counter() - started
    banner = f" (AMI {version})" if version else ""
    context.out.line(f"Pong from {context.settings.where}{banner}: {elapsed * 1000:.2f} ms")
    return 0
