"""
The AGI wire format without a connection: reply parsing (`txami.agi.results`),
argument quoting (`txami.agi.commands`) against Asterisk's own word splitting
(`txami.testing.agi.parse_args`), and the environment (`txami.agi.environment`),
read from the recorded captures of tests/data/agi-*.
"""

from __future__ import annotations

import doctest
import importlib
import re

from hypothesis import given
from hypothesis import strategies as st
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from tests.test_replay import LogCapture
from txami.agi import AGIEnvironment, AGIError, AGIHangup, AGIResult, command_line, quote
from txami.agi.results import outcome, parse_result, reply_code
from txami.testing.agi import parse_args

DATA = FilePath(__file__).sibling("data")
MODULES = [
    "txami.agi.asyncagi",
    "txami.agi.commands",
    "txami.agi.environment",
    "txami.agi.errors",
    "txami.agi.fastagi",
    "txami.agi.handler",
    "txami.agi.results",
    "txami.agi.tap",
    "txami.testing.agi",
]


def capture_lines(name: str) -> list[str]:
    """The lines of a capture (LF-split, the last empty piece dropped)."""
    text = DATA.child(name).getContent().decode("utf-8")
    lines = text.split("\n")
    assert lines.pop() == ""
    return lines


class ResultParsingTests(SynchronousTestCase):
    """``200 result=...`` lines, including every one of the recorded captures."""

    def test_recorded_results(self) -> None:
        """Every 200 reply Asterisk sent in agi-fastagi.raw parses to the expected parts."""
        env_end = capture_lines("agi-fastagi.raw").index("")
        replies = [
            line
            for line in capture_lines("agi-fastagi.raw")[env_end + 1 :]
            if line.startswith("200 ")
        ]
        parsed = [(r.result, r.data, dict(r.fields)) for r in map(parse_result, replies)]
        self.assertEqual(
            parsed,
            [
                ("0", None, {}),  # ANSWER
                ("6", None, {}),  # CHANNEL STATUS
                ("1", "hello", {}),  # GET VARIABLE TXAMI_GLOBAL
                ("0", None, {}),  # GET VARIABLE TXAMI_UNSET
                ("1", None, {}),  # SET VARIABLE
                ("1", "hello world", {}),
                ("1", None, {}),
                ("1", 'say "hi" (a) b\\c) endpos=1', {}),  # a value that looks like fields
                ("1", "hello world/900", {}),  # GET FULL VARIABLE
                ("1", "agirec2224", {}),  # GET VARIABLE CALLERID(num)
                ("-1", None, {"endpos": "0"}),  # STREAM FILE of a missing file
                ("-1", None, {"endpos": "800"}),
                ("0", None, {}),  # WAIT FOR DIGIT: timeout
                ("-1", None, {}),  # GET DATA of a missing file
                ("0", None, {}),  # SAY DIGITS
                ("-1", None, {}),  # SAY NUMBER
                ("1", None, {}),  # DATABASE PUT
                ("1", "some value", {}),
                ("1", None, {}),
                ("0", None, {}),
                ("1", None, {}),  # DATABASE DEL of a missing key: 1 all the same
                ("0", None, {}),  # EXEC NoOp
                ("-2", None, {}),  # EXEC of no such application
                ("0", None, {}),
                ("0", None, {}),
                ("0", None, {}),
                ("1", None, {}),  # VERBOSE
                ("0", None, {}),  # NOOP
            ],
        )

    def test_data_with_parentheses_and_fields(self) -> None:
        """Data runs to the ) before the trailing fields, whatever it holds."""
        cases = {
            "200 result=1 (x) endpos=5": ("1", "x", {"endpos": "5"}),
            "200 result=1 (a) b (c)": ("1", "a) b (c", {}),
            "200 result=1 (a endpos=1)": ("1", "a endpos=1", {}),
            "200 result=1 (a) endpos=1)": ("1", "a) endpos=1", {}),
            "200 result=1 ()": ("1", "", {}),
            "200 result=1 (unterminated": ("1", "unterminated", {}),
            "200 result=1 (unterminated k=v": ("1", "unterminated k=v", {}),
            "200 result= (timeout)": ("", "timeout", {}),
            "200 result=0012 (timeout)": ("0012", "timeout", {}),
            "200 result=49 (dtmf) endpos=1600": ("49", "dtmf", {"endpos": "1600"}),
            "200 result=0 a=1 b=2": ("0", None, {"a": "1", "b": "2"}),
            "200 result=0 stray text": ("0", "stray text", {}),
            "200 result=": ("", None, {}),
            "200": ("", None, {}),
            "200 no result here": ("", "no result here", {}),
        }
        for line, expected in cases.items():
            r = parse_result(line)
            self.assertEqual((r.result, r.data, dict(r.fields)), expected, line)
            self.assertEqual(r.line, line)

    def test_long_data_parses_in_linear_time(self) -> None:
        """A megabyte of ') k=' pieces parses at once (no quadratic search for the close)."""
        value = "(a" + ") k=" * 250_000 + ") Z"
        r = parse_result("200 result=1 " + value)
        self.assertEqual(r.data, value[1:])

    def test_result_properties(self) -> None:
        """value, failed, digit, endpos and timed_out read the result as documented."""
        r = parse_result("200 result=49 endpos=1600")
        self.assertEqual(
            (r.value, r.failed, r.digit, r.endpos, r.timed_out), (49, False, "1", 1600, False)
        )
        r = parse_result("200 result=-1 endpos=0")
        self.assertEqual((r.value, r.failed, r.digit, r.endpos), (-1, True, None, 0))
        r = parse_result("200 result= (timeout)")
        self.assertEqual((r.value, r.failed, r.digit, r.timed_out), (None, False, None, True))
        self.assertEqual(parse_result("200 result=35").digit, "#")
        self.assertEqual(parse_result("200 result=42").digit, "*")
        self.assertIsNone(parse_result("200 result=200").digit)
        self.assertIsNone(parse_result("200 result=1").digit)  # not a DTMF character
        self.assertIsNone(parse_result("200 result=0 endpos=x").endpos)
        self.assertIsNone(parse_result("200 result=١٢").value)  # non-ASCII digits

    def test_equality_and_repr(self) -> None:
        """Results compare by result, data and fields; the repr shows them."""
        self.assertEqual(parse_result("200 result=1 (x)"), AGIResult("1", "x"))
        self.assertNotEqual(parse_result("200 result=1 (x)"), AGIResult("1", "y"))
        self.assertEqual(
            repr(parse_result("200 result=-1 (x) endpos=0")),
            "AGIResult(result='-1', data='x', fields={'endpos': '0'})",
        )

    def test_reply_codes(self) -> None:
        """A reply code is three ASCII digits then a space, a dash or the end."""
        self.assertEqual(reply_code("200 result=0"), 200)
        self.assertEqual(reply_code("520-Invalid"), 520)
        self.assertEqual(reply_code("510"), 510)
        for line in ("HANGUP", "20 x", "2000 x", "abc def", "", "٢٠٠ x"):
            self.assertIsNone(reply_code(line), line)


class OutcomeTests(SynchronousTestCase):
    """What a whole reply means: result, AGIError or AGIHangup (recorded lines)."""

    def test_510(self) -> None:
        """The recorded 510 is an AGIError with its code and text."""
        error = outcome("TXAMI NO SUCH COMMAND", ["510 Invalid or unknown command"])
        assert isinstance(error, AGIError)
        self.assertEqual(
            (error.command, error.code, error.text, error.usage),
            ("TXAMI NO SUCH COMMAND", 510, "Invalid or unknown command", ""),
        )
        self.assertEqual(
            str(error),
            "AGI command 'TXAMI NO SUCH COMMAND' failed: 510 Invalid or unknown command",
        )

    def test_520_block(self) -> None:
        """The recorded 520- block is an AGIError whose usage is the lines between."""
        raw = capture_lines("agi-fastagi.raw")
        start = raw.index("520-Invalid command syntax.  Proper usage follows:")
        block = raw[start : start + 3]
        error = outcome("SET VARIABLE ONLYNAME", block)
        assert isinstance(error, AGIError)
        self.assertEqual(error.code, 520)
        self.assertEqual(error.text, "Invalid command syntax.  Proper usage follows:")
        self.assertEqual(error.usage, "Sets a variable to the current channel.")

    def test_520_single_line(self) -> None:
        """A 520 without usage (Asterisk's 'Proper usage not available') has no usage text."""
        error = outcome("X", ["520 Invalid command syntax.  Proper usage not available."])
        assert isinstance(error, AGIError)
        self.assertEqual((error.code, error.usage), (520, ""))

    def test_511(self) -> None:
        """The recorded 511 means the channel is dead: AGIHangup."""
        line = next(x for x in capture_lines("agi-nosighup.raw") if x.startswith("511"))
        error = outcome("ANSWER", [line])
        assert isinstance(error, AGIHangup)
        self.assertEqual(
            error.reason, "511 Command Not Permitted on a dead channel or intercept routine"
        )
        self.assertIn("the channel hung up", str(error))

    def test_unknown_code_and_garbage(self) -> None:
        """Any other code is an AGIError with that code; a line without one has code 0."""
        error = outcome("X", ["503 Service unavailable"])
        assert isinstance(error, AGIError)
        self.assertEqual((error.code, error.text), (503, "Service unavailable"))
        error = outcome("X", ["garbage"])
        assert isinstance(error, AGIError)
        self.assertEqual((error.code, error.text), (0, "garbage"))


class QuotingTests(SynchronousTestCase):
    """Arguments quoted so that Asterisk's parser gives them back."""

    def test_recorded_lines(self) -> None:
        """The quoting gives exactly the command lines that were sent in the captures."""
        sent = capture_lines("agi-fastagi.sent.raw")
        self.assertIn(
            command_line("SET VARIABLE", "TXAMI_TRICKY", 'say "hi" (a) b\\c) endpos=1'), sent
        )
        self.assertIn(command_line("SET VARIABLE", "TXAMI_AGI", "hello world"), sent)
        self.assertIn(command_line("STREAM FILE", "txami-no-such-file", ""), sent)
        self.assertIn(command_line("VERBOSE", "txami agi says hi", 1), sent)

    def test_quote(self) -> None:
        """Bare when safe; quoted with \\ and \" escaped otherwise; ints in decimal."""
        self.assertEqual(quote("abc"), "abc")
        self.assertEqual(quote(""), '""')
        self.assertEqual(quote("a b"), '"a b"')
        self.assertEqual(quote("a\tb"), '"a\tb"')
        self.assertEqual(quote('a"b'), '"a\\"b"')
        self.assertEqual(quote("a\\b"), '"a\\\\b"')
        self.assertEqual(quote(-1), "-1")
        self.assertEqual(quote("ünï"), "ünï")

    def test_line_breaks_refused(self) -> None:
        """CR, LF or NUL in an argument or the command raise ValueError naming it."""
        for bad in ("\r", "\n", "\0"):
            with self.assertRaises(ValueError) as caught:
                quote(f"x{bad}NOOP")
            self.assertIn(repr(bad), str(caught.exception))
            with self.assertRaises(ValueError):
                command_line(f"NOOP{bad}ANSWER")
        with self.assertRaises(ValueError):
            command_line("  ")

    def test_bad_types_refused(self) -> None:
        """bool, float and None are no AGI arguments: TypeError."""
        for bad in (True, 1.5, None):
            with self.assertRaises(TypeError):
                quote(bad)  # type: ignore[arg-type]

    @given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n\0")), max_size=8))
    def test_asterisk_reads_back_every_argument(self, arguments: list[str]) -> None:
        """Asterisk's parse_args splits a quoted command line back into exactly its words."""
        line = command_line("SET VARIABLE", *arguments)
        self.assertEqual(parse_args(line), ["SET", "VARIABLE", *arguments])


class ParseArgsTests(SynchronousTestCase):
    """The port of Asterisk's parse_args used by the fake and the property test above."""

    def test_rules(self) -> None:
        """Spaces and tabs split, quotes group and start words, backslash escapes."""
        self.assertEqual(parse_args('A  B\t"c d" ""'), ["A", "B", "c d", ""])
        self.assertEqual(parse_args('a"b c"d'), ["ab cd"])
        self.assertEqual(parse_args('a\\ b \\\\ \\"'), ["a b", "\\", '"'])
        self.assertEqual(parse_args(""), [])
        self.assertEqual(parse_args("   "), [])
        self.assertEqual(parse_args('"'), [""])

    def test_word_limit(self) -> None:
        """Words beyond the 127th are dropped, as Asterisk's MAX_ARGS of 128 does."""
        words = parse_args(" ".join(str(i) for i in range(200)))
        self.assertEqual(words, [str(i) for i in range(127)])


class EnvironmentTests(SynchronousTestCase):
    """The agi_* variables of both transports, from the captures."""

    def test_fastagi_environment(self) -> None:
        """The recorded FastAGI environment reads into typed attributes and arguments."""
        lines = capture_lines("agi-fastagi.raw")
        env = AGIEnvironment.from_lines(lines[: lines.index("")])
        self.assertEqual(
            (env.network, env.network_script, env.channel_type, env.language, env.version),
            (True, "txami", "Local", "en", "20.20.1"),
        )
        self.assertTrue(re.fullmatch(r"agi://127\.0\.0\.1:\d+/txami", env.request), env.request)
        self.assertTrue(re.fullmatch(r"Local/900@txami-test-\w+;2", env.channel), env.channel)
        self.assertEqual((env.caller_id, env.caller_id_name), ("agirec2224", "txami agi"))
        self.assertEqual((env.context, env.extension, env.priority), ("txami-test", "900", 2))
        self.assertEqual((env.dnid, env.rdnis, env.enhanced), ("unknown", "unknown", "0.0"))
        self.assertEqual((env.calling_pres, env.calling_ani2, env.calling_ton), (0, 0, 0))
        self.assertEqual((env.calling_tns, env.account_code), (0, ""))
        self.assertEqual(env.arguments, ("one", "two"))
        self.assertEqual(env["agi_uniqueid"], env.uniqueid)
        self.assertEqual(len(env.variables), 24)
        self.assertIsNone(env.get("agi_nothing"))

    def test_asyncagi_environment(self) -> None:
        """The URL-encoded Env of the recorded AsyncAGIStart reads the same way."""
        raw = DATA.child("agi-async.raw").getContent().decode()
        encoded = re.search(r"\r\nEnv: ([^\r]*)\r\n", raw)
        assert encoded is not None
        env = AGIEnvironment.from_url_encoded(encoded.group(1))
        self.assertEqual((env.request, env.network, env.network_script), ("async", False, ""))
        self.assertTrue(env.channel.startswith("Local/901@txami-test-"), env.channel)
        self.assertEqual((env.extension, env.priority, env.arguments), ("901", 2, ()))
        self.assertEqual(env.caller_id_name, "txami async")

    def test_odd_lines(self) -> None:
        """No colon: skipped; a repeated name keeps its first value; args sort numerically."""
        env = AGIEnvironment.from_lines(
            [
                "garbage",
                "agi_arg_10: ten",
                "agi_arg_2: two",
                "agi_arg_1: one",
                "agi_arg_x: not an argument",
                "agi_channel:bare",
                "agi_channel: again",
                "agi_priority: x",
            ]
        )
        self.assertEqual(env.arguments, ("one", "two", "ten"))
        self.assertEqual((env.channel, env.priority), ("bare", None))
        self.assertEqual(
            repr(env),
            "AGIEnvironment(channel='bare', request='', arguments=('one', 'two', 'ten'))",
        )

    def test_odd_line_logged_short(self) -> None:
        """A line without a colon is logged with its first 200 characters, as other odd input."""
        logs = LogCapture(self)
        AGIEnvironment.from_lines(["x" * 5000])
        self.assertEqual(
            logs.lines(),
            [("warn", f"skipping an AGI environment line without a colon: {'x' * 200!r}")],
        )


class PublicNamesTests(SynchronousTestCase):
    """txami.agi's exports and its modules' docstring examples."""

    def test_exports(self) -> None:
        """Every name of txami.agi.__all__ (and of each module's __all__) exists, listed once."""
        import txami.agi

        self.assertEqual(len(txami.agi.__all__), len(set(txami.agi.__all__)))
        for name in txami.agi.__all__:
            self.assertTrue(hasattr(txami.agi, name), name)
        for module in MODULES:
            imported = importlib.import_module(module)
            for name in imported.__all__:
                self.assertTrue(hasattr(imported, name), f"{module}.{name}")

    def test_docstring_examples(self) -> None:
        """The >>> examples in the modules' docstrings give what they show."""
        attempted = 0
        for module in MODULES:
            result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
            self.assertEqual(result.failed, 0, module)
            attempted += result.attempted
        self.assertGreaterEqual(attempted, 5)
