"""
txami.agi: drive one call from inside, over FastAGI or AsyncAGI.

One command API (`AGICommands`: ``answer``, ``stream_file``, ``get_data``,
``get_variable``, ``exec``, ... and ``send_command`` for the rest) over two
transports:

- FastAGI: `FastAGIFactory(handler, reactor=...)` listens; Asterisk's
  ``AGI(agi://host:port/script,args)`` connects and ``handler(agi)`` runs
  with a `FastAGIProtocol`.
- AsyncAGI: `AsyncAGIServer(ami, handler)` runs ``handler(agi)`` with an
  `AsyncAGI` session for every channel that enters ``AGI(agi:async)``,
  sending each command as an AMI ``AGI`` action.

Each command's Deferred fires once: with its typed result (`AGIResult`, a
value, or `None`), or with `AGIError` (Asterisk refused it), `AGIHangup` (the
channel is gone: every later command fails the same way at once) or
`AGIConnectionLost`.  The modules: `txami.agi.environment`,
`txami.agi.commands`, `txami.agi.results`, `txami.agi.errors`,
`txami.agi.handler`, `txami.agi.fastagi`, `txami.agi.asyncagi`, and
`txami.agi.tap` (``twistd txami-agi``).
"""

from txami.agi.asyncagi import AsyncAGI, AsyncAGIServer
from txami.agi.commands import AGICommands, command_line, quote
from txami.agi.environment import AGIEnvironment
from txami.agi.errors import AGIConnectionLost, AGIError, AGIHangup
from txami.agi.fastagi import FastAGIFactory, FastAGIProtocol
from txami.agi.handler import AGIHandler
from txami.agi.results import AGIResult

__all__ = [
    "AGICommands",
    "AGIConnectionLost",
    "AGIEnvironment",
    "AGIError",
    "AGIHandler",
    "AGIHangup",
    "AGIResult",
    "AsyncAGI",
    "AsyncAGIServer",
    "FastAGIFactory",
    "FastAGIProtocol",
    "command_line",
    "quote",
]
