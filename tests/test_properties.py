"""
Property tests (hypothesis) of the framing, the limits, the refusal of unsafe
headers and the message model.  Example counts are kept small so the file runs
in a few seconds.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from tests.test_protocol import ReferenceReadingProtocol
from tests.test_replay import describe
from txami import AMIProtocol, Message
from txami.message import encode_action

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BANNER = b"Asterisk Call Manager/9.0.0\r\n"
#: ActionIDs the generated streams answer.  Each run sends a Ping, a Status, a Command and
#: an IAXpeers (items without ActionID) with them, and an async Originate as o1.
PENDING = {"p1": "Ping", "l1": "Status", "c1": "Command", "u1": "IAXpeers"}
ALL_PENDING = [*PENDING, "o1"]

names = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_()", min_size=1, max_size=10
)
values = st.binary(max_size=24).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
header_lines = st.lists(st.tuples(names, values), max_size=6).map(
    lambda pairs: b"".join(n.encode() + b": " + v + b"\r\n" for n, v in pairs)
)


@st.composite
def ami_block(draw: st.DrawFn) -> bytes:
    """One server message, well formed or not, with its blank line."""
    first = draw(
        st.sampled_from(
            [
                b"Event: Newexten\r\n",
                b"Event: OriginateResponse\r\nActionID: other\r\nResponse: Success\r\n",
                b"Response: Success\r\nActionID: p1\r\n",
                b"Response: Error\r\nActionID: p1\r\nMessage: no\r\n",
                b"Response: Success\r\nActionID: l1\r\nEventList: start\r\n",
                b"Event: Status\r\nActionID: l1\r\n",
                b"Event: StatusComplete\r\nActionID: l1\r\nEventList: Complete\r\n",
                b"Response: Success\r\nActionID: gone\r\n",
                b"Response: Success\r\nActionID: u1\r\nEventList: start\r\n",
                b"Event: PeerEntry\r\n",
                b"Event: PeerlistComplete\r\nActionID: u1\r\nEventList: Complete\r\n",
                b"Response: Success\r\nActionID: o1\r\nMessage: queued\r\n",
                b"Event: OriginateResponse\r\nActionID: o1\r\nResponse: Success\r\n",
                b"Event: OriginateResponse\r\nActionID: o1\r\nResponse: Failure\r\n",
                b"Response: Success\r\n",
                b"Response: Follows\r\nActionID: c1\r\nout\r\n\r\nmore\n--END COMMAND--\r\n",
                b"Response: Follows\r\nActionID: c1\r\n",
                b"garbage without colon\r\n",
                b"\r\n",
                b"",
            ]
        )
    )
    return first + draw(header_lines) + b"\r\n"


@st.composite
def ami_stream(draw: st.DrawFn) -> bytes:
    """A banner (usually) and a run of messages, some of them malformed."""
    start = draw(st.sampled_from([BANNER, BANNER, b"", b"Asterisk Call Manager/1.1\r\n"]))
    return start + b"".join(draw(st.lists(ami_block(), max_size=12)))


noise = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from(
            [
                b"\r\n\r\n",
                b"\r\n",
                b"\r",
                b"Event: X\r\n",
                b"Response: Success\r\nActionID: p1\r\n",
                b"Response: Success\r\nActionID: l1\r\nEventList: start\r\n",
                b"ActionID: l1\r\n",
                b"Response: Follows\r\nActionID: c1\r\n",
                b"--END COMMAND--\r\n\r\n",
                BANNER,
            ]
        ),
    ),
    max_size=30,
).map(b"".join)


def cuts(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """
    Ways to cut ``data`` into reads (possibly empty ones).  Half the cut points
    fall just after a CR or LF, where framing decisions are made.
    """
    line_ends = [i + 1 for i, byte in enumerate(data) if byte in b"\r\n"]
    point = st.integers(0, len(data))
    if line_ends:
        point = point | st.sampled_from(line_ends)
    return st.lists(point, max_size=12).map(
        lambda points: [
            data[a:b]
            for a, b in zip([0, *sorted(points)], [*sorted(points), len(data)], strict=True)
        ]
    )


class Observer:
    """A connected protocol with the PENDING actions sent, recording everything it delivers."""

    def __init__(
        self,
        max_message_size: int | None = None,
        protocol_class: type[AMIProtocol] = AMIProtocol,
    ) -> None:
        self.clock = Clock()
        self.transport = StringTransport()
        self.protocol = protocol_class(self.clock, max_message_size=max_message_size)
        self.protocol.makeConnection(self.transport)
        self.seen: list[tuple[Any, ...]] = []
        self.protocol.add_event_handler("*", lambda e: self.seen.append(("event", e.to_bytes())))
        for action_id, action in PENDING.items():
            untagged = "PeerEntry" if action == "IAXpeers" else None
            d = self.protocol.send_action(action, ActionID=action_id, untagged_items=untagged)
            d.addBoth(self.record, action_id)
        send = self.protocol._send
        self.protocol._send = lambda name, pairs, *a, **k: send(  # type: ignore[method-assign]
            name, [("ActionID", "o1"), *pairs], *a, **k
        )
        d = self.protocol.originate("SIP/a", application="Wait", data="1", async_=True)
        d.addBoth(self.record, "o1")
        del self.protocol._send

    def record(self, result: object, action_id: str) -> None:
        """Note what an action fired with (a failure to describe it is noted too, not raised)."""
        try:
            self.seen.append((action_id, describe(result)))
        except Exception as e:
            self.seen.append((action_id, "cannot describe", repr(e)))

    def feed(self, chunks: list[bytes]) -> list[tuple[Any, ...]]:
        for chunk in chunks:
            self.protocol.dataReceived(chunk)
        return [*self.seen, ("closed", self.transport.disconnecting)]


class FramingProperties(SynchronousTestCase):
    """Any chunking of a byte stream gives the same messages in the same order."""

    @SETTINGS
    @given(st.data(), ami_stream())
    def test_chunking_ami_streams(self, data: st.DataObject, stream: bytes) -> None:
        """Messages, answers and their order do not depend on how the stream is cut."""
        whole = Observer().feed([stream])
        self.assertEqual(Observer().feed(data.draw(cuts(stream))), whole)

    @SETTINGS
    @given(st.data(), noise, st.sampled_from([None, 40, 64, 200]))
    def test_chunking_arbitrary_bytes(
        self, data: st.DataObject, stream: bytes, limit: int | None
    ) -> None:
        """Even for arbitrary bytes and a small max_message_size, cutting changes nothing."""
        whole = Observer(limit).feed([stream])
        self.assertEqual(Observer(limit).feed(data.draw(cuts(stream))), whole)

    @SETTINGS
    @given(st.data(), st.sampled_from([40, 64, 200]))
    def test_chunking_near_the_limits(self, data: st.DataObject, limit: int) -> None:
        """Messages within 3 bytes of max_message_size and first lines near 1 KiB, cut anyhow."""
        head = b"Event: X\r\nD: "
        near = st.integers(-3, 3).map(
            lambda d: head + b"y" * (limit - len(head) + d) + b"\r\n\r\n"
        )
        first_line = st.integers(1020, 1030).map(lambda n: b"z" * n + b"\r\n")
        start = data.draw(st.sampled_from([BANNER, b""]) | first_line)
        stream = start + b"".join(data.draw(st.lists(near | ami_block(), min_size=1, max_size=5)))
        whole = Observer(limit).feed([stream])
        self.assertEqual(Observer(limit).feed(data.draw(cuts(stream))), whole)

    @FEW
    @given(ami_stream())
    def test_one_byte_reads(self, stream: bytes) -> None:
        """Reading one byte at a time gives what reading the whole stream gives."""
        whole = Observer().feed([stream])
        self.assertEqual(Observer().feed([stream[i : i + 1] for i in range(len(stream))]), whole)


def message_slots(message: Message) -> tuple[Any, ...]:
    """Every slot of ``message`` (lazy caches included), as a handler first sees it."""
    return tuple(getattr(message, name) for name in Message.__slots__)


class ReadingPathProperties(SynchronousTestCase):
    """The reading loop's inline event path does what its reference versions do."""

    @SETTINGS
    @given(st.data(), st.one_of(ami_stream(), noise), st.sampled_from([None, 64, 200]))
    def test_inline_and_reference_paths_agree(
        self, data: st.DataObject, stream: bytes, limit: int | None
    ) -> None:
        """Events (every slot), answers, counts and closing agree on both reading paths."""
        chunks = data.draw(cuts(stream))
        outcomes = []
        for protocol_class in (AMIProtocol, ReferenceReadingProtocol):
            observer = Observer(limit, protocol_class)
            seen = observer.seen
            observer.protocol.add_event_handler(
                "*", lambda e, seen=seen: seen.append(message_slots(e))
            )
            outcomes.append((observer.feed(chunks), observer.protocol.events_received))
        self.assertEqual(outcomes[0], outcomes[1])


class RobustnessProperties(SynchronousTestCase):
    """Arbitrary input never raises out of dataReceived and never grows the buffer unboundedly."""

    @SETTINGS
    @given(
        st.data(),
        st.one_of(noise, ami_stream(), st.binary(max_size=3000)),
        st.sampled_from([40, 64, 200, 2000]),
    )
    def test_arbitrary_bytes(self, data: st.DataObject, stream: bytes, limit: int) -> None:
        """dataReceived never raises; the buffer stays within max_message_size + 3 (or 1 KiB)."""
        observer = Observer(limit)
        protocol = observer.protocol
        for chunk in data.draw(cuts(stream)):
            protocol.dataReceived(chunk)
            # A partial blank line (up to 3 bytes) may wait after a message of the full size;
            # before the banner is read, up to 1 KiB waits for its line end.
            self.assertLessEqual(len(protocol._buffer), max(limit + 3, 1026))
            # An old-style Command answer being gathered is bounded by the limit too.
            self.assertLessEqual(sum(len(part) for part in protocol._follows or ()), limit)
        self.clock_advance(observer)

    def clock_advance(self, observer: Observer) -> None:
        """Timeouts after arbitrary input fire every pending Deferred exactly once."""
        observer.clock.advance(3600)
        fired = [entry[0] for entry in observer.seen if entry[0] != "event"]
        self.assertEqual(sorted(fired), sorted(ALL_PENDING))


unsafe_char = st.sampled_from(["\r", "\n", "\0", "\r\n"])
safe_text = st.text(
    st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)), max_size=12
)


@st.composite
def unsafe_headers(draw: st.DrawFn) -> tuple[list[tuple[str, str]], str]:
    """Safe headers with one unsafe header (CR, LF or NUL in its name or value) among them."""
    safe = draw(st.lists(st.tuples(names, safe_text), max_size=4))
    safe = [(n, v) for n, v in safe if n.lower() != "actionid"]
    name, value = draw(names), draw(safe_text)
    assume_name = draw(st.booleans())
    bad, at = draw(unsafe_char), draw(st.integers(0, 12))
    if assume_name:
        name = name[:at] + bad + name[at:]
    else:
        value = value[:at] + bad + value[at:]
    position = draw(st.integers(0, len(safe)))
    return [*safe[:position], (name, value), *safe[position:]], name


class SafetyProperties(SynchronousTestCase):
    """Header injection is always refused before anything is written."""

    @SETTINGS
    @given(unsafe_headers(), st.sampled_from(["Ping", "Originate", "Login"]))
    def test_unsafe_header_refused(
        self, headers: tuple[list[tuple[str, str]], str], action: str
    ) -> None:
        """A name or value with CR, LF or NUL raises ValueError naming it; nothing is written."""
        pairs, bad_name = headers
        transport = StringTransport()
        protocol = AMIProtocol(Clock())
        protocol.makeConnection(transport)
        with self.assertRaises(ValueError) as raised:
            protocol.send_action(action, pairs)
        self.assertIn(f"AMI header {bad_name!r}", str(raised.exception))
        self.assertEqual(transport.value(), b"")
        self.assertEqual(protocol.actions_sent, 0)
        with self.assertRaises(ValueError) as raised:
            Message([("Action", action), *pairs]).to_bytes()
        self.assertIn(f"AMI header {bad_name!r}", str(raised.exception))
        with self.assertRaises(ValueError) as raised:
            encode_action(action, "id", pairs)
        self.assertIn(f"AMI header {bad_name!r}", str(raised.exception))

    @SETTINGS
    @given(safe_text, unsafe_char, st.integers(0, 12))
    def test_unsafe_action_and_action_id(self, text: str, bad: str, at: int) -> None:
        """CR, LF or NUL in the action name or the ActionID is refused the same way."""
        transport = StringTransport()
        protocol = AMIProtocol(Clock())
        protocol.makeConnection(transport)
        poisoned = text[:at] + bad + text[at:]
        with self.assertRaises(ValueError) as raised:
            protocol.send_action("Ping" + poisoned)
        self.assertIn("AMI header 'Action'", str(raised.exception))
        with self.assertRaises(ValueError) as raised:
            protocol.send_action("Ping", ActionID=poisoned)
        self.assertIn("AMI header 'ActionID'", str(raised.exception))
        self.assertEqual(transport.value(), b"")


class MessageProperties(SynchronousTestCase):
    """The lazy lookups of a received message agree with its full parse."""

    @SETTINGS
    @given(
        st.lists(st.tuples(names, safe_text), min_size=1, max_size=8),
        st.sampled_from(["\r\n", "\n"]),
    )
    def test_lookups_agree_with_pairs(self, pairs: list[tuple[str, str]], eol: str) -> None:
        """get, [], in and getall on the text give what the parsed pairs say, for any case."""
        text = eol.join(f"{n}: {v}" for n, v in pairs)
        msg = Message.parse(text.encode())
        self.assertEqual(msg.pairs(), pairs)
        for name, _ in pairs:
            for asked in (name, name.lower(), name.upper()):
                expected = [v for n, v in pairs if n.lower() == asked.lower()]
                self.assertEqual(msg.getall(asked), expected)
                self.assertEqual(msg.get(asked), expected[0])
                self.assertEqual(msg[asked], expected[0])
                self.assertIn(asked, msg)

    @SETTINGS
    @given(st.lists(st.tuples(names, safe_text), max_size=8))
    def test_round_trip(self, pairs: list[tuple[str, str]]) -> None:
        """A built message serialised and parsed back has the same headers."""
        built = Message(pairs)
        back = Message.parse(built.to_bytes()[:-4]) if pairs else Message.parse(b"")
        self.assertEqual(back.pairs(), pairs)
        self.assertEqual(back, built)
