"""
The documentation's code runs.

Every page of ``docs/`` follows one rule: a Python example is either a
doctest (a ``>>>`` block, run here) or a program in ``examples/`` shown with
``literalinclude`` and run by a test in ``tests/``.  A literal block must
name its language (``.. code-block:: sh``, ``ini``, ``json``, ``text``...),
so that no Python hides in a bare ``::`` block.  This module checks the rule
on every page (no Sphinx needed) and runs every doctest.
"""

from __future__ import annotations

import doctest
import re
from dataclasses import dataclass
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
TESTS = ROOT / "tests"

#: The doctests compare with these flags: ``...`` stands for any text (an
#: ActionID), and line breaks in long outputs do not matter.
DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: Languages that are Python: such a block must be a doctest or an example.
PYTHON = {"python", "python3", "py", "py3", "pycon", "ipython", "ipython3", "default"}

_DIRECTIVE = re.compile(r"^\s*\.\.\s+([\w:-]+)::\s*(.*)$")
_OPTION = re.compile(r"^\s+:([\w-]+):\s*(.*)$")
_CODE_DIRECTIVES = {"code-block", "code", "sourcecode"}


def pages() -> list[Path]:
    """Every hand-written page: ``docs/**/*.rst``, less the build and the generated API."""
    skipped = {DOCS / "_build", DOCS / "api"}
    return sorted(
        page
        for page in DOCS.rglob("*.rst")
        if not any(parent in skipped for parent in page.parents)
    )


def _run_by_tests(example: str) -> bool:
    """Whether a test in ``tests/`` loads or runs ``examples/<example>.py``."""
    spellings = (f'load_example("{example}")', f"load_example('{example}')")
    spellings += (f"examples/{example}.py",)
    for module in TESTS.glob("*.py"):
        if module.name == Path(__file__).name:
            continue
        text = module.read_text(encoding="utf-8")
        if any(spelling in text for spelling in spellings):
            return True
    return False


@dataclass
class Problem:
    """One breach of the rule: where, and what."""

    line: int
    what: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.what}"


def _options(lines: list[str], start: int) -> dict[str, str]:
    """The ``:name: value`` options of the directive on line ``start``."""
    options = {}
    for line in lines[start + 1 :]:
        match = _OPTION.match(line)
        if match is None:
            break
        options[match.group(1)] = match.group(2).strip()
    return options


def _check_include(source: Path, target: str, options: dict[str, str]) -> list[str]:
    """What is wrong with ``.. literalinclude:: target`` in page ``source``."""
    path = (source.parent / target).resolve()
    language = options.get("language", "").lower()
    if path.suffix != ".py" and language not in PYTHON:
        return []
    if path.parent != EXAMPLES.resolve():
        return [f"{target} is Python outside examples/: move it there and run it in a test"]
    if not path.exists():
        return [f"{target} does not exist"]
    problems = []
    if not _run_by_tests(path.stem):
        problems.append(
            f"{target} is run by no test (load_example({path.stem!r}) in a tests/ module)"
        )
    text = path.read_text(encoding="utf-8")
    pyobject = options.get("pyobject")
    if pyobject and not re.search(
        rf"^\s*(async def|def|class) {re.escape(pyobject)}\b", text, re.M
    ):
        problems.append(f"{target} has no {pyobject!r} to show")
    for option in ("start-after", "end-before", "start-at", "end-at"):
        marker = options.get(option)
        if marker and marker not in text:
            problems.append(f"{target} has no line with {marker!r} (:{option}:)")
    return problems


def check_page(source: Path, text: str) -> list[Problem]:
    """Every breach of the rule in ``text``, the content of page ``source``."""
    problems = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        directive = _DIRECTIVE.match(line)
        if directive is not None:
            name, argument = directive.group(1), directive.group(2).strip()
            if name in _CODE_DIRECTIVES:
                if not argument:
                    problems.append(Problem(number + 1, f".. {name}:: names no language"))
                elif argument.lower() in PYTHON:
                    problems.append(
                        Problem(
                            number + 1,
                            "a Python code block: make it a doctest (>>>) or a program in "
                            "examples/ shown with literalinclude and run by a test",
                        )
                    )
            elif name == "literalinclude":
                for what in _check_include(source, argument, _options(lines, number)):
                    problems.append(Problem(number + 1, what))
            continue
        stripped = line.rstrip()
        if stripped.endswith("::") and not stripped.lstrip().startswith(".."):
            problems.append(
                Problem(number + 1, "a '::' literal block: use '.. code-block:: LANGUAGE'")
            )
    return problems


class CodeBlockRuleTests(SynchronousTestCase):
    """Every Python example in docs/ is a doctest or a tested example program."""

    def test_pages_follow_the_rule(self) -> None:
        """No page has a Python block that is neither, nor a literal block without language."""
        found = pages()
        self.assertIn(DOCS / "index.rst", found)
        report = []
        for page in found:
            for problem in check_page(page, page.read_text(encoding="utf-8")):
                report.append(f"{page.relative_to(ROOT)}: {problem}")
        self.assertEqual(report, [])

    def test_flags_a_python_block(self) -> None:
        """A ``.. code-block:: python`` is a breach, whatever its case."""
        text = "Text.\n\n.. code-block:: Python\n\n    print('hello')\n"
        self.assertEqual([p.line for p in check_page(DOCS / "x.rst", text)], [3])

    def test_flags_a_block_without_language(self) -> None:
        """A bare ``::`` literal block and a code block without language are breaches."""
        text = "Run this::\n\n    print('hello')\n\n.. code::\n\n    x = 1\n"
        self.assertEqual([p.line for p in check_page(DOCS / "x.rst", text)], [1, 5])

    def test_allows_other_languages_and_doctests(self) -> None:
        """Shell, INI and text blocks, directives and doctests are fine."""
        text = (
            ".. code-block:: sh\n\n    twistd -n txami\n\n"
            ".. code-block:: ini\n\n    [pbx:east]\n\n"
            ".. note::\n\n   A note.\n\n>>> 1 + 1\n2\n"
        )
        self.assertEqual(check_page(DOCS / "x.rst", text), [])

    def test_flags_python_included_from_elsewhere(self) -> None:
        """A literalinclude of Python outside examples/ is a breach."""
        text = ".. literalinclude:: ../txami/message.py\n   :language: python\n"
        (problem,) = check_page(DOCS / "x.rst", text)
        self.assertIn("outside examples/", problem.what)

    def test_flags_an_untested_example(self) -> None:
        """A literalinclude of an example no test runs, or of a missing part, is a breach."""
        self.assertFalse(_run_by_tests("no_such_example"))
        self.assertTrue(_run_by_tests("tour"))
        text = ".. literalinclude:: ../examples/tour.py\n   :pyobject: no_such_function\n"
        (problem,) = check_page(DOCS / "x.rst", text)
        self.assertIn("no 'no_such_function'", problem.what)


class DoctestTests(SynchronousTestCase):
    """The ``>>>`` examples of docs/ give the output they show."""

    def run_page(self, page: Path) -> tuple[int, str]:
        """Run ``page``'s doctests in fresh globals: (examples run, failure report)."""
        parser = doctest.DocTestParser()
        text = page.read_text(encoding="utf-8")
        test = parser.get_doctest(text, {"__name__": page.stem}, page.name, str(page), 0)
        runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
        report: list[str] = []
        try:
            runner.run(test, out=report.append, clear_globs=True)
        finally:
            test.globs.clear()
        return len(test.examples), "".join(report)

    def test_doctests_pass(self) -> None:
        """Every doctest of every page passes."""
        ran = {}
        failures = []
        for page in pages():
            count, report = self.run_page(page)
            ran[page.name] = count
            if report:
                failures.append(report)
        self.assertEqual(failures, [])
        # The guides that show the API by example do have doctests.
        for name in ("using.rst", "messages.rst", "connecting.rst"):
            self.assertGreater(ran.get(name, 0), 0, name)

    def test_a_wrong_doctest_fails(self) -> None:
        """The runner reports a doctest whose output differs (so the test above can fail)."""
        page = Path(self.mktemp() + ".rst")
        page.write_text(">>> 1 + 1\n3\n", encoding="utf-8")
        count, report = self.run_page(page)
        self.assertEqual(count, 1)
        self.assertIn("Expected:\n    3\nGot:\n    2", report)
