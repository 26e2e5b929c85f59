"""
txami.testing.parser: the fake server reads client bytes exactly as Asterisk's manager.c.
"""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from txami.testing.parser import MAX_HEADERS, MAX_LINE, Request, RequestParser, header

DATA = Path(__file__).parent / "data"


def parse(data: bytes, sizes: list[int] | None = None) -> list[tuple[list[str], str | None]]:
    """Every request in ``data`` (fed whole or in pieces) as (lines, error)."""
    parser = RequestParser()
    out: list[tuple[list[str], str | None]] = []
    pieces = [data] if sizes is None else []
    if sizes is not None:
        position = 0
        for size in sizes:
            pieces.append(data[position : position + size])
            position += size
        pieces.append(data[position:])
    for piece in pieces:
        parser.feed(piece)
        while True:
            request = parser.next_request()
            if request is None:
                break
            out.append((request.lines, request.error))
    return out


class ParserTests(SynchronousTestCase):
    """Lines, messages and the two parse errors."""

    def test_crlf_and_bare_lf(self) -> None:
        """CRLF and a bare LF both end a line; a blank line ends the message."""
        self.assertEqual(
            parse(b"Action: Ping\nActionID: a\r\n\r\nAction: Ping\n\n"),
            [(["Action: Ping", "ActionID: a"], None), (["Action: Ping"], None)],
        )

    def test_lone_cr_stays_in_the_line(self) -> None:
        """A CR not followed by LF is part of the line, as in Asterisk."""
        self.assertEqual(parse(b"A: x\ry\r\n\r\n"), [(["A: x\ry"], None)])

    def test_nul_ends_a_line_early(self) -> None:
        """A NUL truncates its line; a line starting with NUL ends the message."""
        self.assertEqual(
            parse(b"Action: Ping\0junk\r\n\0rest\r\n"),
            [(["Action: Ping"], None)],
        )

    def test_line_of_1023_bytes_is_accepted(self) -> None:
        """A line of 1023 bytes plus LF fits the buffer."""
        line = b"X" * (MAX_LINE - 1)
        self.assertEqual(parse(line + b"\n\n"), [([line.decode()], None)])

    def test_line_of_1024_bytes_is_too_long(self) -> None:
        """A line that fills the 1024-byte buffer is discarded but its last byte."""
        line = b"X" * MAX_LINE
        self.assertEqual(
            parse(b"Action: Ping\r\n" + line + b"\r\n\r\n"),
            [(["Action: Ping", "X"], "Failed to parse message: line too long")],
        )

    def test_too_long_resets_for_next_message(self) -> None:
        """After a too-long message the next one parses normally."""
        data = b"A: " + b"B" * 3000 + b"\r\n\r\nAction: Ping\r\n\r\n"
        self.assertEqual(
            [error for _, error in parse(data)],
            ["Failed to parse message: line too long", None],
        )

    def test_too_many_lines(self) -> None:
        """Past 128 lines the message is refused; its first 128 lines are kept."""
        lines = b"".join(b"H%d: v\r\n" % n for n in range(200))
        [(kept, error)] = parse(lines + b"\r\n")
        self.assertEqual(len(kept), MAX_HEADERS)
        self.assertEqual(error, "Too many lines in message or allocation failure")

    def test_chunking_does_not_matter(self) -> None:
        """The capture's malformed input parses the same whole, byte by byte, or at random."""
        data = (DATA / "malformed.sent.raw").read_bytes()
        whole = parse(data)
        self.assertEqual(len(whole), 19)
        self.assertEqual(parse(data, [1] * len(data)), whole)
        rng = random.Random(3)
        self.assertEqual(parse(data, [rng.randint(1, 700) for _ in range(40)]), whole)

    def test_buffered(self) -> None:
        """buffered counts the bytes fed but not yet parsed."""
        parser = RequestParser()
        parser.feed(b"Action: Ping\r\nAct")
        self.assertIsNone(parser.next_request())
        self.assertEqual(parser.buffered, 3)

    def test_request_repr(self) -> None:
        """A Request's repr tells its size and error."""
        self.assertEqual(repr(Request(["a"], None)), "Request(1 lines, error=None)")

    @settings(max_examples=150, deadline=None)
    @given(st.binary(max_size=3000), st.lists(st.integers(1, 600), max_size=12))
    def test_any_bytes(self, data: bytes, sizes: list[int]) -> None:
        """Any bytes, cut anywhere, parse without error into bounded messages."""
        requests = parse(data, sizes)
        self.assertEqual(requests, parse(data))
        for lines, _ in requests:
            self.assertLessEqual(len(lines), MAX_HEADERS)
            self.assertTrue(
                all(0 < len(line.encode("utf-8", "surrogateescape")) < MAX_LINE for line in lines)
            )


class HeaderTests(SynchronousTestCase):
    """astman_get_header's lookup rules."""

    def test_first_match_any_case(self) -> None:
        """The first header of that name, in any case, wins."""
        self.assertEqual(header(["actionid: a", "ActionID: b"], "ActionID"), "a")

    def test_leading_blanks_skipped_trailing_kept(self) -> None:
        """Leading blanks (and control characters) go; trailing spaces stay."""
        self.assertEqual(header(["ActionID:  \t spaced   "], "ActionID"), "spaced   ")
        self.assertEqual(header(["ActionID:nospace"], "ActionID"), "nospace")

    def test_name_must_end_at_colon(self) -> None:
        """A longer name does not match, nor a line without a colon."""
        self.assertEqual(header(["ActionIDs: x", "ActionID"], "ActionID"), "")

    def test_skip_empty(self) -> None:
        """skip_empty passes over empty values (how Asterisk finds Action)."""
        lines = ["Action: ", "Action: Ping"]
        self.assertEqual(header(lines, "Action"), "")
        self.assertEqual(header(lines, "Action", skip_empty=True), "Ping")
