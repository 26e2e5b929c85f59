"""
The model as plain JSON-able data: `snapshot_of`, and the version of its shape.

The shape (version 1) is documented in ``docs/state.rst``; it changes only by
adding keys, and anything else bumps `SNAPSHOT_VERSION`.  Each object's part
is exactly its ``as_dict()``, so a stream of changes can send one object in
the same form (the daemon's deltas do).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from txami.state.store import Store

__all__ = ["SNAPSHOT_VERSION", "snapshot_of"]

#: The version of the snapshot's shape.
SNAPSHOT_VERSION = 1


def snapshot_of(
    store: Store, synced: bool, limits: Mapping[str, str], server: Mapping[str, Any]
) -> dict[str, Any]:
    """Everything in ``store``, with the model's status, as one JSON-able dict."""
    return {
        "version": SNAPSHOT_VERSION,
        "time": store.clock.seconds(),
        "synced": synced,
        "server": dict(server),
        "limits": dict(limits),
        "channels": {k: c.as_dict() for k, c in store.channels.items()},
        "bridges": {k: b.as_dict() for k, b in store.bridges.items()},
        "calls": {k: c.as_dict() for k, c in store.calls.items()},
        "queues": {k: q.as_dict() for k, q in store.queues.items()},
        "devices": {k: d.as_dict() for k, d in store.devices.items()},
        "hints": {h.key: h.as_dict() for h in store.hints.values()},
        "presences": {k: p.as_dict() for k, p in store.presences.items()},
    }
