"""
The module the ``twistd txami`` plugin names: the daemon's `Options` and
`makeService`, which live in `txami.daemon.options`.
"""

from txami.daemon.options import Options, makeService

__all__ = ["Options", "makeService"]
