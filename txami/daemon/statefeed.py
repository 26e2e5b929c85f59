"""
`StateFeed`: one PBX's live state (a `txami.state.PBXState` on its session)
as the messages of ``GET /state/stream``.

Each change the model reports to its listeners becomes one *delta*, a JSON
object numbered by ``seq`` (one counter per PBX, one step per delta)::

    {"seq": 42, "pbx": "default", "op": "put", "type": "channel",
     "key": "1700000123.42", "data": {...Channel.as_dict()...}, "changed": ["state"]}
    {"seq": 43, "pbx": "default", "op": "delete", "type": "call",
     "key": "1700000123.42", "reason": "hangup"}

``op`` is ``put`` (the object, whole, as its part of the snapshot: a new
one has no ``changed``) or ``delete`` (with the ``reason``; a call joined to
another has ``"reason": "merged"`` and ``into``).  ``type`` and ``key``:
``channel`` (Uniqueid), ``bridge`` (BridgeUniqueid), ``call`` (call id),
``queue`` (name), ``member`` (interface, with ``queue``), ``entry`` (a
waiting caller's Uniqueid, with ``queue``), ``device`` (device name),
``hint`` (``exten@context``; a removed hint is deleted), ``presence``
(presentity), and ``status``: the session's ``connected``, ``logged_in``,
``synced`` and ``last_error``, sent whenever one of them changes.

A stream starts with a *snapshot* message (``seq`` of the last delta it
includes, ``status``, and ``state``: `PBXState.snapshot`); after an AMI
reconnect, once the model has re-synced, every stream gets a ``resync``
message and a fresh snapshot.  Applying the deltas in order to the snapshot
gives the model as it is: every ``put`` carries the object as it is when the
delta is sent.

The feed listens to its model only while a stream is open, so a daemon that
nobody watches pays for the model's bookkeeping and no more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from txami.factory import AMIFactory
from txami.jsonform import dumps
from txami.state import PBXState, StateListenerMixin, StateStopped

__all__ = ["DELTA_TYPES", "StateFeed", "StateSink"]

_log = Logger(namespace="txami.daemon.statefeed")

#: The ``type`` of each delta.
DELTA_TYPES = (
    "channel",
    "bridge",
    "call",
    "queue",
    "member",
    "entry",
    "device",
    "hint",
    "presence",
    "status",
)

#: A subscriber: called with each message's SSE event name and its JSON text.
StateSink = Callable[[str, str], object]


class StateFeed(StateListenerMixin):
    """
    The `PBXState` of PBX ``pbx`` (on ``factory``, following it through
    reconnects) and its subscribers.  ``status`` reports the session's
    connection (``connected``, ``logged_in``, ``last_error``).  `start`
    and `stop` follow the HTTP service.
    """

    def __init__(
        self,
        pbx: str,
        factory: AMIFactory,
        clock: IReactorTime,
        status: Callable[[], Mapping[str, Any]],
    ) -> None:
        self.pbx = pbx
        self.factory = factory
        self.state = PBXState(factory, clock=clock)
        self._status = status
        #: The number of the last delta (0 before any).
        self.seq = 0
        self._sinks: list[StateSink] = []
        self._listening = False
        self._following = False
        self._last_status: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<StateFeed {self.pbx!r}: {len(self._sinks)} streams, seq {self.seq}>"

    # --- life --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the model (it syncs once the session logs in) and follow the connection."""
        self.state.start().addErrback(self._not_started)
        if not self._following:
            self._following = True
            self.factory.add_connection_listener(self)

    def _not_started(self, failure: Failure) -> None:
        if not isinstance(failure.value, StateStopped):
            _log.failure("the state of PBX {pbx!r} did not start", failure, pbx=self.pbx)

    def stop(self) -> None:
        """Detach the model from the session."""
        self.state.stop()
        if self._following:
            self._following = False
            self.factory.remove_connection_listener(self)

    # --- subscribers -------------------------------------------------------------------------

    def subscribe(self, sink: StateSink) -> None:
        """Give ``sink`` every later message (its snapshot is `snapshot_message`)."""
        self._sinks.append(sink)
        if not self._listening:
            self._listening = True
            self._last_status = self.status()
            self.state.add_listener(self)

    def unsubscribe(self, sink: StateSink) -> None:
        """Stop giving messages to ``sink`` (no error if it was not subscribed)."""
        if sink in self._sinks:
            self._sinks.remove(sink)
        if not self._sinks and self._listening:
            self._listening = False
            self.state.remove_listener(self)

    @property
    def sinks(self) -> tuple[StateSink, ...]:
        """The current subscribers."""
        return tuple(self._sinks)

    def status(self) -> dict[str, Any]:
        """The session's connection and the model's sync, as the ``status`` delta's data."""
        status = self._status()
        return {
            "connected": bool(status.get("connected")),
            "logged_in": bool(status.get("logged_in")),
            "synced": self.state.synced,
            "last_error": status.get("last_error"),
        }

    def snapshot(self) -> dict[str, Any]:
        """The body of a snapshot message: ``seq``, ``pbx``, ``status`` and ``state``."""
        return {
            "seq": self.seq,
            "pbx": self.pbx,
            "status": self.status(),
            "state": self.state.snapshot(),
        }

    def snapshot_message(self) -> str:
        """`snapshot` as JSON text."""
        return dumps(self.snapshot())

    # --- sending -----------------------------------------------------------------------------

    def _send(self, event: str, message: Mapping[str, Any]) -> None:
        """Give every subscriber ``message`` (made JSON once) as an SSE ``event``."""
        text = dumps(message)
        for sink in tuple(self._sinks):
            try:
                sink(event, text)
            except Exception:
                _log.failure("a state stream of PBX {pbx!r} raised", pbx=self.pbx)

    def _delta(self, op: str, kind: str, key: str | None, **more: Any) -> None:
        self.seq += 1
        if not self._sinks:
            return
        message: dict[str, Any] = {"seq": self.seq, "pbx": self.pbx, "op": op, "type": kind}
        if key is not None:
            message["key"] = key
        message.update(more)
        self._send("delta", message)

    def _put(
        self, kind: str, key: str, data: dict[str, Any], changed: Any = None, **more: Any
    ) -> None:
        if changed is not None:
            more["changed"] = sorted(changed)
        self._delta("put", kind, key, data=data, **more)

    def _status_changed(self) -> None:
        if not self._listening:
            return
        status = self.status()
        if status != self._last_status:
            self._last_status = status
            self._delta("put", "status", None, data=status)

    # --- the model's changes (IStateListener) ------------------------------------------------

    def channel_new(self, channel: Any) -> None:
        self._put("channel", channel.uniqueid, channel.as_dict())

    def channel_updated(self, channel: Any, changed_fields: frozenset[str]) -> None:
        self._put("channel", channel.uniqueid, channel.as_dict(), changed_fields)

    def channel_gone(self, channel: Any, reason: str) -> None:
        self._delta("delete", "channel", channel.uniqueid, reason=reason)

    def bridge_new(self, bridge: Any) -> None:
        self._put("bridge", bridge.uniqueid, bridge.as_dict())

    def bridge_updated(self, bridge: Any, changed_fields: frozenset[str]) -> None:
        self._put("bridge", bridge.uniqueid, bridge.as_dict(), changed_fields)

    def bridge_gone(self, bridge: Any, reason: str) -> None:
        self._delta("delete", "bridge", bridge.uniqueid, reason=reason)

    def call_new(self, call: Any) -> None:
        self._put("call", call.id, call.as_dict())

    def call_updated(self, call: Any, changed_fields: frozenset[str]) -> None:
        self._put("call", call.id, call.as_dict(), changed_fields)

    def call_merged(self, call: Any, into: Any) -> None:
        self._delta("delete", "call", call.id, reason="merged", into=into.id)

    def call_ended(self, call: Any, reason: str) -> None:
        self._delta("delete", "call", call.id, reason=reason)

    def queue_new(self, queue: Any) -> None:
        self._put("queue", queue.name, queue.as_dict())

    def queue_updated(self, queue: Any, changed_fields: frozenset[str]) -> None:
        self._put("queue", queue.name, queue.as_dict(), changed_fields)

    def queue_gone(self, queue: Any, reason: str) -> None:
        self._delta("delete", "queue", queue.name, reason=reason)

    def queue_member_added(self, queue: Any, member: Any) -> None:
        self._put("member", member.interface, member.as_dict(), queue=queue.name)

    def queue_member_updated(
        self, queue: Any, member: Any, changed_fields: frozenset[str]
    ) -> None:
        self._put("member", member.interface, member.as_dict(), changed_fields, queue=queue.name)

    def queue_member_removed(self, queue: Any, member: Any, reason: str) -> None:
        self._delta("delete", "member", member.interface, queue=queue.name, reason=reason)

    def queue_entry_joined(self, queue: Any, entry: Any) -> None:
        self._put("entry", entry.uniqueid, entry.as_dict(), queue=queue.name)

    def queue_entry_updated(self, queue: Any, entry: Any, changed_fields: frozenset[str]) -> None:
        self._put("entry", entry.uniqueid, entry.as_dict(), changed_fields, queue=queue.name)

    def queue_entry_left(self, queue: Any, entry: Any, reason: str) -> None:
        self._delta("delete", "entry", entry.uniqueid, queue=queue.name, reason=reason)

    def device_changed(self, device: Any) -> None:
        self._put("device", device.device, device.as_dict())

    def hint_changed(self, hint: Any) -> None:
        if hint.status < 0:
            self._delta("delete", "hint", hint.key, reason="removed")
        else:
            self._put("hint", hint.key, hint.as_dict())

    def presence_changed(self, presence: Any) -> None:
        self._put("presence", presence.presentity, presence.as_dict())

    def synced(self, resynced: bool) -> None:
        if resynced:
            self.seq += 1
            if self._sinks:
                self._last_status = self.status()
                self._send("resync", {"seq": self.seq, "pbx": self.pbx})
                self._send("snapshot", self.snapshot())
            return
        self._status_changed()

    # --- the session's connection (IConnectionListener) --------------------------------------

    def connected(self, protocol: Any) -> None:
        self._status_changed()

    def logged_in(self, protocol: Any) -> None:
        self._status_changed()

    def disconnected(self, reason: Any) -> None:
        self._status_changed()

    def auth_failed(self, error: Any) -> None:
        self._status_changed()

    def connection_failed(self, reason: Any) -> None:
        self._status_changed()
