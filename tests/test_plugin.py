"""
Tests for the twistd plugin (twisted/plugins/txami_plugin.py), from the checkout.

Plugin discovery runs in a child Python whose working directory is the
repository root, exactly as ``twistd txami`` finds it there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGINS = os.path.join(ROOT, "twisted", "plugins")

DISCOVER = """
import json, sys
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
found = [p for p in getPlugins(IServiceMaker) if p.tapname == "txami"]
plugin = found[0]
print(json.dumps({
    "count": len(found),
    "name": plugin.name,
    "module": plugin.module,
    "description": plugin.description,
    "options": plugin.options.__module__ + "." + plugin.options.__name__,
    "makeService": plugin.makeService.__module__ + "." + plugin.makeService.__name__,
    "file": sys.modules["txami.tap"].__file__,
}))
"""

LAZY = """
import json, sys
import twisted.plugins.txami_plugin as plugin
heavy = sorted(
    name for name in sys.modules
    if name == "txami" or name.startswith("txami.") or name.startswith("twisted.web")
    or name == "twisted.internet.reactor"
)
print(json.dumps({"heavy": heavy, "file": plugin.__file__}))
"""


def run_python(code: str, cwd: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """Run ``code`` in a child Python and return the JSON it printed."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"child Python failed:\n{result.stderr}")
    parsed: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def keep_checkout_clean(case: SynchronousTestCase) -> None:
    """Remove the dropin.cache that plugin discovery writes, unless it was there before."""
    cache = os.path.join(PLUGINS, "dropin.cache")
    if not os.path.exists(cache):
        case.addCleanup(lambda: os.path.exists(cache) and os.remove(cache))


class PluginTests(SynchronousTestCase):
    """The plugin as twistd sees it from a checkout."""

    def setUp(self) -> None:
        keep_checkout_clean(self)

    def test_discovered_once(self) -> None:
        """getPlugins(IServiceMaker) finds exactly one txami, wired to txami.tap."""
        found = run_python(DISCOVER, ROOT)
        self.assertEqual(
            {k: v for k, v in found.items() if k not in ("description", "file")},
            {
                "count": 1,
                "name": "txami",
                "module": "txami.tap",
                "options": "txami.daemon.options.Options",
                "makeService": "txami.daemon.options.makeService",
            },
        )
        self.assertEqual(found["file"], os.path.join(ROOT, "txami", "tap.py"))
        self.assertTrue(str(found["description"]).startswith("An Asterisk Manager Interface"))

    def test_import_is_lazy(self) -> None:
        """Importing the plugin module imports no txami module, no twisted.web, no reactor."""
        found = run_python(LAZY, ROOT)
        self.assertEqual(found["heavy"], [])
        self.assertEqual(found["file"], os.path.join(PLUGINS, "txami_plugin.py"))

    def test_no_init_files(self) -> None:
        """twisted/ and twisted/plugins/ hold no __init__.py (they would shadow Twisted)."""
        self.assertFalse(os.path.exists(os.path.join(ROOT, "twisted", "__init__.py")))
        self.assertFalse(os.path.exists(os.path.join(PLUGINS, "__init__.py")))
        self.assertEqual(
            sorted(n for n in os.listdir(PLUGINS) if n.endswith(".py")),
            ["txami_agi_plugin.py", "txami_plugin.py"],
        )
