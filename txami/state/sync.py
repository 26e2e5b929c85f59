"""
`Sync`: reading what exists, on the session whose events the model already
follows, and reconciling the model with it.

The event handlers are registered before the session logs in (or before a
logged-in protocol is handed over), so nothing that happens during a sync is
missed.  Then the sync sends, pipelined (Asterisk answers one session's
actions in order, each list in one piece): ``CoreStatus`` (to notice a
restart), ``BridgeList``, ``CoreShowChannels`` (with each channel's
``BridgeId``; on Asterisk 12.0 to 12.6, which lack it, a ``BridgeInfo`` per
bridge follows), ``QueueStatus``, ``DeviceStateList``,
``ExtensionStateList`` and ``PresenceStateList``, and, where the session may
run CLI commands, ``manager show user`` for the self-check.  Each answer is
applied when it arrives:

- a row for a known object updates it in place (listeners hear of it only
  if something changed); a row for an unknown one creates it; a row for a
  tombstoned ``Uniqueid`` is ignored;
- a known object that the list does not show is gone: ``"gone while
  disconnected"`` if it was known before this session and no event of this
  session named it, else ``"not listed"``.

A restart of Asterisk while the connection was down (``FullyBooted``'s
``Uptime`` says it booted after the old session ended, or ``CoreStatus``'s
startup time changed) first ends everything known before with ``"asterisk
restarted"``.  Asterisk's events can be older than a list that precedes
them; since every event carries a full snapshot and is applied in order, the
model converges on the latest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger
from twisted.python.failure import Failure

from txami.errors import AMIError
from txami.message import Message
from txami.state.bridges import BridgeTracker
from txami.state.channels import ChannelTracker
from txami.state.devices import DeviceTracker
from txami.state.fields import (
    NAME,
    UNIQUEID,
    ChannelSnapshot,
    bridge_fields,
    channel_snapshot,
    header,
    intern_value,
    row_fields,
    text_of,
    to_int,
)
from txami.state.grouping import LOCAL, Grouping
from txami.state.limits import add_limit, limits_of_classes, read_permissions
from txami.state.objects import Channel
from txami.state.queues import QueueTracker
from txami.state.store import Store

__all__ = ["GONE_DISCONNECTED", "GONE_NOT_LISTED", "GONE_RESTART", "GONE_UNVERIFIABLE", "Sync"]

_log = Logger(namespace="txami.state")

GONE_DISCONNECTED = "gone while disconnected"
GONE_NOT_LISTED = "not listed"
GONE_RESTART = "asterisk restarted"
GONE_UNVERIFIABLE = "unverifiable after reconnect"

#: List action -> the limit topic its failure takes away.
_TOPIC = {
    "CoreStatus": "restarts",
    "BridgeList": "channels",
    "BridgeInfo": "channels",
    "CoreShowChannels": "channels",
    "QueueStatus": "queues",
    "DeviceStateList": "devices",
    "ExtensionStateList": "devices",
    "PresenceStateList": "devices",
}

#: Seconds a boot may seem to precede the end of the last session and still be a restart.
#: How much later than its real boot `FullyBooted`'s whole-second Uptime can date it.
_BOOT_SLACK = 1.0


_DURATIONS: dict[str, float] = {}


def _duration(text: str) -> float:
    """Seconds in CoreShowChannel's ``HH:MM:SS`` (0 if unreadable)."""
    found = _DURATIONS.get(text)
    if found is not None:
        return found
    try:
        hours, minutes, seconds = text.split(":")
        found = float(int(hours) * 3600 + int(minutes) * 60 + int(seconds))
    except ValueError:
        found = 0.0
    if len(_DURATIONS) < 4096:
        _DURATIONS[text] = found
    return found


class Sync:
    """One `PBXState`'s syncs, session after session."""

    def __init__(
        self,
        store: Store,
        grouping: Grouping,
        channels: ChannelTracker,
        bridges: BridgeTracker,
        queues: QueueTracker,
        devices: DeviceTracker,
    ) -> None:
        self.store = store
        self.grouping = grouping
        self.channels = channels
        self.bridges = bridges
        self.queues = queues
        self.devices = devices
        #: The current session's number (0 before the first).
        self.session = 0
        #: Limits found by the last sync (topic -> why).
        self.limits: dict[str, str] = {}
        #: Whether the last sync was complete.
        self.complete = False
        self._known_before: set[object] = set()
        self._ended_at: float | None = None
        self._boot: float | None = None
        #: Whether this session's ``FullyBooted`` gave an ``Uptime`` (restarts seen by it).
        self._uptime_this_session = False
        #: Whether a ``FullyBooted`` came in this session (at login, or when the boot ended).
        self._booted_this_session = False
        #: Whether the last synced session's Asterisk said it was fully booted.
        self._ended_booted = False
        #: Whether this session's ``CoreStatus`` answered: a ``FullyBooted`` later is the
        #: end of a boot that was still going on at login, not the login's own.
        self._status_seen = False
        self._startup: tuple[str, str] | None = None
        self._startup_this_session = False
        self._restart_decided = False
        self._protocol: Any = None
        self._refreshing: set[str] = set()
        queues.refresh = self.refresh_queue

    # --- sessions ----------------------------------------------------------------------------

    def session_started(self) -> None:
        """A new session begins (before its login): its events belong to it from now on."""
        store = self.store
        self.session += 1
        self.complete = False
        store.channel_tombstones.clear()
        store.bridge_tombstones.clear()
        store.unconfirmed = set(store.channels)
        self._known_before = {*store.channels.values(), *store.bridges.values()}
        self._uptime_this_session = False
        self._booted_this_session = False
        self._status_seen = False
        self._startup_this_session = False
        self._restart_decided = not self._known_before
        self._refreshing.clear()

    def session_ended(self) -> None:
        """The session's connection is gone."""
        if self.complete:
            # The last moment the old server was known alive (a connection
            # that never synced, during a restart, tells nothing).
            self._ended_at = self.store.clock.seconds()
            self._ended_booted = self._booted_this_session
        self._protocol = None
        self.complete = False

    def on_fully_booted(self, event: Message) -> bool:
        """
        ``FullyBooted`` (sent at login to sessions reading ``system`` once
        Asterisk has booted, and to every such session when a boot ends):
        notice a restart.  True if it ends a boot that was going on when this
        session's lists were taken (they may lack what had not loaded yet).
        """
        self._booted_this_session = True
        booted_late = self._status_seen
        uptime = header(event, "Uptime", text_of(event))
        if uptime is None:
            return booted_late
        seconds = to_int(uptime.strip(), -1)
        if seconds < 0:
            return booted_late
        boot = self.store.clock.seconds() - seconds
        self._uptime_this_session = True
        # Booted after the last synced session ended: a restart.  (Otherwise
        # CoreStatus still has its say: a restart within a second of the
        # previous boot is within this estimate's error.)
        ended = self._ended_at
        if not self._restart_decided and ended is not None and boot > ended - _BOOT_SLACK / 2:
            self._restart_decided = True
            self._restarted("FullyBooted: Uptime " + uptime)
        self._boot = boot
        return booted_late

    def _restarted(self, evidence: str) -> None:
        """End everything known before this session: Asterisk restarted."""
        _log.info("Asterisk restarted ({evidence}): ending what was known", evidence=evidence)
        store = self.store
        for obj in self._known_before:
            if isinstance(obj, Channel):
                if store.channels.get(obj.uniqueid) is obj:
                    self.channels.gone(obj, GONE_RESTART, 0, tombstone=False)
            elif store.bridges.get(obj.uniqueid) is obj:  # type: ignore[attr-defined]
                self.bridges.destroyed(obj, GONE_RESTART, tombstone=False)  # type: ignore[arg-type]
        for queue in list(store.queues.values()):
            for entry in list(queue.entries):
                self.queues.leave(queue, entry, GONE_RESTART)
        store.unconfirmed.clear()
        self._known_before = set()
        self.store.outbox.flush()

    def _absent_reason(self, uniqueid: str) -> str:
        return GONE_DISCONNECTED if uniqueid in self.store.unconfirmed else GONE_NOT_LISTED

    # --- the sync ----------------------------------------------------------------------------

    def run(self, protocol: Any, base_limits: dict[str, str]) -> Deferred[bool]:
        """
        Sync on ``protocol`` (logged in; this session's).  Fires with `True`
        once every list is applied, `False` if the session ended first or a
        list failed other than by being refused (then `complete` is false).
        """
        session = self.session
        self._protocol = protocol
        limits = dict(base_limits)
        steps: list[tuple[str, dict[str, str], Callable[[Message, int, dict[str, str]], Any]]] = [
            ("CoreStatus", {}, self._core_status),
            ("BridgeList", {}, self._bridge_list),
            ("CoreShowChannels", {}, self._channel_list),
            ("QueueStatus", {}, self._queue_status),
            ("DeviceStateList", {}, self._device_list),
            ("ExtensionStateList", {}, self._hint_list),
            ("PresenceStateList", {}, self._presence_list),
        ]
        username = getattr(protocol, "username", None)
        if username:
            steps.append(
                ("Command", {"Command": f"manager show user {username}"}, self._permissions)
            )
        sent = []
        for action, headers, apply in steps:
            d = protocol.send_action(action, headers)
            d.addCallbacks(
                self._apply,
                self._refused,
                callbackArgs=(apply, session, limits),
                errbackArgs=(action, session, limits),
            )
            sent.append(d)
        done = DeferredList(sent, fireOnOneErrback=True, consumeErrors=True)
        return done.addCallbacks(
            lambda _: self._finish(session, limits), lambda f: self._failed(f, session)
        )

    def _apply(
        self,
        response: Message,
        apply: Callable[[Message, int, dict[str, str]], Any],
        session: int,
        limits: dict[str, str],
    ) -> Any:
        if session != self.session:
            return None
        try:
            return apply(response, session, limits)
        finally:
            self.store.outbox.flush()

    def _refused(
        self, failure: Failure, action: str, session: int, limits: dict[str, str]
    ) -> Failure | None:
        error = failure.value
        if not isinstance(error, AMIError):
            return failure
        if session == self.session:
            if action == "Command":
                _log.debug("cannot read the user's permissions: {error}", error=error)
            else:
                add_limit(limits, _TOPIC.get(action, "channels"), f"{action}: {error.message}")
                if action == "CoreShowChannels":
                    self._unverifiable()
        return None

    def _finish(self, session: int, limits: dict[str, str]) -> bool:
        if session != self.session:
            return False
        if not (self._uptime_this_session or self._startup_this_session):
            add_limit(limits, "restarts", "neither FullyBooted nor CoreStatus is available")
        self._restart_decided = True
        self.limits = limits
        self.complete = True
        self.store.unconfirmed.clear()
        self._known_before = set()
        return True

    def _failed(self, failure: Failure, session: int) -> bool:
        if session == self.session:
            _log.warn("the state sync failed: {why}", why=failure.getErrorMessage())
        return False

    # --- applying each list ------------------------------------------------------------------

    def _core_status(self, response: Message, session: int, limits: dict[str, str]) -> None:
        if not self._status_seen:
            self._status_seen = True
            # The login's FullyBooted comes before this answer, if Asterisk
            # has booted.  A server seen fully booted in the last session
            # that is booting now has restarted (however soon: CoreStatus's
            # startup time is in whole seconds).
            booting = not self._booted_this_session
            if booting and self._ended_booted and not self._restart_decided:
                self._restart_decided = True
                self._restarted("logged in while Asterisk was booting")
        date = response.get("CoreStartupDate")
        time = response.get("CoreStartupTime")
        if date is None or time is None:
            return
        startup = (date, time)
        self._startup_this_session = True
        if not self._restart_decided and self._startup is not None:
            self._restart_decided = True
            if startup != self._startup:
                self._restarted(f"CoreStatus: started {date} {time}")
        self._startup = startup

    def _bridge_list(self, response: Message, session: int, limits: dict[str, str]) -> None:
        listed = set()
        tombstones = self.store.bridge_tombstones
        described = self.bridges.described
        for row in response.events:
            fields = bridge_fields(row)
            if fields is None or not fields[0] or fields[0] in tombstones:
                continue
            listed.add(fields[0])
            described(*fields)
        for uniqueid, bridge in list(self.store.bridges.items()):
            if uniqueid not in listed:
                reason = GONE_DISCONNECTED if bridge in self._known_before else GONE_NOT_LISTED
                self.bridges.destroyed(bridge, reason)

    def _channel_list(
        self, response: Message, session: int, limits: dict[str, str]
    ) -> Deferred[None] | None:
        store = self.store
        now = store.clock.seconds()
        rows: dict[str, tuple[ChannelSnapshot, tuple[str | None, ...]]] = {}
        tombstones = store.channel_tombstones
        for row in response.events:
            found_row = row_fields(row)
            if found_row is not None and found_row[0][UNIQUEID] not in tombstones:
                rows[found_row[0][UNIQUEID]] = found_row
        for uniqueid, channel in list(store.channels.items()):
            if uniqueid not in rows:
                self.channels.gone(channel, self._absent_reason(uniqueid))
        halves: dict[str, Channel] = {}
        found: list[Channel] = []
        has_bridge_ids = True
        create = self.channels.create
        bridges = store.bridges
        for uniqueid, (snapshot, (application, app_data, age, bridge_id)) in rows.items():
            known = store.channels.get(uniqueid)
            if known is None:
                # New: set directly (channel_new shows it whole) and group
                # below, once every channel of the list is known.
                channel = create(snapshot, False, now - _duration(age or ""), group=False)
                channel._born = True
                found.append(channel)
                if application is not None:
                    channel.application = intern_value(application)
                    channel.app_data = app_data or ""
                if bridge_id:
                    bridge = bridges.get(bridge_id) or self.bridges.described(bridge_id)
                    if bridge is not None:
                        bridge.channels.append(channel)
                        channel.bridge = bridge
                elif bridge_id is None:
                    has_bridge_ids = False
            else:
                channel = known
                self.channels.seen(snapshot)
                if not channel._born:
                    # First seen in an event: the list tells its real age (once).
                    channel._born = True
                    self.channels.set_field(channel, "created", now - _duration(age or ""))
                if application is not None:
                    self.channels.set_field(channel, "application", intern_value(application))
                    self.channels.set_field(channel, "app_data", app_data or "")
                if bridge_id is None:
                    has_bridge_ids = False
                elif bridge_id:
                    bridge = bridges.get(bridge_id) or self.bridges.described(bridge_id)
                    if bridge is not None:
                        self.bridges.join(channel, bridge)
                elif channel.bridge is not None:
                    self.bridges.leave(channel, channel.bridge)
            name = snapshot[NAME]
            if name.startswith("Local/") and name[-2:] in (";1", ";2"):
                other = halves.pop(name[:-1] + ("2" if name[-1] == "1" else "1"), None)
                if other is not None:
                    self.grouping.link(channel, other, LOCAL)
                else:
                    halves[name] = channel
        self.grouping.adopt(found)
        for bridge in {c.bridge for c in found if c.bridge is not None}:
            self.store.outbox.updated("bridge_updated", bridge, ("channels",))
            self.grouping.bridge_call(bridge)
        if not has_bridge_ids:
            return self._bridge_infos(session)
        return None

    def _bridge_infos(self, session: int) -> Deferred[None]:
        """Asterisk 12.0-12.6: read each bridge's members with ``BridgeInfo``."""
        protocol = self._protocol
        sent = []
        for bridge in list(self.store.bridges.values()):
            d = protocol.send_action("BridgeInfo", {"BridgeUniqueid": bridge.uniqueid})
            d.addCallback(self._bridge_info, bridge.uniqueid, session)
            d.addErrback(lambda f: None if f.check(AMIError) else f)
            sent.append(d)
        done = DeferredList(sent, fireOnOneErrback=True, consumeErrors=True)
        return done.addCallback(lambda _: None)

    def _bridge_info(self, response: Message, uniqueid: str, session: int) -> None:
        bridge = self.store.bridges.get(uniqueid)
        if session != self.session or bridge is None:
            return
        members = []
        for row in response.events:
            snapshot = channel_snapshot(row)
            channel = self.channels.seen(snapshot) if snapshot is not None else None
            if channel is not None:
                members.append(channel)
                self.bridges.join(channel, bridge)
        for channel in list(bridge.channels):
            if channel not in members:
                self.bridges.leave(channel, bridge)
        self.store.outbox.flush()

    def _queue_status(self, response: Message, session: int, limits: dict[str, str]) -> None:
        self.queues.apply_status(list(response.events), self._absent_entry_reason(), True)

    def _absent_entry_reason(self) -> str:
        return GONE_DISCONNECTED if self._known_before else GONE_NOT_LISTED

    def _device_list(self, response: Message, session: int, limits: dict[str, str]) -> None:
        for row in response.events:
            self.devices.device(row, text_of(row))

    def _hint_list(self, response: Message, session: int, limits: dict[str, str]) -> None:
        self.devices.apply_hints(list(response.events))

    def _presence_list(self, response: Message, session: int, limits: dict[str, str]) -> None:
        for row in response.events:
            self.devices.presence(row, text_of(row))

    def _permissions(self, response: Message, session: int, limits: dict[str, str]) -> None:
        output = response.getall("Output")
        classes = read_permissions(output)
        if classes is not None:
            username = getattr(self._protocol, "username", "?")
            perms = ", ".join(sorted(classes)) or "none"
            found = limits_of_classes(classes, f"user {username}'s read permissions ({perms})")
            for topic, why in found.items():
                add_limit(limits, topic, why)

    def _unverifiable(self) -> None:
        """No channel list on a re-sync: drop what cannot be checked any more."""
        for uniqueid in list(self.store.unconfirmed):
            channel = self.store.channels.get(uniqueid)
            if channel is not None:
                self.channels.gone(channel, GONE_UNVERIFIABLE)
        self.store.unconfirmed.clear()

    # --- one queue ---------------------------------------------------------------------------

    def refresh_queue(self, name: str) -> None:
        """Read queue ``name`` again (an event named a queue the model did not know)."""
        protocol = self._protocol
        if protocol is None or name in self._refreshing or len(self._refreshing) > 256:
            return
        self._refreshing.add(name)
        session = self.session

        def apply(response: Message) -> None:
            self._refreshing.discard(name)
            if session == self.session:
                self.queues.apply_status(list(response.events), GONE_NOT_LISTED, False)
                self.store.outbox.flush()

        def failed(failure: Failure) -> None:
            self._refreshing.discard(name)
            _log.debug(
                "could not read queue {name}: {why}", name=name, why=failure.getErrorMessage()
            )

        protocol.send_action("QueueStatus", {"Queue": name}).addCallbacks(apply, failed)
