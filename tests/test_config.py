"""Tests for txami.config: the [pbx:NAME] file shared by the command line and the daemon."""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from txami.config import (
    DEFAULT_TLS_PORT,
    SECRET_ENV,
    ConfigError,
    PBXConfig,
    load_config,
    parse_config,
    read_secret_file,
)


class ConfigTestCase(SynchronousTestCase):
    """Writes secret files in a temporary directory."""

    def setUp(self) -> None:
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.secret = self.write("east.secret", "s3cret-east\n")
        self.env = dict(os.environ)
        self.addCleanup(self.restore_env)
        os.environ.pop(SECRET_ENV, None)

    def restore_env(self) -> None:
        os.environ.clear()
        os.environ.update(self.env)

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def problems(self, text: str, **kwargs: object) -> list[str]:
        error = self.assertRaises(ConfigError, parse_config, text, "t.ini", **kwargs)
        return error.problems


class LoadTests(ConfigTestCase):
    """A good file loads into PBXConfig objects with the documented defaults."""

    def test_defaults(self) -> None:
        """A section with only username and secret-file gets localhost:5038, plain, events on."""
        config = parse_config(f"[pbx:east]\nusername = u\nsecret-file = {self.secret}\n", "t.ini")
        self.assertEqual(
            config.pbx("east"),
            PBXConfig(name="east", username="u", secret="s3cret-east", source="t.ini:1"),
        )

    def test_every_key(self) -> None:
        """Every key is read; tls-ca implies TLS and the TLS port."""
        ca = self.write("ca.pem", "x")
        text = (
            "# a comment\n[pbx:west]\nhost = 10.1.2.3\ntls-ca = " + ca + "\nusername = txami\n"
            f"secret-file = {self.secret}\nauth = md5\nevents = call,agent\n"
            "filter = Event: Hangup\nfilter = Event: Newchannel\n    Event: Newstate\n"
        )
        pbx = parse_config(text, "t.ini").pbx("west")
        self.assertEqual(
            (pbx.host, pbx.port, pbx.tls, pbx.tls_ca, pbx.auth, pbx.events, pbx.filters),
            (
                "10.1.2.3",
                DEFAULT_TLS_PORT,
                True,
                ca,
                "md5",
                "call,agent",
                ("Event: Hangup", "Event: Newchannel", "Event: Newstate"),
            ),
        )

    def test_sections_in_order_and_others_kept(self) -> None:
        """PBXs keep file order; other sections are kept with the line of each key."""
        text = (
            f"[pbx:b]\nusername = u\nsecret-file = {self.secret}\n"
            "[http]\nlisten = tcp:8080\n"
            f"[pbx:a]\nusername = u\nsecret-file = {self.secret}\n"
        )
        config = parse_config(text, "t.ini")
        self.assertEqual(list(config.pbxs), ["b", "a"])
        http = config.sections["http"]
        self.assertEqual((http.get("listen"), http.where("listen")), ("tcp:8080", "t.ini:5"))

    def test_secret_from_environment(self) -> None:
        """Without secret-file the secret comes from TXAMI_SECRET."""
        os.environ[SECRET_ENV] = "from-env"
        config = parse_config("[pbx:x]\nusername = u\n", "t.ini")
        self.assertEqual(config.pbx().secret, "from-env")

    def test_secret_never_in_repr(self) -> None:
        """The secret does not appear in the repr of a PBX or of the whole config."""
        config = parse_config(f"[pbx:x]\nusername = u\nsecret-file = {self.secret}\n", "t.ini")
        self.assertNotIn("s3cret", repr(config))
        self.assertNotIn("s3cret", repr(config.pbx("x")))

    def test_load_from_file(self) -> None:
        """load_config reads the file and names it in the source."""
        path = self.write("t.ini", f"[pbx:x]\nusername = u\nsecret-file = {self.secret}\n")
        self.assertEqual(load_config(path).pbx("x").source, f"{path}:1")

    def test_unreadable_file(self) -> None:
        """A missing file is one problem naming it."""
        error = self.assertRaises(ConfigError, load_config, os.path.join(self.dir, "none.ini"))
        self.assertEqual(
            error.problems,
            [f"{self.dir}/none.ini: cannot read the configuration: No such file or directory"],
        )

    def test_choosing_a_pbx(self) -> None:
        """pbx() without a name needs exactly one PBX; an unknown name lists the known ones."""
        text = (
            f"[pbx:a]\nusername = u\nsecret-file = {self.secret}\n"
            f"[pbx:b]\nusername = u\nsecret-file = {self.secret}\n"
        )
        config = parse_config(text, "t.ini")
        self.assertEqual(
            str(self.assertRaises(KeyError, config.pbx).args[0]),
            "t.ini has 2 PBXs: say which (a, b)",
        )
        self.assertEqual(
            str(self.assertRaises(KeyError, config.pbx, "c").args[0]),
            "t.ini has no [pbx:c] (it has: a, b)",
        )


class ProblemTests(ConfigTestCase):
    """Every problem is reported at once, in file order, as FILE:LINE: message."""

    def test_all_problems_at_once(self) -> None:
        """Problems of several sections and keys come together, sorted by line."""
        text = (
            "[pbx:west]\n"  # 1
            "username = u\n"  # 2
            "port = 99999\n"  # 3
            "auth = sha\n"  # 4
            "secret-file = /nonexistent/x\n"  # 5
            "bogus = 1\n"  # 6
            "events = on off\n"  # 7
            "tls = maybe\n"  # 8
            "[pbx:bad name]\n"  # 9
            "[pbx:west]\n"  # 10
            "[redis]\n"  # 11
        )
        self.assertEqual(
            self.problems(text, known_sections=frozenset({"http"})),
            [
                "t.ini:3: [pbx:west] port must be a number from 1 to 65535, not '99999'",
                "t.ini:4: [pbx:west] auth must be plain or md5, not 'sha'",
                "t.ini:5: [pbx:west] secret-file: cannot read /nonexistent/x: "
                "No such file or directory",
                "t.ini:6: [pbx:west] unknown key 'bogus' (known: auth, events, filter, host, "
                "port, secret-file, tls, tls-ca, username)",
                "t.ini:7: [pbx:west] events must be on, off or classes such as call,system, "
                "not 'on off'",
                "t.ini:8: [pbx:west] tls must be yes or no, not 'maybe'",
                "t.ini:9: [pbx:bad name]: a PBX name is 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit",
                "t.ini:10: [pbx:west] appears twice (first at line 1)",
                "t.ini:11: unknown section [redis] (known: pbx:NAME, http)",
            ],
        )

    def test_missing_username_and_secret(self) -> None:
        """A section without username or secret names the section's line."""
        self.assertEqual(
            self.problems("\n[pbx:x]\nhost = h\n"),
            [
                "t.ini:2: [pbx:x] username is required (the AMI user from manager.conf)",
                f"t.ini:2: [pbx:x] has no secret-file, and {SECRET_ENV} is not set",
            ],
        )

    def test_repeated_and_multi_line_keys(self) -> None:
        """A key other than filter may appear once and hold one line."""
        text = (
            f"[pbx:x]\nusername = u\nsecret-file = {self.secret}\n"
            "host = a\nhost = b\nauth = plain\n  md5\n"
        )
        self.assertEqual(
            self.problems(text),
            [
                "t.ini:4: [pbx:x] host is given 2 times",
                "t.ini:6: [pbx:x] auth must be one line",
            ],
        )

    def test_key_outside_a_section(self) -> None:
        """A key before any section header is reported with its line."""
        self.assertEqual(self.problems("host = h\n"), ["t.ini:1: a key before any [section]"])

    def test_garbage_line(self) -> None:
        """A line that is neither a header nor key = value is reported."""
        self.assertEqual(
            self.problems("[pbx:x]\nusername = u\njust words\n"),
            ["t.ini:3: not a key = value line: 'just words'"],
        )

    def test_nul_refused(self) -> None:
        """A NUL byte anywhere refuses the file."""
        problems = self.problems("[pbx:x]\nusername = u\0\n")
        self.assertEqual(problems, ["t.ini: the file holds a NUL byte"])

    def test_message_is_every_problem(self) -> None:
        """str(ConfigError) is the problems, one per line."""
        self.assertEqual(str(ConfigError(["a:1: x", "a:2: y"])), "a:1: x\na:2: y")


class SecretFileTests(ConfigTestCase):
    """read_secret_file: one line of UTF-8, errors that never show the content."""

    def test_first_line(self) -> None:
        """The first line, stripped, is the secret; trailing blank lines are fine."""
        self.assertEqual(read_secret_file(self.write("s", "  abc \n\n")), "abc")

    def test_refusals(self) -> None:
        """Empty, several lines, not UTF-8: each refused with the path only."""
        empty = self.write("e", "\n")
        two = self.write("t", "abc\ndef\n")
        binary = os.path.join(self.dir, "b")
        with open(binary, "wb") as f:
            f.write(b"\xff\xfe")
        messages = [
            str(self.assertRaises(ValueError, read_secret_file, p)) for p in (empty, two, binary)
        ]
        self.assertEqual(
            messages,
            [f"{empty} is empty", f"{two} must hold one line", f"{binary} is not UTF-8 text"],
        )
        self.assertNotIn("def", messages[1])
