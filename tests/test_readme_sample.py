"""
The taste of the API in README.rst: the README shows examples/taste.py
verbatim, and that program runs against txami's fake Asterisk on 127.0.0.1
and prints what a reader would expect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from tests.test_integration import _FakeServerCase, load_example, reactor

ROOT = Path(__file__).parent.parent
TASTE = ROOT / "examples" / "taste.py"
MARKER = ".. txami-taste"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """Each ``.. code-block:: python`` of an rST text: (line number, dedented code)."""
    lines = text.splitlines()
    blocks = []
    for number, line in enumerate(lines):
        if line.strip() != ".. code-block:: python":
            continue
        body = []
        for following in lines[number + 1 :]:
            if following and not following.startswith("   "):
                break
            body.append(following)
        code = "\n".join(body).strip("\n")
        indent = min(len(x) - len(x.lstrip()) for x in code.splitlines() if x.strip())
        blocks.append((number + 1, "\n".join(x[indent:] for x in code.splitlines())))
    return blocks


class ReadmeShowsTasteTests(SynchronousTestCase):
    """README.rst's only Python code is examples/taste.py, word for word."""

    def test_readme_block_is_the_example(self) -> None:
        """The block after the taste marker equals examples/taste.py."""
        readme = (ROOT / "README.rst").read_text(encoding="utf-8")
        self.assertTrue(MARKER in readme.splitlines(), f"no {MARKER!r} line in README.rst")
        after_marker = readme[readme.index(MARKER) :]
        (_, code), *_ = python_blocks(after_marker)
        self.assertEqual(code + "\n", TASTE.read_text(encoding="utf-8"))

    def test_no_other_python_in_readme(self) -> None:
        """README.rst has one Python block, so every line of its code runs in a test."""
        readme = (ROOT / "README.rst").read_text(encoding="utf-8")
        self.assertEqual(len(python_blocks(readme)), 1)

    def test_readme_is_short(self) -> None:
        """README.rst stays a front door: under 200 lines."""
        readme = (ROOT / "README.rst").read_text(encoding="utf-8")
        self.assertLess(len(readme.splitlines()), 200)


class TasteRunsTests(_FakeServerCase):
    """examples/taste.py against the fake PBX."""

    async def test_taste(self) -> None:
        """It logs in, prints the uptime, a Hangup and the channels, and logs off."""
        self.fake.add_user("dashboard", "s3cret")
        self.fake.pbx.create_channel(resource="100", state=6)

        def uptime(args: list[str]) -> tuple[bool, list[str]]:
            self.fake.emit_event("Hangup", Channel="PJSIP/200-00000007", Cause="16")
            return True, ["System uptime: 3 hours, 5 minutes", "Last reload: 2 minutes"]

        self.fake.pbx.cli["core show uptime"] = uptime
        taste = load_example("taste")
        printed: list[str] = []

        def fake_print(*args: Any) -> None:
            printed.append(" ".join(str(a) for a in args))

        taste.print = fake_print  # the module's globals shadow the builtin
        done: Deferred[None] = Deferred.fromCoroutine(
            taste.main(reactor, "127.0.0.1", self.port_number)
        )
        await done
        self.assertEqual(
            printed,
            [
                "System uptime: 3 hours, 5 minutes",
                "hangup: PJSIP/200-00000007",
                "PJSIP/100-00000000 Up",
            ],
        )
        received = [action.name for _, action in self.fake.actions_received]
        self.assertEqual(received, ["Login", "Command", "Status", "Logoff"])
