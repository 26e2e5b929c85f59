"""
Tests for --http-acl and the ``[http] acl`` key: a good access list reaches
the HTTP tree; a bad one (missing, unknown scope, duplicate token, bad hash,
combined with a token file) stops the daemon at startup with every problem
named, and twistd never listens.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from tests.test_daemon_e2e import TWISTD
from tests.test_plugin import ROOT, keep_checkout_clean
from tests.test_tap import OptionsTestCase
from txami.daemon.acl import Grant

TOKEN = "acl-token-0001"
OTHER = "acl-token-0002"
OTHER_SHA = hashlib.sha256(OTHER.encode()).hexdigest()


class FlagTests(OptionsTestCase):
    """--http-acl FILE."""

    def setUp(self) -> None:
        super().setUp()
        self.env["TXAMI_SECRET"] = "s"
        self.token = self.file("op.token", f"{TOKEN}\n".encode())

    def acl(self, text: str) -> str:
        return self.file("acl.ini", text.encode())

    def good(self) -> str:
        return self.acl(
            f"[token:op]\ntoken-file = {self.token}\nread = yes\nactions = Hangup, Queue*\n"
            f"[token:board]\nsha256 = {OTHER_SHA}\nread = yes\n"
        )

    def test_file_and_hash_forms(self) -> None:
        """Both forms load; the grants reach the HTTP config, and a public port is allowed."""
        options = self.parse("-u", "a", "--http", "tcp:8088", "--http-acl", self.good())
        http = options.daemon_config.http
        assert http is not None and options.http_access is not None
        self.assertIs(http.access, options.http_access)
        self.assertEqual(
            options.http_access.grants,
            [Grant("op", read=True, actions=("hangup", "queue*")), Grant("board", read=True)],
        )
        found = options.http_access.grant_for(f"Bearer {OTHER}".encode())
        self.assertEqual(found and found.name, "board")
        self.assertIsNone(http.token)
        self.assertNotIn(TOKEN, repr(options) + repr(http))

    def test_needs_http_and_excludes_token_file(self) -> None:
        """--http-acl needs --http; it and --http-token-file exclude each other."""
        acl = self.good()
        self.refused("--http-acl needs --http", "-u", "a", "--http-acl", acl)
        self.refused(
            "give --http-token-file or --http-acl, not both "
            "(the access list can grant everything to a token)",
            "-u",
            "a",
            "--http",
            "tcp:0:interface=127.0.0.1",
            "--http-token-file",
            self.token,
            "--http-acl",
            acl,
        )

    def test_missing_file(self) -> None:
        """A file that cannot be read is named, with why."""
        missing = os.path.join(self.dir, "none.ini")
        self.refused(
            f"--http-acl {missing}:\n{missing}: cannot read the access list: "
            "No such file or directory",
            "-u",
            "a",
            "--http",
            "tcp:0:interface=127.0.0.1",
            "--http-acl",
            missing,
        )

    def test_every_problem_at_once(self) -> None:
        """Unknown scope, duplicate token, bad hash and unreadable token file: all reported."""
        acl = self.acl(
            f"[token:a]\ntoken-file = {self.token}\nread = yes\nscope = all\n"  # 1-4
            f"[token:b]\ntoken-file = {self.token}\nactions = Ping\n"  # 5-7
            "[token:c]\nsha256 = 1234\nread = yes\n"  # 8-10
            "[token:d]\ntoken-file = /nonexistent/t\nread = yes\n"  # 11-13
        )
        self.refused(
            f"--http-acl {acl}:\n"
            f"{acl}:4: [token:a] unknown key 'scope' "
            "(known: actions, pbx, read, sha256, token-file)\n"
            f"{acl}:5: [token:b] has the same token as [token:a] ({acl}:1)\n"
            f"{acl}:9: [token:c] sha256 must be 64 hexadecimal digits (the token's SHA-256)\n"
            f"{acl}:12: [token:d] token-file: cannot read /nonexistent/t: "
            "No such file or directory",
            "-u",
            "a",
            "--http",
            "tcp:0:interface=127.0.0.1",
            "--http-acl",
            acl,
        )
        duplicate = self.acl(
            f"[token:a]\ntoken-file = {self.token}\nread = yes\n"
            f"[token:b]\nsha256 = {hashlib.sha256(TOKEN.encode()).hexdigest()}\nread = yes\n"
        )
        self.refused(
            f"--http-acl {duplicate}:\n"
            f"{duplicate}:4: [token:b] has the same token as [token:a] ({duplicate}:1)",
            "-u",
            "a",
            "--http",
            "tcp:0:interface=127.0.0.1",
            "--http-acl",
            duplicate,
        )

    def test_not_with_config(self) -> None:
        """With --config, the access list belongs in its [http] section."""
        config = self.file("d.ini", b"[pbx:x]\nusername = a\n")
        with self.assertRaises(usage.UsageError) as caught:
            self.parse("--config", config, "--http-acl", self.good())
        self.assertEqual(
            str(caught.exception),
            "--config describes the PBXs and HTTP: --http-acl cannot be combined with it "
            "(put it in the file)",
        )


class ConfigFileTests(OptionsTestCase):
    """The ``acl`` key of ``[http]``."""

    def setUp(self) -> None:
        super().setUp()
        self.secret = self.file("secret", b"s\n")
        self.token = self.file("op.token", f"{TOKEN}\n".encode())

    def config(self, http: str) -> str:
        return self.file(
            "d.ini",
            f"[pbx:east]\nusername = a\nsecret-file = {self.secret}\n\n[http]\n{http}".encode(),
        )

    def test_acl_key(self) -> None:
        """acl = FILE loads the grants; listening beyond loopback is then allowed."""
        acl = self.file("acl.ini", f"[token:op]\ntoken-file = {self.token}\nread = yes\n".encode())
        options = self.parse("--config", self.config(f"listen = tcp:8088\nacl = {acl}\n"))
        http = options.daemon_config.http
        assert http is not None and http.access is not None
        self.assertEqual([g.name for g in http.access.grants], ["op"])

    def test_bad_acl_in_config(self) -> None:
        """The acl's problems are reported at the key's line, each with the acl's own line."""
        acl = self.file("acl.ini", b"[token:op]\nread = maybe\nsha256 = 00\n")
        path = self.config(f"listen = tcp:0:interface=127.0.0.1\nacl = {acl}\n")
        with self.assertRaises(usage.UsageError) as caught:
            self.parse("--config", path)
        self.assertEqual(
            str(caught.exception).splitlines(),
            [
                f"{path}:7: [http] acl: {acl}:2: [token:op] read must be yes or no, not 'maybe'",
                f"{path}:7: [http] acl: {acl}:3: [token:op] sha256 must be 64 hexadecimal "
                "digits (the token's SHA-256)",
            ],
        )

    def test_acl_and_token_file(self) -> None:
        """token-file and acl together are refused."""
        acl = self.file("acl.ini", f"[token:op]\ntoken-file = {self.token}\nread = yes\n".encode())
        path = self.config(
            f"listen = tcp:0:interface=127.0.0.1\ntoken-file = {self.token}\nacl = {acl}\n"
        )
        with self.assertRaises(usage.UsageError) as caught:
            self.parse("--config", path)
        self.assertEqual(
            str(caught.exception),
            f"{path}:8: [http] give token-file or acl, not both "
            "(acl can grant everything to a token)",
        )


class TwistdRefusesTests(SynchronousTestCase):
    """twistd itself, with a bad access list."""

    def test_twistd_does_not_start(self) -> None:
        """twistd exits 1 printing the problem (after its usage) and never starts the daemon."""
        keep_checkout_clean(self)
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        acl = os.path.join(directory, "acl.ini")
        with open(acl, "w") as f:
            f.write("[token:x]\nread = yes\n")
        logfile = os.path.join(directory, "twistd.log")
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                TWISTD,
                "-n",
                "--pidfile=",
                f"--logfile={logfile}",
                "txami",
                "--demo",
                "--http",
                "tcp:0:interface=127.0.0.1",
                "--http-acl",
                acl,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"twistd -n: --http-acl {acl}:\n", result.stdout)
        self.assertIn(
            f"{acl}:1: [token:x] needs exactly one of token-file and sha256", result.stdout
        )
        self.assertFalse(os.path.exists(logfile))
