"""
Tests for packaging: the wheel carries the plugin, every txami package and
py.typed, and nothing that would break Twisted; installed, the plugin is found,
from a wheel and from an editable install (``pip install -e .``).

The wheel is built once per run, from a copy of the checkout in a temp dir
(so no build/ or egg-info lands in the checkout), with ``python -m build
--wheel --no-isolation``; skipped only when build, setuptools or wheel is missing.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

from twisted.trial.unittest import SynchronousTestCase

from tests.test_plugin import DISCOVER, ROOT, run_python
from txami.daemon.board import BOARD_FILES

_MISSING = [m for m in ("build", "setuptools", "wheel") if importlib.util.find_spec(m) is None]
SKIP = f"cannot build a wheel without {', '.join(_MISSING)}" if _MISSING else None

_built: dict[str, str] = {}

# The board's files as the installed daemon reads them.
BOARD = """
import json, sys
from txami.daemon.board import BoardFiles
board = BoardFiles()
script = board.children[b"board.js"].body
print(json.dumps({"file": sys.modules["txami.daemon.board"].__file__, "script": len(script)}))
"""


def _source_packages() -> set[str]:
    """Every .py file of the txami packages in the checkout, as wheel paths."""
    found = set()
    for directory, dirs, files in os.walk(os.path.join(ROOT, "txami")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        if "__init__.py" not in files:
            continue
        relative = os.path.relpath(directory, ROOT).replace(os.sep, "/")
        found.update(f"{relative}/{name}" for name in files if name.endswith(".py"))
    return found


def _build(kind: str, source: str, dist: str) -> None:
    """``python -m build --KIND`` of ``source`` into ``dist``, as pip would (no isolation)."""
    result = subprocess.run(
        [sys.executable, "-m", "build", f"--{kind}", "--no-isolation", "--outdir", dist, source],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"the {kind} build failed:\n{result.stdout}\n{result.stderr}")


def build_wheel() -> str:
    """Build the wheel (once) from a copy of the checkout; its path."""
    if "wheel" in _built:
        return _built["wheel"]
    work = tempfile.mkdtemp(prefix="txami-wheel-")
    atexit.register(shutil.rmtree, work, True)
    source = os.path.join(work, "src")
    os.mkdir(source)
    for name in os.listdir(ROOT):
        path = os.path.join(ROOT, name)
        if os.path.isfile(path):
            shutil.copy2(path, source)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "dropin.cache")
    for name in ("txami", "twisted"):
        shutil.copytree(os.path.join(ROOT, name), os.path.join(source, name), ignore=ignore)
    # The test modules (not their data): were they ever packaged, the wheel would show it.
    os.mkdir(os.path.join(source, "tests"))
    for name in os.listdir(os.path.join(ROOT, "tests")):
        if name.endswith(".py"):
            shutil.copy2(os.path.join(ROOT, "tests", name), os.path.join(source, "tests"))
    # A plugin cache left behind by twistd must never be packaged.
    with open(os.path.join(source, "twisted", "plugins", "dropin.cache"), "wb") as f:
        f.write(b"stale")
    dist = os.path.join(work, "dist")
    _build("wheel", source, dist)
    [wheel] = [n for n in os.listdir(dist) if n.endswith(".whl")]
    _built["work"] = work
    _built["wheel"] = os.path.join(dist, wheel)
    return _built["wheel"]


class WheelTests(SynchronousTestCase):
    """What the wheel holds."""

    skip = SKIP

    def setUp(self) -> None:
        with zipfile.ZipFile(build_wheel()) as wheel:
            self.names = set(wheel.namelist())

    def test_plugin_included(self) -> None:
        """The two plugin files are in the wheel, the only files under twisted/."""
        self.assertEqual(
            {n for n in self.names if n.startswith("twisted/")},
            {"twisted/plugins/txami_plugin.py", "twisted/plugins/txami_agi_plugin.py"},
        )

    def test_no_init_or_cache(self) -> None:
        """No __init__.py and no dropin.cache under twisted/ (even with a cache in the source)."""
        self.assertNotIn("twisted/__init__.py", self.names)
        self.assertNotIn("twisted/plugins/__init__.py", self.names)
        self.assertFalse([n for n in self.names if n.endswith("dropin.cache")])

    def test_no_tests(self) -> None:
        """The tests package is not installed."""
        self.assertFalse([n for n in self.names if n.startswith("tests/")])

    def test_every_txami_package(self) -> None:
        """Every module of txami and its subpackages (txami.testing, ...) is in the wheel."""
        shipped = {n for n in self.names if n.startswith("txami/") and n.endswith(".py")}
        self.assertEqual(shipped, _source_packages())

    def test_py_typed(self) -> None:
        """txami/py.typed ships, so type checkers use txami's hints."""
        self.assertIn("txami/py.typed", self.names)

    def test_board_files(self) -> None:
        """The board's page, style sheet and script ship as package data, and nothing else."""
        self.assertEqual(
            {n for n in self.names if n.startswith("txami/daemon/static/")},
            {f"txami/daemon/static/{name}" for name in BOARD_FILES},
        )


class InstalledWheelTests(SynchronousTestCase):
    """The plugin found from an installed wheel, away from the checkout."""

    skip = SKIP

    def test_discovered_when_installed(self) -> None:
        """Installed with pip into a directory, the plugin is found once and loads from there."""
        wheel = build_wheel()
        target = os.path.join(_built["work"], "site")
        if not os.path.isdir(target):
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-deps",
                    "--no-index",
                    "--target",
                    target,
                    wheel,
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if result.returncode != 0:
                raise AssertionError(f"pip install failed:\n{result.stderr}")
        elsewhere = os.path.join(_built["work"], "elsewhere")
        os.makedirs(elsewhere, exist_ok=True)
        env = dict(os.environ, PYTHONPATH=target)
        found = run_python(DISCOVER, elsewhere, env)
        self.assertEqual((found["count"], found["name"]), (1, "txami"))
        self.assertEqual(found["file"], os.path.join(target, "txami", "tap.py"))
        board = run_python(BOARD, elsewhere, env)
        with open(os.path.join(ROOT, "txami", "daemon", "static", "board.js"), "rb") as f:
            script = f.read()
        self.assertEqual(
            board,
            {"file": os.path.join(target, "txami", "daemon", "board.py"), "script": len(script)},
        )


def build_editable() -> tuple[str, str]:
    """
    Build the wheel that ``pip install -e`` would install, from a copy of the
    checkout (setuptools' PEP 660 hook, as pip calls it): (the copy, the wheel).
    """
    work = tempfile.mkdtemp(prefix="txami-editable-")
    atexit.register(shutil.rmtree, work, True)
    source = os.path.join(work, "src")
    os.mkdir(source)
    for name in os.listdir(ROOT):
        if os.path.isfile(os.path.join(ROOT, name)):
            shutil.copy2(os.path.join(ROOT, name), source)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "dropin.cache")
    for name in ("txami", "twisted"):
        shutil.copytree(os.path.join(ROOT, name), os.path.join(source, name), ignore=ignore)
    dist = os.path.join(work, "dist")
    hook = (
        "import sys; from setuptools import build_meta; "
        "print(build_meta.build_editable(sys.argv[1]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", hook, dist],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"the editable build failed:\n{result.stdout}\n{result.stderr}")
    return source, os.path.join(dist, result.stdout.strip().splitlines()[-1])


class EditableInstallTests(SynchronousTestCase):
    """``pip install -e .`` (the README's test command) keeps ``twistd txami`` working."""

    skip = SKIP

    def test_checkout_on_sys_path(self) -> None:
        """The editable wheel adds the checkout to sys.path, where Twisted looks for plugins."""
        source, wheel = build_editable()
        with zipfile.ZipFile(wheel) as archive:
            # An import hook (setuptools' "finder") instead would hide twisted/plugins.
            self.assertFalse([n for n in archive.namelist() if n.endswith("_finder.py")])
            [pth] = [n for n in archive.namelist() if n.endswith(".pth")]
            paths = archive.read(pth).decode("utf-8").split()
        self.assertEqual([os.path.realpath(p) for p in paths], [os.path.realpath(source)])
        elsewhere = os.path.join(os.path.dirname(source), "elsewhere")
        os.mkdir(elsewhere)
        found = run_python(DISCOVER, elsewhere, dict(os.environ, PYTHONPATH=paths[0]))
        self.assertEqual((found["count"], found["name"]), (1, "txami"))
        self.assertEqual(
            os.path.realpath(str(found["file"])),
            os.path.realpath(os.path.join(source, "txami", "tap.py")),
        )


def _project_files(top: str) -> set[str]:
    """The files under ``ROOT/top`` a checkout holds, less build output and caches."""
    skipped = {"__pycache__", "_build", "api", "results", "_trial_temp"}
    found = set()
    for directory, dirs, files in os.walk(os.path.join(ROOT, top)):
        dirs[:] = [d for d in dirs if d not in skipped and not d.startswith(".")]
        relative = os.path.relpath(directory, ROOT).replace(os.sep, "/")
        found.update(
            f"{relative}/{name}"
            for name in files
            if not name.endswith((".pyc", ".pyo")) and name != "dropin.cache"
        )
    return found


class SdistTests(SynchronousTestCase):
    """The source distribution is the whole project: tests, captures, examples, docs."""

    skip = SKIP

    def test_sdist_contents(self) -> None:
        """Every file of tests/, examples/, docs/ and bench/ is in the sdist, and no cache."""
        work = tempfile.mkdtemp(prefix="txami-sdist-")
        self.addCleanup(shutil.rmtree, work, True)
        source = os.path.join(work, "src")
        ignore = shutil.ignore_patterns(
            ".*", "__pycache__", "*.pyc", "_build", "_trial_temp*", "build", "dist", "*.egg-info"
        )
        shutil.copytree(ROOT, source, ignore=ignore)
        dist = os.path.join(work, "dist")
        _build("sdist", source, dist)
        [name] = os.listdir(dist)
        with tarfile.open(os.path.join(dist, name)) as archive:
            shipped = {m.name.split("/", 1)[1] for m in archive.getmembers() if m.isfile()}
        for top in ("tests", "examples", "docs", "bench"):
            wanted = _project_files(top)
            self.assertTrue(wanted, top)
            self.assertEqual({n for n in shipped if n.startswith(f"{top}/")}, wanted, top)
        self.assertFalse([n for n in shipped if n.endswith((".pyc", "dropin.cache"))])
        self.assertIn("twisted/plugins/txami_plugin.py", shipped)
        self.assertIn("txami/daemon/static/board.js", shipped)
        self.assertIn("LICENSE", shipped)
