"""Tests for txami.daemon.acl: the --http-acl file and what each token may do."""

from __future__ import annotations

import hashlib
import os

from twisted.trial.unittest import SynchronousTestCase

from txami.config import ConfigError
from txami.daemon.acl import EVERYTHING, AccessList, Grant, load_acl, parse_acl

OPERATOR = "operator-token-1"
WALLBOARD = "wallboard-token-2"
WALLBOARD_SHA = hashlib.sha256(WALLBOARD.encode()).hexdigest()


class ACLTestCase(SynchronousTestCase):
    """Writes token files in a temporary directory."""

    def setUp(self) -> None:
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.operator_file = self.write("operator.token", OPERATOR + "\n")

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def problems(self, text: str) -> list[str]:
        return self.assertRaises(ConfigError, parse_acl, text, "acl.ini").problems

    def example(self) -> AccessList:
        return parse_acl(
            f"[token:operator]\ntoken-file = {self.operator_file}\nread = yes\n"
            "actions = Ping, *Status, Hangup, Redirect, QueuePause\n"
            f"[token:wallboard]\nsha256 = {WALLBOARD_SHA}\nread = yes\n"
            f"[token:script]\nsha256 = {'ab' * 32}\nactions = QueueAdd\npbx = east, we*\n",
            "acl.ini",
        )


class ParseTests(ACLTestCase):
    """Good files become grants; tokens are found by their bearer header."""

    def test_grants_in_file_order(self) -> None:
        """Each section is one grant with its scopes; patterns are kept lower-cased."""
        self.assertEqual(
            self.example().grants,
            [
                Grant(
                    "operator",
                    read=True,
                    actions=("ping", "*status", "hangup", "redirect", "queuepause"),
                ),
                Grant("wallboard", read=True),
                Grant("script", actions=("queueadd",), pbxs=("east", "we*")),
            ],
        )

    def test_token_lookup(self) -> None:
        """A Bearer header finds its grant, by file or by hash; anything else finds none."""
        acl = self.example()
        operator = acl.grant_for(f"Bearer {OPERATOR}".encode())
        wallboard = acl.grant_for(f"bearer  {WALLBOARD} ".encode())
        self.assertEqual(
            (operator and operator.name, wallboard and wallboard.name), ("operator", "wallboard")
        )
        for header in (None, b"", b"Bearer", b"Bearer ", b"Basic " + OPERATOR.encode(), b"x y"):
            self.assertIsNone(acl.grant_for(header), header)

    def test_scopes(self) -> None:
        """read, action patterns (any case) and PBX patterns decide what a grant may do."""
        acl = self.example()
        operator, wallboard, script = acl.grants
        self.assertEqual(
            [
                operator.may_run("hangup"),
                operator.may_run("QueueStatus"),
                operator.may_run("Originate"),
                wallboard.may_read(),
                wallboard.may_run("Ping"),
                script.may_read("east"),
                script.may_run("QueueAdd", "east"),
                script.may_run("QueueAdd", "west"),
                script.may_run("QueueAdd", "north"),
            ],
            [True, True, False, True, False, False, True, True, False],
        )
        self.assertEqual(
            operator.allowed_actions(["Hangup", "Originate", "QueuePause", "CoreStatus"]),
            ["Hangup", "QueuePause", "CoreStatus"],
        )

    def test_single_token(self) -> None:
        """The --http-token-file form grants everything to its one token."""
        acl = AccessList.single_token("t0k")
        self.assertIs(acl.grant_for(b"Bearer t0k"), EVERYTHING)
        self.assertTrue(EVERYTHING.may_run("Originate", "any") and EVERYTHING.may_read("any"))

    def test_no_token_in_repr_or_description(self) -> None:
        """Neither the list's repr nor a grant's description shows a token or its hash."""
        acl = self.example()
        shown = repr(acl) + repr(acl.grants) + repr([g.describe() for g in acl.grants])
        for secret in (OPERATOR, WALLBOARD, WALLBOARD_SHA, "ab" * 32):
            self.assertNotIn(secret, shown)

    def test_load_from_file(self) -> None:
        """load_acl reads a file; a missing one is one clear problem."""
        path = self.write("acl.ini", f"[token:w]\nsha256 = {WALLBOARD_SHA}\nread = yes\n")
        self.assertEqual([g.name for g in load_acl(path).grants], ["w"])
        missing = os.path.join(self.dir, "none.ini")
        self.assertEqual(
            self.assertRaises(ConfigError, load_acl, missing).problems,
            [f"{missing}: cannot read the access list: No such file or directory"],
        )


class ProblemTests(ACLTestCase):
    """Every problem of the file is reported at once, with its line."""

    def test_all_problems(self) -> None:
        """Bad keys, scopes, hashes, files, duplicates and sections are all reported."""
        text = (
            "[token:a]\n"  # 1
            f"token-file = {self.operator_file}\n"  # 2
            "read = yes\n"  # 3
            "[token:b]\n"  # 4
            f"token-file = {self.operator_file}\n"  # 5
            "actions = Ping\n"  # 6
            "[token:c]\n"  # 7
            "sha256 = xyz\n"  # 8
            "read = perhaps\n"  # 9
            "actions = Ping, Hang up\n"  # 10
            "[token:d]\n"  # 11
            "read = yes\n"  # 12
            "scope = all\n"  # 13
            "[token:e]\n"  # 14
            f"sha256 = {WALLBOARD_SHA}\n"  # 15
            "[users]\n"  # 16
            "[token:f]\n"  # 17
            "token-file = /nonexistent/t\n"  # 18
            "read = yes\n"  # 19
        )
        self.assertEqual(
            self.problems(text),
            [
                "acl.ini:4: [token:b] has the same token as [token:a] (acl.ini:1)",
                "acl.ini:8: [token:c] sha256 must be 64 hexadecimal digits (the token's SHA-256)",
                "acl.ini:9: [token:c] read must be yes or no, not 'perhaps'",
                "acl.ini:10: [token:c] 'Hang up' is not an action name pattern "
                "(letters, digits, * ?)",
                "acl.ini:11: [token:d] needs exactly one of token-file and sha256",
                "acl.ini:13: [token:d] unknown key 'scope' "
                "(known: actions, pbx, read, sha256, token-file)",
                "acl.ini:14: [token:e] grants nothing: give read = yes or actions",
                "acl.ini:16: unknown section [users] (want [token:NAME], NAME of letters, "
                "digits, '_', '.' or '-')",
                "acl.ini:18: [token:f] token-file: cannot read /nonexistent/t: "
                "No such file or directory",
            ],
        )

    def test_problems_of_a_section_do_not_hide_others(self) -> None:
        """A section with an unknown key still has its other problems and duplicates found."""
        text = (
            f"[token:a]\nsha256 = {WALLBOARD_SHA}\nread = yes\nscope = all\n\n"  # 1-5
            f"[token:b]\nsha256 = {WALLBOARD_SHA}\nread = yes\n\n"  # 6-9
            "[token:c]\nread = maybe\nread = yes\ncolour = red\n"  # 10-13
        )
        self.assertEqual(
            self.problems(text),
            [
                "acl.ini:4: [token:a] unknown key 'scope' "
                "(known: actions, pbx, read, sha256, token-file)",
                "acl.ini:6: [token:b] has the same token as [token:a] (acl.ini:1)",
                "acl.ini:10: [token:c] needs exactly one of token-file and sha256",
                "acl.ini:11: [token:c] read is given 2 times",
                "acl.ini:13: [token:c] unknown key 'colour' "
                "(known: actions, pbx, read, sha256, token-file)",
            ],
        )

    def test_token_source(self) -> None:
        """A token needs exactly one of token-file and sha256."""
        both = f"[token:x]\ntoken-file = {self.operator_file}\nsha256 = {WALLBOARD_SHA}\nread=1\n"
        self.assertEqual(
            [self.problems("[token:x]\nread = yes\n"), self.problems(both)],
            [["acl.ini:1: [token:x] needs exactly one of token-file and sha256"]] * 2,
        )

    def test_empty_file(self) -> None:
        """A file with no section grants nothing and is refused."""
        self.assertEqual(self.problems("# nothing\n"), ["acl.ini: no [token:NAME] section"])

    def test_duplicate_section_and_key(self) -> None:
        """A section or a key given twice is reported where it repeats."""
        text = f"[token:x]\nsha256 = {WALLBOARD_SHA}\nread = yes\nread = no\n[token:x]\n"
        self.assertEqual(
            self.problems(text),
            [
                "acl.ini:3: [token:x] read is given 2 times",
                "acl.ini:5: [token:x] appears twice (first at line 1)",
            ],
        )
