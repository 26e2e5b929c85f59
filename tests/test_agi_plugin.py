"""
``twistd txami-agi``: the plugin (twisted/plugins/txami_agi_plugin.py) as
twistd finds it from the checkout, its lazy import, `txami.agi.tap`'s options
and service, and a real ``twistd -n txami-agi`` process answering txami's
fake FastAGI client over 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactor
from twisted.python import reflect, usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.test_daemon_e2e import TWISTD
from tests.test_plugin import PLUGINS, ROOT, keep_checkout_clean, run_python
from txami.agi import FastAGIFactory
from txami.agi.tap import DEFAULT_PORT, Options, makeService
from txami.testing.agi import FakeAGI

reactor: Any = _reactor

DISCOVER = """
import json, sys
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
found = [p for p in getPlugins(IServiceMaker) if p.tapname == "txami-agi"]
plugin = found[0]
print(json.dumps({
    "count": len(found),
    "names": sorted(p.tapname for p in getPlugins(IServiceMaker) if "txami" in p.tapname),
    "module": plugin.module,
    "description": plugin.description,
    "options": plugin.options.__module__ + "." + plugin.options.__name__,
    "makeService": plugin.makeService.__module__ + "." + plugin.makeService.__name__,
}))
"""

LAZY = """
import json, sys
import twisted.plugins.txami_agi_plugin as plugin
heavy = sorted(
    name for name in sys.modules
    if name == "txami" or name.startswith("txami.") or name == "twisted.internet.reactor"
)
print(json.dumps({"heavy": heavy, "file": plugin.__file__}))
"""

#: A handler for the options tests: importable, callable.
handler = FakeAGI  # any callable will do for parsing
not_callable = 42


class PluginTests(SynchronousTestCase):
    """The plugin as twistd sees it from a checkout."""

    def setUp(self) -> None:
        keep_checkout_clean(self)

    def test_discovered(self) -> None:
        """getPlugins finds txami-agi once, next to txami, wired to txami.agi.tap."""
        found = run_python(DISCOVER, ROOT)
        self.assertEqual(found["count"], 1)
        self.assertEqual(found["names"], ["txami", "txami-agi"])
        self.assertEqual(found["module"], "txami.agi.tap")
        self.assertEqual(found["options"], "txami.agi.tap.Options")
        self.assertEqual(found["makeService"], "txami.agi.tap.makeService")
        self.assertTrue(str(found["description"]).startswith("A FastAGI server"))

    def test_import_is_lazy(self) -> None:
        """Importing the plugin module imports no txami module and no reactor."""
        found = run_python(LAZY, ROOT)
        self.assertEqual(found["heavy"], [])
        self.assertEqual(found["file"], os.path.join(PLUGINS, "txami_agi_plugin.py"))


class OptionsTests(SynchronousTestCase):
    """txami.agi.tap.Options: every mistake stops twistd with a one-line UsageError."""

    def parse(self, *args: str) -> Options:
        options = Options()
        options.parseOptions(list(args))
        return options

    def refused(self, *args: str) -> str:
        with self.assertRaises(usage.UsageError) as caught:
            self.parse(*args)
        return str(caught.exception)

    def test_defaults(self) -> None:
        """Only --handler is needed; the port defaults to 4573 on loopback."""
        options = self.parse("--handler", "tests.test_agi_plugin.handler")
        self.assertIs(options.handler, FakeAGI)
        self.assertEqual(options["port"], DEFAULT_PORT)
        self.assertEqual(DEFAULT_PORT, "tcp:4573:interface=127.0.0.1")
        self.assertEqual(options["environment-timeout"], 10.0)

    def test_handler_problems(self) -> None:
        """A missing, undotted, unknown, failing or uncallable handler is refused by name."""
        self.assertIn("--handler is required", self.refused())
        self.assertIn("package.module.callable", self.refused("--handler", "handler"))
        self.assertIn("cannot find --handler", self.refused("--handler", "tests.nowhere.x"))
        self.assertIn(
            "cannot find --handler", self.refused("--handler", "tests.test_agi_plugin.nothing")
        )
        self.assertIn(
            "is not callable", self.refused("--handler", "tests.test_agi_plugin.not_callable")
        )

        def broken(name: str) -> Any:
            raise RuntimeError("the module raised on import")

        self.patch(reflect, "namedAny", broken)
        self.assertEqual(
            self.refused("--handler", "pkg.mod.x"),
            "importing --handler pkg.mod.x failed: RuntimeError: the module raised on import",
        )

    def test_port_and_timeout_problems(self) -> None:
        """A bad endpoint or a timeout that is not a positive number is refused."""
        h = ("--handler", "tests.test_agi_plugin.handler")
        self.assertIn("bad --port endpoint", self.refused(*h, "--port", "nonsense:1"))
        for bad in ("0", "-1", "soon", "nan"):
            self.assertIn("--environment-timeout", self.refused(*h, "--environment-timeout", bad))

    def test_make_service(self) -> None:
        """makeService listens on --port with a FastAGIFactory running the handler."""
        options = self.parse(
            "--handler", "tests.test_agi_plugin.handler", "--port", "tcp:4599:interface=127.0.0.1"
        )
        memory = MemoryReactor()
        service = makeService(options, memory)
        service.privilegedStartService()
        service.startService()
        [(port, factory, _, interface)] = memory.tcpServers
        self.assertEqual((port, interface), (4599, "127.0.0.1"))
        self.assertIsInstance(factory, FastAGIFactory)
        self.assertIs(factory.handler, FakeAGI)
        self.assertEqual((factory.reactor, factory.environment_timeout), (memory, 10.0))


def free_port() -> int:
    """A port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class TwistdTests(TestCase):
    """``twistd -n txami-agi`` as a real process."""

    timeout = 40

    async def test_serves_the_example_handler(self) -> None:
        """The daemon runs examples/agi_fastagi.handler for a fake channel and stops on SIGTERM."""
        keep_checkout_clean(self)
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        logfile = os.path.join(directory, "twistd.log")
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                TWISTD,
                "-n",
                "--pidfile=",
                f"--logfile={logfile}",
                "txami-agi",
                "--port",
                f"tcp:{port}:interface=127.0.0.1",
                "--handler",
                "examples.agi_fastagi.handler",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

        def reap() -> None:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
            assert process.stderr is not None
            process.stderr.close()

        self.addCleanup(reap)
        channel = FakeAGI(
            arguments=["Alice"], digits="7#", database={("txami-example", "calls"): "4"}
        )
        deadline = reactor.seconds() + 30
        while True:  # until the daemon listens (or the deadline)
            try:
                await channel.connect(reactor, "127.0.0.1", port)
                break
            except ConnectionRefusedError:
                self.assertIsNone(process.poll(), "twistd exited before listening")
                self.assertLess(reactor.seconds(), deadline, "twistd did not listen in 30 s")
                await deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(channel.commands[0], "ANSWER")
        self.assertEqual(channel.variables, {"TXAMI_ENTERED": "7", "TXAMI_CALLS": "5"})
        self.assertEqual(channel.database, {("txami-example", "calls"): "5"})
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(timeout=30), -signal.SIGTERM)
        with open(logfile) as f:
            log = f.read()
        self.assertIn("Received SIGTERM, shutting down.", log)
        self.assertNotIn("Traceback", log)
