"""
txami.testing.agi: the fake AGI channel (`FakeAGI`) answers as the recorded
Asterisk does, models the channel, and connects in memory or over TCP; and
`FakeAsyncAGI` on a `FakeAsterisk`.  The FakeAGI is driven here by raw command
lines (and by a bare line protocol over TCP), so these tests do not depend on
txami.agi's client side.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import Factory, ServerFactory
from twisted.internet.task import Clock
from twisted.protocols.basic import LineReceiver
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txami import Message
from txami.testing import FakeAsterisk, connected_pair
from txami.testing.agi import DEAD_COMMANDS, FakeAGI, FakeAsyncAGI

reactor: Any = _reactor
DATA = FilePath(__file__).sibling("data")


def recorded_pairs(name: str) -> list[tuple[str, list[str]]]:
    """(command line, reply lines) of a FastAGI capture, paired up from its two files."""
    sent = DATA.child(f"{name}.sent.raw").getContent().decode().split("\n")[:-1]
    raw = DATA.child(f"{name}.raw").getContent().decode().split("\n")[:-1]
    replies = raw[raw.index("") + 1 :]
    pairs = []
    for line in sent:
        reply = [replies.pop(0)]
        if reply[0].startswith("520-"):
            while not reply[-1].startswith("520 "):
                reply.append(replies.pop(0))
        pairs.append((line, reply))
    return pairs


class ModelTests(SynchronousTestCase):
    """The model's replies, line in, lines out."""

    def test_like_the_recording(self) -> None:
        """Set up like the recorded channel, the fake gives the recorded 200/510 replies."""
        fake = FakeAGI(
            channel="Local/900@txami-test-00000000;2",
            caller_id="agirec2224",
            context="txami-test",
            extension="900",
            priority=2,
            variables={"TXAMI_GLOBAL": "hello"},
            missing_files=["txami-no-such-file"],
            applications={"TxamiNoSuchApp": -2},
            answered=True,
        )
        # The model has no sound files to fail on: SAY NUMBER answers 0 here (the real
        # server, without its digit prompts, answered -1); and its usage text differs.
        differences = {'SAY NUMBER 42 ""'}
        for line, reply in recorded_pairs("agi-fastagi"):
            got = fake.reply(line)
            if line in differences:
                continue
            if reply[0].startswith("520"):
                self.assertEqual((got[0], got[-1]), (reply[0], reply[-1]), line)
            else:
                self.assertEqual(got, reply, line)

    def test_dead_channel_like_the_recording(self) -> None:
        """After the hangup, ANSWER answers 511 while GET VARIABLE and NOOP still work."""
        fake = FakeAGI(variables={"TXAMI_GLOBAL": "hello"})
        fake.hang_up()
        pairs = recorded_pairs("agi-nosighup")[2:]
        self.assertEqual([fake.reply(line) for line, _ in pairs], [r for _, r in pairs])

    def test_state(self) -> None:
        """The model keeps what the commands did."""
        fake = FakeAGI(digits="5#123", channel="PJSIP/1-1")
        replies = [
            fake.reply(line)[0]
            for line in [
                "CHANNEL STATUS",
                "ANSWER",
                "CHANNEL STATUS PJSIP/1-1",
                "CHANNEL STATUS Other",
                'STREAM FILE welcome "5"',
                "GET DATA enter 3000",
                "GET DATA enter 3000 2",
                "WAIT FOR DIGIT -1",
                "WAIT FOR DIGIT 10",
                "SAY DIGITS 12 #",
                "SAY ALPHA abc",
                'SAY ALPHA abc ""',
                "EXEC Dial PJSIP/2,30",
                "EXEC Answer",
                "SET CONTEXT other",
                "SET EXTENSION 100",
                "SET PRIORITY 3",
                "SET PRIORITY label",
                "SET AUTOHANGUP 30",
                'SET CALLERID "\\"Bob\\" <200>"',
                "SET MUSIC on",
                'VERBOSE "hello there" 3',
                "DATABASE PUT fam key val",
                "DATABASE PUT fam sub/key val",
                "DATABASE GET fam key",
                "DATABASE DELTREE fam sub",
                "DATABASE DELTREE fam sub",
                "GET FULL VARIABLE ${CALLERID(num)}-${EXTEN}",
                "GET FULL VARIABLE x Other",
                "GET VARIABLE CALLERID(name)",
                "get variable NOPE",
                "ASYNCAGI BREAK",
                "FOO",
                "",
            ]
        ]
        self.assertEqual(
            replies,
            [
                "200 result=4",
                "200 result=0",
                "200 result=6",
                "200 result=-1",
                "200 result=53 endpos=1600",
                "200 result=",  # '#' ends the input
                "200 result=12",
                "200 result=51",
                "200 result=0",
                "200 result=0",
                "520-Invalid command syntax.  Proper usage follows:",
                "200 result=0",
                "200 result=0",
                "200 result=0",
                "200 result=0",
                "200 result=0",
                "200 result=0",
                "520-Invalid command syntax.  Proper usage follows:",
                "200 result=0",
                "200 result=1",
                "200 result=0",
                "200 result=1",
                "200 result=1",
                "200 result=1",
                "200 result=1 (val)",
                "200 result=0",
                "200 result=1",
                "200 result=1 (200-100)",
                "200 result=0",
                "200 result=1 (Bob)",
                "200 result=0",
                "200 result=0",
                "510 Invalid or unknown command",
                "510 Invalid or unknown command",
            ],
        )
        self.assertEqual(fake.played, ["welcome", "enter", "enter", "digits:12", "alpha:abc"])
        self.assertEqual(fake.executed, [("Dial", "PJSIP/2,30"), ("Answer", "")])
        self.assertEqual((fake.context, fake.extension, fake.priority), ("other", "100", 3))
        self.assertEqual((fake.autohangup, fake.music, fake.logged), (30.0, True, ["hello there"]))
        self.assertEqual(fake.database, {("fam", "key"): "val"})
        self.assertEqual((fake.caller_id, fake.caller_id_name, fake.digits), ("200", "Bob", ""))
        self.assertEqual(len(fake.commands), 34)

    def test_timeout_and_full_input(self) -> None:
        """GET DATA marks (timeout) when the caller stops before the limit or a '#'."""
        fake = FakeAGI(digits="12")
        self.assertEqual(fake.reply("GET DATA x 100 4"), ["200 result=12 (timeout)"])
        self.assertEqual(fake.reply("GET DATA x"), ["200 result= (timeout)"])
        fake.press("1234")
        self.assertEqual(fake.reply("GET DATA x 100 4"), ["200 result=1234"])

    def test_hangup_command(self) -> None:
        """HANGUP answers 1 then the HANGUP line; later live-channel commands get 511."""
        fake = FakeAGI()
        self.assertEqual(fake.reply("HANGUP"), ["200 result=1", "HANGUP"])
        self.assertTrue(fake.hung_up)
        self.assertEqual(fake.reply("ANSWER")[0][:3], "511")
        self.assertEqual(
            fake.reply("HANGUP"),
            ["511 Command Not Permitted on a dead channel or intercept routine"],
        )
        silent = FakeAGI(sighup=False)
        self.assertEqual(silent.reply("HANGUP"), ["200 result=1"])

    def test_dead_commands(self) -> None:
        """Every command Asterisk allows on a dead channel still answers; the rest 511."""
        fake = FakeAGI()
        fake.hang_up()
        for name in DEAD_COMMANDS:
            if name.startswith("speech"):
                continue
            self.assertNotEqual(fake.reply(name.upper())[0][:3], "511", name)
        self.assertEqual(fake.reply('STREAM FILE x ""')[0][:3], "511")

    def test_scripted(self) -> None:
        """add_command replaces the model, for known and unknown commands alike."""
        fake = FakeAGI()
        fake.add_command("answer", lambda f, argv: "200 result=-1")
        fake.add_command("SPEECH CREATE", lambda f, argv: ["200 result=1"])
        self.assertEqual(fake.reply("ANSWER"), ["200 result=-1"])
        self.assertEqual(fake.reply("SPEECH CREATE engine"), ["200 result=1"])

    def test_environment(self) -> None:
        """The environment lists the agi_* variables in Asterisk's order; env overrides."""
        fake = FakeAGI(
            arguments=["a b", ""], script="txami", env={"agi_dnid": "100", "agi_x": "y"}
        )
        text = fake.environment_text("agi://h:1/")
        lines = text.split("\n")
        self.assertEqual(
            lines[:3],
            ["agi_network: yes", "agi_network_script: txami", "agi_request: agi://h:1/txami"],
        )
        self.assertIn("agi_dnid: 100", lines)
        self.assertEqual(lines[-5:], ["agi_arg_1: a b", "agi_arg_2: ", "agi_x: y", "", ""])
        recorded = DATA.child("agi-fastagi.raw").getContent().decode()
        recorded_names = [x.split(":")[0] for x in recorded[: recorded.index("\n\n")].split("\n")]
        ours = [name for name, _ in FakeAGI(arguments=["one", "two"], script="t").environment()]
        self.assertEqual(ours, recorded_names)


class LineClient(LineReceiver):
    """A FastAGI server side that sends given command lines, one per reply."""

    delimiter = b"\n"

    def __init__(self, lines: list[str]) -> None:
        self.lines = list(lines)
        self.received: list[str] = []
        self.env_done = False

    def lineReceived(self, line: bytes) -> None:
        text = line.decode()
        self.received.append(text)
        if not self.env_done:
            if text:
                return
            self.env_done = True
        elif text.startswith("520-") or text == "HANGUP":
            return
        if self.lines:
            self.sendLine(self.lines.pop(0).encode())
        else:
            self.transport.loseConnection()  # type: ignore[union-attr]


class Listener(LineReceiver):
    """A FastAGI server side that only listens."""

    delimiter = b"\n"

    def __init__(self) -> None:
        self.received: list[str] = []

    def lineReceived(self, line: bytes) -> None:
        self.received.append(line.decode())


class ConnectionTests(SynchronousTestCase):
    """run(): in memory, with the pump."""

    def test_run_in_memory(self) -> None:
        """The fake sends its environment, answers each line, and fires when closed."""
        server = LineClient(["ANSWER", "GET VARIABLE FOO"])
        factory = ServerFactory.forProtocol(lambda: server)
        fake = FakeAGI(variables={"FOO": "bar"}, script="s")
        done = fake.run(factory)
        self.assertIs(self.successResultOf(done), fake)
        self.assertEqual(fake.commands, ["ANSWER", "GET VARIABLE FOO"])
        self.assertEqual(server.received[-2:], ["200 result=0", "200 result=1 (bar)"])
        self.assertIn("agi_request: agi://127.0.0.1/s", server.received)

    def test_hang_up_sends_hangup(self) -> None:
        """hang_up() while connected sends HANGUP to the server at once."""
        server = Listener()
        factory = ServerFactory.forProtocol(lambda: server)
        fake = FakeAGI()
        fake.run(factory, Clock())
        fake.hang_up()
        fake.flush()
        self.assertEqual(server.received[-1], "HANGUP")

    def test_flush_needs_run(self) -> None:
        """flush() before run() is a RuntimeError."""
        self.assertRaises(RuntimeError, FakeAGI().flush)


class TCPTests(TestCase):
    """connect(): over a real socket on 127.0.0.1."""

    timeout = 10

    async def test_connect(self) -> None:
        """Over TCP the fake answers as in memory and fires when the server closes."""
        server = LineClient(["NOOP"])
        port = reactor.listenTCP(0, Factory.forProtocol(lambda: server), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        fake = FakeAGI(script="x")
        got = await fake.connect(reactor, "127.0.0.1", port.getHost().port)
        self.assertIs(got, fake)
        self.assertEqual(fake.commands, ["NOOP"])
        self.assertIn(f"agi_request: agi://127.0.0.1:{port.getHost().port}/x", server.received)

    async def test_connect_refused(self) -> None:
        """A refused connection fails the Deferred."""
        port = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        number = port.getHost().port
        await port.stopListening()
        d: Deferred[Any] = FakeAGI().connect(reactor, "127.0.0.1", number)
        with self.assertRaises(ConnectionRefusedError):
            await d


class FakeAsyncAGITests(SynchronousTestCase):
    """FakeAsyncAGI on a FakeAsterisk, seen by a plain AMI client."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.fake = FakeAsterisk(self.clock)
        self.asyncagi = FakeAsyncAGI(self.fake)
        self.client, self.session, self.pump = connected_pair(self.fake, self.clock)
        self.events: list[Message] = []
        self.client.add_event_handler("*Async*", self.events.append)

    def test_start_exec_end(self) -> None:
        """AsyncAGIStart (URL-encoded Env), the AGI action answered, AsyncAGIExec, AsyncAGIEnd."""
        channel = FakeAGI(channel="Local/1-1;2", variables={"A": "x y"})
        self.asyncagi.start(channel)
        self.pump.flush()
        start = self.events[0]
        self.assertEqual(
            (start.name, start["Channel"], start["Privilege"]),
            ("AsyncAGIStart", "Local/1-1;2", "agi,all"),
        )
        env = unquote(start["Env"])
        self.assertTrue(env.startswith("agi_request: async\nagi_channel: Local/1-1;2\n"), env)
        d = self.client.send_action(
            "AGI", Channel="Local/1-1;2", Command="GET VARIABLE A", CommandID="c1"
        )
        self.pump.flush()
        self.assertEqual(self.successResultOf(d)["Message"], "Added AGI command to queue")
        executed = self.events[1]
        self.assertEqual((executed.name, executed["CommandId"]), ("AsyncAGIExec", "c1"))
        self.assertEqual(executed["Result"], "200%20result%3D1%20(x%20y)%0A")
        self.client.send_action(
            "AGI", Channel="Local/1-1;2", Command="ASYNCAGI BREAK", CommandID="c2"
        )
        self.pump.flush()
        self.assertEqual(
            [e.name for e in self.events],
            ["AsyncAGIStart", "AsyncAGIExec", "AsyncAGIExec", "AsyncAGIEnd"],
        )
        self.assertEqual(self.asyncagi.channels, {})

    def test_refusals(self) -> None:
        """AGI for an unknown channel or without a Command is refused with Asterisk's words."""
        gone = self.client.send_action("AGI", Channel="Nope/1", Command="NOOP")
        bare = self.client.send_action("AGI", Channel="Nope/1")
        self.pump.flush()
        self.assertEqual(
            self.failureResultOf(gone).value.message, "Channel Nope/1 does not exist."
        )
        self.assertEqual(
            self.failureResultOf(bare).value.message, "Both, Channel and Command are *required*"
        )

    def test_hang_up(self) -> None:
        """hang_up ends AsyncAGI: AsyncAGIEnd, and the channel is gone."""
        channel = FakeAGI()
        self.asyncagi.start(channel)
        self.asyncagi.hang_up(channel)
        self.pump.flush()
        self.assertEqual([e.name for e in self.events], ["AsyncAGIStart", "AsyncAGIEnd"])
        self.assertTrue(channel.hung_up)
        self.asyncagi.end(channel)  # a second end raises nothing more
        self.pump.flush()
        self.assertEqual(len(self.events), 2)
