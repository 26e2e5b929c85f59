"""
`txami.message`: the `Message` header block and `encode_action`.
"""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from txami import Message
from txami.message import encode_action, new_action_id

RECEIVED = (
    b"Event: Status\r\n"
    b"Privilege: Call\r\n"
    b"Channel: Local/1000@txami-test-00000004;2\r\n"
    b"AccountCode: \r\n"
    b"Variable: TXAMI_CALL=0\r\n"
    b"variable: CALLERID(num)=5551000\r\n"
    b"VARIABLE: NOSUCHVAR=(null)\r\n"
    b"ActionID: status-07"
)


class ConstructionTests(SynchronousTestCase):
    """Building a message from a mapping or from pairs."""

    def test_pairs_keep_order_and_repeats(self) -> None:
        """Pairs keep their order and repeated names."""
        msg = Message([("Action", "Originate"), ("Variable", "A=1"), ("Variable", "B=2")])
        self.assertEqual(
            msg.pairs(), [("Action", "Originate"), ("Variable", "A=1"), ("Variable", "B=2")]
        )

    def test_mapping(self) -> None:
        """A mapping gives its items in insertion order."""
        msg = Message({"Action": "Ping", "ActionID": "x"})
        self.assertEqual(msg.pairs(), [("Action", "Ping"), ("ActionID", "x")])

    def test_list_and_tuple_values_repeat(self) -> None:
        """A list or tuple value repeats the header, in order."""
        msg = Message({"Action": "UserEvent", "X": ["1", 2, 3.5], "Y": ("a", "b")})
        self.assertEqual(
            msg.pairs(),
            [
                ("Action", "UserEvent"),
                ("X", "1"),
                ("X", "2"),
                ("X", "3.5"),
                ("Y", "a"),
                ("Y", "b"),
            ],
        )
        self.assertEqual(
            msg.to_bytes(),
            b"Action: UserEvent\r\nX: 1\r\nX: 2\r\nX: 3.5\r\nY: a\r\nY: b\r\n\r\n",
        )

    def test_conversions(self) -> None:
        """bool becomes true/false, int and float their str; None leaves the header out."""
        msg = Message(
            [("A", True), ("B", False), ("C", 17), ("D", 0.25), ("E", None), ("F", ""), ("G", 0)]
        )
        self.assertEqual(
            msg.pairs(),
            [("A", "true"), ("B", "false"), ("C", "17"), ("D", "0.25"), ("F", ""), ("G", "0")],
        )

    def test_empty(self) -> None:
        """An empty message has no headers, no kind and no name."""
        for msg in (Message(), Message([]), Message({}), Message.parse(b"")):
            self.assertEqual((len(msg), msg.kind, msg.name, msg.action_id), (0, None, None, None))
            self.assertEqual(list(msg), [])

    def test_defaults_for_lists(self) -> None:
        """events is empty and list_complete None unless the message answered a list action."""
        msg = Message.parse(RECEIVED)
        self.assertEqual((msg.events, msg.list_complete), ((), None))
        self.assertEqual((Message().events, Message().list_complete), ((), None))


class LookupTests(SynchronousTestCase):
    """get, [], in, getall, len, iteration, on parsed and on built messages."""

    def messages(self) -> list[Message]:
        parsed = Message.parse(RECEIVED)
        built = Message(parsed.pairs())
        return [parsed, built, Message.parse(RECEIVED.decode())]

    def test_get_is_case_insensitive_and_first(self) -> None:
        """get() ignores case and gives the first value; a default otherwise."""
        for msg in self.messages():
            self.assertEqual(msg.get("variable"), "TXAMI_CALL=0")
            self.assertEqual(msg.get("CHANNEL"), "Local/1000@txami-test-00000004;2")
            self.assertEqual(msg.get("AccountCode"), "")
            self.assertIsNone(msg.get("Nope"))
            self.assertEqual(msg.get("Nope", "d"), "d")
            self.assertEqual(msg.get("AccountCode", "d"), "")

    def test_getitem(self) -> None:
        """[] ignores case; a missing header raises KeyError naming it."""
        for msg in self.messages():
            self.assertEqual(msg["actionid"], "status-07")
            self.assertEqual(msg["Event"], "Status")
            with self.assertRaises(KeyError) as raised:
                msg["Cause"]
            self.assertEqual(raised.exception.args, ("Cause",))

    def test_contains(self) -> None:
        """in ignores case, counts empty values, and is False for non-strings."""
        for msg in self.messages():
            self.assertIn("privilege", msg)
            self.assertIn("AccountCode", msg)
            self.assertNotIn("Cause", msg)
            self.assertNotIn(1, msg)
            self.assertNotIn(("Event", "Status"), msg)

    def test_getall_in_wire_order(self) -> None:
        """getall() gives every value of a name, whatever its case, in wire order."""
        for msg in self.messages():
            self.assertEqual(
                msg.getall("Variable"),
                ["TXAMI_CALL=0", "CALLERID(num)=5551000", "NOSUCHVAR=(null)"],
            )
            self.assertEqual(msg.getall("Cause"), [])

    def test_len_and_iteration(self) -> None:
        """len() counts header lines; iteration yields (name, value) in order, names as sent."""
        for msg in self.messages():
            self.assertEqual(len(msg), 8)
            self.assertEqual(
                list(msg),
                [
                    ("Event", "Status"),
                    ("Privilege", "Call"),
                    ("Channel", "Local/1000@txami-test-00000004;2"),
                    ("AccountCode", ""),
                    ("Variable", "TXAMI_CALL=0"),
                    ("variable", "CALLERID(num)=5551000"),
                    ("VARIABLE", "NOSUCHVAR=(null)"),
                    ("ActionID", "status-07"),
                ],
            )

    def test_names_are_whole(self) -> None:
        """A lookup matches whole names only: ID is not ActionID, Action is not ActionID."""
        msg = Message.parse(b"Response: Success\r\nActionID: a\r\nXID: b")
        self.assertIsNone(msg.get("ID"))
        self.assertIsNone(msg.get("Action"))
        self.assertNotIn("Success", msg)
        self.assertEqual(msg["xid"], "b")

    def test_value_parsing(self) -> None:
        """The value is what follows the first colon, less one space; the rest is kept."""
        msg = Message.parse(
            b"Response: Success\r\n"
            b"ActionID: custom id with spaces: and colon\r\n"
            b"NoSpace:value\r\n"
            b"Two:  spaces\r\n"
            b"Trailing: kept   \r\n"
            b"Empty:\r\n"
            b"Tab:\tx"
        )
        expected = [
            ("Response", "Success"),
            ("ActionID", "custom id with spaces: and colon"),
            ("NoSpace", "value"),
            ("Two", " spaces"),
            ("Trailing", "kept   "),
            ("Empty", ""),
            ("Tab", "\tx"),
        ]
        self.assertEqual(msg.pairs(), expected)
        for name, value in expected:
            self.assertEqual(msg[name], value)
            self.assertEqual(Message.parse(msg.to_bytes()[:-4])[name], value)

    def test_lines_without_colon(self) -> None:
        """Lines without a colon are no header, but to_bytes keeps them."""
        raw = b"Event: X\r\nno colon here\r\nA: 1"
        msg = Message.parse(raw)
        self.assertEqual(msg.pairs(), [("Event", "X"), ("A", "1")])
        self.assertEqual(msg["A"], "1")
        self.assertEqual(msg.to_bytes(), raw + b"\r\n\r\n")

    def test_bare_lf(self) -> None:
        """Bare LF line ends are accepted, for pairs, lookups, kind and name alike."""
        msg = Message.parse(b"Event: Hangup\nChannel: SIP/a\r\nCause: 16\n")
        self.assertEqual((msg.kind, msg.name), ("event", "Hangup"))
        self.assertEqual(msg.pairs(), [("Event", "Hangup"), ("Channel", "SIP/a"), ("Cause", "16")])
        self.assertEqual((msg["Channel"], msg["cause"]), ("SIP/a", "16"))
        self.assertEqual(msg["event"], "Hangup")
        mixed = Message.parse(b"Event: X\r\nA: b\rc\nB: d\r\r\nC: e\r")
        self.assertEqual((mixed["a"], mixed["b"], mixed["c"]), ("b\rc", "d\r", "e\r"))

    def test_lowercase_changing_length(self) -> None:
        """Lookups stay right when lower-casing the text changes its length (U+0130)."""
        msg = Message.parse("Event: X\r\nCity: \u0130stanbul\r\nZone: 3".encode())
        self.assertEqual(msg["zone"], "3")
        self.assertEqual(msg["City"], "\u0130stanbul")
        self.assertEqual(msg.get("\u0130d", "none"), "none")

    def test_ascii_lookups_match_lowered_lookups(self) -> None:
        """get() on ASCII text (a regex search) agrees with the lower-cased search it replaced."""
        rng = random.Random(1)
        names = ["Event", "Uniqueid", "UniqueID", "ActionID", "Action", "Id", "E", "e", "X.Y", "*"]
        pieces = ["", " ", "  ", "v", "a b", ":", "x: y", "\r", "\n", "\r\r", "Uniqueid: z"]
        ends = ["\r\n", "\n", "\r\r\n", "\r"]

        def case(name: str) -> str:
            return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)

        checked = 0
        for _ in range(3000):
            lines = []
            for _ in range(rng.randrange(1, 6)):
                name = case(rng.choice(names))
                value = "".join(rng.choice(pieces) for _ in range(rng.randrange(3)))
                lines.append(rng.choice([f"{name}: {value}", f"{name}:{value}", value]))
            text = "".join(line + rng.choice(ends) for line in lines)[: rng.randrange(1, 200)]
            for name in (case(rng.choice(names)), rng.choice(names), "Nope"):
                expected = Message.parse(text)._get_lowered(name, "default")
                self.assertEqual(Message.parse(text).get(name, "default"), expected, (text, name))
                checked += expected != "default"
        self.assertGreater(checked, 1000)  # most lookups found a header

    def test_lookups_of_names_not_ascii_or_empty(self) -> None:
        """A name that is empty or not ASCII is looked up in the lower-cased text."""
        msg = Message.parse(b"Event: X\r\n: empty name\r\nKey: k")
        self.assertEqual(msg.get(""), "empty name")
        self.assertEqual(msg.get("\u212aey"), "k")  # KELVIN SIGN, whose lower case is k
        self.assertIsNone(msg.get("\u0130d"))

    def test_non_utf8(self) -> None:
        """Invalid UTF-8 survives as surrogate escapes and to_bytes gives the bytes back."""
        raw = b"Event: X\r\nName: caf\xe9 \xff\xfe"
        msg = Message.parse(raw)
        self.assertEqual(msg["Name"], "caf\udce9 \udcff\udcfe")
        self.assertEqual(msg.to_bytes(), raw + b"\r\n\r\n")
        self.assertEqual(Message(msg.pairs()).to_bytes(), raw + b"\r\n\r\n")

    def test_action_id(self) -> None:
        """action_id is the ActionID header, or None."""
        self.assertEqual(Message.parse(RECEIVED).action_id, "status-07")
        self.assertIsNone(Message([("Event", "X")]).action_id)


class KindTests(SynchronousTestCase):
    """kind and name come from the first header only."""

    def test_kinds(self) -> None:
        """Event, Response and Action (any case) give the kind; the value is the name."""
        for raw, kind, name in (
            (b"Event: Newexten\r\nA: 1", "event", "Newexten"),
            (b"Response: Success\r\nA: 1", "response", "Success"),
            (b"Action: Ping", "action", "Ping"),
            (b"event: lower", "event", "lower"),
            (b"RESPONSE: Error", "response", "Error"),
            (b"Foo: bar\r\nEvent: X", None, None),
            (b"garbage", None, None),
        ):
            for msg in (Message.parse(raw), Message(Message.parse(raw).pairs())):
                self.assertEqual((msg.kind, msg.name), (kind, name), raw)

    def test_originate_response_is_an_event(self) -> None:
        """An OriginateResponse event also carries Response:, and is still an event."""
        msg = Message.parse(
            b"Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: a\r\n"
            b"Response: Success\r\nReason: 4"
        )
        self.assertEqual((msg.kind, msg.name), ("event", "OriginateResponse"))
        self.assertEqual(msg["Response"], "Success")

    def test_response_with_event_header(self) -> None:
        """A response holding an Event header is still a response."""
        msg = Message([("Response", "Success"), ("Event", "X")])
        self.assertEqual((msg.kind, msg.name), ("response", "Success"))

    def test_colonless_first_line(self) -> None:
        """A first line without a colon is no header; the first real header decides."""
        msg = Message.parse(b"no colon\r\nEvent: X")
        self.assertEqual((msg.kind, msg.name), ("event", "X"))


class EqualityTests(SynchronousTestCase):
    """== compares headers: names without case, values exactly, order and repeats kept."""

    def test_equal(self) -> None:
        """Parsed and built messages with the same headers are equal; name case is ignored."""
        parsed = Message.parse(b"Event: X\r\nA: 1\r\nA: 2")
        self.assertEqual(parsed, Message([("Event", "X"), ("A", "1"), ("A", "2")]))
        self.assertEqual(parsed, Message([("EVENT", "X"), ("a", "1"), ("A", "2")]))
        self.assertTrue(parsed == Message.parse("Event:X\nA: 1\r\nA: 2"))

    def test_not_equal(self) -> None:
        """Value case, order, a missing repeat or an extra header make messages differ."""
        base = Message([("Event", "X"), ("A", "1"), ("B", "2")])
        for other in (
            Message([("Event", "x"), ("A", "1"), ("B", "2")]),
            Message([("Event", "X"), ("B", "2"), ("A", "1")]),
            Message([("Event", "X"), ("A", "1")]),
            Message([("Event", "X"), ("A", "1"), ("B", "2"), ("B", "2")]),
            Message([("Event", "X"), ("A", "1 "), ("B", "2")]),
        ):
            self.assertNotEqual(base, other)
            self.assertFalse(base == other)

    def test_other_types(self) -> None:
        """A message never equals a non-message, and is not hashable."""
        msg = Message([("Event", "X")])
        self.assertNotEqual(msg, [("Event", "X")])
        self.assertNotEqual(msg, {"Event": "X"})
        self.assertNotEqual(msg, "Event: X")
        with self.assertRaises(TypeError):
            hash(msg)


class SerialisationTests(SynchronousTestCase):
    """to_bytes and encode_action, and their refusal of unsafe headers."""

    def test_to_bytes(self) -> None:
        """A built message serialises as 'Name: value' lines and a blank line."""
        msg = Message([("Action", "Ping"), ("ActionID", "a")])
        self.assertEqual(msg.to_bytes(), b"Action: Ping\r\nActionID: a\r\n\r\n")

    def test_to_bytes_round_trip(self) -> None:
        """A parsed message gives back exactly the bytes it was parsed from."""
        for raw in (RECEIVED, b"Event: X\nA:1\r\n  odd line", b"Event: \xe2\x82\xac\r\nB: \xc3"):
            self.assertEqual(Message.parse(raw).to_bytes(), raw + b"\r\n\r\n")

    def test_encode_action_order(self) -> None:
        """encode_action writes Action, then ActionID, then the headers in order."""
        self.assertEqual(
            encode_action("Originate", "id-1", [("Channel", "SIP/a"), ("Variable", "A=1")]),
            b"Action: Originate\r\nActionID: id-1\r\nChannel: SIP/a\r\nVariable: A=1\r\n\r\n",
        )
        self.assertEqual(encode_action("Ping", "x", []), b"Action: Ping\r\nActionID: x\r\n\r\n")

    def test_encode_action_refuses_unsafe(self) -> None:
        """CR, LF or NUL in action, ActionID, a name or a value raises ValueError naming it."""
        for name, action_id, headers, named in (
            ("Ping\r\nAction: Logoff", "a", [], "'Action'"),
            ("Ping", "a\n", [], "'ActionID'"),
            ("Ping", "a", [("Channel", "SIP/a\rx")], "'Channel'"),
            ("Ping", "a", [("Chan\nnel", "SIP/a")], "'Chan\\nnel'"),
            ("Ping", "a", [("Data", "x\x00y")], "'Data'"),
            ("Ping", "a", [("A", "1"), ("B", "2\r\n\r\nAction: Logoff")], "'B'"),
        ):
            with self.assertRaises(ValueError) as raised:
                encode_action(name, action_id, headers)
            self.assertIn(f"AMI header {named}", str(raised.exception))

    def test_encode_action_refuses_spoofing_names(self) -> None:
        """A header name that is empty or holds a colon (spoofing another header) is refused."""
        for name, text in (
            ("Channel: evil", "'Channel: evil' is not a valid AMI header name"),
            ("", "'' is not a valid AMI header name"),
        ):
            with self.assertRaises(ValueError) as raised:
                encode_action("Hangup", "a", [(name, "SIP/a")])
            self.assertEqual(str(raised.exception), text)

    def test_to_bytes_refuses_unsafe(self) -> None:
        """A built message with CR, LF or NUL, or a bad header name, refuses to serialise."""
        for pairs, text in (
            ([("Action", "Ping"), ("X", "a\r\nAction: Logoff")], "AMI header 'X' has a value"),
            ([("Ac\rtion", "Ping")], "AMI header 'Ac\\rtion' has a name"),
            ([("A:B", "1")], "'A:B' is not a valid AMI header name"),
            ([("", "1")], "'' is not a valid AMI header name"),
            ([(" A", "1")], "' A' is not a valid AMI header name"),
        ):
            with self.assertRaises(ValueError) as raised:
                Message(pairs).to_bytes()
            self.assertIn(text, str(raised.exception))

    def test_unsafe_secret_is_not_shown(self) -> None:
        """The refusal of an unsafe Secret or Key value does not show the value."""
        for name in ("Secret", "key", "KEY"):
            with self.assertRaises(ValueError) as raised:
                encode_action("Login", "a", [(name, "hunter2\r\n")])
            self.assertNotIn("hunter2", str(raised.exception))
            self.assertIn("'***'", str(raised.exception))
            with self.assertRaises(ValueError) as raised:
                Message([(name, "hunter2\n")]).to_bytes()
            self.assertNotIn("hunter2", str(raised.exception))

    def test_surrogate_escapes_round_trip(self) -> None:
        """Surrogate-escaped bytes in a header encode back to the original bytes."""
        value = b"caf\xe9".decode("utf-8", "surrogateescape")
        self.assertTrue(
            encode_action("A", "i", [("V", value)]).endswith(b"\r\nV: caf\xe9\r\n\r\n")
        )


class ReprTests(SynchronousTestCase):
    """repr never shows a Secret or Key value."""

    def test_repr_redacts(self) -> None:
        """Secret and Key values (any case) show as ***; other headers as they are."""
        for msg in (
            Message([("Action", "Login"), ("Username", "admin"), ("Secret", "adminsecret")]),
            Message.parse(b"Action: Login\r\nUsername: admin\r\nsecret: adminsecret"),
            Message([("Action", "Login"), ("KEY", "d0c7b33337411eac7b0f12e5c1eb5b81")]),
        ):
            text = repr(msg)
            self.assertNotIn("adminsecret", text)
            self.assertNotIn("d0c7b333", text)
            self.assertIn("'***'", text)
            self.assertIn("'Login'", text)
        self.assertEqual(
            repr(Message([("Action", "Login"), ("Secret", "s")])),
            "Message([('Action', 'Login'), ('Secret', '***')])",
        )
        self.assertEqual(
            Message([("Key", "k"), ("A", "1")]).redacted_pairs(), [("Key", "***"), ("A", "1")]
        )

    def test_repr_of_list_response(self) -> None:
        """A list response's repr says how many items it holds."""
        msg = Message.parse(b"Response: Success\r\nEventList: start")
        msg.events = [Message([("Event", "A")])] * 3
        msg.list_complete = Message([("Event", "AComplete")])
        self.assertEqual(
            repr(msg),
            "Message([('Response', 'Success'), ('EventList', 'start')], events=<3 items>)",
        )


class ActionIdTests(SynchronousTestCase):
    """new_action_id: a per-process random prefix and a counter."""

    def test_unique_with_prefix(self) -> None:
        """Ids are unique and share one 12-hex-digit prefix."""
        ids = [new_action_id() for _ in range(2000)]
        self.assertEqual(len(set(ids)), 2000)
        prefixes = {i.split(".")[0] for i in ids}
        self.assertEqual(len(prefixes), 1)
        (prefix,) = prefixes
        self.assertEqual(len(prefix), 12)
        int(prefix, 16)
        counters = [int(i.split(".")[1]) for i in ids]
        self.assertEqual(counters, sorted(counters))
