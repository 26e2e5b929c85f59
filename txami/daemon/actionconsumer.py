"""
`ActionConsumer`: AMI actions requested through Redis Streams.

Each PBX has a request stream, ``<prefix>:{NAME}:actions``, read with a
consumer group (``[redis] group``, created at start if missing, from the
stream's beginning) on a connection of its own, since ``XREADGROUP ...
BLOCK`` holds its connection.  A request entry has the fields:

``id``
    the caller's request id (it comes back in the reply);
``action``
    the action's name (Login, Logoff, Challenge, Events, Filter and WaitEvent are refused);
``headers``
    a JSON object of headers (a list repeats a header), as the HTTP bridge takes;
``reply_to``
    the stream the reply is added to;
``deadline``
    epoch milliseconds after which the action must not be sent (optional).

The reply, added to ``reply_to``, has ``id``, ``outcome`` (``ok``,
``error``, ``timeout``, ``expired`` or ``unknown``) and ``json`` (the
response and its list items, as the HTTP bridge returns them); then the
request is acknowledged (``XACK``).

A request that was delivered but not acknowledged (the daemon was killed, or
Redis went away) is delivered again when the daemon reads its pending
entries at the next start.  An action with side effects must not run twice:
before sending it, the daemon sets ``<prefix>:{NAME}:guard:<id>`` with
``SET NX``; a request whose guard already exists is answered ``unknown``
and not sent.  Read-only actions (`READ_ONLY_ACTIONS`) are not guarded:
they are simply run again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from txami.actions import UNTAGGED_ITEMS
from txami.daemon.config import RedisConfig
from txami.daemon.entries import actions_key, events_key, guard_key
from txami.daemon.redisconn import RedisConnection, RedisError
from txami.daemon.session import PBXSession
from txami.daemon.web import check_action_headers, check_action_name, parse_headers
from txami.errors import ActionTimeout, AMIError, ConnectionLost, NotConnected
from txami.jsonform import dumps, message_dict
from txami.message import Message

__all__ = ["READ_ONLY_ACTIONS", "ActionConsumer"]

_log = Logger(namespace="txami.daemon.actionconsumer")

#: Actions that only read (lower-case): redelivered, they are run again rather
#: than answered ``unknown``.  Every other action is guarded.
READ_ONLY_ACTIONS = frozenset(
    {
        "agents",
        "bridgeinfo",
        "bridgelist",
        "confbridgelist",
        "confbridgelistrooms",
        "coresettings",
        "coreshowchannels",
        "corestatus",
        "dbget",
        "devicestatelist",
        "extensionstate",
        "extensionstatelist",
        "getconfig",
        "getconfigjson",
        "getvar",
        "iaxpeerlist",
        "iaxpeers",
        "iaxregistry",
        "listcategories",
        "listcommands",
        "mailboxcount",
        "mailboxstatus",
        "parkedcalls",
        "parkinglots",
        "ping",
        "pjsipshowcontacts",
        "pjsipshowendpoint",
        "pjsipshowendpoints",
        "pjsipshowregistrationsinbound",
        "pjsipshowregistrationsoutbound",
        "presencestate",
        "presencestatelist",
        "queuestatus",
        "queuesummary",
        "showdialplan",
        "sippeers",
        "sipshowpeer",
        "status",
        "voicemailuserslist",
    }
)
#: The longest action timeout a request may ask for (seconds), and the default.
MAX_ACTION_TIMEOUT = 3600.0
DEFAULT_ACTION_TIMEOUT = 30.0
#: Replies kept in a reply stream (``MAXLEN ~``).
REPLY_MAXLEN = "10000"


class ActionConsumer(Service):
    """
    Reads every PBX's request stream on ``reader`` and answers on ``writer``;
    see the module doc.  At most ``max_active`` requests run at once.
    """

    def __init__(
        self,
        clock: IReactorTime,
        reader: RedisConnection,
        writer: RedisConnection,
        sessions: Mapping[str, PBXSession],
        config: RedisConfig,
        *,
        max_active: int = 64,
        block_ms: int = 5000,
        count: int = 64,
    ) -> None:
        self.clock = clock
        self.reader = reader
        self.writer = writer
        self.sessions = dict(sessions)
        self.config = config
        self.max_active = max_active
        self.block_ms = block_ms
        self.count = count
        self._keys = {actions_key(config.prefix, name): name for name in self.sessions}
        self._own_streams = set(self._keys) | {
            events_key(config.prefix, name) for name in self.sessions
        }
        #: ``(stream, entry id)`` of the requests running now.
        self.active: set[tuple[str, str]] = set()
        self._generation = 0
        self._reading = False
        self._stalled = False
        self._cursors: dict[str, str] = {}
        reader.add_listener(self)

    # --- reading -----------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        if self.reader.connected:
            self.redis_ready(self.reader)

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]
        self._generation += 1

    def redis_ready(self, connection: RedisConnection) -> None:
        """The reading connection is (back) up: make the groups, then read pending requests."""
        if not self.running:
            return
        self._generation += 1
        generation = self._generation
        self._reading = False
        self._cursors = dict.fromkeys(self._keys, "0")
        d: Deferred[Any] = succeed(None)
        for key in self._keys:
            d.addCallback(self._create_group, key)
        d.addCallbacks(
            lambda _: self._read(generation), self._read_failed, errbackArgs=(generation,)
        )

    def redis_lost(self) -> None:
        """The reading connection is gone: wait for `redis_ready`."""
        self._generation += 1
        self._reading = False

    def _create_group(self, _: object, key: str) -> Deferred[Any]:
        d = self.reader.execute("XGROUP", "CREATE", key, self.config.group, "0", "MKSTREAM")

        def exists(failure: Failure) -> None:
            if not isinstance(failure.value, RedisError):
                failure.raiseException()
            if "BUSYGROUP" not in failure.getErrorMessage():
                failure.raiseException()

        return d.addErrback(exists)

    def _read(self, generation: int) -> None:
        if generation != self._generation or self._reading or not self.running:
            return
        if len(self.active) >= self.max_active:
            self._stalled = True
            return
        keys = list(self._keys)
        pending = any(self._cursors.get(key, ">") != ">" for key in keys)
        args: list[Any] = [
            "XREADGROUP",
            "GROUP",
            self.config.group,
            self.config.consumer,
            "COUNT",
            str(min(self.count, self.max_active - len(self.active))),
        ]
        if not pending:
            args += ["BLOCK", str(self.block_ms)]
        args += ["STREAMS", *keys, *(self._cursors.get(key, ">") for key in keys)]
        self._reading = True
        d = self.reader.execute(*args, blocking=not pending)
        d.addCallbacks(
            self._received,
            self._read_failed,
            callbackArgs=(generation,),
            errbackArgs=(generation,),
        )

    def _received(self, reply: Any, generation: int) -> None:
        if generation != self._generation:
            return
        self._reading = False
        for stream in reply or ():
            key, entries = stream[0], stream[1]
            pbx = self._keys.get(key)
            if pbx is None:
                continue
            cursor = self._cursors.get(key, ">")
            if cursor != ">":
                # Reading this consumer's pending requests: page on, until none are left.
                self._cursors[key] = entries[-1][0] if entries else ">"
            for entry_id, fields in entries:
                if (key, entry_id) not in self.active:
                    self._handle(pbx, key, entry_id, fields)
        if reply is None:
            # A pending read for every key that returned nothing at all.
            for key in self._keys:
                if self._cursors.get(key, ">") != ">":
                    self._cursors[key] = ">"
        self._read(generation)

    def _read_failed(self, failure: Failure, generation: int) -> None:
        if generation != self._generation:
            return
        self._reading = False
        if isinstance(failure.value, RedisError):
            # NOGROUP (the stream was deleted) and the like: make the groups again, later.
            _log.warn("reading action requests failed: {why}", why=failure.getErrorMessage())
            self.clock.callLater(1.0, self._retry, generation)
            return
        # The connection is gone: redis_ready starts over.

    def _retry(self, generation: int) -> None:
        if generation == self._generation and self.reader.connected:
            self.redis_ready(self.reader)

    # --- one request ---------------------------------------------------------------------------

    def _handle(self, pbx: str, key: str, entry_id: str, fields: Any) -> None:
        if not isinstance(fields, list):
            # Trimmed or deleted while pending: nothing to answer.
            self._ack(key, entry_id)
            return
        request = {
            str(name): value
            for name, value in zip(fields[0::2], fields[1::2], strict=False)
            if isinstance(value, (str, bytes))
        }
        request_id, reply_to = request.get("id"), request.get("reply_to")
        if (
            not isinstance(request_id, str)
            or not request_id
            or not isinstance(reply_to, str)
            or not reply_to
            or reply_to in self._own_streams
        ):
            _log.warn(
                "{pbx}: action request {entry} without a usable id and reply_to: dropped",
                pbx=pbx,
                entry=entry_id,
            )
            self._ack(key, entry_id)
            return
        self.active.add((key, entry_id))
        action = request.get("action")
        name = action if isinstance(action, str) else ""
        d = self._run(pbx, request_id, name, request)
        d.addErrback(self._internal_error, pbx, name)
        d.addCallback(self._reply, pbx, key, entry_id, request_id, reply_to, name)
        d.addErrback(self._unanswered, pbx, request_id)
        d.addBoth(self._done, (key, entry_id))

    def _run(
        self, pbx: str, request_id: str, name: str, request: Mapping[str, Any]
    ) -> Deferred[tuple[str, dict[str, Any]]]:
        """The request's outcome and JSON body."""
        problem = check_action_name(name)
        if problem is not None:
            return succeed(_error(*problem))
        raw = request.get("headers", "")
        try:
            headers = parse_headers(raw.encode("utf-8") if isinstance(raw, str) else raw)
        except ValueError as error:
            return succeed(_error("bad_request", str(error)))
        problem = check_action_headers(name, headers)
        if problem is not None:
            return succeed(_error(*problem))
        timeout = DEFAULT_ACTION_TIMEOUT
        deadline = request.get("deadline")
        if deadline:
            if not isinstance(deadline, str) or not deadline.isdecimal():
                return succeed(_error("bad_request", "deadline must be epoch milliseconds"))
            left = int(deadline) / 1000.0 - self.clock.seconds()
            if left <= 0:
                return succeed(
                    ("expired", {"error": "expired", "message": "the deadline has passed"})
                )
            timeout = min(left, MAX_ACTION_TIMEOUT)
        read_only = name.lower() in READ_ONLY_ACTIONS
        if read_only:
            return self._send(pbx, name, headers, timeout, read_only)
        guard = guard_key(self.config.prefix, pbx, request_id)
        d = self.writer.execute("SET", guard, "1", "NX", "EX", str(self.config.guard_ttl))

        def guarded(answer: Any) -> Any:
            if answer is None:
                return (
                    "unknown",
                    {
                        "error": "redelivered",
                        "message": "this request was delivered before: whether it ran is "
                        "unknown, and it was not sent again",
                    },
                )
            return self._send(pbx, name, headers, timeout, read_only)

        return d.addCallback(guarded)

    def _send(
        self, pbx: str, name: str, headers: dict[str, Any], timeout: float, read_only: bool
    ) -> Deferred[tuple[str, dict[str, Any]]]:
        session = self.sessions[pbx]
        try:
            d = session.factory.send_action(
                name,
                headers,
                action_timeout=timeout,
                untagged_items=UNTAGGED_ITEMS.get(name.lower()),
            )
        except ValueError as error:
            return succeed(_error("bad_request", str(error)))

        def succeeded(response: Message) -> tuple[str, dict[str, Any]]:
            complete = response.list_complete
            return (
                "ok",
                {
                    "response": message_dict(response),
                    "events": [message_dict(event) for event in response.events],
                    "list_complete": message_dict(complete) if complete is not None else None,
                },
            )

        def failed(failure: Failure) -> tuple[str, dict[str, Any]]:
            error = failure.value
            if isinstance(error, AMIError):
                return (
                    "error",
                    {
                        "error": "AMIError",
                        "message": error.message,
                        "response": message_dict(error.response),
                    },
                )
            if isinstance(error, ActionTimeout):
                return ("timeout", {"error": "ActionTimeout", "message": str(error)})
            if isinstance(error, NotConnected):
                return ("error", {"error": "NotConnected", "message": str(error)})
            if isinstance(error, ConnectionLost):
                # Sent, but the answer never came: an action with side effects may have run.
                outcome = "error" if read_only else "unknown"
                return (outcome, {"error": "ConnectionLost", "message": str(error)})
            failure.raiseException()
            raise AssertionError("unreachable")  # pragma: no cover

        return d.addCallbacks(succeeded, failed)

    def _internal_error(self, failure: Failure, pbx: str, name: str) -> tuple[str, dict[str, Any]]:
        if isinstance(failure.value, (RedisError, ConnectionError)):
            # The guard could not be set: the action was not sent.  Leave the request
            # pending; it is read again once Redis is back.
            failure.raiseException()
        _log.failure("{pbx}: action {name} failed unexpectedly", failure, pbx=pbx, name=name)
        return ("error", {"error": "internal", "message": "see the daemon's log"})

    def _reply(
        self,
        result: tuple[str, dict[str, Any]],
        pbx: str,
        key: str,
        entry_id: str,
        request_id: str,
        reply_to: str,
        name: str,
    ) -> Deferred[Any]:
        outcome, body = result
        self.sessions[pbx].metrics.redis_action_finished(name or "_invalid", outcome)
        d = self.writer.execute(
            "XADD",
            reply_to,
            "MAXLEN",
            "~",
            REPLY_MAXLEN,
            "*",
            "id",
            request_id,
            "outcome",
            outcome,
            "json",
            dumps(body),
        )
        return d.addCallback(lambda _: self._ack(key, entry_id))

    def _ack(self, key: str, entry_id: str) -> Deferred[Any]:
        d = self.writer.execute("XACK", key, self.config.group, entry_id)
        return d.addErrback(
            lambda f: _log.warn("could not acknowledge {id}: {why}", id=entry_id, why=f.value)
        )

    def _unanswered(self, failure: Failure, pbx: str, request_id: str) -> None:
        if isinstance(failure.value, (RedisError, ConnectionError)):
            _log.warn(
                "{pbx}: action request {id} left pending (read again later): {why}",
                pbx=pbx,
                id=request_id,
                why=failure.getErrorMessage(),
            )
            return
        _log.failure("{pbx}: answering action request {id}", failure, pbx=pbx, id=request_id)

    def _done(self, result: object, request: tuple[str, str]) -> None:
        self.active.discard(request)
        if self._stalled and len(self.active) < self.max_active:
            self._stalled = False
            self._read(self._generation)


def _error(kind: str, message: str) -> tuple[str, dict[str, Any]]:
    return ("error", {"error": kind, "message": message})
