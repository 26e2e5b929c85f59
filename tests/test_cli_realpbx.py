"""
``python -m txami`` as a real process against the real Asterisk that
`.ci/run` starts (skipped without one; see `tests.realpbx`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest, TestCase

from tests.clirun import Result, Txami, reactor, spawn
from tests.realpbx import CONTEXT, SKIP, USERS, address, connect_user, unique_tag
from txami import AMIError, AMIFactory
from txami.cli.screen import LEAVE

#: The members of queue support on the test server.
AGENTS = ("Local/1000@txami-test/n", "Local/1001@txami-test/n")


class RealAsteriskCLITests(TestCase):
    """Each command against Asterisk 20."""

    skip = SKIP
    timeout = 60

    def setUp(self) -> None:
        self.home = os.path.abspath(self.mktemp())
        os.makedirs(self.home)
        host, port = address()
        self.where = f"{host}:{port}"
        self.connection = ["-h", host, "-p", str(port), "-u", "admin"]

    def start(self, *arguments: str, terminal: tuple[int, int] | None = None) -> Txami:
        child = spawn(arguments, self.home, {"TXAMI_SECRET": USERS["admin"]}, terminal=terminal)
        self.addCleanup(child.cleanup)
        return child

    def run_txami(self, *arguments: str) -> Deferred[Result]:
        return self.start(*arguments).when_ended()

    async def test_ping_plain_and_tls_md5(self) -> None:
        """ping answers over TCP, and over TLS (the server's CA) with an MD5 login."""
        if not (os.environ.get("TXAMI_TEST_AMI_TLS") and os.environ.get("TXAMI_TEST_CA")):
            raise SkipTest(
                "TXAMI_TEST_AMI_TLS and TXAMI_TEST_CA are not set (../shared/asterisk/env)"
            )
        host, port = address("TXAMI_TEST_AMI_TLS")
        tls = ["-h", host, "-p", str(port), "-u", "admin", "--tls-ca", os.environ["TXAMI_TEST_CA"]]
        plain, secure = await gatherResults(
            [
                self.run_txami("ping", *self.connection),
                self.run_txami("ping", "--auth", "md5", *tls),
            ]
        )
        self.assertEqual((plain.code, plain.error, secure.code, secure.error), (0, "", 0, ""))
        self.assertRegex(plain.text, rf"\APong from {re.escape(self.where)} \(AMI 9\.\d+\.\d+\): ")
        self.assertRegex(secure.text, rf"\APong from {re.escape(host)}:{port} \(AMI 9\.")

    async def test_list_action_json(self) -> None:
        """CoreShowChannels --json: its items and the closing event that counts them."""
        result = await self.run_txami("action", "CoreShowChannels", "--json", *self.connection)
        self.assertEqual((result.code, result.error), (0, ""))
        answer = json.loads(result.text)
        self.assertEqual(answer["response"]["EventList"], "start")
        self.assertEqual(answer["list_complete"]["Event"], "CoreShowChannelsComplete")
        self.assertEqual(int(answer["list_complete"]["ListItems"]), len(answer["items"]))

    async def test_command_and_failures(self) -> None:
        """command prints the CLI's lines; an unknown command and a refused action exit 1."""
        uptime, unknown, refused = await gatherResults(
            [
                self.run_txami("command", "core show uptime seconds", *self.connection),
                self.run_txami("command", "txami no such command", *self.connection),
                self.run_txami("action", "Hangup", "Channel=Local/nobody", *self.connection),
            ]
        )
        self.assertEqual((uptime.code, uptime.error), (0, ""))
        self.assertRegex(uptime.text, r"\ASystem uptime: \d+\nLast reload: \d+\n\Z")
        self.assertEqual((unknown.code, unknown.text), (1, ""))
        self.assertRegex(unknown.error, r"\Atxami: No such command 'txami no such command' ")
        self.assertEqual(
            (refused.code, refused.error), (1, "txami: Hangup failed: No such channel\n")
        )

    async def test_events_of_a_call(self) -> None:
        """events --name UserEvent --json sees the UserEvent of a call txami action originates."""
        tag = unique_tag("cli")
        child = self.start("events", "--name", "UserEvent", "--json", "--debug", *self.connection)
        await child.errors(lambda err: b"printing the events of" in err)
        originated = await self.run_txami(
            "action", "Originate", "Channel=Local/700@txami-test", "Application=Wait",
            "Data=2", f"CallerID={tag}", *self.connection,
        )  # fmt: skip
        self.assertEqual(originated.code, 0, originated)
        await child.output(lambda out: tag.encode() in out)
        child.signal(signal.SIGINT)
        result = await child.when_ended()
        self.assertEqual(result.code, 0, result)
        self.assertNotIn("txami:", result.error)
        events = [json.loads(line) for line in result.text.splitlines()]
        # The server-side filter let only UserEvents through (their Privilege is user).
        self.assertEqual({event["Event"] for event in events}, {"UserEvent"})
        mine = [event for event in events if event.get("CallerIDName") == tag]
        self.assertEqual([(e["UserEvent"], e["Foo"]) for e in mine], [("TxamiTest", "bar")])


class RealAsteriskLiveTests(TestCase):
    """txami calls and txami queues against Asterisk 20: a bridged call and a queue caller."""

    skip = SKIP
    timeout = 90

    async def setUp(self) -> None:  # type: ignore[override]
        self.home = os.path.abspath(self.mktemp())
        os.makedirs(self.home)
        host, port = address()
        self.connection = ["-h", host, "-p", str(port), "-u", "admin"]
        self.tag = unique_tag("cli")
        self.driver: AMIFactory = await connect_user(reactor)
        self.addCleanup(self.driver.stop)
        self.addCleanup(self.clean_up)

    def start(self, *arguments: str, terminal: tuple[int, int] | None = None) -> Txami:
        environ = {"TXAMI_SECRET": USERS["admin"]}
        child = spawn([*arguments, *self.connection], self.home, environ, terminal=terminal)
        self.addCleanup(child.cleanup)
        return child

    async def mine(self) -> list[Any]:
        """This test's channels as CoreShowChannels lists them."""
        rows = await self.driver.core_show_channels()
        return [r for r in rows if r.get("AccountCode") == self.tag]

    async def originate(self, exten: str, name: str) -> None:
        await self.driver.originate(
            f"Local/{exten}@{CONTEXT}",
            application="Wait",
            data="60",
            caller_id=f'"{name}" <{self.tag}>',
            account=self.tag,
            async_=True,
        )

    async def pause(self, paused: bool) -> None:
        for agent in AGENTS:
            await self.driver.send_action(
                "QueuePause",
                Queue="support",
                Interface=agent,
                Paused="true" if paused else "false",
                Reason=self.tag if paused else "",
            )

    async def clean_up(self) -> None:
        """Hang up this test's channels, unpause the agents, wait until they are idle."""
        for row in await self.mine():
            with contextlib.suppress(AMIError):
                await self.driver.hangup(row["Channel"])
        await self.pause(False)

        async def gone() -> bool:
            return not await self.mine()

        await _until(gone, "this test's channels gone")

    async def test_calls_and_queue_caller(self) -> None:
        """A 1010 call is one block of four channels in a bridge; a paused queue's caller waits."""
        await self.pause(True)
        await self.originate("1010", "Cli Bridged")
        await self.originate("600", "Cli Queued")
        rows: list[Any] = []

        async def listed() -> bool:
            rows[:] = await self.mine()
            return len(rows) == 6 and sum(1 for r in rows if r.get("BridgeId")) == 2

        await _until(listed, "the call bridged and the caller queued")
        calls, text, queues = await gatherResults(
            [
                self.start("calls", "--once", "--json").when_ended(),
                self.start("calls", "--once").when_ended(),
                self.start("queues", "support", "--once").when_ended(),
            ]
        )
        for result in (calls, text, queues):
            self.assertEqual((result.code, result.error), (0, ""), result)
        found = json.loads(calls.text)
        mine = {u: c for u, c in found["channels"].items() if c["account_code"] == self.tag}
        groups: dict[str, list[str]] = {}
        for channel in mine.values():
            groups.setdefault(channel["call"], []).append(channel["name"])
        self.assertEqual(sorted(len(names) for names in groups.values()), [2, 4])
        (bridged,) = [c for c, names in groups.items() if len(names) == 4]
        self.assertEqual(len(found["calls"][bridged]["bridges"]), 1)
        block = text.text.split(f"Call {bridged}: ", 1)[1].split("\n\n", 1)[0].splitlines()
        self.assertRegex(block[0], r"\A4 channels, \d\d:\d\d:\d\d, answered, bridge \w{8} ")
        self.assertEqual(len(block), 5)
        self.assertTrue(all(f"Cli Bridged <{self.tag}>" in line for line in block[1:]), block)
        lines = queues.text.splitlines()
        self.assertRegex(lines[0], r"\AQueue support: [1-9]\d* callers? waiting \(longest ")
        for name in ("Agent One", "Agent Two"):
            (row,) = [line for line in lines if line.startswith(f"  {name} ")]
            self.assertIn(f" yes ({self.tag}) ", row)
        (caller,) = [line for line in lines if f"Cli Queued <{self.tag}>" in line]
        self.assertRegex(caller, r"\A +\d+  Local/600@txami-test-\w+;2 ")

    async def test_live_queue_on_a_terminal(self) -> None:
        """On a terminal, the caller leaves the view once an agent is back; Ctrl-C ends it."""
        await self.pause(True)
        await self.originate("600", "Cli Live")
        child = self.start("queues", "support", terminal=(160, 40))
        await child.output(lambda out: f"Cli Live <{self.tag}>".encode() in out)
        mark = f"Cli Live <{self.tag}>".encode()
        seen = len(child.out)
        await self.driver.send_action(
            "QueuePause", Queue="support", Interface=AGENTS[0], Paused="false"
        )

        def answered(out: bytes) -> bool:
            # The last whole frame drawn since: Agent One is back, the caller has left.
            frames = [f for f in out[seen:].split(b"\x1b[H") if f.endswith(b"\x1b[J")]
            return bool(frames) and mark not in frames[-1] and b" no " in frames[-1]

        await child.output(answered)
        child.type(b"\x03")
        result = await child.when_ended()
        self.assertEqual(result.code, 0)
        self.assertTrue(result.out.endswith(LEAVE.encode()), result.out[-80:])


async def _until(condition: Any, what: str, timeout: float = 20) -> None:
    """Poll the asynchronous ``condition`` until it is true; `TimeoutError` after ``timeout``."""
    deadline = reactor.seconds() + timeout
    while not await condition():
        if reactor.seconds() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g} s")
        await deferLater(reactor, 0.05, lambda: None)
