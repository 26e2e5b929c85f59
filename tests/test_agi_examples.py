"""
examples/agi_fastagi.py and examples/agi_async.py, the AGI guide's sources:
each one's --demo run over real sockets on 127.0.0.1 (txami's fake channel
and fake Asterisk), and the handler they quote.  (The FastAGI handler also runs
under ``twistd txami-agi`` in tests/test_agi_plugin.py, and the AsyncAGI one
against the real Asterisk in tests/test_agi_realpbx.py.)
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.test_integration import load_example

reactor: Any = _reactor
ROOT = Path(__file__).parent.parent


class ExampleTests(TestCase):
    """The two examples' demos print what docs/agi.rst shows."""

    timeout = 20

    async def test_fastagi_demo(self) -> None:
        """The FastAGI example answers, greets, reads 42 and counts the call."""
        example = load_example("agi_fastagi")
        lines: list[str] = []
        await example.demo(reactor, say=lines.append)
        self.assertEqual(
            lines,
            [
                "> ANSWER",
                '> VERBOSE "txami example: Alice calls from 100 on PJSIP/100-00000001" 1',
                '> STREAM FILE hello-world ""',
                "> GET DATA enter-number 3000 4",
                "> SET VARIABLE TXAMI_ENTERED 42",
                "> DATABASE GET txami-example calls",
                "> DATABASE PUT txami-example calls 1",
                "> SET VARIABLE TXAMI_CALLS 1",
                "TXAMI_ENTERED=42",
                "TXAMI_CALLS=1",
            ],
        )

    async def test_async_demo(self) -> None:
        """The AsyncAGI example answers, reads the 5 pressed, and ends with ASYNCAGI BREAK."""
        example = load_example("agi_async")
        lines: list[str] = []
        await example.demo(reactor, say=lines.append)
        self.assertEqual(
            lines,
            [
                "> ANSWER",
                "> SET VARIABLE TXAMI_HANDLED_BY examples/agi_async.py",
                "> WAIT FOR DIGIT 5000",
                "> SET VARIABLE TXAMI_PRESSED 5",
                '> VERBOSE "txami example: PJSIP/100-00000001 pressed 5" 1',
                "> ASYNCAGI BREAK",
                "TXAMI_PRESSED=5",
            ],
        )


class GuideTests(SynchronousTestCase):
    """docs/agi.rst: its doctests run, and its Python is otherwise the tested examples."""

    def test_doctests(self) -> None:
        """Every >>> example of the AGI guide gives the output it shows."""
        text = (ROOT / "docs" / "agi.rst").read_text(encoding="utf-8")
        test = doctest.DocTestParser().get_doctest(text, {}, "agi.rst", "docs/agi.rst", 0)
        self.assertGreater(len(test.examples), 5)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        output: list[str] = []
        runner.run(test, out=output.append)
        self.assertEqual(runner.failures, 0, "".join(output))

    def test_python_only_from_examples(self) -> None:
        """The guide shows Python only as doctests and as the two examples these tests run."""
        text = (ROOT / "docs" / "agi.rst").read_text(encoding="utf-8")
        self.assertEqual(
            re.findall(r"\.\. literalinclude:: (\S+)", text),
            ["../examples/agi_fastagi.py", "../examples/agi_async.py"],
        )
        languages = set(re.findall(r"\.\. code-block:: (\S+)", text))
        self.assertEqual(languages, {"ini", "sh"})
        bare = [
            line for line in text.splitlines() if line.rstrip().endswith("::") and ".." not in line
        ]
        self.assertEqual(bare, [])
