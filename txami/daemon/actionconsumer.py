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
entries, at start and after each reconnection.  Those of another consumer
name (a daemon that died and came back under another name, or that never
came back) are claimed: at start and every ``claim_idle / 2`` seconds,
``XAUTOCLAIM ... JUSTID`` makes the requests pending for longer than
``[redis] claim-idle`` seconds this consumer's own, and the same pending read
then reads them.  The requests running here are touched first in each round
(``XCLAIM ... JUSTID`` resets their idle time), so that no other daemon
claims them while they run.

An action with side effects must not run twice: before sending it, the
daemon sets ``<prefix>:{NAME}:guard:<id>`` to ``sent <entry>`` with ``SET
NX``.  A request whose guard already exists is not sent: it is answered
``unknown``, unless the guard reads ``replied <entry>`` for this very entry
(it was answered already): then it is only acknowledged.  Read-only actions
(`READ_ONLY_ACTIONS`) are not guarded: they are simply run again.

The reply, the guard's ``replied`` and the acknowledgement are one
``MULTI``/``EXEC`` transaction, so Redis applies all of them or none: a
daemon killed at any point leaves a request either unanswered and pending,
or answered and acknowledged, never answered and pending.  For a guarded
request the transaction is a script (`GUARDED_REPLY`) that first reads the
guard and answers nothing if it already reads ``replied`` for this entry:
another daemon claimed the request meanwhile and answered it, so this one's
late outcome is not added as a second reply.  A Redis that refuses the
script (no ``EVAL`` for the daemon's user) gets the transaction instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
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

__all__ = ["GUARDED_REPLY", "READ_ONLY_ACTIONS", "ActionConsumer"]

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
#: ``XAUTOCLAIM`` pages (of ``count`` entries) claimed per stream in one round, at most.
CLAIM_PAGES = 10

#: The guard's values: set before the action is sent, and with its reply.
_SENT = "sent "
_REPLIED = "replied "
#: `_run`'s result for a request answered before: acknowledge it, answer nothing.
_ANSWERED: tuple[str, dict[str, Any]] = ("", {})

#: The reply of a guarded request, as one script (atomic, as ``MULTI``/``EXEC``):
#: nothing if the guard reads ``replied`` for this entry already (another daemon
#: claimed the request and answered it); else the guard set ``replied``, the
#: request acknowledged and the reply added.  Returns 1, 0 (answered before), or
#: the error of an ``XADD`` Redis refused (a ``reply_to`` that is not a stream:
#: the request is acknowledged all the same, as no reply could ever be added).
#: KEYS: the guard, ``reply_to``, the request stream.  ARGV: the guard's
#: ``replied`` value, its time to live, the replies' ``MAXLEN``, the reply's
#: ``id``, ``outcome`` and ``json``, the group, the request's entry id.
GUARDED_REPLY = """\
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('XACK', KEYS[3], ARGV[7], ARGV[8])
local added = redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
  'id', ARGV[4], 'outcome', ARGV[5], 'json', ARGV[6])
if type(added) == 'table' and added.err then
  return added.err
end
return 1
"""


class _Request:
    """One request being handled: where it is, what it asks, where its reply goes."""

    __slots__ = ("entry_id", "guard", "key", "name", "pbx", "reply_to", "request_id")

    def __init__(
        self, pbx: str, key: str, entry_id: str, request_id: str, reply_to: str, name: str
    ) -> None:
        self.pbx = pbx
        self.key = key
        self.entry_id = entry_id
        self.request_id = request_id
        self.reply_to = reply_to
        self.name = name
        #: The guard key this delivery holds (set it ``replied`` with the reply), if any.
        self.guard: str | None = None


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
        #: Streams to read pending requests of again once the current pending read ends.
        self._rescan: set[str] = set()
        self._claimer: LoopingCall | None = None
        self._claiming = False
        #: False once Redis refused XAUTOCLAIM (before 6.2): claiming is off.
        self._can_claim = True
        #: False once Redis refused `GUARDED_REPLY` (no EVAL): guarded replies are a MULTI.
        self._can_script = True
        #: Requests claimed from other consumers (or left idle by this one), in all.
        self.claimed = 0
        reader.add_listener(self)

    # --- reading -----------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        if self.config.claim_idle > 0:
            self._claimer = LoopingCall(self._claim_round)
            self._claimer.clock = self.clock
            self._claimer.start(self.config.claim_idle / 2, now=False)
        if self.reader.connected:
            self.redis_ready(self.reader)

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]
        self._generation += 1
        claimer, self._claimer = self._claimer, None
        if claimer is not None and claimer.running:
            claimer.stop()

    def redis_ready(self, connection: RedisConnection) -> None:
        """The reading connection is (back) up: make the groups, then read pending requests."""
        if not self.running:
            return
        self._generation += 1
        generation = self._generation
        self._reading = False
        self._cursors = dict.fromkeys(self._keys, "0")
        self._rescan.clear()
        d: Deferred[Any] = succeed(None)
        for key in self._keys:
            d.addCallback(self._create_group, key)
        if self.config.claim_idle > 0:
            # Before the first pending read, which then reads what was claimed.
            d.addCallback(lambda _: self._claim_all(connection))
            d.addCallback(self._claimed, reread=False)
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
        # The cursors this read uses (a claim may change them while it blocks).
        cursors = {key: self._cursors.get(key, ">") for key in keys}
        pending = any(cursor != ">" for cursor in cursors.values())
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
        args += ["STREAMS", *keys, *cursors.values()]
        self._reading = True
        d = self.reader.execute(*args, blocking=not pending)
        d.addCallbacks(
            self._received,
            self._read_failed,
            callbackArgs=(generation, cursors),
            errbackArgs=(generation,),
        )

    def _received(self, reply: Any, generation: int, cursors: Mapping[str, str]) -> None:
        if generation != self._generation:
            return
        self._reading = False
        for stream in reply or ():
            key, entries = stream[0], stream[1]
            pbx = self._keys.get(key)
            if pbx is None:
                continue
            if cursors.get(key, ">") != ">":
                # Reading this consumer's pending requests: page on, until none are left.
                self._cursors[key] = entries[-1][0] if entries else self._pending_read(key)
            for entry_id, fields in entries:
                if (key, entry_id) not in self.active:
                    self._handle(pbx, key, entry_id, fields)
        if reply is None:
            # A pending read for every key that returned nothing at all.
            for key in self._keys:
                if cursors.get(key, ">") != ">":
                    self._cursors[key] = self._pending_read(key)
        self._read(generation)

    def _pending_read(self, key: str) -> str:
        """The cursor after a pending read of ``key``: from 0 again if claims came meanwhile."""
        if key in self._rescan:
            self._rescan.discard(key)
            return "0"
        return ">"

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

    # --- claiming abandoned requests ----------------------------------------------------------

    def _claim_round(self) -> None:
        """
        Every ``claim_idle / 2`` seconds: touch the requests running here, then
        claim the idle ones; the reader reads those once its current read returns.
        """
        if self._claiming or not self.running or not self._can_claim:
            return
        if not self.writer.connected:
            return
        self._claiming = True
        d = self._touch()
        d.addCallback(lambda _: self._claim_all(self.writer))
        d.addCallback(self._claimed)

        def done(result: object) -> None:
            self._claiming = False
            if isinstance(result, Failure):
                if isinstance(result.value, ConnectionError):
                    _log.warn("claiming action requests: {why}", why=result.getErrorMessage())
                else:
                    _log.failure("claiming action requests", result)

        d.addBoth(done)

    def _touch(self) -> Deferred[Any]:
        """Reset the idle time of the requests running here, so no other consumer claims them."""
        running: dict[str, list[str]] = {}
        for key, entry_id in sorted(self.active):
            running.setdefault(key, []).append(entry_id)
        d: Deferred[Any] = succeed(None)
        for key, ids in running.items():
            d.addCallback(self._touch_stream, key, ids)
        return d

    def _touch_stream(self, _: object, key: str, ids: list[str]) -> Deferred[Any]:
        d = self.writer.execute(
            "XCLAIM", key, self.config.group, self.config.consumer, "0", *ids, "JUSTID"
        )

        def failed(failure: Failure) -> None:
            _log.warn(
                "could not touch the running requests of {key}: {why}",
                key=key,
                why=failure.getErrorMessage(),
            )

        return d.addErrback(failed)

    def _claim_all(self, connection: RedisConnection) -> Deferred[dict[str, int]]:
        """Claim every stream's idle requests on ``connection``: how many, by stream."""
        counts: dict[str, int] = {}
        d: Deferred[Any] = succeed(None)
        for key in self._keys:
            d.addCallback(self._claim_stream, connection, key, counts)
        return d.addCallback(lambda _: counts)

    def _claim_stream(
        self, _: object, connection: RedisConnection, key: str, counts: dict[str, int]
    ) -> Deferred[None]:
        def claimed(count: int) -> None:
            counts[key] = count

        d = self._claim(connection, key, "0-0", CLAIM_PAGES)
        return d.addCallbacks(claimed, self._claim_failed, errbackArgs=(key,))

    def _claim(
        self, connection: RedisConnection, key: str, cursor: str, pages: int
    ) -> Deferred[Any]:
        """``XAUTOCLAIM`` ``key`` from ``cursor``, up to ``pages`` pages: how many were claimed."""
        if not self._can_claim:
            return succeed(0)
        d = connection.execute(
            "XAUTOCLAIM",
            key,
            self.config.group,
            self.config.consumer,
            str(self.config.claim_idle * 1000),
            cursor,
            "COUNT",
            str(self.count),
            "JUSTID",
        )

        def claimed(reply: Any) -> Any:
            # Redis 7 adds a third element, the ids of deleted entries it dropped from the
            # pending list (before 7 they are claimed, then read with no fields and acked).
            next_cursor, ids = reply[0], reply[1]
            if next_cursor == "0-0" or pages <= 1:
                return len(ids)
            more = self._claim(connection, key, next_cursor, pages - 1)
            return more.addCallback(lambda count: count + len(ids))

        return d.addCallback(claimed)

    def _claim_failed(self, failure: Failure, key: str) -> None:
        if isinstance(failure.value, ConnectionError):
            failure.raiseException()  # the connection is gone: no use trying the others
        if not isinstance(failure.value, RedisError):
            _log.failure("claiming the idle requests of {key}", failure, key=key)
            return
        why = failure.getErrorMessage()
        if "unknown command" in why:
            self._can_claim = False
            _log.error(
                "Redis has no XAUTOCLAIM (it needs 6.2 or later): requests left pending by "
                "another consumer are not claimed"
            )
            return
        _log.warn("claiming the idle requests of {key} failed: {why}", key=key, why=why)

    def _claimed(self, counts: dict[str, int], reread: bool = True) -> None:
        """
        Count what was claimed; with ``reread``, read the streams that had requests
        claimed from the start of their pending list again.
        """
        for key, count in counts.items():
            if not count:
                continue
            self.claimed += count
            pbx = self._keys.get(key)
            if pbx is not None:
                self.sessions[pbx].metrics.redis_actions_claimed += count
            _log.info("claimed {count} idle action requests of {key}", count=count, key=key)
            if not reread:
                continue
            if self._cursors.get(key, ">") == ">":
                self._cursors[key] = "0"
            else:
                self._rescan.add(key)

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
        handled = _Request(pbx, key, entry_id, request_id, reply_to, name)
        d = self._run(handled, request)
        d.addErrback(self._internal_error, pbx, name)
        d.addCallback(self._reply, handled)
        d.addErrback(self._unanswered, pbx, request_id)
        d.addBoth(self._done, (key, entry_id))

    def _run(
        self, handled: _Request, request: Mapping[str, Any]
    ) -> Deferred[tuple[str, dict[str, Any]]]:
        """The request's outcome and JSON body (`_ANSWERED` if it was answered before)."""
        pbx, name = handled.pbx, handled.name
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
        deadline = request.get("deadline")
        ends: float | None = None
        if deadline:
            if not isinstance(deadline, str) or not deadline.isdecimal():
                return succeed(_error("bad_request", "deadline must be epoch milliseconds"))
            ends = int(deadline) / 1000.0
        read_only = name.lower() in READ_ONLY_ACTIONS
        if read_only:
            return self._send(pbx, name, headers, ends, read_only)
        # The guard comes before the deadline: a request sent before and delivered
        # again after its deadline is unknown, not expired (that says "not sent").
        guard = guard_key(self.config.prefix, pbx, handled.request_id)
        entry_id = handled.entry_id
        d = self.writer.execute(
            "SET", guard, _SENT + entry_id, "NX", "EX", str(self.config.guard_ttl)
        )

        def guarded(answer: Any) -> Any:
            if answer is None:
                return self.writer.execute("GET", guard).addCallback(held)
            handled.guard = guard
            return self._send(pbx, name, headers, ends, read_only)

        def held(value: Any) -> tuple[str, dict[str, Any]]:
            if value == _REPLIED + entry_id:
                return _ANSWERED
            if value == _SENT + entry_id:
                # This entry's own guard: its reply below is the one it lacked.
                handled.guard = guard
            return (
                "unknown",
                {
                    "error": "redelivered",
                    "message": "this request was delivered before: whether it ran is "
                    "unknown, and it was not sent again",
                },
            )

        return d.addCallback(guarded)

    def _send(
        self, pbx: str, name: str, headers: dict[str, Any], ends: float | None, read_only: bool
    ) -> Deferred[tuple[str, dict[str, Any]]]:
        """Send the action, unless its deadline (``ends``, epoch seconds) has passed."""
        timeout = DEFAULT_ACTION_TIMEOUT
        if ends is not None:
            left = ends - self.clock.seconds()
            if left <= 0:
                return succeed(
                    ("expired", {"error": "expired", "message": "the deadline has passed"})
                )
            timeout = min(left, MAX_ACTION_TIMEOUT)
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

    def _reply(self, result: tuple[str, dict[str, Any]], handled: _Request) -> Deferred[Any]:
        """
        Add the reply and acknowledge the request, in one transaction; for a
        guarded request, `GUARDED_REPLY` (the guard set ``replied`` too, and
        nothing done if another daemon answered the request meanwhile).
        """
        key, entry_id = handled.key, handled.entry_id
        if result is _ANSWERED:
            _log.info(
                "{pbx}: action request {id} ({entry}) was answered before: acknowledged, "
                "not answered again",
                pbx=handled.pbx,
                id=handled.request_id,
                entry=entry_id,
            )
            return self._ack(key, entry_id)
        outcome, body = result
        self.sessions[handled.pbx].metrics.redis_action_finished(
            handled.name or "_invalid", outcome
        )
        reply = (
            "XADD",
            handled.reply_to,
            "MAXLEN",
            "~",
            REPLY_MAXLEN,
            "*",
            "id",
            handled.request_id,
            "outcome",
            outcome,
            "json",
            dumps(body),
        )
        if handled.guard is None or not self._can_script:
            return self._reply_in_transaction(handled, reply)
        script = (
            "EVAL",
            GUARDED_REPLY,
            "3",
            handled.guard,
            handled.reply_to,
            key,
            _REPLIED + entry_id,
            str(self.config.guard_ttl),
            REPLY_MAXLEN,
            handled.request_id,
            outcome,
            reply[-1],
            self.config.group,
            entry_id,
        )
        problem = _unencodable(script)
        if problem is not None:
            return fail(problem)
        d = self.writer.execute(*script)
        return d.addCallbacks(
            self._scripted,
            self._script_refused,
            callbackArgs=(handled, outcome),
            errbackArgs=(handled, reply),
        )

    def _reply_in_transaction(self, handled: _Request, reply: tuple[str, ...]) -> Deferred[Any]:
        """``reply``, the guard (if held) set ``replied`` and the ``XACK``, in one ``MULTI``."""
        commands = [reply]
        if handled.guard is not None:
            replied = _REPLIED + handled.entry_id
            commands.append(("SET", handled.guard, replied, "EX", str(self.config.guard_ttl)))
        commands.append(("XACK", handled.key, self.config.group, handled.entry_id))
        d = self._transaction(commands)
        return d.addCallback(self._committed, handled)

    def _script_refused(
        self, failure: Failure, handled: _Request, reply: tuple[str, ...]
    ) -> Failure | Deferred[Any]:
        """
        A Redis that refuses scripts (an ACL without ``EVAL``, a renamed
        command): said once, and every guarded reply is a transaction from now
        on, which cannot see that another daemon answered a claimed request.
        """
        why = failure.getErrorMessage() if isinstance(failure.value, RedisError) else ""
        if not (why.startswith("NOPERM") or "unknown command" in why):
            return failure
        if self._can_script:
            self._can_script = False
            _log.error(
                "Redis refused the reply's script ({why}): guarded requests are answered "
                "in a MULTI/EXEC transaction instead, which may add a second reply to a "
                "request another daemon claimed and answered meanwhile",
                why=why,
            )
        return self._reply_in_transaction(handled, reply)

    def _transaction(self, commands: list[tuple[str, ...]]) -> Deferred[Any]:
        """
        ``commands`` in one ``MULTI``/``EXEC`` on the writer: fires with EXEC's
        answer (one result per command; an error instance for one that failed as
        it ran), or fails if the transaction did not run.  The commands are
        written in one go: nothing else of this process comes between them.
        """
        for command in commands:
            problem = _unencodable(command)
            if problem is not None:
                return fail(problem)
        writer = self.writer
        started = [writer.execute("MULTI")]
        started += [writer.execute(*command) for command in commands]
        d = writer.execute("EXEC")
        for queued in started:
            # Answered OK/QUEUED, or failed with the transaction: EXEC's answer says which.
            queued.addErrback(lambda _: None)
        return d

    def _committed(self, results: Any, handled: _Request) -> None:
        if not isinstance(results, list):
            raise RedisError(f"EXEC answered {results!r}")
        for result in results:
            if isinstance(result, Exception):
                # Only a reply_to that is not a stream does that: the request is
                # acknowledged all the same, since no reply could ever be added.
                self._not_added(handled, result)

    def _scripted(self, result: Any, handled: _Request, outcome: str) -> None:
        """`GUARDED_REPLY`'s answer: 1 (answered), 0 (answered by another) or XADD's error."""
        if result == 0:
            _log.warn(
                "{pbx}: action request {id} ({entry}) was answered meanwhile by another "
                "consumer that claimed it: this one's outcome ({outcome}) is not added",
                pbx=handled.pbx,
                id=handled.request_id,
                entry=handled.entry_id,
                outcome=outcome,
            )
        elif isinstance(result, str):
            self._not_added(handled, result)
        elif result != 1:
            raise RedisError(f"the reply's script answered {result!r}")

    def _not_added(self, handled: _Request, why: object) -> None:
        _log.warn(
            "{pbx}: answering action request {id} to {reply_to}: {why}",
            pbx=handled.pbx,
            id=handled.request_id,
            reply_to=handled.reply_to,
            why=why,
        )

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


def _unencodable(command: tuple[str, ...]) -> RedisError | None:
    """The error of a command that has an argument UTF-8 cannot encode (a lone surrogate)."""
    try:
        for arg in command:
            arg.encode("utf-8")
    except UnicodeEncodeError as error:
        return RedisError(f"cannot send {command[0]}: {error}")
    return None


def _error(kind: str, message: str) -> tuple[str, dict[str, Any]]:
    return ("error", {"error": kind, "message": message})
