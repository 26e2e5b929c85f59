"""
Record the call scenarios of ``tests/data/scenario-*`` from a real Asterisk.

Run against the server of ``../shared/asterisk`` (its ``env`` script sets
``TXAMI_TEST_AMI`` and ``TXAMI_TEST_ASTERISK_ROOT``), with the ports that
server was started with in ``TXAMI_AMI_PORT`` etc.::

    eval "$(../shared/asterisk/env /tmp/ast-NAME)"
    python -m tests.record_scenarios bridge queue ...   # or no name: all of them

The server is restarted before each scenario (``stop``, then ``start``), so
every capture begins on a fresh Asterisk: channel numbers from 0, no parking
bridge yet, queue members unpaused.

Each scenario is a short script of actions on one or more AMI connections
(``main`` is the one compared by the tests; others are named), with waits for
the events it depends on.  For each connection CONN it writes what the server
sent (``scenario-NAME[.CONN].raw``) and what the client sent
(``scenario-NAME[.CONN].sent.raw``), and one timeline of all connections
(``scenario-NAME.log``, the format of ``../shared/transcripts``), from which
``tests/test_testing_captures.py`` replays the client's bytes into the fake at
the same times.  After every wait the script pauses a little (`MARGIN`), so that
the fake, whose calls progress at exact times, is where the real server was.

This is a development tool, not a test: it uses plain sockets and real time.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

DATA = Path(__file__).parent / "data"
ASTERISK = Path(__file__).parent.parent.parent / "shared" / "asterisk"
#: Seconds to wait after each awaited event before the next action.
MARGIN = 0.3

Pairs = list[tuple[str, str]]


def _escape(data: bytes) -> str:
    out = []
    for byte in data:
        char = chr(byte)
        if char == "\r":
            out.append("\\r")
        elif char == "\n":
            out.append("\\n\n")
        elif char == "\\":
            out.append("\\\\")
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


class Connection:
    """One AMI connection: its socket, the bytes both ways, and the parsed messages."""

    def __init__(self, recorder: Recorder, name: str, address: tuple[str, int]) -> None:
        self.recorder = recorder
        self.name = name
        self.sock = socket.create_connection(address)
        self.sock.setblocking(False)
        self.received = bytearray()
        self.sent = bytearray()
        self.messages: list[dict[str, str]] = []
        self._buffer = b""
        self._banner = True
        self.closed = False
        self._ids = 0

    def feed(self, data: bytes) -> None:
        self.received += data
        self._buffer += data
        if self._banner and b"\r\n" in self._buffer:
            _, _, self._buffer = self._buffer.partition(b"\r\n")
            self._banner = False
        while b"\r\n\r\n" in self._buffer:
            block, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
            text = block.decode("utf-8", "replace").strip("\r\n")
            if not text:
                continue
            headers: dict[str, str] = {}
            for line in text.split("\r\n"):
                key, _, value = line.partition(":")
                headers.setdefault(key, value.strip())
            self.messages.append(headers)

    def send(self, action: str, **headers: str) -> str:
        """Send an action; returns its ActionID."""
        self._ids += 1
        action_id = f"{self.recorder.scenario}-{self.name}-{self._ids:02d}"
        lines = [f"Action: {action}", f"ActionID: {action_id}"]
        for key, value in headers.items():
            for item in value if isinstance(value, list) else [value]:
                lines.append(f"{key.replace('_', '-')}: {item}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.recorder.log(self.name, "C>S", data)
        self.sent += data
        self.sock.sendall(data)
        return action_id

    def response(self, action_id: str, timeout: float = 10.0) -> dict[str, str]:
        return self.recorder.wait(
            lambda: next(
                (m for m in self.messages if "Response" in m and m.get("ActionID") == action_id),
                None,
            ),
            timeout,
            f"response to {action_id}",
        )

    def complete(self, action_id: str, timeout: float = 10.0) -> list[dict[str, str]]:
        """Wait for a list's ``EventList: Complete`` and return its items."""
        self.recorder.wait(
            lambda: (
                any(
                    m.get("ActionID") == action_id and m.get("EventList") == "Complete"
                    for m in self.messages
                )
                or any(
                    m.get("ActionID") == action_id and m.get("Response") == "Error"
                    for m in self.messages
                )
            ),
            timeout,
            f"list {action_id}",
        )
        return [m for m in self.messages if m.get("ActionID") == action_id and "Event" in m]

    def action(self, action: str, **headers: str) -> dict[str, str]:
        """Send an action and wait for its response."""
        return self.response(self.send(action, **headers))

    def listing(self, action: str, **headers: str) -> list[dict[str, str]]:
        """Send a list action and wait for its last item."""
        return self.complete(self.send(action, **headers))

    def event(
        self, name: str, timeout: float = 10.0, count: int = 1, **match: str
    ) -> dict[str, str]:
        """Wait for the ``count``-th event ``name`` whose headers include ``match``."""

        def found() -> dict[str, str] | None:
            hits = [
                m
                for m in self.messages
                if m.get("Event") == name and all(m.get(k) == v for k, v in match.items())
            ]
            return hits[count - 1] if len(hits) >= count else None

        hit = self.recorder.wait(found, timeout, f"{name} {match} x{count}")
        self.recorder.sleep(MARGIN)
        return hit

    def events(self, name: str, **match: str) -> list[dict[str, str]]:
        return [
            m
            for m in self.messages
            if m.get("Event") == name and all(m.get(k) == v for k, v in match.items())
        ]

    def login(self, username: str = "admin", secret: str = "adminsecret") -> None:
        self.recorder.wait(lambda: not self._banner, 5, "banner")
        reply = self.action("Login", Username=username, Secret=secret)
        assert reply["Response"] == "Success", reply

    def close(self) -> None:
        if not self.closed:
            self.recorder.note(f"{self.name}: client closed socket")
            self.sock.close()
            self.closed = True


class Recorder:
    """The connections of one scenario and its timeline."""

    def __init__(self, scenario: str, address: tuple[str, int]) -> None:
        self.scenario = scenario
        self.address = address
        self.start = time.monotonic()
        self.conns: dict[str, Connection] = {}
        self.lines = [
            f"## AMI transcript timeline for scenario '{scenario}' (main connection: main)",
            "## format: '@@ +SECONDS CONN DIR NBYTES', then for C>S the chunk, \\r \\n \\\\ "
            "\\xNN escaped (S>C chunks are in the .raw files); '##' lines are notes",
        ]

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def note(self, text: str) -> None:
        self.lines.append(f"## +{self.elapsed():.3f} {text}")

    def log(self, conn: str, direction: str, data: bytes) -> None:
        self.lines.append(f"@@ +{self.elapsed():.3f} {conn} {direction} {len(data)}")
        if direction == "C>S":  # the server's bytes are in the .raw files
            self.lines.append(_escape(data).rstrip("\n"))

    def connect(self, name: str = "main", username: str = "admin") -> Connection:
        conn = Connection(self, name, self.address)
        self.conns[name] = conn
        self.note(f"{name}: connected to {self.address[0]}:{self.address[1]}")
        conn.login(username, {"admin": "adminsecret", "reader": "readersecret"}[username])
        return conn

    def pump(self, timeout: float) -> None:
        socks = {c.sock: c for c in self.conns.values() if not c.closed}
        if not socks:
            time.sleep(timeout)
            return
        readable, _, _ = select.select(list(socks), [], [], max(0.0, timeout))
        for sock in readable:
            conn = socks[sock]
            data = sock.recv(65536)
            if not data:
                conn.close()
                continue
            self.log(conn.name, "S>C", data)
            conn.feed(data)

    def wait(self, condition: Callable[[], object], timeout: float, what: str) -> object:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.scenario}: {what} not seen in {timeout} s")
            self.pump(min(left, 0.05))

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.pump(min(left, 0.05))

    def save(self, folder: Path, run: int = 1) -> None:
        """Write the capture; a further run (``run`` > 1) keeps only what the server sent."""
        for name, conn in self.conns.items():
            conn.close()
            stem = f"scenario-{self.scenario}" + ("" if name == "main" else f".{name}")
            if run > 1:
                (folder / f"{stem}.{run}.raw").write_bytes(bytes(conn.received))
                continue
            (folder / f"{stem}.raw").write_bytes(bytes(conn.received))
            (folder / f"{stem}.sent.raw").write_bytes(bytes(conn.sent))
        if run == 1:
            (folder / f"scenario-{self.scenario}.log").write_text("\n".join(self.lines) + "\n")


def _logoff(conn: Connection) -> None:
    conn.send("Logoff")
    conn.recorder.wait(lambda: conn.closed, 5, "logoff")


def _pair(
    messages: list[dict[str, str]], exten: str, tag: str, context: str = "txami-test"
) -> tuple[str, str]:
    """The ``;1``/``;2`` names of the Local pair to ``exten`` whose caller ID is ``tag``."""
    for m in messages:
        if (
            m.get("Event") == "Newchannel"
            and m["Channel"].startswith(f"Local/{exten}@{context}-")
            and m["Channel"].endswith(";1")
        ):
            base = m["Channel"][:-2]
            if any(
                x.get("Event") == "NewCallerid"
                and x.get("Channel", "").startswith(base)
                and x.get("CallerIDNum") == tag
                for x in messages
            ):
                return base + ";1", base + ";2"
    raise LookupError(f"no Local/{exten} pair for {tag}")


def _dialed(messages: list[dict[str, str]], caller: str, exten: str) -> tuple[str, str]:
    """The Local pair to ``exten`` that ``caller`` dialed (DialBegin)."""
    for m in messages:
        if m.get("Event") == "DialBegin" and m.get("Channel") == caller:
            one = m["DestChannel"]
            if one.startswith(f"Local/{exten}@"):
                return one, one[:-2] + ";2"
    raise LookupError(f"{caller} dialed no Local/{exten}")


def _originate(
    conn: Connection,
    exten: str,
    tag: str,
    name: str,
    app: str = "Echo",
    data: str = "",
    **more: str,
) -> None:
    reply = conn.action(
        "Originate",
        Channel=f"Local/{exten}@txami-test",
        Application=app,
        Data=data,
        CallerID=f'"{name}" <{tag}>',
        Async="yes",
        **more,
    )
    assert reply["Response"] == "Success", reply


def _bridged_1010(main: Connection, tag: str, **more: str) -> tuple[str, str, str, str]:
    """Originate to 1010 and wait until its two inner legs are bridged."""
    _originate(main, "1010", tag, "Bridge Test", **more)  # type: ignore[arg-type]
    main.event("DialEnd", DialStatus="ANSWER", count=2)
    main.event("BridgeEnter", count=2)
    one, two = _pair(main.messages, "1010", tag)
    inner_one, inner_two = _dialed(main.messages, two, "1000")
    return one, two, inner_one, inner_two


def _wait_gone(main: Connection, *channels: str) -> None:
    for channel in channels:
        main.event("Hangup", Channel=channel, timeout=15)


def scenario_bridge(rec: Recorder) -> None:
    """Extension 1010's bridged pair: lists while up, then Hangup of a bridged leg."""
    main = rec.connect()
    tag = "5559010"
    one, two, inner_one, inner_two = _bridged_1010(main, tag)
    bridge = main.events("BridgeCreate")[-1]["BridgeUniqueid"]
    main.listing("CoreShowChannels")
    main.listing("BridgeList")
    main.listing("BridgeInfo", BridgeUniqueid=bridge)
    main.action("Hangup", Channel=inner_one)
    _wait_gone(main, one, two, inner_one, inner_two)
    main.event("BridgeDestroy", BridgeUniqueid=bridge)
    main.listing("BridgeList")
    main.listing("CoreShowChannels")
    _logoff(main)


def scenario_localopt(rec: Recorder) -> None:
    """1011 dials Local/1012 (optimisable), which dials 1013: Local/1012 drops out."""
    main = rec.connect()
    tag = "5559011"
    _originate(main, "1011", tag, "Optimise Me")
    main.event("LocalOptimizationEnd", timeout=15)
    rec.sleep(0.5)
    main_one, _ = _pair(main.messages, "1011", tag)
    main.listing("CoreShowChannels")
    main.listing("BridgeList")
    main.action("Hangup", Channel=main_one)
    rec.sleep(1.0)
    main.listing("CoreShowChannels")
    _logoff(main)


def _queue_member(conn: Connection, member: str, paused: bool, reason: str = "") -> None:
    headers = {"Queue": "support", "Interface": member, "Paused": "true" if paused else "false"}
    if reason:
        headers["Reason"] = reason
    reply = conn.action("QueuePause", **headers)
    assert reply["Response"] == "Success", reply


AGENT_ONE = "Local/1000@txami-test/n"
AGENT_TWO = "Local/1001@txami-test/n"


def scenario_queue(rec: Recorder) -> None:
    """Queue 600 with its members paused, an abandoned caller, an answered one, QueueAdd/Remove."""
    main = rec.connect()
    _queue_member(main, AGENT_ONE, True, "lunch")
    _queue_member(main, AGENT_TWO, True, "meeting")
    main.event("QueueMemberPause", Interface=AGENT_TWO)
    _originate(main, "600", "5559600", "Queue Caller A")
    main.event("QueueCallerJoin", Count="1")
    _originate(main, "600", "5559601", "Queue Caller B")
    main.event("QueueCallerJoin", Count="2")
    rec.sleep(1.0)
    main.listing("QueueStatus", Queue="support")
    main.listing("QueueSummary", Queue="support")
    b_one, b_two = _pair(main.messages, "600", "5559601")
    main.action("Hangup", Channel=b_one)
    _wait_gone(main, b_one, b_two)
    a_one, a_two = _pair(main.messages, "600", "5559600")
    _queue_member(main, AGENT_ONE, False)
    main.event("AgentConnect", timeout=15)
    rec.sleep(1.0)
    main.listing("QueueStatus", Queue="support")
    main.listing("QueueSummary", Queue="support")
    main.listing("CoreShowChannels")
    main.action("Hangup", Channel=a_one)
    main.event("AgentComplete")
    _wait_gone(main, a_one, a_two)
    rec.sleep(1.0)
    _queue_member(main, AGENT_TWO, False)
    main.event("QueueMemberPause", Interface=AGENT_TWO, Paused="0")
    reply = main.action(
        "QueueAdd",
        Queue="support",
        Interface="Local/1002@txami-test/n",
        MemberName="Agent Three",
        Penalty="2",
        Paused="true",
        Reason="training",
    )
    assert reply["Response"] == "Success", reply
    main.event("QueueMemberAdded")
    main.listing("QueueStatus", Queue="support")
    main.action("QueueRemove", Queue="support", Interface="Local/1002@txami-test/n")
    main.event("QueueMemberRemoved")
    main.listing("QueueStatus", Queue="support")
    main.listing("QueueSummary")
    _logoff(main)


def scenario_confbridge(rec: Recorder) -> None:
    """The bridged pair of 1010 redirected (Redirect with ExtraChannel) into ConfBridge 680."""
    main = rec.connect()
    one, two, inner_one, inner_two = _bridged_1010(main, "5559680")
    reply = main.action(
        "Redirect",
        Channel=two,
        ExtraChannel=inner_one,
        Context="txami-test",
        Exten="680",
        Priority="1",
    )
    assert reply["Response"] == "Success", reply
    main.event("ConfbridgeJoin", count=2)
    rec.sleep(0.5)
    main.listing("BridgeList")
    conference = main.events("ConfbridgeStart")[-1]["BridgeUniqueid"]
    main.listing("BridgeInfo", BridgeUniqueid=conference)
    main.listing("CoreShowChannels")
    main.listing("ConfbridgeList", Conference="680")
    main.action("Hangup", Channel=one)
    main.event("ConfbridgeLeave")
    rec.sleep(0.5)
    main.listing("ConfbridgeList", Conference="680")
    main.action("Hangup", Channel=inner_two)
    main.event("ConfbridgeEnd")
    _wait_gone(main, one, two, inner_one, inner_two)
    rec.sleep(0.5)
    main.listing("CoreShowChannels")
    _logoff(main)


def scenario_blindxfer(rec: Recorder) -> None:
    """BlindTransfer of 1010's bridged pair: the far leg (Local/1000;1) goes to 1002."""
    main = rec.connect()
    one, two, inner_one, inner_two = _bridged_1010(main, "5559020")
    reply = main.action("BlindTransfer", Channel=two, Context="txami-test", Exten="1002")
    assert reply["Response"] == "Success", reply
    main.event("BlindTransfer")
    _wait_gone(main, one, two, inner_one, inner_two)
    rec.sleep(0.5)
    main.listing("CoreShowChannels")
    _logoff(main)


def scenario_atxfer(rec: Recorder) -> None:
    """Atxfer from 1010's inner leg to 2000; the transferer hangs up, completing the transfer."""
    main = rec.connect()
    # Dial(...,g) gives no transfer feature: BRIDGE_FEATURES=T lets the caller (;2) transfer;
    # TRANSFER_EXTEN spares the prompt (this server has no sound files).  Atxfer also queues
    # the digits of Exten as DTMF: Wait() on ;1 and at 2000 swallows them (Echo() would loop).
    one, two, inner_one, inner_two = _bridged_1010(
        main, "5559030", Variable="BRIDGE_FEATURES=T", app="Wait", data="120"
    )
    main.action("Setvar", Channel=two, Variable="TRANSFER_EXTEN", Value="2000")
    reply = main.action("Atxfer", Channel=two, Context="txami-test", Exten="2000")
    assert reply["Response"] == "Success", reply
    main.event("DialEnd", DialStatus="ANSWER", count=3)
    rec.sleep(0.5)
    main.listing("BridgeList")
    main.listing("CoreShowChannels")
    main.action("Hangup", Channel=two)
    main.event("AttendedTransfer")
    _wait_gone(main, one, two)
    rec.sleep(0.5)
    main.listing("BridgeList")
    main.listing("CoreShowChannels")
    # 2000 hangs up by itself (Wait(5)), which ends the transferred call.
    _wait_gone(main, inner_one, inner_two)
    rec.sleep(0.5)
    main.listing("CoreShowChannels")
    _logoff(main)


def scenario_park(rec: Recorder) -> None:
    """Park 1010's far leg and pick it up from 7001; park again and let it time out."""
    main = rec.connect()
    one, two, inner_one, inner_two = _bridged_1010(main, "5559070")
    reply = main.action("Park", Channel=inner_one)
    assert reply["Response"] == "Success", reply
    parked = main.event("ParkedCall")
    _wait_gone(main, one, two)
    rec.sleep(0.5)
    main.listing("ParkedCalls")
    main.listing("BridgeList")
    reply = main.action(
        "Originate",
        Channel=f"Local/{parked['ParkingSpace']}@parkedcalls",
        Application="Echo",
        Data="",
        CallerID='"Park Picker" <5559071>',
        Async="yes",
    )
    main.event("UnParkedCall")
    rec.sleep(1.0)
    main.listing("BridgeList")
    picker_one, picker_two = _pair(main.messages, parked["ParkingSpace"], "5559071", "parkedcalls")
    main.action("Hangup", Channel=picker_one)
    _wait_gone(main, picker_one, picker_two, inner_one, inner_two)
    rec.sleep(0.5)
    # Parked again with a 2 s timeout: ParkedCallTimeOut.
    one, two, inner_one, inner_two = _bridged_1010(main, "5559072")
    main.action("Park", Channel=inner_one, Timeout="2000")
    main.event("ParkedCallTimeOut", timeout=10)
    rec.sleep(2.0)
    for channel in (one, two, inner_one, inner_two):
        if not main.events("Hangup", Channel=channel):
            main.action("Hangup", Channel=channel)
    _wait_gone(main, one, two, inner_one, inner_two)
    rec.sleep(0.5)
    # Parked, then the parked call hangs up: ParkedCallGiveUp.
    one, two, inner_one, inner_two = _bridged_1010(main, "5559073")
    main.action("Park", Channel=inner_one)
    main.event("ParkedCall", count=3)
    rec.sleep(0.5)
    main.action("Hangup", Channel=inner_two)
    main.event("ParkedCallGiveUp")
    _wait_gone(main, one, two, inner_one, inner_two)
    rec.sleep(0.5)
    main.listing("CoreShowChannels")
    _logoff(main)


def scenario_states(rec: Recorder) -> None:
    """Custom device states and presence: hint changes and the three state lists."""
    main = rec.connect()
    for device, state in (
        ("Custom:txami2001", "RINGING"),
        ("Custom:txami2001", "INUSE"),
        ("Custom:txami2001", "ONHOLD"),
        ("Custom:txami2002", "BUSY"),
        ("Custom:txami2003", "UNAVAILABLE"),
        ("Custom:txami2001", "NOT_INUSE"),
    ):
        main.action("Setvar", Variable=f"DEVICE_STATE({device})", Value=state)
        rec.sleep(0.3)
    main.action(
        "Setvar", Variable="PRESENCE_STATE(CustomPresence:txami2000)", Value="away,Lunch,Back at 2"
    )
    rec.sleep(0.3)
    main.action("Getvar", Variable="PRESENCE_STATE(CustomPresence:txami2000,value)")
    main.listing("ExtensionStateList")
    main.listing("DeviceStateList")
    main.listing("PresenceStateList")
    main.action("PresenceState", Provider="CustomPresence:txami2000")
    for device in ("Custom:txami2002", "Custom:txami2003"):
        main.action("Setvar", Variable=f"DEVICE_STATE({device})", Value="NOT_INUSE")
        rec.sleep(0.3)
    main.action("Setvar", Variable="PRESENCE_STATE(CustomPresence:txami2000)", Value="available,,")
    rec.sleep(0.3)
    main.listing("PresenceStateList")
    _logoff(main)


SCENARIOS: dict[str, Callable[[Recorder], None]] = {
    "bridge": scenario_bridge,
    "localopt": scenario_localopt,
    "queue": scenario_queue,
    "confbridge": scenario_confbridge,
    "blindxfer": scenario_blindxfer,
    "atxfer": scenario_atxfer,
    "park": scenario_park,
    "states": scenario_states,
}


def restart() -> None:
    """Stop and start the server of ``TXAMI_TEST_ASTERISK_ROOT``."""
    root = os.environ["TXAMI_TEST_ASTERISK_ROOT"]
    subprocess.run([str(ASTERISK / "stop"), root], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([str(ASTERISK / "start"), root], check=True, stdout=subprocess.DEVNULL)


def main(argv: list[str]) -> None:
    """
    Record the scenarios named (all by default) into ``tests/data`` (``--out
    DIR``: into DIR).  ``--run N`` (N > 1) records another run of them, whose
    events (``scenario-NAME.N.raw``) show other orders the server's threads
    may give; the tests accept an order any run showed.
    """
    folder, run = DATA, 1
    while argv[:1] in (["--out"], ["--run"]):
        if argv[0] == "--out":
            folder = Path(argv[1])
        else:
            run = int(argv[1])
        argv = argv[2:]
    host, _, port = os.environ["TXAMI_TEST_AMI"].rpartition(":")
    for name in argv or list(SCENARIOS):
        restart()
        rec = Recorder(name, (host, int(port)))
        try:
            SCENARIOS[name](rec)
        finally:
            rec.save(folder, run)
        print(f"recorded scenario-{name}")


if __name__ == "__main__":
    main(sys.argv[1:])
