"""
``python -m txami`` as a real process against the real Asterisk that
`.ci/run` starts (skipped without one; see `tests.realpbx`).
"""

from __future__ import annotations

import json
import os
import re
import signal

from twisted.internet.defer import Deferred, gatherResults
from twisted.trial.unittest import TestCase

from tests.clirun import Result, Txami, spawn
from tests.realpbx import SKIP, USERS, address, unique_tag


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

    def start(self, *arguments: str) -> Txami:
        child = spawn(arguments, self.home, {"TXAMI_SECRET": USERS["admin"]})
        self.addCleanup(child.cleanup)
        return child

    def run_txami(self, *arguments: str) -> Deferred[Result]:
        return self.start(*arguments).when_ended()

    async def test_ping_plain_and_tls_md5(self) -> None:
        """ping answers over TCP, and over TLS (the server's CA) with an MD5 login."""
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
