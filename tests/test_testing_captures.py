"""
The fake Asterisk against the real one: each capture's client bytes are replayed into a
`FakeAsterisk`, at the times the capture's timeline (``NAME.log``) gives, and its answers
are compared with the capture's server bytes.

Compared: the banner, and in order every response, every event that carries an ActionID
(list items, UserEvent, OriginateResponse) and the scenario's key events, each by its
header names in order and its values, except values that vary from run to run (unique
ids, timestamps, session ids, addresses, uptimes, challenge digits, durations).  Where the
fake's simplified call model does not reproduce every event (device states, queue member
status, the exact interleaving of Newexten), a scenario compares only its key events, and
its docstring says so.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txami.testing import FakeAsterisk, FakeSession

DATA = Path(__file__).parent / "data"

#: Values that differ between any two runs of a server.
VARYING = frozenset(
    {
        "Uptime",
        "LastReload",
        "EventTV",
        "SessionID",
        "SessionTV",
        "LocalAddress",
        "RemoteAddress",
        "Timestamp",
        "Challenge",
        "Uniqueid",
        "Linkedid",
        "DestUniqueid",
        "DestLinkedid",
        "LocalOneUniqueid",
        "LocalOneLinkedid",
        "LocalTwoUniqueid",
        "LocalTwoLinkedid",
        "Seconds",
        "Duration",
        "LoginTime",
        "CoreStartupDate",
        "CoreStartupTime",
        "CoreReloadDate",
        "CoreReloadTime",
        "CoreProcessedCalls",
    }
)

Pairs = list[tuple[str, str]]


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def messages(data: bytes) -> tuple[str | None, list[Pairs]]:
    """The banner and the header blocks of a server stream."""
    text = data.decode("utf-8", "surrogateescape")
    banner = None
    if text.startswith("Asterisk Call Manager/"):
        banner, _, text = text.partition("\r\n")
    blocks = []
    for block in text.split("\r\n\r\n"):
        block = block.lstrip("\r\n")
        if not block:
            continue
        pairs = []
        for line in block.split("\r\n"):
            name, _, value = line.partition(":")
            pairs.append((name, value[1:] if value.startswith(" ") else value))
        blocks.append(pairs)
    return banner, blocks


@dataclass
class Spec:
    """What to compare in one connection of one scenario."""

    events: frozenset[str] | None = None  # None: every event
    skip: frozenset[str] = frozenset()
    ignore: frozenset[str] = frozenset()
    collapse: frozenset[str] = frozenset()
    sort: dict[str, str] = field(default_factory=dict)
    loose: frozenset[str] = frozenset()  # ActionIDs whose answers compare Response only


def shape(blocks: list[Pairs], spec: Spec) -> list[tuple[tuple[str, str | None], ...]]:
    """The comparable form of a stream's messages under ``spec``."""
    chosen = []
    for pairs in blocks:
        kind, name = pairs[0]
        if kind == "Event":
            tagged = any(k == "ActionID" for k, _ in pairs)
            if name in spec.skip:
                continue
            if not tagged and spec.events is not None and name not in spec.events:
                continue
        chosen.append(pairs)
    shaped = []
    for pairs in chosen:
        action_id = next((v for k, v in pairs if k == "ActionID"), None)
        if pairs[0][0] == "Response" and action_id in spec.loose:
            pairs = [(k, v) for k, v in pairs if k in ("Response", "ActionID")]
        out: list[tuple[str, str | None]] = []
        for key, value in pairs:
            if key in spec.collapse:
                if out and out[-1][0] == key:
                    continue
                out.append((key, None))
            else:
                ignored = key in VARYING or key in spec.ignore
                out.append((key, None if ignored else value))
        shaped.append(tuple(out))
    # Sort runs of list items whose order is a hash order in Asterisk.
    result: list[tuple[tuple[str, str | None], ...]] = []
    index = 0
    while index < len(shaped):
        item = shaped[index]
        key = spec.sort.get(item[0][1] or "") if item[0][0] == "Event" else None
        if key is None:
            result.append(item)
            index += 1
            continue
        end = index
        while end < len(shaped) and shaped[end][0] == item[0]:
            end += 1
        run = shaped[index:end]
        result.extend(sorted(run, key=lambda m: dict(m).get(key) or ""))
        index = end
    return result


# --- the comparison by entity ----------------------------------------------------------------
#
# Events about different channels (and bridges, devices, queue members) race each other in
# Asterisk (each channel has its own thread, device states their own), so call scenarios are
# compared per entity: the events that name a channel, in order, must match for every
# channel, and likewise for each bridge, device, hint, presence and queue member.  Answers to
# actions (responses and the items of lists) are compared in the order they arrived.
#
# Values that legitimately differ are normalised, never dropped: a Uniqueid (or Linkedid,
# DestUniqueid, SwapUniqueid, ...) becomes the name of its channel, a BridgeUniqueid becomes
# the names of the channels that ever entered that bridge, and the VARYING headers and the
# timing variables of VarSet (TIMED_VARIABLES) are replaced by a placeholder.

#: VarSet variables that hold durations (Dial's), whose values vary from run to run.
TIMED_VARIABLES = frozenset(
    {
        "QUEUEWAIT",
        "QUEUEWAIT_MS",
        "ANSWEREDTIME",
        "ANSWEREDTIME_MS",
        "DIALEDTIME",
        "DIALEDTIME_MS",
        "RINGTIME",
        "RINGTIME_MS",
        "PROGRESSTIME",
        "PROGRESSTIME_MS",
    }
)
#: Values of these headers are times or counts of seconds in scenarios (queues, lists).
SCENARIO_VARYING = frozenset(
    {
        "Wait",
        "HoldTime",
        "Holdtime",
        "TalkTime",
        "LastCall",
        "LastPause",
        "LongestHoldTime",
        "ParkingTimeout",
        "ParkingDuration",
        "AnsweredTime",
    }
)

Shaped = tuple[tuple[str, str | None], ...]


def _is_channel_id(key: str) -> bool:
    low = key.lower()
    return (low.endswith("uniqueid") and "bridge" not in low) or low.endswith("linkedid")


def _is_bridge_id(key: str) -> bool:
    return key.endswith("BridgeUniqueid") or key == "BridgeId"


class Names:
    """Stable names for the run-specific ids of one stream: channels and bridges."""

    def __init__(self, blocks: list[Pairs]) -> None:
        self.channels: dict[str, str] = {}
        members: dict[str, set[str]] = {}
        types: dict[str, str] = {}
        order: list[str] = []
        for pairs in blocks:
            headers = dict(pairs)
            for key, value in pairs:
                if key.endswith("Uniqueid") and "Bridge" not in key:
                    name = headers.get(key[: -len("Uniqueid")] + "Channel")
                    if name is not None:
                        self.channels.setdefault(value, name)
                elif _is_bridge_id(key) and value not in members:
                    members[value] = set()
                    order.append(value)
            if pairs[0] == ("Event", "BridgeEnter"):
                members[headers["BridgeUniqueid"]].add(headers["Channel"])
            if "BridgeUniqueid" in headers and "BridgeType" in headers:
                types.setdefault(headers["BridgeUniqueid"], headers["BridgeType"])
        self.bridges: dict[str, str] = {}
        for index, bridge in enumerate(order):
            label = f"bridge[{types.get(bridge, '')}]" + (
                "{" + ",".join(sorted(members[bridge])) + "}" if members[bridge] else f"#{index}"
            )
            while label in self.bridges.values():
                label += "'"
            self.bridges[bridge] = label

    def value(self, key: str, value: str) -> str:
        """``value`` of header ``key`` with run-specific ids replaced by stable names."""
        if _is_channel_id(key):
            return self.channels.get(value, value)
        if _is_bridge_id(key):
            return self.bridges.get(value, value)
        return value


def normalise(pairs: Pairs, names: Names, ignore: frozenset[str]) -> Shaped:
    """One message with its ids named and its varying values blanked."""
    timed = any(k == "Variable" and v in TIMED_VARIABLES for k, v in pairs)
    blank = {key for key, _ in pairs if key in VARYING and not _is_channel_id(key)}
    blank |= ignore | SCENARIO_VARYING | ({"Value"} if timed else set())
    return tuple((k, None if k in blank else names.value(k, v)) for k, v in pairs)


def entities(pairs: Pairs, names: Names) -> list[str]:
    """The entities an event is about: channels, bridges, devices, hints, members, presences."""
    headers = dict(pairs)
    found: list[str] = []
    for key, value in pairs:
        if key.endswith("Uniqueid") and "Bridge" not in key and value in names.channels:
            found.append("channel " + names.channels[value])
        elif _is_bridge_id(key) and value in names.bridges:
            found.append(names.bridges[value])
    name = pairs[0][1]
    if name == "OriginateResponse":  # raised by the originating thread: races the channel's
        return ["originate " + headers.get("ActionID", "")]
    if name == "DeviceStateChange":
        found.append("device " + headers["Device"])
    elif name == "ExtensionStatus":
        found.append(f"hint {headers['Exten']}@{headers['Context']}")
    elif name == "PresenceStateChange":
        found.append("presence " + headers["Presentity"])
    elif "Interface" in headers and "Queue" in headers:
        found.append(f"member {headers['Queue']} {headers['Interface']}")
    return list(dict.fromkeys(found)) or ["session"]


@dataclass
class ScenarioSpec:
    """What to compare in a call scenario, and what not (each exclusion says why)."""

    #: Events the fake does not model, left out on both sides.
    skip: frozenset[str] = frozenset()
    #: Headers whose values are not compared (beyond VARYING and SCENARIO_VARYING).
    ignore: frozenset[str] = frozenset()
    #: List items in hash order in Asterisk: event name -> header to sort a run of them by.
    sort: dict[str, str] = field(default_factory=dict)


def by_entity(
    blocks: list[Pairs], spec: ScenarioSpec
) -> tuple[list[Shaped], dict[str, list[Shaped]]]:
    """A stream as its answers in order, and its events grouped by entity in order."""
    names = Names(blocks)
    answers: list[Shaped] = []
    grouped: dict[str, list[Shaped]] = {}
    for pairs in blocks:
        kind, name = pairs[0]
        if kind == "Event" and name in spec.skip:
            continue
        shaped = normalise(pairs, names, spec.ignore)
        tagged = any(k == "ActionID" for k, _ in pairs)
        if kind != "Event" or (tagged and name != "OriginateResponse"):
            answers.append(shaped)
            continue
        for entity in entities(pairs, names):
            grouped.setdefault(entity, []).append(shaped)
    return _sorted_runs(answers, spec.sort), grouped


def _sorted_runs(items: list[Shaped], sort: dict[str, str]) -> list[Shaped]:
    result: list[Shaped] = []
    index = 0
    while index < len(items):
        item = items[index]
        key = sort.get(item[0][1] or "") if item[0][0] == "Event" else None
        end = index + 1
        if key is not None:
            while end < len(items) and items[end][0] == item[0]:
                end += 1
            result.extend(sorted(items[index:end], key=lambda m: str(dict(m).get(key))))
        else:
            result.append(item)
        index = end
    return result


def describe(shaped: Shaped) -> str:
    """One line for a shaped message, for failure reports."""
    return " ".join(f"{k}={v}" if v is not None else f"{k}=*" for k, v in shaped)


def _labelled(sequence: list[Shaped]) -> list[tuple[Shaped, int]]:
    """Each event with its occurrence number among identical events (to align runs)."""
    seen: Counter[Shaped] = Counter()
    labelled = []
    for event in sequence:
        labelled.append((event, seen[event]))
        seen[event] += 1
    return labelled


def consistent_order(mine: list[Shaped], runs: list[list[Shaped]]) -> bool:
    """
    Whether ``mine`` is an order the real server could produce, as far as
    ``runs`` (the same entity's events in several recordings) show: equal to
    one of them, or made of the same events as some of them with every pair
    of events in an order at least one of those showed.  Events raised by
    different threads of Asterisk race; an order seen nowhere is not accepted.
    """
    if any(mine == run for run in runs):
        return True
    same = [run for run in runs if Counter(run) == Counter(mine)]
    if not same:
        return False
    positions = [{label: i for i, label in enumerate(_labelled(run))} for run in same]
    labels = _labelled(mine)
    for i, first in enumerate(labels):
        for second in labels[i + 1 :]:
            if not any(p[first] < p[second] for p in positions):
                return False
    return True


def entity_differences(
    got: dict[str, list[Shaped]],
    want: dict[str, list[Shaped]],
    alternatives: list[dict[str, list[Shaped]]] = (),  # type: ignore[assignment]
) -> list[str]:
    """
    A readable account of how the fake's per-entity events differ from a
    capture's (empty: equal), where each entity's events may instead be in an
    order the capture and the ``alternatives`` (other recordings of the same
    scenario) show possible (`consistent_order`).
    """
    report = []
    for entity in sorted(set(got) | set(want)):
        mine, theirs = got.get(entity, []), want.get(entity, [])
        runs = [theirs, *(other.get(entity, []) for other in alternatives)]
        if consistent_order(mine, runs):
            continue
        report.append(f"== {entity}")
        for index in range(max(len(mine), len(theirs))):
            a = mine[index] if index < len(mine) else None
            b = theirs[index] if index < len(theirs) else None
            if a == b:
                report.append(f"   {index}: {a and a[0][1]}")
                continue
            report.append(f" - fake {index}: {describe(a) if a else '(none)'}")
            report.append(f" + real {index}: {describe(b) if b else '(none)'}")
            if a and b and a[0] == b[0]:
                mine_h, theirs_h = dict(a), dict(b)
                keys = dict.fromkeys([k for k, _ in a] + [k for k, _ in b])
                changed = [k for k in keys if mine_h.get(k, "?") != theirs_h.get(k, "?")]
                report.append(
                    "   differs: "
                    + ", ".join(
                        f"{k}: {mine_h.get(k, '-')!r} != {theirs_h.get(k, '-')!r}" for k in changed
                    )
                )
            break
    return report


@dataclass
class Step:
    time: float
    conn: str
    kind: str  # "connect", "send", "close"
    size: int = 0


def timeline(scenario: str) -> list[Step]:
    """Connections, client writes and client closes from ``NAME.log``."""
    steps = []
    text = read(f"{scenario}.log").decode("utf-8", "replace")
    for line in text.splitlines():
        match = re.match(r"@@ \+([\d.]+) (\S+) C>S (\d+)", line)
        if match:
            steps.append(Step(float(match[1]), match[2], "send", int(match[3])))
            continue
        match = re.match(r"## \+([\d.]+) (\S+): (connected to|client closed socket)", line)
        if match:
            kind = "connect" if match[3].startswith("connected") else "close"
            steps.append(Step(float(match[1]), match[2], kind))
    return steps


class Replayer:
    """Connections to a fake driven by a test, with StringTransports on the server side."""

    def __init__(self, fake: FakeAsterisk, clock: Clock) -> None:
        self.fake = fake
        self.clock = clock
        self.sessions: dict[str, FakeSession] = {}
        self.transports: dict[str, StringTransport] = {}
        self.lost: set[str] = set()
        self._ports = iter(range(41000, 42000))

    def connect(self, conn: str) -> None:
        peer = IPv4Address("TCP", "127.0.0.1", next(self._ports))
        session = self.fake.buildProtocol(peer)
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 5038), peerAddress=peer
        )
        session.makeConnection(transport)
        self.sessions[conn] = session
        self.transports[conn] = transport

    def send(self, conn: str, data: bytes) -> None:
        if conn not in self.lost:
            self.sessions[conn].dataReceived(data)
        self.settle()

    def close(self, conn: str) -> None:
        if conn not in self.lost:
            self.lost.add(conn)
            self.sessions[conn].connectionLost(Failure(ConnectionDone()))

    def advance(self, until: float) -> None:
        self.clock.advance(max(0.0, until - self.clock.seconds()))
        self.settle()

    def settle(self) -> None:
        for conn, transport in self.transports.items():
            if transport.disconnecting and conn not in self.lost:
                self.close(conn)

    def output(self, conn: str) -> bytes:
        return self.transports[conn].value()

    def closed_by_server(self, conn: str) -> bool:
        return self.transports[conn].disconnecting

    def run(self, steps: Iterable[Step], sent: dict[str, bytes]) -> None:
        offsets = dict.fromkeys(sent, 0)
        for step in steps:
            self.advance(step.time)
            if step.kind == "connect":
                self.connect(step.conn)
            elif step.kind == "send":
                start = offsets[step.conn]
                offsets[step.conn] = start + step.size
                self.send(step.conn, sent[step.conn][start : start + step.size])
            else:
                self.close(step.conn)
        self.settle()


def sent_file(scenario: str, conn: str) -> str:
    return f"{scenario}.sent.raw" if conn == "main" else f"{scenario}.{conn}.sent.raw"


def raw_file(scenario: str, conn: str) -> str:
    return f"{scenario}.raw" if conn == "main" else f"{scenario}.{conn}.raw"


class CaptureTestCase(SynchronousTestCase):
    """Replay a capture into a fake and compare the answers."""

    def replay_capture(
        self, scenario: str, setup: Callable[[FakeAsterisk], None] | None = None
    ) -> Replayer:
        clock = Clock()
        fake = FakeAsterisk(clock)
        if not scenario.startswith("scenario-"):
            transcript_server(fake)
        if setup is not None:
            setup(fake)
        steps = timeline(scenario)
        conns = {step.conn for step in steps}
        sent = {conn: read(sent_file(scenario, conn)) for conn in conns}
        replayer = Replayer(fake, clock)
        replayer.run(steps, sent)
        self.addCleanup(fake.stop)
        return replayer

    def assertMatchesCapture(
        self, replayer: Replayer, scenario: str, conn: str = "main", spec: Spec | None = None
    ) -> None:
        spec = spec or Spec()
        want_banner, want = messages(read(raw_file(scenario, conn)))
        got_banner, got = messages(replayer.output(conn))
        self.assertEqual(got_banner, want_banner)
        self.assertEqual(shape(got, spec), shape(want, spec))

    def assertMatchesByEntity(
        self, replayer: Replayer, scenario: str, spec: ScenarioSpec, conn: str = "main"
    ) -> None:
        """
        The fake's answers match the capture's in order, and its events match
        entity by entity: for each entity, the events of the capture or of one
        of its other recordings (``NAME.2.raw``, ...: the same scenario run
        again, whose cross-thread races came out otherwise).
        """
        want_banner, want = messages(read(raw_file(scenario, conn)))
        got_banner, got = messages(replayer.output(conn))
        self.assertEqual(got_banner, want_banner)
        got_answers, got_entities = by_entity(got, spec)
        want_answers, want_entities = by_entity(want, spec)
        others = [by_entity(messages(read(name))[1], spec)[1] for name in other_runs(scenario)]
        report = entity_differences(got_entities, want_entities, others)
        if report:
            self.fail(f"{scenario}: events differ by entity:\n" + "\n".join(report))
        if got_answers != want_answers:
            for index, (mine, theirs) in enumerate(zip(got_answers, want_answers, strict=False)):
                if mine != theirs:
                    self.fail(
                        f"{scenario}: answer {index} differs:\n - fake {describe(mine)}\n"
                        f" + real {describe(theirs)}"
                    )
            self.assertEqual(len(got_answers), len(want_answers), "number of answers")


def other_runs(scenario: str) -> list[str]:
    """The other recordings of a scenario: ``NAME.2.raw``, ``NAME.3.raw``, ..."""
    found = []
    index = 2
    while (DATA / f"{scenario}.{index}.raw").exists():
        found.append(f"{scenario}.{index}.raw")
        index += 1
    return found


def transcript_server(fake: FakeAsterisk) -> None:
    """
    Make the fake like the server of ../shared/transcripts when they were
    captured: it had run calls and a conference before, so its queue's
    ``_avail`` device read NOT_INUSE and ``confbridge:680`` was known (the fake
    starts as a freshly started server, as the ``scenario-*`` captures were).
    """
    fake.pbx.device_states["confbridge:680"] = "NOT_INUSE"
    fake.pbx.device_states["Queue:support_avail"] = "NOT_INUSE"


def sequence(start: int) -> Callable[[FakeAsterisk], None]:
    """Set up the channel sequence number the capture's channel names use."""

    def setup(fake: FakeAsterisk) -> None:
        fake.pbx.channel_sequence = start

    return setup


ORIGINATE_EVENTS = frozenset(
    {"Newchannel", "Newstate", "DialBegin", "DialEnd", "OriginateResponse", "Hangup"}
)


class LoginCaptureTests(CaptureTestCase):
    """Banner, logins, logoff and the security events around them."""

    def test_login_success(self) -> None:
        """A plaintext Login answers, then FullyBooted and SuccessfulAuth arrive, as captured."""
        replayer = self.replay_capture("login-success")
        self.assertMatchesCapture(replayer, "login-success")

    def test_login_failure(self) -> None:
        """Wrong secrets and unknown users get 'Authentication failed' 1 s late, then EOF."""
        replayer = self.replay_capture("login-failure")
        for conn in ("main", "nouser"):
            self.assertMatchesCapture(replayer, "login-failure", conn)
            self.assertTrue(replayer.closed_by_server(conn))
        self.assertMatchesCapture(replayer, "login-failure", "observer")

    def test_login_failure_waits_one_second(self) -> None:
        """The refusal of a wrong secret is written exactly one second after the Login."""
        clock = Clock()
        replayer = Replayer(FakeAsterisk(clock), clock)
        replayer.connect("main")
        replayer.send("main", read("login-failure.sent.raw"))
        banner = b"Asterisk Call Manager/9.0.0\r\n"
        self.assertEqual(replayer.output("main"), banner)
        replayer.advance(0.999)
        self.assertEqual(replayer.output("main"), banner)
        replayer.advance(1.0)
        self.assertEqual(replayer.output("main"), read("login-failure.raw"))

    def test_login_md5(self) -> None:
        """Challenge/Login with an MD5 key succeeds; a bad key fails; a bad AuthType errors."""
        challenges = iter(["951053600", "591775001"])

        def setup(fake: FakeAsterisk) -> None:
            fake.challenge_source = lambda: next(challenges)

        replayer = self.replay_capture("login-md5", setup)
        for conn in ("main", "badkey", "badauthtype"):
            self.assertMatchesCapture(replayer, "login-md5", conn)
        self.assertIn(b"Challenge: 951053600\r\n", replayer.output("main"))
        self.assertTrue(replayer.closed_by_server("badkey"))
        self.assertFalse(replayer.closed_by_server("badauthtype"))

    def test_preauth(self) -> None:
        """Actions before Login get 'Permission denied', the session stays open (see note)."""
        # The capture's RequestNotAllowed after the login is a race in Asterisk (events raised
        # before a login are normally dropped with it), so it is not compared.
        replayer = self.replay_capture("preauth")
        spec = Spec(skip=frozenset({"RequestNotAllowed"}))
        self.assertMatchesCapture(replayer, "preauth", spec=spec)

    def test_logoff(self) -> None:
        """Logoff answers Goodbye/'Thanks for all the fish.' and the server closes."""
        replayer = self.replay_capture("logoff")
        self.assertMatchesCapture(replayer, "logoff")
        self.assertTrue(replayer.closed_by_server("main"))

    def test_ping(self) -> None:
        """Ping answers Pong with a Timestamp and echoes an ActionID with spaces and a colon."""
        replayer = self.replay_capture("ping")
        self.assertMatchesCapture(replayer, "ping")


class SessionCaptureTests(CaptureTestCase):
    """Event masks, filters, errors and parsing."""

    def test_events(self) -> None:
        """Events on/off/classes answer 'Events: On|Off' and gate the UserEvents exactly."""
        replayer = self.replay_capture("events")
        self.assertMatchesCapture(replayer, "events")

    def test_filter(self) -> None:
        """A whitelist passes only UserEvents, a blacklist blocks one; errors as captured."""
        replayer = self.replay_capture("filter", sequence(0x16))
        self.assertMatchesCapture(replayer, "filter")

    def test_unknown_action(self) -> None:
        """Unknown and missing actions get Asterisk's texts and RequestBadFormat events."""
        replayer = self.replay_capture("unknown-action")
        self.assertMatchesCapture(replayer, "unknown-action")

    def test_no_actionid(self) -> None:
        """Answers and list items omit ActionID when the action had none (CLI text ignored)."""
        replayer = self.replay_capture("no-actionid")
        self.assertMatchesCapture(replayer, "no-actionid", spec=Spec(ignore=frozenset({"Output"})))

    def test_malformed(self) -> None:
        """Over-long lines, bare LFs, NULs, garbage and 200 headers are answered as captured."""
        replayer = self.replay_capture("malformed")
        self.assertMatchesCapture(replayer, "malformed")

    def test_pipelining(self) -> None:
        """Pipelined actions are answered in order, and a byte-by-byte action normally."""
        replayer = self.replay_capture("pipelining")
        self.assertMatchesCapture(replayer, "pipelining")

    def test_userevent(self) -> None:
        """UserEvent copies the action's headers; dialplan UserEvent mid-call (key events only)."""
        # Key events only: the fake's call model interleaves Newexten/Newstate differently.
        replayer = self.replay_capture("userevent", sequence(0x15))
        spec = Spec(events=frozenset({"UserEvent", "OriginateResponse", "Newchannel", "Hangup"}))
        self.assertMatchesCapture(replayer, "userevent", spec=spec)


class PermissionCaptureTests(CaptureTestCase):
    """Write classes and read classes of the capture's three users."""

    def test_permission(self) -> None:
        """Classes of reader and caller, RequestNotAllowed seen by admin (key events only)."""
        # No timeline was captured and caller's bytes were not recorded: the steps are rebuilt
        # from permission.md.  ListCommands' list (the real server has more actions) is compared
        # by its Response line here, line by line in test_testing.py.
        clock = Clock()
        fake = FakeAsterisk(clock)
        fake.pbx.channel_sequence = 0x17
        self.addCleanup(fake.stop)
        replayer = Replayer(fake, clock)
        caller = (
            b"Action: Login\r\nActionID: permission-10\r\nUsername: caller\r\n"
            b"Secret: callersecret\r\n\r\n"
            b"Action: Command\r\nActionID: permission-11\r\nCommand: core show version\r\n\r\n"
            b"Action: Originate\r\nActionID: permission-12\r\nChannel: Local/1002@txami-test\r\n"
            b"Application: System\r\nData: id\r\n\r\n"
            b"Action: Originate\r\nActionID: permission-13\r\nChannel: Local/1002@txami-test\r\n"
            b"Context: txami-test\r\nExten: 1002\r\nPriority: 1\r\nAsync: yes\r\n\r\n"
        )
        replayer.connect("observer")
        login = read("permission.observer.sent.raw").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
        replayer.send("observer", login)
        replayer.advance(0.3)
        replayer.connect("main")
        replayer.send("main", read("permission.sent.raw"))
        replayer.advance(0.8)
        replayer.connect("caller")
        replayer.send("caller", caller)
        replayer.advance(3.0)
        replayer.send("caller", b"Action: Logoff\r\nActionID: permission-14\r\n\r\n")
        replayer.send("observer", b"Action: Logoff\r\nActionID: permission-15\r\n\r\n")
        call = frozenset({"Newchannel", "OriginateResponse", "Hangup", "Newexten", "VarSet"})
        self.assertMatchesCapture(
            replayer, "permission", spec=Spec(loose=frozenset({"permission-08"}))
        )
        self.assertMatchesCapture(replayer, "permission", "caller", Spec(events=call))
        observer = frozenset(
            {"Newchannel", "OriginateResponse", "Hangup", "SuccessfulAuth", "RequestNotAllowed"}
        )
        self.assertMatchesCapture(replayer, "permission", "observer", Spec(events=observer))


class CallCaptureTests(CaptureTestCase):
    """Originate, Hangup, Status, variables: the calls of the simulated PBX, every event."""

    def by_entity(self, scenario: str, start: int, spec: ScenarioSpec | None = None) -> None:
        replayer = self.replay_capture(scenario, sequence(start))
        self.assertMatchesByEntity(replayer, scenario, spec or ScenarioSpec())

    def test_originate_sync(self) -> None:
        """Sync Originate answers after the answer, its events (all of them) after it."""
        self.by_entity("originate-sync", 0)

    def test_originate_sync_events_follow_the_response(self) -> None:
        """The events raised while a sync Originate ran reach its session after the answer."""
        replayer = self.replay_capture("originate-sync", sequence(0))
        _, blocks = messages(replayer.output("main"))
        names = [b[0][1] for b in blocks]
        answer = names.index("Success", 3)
        self.assertEqual(names[answer + 1 : answer + 3], ["Newchannel", "Newchannel"])

    def test_originate_async(self) -> None:
        """Async Originate answers at once, then the call's events and OriginateResponse."""
        self.by_entity("originate-async", 1)

    def test_originate_errors(self) -> None:
        """Originate's errors and a failed async OriginateResponse, every event."""
        # Unknown technology, no such extension, no slash, no channel, bad priority.
        self.by_entity("originate-errors", 2)

    def test_originate_variables(self) -> None:
        """Variable headers become VarSet events on both Local halves, in Asterisk's order."""
        self.by_entity("originate-variables", 3)

    def test_status(self) -> None:
        """Status of all/one channel, Variables, AllVariables, errors (items sorted, see note)."""
        # Asterisk lists channels in hash order, so items are compared sorted by Channel; the
        # capture caught one channel between dialplan steps: Application/Data/Priority ignored.
        replayer = self.replay_capture("status", sequence(4))
        spec = Spec(
            ignore=frozenset({"Application", "Data", "Priority"}), sort={"Status": "Channel"}
        )
        self.assertMatchesCapture(replayer, "status", spec=spec)

    def test_hangup(self) -> None:
        """Hangup with/without Cause, no channel, by /regex/ as a list, every event."""
        self.by_entity("hangup", 7)

    def test_absolute_timeout(self) -> None:
        """AbsoluteTimeout answers 'Timeout Set' and hangs the call up 2 s later."""
        self.by_entity("absolutetimeout", 0x0E)

    def test_vars(self) -> None:
        """Getvar/Setvar of globals, channel variables, functions and errors, every event."""
        self.by_entity("vars", 0x14)


class DataCaptureTests(CaptureTestCase):
    """Mailboxes, hints, IAX peers, the database, the CLI and the core."""

    def test_mailbox(self) -> None:
        """MailboxCount/MailboxStatus of 1234@default (2 new, 1 old) and the rest, as captured."""
        replayer = self.replay_capture("mailbox")
        self.assertMatchesCapture(replayer, "mailbox")

    def test_extensionstate(self) -> None:
        """Hint states, DEVICE_STATE changes and their events, state lists (sorted by Device)."""
        # DeviceStateList is in hash order in Asterisk: its items are compared sorted by Device.
        replayer = self.replay_capture("extensionstate")
        spec = Spec(sort={"DeviceStateChange": "Device"})
        self.assertMatchesCapture(replayer, "extensionstate", spec=spec)

    def test_iax(self) -> None:
        """IAXpeers' PeerEntry rows carry no ActionID, IAXpeerlist's do; IAX1peers is unknown."""
        replayer = self.replay_capture("iax")
        self.assertMatchesCapture(replayer, "iax")
        self.assertIn(
            b"ListItems: 0\r\n\r\n\r\nResponse: Goodbye\r\n",
            replayer.output("main"),
            "IAXnetstats answers a lone CRLF, as chan_iax2 does",
        )

    def test_db(self) -> None:
        """DBPut/DBGet (a list action)/DBGetTree/DBDel/DBDelTree and their errors."""
        replayer = self.replay_capture("db")
        self.assertMatchesCapture(replayer, "db")

    def test_command(self) -> None:
        """Command's modern framing and its errors; Output lines compared as present only."""
        # The CLI texts differ from a real Asterisk's, so Output lines are collapsed.
        replayer = self.replay_capture("command")
        spec = Spec(collapse=frozenset({"Output"}))
        self.assertMatchesCapture(replayer, "command", spec=spec)

    def test_core_settings_status(self) -> None:
        """CoreSettings and CoreStatus carry the captured headers."""
        replayer = self.replay_capture("core-settings-status")
        self.assertMatchesCapture(replayer, "core-settings-status")

    def test_custom_sample(self) -> None:
        """Ping, CoreStatus, Command, QueueSummary of 'support' and Getvar, as captured."""
        replayer = self.replay_capture("custom-sample")
        spec = Spec(ignore=frozenset({"Output"}))
        self.assertMatchesCapture(replayer, "custom-sample", spec=spec)


class BootCaptureTests(CaptureTestCase):
    """``boot``: a login while Asterisk boots (``tests/record_boot.py``)."""

    def test_boot(self) -> None:
        """Booting: no FullyBooted at login, module actions unknown, no hints; then FullyBooted."""
        clock = Clock()
        fake = FakeAsterisk(clock)
        self.addCleanup(fake.stop)
        fake.restart(boot_seconds=1)
        replayer = Replayer(fake, clock)
        replayer.connect("main")
        replayer.send("main", read("boot.sent.raw"))
        replayer.advance(1)
        spec = Spec(events=frozenset({"FullyBooted"}))
        self.assertMatchesCapture(replayer, "boot", spec=spec)
