"""
Replaying a recorded session (``tests/data/state-*.raw``) into a `PBXState`.

The capture holds what the server sent to a `PBXState` that really ran; its
``.sent.raw`` twin tells which ActionID belonged to which action.  A replay
runs a fresh `PBXState` over an `AMIProtocol` on a `StringTransport` and a
`Clock`, feeds it the recorded bytes, and answers each action the model
sends with the recorded answer to the same action (the ActionID rewritten).
If the model does not send an action whose answer comes next, the replay
fails, so it also checks that the model asks what it asked then.

``chunk`` cuts the bytes into reads of that size (across message
boundaries, wherever the answers allow); `None` feeds as much as it can at
once.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from txami import AMIProtocol, PBXState, StateListenerMixin
from txami.message import Message

DATA = Path(__file__).resolve().parent / "data"
_END = b"\r\n\r\n"
_MARK = b"UserEvent: TxamiStateCheckpoint\r\n"
#: Headers that tell two actions of the same name apart.
_KEYS = ("Queue", "BridgeUniqueid", "Command", "Channel")


def _blocks(raw: bytes) -> tuple[bytes, list[bytes]]:
    banner, _, rest = raw.partition(b"\r\n")
    return banner + b"\r\n", [b for b in rest.split(_END) if b]


def _key(message: Message) -> tuple[str, ...]:
    return (
        (message.get("Action") or "").lower(),
        *(message.get(k) or "" for k in _KEYS),
    )


class Recorder(StateListenerMixin):
    """A listener that writes down every call, as ``(method, key, detail)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def _add(self, method: str, key: str, detail: Any = None) -> None:
        self.calls.append((method, key, detail))

    def channel_new(self, channel: Any) -> None:
        self._add("channel_new", channel.uniqueid)

    def channel_updated(self, channel: Any, changed_fields: frozenset[str]) -> None:
        self._add("channel_updated", channel.uniqueid, sorted(changed_fields))

    def channel_gone(self, channel: Any, reason: str) -> None:
        self._add("channel_gone", channel.uniqueid, reason)

    def bridge_new(self, bridge: Any) -> None:
        self._add("bridge_new", bridge.uniqueid)

    def bridge_updated(self, bridge: Any, changed_fields: frozenset[str]) -> None:
        self._add("bridge_updated", bridge.uniqueid, sorted(changed_fields))

    def bridge_gone(self, bridge: Any, reason: str) -> None:
        self._add("bridge_gone", bridge.uniqueid, reason)

    def call_new(self, call: Any) -> None:
        self._add("call_new", call.id)

    def call_updated(self, call: Any, changed_fields: frozenset[str]) -> None:
        self._add("call_updated", call.id, sorted(changed_fields))

    def call_merged(self, call: Any, into: Any) -> None:
        self._add("call_merged", call.id, into.id)

    def call_ended(self, call: Any, reason: str) -> None:
        self._add("call_ended", call.id, reason)

    def queue_new(self, queue: Any) -> None:
        self._add("queue_new", queue.name)

    def queue_updated(self, queue: Any, changed_fields: frozenset[str]) -> None:
        self._add("queue_updated", queue.name, sorted(changed_fields))

    def queue_gone(self, queue: Any, reason: str) -> None:
        self._add("queue_gone", queue.name, reason)

    def queue_member_added(self, queue: Any, member: Any) -> None:
        self._add("queue_member_added", member.interface, queue.name)

    def queue_member_updated(
        self, queue: Any, member: Any, changed_fields: frozenset[str]
    ) -> None:
        self._add("queue_member_updated", member.interface, sorted(changed_fields))

    def queue_member_removed(self, queue: Any, member: Any, reason: str) -> None:
        self._add("queue_member_removed", member.interface, reason)

    def queue_entry_joined(self, queue: Any, entry: Any) -> None:
        self._add("queue_entry_joined", entry.uniqueid, entry.position)

    def queue_entry_updated(self, queue: Any, entry: Any, changed_fields: frozenset[str]) -> None:
        self._add("queue_entry_updated", entry.uniqueid, sorted(changed_fields))

    def queue_entry_left(self, queue: Any, entry: Any, reason: str) -> None:
        self._add("queue_entry_left", entry.uniqueid, reason)

    def device_changed(self, device: Any) -> None:
        self._add("device_changed", device.device, device.state)

    def hint_changed(self, hint: Any) -> None:
        self._add("hint_changed", hint.key, hint.status)

    def presence_changed(self, presence: Any) -> None:
        self._add("presence_changed", presence.presentity, presence.status)

    def synced(self, resynced: bool) -> None:
        self._add("synced", "", resynced)

    def of(self, method: str) -> list[tuple[str, str, Any]]:
        return [c for c in self.calls if c[0] == method]


class Replay:
    """One recorded session, replayed into a fresh model."""

    def __init__(self, name: str, chunk: int | None = None) -> None:
        raw = (DATA / f"state-{name}.raw").read_bytes()
        sent = (DATA / f"state-{name}.sent.raw").read_bytes()
        self.banner, self.blocks = _blocks(raw)
        #: Recorded ActionID -> key of its action.
        self.recorded: dict[str, tuple[str, ...]] = {}
        for block in sent.split(_END):
            if block:
                message = Message.parse(block)
                if message.action_id is not None:
                    self.recorded[message.action_id] = _key(message)
        self.chunk = chunk
        self.clock = Clock()
        self.transport = StringTransport()
        self.protocol = AMIProtocol(self.clock)
        self.protocol.makeConnection(self.transport)
        self.state: PBXState | None = None
        self.recorder = Recorder()
        self._read = 0
        self._pending: dict[tuple[str, ...], deque[str]] = defaultdict(deque)
        self._mapped: dict[str, str] = {}
        self._out = bytearray()
        #: Snapshots of the model at the capture's checkpoints, by name.
        self.checkpoints: dict[str, dict[str, Any]] = {}

    # --- what the model sent -----------------------------------------------------------------

    def _collect(self) -> None:
        data = self.transport.value()
        while True:
            end = data.find(_END, self._read)
            if end < 0:
                break
            message = Message.parse(data[self._read : end])
            self._read = end + 4
            if message.action_id is not None:
                self._pending[_key(message)].append(message.action_id)

    def sent_actions(self) -> list[Message]:
        """Every action the model (and the login) sent so far."""
        data = self.transport.value()
        return [Message.parse(b) for b in data.split(_END) if b]

    # --- feeding -----------------------------------------------------------------------------

    def _deliver(self, everything: bool = False) -> None:
        size = self.chunk or len(self._out)
        while self._out and (everything or len(self._out) >= size):
            piece = bytes(self._out[:size])
            del self._out[:size]
            self.protocol.dataReceived(piece)
            self._collect()

    def _rewritten(self, block: bytes) -> bytes | None:
        """``block`` with its ActionID mapped to the model's, or None if it cannot be yet."""
        message = Message.parse(block)
        recorded = message.action_id
        if recorded is None or recorded not in self.recorded:
            return block
        mine = self._mapped.get(recorded)
        if mine is None:
            waiting = self._pending.get(self.recorded[recorded])
            if not waiting:
                return None
            mine = self._mapped[recorded] = waiting.popleft()
        return block.replace(b"ActionID: " + recorded.encode(), b"ActionID: " + mine.encode(), 1)

    def feed(self, blocks: Iterator[bytes] | list[bytes]) -> None:
        for block in blocks:
            if block.startswith(b"Event: UserEvent\r\n") and _MARK in block:
                self._deliver(everything=True)
                self.protocol.dataReceived(block + _END)
                name = Message.parse(block).get("Checkpoint") or ""
                assert self.state is not None
                self.checkpoints[name] = self.state.snapshot()
                continue
            recorded = Message.parse(block).action_id
            if recorded is not None and self.recorded.get(recorded, ("",))[0] == "logoff":
                continue  # the recording tool's own goodbye
            rewritten = self._rewritten(block)
            if rewritten is None:
                self._deliver(everything=True)
                rewritten = self._rewritten(block)
                if rewritten is None:
                    key = self.recorded[Message.parse(block).action_id or ""]
                    raise AssertionError(f"the model did not send {key} (answered next)")
            self._out += rewritten + _END
            self._deliver()
        self._deliver(everything=True)

    def run(self) -> PBXState:
        """Log in, start a model, feed the whole capture; return the model."""
        self.protocol.dataReceived(self.banner)
        self.protocol.login("admin", "adminsecret")
        self._collect()
        blocks = iter(self.blocks)
        self.feed([next(blocks)])  # the login's answer
        assert self.protocol.logged_in, "the recorded login answer did not log in"
        state = self.state = PBXState(self.protocol, clock=self.clock)
        state.add_listener(self.recorder)
        self.started = state.start()
        self._collect()
        self.feed(blocks)
        return state


def expected_snapshot(name: str) -> dict[str, Any] | None:
    path = DATA / f"state-{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def write_expected(name: str, snapshot: dict[str, Any]) -> None:
    (DATA / f"state-{name}.json").write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n")


def replay_all(name: str, chunk: int | None = None) -> tuple[Replay, dict[str, Any]]:
    """Replay ``name``; return the replay and its snapshots (``checkpoints`` and ``end``)."""
    replay = Replay(name, chunk)
    state = replay.run()
    return replay, {"checkpoints": replay.checkpoints, "end": state.snapshot()}


if __name__ == "__main__":
    # python -m tests.statereplay NAME...: (re)write the expected snapshots after review.
    import sys

    for capture in sys.argv[1:]:
        write_expected(capture, replay_all(capture)[1])
        print(f"wrote tests/data/state-{capture}.json")
