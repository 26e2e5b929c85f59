"""
The call board: a page served by the daemon (``GET /`` from a browser), and
``GET /whoami``, which tells the page what its token may do.

The page is three static files of package data (``txami/daemon/static/``:
``board.html``, ``board.css``, ``board.js``): plain HTML, CSS and
JavaScript, no framework, no build step, nothing fetched from elsewhere.
They hold no data, so they are served without a token; the page asks for
the token once (kept in the tab's ``sessionStorage``), sends it as
``Authorization: Bearer`` with every request, reads
``/pbx/NAME/state/stream`` with ``fetch`` (``EventSource`` cannot send
headers), and shows only the buttons that ``/whoami`` says the token may use.
The guide is ``docs/board.rst``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files

from twisted.web.resource import IResource

from txami.daemon.web import HTTPRequest, _JSONResource, _NotFound, _write_json, grant_of

__all__ = ["BOARD_ACTIONS", "BOARD_FILES", "BoardFiles", "WhoAmIResource"]

#: The actions the board's buttons send: hang up, redirect, click to call, (un)pause a member.
BOARD_ACTIONS = ("Hangup", "Redirect", "Originate", "QueuePause")

#: The board's files (in ``txami/daemon/static/``) and their content types.
BOARD_FILES = {
    "board.html": b"text/html; charset=utf-8",
    "board.css": b"text/css; charset=utf-8",
    "board.js": b"text/javascript; charset=utf-8",
}

# Nothing but the daemon itself: no inline script, no other origin, no framing.
_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    b"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _read(name: str) -> bytes:
    return (files("txami.daemon") / "static" / name).read_bytes()


class _StaticFile(_JSONResource):
    """One of the board's files, read once."""

    isLeaf = True

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.content_type = BOARD_FILES[name]
        self.body = _read(name)

    def render_GET(self, request: HTTPRequest) -> bytes:
        request.setHeader(b"content-type", self.content_type)
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"referrer-policy", b"no-referrer")
        request.setHeader(b"content-security-policy", _POLICY)
        request.setHeader(b"x-frame-options", b"DENY")
        return self.body


class BoardFiles(_JSONResource):
    """``/board/``: the page (also at ``/board/`` itself) and its style sheet and script."""

    def __init__(self) -> None:
        super().__init__()
        #: The page, which the root also serves at ``GET /`` to browsers.
        self.page = _StaticFile("board.html")
        for name in BOARD_FILES:
            self.putChild(
                name.encode("ascii"), self.page if name == "board.html" else _StaticFile(name)
            )

    def getChild(self, path: bytes, request: HTTPRequest) -> IResource:
        return self.page if path == b"" else _NotFound()

    def render_GET(self, request: HTTPRequest) -> bytes:
        return self.page.render_GET(request)


class WhoAmIResource(_JSONResource):
    """
    ``GET /whoami``: the request's grant (`txami.daemon.acl.Grant.describe`:
    its name, ``read``, ``actions`` patterns and ``pbx`` patterns, never the
    token) and, for each PBX the token may use, whether it may read it and
    which of `BOARD_ACTIONS` it may run there::

        {"name": "operator", "read": true, "actions": ["hangup", "redirect"],
         "pbx": ["*"], "pbxs": {"default": {"read": true, "actions": ["Hangup", "Redirect"]}}}
    """

    isLeaf = True

    def __init__(self, pbxs: Sequence[str]) -> None:
        super().__init__()
        self._pbxs = list(pbxs)

    def render_GET(self, request: HTTPRequest) -> bytes:
        grant = grant_of(request)
        if grant is None:
            return _write_json(request, 403, {"error": "forbidden", "message": "no grant"})
        body = grant.describe()
        body["pbxs"] = {
            name: {
                "read": grant.may_read(name),
                "actions": grant.allowed_actions(BOARD_ACTIONS, name),
            }
            for name in self._pbxs
            if grant.may_use(name)
        }
        return _write_json(request, 200, body)
