"""
txami.cli: the ``txami`` command line tool (also ``python -m txami``).

One module per concept: `txami.cli.options` (the shared options and the
PBX they name), `txami.cli.session` (opening the AMI session),
`txami.cli.context` (a running command: its session, output and signals),
`txami.cli.output` (text and JSON), `txami.cli.exitcodes`, one module per
command (`ping`, `action`, `command`, `events`, `calls`, `queues`), what the
live views share (`txami.cli.live`, `txami.cli.screen`, `txami.cli.table`)
and `txami.cli.main`.
"""

from txami.cli.exitcodes import CLIError, ExitCode
from txami.cli.main import main

__all__ = ["CLIError", "ExitCode", "main"]
