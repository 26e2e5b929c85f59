"""
The S5 and S6 work in one process, for counting instructions with
callgrind (``python -m bench.state --instructions``): repeatable where CPU
times on a shared machine are not.

``python -m bench.stateinstr KIND ROUNDS`` does ROUNDS rounds of one kind of
work; the runner counts the instructions of two runs with different ROUNDS
under ``valgrind --tool=callgrind`` and divides the difference, so start-up
and imports cancel out:

- ``floor-s1`` / ``bare-s1`` / ``state-s5``: the 7,803 events of the capture
  read by the floor's protocol / by txami / by txami with a `PBXState`
  (every event tracked), all over an in-memory transport;
- ``floor-s3`` / ``state-s6``: one ``Status`` list of ``CHANNELS`` items read
  by the floor / one sync of ``CHANNELS`` channels (``CoreShowChannels``
  and ``BridgeList`` answered, the other actions refused).
"""

from __future__ import annotations

import sys

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from bench import data, statedata

CHANNELS = 5_000
ERROR = b"Response: Error\r\nActionID: %s\r\nMessage: Invalid/unknown command\r\n\r\n"


def _logged_in(clock: Clock) -> tuple[object, StringTransport]:
    from txami import AMIProtocol

    protocol = AMIProtocol(clock)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(data.BANNER)
    protocol.login("admin", "x")
    action_id = transport.value().split(b"ActionID: ")[1].split(b"\r\n")[0]
    protocol.dataReceived(b"Response: Success\r\nActionID: " + action_id + b"\r\n\r\n")
    transport.clear()
    return protocol, transport


def events(kind: str, rounds: int) -> None:
    stream = data.event_stream(len(data.real_events()))
    clock = Clock()
    if kind == "floor-s1":
        from bench.clients.floor import FloorAMI

        floor = FloorAMI(clock)
        floor.makeConnection(StringTransport())
        floor.on_event = lambda msg: msg.get("Uniqueid")  # type: ignore[assignment]
        floor.dataReceived(data.BANNER)
        feed = floor.dataReceived
    else:
        from txami import PBXState

        protocol, _ = _logged_in(clock)
        protocol.add_event_handler("*", lambda msg: msg.get("Uniqueid"))  # type: ignore[attr-defined]
        if kind == "state-s5":
            PBXState(protocol, clock=clock).start()  # type: ignore[arg-type]
        feed = protocol.dataReceived  # type: ignore[attr-defined]
    for _ in range(rounds):
        for i in range(0, len(stream), 65536):
            feed(stream[i : i + 65536])


def lists(kind: str, rounds: int) -> None:
    clock = Clock()
    if kind == "floor-s3":
        from bench.clients.floor import FloorAMI

        parts = data.status_list_parts(CHANNELS)
        floor = FloorAMI(clock)
        floor.makeConnection(StringTransport())
        floor.dataReceived(data.BANNER)
        for _ in range(rounds):
            action_id, _d = floor.send_action("Status")
            floor.dataReceived(action_id.encode().join(parts))
        return
    from txami import PBXState
    from txami.message import Message

    answers = {
        "coreshowchannels": statedata.channel_list_parts(CHANNELS),
        "bridgelist": statedata.bridge_list_parts(CHANNELS),
    }
    protocol, transport = _logged_in(clock)
    for _ in range(rounds):
        state = PBXState(protocol, clock=clock)  # type: ignore[arg-type]
        state.start()
        sent = [Message.parse(b) for b in transport.value().split(b"\r\n\r\n") if b]
        transport.clear()
        for action in sent:
            action_id = (action.action_id or "").encode()
            parts = answers.get((action.name or "").lower())
            answer = action_id.join(parts) if parts else ERROR % action_id
            protocol.dataReceived(answer)  # type: ignore[attr-defined]
        if len(state.channels) != CHANNELS:
            raise SystemExit(f"synced {len(state.channels)} channels, expected {CHANNELS}")
        state.stop()


if __name__ == "__main__":
    which, count = sys.argv[1], int(sys.argv[2])
    (events if which.endswith(("s1", "s5")) else lists)(which, count)
