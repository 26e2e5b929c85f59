"""
A scripted Asterisk for the state model's unit tests: `PBXData` answers the
sync's actions from plain data (as Asterisk 20 formats them), and
`channel_event` builds events carrying a channel snapshot in Asterisk's
header order.  It works on the server side of `tests.factory_harness`
(a factory that reconnects) or of a bare protocol (`bare_session`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from tests.factory_harness import BANNER, ServerSide
from txami import AMIProtocol, PBXState, StateListenerMixin
from txami.message import Message

Pairs = list[tuple[str, str]]

STATE_NAMES = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}


@dataclass
class Chan:
    """One channel as the scripted Asterisk knows it."""

    uniqueid: str
    name: str
    state: int = 6
    linkedid: str = ""
    exten: str = "1000"
    context: str = "txami-test"
    priority: int = 1
    caller: str = ""
    bridge: str = ""
    application: str = "Wait"
    app_data: str = "30"
    age: int = 5

    def pairs(self, prefix: str = "") -> Pairs:
        p = prefix
        caller = self.caller or "<unknown>"
        return [
            (f"{p}Channel", self.name),
            (f"{p}ChannelState", str(self.state)),
            (f"{p}ChannelStateDesc", STATE_NAMES.get(self.state, "Unknown")),
            (f"{p}CallerIDNum", caller),
            (f"{p}CallerIDName", caller),
            (f"{p}ConnectedLineNum", "<unknown>"),
            (f"{p}ConnectedLineName", "<unknown>"),
            (f"{p}Language", "en"),
            (f"{p}AccountCode", ""),
            (f"{p}Context", self.context),
            (f"{p}Exten", self.exten),
            (f"{p}Priority", str(self.priority)),
            (f"{p}Uniqueid", self.uniqueid),
            (f"{p}Linkedid", self.linkedid or self.uniqueid),
        ]


def bridge_pairs(uniqueid: str, technology: str = "simple_bridge", prefix: str = "") -> Pairs:
    kind = {"holding_bridge": "parking", "softmix": "base"}.get(technology, "basic")
    return [
        (f"{prefix}BridgeUniqueid", uniqueid),
        (f"{prefix}BridgeType", kind),
        (f"{prefix}BridgeTechnology", technology),
        (f"{prefix}BridgeCreator", "<unknown>"),
        (f"{prefix}BridgeName", "<unknown>"),
        (f"{prefix}BridgeNumChannels", "0"),
        (f"{prefix}BridgeVideoSourceMode", "none"),
    ]


def wire(name: str, pairs: Pairs, kind: str = "Event") -> bytes:
    """One message as Asterisk writes it."""
    lines = [f"{kind}: {name}", *(f"{k}: {v}" for k, v in pairs)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class PBXData:
    """What the scripted Asterisk has, and how it answers the sync."""

    channels: dict[str, Chan] = field(default_factory=dict)
    bridges: dict[str, str] = field(default_factory=dict)  # uniqueid -> technology
    queue_rows: list[tuple[str, Pairs]] = field(default_factory=list)
    devices: dict[str, str] = field(default_factory=dict)
    hints: dict[tuple[str, str], tuple[str, int, str]] = field(default_factory=dict)
    startup: tuple[str, str] = ("2026-01-01", "10:00:00")
    #: Action -> error message it gets instead of an answer.
    refuse: dict[str, str] = field(default_factory=dict)
    #: Actions to leave unanswered.
    ignore: set[str] = field(default_factory=set)
    read_perm: str = "all"
    #: Drop the BridgeId header of CoreShowChannel rows (Asterisk 12.0-12.6).
    no_bridge_ids: bool = False

    def add(self, chan: Chan) -> Chan:
        self.channels[chan.uniqueid] = chan
        return chan

    # --- answering ---------------------------------------------------------------------------

    def answer(self, server: ServerSide) -> list[Message]:
        """Answer every action the client wrote since the last call; return them."""
        actions = server.actions()
        for action in actions:
            name = action.name or ""
            if name in self.ignore:
                continue
            if name in self.refuse:
                server.send(self._response(action, "Error", [("Message", self.refuse[name])]))
                continue
            handler = getattr(self, "_" + name.lower(), None)
            if handler is None:
                server.send(self._response(action, "Success"))
            else:
                server.send(handler(action))
        return actions

    def _response(self, action: Message, status: str, pairs: Pairs = ()) -> bytes:  # type: ignore[assignment]
        return wire(status, [("ActionID", action.action_id or ""), *pairs], "Response")

    def _list(self, action: Message, item: str, complete: str, rows: list[Pairs]) -> bytes:
        aid = ("ActionID", action.action_id or "")
        out = [self._response(action, "Success", [("EventList", "start"), ("Message", "follows")])]
        out += [wire(item, [aid, *row]) for row in rows]
        out.append(wire(complete, [aid, ("EventList", "Complete"), ("ListItems", str(len(rows)))]))
        return b"".join(out)

    def _corestatus(self, action: Message) -> bytes:
        date, time = self.startup
        return self._response(
            action,
            "Success",
            [("CoreStartupDate", date), ("CoreStartupTime", time), ("CoreCurrentCalls", "0")],
        )

    def _bridgelist(self, action: Message) -> bytes:
        rows = [bridge_pairs(b, t) for b, t in self.bridges.items()]
        return self._list(action, "BridgeListItem", "BridgeListComplete", rows)

    def _bridgeinfo(self, action: Message) -> bytes:
        wanted = action.get("BridgeUniqueid")
        rows = [c.pairs() for c in self.channels.values() if c.bridge == wanted]
        return self._list(action, "BridgeInfoChannel", "BridgeInfoComplete", rows)

    def _coreshowchannels(self, action: Message) -> bytes:
        rows = []
        for c in self.channels.values():
            age = f"00:00:{c.age:02d}"
            row = [
                *c.pairs(),
                ("Application", c.application),
                ("ApplicationData", c.app_data),
                ("Duration", age),
            ]
            if not self.no_bridge_ids:
                row.append(("BridgeId", c.bridge))
            rows.append(row)
        return self._list(action, "CoreShowChannel", "CoreShowChannelsComplete", rows)

    def _queuestatus(self, action: Message) -> bytes:
        wanted = action.get("Queue")
        rows = []
        queue = ""
        for kind, pairs in self.queue_rows:
            if kind == "QueueParams":
                queue = dict(pairs)["Queue"]
            if wanted is None or queue == wanted:
                rows.append((kind, pairs))
        aid = ("ActionID", action.action_id or "")
        out = self._response(action, "Success", [("EventList", "start")])
        for kind, pairs in rows:
            out += wire(kind, [*pairs, aid])
        out += wire(
            "QueueStatusComplete", [aid, ("EventList", "Complete"), ("ListItems", str(len(rows)))]
        )
        return out

    def _devicestatelist(self, action: Message) -> bytes:
        rows = [[("Device", d), ("State", s)] for d, s in self.devices.items()]
        return self._list(action, "DeviceStateChange", "DeviceStateListComplete", rows)

    def _extensionstatelist(self, action: Message) -> bytes:
        rows = [
            [("Exten", e), ("Context", c), ("Hint", h), ("Status", str(s)), ("StatusText", t)]
            for (e, c), (h, s, t) in self.hints.items()
        ]
        return self._list(action, "ExtensionStatus", "ExtensionStateListComplete", rows)

    def _presencestatelist(self, action: Message) -> bytes:
        return self._list(action, "PresenceStateChange", "PresenceStateListComplete", [])

    def _command(self, action: Message) -> bytes:
        lines = [
            "",
            "          username: admin",
            f"         read perm: {self.read_perm}",
            "        write perm: all",
        ]
        return self._response(
            action,
            "Success",
            [("Message", "Command output follows"), *(("Output", x) for x in lines)],
        )


def channel_event(name: str, chan: Chan, *extra: tuple[str, str]) -> bytes:
    """An event about ``chan`` (its snapshot first, then ``extra`` headers)."""
    return wire(name, [("Privilege", "call,all"), *chan.pairs(), *extra])


def bridge_event(name: str, bridge: str, chan: Chan | None = None, **extra: str) -> bytes:
    """A bridge event: the bridge's headers, then the channel's, then ``extra``."""
    pairs = [
        ("Privilege", "call,all"),
        *bridge_pairs(bridge, extra.pop("technology", "simple_bridge")),
    ]
    if chan is not None:
        pairs += chan.pairs()
    pairs += list(extra.items())
    return wire(name, pairs)


class Log(StateListenerMixin):
    """A listener keeping every call as ``(method, args)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattribute__(self, name: str) -> Any:
        if (
            name.startswith(
                ("channel_", "bridge_", "call_", "queue_", "device_", "hint_", "presence_")
            )
            or name == "synced"
        ):
            calls = object.__getattribute__(self, "calls")
            return lambda *args: calls.append((name, args))
        return object.__getattribute__(self, name)

    def names(self, method: str) -> list[Any]:
        """The first argument of each call of ``method``."""
        return [args[0] for m, args in self.calls if m == method]

    def of(self, method: str) -> list[tuple[Any, ...]]:
        return [args for m, args in self.calls if m == method]

    def clear(self) -> None:
        self.calls.clear()


class BareSession:
    """A logged-in bare `AMIProtocol` on a `StringTransport`, with its server side."""

    def __init__(self, data: PBXData | None = None) -> None:
        self.clock = Clock()
        self.data = data if data is not None else PBXData()
        self.transport = StringTransport()
        self.protocol = AMIProtocol(self.clock)
        self.protocol.makeConnection(self.transport)
        self.server = ServerSide(self.transport, self.protocol)  # type: ignore[arg-type]
        self.protocol.dataReceived(BANNER)
        self.protocol.login("admin", "adminsecret")
        self.server.answer_login()

    def state(self, **options: Any) -> tuple[PBXState, Log]:
        """A started model, synced from `data`, and its listener."""
        state = PBXState(self.protocol, clock=self.clock, **options)
        log = Log()
        state.add_listener(log)
        self.started = state.start()
        self.answer()
        return state, log

    def answer(self) -> list[Message]:
        return self.data.answer(self.server)

    def send(self, data: bytes) -> None:
        self.server.send(data)
