"""
The call board in a real browser, as a person would use it: ``twistd -n txami
--demo --http ... --http-acl FILE`` as a real process, Debian's headless
Chromium driven by Selenium through Debian's chromedriver (nothing is
downloaded).  The operator signs in, sees a demo call appear and end, hangs
up a long call and sees it gone from the board and from ``/state``; a
read-only token sees no action button and gets 403 on a forced POST.  Without
a token, the board works with no sign-in, and a page of another origin cannot
hang up a call through the browser.  A
screenshot of the board is saved in the test's temporary directory (its path
is printed).  Every wait has a deadline; nothing sleeps.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.test_daemon_e2e import TWISTD
from tests.test_plugin import ROOT, keep_checkout_clean

OPERATOR = "board-operator-token-31f0"
WALLBOARD = "board-wallboard-token-77c2"
#: How long the daemon, the browser and each step may take.
DEADLINE = 30.0
#: Chromium's flags: headless, quiet, nothing fetched from the network, no first-run UI.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--window-size=1280,900",
)


def _find(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name) or (
            name if os.path.isabs(name) and os.access(name, os.X_OK) else None
        )
        if found:
            return found
    return None


CHROMIUM = _find(("chromium", "/usr/bin/chromium"))
CHROMEDRIVER = _find(("chromedriver", "/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"))

try:
    import selenium  # noqa: F401
except ImportError:
    SKIP: str | None = "selenium is not installed (pip install -e '.[test]')"
else:
    if CHROMIUM is None:
        SKIP = "no chromium (apt-get install chromium chromium-driver)"
    elif CHROMEDRIVER is None:
        SKIP = "no chromedriver (apt-get install chromium-driver)"
    else:
        SKIP = None


def wait_until(what: str, condition: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    """Poll ``condition`` until it returns something true (returned); fail after ``deadline``."""
    end = time.monotonic() + deadline
    last: BaseException | None = None
    while time.monotonic() < end:
        try:
            found = condition()
        except Exception as error:  # a stale element, a refused connection: try again
            last = error
            found = None
        if found:
            return found
        time.sleep(0.05)  # a polling interval, not a wait for time to pass
    raise AssertionError(
        f"timed out waiting for {what}" + (f" (last error: {last!r})" if last else "")
    )


class BoardInBrowserTests(SynchronousTestCase):
    """The board of a demo daemon in headless Chromium."""

    skip = SKIP
    #: The token the test reads /state with (None: the daemon has none).
    token: str | None = OPERATOR

    def setUp(self) -> None:
        keep_checkout_clean(self)
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.started = time.monotonic()

    def write_acl(self) -> str:
        """The operator's and the wallboard's access list; its path."""
        token = os.path.join(self.dir, "operator.token")
        with open(token, "w") as f:
            f.write(OPERATOR + "\n")
        acl = os.path.join(self.dir, "acl.ini")
        digest = hashlib.sha256(WALLBOARD.encode()).hexdigest()
        with open(acl, "w") as f:
            f.write(
                f"[token:operator]\ntoken-file = {token}\nread = yes\n"
                "actions = Ping, *Status, Hangup, Redirect, Originate, QueuePause\n\n"
                f"[token:wallboard]\nsha256 = {digest}\nread = yes\n"
            )
        return acl

    def start(self, *more: str) -> None:
        """Start the demo daemon (with options ``more``) and the browser."""
        self.log = os.path.join(self.dir, "twistd.log")
        self.daemon = subprocess.Popen(
            [
                sys.executable,
                "-c",
                TWISTD,
                "-n",
                "--pidfile=",
                f"--logfile={self.log}",
                "txami",
                "--demo",
                "--http",
                "tcp:0:interface=127.0.0.1",
                *more,
            ],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(self._stop_daemon)
        port = wait_until("the daemon's HTTP port", self._port)
        self.base = f"http://127.0.0.1:{port}"
        wait_until("the demo PBX to be synced", lambda: self.state()["synced"])
        self.browser = self._browser()

    def _port(self) -> int | None:
        if self.daemon.poll() is not None:
            raise AssertionError(f"the daemon exited with {self.daemon.returncode}")
        if not os.path.exists(self.log):
            return None
        with open(self.log) as f:
            found = re.search(r"HTTP bridge listening on .*port=(\d+)", f.read())
        return int(found.group(1)) if found else None

    def _stop_daemon(self) -> None:
        if self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait(timeout=DEADLINE)

    def _browser(self) -> Any:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        assert CHROMIUM is not None and CHROMEDRIVER is not None
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        profile = os.path.join(self.dir, "chromium-profile")
        os.mkdir(profile)
        options.add_argument(f"--user-data-dir={profile}")
        service = Service(
            executable_path=CHROMEDRIVER, log_output=os.path.join(self.dir, "chromedriver.log")
        )
        browser = webdriver.Chrome(service=service, options=options)
        self.addCleanup(browser.quit)
        browser.set_script_timeout(DEADLINE)
        return browser

    # --- the daemon, as a program reads it -------------------------------------------------

    def http(
        self, path: str, token: str | None = OPERATOR, body: bytes | None = None
    ) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.base + path,
            data=body,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            method="POST" if body is not None else "GET",
        )
        try:
            with urllib.request.urlopen(request, timeout=DEADLINE) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def state(self) -> Any:
        code, state = self.http("/state", self.token)
        return state if code == 200 else {"synced": False}

    # --- the board, as a person sees it ----------------------------------------------------

    def css(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        found: list[Any] = self.browser.find_elements(By.CSS_SELECTOR, selector)
        return found

    def calls(self) -> dict[str, str]:
        """The calls on the board, read at once: id -> title (its first channel's caller ID)."""
        pairs = self.browser.execute_script(
            "return Array.from(document.querySelectorAll('article[data-call]'), "
            "(card) => [card.dataset.call, card.querySelector('.card-title').textContent]);"
        )
        return dict(pairs)

    def sign_in(self, token: str) -> None:
        field = wait_until(
            "the token field", lambda: [f for f in self.css("#token") if f.is_displayed()]
        )[0]
        field.send_keys(token)
        self.css("#login button[type=submit]")[0].click()
        wait_until("the board to show calls", lambda: self.calls())

    def test_operator_and_wallboard(self) -> None:
        """Sign in, watch a call come and go, hang one up, then look with a read-only token."""
        self.start("--http-acl", self.write_acl())
        browser = self.browser
        browser.get(self.base + "/")
        self.assertEqual(browser.title, "txami board")
        self.sign_in(OPERATOR)
        self.assertEqual(self.css("#link")[0].text, "live")
        self.assertTrue(self.css("#call-button")[0].is_displayed())

        # A short demo call appears, then ends.
        seen = set(self.calls())
        short = wait_until(
            "a new short demo call",
            lambda: [
                c for c, title in self.calls().items() if c not in seen and "Demo Short" in title
            ],
        )[0]
        wait_until("the short call to end", lambda: short not in self.calls())

        # Hang up a long call from its first channel's button.
        long_call = wait_until(
            "a long demo call",
            lambda: [c for c, title in self.calls().items() if "Demo Long" in title],
        )[0]
        channel = self.css(f'article[data-call="{long_call}"] li[data-channel]')[0]
        uniqueid = channel.get_attribute("data-channel")
        self.assertIn(uniqueid, self.state()["channels"])
        channel.find_element("css selector", 'button[data-action="hangup"]').click()
        wait_until("the call to leave the board", lambda: long_call not in self.calls())
        wait_until(
            "a toast saying it was done",
            lambda: [t for t in self.css(".toast") if "done" in t.text],
        )
        self.assertNotIn(uniqueid, self.state()["channels"])
        self.assertNotIn(long_call, self.state()["calls"])

        # Queues, lamps and health are drawn; the screenshot is the test's artifact.
        wait_until(
            "queue support's members",
            lambda: len(self.css('[data-queue="support"] [data-member]')) == 2,
        )
        self.assertTrue(self.css("#hints li"))
        shot = os.path.join(self.dir, "board.png")
        self.assertTrue(browser.save_screenshot(shot))
        print(f"\nscreenshot of the board: {shot}")

        # A read-only token: the same board, no buttons, and the daemon refuses its POST.
        self.css("#forget")[0].click()
        self.sign_in(WALLBOARD)
        wait_until("the wallboard's name", lambda: self.css("#who")[0].text == "token: wallboard")
        self.assertEqual(self.css("button[data-action]"), [])
        self.assertFalse(self.css("#call-button")[0].is_displayed())
        target = self.css("li[data-channel]")[0].get_attribute("data-channel")
        name = self.state()["channels"][target]["name"]
        forced = browser.execute_async_script(
            """
            const [name, done] = arguments;
            fetch("/pbx/default/actions/Hangup", {
              method: "POST",
              headers: {
                "Authorization": "Bearer " + sessionStorage.getItem("txami.board.token"),
                "Content-Type": "application/json",
              },
              body: JSON.stringify({Channel: name}),
            }).then(async (r) => done([r.status, await r.json()]), (e) => done([0, String(e)]));
            """,
            name,
        )
        self.assertEqual(
            forced,
            [
                403,
                {
                    "error": "forbidden",
                    "message": "the token 'wallboard' may not run Hangup on PBX 'default'",
                    "token": "wallboard",
                    "refused": {"action": "Hangup", "pbx": "default"},
                },
            ],
        )
        self.assertIn(target, self.state()["channels"])

        # The daemon stops cleanly, and no token reached its log.
        self._stop_daemon()
        self.assertEqual(self.daemon.returncode, -signal.SIGTERM)
        with open(self.log) as f:
            log = f.read()
        self.assertIn("Server Shut Down.", log)
        self.assertNotIn("Traceback", log)
        for secret in (OPERATOR, WALLBOARD):
            self.assertNotIn(secret, log)
        print(f"the browser test took {time.monotonic() - self.started:.1f} s")

    def test_without_a_token(self) -> None:
        """No token: the board needs no sign-in and hangs up; another origin's POST is 403."""
        self.token = None
        self.start()
        browser = self.browser
        browser.get(self.base.replace("127.0.0.1", "localhost") + "/")
        wait_until("the board to show calls", lambda: self.calls())
        self.assertFalse(self.css("#login")[0].is_displayed())
        channel = wait_until(
            "a long demo call's channel",
            lambda: [c for c in self.css("li[data-channel]") if "Demo Long" in c.text],
        )[0]
        uniqueid = channel.get_attribute("data-channel")
        channel.find_element("css selector", 'button[data-action="hangup"]').click()
        wait_until("the channel to leave /state", lambda: uniqueid not in self.state()["channels"])

        # For a page at localhost (not the board, whose policy allows no other origin),
        # 127.0.0.1 is another origin: a text/plain POST needs no preflight, so only the
        # daemon's own check stands between the page and the PBX.
        browser.get(self.base.replace("127.0.0.1", "localhost") + "/whoami")
        target = wait_until(
            "another long demo call's channel",
            lambda: [
                uniqueid
                for uniqueid, channel in self.state()["channels"].items()
                if "Demo Long" in channel["caller_id_name"]
            ],
        )[0]
        forced = browser.execute_async_script(
            """
            const [url, name, done] = arguments;
            fetch(url, {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                        body: JSON.stringify({Channel: name})})
              .then((r) => done(r.type), (e) => done(String(e)));
            """,
            self.base + "/actions/Hangup",
            self.state()["channels"][target]["name"],
        )
        self.assertEqual(forced, "opaque")  # sent; a page never sees the answer

        def refused() -> bool:
            with open(self.log) as f:
                return '"POST /actions/Hangup HTTP/1.1" 403 ' in f.read()

        wait_until("the daemon to refuse the cross-origin POST", refused)
        self.assertIn(target, self.state()["channels"])
        print(f"\nthe tokenless browser test took {time.monotonic() - self.started:.1f} s")
