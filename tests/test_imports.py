"""
The shape of the code base: no import cycles in `txami` or `bench`, the library
never imports the daemon, and every module imports on its own.

The graph is read from the source (every ``import``, at any depth, including
the ones under ``if TYPE_CHECKING:`` and inside functions: a lazy import is
still a dependency), so a cycle that happens not to break at run time is
caught too.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping

from twisted.trial.unittest import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("txami", "bench")
#: Modules of the txami package that are applications, not the library.
APPLICATIONS = ("txami.daemon", "txami.tap")


def module_files(package: str) -> dict[str, str]:
    """Every module of ``package`` (dotted name -> file path), packages as their ``__init__``."""
    found: dict[str, str] = {}
    top = os.path.join(ROOT, package)
    for directory, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        if "__init__.py" not in files:
            dirs[:] = []
            continue
        parts = os.path.relpath(directory, ROOT).split(os.sep)
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            stem = name[:-3]
            dotted = ".".join(parts if stem == "__init__" else [*parts, stem])
            found[dotted] = os.path.join(directory, name)
    return found


def imported_names(path: str, module: str, modules: Mapping[str, str]) -> set[str]:
    """
    The dotted names ``path`` imports, with relative imports resolved.  For
    ``from X import Y`` that is ``X.Y`` when that is a module, else ``X``;
    the parent packages Python loads on the way are not counted, as a
    package's ``__init__`` importing its own submodules is no cycle.
    """
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    is_package = path.endswith("__init__.py")
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join([*parts[:keep], *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                names.add(full if full in modules else base)
    return names


def import_graph(modules: Mapping[str, str]) -> dict[str, set[str]]:
    """Module -> the modules of ``modules`` it imports (a name resolves to the longest module)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for name in imported_names(path, module, modules):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


ALONE = """
import importlib, json, sys
failed = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m.split(".")[0] in ("txami", "bench")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as error:
        failed[name] = f"{type(error).__name__}: {error}"
print(json.dumps(failed))
"""


class ImportGraphTests(SynchronousTestCase):
    """The import graph of txami and bench, read from their source."""

    def setUp(self) -> None:
        self.modules: dict[str, str] = {}
        for package in PACKAGES:
            self.modules.update(module_files(package))
        self.graph = import_graph(self.modules)

    def test_graph_is_read(self) -> None:
        """The reader finds the modules and a known edge of each kind (top level and lazy)."""
        self.assertIn("txami.daemon.options", self.modules)
        self.assertIn("txami.protocol", self.graph["txami.factory"])
        self.assertIn("txami.daemon.options", self.graph["txami.tap"])
        self.assertIn("bench.model", self.graph["bench.report"])

    def test_no_cycles(self) -> None:
        """No module of txami or bench reaches itself through its imports."""
        self.assertEqual(cycles(self.graph), [])

    def test_cycle_finder(self) -> None:
        """The cycle finder reports a cycle, and nothing for a diamond."""
        self.assertEqual(
            cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}), [["a", "b", "c"]]
        )
        self.assertEqual(cycles({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}), [])

    def test_library_never_imports_the_daemon(self) -> None:
        """No library module imports txami.daemon (only the daemon itself and txami.tap do)."""

        def is_application(name: str) -> bool:
            return any(name == a or name.startswith(a + ".") for a in APPLICATIONS)

        offenders = sorted(
            f"{module} -> {target}"
            for module, targets in self.graph.items()
            if module.startswith("txami") and not is_application(module)
            for target in targets
            if target.startswith("txami.daemon")
        )
        self.assertEqual(offenders, [])

    def test_each_module_imports_alone(self) -> None:
        """Each module imports in an interpreter where no other txami or bench module is loaded."""
        result = subprocess.run(
            # A __main__ module runs its program when imported; it is no library module.
            [
                sys.executable,
                "-c",
                ALONE,
                json.dumps(sorted(m for m in self.modules if not m.endswith(".__main__"))),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        failed = json.loads(result.stdout)
        # The optional clients of the benchmark need their own libraries; nothing else may fail.
        failed.pop("bench.clients.panoramisk_client", None)
        self.assertEqual(failed, {})
