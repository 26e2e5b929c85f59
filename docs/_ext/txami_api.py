"""
The API reference pages, written from the code at every build.

Each module of the ``txami`` tree gets ``api/MODULE.rst``: a package page
shows its docstring, a table of the public names its ``__init__``
re-exports (linked to where each is defined) and a table of its modules; a
module page is ``automodule`` with its members.  A module added to the tree
is documented without anyone editing ``docs/``.  zope.interface interfaces,
which autodoc does not know, are written out as classes with their methods.

It also resolves the public spelling of a re-exported name
(``txami.AMIProtocol`` links to ``txami.protocol.AMIProtocol``) and short
names in docstrings (`AMIFactory` links to ``txami.factory.AMIFactory``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from zope.interface.interface import InterfaceClass

ROOT_PACKAGE = "txami"


def module_names(root: str = ROOT_PACKAGE) -> list[str]:
    """Every public module under ``root``, the packages included, sorted."""
    package = importlib.import_module(root)
    names = [root]
    for info in pkgutil.walk_packages(package.__path__, f"{root}."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def home_of(package_name: str, name: str) -> str | None:
    """Where ``package_name.name`` is defined and documented, or None."""
    package = sys.modules.get(package_name)
    if package is None or not hasattr(package, "__path__") or not hasattr(package, name):
        return None
    obj = getattr(package, name)
    defined_in = getattr(obj, "__module__", None)
    candidates = [defined_in] if isinstance(defined_in, str) else []
    candidates += sorted(m for m in sys.modules if m.startswith(f"{package_name}."))
    for candidate in candidates:
        module = sys.modules.get(candidate)
        if (
            candidate != package_name
            and candidate.startswith(f"{package_name}.")
            and module is not None
            and not hasattr(module, "__path__")
            and getattr(module, name, None) is obj
            and (candidate == defined_in or name in getattr(module, "__all__", ()))
        ):
            return f"{candidate}.{name}"
    return None


def _summary(obj: Any) -> str:
    """The first paragraph of ``obj``'s docstring, on one line."""
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _table(rows: list[tuple[str, str]]) -> list[str]:
    lines = [".. list-table::", "   :widths: 1 3", ""]
    for link, summary in rows:
        lines += [f"   * - {link}", f"     - {summary}" if summary else "     -"]
    return [*lines, ""]


def _interfaces(module: ModuleType) -> list[InterfaceClass]:
    return [
        obj
        for name, obj in vars(module).items()
        if isinstance(obj, InterfaceClass)
        and obj.__module__ == module.__name__
        and not name.startswith("_")
    ]


def _indent(text: str, prefix: str) -> list[str]:
    return [f"{prefix}{line}" if line else "" for line in text.splitlines()]


def _interface_rst(module: ModuleType, interface: InterfaceClass) -> list[str]:
    bases = [b for b in interface.__bases__ if b.__name__ != "Interface"]
    lines = [f".. py:class:: {interface.__name__}", f"   :module: {module.__name__}", ""]
    lines += ["   A ``zope.interface`` interface."]
    if bases:
        lines[-1] += " Extends " + ", ".join(f"`{b.__module__}.{b.__name__}`" for b in bases) + "."
    lines += ["", *_indent(inspect.cleandoc(interface.__doc__ or ""), "   "), ""]
    for name, description in interface.namesAndDescriptions(all=False):
        if hasattr(description, "getSignatureString"):
            lines += [f"   .. py:method:: {name}{description.getSignatureString()}", ""]
        else:
            lines += [f"   .. py:attribute:: {name}", ""]
        lines += [*_indent(inspect.cleandoc(description.getDoc() or ""), "      "), ""]
    return lines


def page(name: str) -> str:
    """The reStructuredText of module ``name``'s page."""
    module = importlib.import_module(name)
    lines = [name, "=" * len(name), ""]
    if hasattr(module, "__path__"):
        lines += [f".. automodule:: {name}", ""]
        public = [n for n in getattr(module, "__all__", []) if not n.startswith("_")]
        rows = []
        for public_name in sorted(public, key=str.lower):
            home = home_of(name, public_name)
            link = f":py:obj:`{public_name} <{home}>`" if home else f"``{public_name}``"
            rows.append((link, _summary(getattr(module, public_name))))
        if rows:
            lines += [".. rubric:: Public names", ""]
            lines += [f"Import these from ``{name}``; each is documented in its own module.", ""]
            lines += _table(rows)
        children = [m for m in module_names(name) if m.count(".") == name.count(".") + 1]
        if children:
            lines += [".. rubric:: Modules", ""]
            rows = [
                (f":doc:`{child}`", _summary(importlib.import_module(child))) for child in children
            ]
            lines += _table(rows)
            lines += [".. toctree::", "   :hidden:", ""] + [f"   {c}" for c in children] + [""]
    else:
        interfaces = _interfaces(module)
        lines += [f".. automodule:: {name}", "   :members:", "   :show-inheritance:"]
        if interfaces:
            excluded = ", ".join(i.__name__ for i in interfaces)
            lines += [f"   :exclude-members: {excluded}", ""]
            for interface in interfaces:
                lines += _interface_rst(module, interface)
        lines += [""]
    return "\n".join(lines)


def write_pages(app: Any) -> None:
    """Write ``api/*.rst`` (only the files whose text changed, so rebuilds stay quick)."""
    out = Path(app.srcdir) / "api"
    out.mkdir(exist_ok=True)
    wanted = {f"{name}.rst": page(name) for name in module_names()}
    for stale in set(p.name for p in out.glob("*.rst")) - set(wanted):
        (out / stale).unlink()
    for filename, text in wanted.items():
        path = out / filename
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def _unique_txami_object(env: Any, target: str) -> str | None:
    """The one documented public ``txami...`` object whose name ends with ``.target``."""
    index = getattr(env, "_txami_by_last_name", None)
    objects = env.get_domain("py").objects
    if index is None or index[0] != len(objects):
        by_last: dict[str, list[str]] = {}
        for fullname in objects:
            if fullname.startswith(f"{ROOT_PACKAGE}.") and "._" not in fullname:
                by_last.setdefault(fullname.rpartition(".")[2], []).append(fullname)
        index = env._txami_by_last_name = (len(objects), by_last)
    found = [n for n in index[1].get(target.rpartition(".")[2], []) if n.endswith(f".{target}")]
    return found[0] if len(found) == 1 else None


def resolve_public_name(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """
    Resolve what Sphinx could not: ``txami.NAME`` (a re-export) to the
    object's documented home, and a short name such as `AMIFactory` or
    `AMIFactory.stop` in a docstring to the one txami object of that name.
    """
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target or target.startswith("_"):
        return None
    if target.startswith(f"{ROOT_PACKAGE}."):
        package, _, name = target.rpartition(".")
        home = home_of(package, name)
    else:
        home = _unique_txami_object(env, target)
    if home is None:
        return None
    return env.get_domain("py").resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], home, node, contnode
    )


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", write_pages)
    app.connect("missing-reference", resolve_public_name)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
