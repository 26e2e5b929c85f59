"""
Smoke tests against the real Asterisk that `.ci/run` starts (skipped without
one): the server answers, and the helpers of `tests.realpbx` work.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor as _reactor
from twisted.trial.unittest import TestCase

from tests.realpbx import SKIP, connect_user, unique_tag, wait_for

reactor: Any = _reactor


class RealAsteriskSmokeTests(TestCase):
    """The real server of this run is up and answers as Asterisk 20 does."""

    skip = SKIP
    timeout = 30

    async def test_login_ping_and_banner(self) -> None:
        """admin logs in, Ping answers Pong, the banner is AMI 9.x (Asterisk 20)."""
        ami = await connect_user(reactor)
        self.addCleanup(ami.stop)
        pong = await ami.ping()
        self.assertEqual(pong["Ping"], "Pong")
        protocol = await ami.when_ready()
        self.assertTrue(protocol.ami_version.startswith("9."), protocol.ami_version)

    async def test_wait_for_and_tags(self) -> None:
        """wait_for returns the first true value; unique tags do not repeat."""
        self.assertNotEqual(unique_tag(), unique_tag())
        seen = []
        value = await wait_for(reactor, lambda: seen.append(1) or (len(seen) >= 3 and "done"))
        self.assertEqual(value, "done")
        with self.assertRaises(TimeoutError):
            await wait_for(reactor, lambda: None, timeout=0.05, what="nothing")
