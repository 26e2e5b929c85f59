"""
txami without Twisted's optional ``tls`` extra: everything but TLS must work
when pyOpenSSL is missing, as on a fresh machine after ``pip install txami``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

_ROOT = Path(__file__).parent.parent

#: Runs in a child Python in which ``import OpenSSL`` fails.
_SCRIPT = """
import sys

class NoOpenSSL:
    def find_spec(self, name, path=None, target=None):
        if name == "OpenSSL" or name.startswith("OpenSSL."):
            raise ImportError("pyOpenSSL is not installed (simulated)")
        return None

sys.meta_path.insert(0, NoOpenSSL())

import txami, txami.testing, txami.tap, txami.daemon.demo, txami.daemon.web, txami.daemon.service
from twisted.internet.task import Clock
from txami.testing import FakeAsterisk, connected_pair

clock = Clock()
client, _, pump = connected_pair(FakeAsterisk(clock), clock)
d = client.ping()
pump.flush()
print(d.result["Ping"])
options = txami.tap.Options()
options.parseOptions(["--demo"])
txami.tap.makeService(options)
try:
    txami.tap.Options().parseOptions(["--host", "pbx", "--username", "u", "--tls"])
except Exception as error:
    print(type(error).__name__)
"""


class WithoutTLSTests(SynchronousTestCase):
    """The library, the fake server and the daemon's --demo need no pyOpenSSL."""

    def test_imports_and_demo_without_pyopenssl(self) -> None:
        """With pyOpenSSL unimportable, txami imports, talks to the fake, builds the demo."""
        result = subprocess.run(
            [sys.executable, "-c", _SCRIPT],
            cwd=_ROOT,
            env={"PATH": "/usr/bin:/bin", "TXAMI_SECRET": "x"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.stderr, "")
        self.assertEqual(result.stdout.split(), ["Pong", "UsageError"])
