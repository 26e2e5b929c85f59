"""Tests for txami.daemon.config and ``twistd txami --config``: the file's rules and its errors."""

from __future__ import annotations

import io
import os

from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from txami.config import ConfigError
from txami.daemon.config import (
    HTTPConfig,
    RedisConfig,
    check_http_exposure,
    load_daemon_config,
    parse_redis_url,
)
from txami.daemon.options import build_service
from txami.daemon.session import PBXSession
from txami.tap import Options


class ConfigFileTestCase(SynchronousTestCase):
    """Files in a temporary directory."""

    def setUp(self) -> None:
        self.dir = os.path.abspath(self.mktemp())
        os.mkdir(self.dir)
        self.patch(os, "environ", {})
        self.secret = self.write("pbx.secret", "s3cret\n")
        self.token = self.write("http.token", "t0ken\n")

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def pbx(self, name: str, port: int = 5038) -> str:
        return (
            f"[pbx:{name}]\nhost = 127.0.0.1\nport = {port}\n"
            f"username = u\nsecret-file = {self.secret}\n\n"
        )

    def problems(self, text: str) -> list[str]:
        path = self.write("t.ini", text)
        return self.assertRaises(ConfigError, load_daemon_config, path).problems


class LoadTests(ConfigFileTestCase):
    """A good file, and the defaults of [http] and [redis]."""

    def test_three_pbxs_http_and_redis(self) -> None:
        """PBXs in file order, [http] with its token, [redis] from its URL and keys."""
        path = self.write(
            "t.ini",
            self.pbx("east")
            + self.pbx("west", 5040)
            + self.pbx("north")
            + f"[http]\nlisten = tcp:8088\ntoken-file = {self.token}\n\n"
            + "[redis]\nurl = redis://cache.example:6390/3\nprefix = pbxs\nmaxlen = 0\n"
            + "window = 16\nactions = no\nconsumer = txami-a\nclaim-idle = 0\n",
        )
        config = load_daemon_config(path)
        self.assertEqual(list(config.pbxs), ["east", "west", "north"])
        self.assertEqual(config.pbxs["west"].port, 5040)
        self.assertEqual(config.http, HTTPConfig("tcp:8088", "t0ken", f"{path}:19"))
        redis = config.redis
        assert redis is not None
        self.assertEqual(
            (redis.host, redis.port, redis.db, redis.prefix, redis.maxlen, redis.window),
            ("cache.example", 6390, 3, "pbxs", 0, 16),
        )
        self.assertEqual((redis.actions, redis.consumer, redis.tls), (False, "txami-a", False))
        self.assertEqual(redis.claim_idle, 0)
        self.assertNotIn("t0ken", repr(config))

    def test_redis_defaults(self) -> None:
        """Without keys but url, [redis] has the documented defaults."""
        path = self.write("t.ini", self.pbx("east") + "[redis]\nurl = redis://localhost\n")
        redis = load_daemon_config(path).redis
        self.assertEqual(
            redis,
            RedisConfig(
                host="localhost",
                port=6379,
                source=f"{path}:7",
                consumer=redis.consumer if redis else "",
            ),
        )
        assert redis is not None
        self.assertTrue(redis.consumer.startswith("txami-"))
        self.assertEqual((redis.guard_ttl, redis.claim_idle, redis.window), (86400, 60, 4096))

    def test_redis_password_is_secret(self) -> None:
        """The password comes from its file and never shows in a repr."""
        secret = self.write("redis.secret", "hunter2\n")
        path = self.write(
            "t.ini", self.pbx("east") + f"[redis]\nurl = rediss://r\npassword-file = {secret}\n"
        )
        redis = load_daemon_config(path).redis
        assert redis is not None
        self.assertEqual((redis.password, redis.tls), ("hunter2", True))
        self.assertNotIn("hunter2", repr(redis))


class ProblemTests(ConfigFileTestCase):
    """Every problem of a file, reported at once with its line."""

    def test_all_at_once(self) -> None:
        """PBX, [http] and [redis] problems come together, in file order, with FILE:LINE."""
        text = (
            "[pbx:east]\nport = 99999\nusername = u\nsecret-file = /nonexistent\n\n"
            "[http]\nlisten = tcp:8088\n\n"
            "[redis]\nurl = http://x\nwindow = 0\nbuffer-events = 10\ntotal-buffer-events = 5\n"
            "colour = blue\n\n"
            "[smtp]\nhost = x\n"
        )
        path = os.path.join(self.dir, "t.ini")
        self.assertEqual(
            self.problems(text),
            [
                f"{path}:2: [pbx:east] port must be a number from 1 to 65535, not '99999'",
                f"{path}:4: [pbx:east] secret-file: cannot read /nonexistent: "
                "No such file or directory",
                f"{path}:7: [http] listen listens beyond loopback: give a token file or an acl, "
                "or listen on interface=127.0.0.1",
                f"{path}:10: [redis] url must start with redis:// or rediss://, not 'http://x'",
                f"{path}:11: [redis] window must be a whole number of at least 1, not '0'",
                f"{path}:13: [redis] total-buffer-events must be at least buffer-events",
                f"{path}:14: [redis] unknown key 'colour' (known: actions, buffer-bytes, "
                "buffer-events, claim-idle, consumer, group, guard-ttl, maxlen, password-file, "
                "prefix, tls, tls-ca, total-buffer-bytes, total-buffer-events, url, window)",
                f"{path}:16: unknown section [smtp] (known: pbx:NAME, http, redis)",
            ],
        )

    def test_no_pbx(self) -> None:
        """A file without any [pbx:NAME] is refused."""
        path = os.path.join(self.dir, "t.ini")
        self.assertEqual(
            self.problems("[redis]\nurl = redis://x\n"),
            [f"{path}: no [pbx:NAME] section: the daemon needs at least one PBX"],
        )

    def test_no_pbx_with_other_problems(self) -> None:
        """No [pbx:NAME] is reported together with the other sections' problems."""
        path = os.path.join(self.dir, "t.ini")
        self.assertEqual(
            self.problems("[redis]\nurl = http://x\n"),
            [
                f"{path}: no [pbx:NAME] section: the daemon needs at least one PBX",
                f"{path}:2: [redis] url must start with redis:// or rediss://, not 'http://x'",
            ],
        )

    def test_bad_certificate_with_other_problems(self) -> None:
        """A tls-ca that holds no certificate is reported, at its line, with the rest."""
        pem = self.write("ca.pem", "not a certificate\n")
        path = os.path.join(self.dir, "t.ini")
        text = (
            f"[pbx:east]\nusername = u\nsecret-file = {self.secret}\ntls-ca = {pem}\n\n"
            "[pbx:west]\nport = 0\nusername = u\n"
            f"secret-file = {self.secret}\n"
        )
        self.assertEqual(
            self.problems(text),
            [
                f"{path}:4: [pbx:east] tls-ca {pem} holds no valid PEM certificate",
                f"{path}:7: [pbx:west] port must be a number from 1 to 65535, not '0'",
            ],
        )

    def test_required_keys(self) -> None:
        """[http] needs listen and [redis] needs url."""
        path = os.path.join(self.dir, "t.ini")
        self.assertEqual(
            self.problems(self.pbx("east") + "[http]\n[redis]\n"),
            [
                f"{path}:7: [http] listen is required (an endpoint such as "
                "tcp:8088:interface=127.0.0.1)",
                f"{path}:8: [redis] url is required, as redis://host:port/db",
            ],
        )

    def test_redis_urls(self) -> None:
        """parse_redis_url: defaults, TLS, and what it refuses."""
        self.assertEqual(parse_redis_url("redis://h"), ("h", 6379, 0, False))
        self.assertEqual(parse_redis_url("rediss://h:7000/2"), ("h", 7000, 2, True))
        for url, why in [
            ("redis://:pw@h", "url must not hold a user or password: use password-file"),
            ("redis://h/x", "url's path must be a database number, not '/x'"),
            ("redis:///0", "url has no host: 'redis:///0'"),
            ("redis://h?db=1", "url must not have a query or fragment: use the section's keys"),
        ]:
            with self.assertRaises(ValueError) as caught:
                parse_redis_url(url)
            self.assertEqual(str(caught.exception), why)

    def test_http_exposure(self) -> None:
        """Loopback and unix sockets need no token; anything else does."""
        self.assertIsNone(check_http_exposure("tcp:80:interface=127.0.0.1", False))
        self.assertIsNone(check_http_exposure("unix:/run/txami.sock", False))
        self.assertIsNone(check_http_exposure("tcp:80", True))
        self.assertIsNotNone(check_http_exposure("tcp:80", False))


class OptionsConfigTests(ConfigFileTestCase):
    """``--config FILE`` on the command line."""

    def test_config_builds_every_pbx(self) -> None:
        """Each [pbx:NAME] becomes a session named after it, connecting to its host."""
        path = self.write("t.ini", self.pbx("east", 5001) + self.pbx("west", 5002))
        options = Options()
        options.parseOptions(["--config", path])
        reactor = MemoryReactorClock()
        bridge = build_service(options, reactor, stdout=io.StringIO())
        self.assertEqual(list(bridge.sessions), ["east", "west"])
        self.assertEqual([type(s) for s in bridge], [PBXSession, PBXSession])
        bridge.startService()
        self.assertEqual(
            [c[:2] for c in reactor.tcpClients], [("127.0.0.1", 5001), ("127.0.0.1", 5002)]
        )
        self.successResultOf(bridge.stopService())

    def test_problems_stop_twistd(self) -> None:
        """A bad file is a UsageError listing every problem, one per line."""
        path = self.write("t.ini", "[pbx:east]\nport = x\n")
        options = Options()
        with self.assertRaises(usage.UsageError) as caught:
            options.parseOptions(["--config", path])
        self.assertEqual(
            str(caught.exception).splitlines(),
            [
                f"{path}:1: [pbx:east] username is required (the AMI user from manager.conf)",
                f"{path}:1: [pbx:east] has no secret-file, and TXAMI_SECRET is not set",
                f"{path}:2: [pbx:east] port must be a number from 1 to 65535, not 'x'",
            ],
        )

    def test_flags_conflict_with_config(self) -> None:
        """The PBX and HTTP flags cannot be combined with --config."""
        path = self.write("t.ini", self.pbx("east"))
        for flags in (["--host", "x"], ["--http", "tcp:1"], ["--demo"], ["--filter", "A: b"]):
            options = Options()
            with self.assertRaises(usage.UsageError) as caught:
                options.parseOptions(["--config", path, *flags])
            self.assertEqual(
                str(caught.exception),
                f"--config describes the PBXs and HTTP: {flags[0]} cannot be combined with it "
                "(put it in the file)",
            )

    def test_flags_describe_pbx_default(self) -> None:
        """Without --config the flags make one PBX called default."""
        self.patch(os, "environ", {"TXAMI_SECRET": "x"})
        options = Options()
        options.parseOptions(["-u", "admin", "-p", "5050"])
        self.assertEqual(list(options.daemon_config.pbxs), ["default"])
        self.assertEqual(options.daemon_config.pbxs["default"].port, 5050)
