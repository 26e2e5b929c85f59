"""
`PBXState`: the live model of an Asterisk server, kept true from the event
stream across reconnects.

It is built the way txtorcon's ``TorState`` is (objects updated in place
from events, ``zope.interface`` listeners with a no-op mixin, per-object
``when_*()`` Deferreds) without its two faults: it subscribes before it
reads what exists, on the same session, and it follows an `AMIFactory`
through reconnects, reconciling instead of starting over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from types import MappingProxyType
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from txami.factory import AMIFactory
from txami.message import Message
from txami.protocol import AMIProtocol
from txami.state.bridges import BridgeTracker
from txami.state.channels import ChannelTracker
from txami.state.device import DeviceState, Hint, PresenceState
from txami.state.devices import DeviceTracker
from txami.state.errors import StateStopped
from txami.state.grouping import Grouping
from txami.state.limits import classes_of_mask, describe, filter_limits, limits_of_classes
from txami.state.objects import Bridge, Call, Channel
from txami.state.queue import Queue
from txami.state.queues import QueueTracker
from txami.state.snapshot import snapshot_of
from txami.state.store import Store
from txami.state.sync import Sync
from txami.state.waiters import fire_all

__all__ = ["PBXState"]

_log = Logger(namespace="txami.state")

#: Seconds between attempts when a sync failed (a list timed out) on a live session.
RETRY_SECONDS = 10.0


class PBXState:
    """
    The channels, bridges, calls, queues, device states and hints of one
    Asterisk server, as plain objects kept up to date.

    ``ami`` is an `AMIFactory` (the normal case: the model follows it
    through reconnects) or a logged-in `AMIProtocol` (the model ends with its
    connection).  ``clock`` (default: the factory's reactor or the protocol's
    clock) times objects and tombstones.  A hung-up channel's ``Uniqueid`` is
    remembered for ``tombstone_seconds`` (at most ``max_tombstones`` of
    them), so that nothing late brings it back.

    `start` registers the event handlers, then syncs; the mappings
    (`channels` by Uniqueid, `bridges` by BridgeUniqueid, `calls` by call id,
    `queues` by name, `devices` by device name, `hints` by ``(exten,
    context)``, `presences` by presentity) are read-only live views.
    """

    def __init__(
        self,
        ami: AMIFactory | AMIProtocol,
        *,
        clock: IReactorTime | None = None,
        tombstone_seconds: float = 10.0,
        max_tombstones: int = 2048,
    ) -> None:
        if isinstance(ami, AMIFactory):
            self._factory: AMIFactory | None = ami
            default_clock = ami.reactor
        elif isinstance(ami, AMIProtocol):
            self._factory = None
            default_clock = ami.clock
        else:
            raise TypeError(f"PBXState needs an AMIFactory or an AMIProtocol, not {ami!r}")
        self._ami = ami
        self.clock: IReactorTime = clock if clock is not None else default_clock
        store = self._store = Store(self.clock, tombstone_seconds, max_tombstones)
        grouping = Grouping(store)
        channels = ChannelTracker(store, grouping)
        bridges = BridgeTracker(store, grouping, channels)
        queues = QueueTracker(store, channels)
        devices = DeviceTracker(store)
        self._sync = Sync(store, grouping, channels, bridges, queues, devices)
        self._handlers: dict[str, Callable[[Message], None]] = {
            **channels.handlers(),
            **bridges.handlers(),
            **queues.handlers(),
            **devices.handlers(),
            "FullyBooted": self._fully_booted,
        }
        #: Channels by Uniqueid (a read-only live view).
        self.channels: Mapping[str, Channel] = MappingProxyType(store.channels)
        #: Bridges by BridgeUniqueid.
        self.bridges: Mapping[str, Bridge] = MappingProxyType(store.bridges)
        #: Calls by call id.
        self.calls: Mapping[str, Call] = MappingProxyType(store.calls)
        #: Queues by name.
        self.queues: Mapping[str, Queue] = MappingProxyType(store.queues)
        #: Device states by device name (``Custom:txami2000``, ``PJSIP/100``, ...).
        self.devices: Mapping[str, DeviceState] = MappingProxyType(store.devices)
        #: Hints by ``(exten, context)``.
        self.hints: Mapping[tuple[str, str], Hint] = MappingProxyType(store.hints)
        #: Presence states by presentity.
        self.presences: Mapping[str, PresenceState] = MappingProxyType(store.presences)
        #: Whether the model has completed a sync on the current session.
        self.synced = False
        self._follower = _ConnectionFollower(self)
        self._session_protocol: Any = None
        self._started = False
        self._stopped: StateStopped | None = None
        self._syncs = 0
        self._sync_waiters: list[Deferred[PBXState]] = []
        self._retry: IDelayedCall | None = None
        #: Whether a sync of this session is on its way, and whether another must follow it.
        self._syncing = False
        self._sync_again = False
        self._logged_limits: dict[str, str] | None = None
        #: The factory's `when_ready` while no session is up: it fails if the
        #: factory gives up between connections, which no listener hears of.
        self._ready: Deferred[Any] | None = None

    def __repr__(self) -> str:
        status = "stopped" if self._stopped else "synced" if self.synced else "not synced"
        return (
            f"<PBXState {status}: {len(self.channels)} channels, {len(self.calls)} calls, "
            f"{len(self.queues)} queues>"
        )

    # --- what it knows -----------------------------------------------------------------------

    @property
    def limits(self) -> Mapping[str, str]:
        """
        What the model cannot track on this session, and why: topic
        (``channels``, ``dialplan``, ``queues``, ``devices``, ``restarts``,
        ``filters``) -> reason.  Empty when it sees everything it needs.
        """
        return MappingProxyType(self._sync.limits)

    def snapshot(self) -> dict[str, Any]:
        """The whole model as plain JSON-able data (shape: ``docs/state.rst``, version 1)."""
        protocol = self._session_protocol
        startup = self._sync._startup
        server = {
            "ami_version": getattr(protocol, "ami_version", None),
            "startup": " ".join(startup) if startup else None,
        }
        return snapshot_of(self._store, self.synced, self._sync.limits, server)

    # --- listeners ---------------------------------------------------------------------------

    def add_listener(self, listener: object) -> None:
        """
        Tell ``listener`` about every change: whichever `IStateListener`
        methods it has are called (subclass `StateListenerMixin`).
        """
        self._store.outbox.add_listener(listener)

    def remove_listener(self, listener: object) -> None:
        """Undo `add_listener` (`ValueError` if it was not added)."""
        self._store.outbox.remove_listener(listener)

    # --- life --------------------------------------------------------------------------------

    def start(self) -> Deferred[PBXState]:
        """
        Subscribe, then sync.  Fires with this state once the first sync is
        complete; fails with `StateStopped` if `stop` comes first (or the
        factory gives up), and at once with `ValueError` for an
        `AMIProtocol` that is not logged in.
        """
        if self._stopped is not None:
            return fail(self._stopped)
        if self._started:
            return self.when_synced()
        ami = self._ami
        if self._factory is None and not ami.logged_in:  # type: ignore[union-attr]
            return fail(ValueError("PBXState needs a logged-in AMIProtocol"))
        self._started = True
        for name, handler in self._handlers.items():
            ami.add_event_handler(name, handler)
        waiter = self.when_synced()
        factory = self._factory
        if factory is not None:
            factory.add_connection_listener(self._follower)
            protocol = factory.protocol_instance
            if protocol is not None:
                self._logged_in(protocol)
            else:
                self._watch_factory()
        else:
            assert isinstance(ami, AMIProtocol)
            self._logged_in(ami)
            ami.when_disconnected().addCallback(lambda _: self._lost(ami))
        return waiter

    def when_synced(self) -> Deferred[PBXState]:
        """
        Fires with this state at the next completed sync, or at once if it is
        synced; fails with `StateStopped` if it stops first.
        """
        if self._stopped is not None:
            return fail(self._stopped)
        if self.synced:
            return succeed(self)
        waiter: Deferred[PBXState] = Deferred(self._cancel_waiter)
        self._sync_waiters.append(waiter)
        return waiter

    def _cancel_waiter(self, waiter: Deferred[PBXState]) -> None:
        if waiter in self._sync_waiters:
            self._sync_waiters.remove(waiter)

    def stop(self) -> None:
        """
        Detach from the AMI client: no more events are applied.  The objects
        keep their last values; every pending Deferred (`start`,
        `when_synced`, the objects' ``when_*()``) fails with `StateStopped`.
        """
        self._halt(StateStopped())
        if self._started:
            self._started = False
            for name, handler in self._handlers.items():
                with suppress(ValueError):
                    self._ami.remove_event_handler(name, handler)
            if self._factory is not None:
                with suppress(ValueError):
                    self._factory.remove_connection_listener(self._follower)

    def _halt(self, error: StateStopped) -> None:
        if self._stopped is not None:
            return
        self._stopped = error
        self.synced = False
        self._cancel_retry()
        ready, self._ready = self._ready, None
        if ready is not None:
            ready.cancel()
        self._sync.session += 1  # answers still on their way change nothing now
        failure = Failure(error)  # type: ignore[no-untyped-call]
        waiters, self._sync_waiters = self._sync_waiters, []
        fire_all(waiters, failure)
        store = self._store
        objects: list[Any] = [*store.channels.values(), *store.calls.values()]
        for obj in objects:
            if obj._waiters:
                fire_all(obj._waiters.take_all(), failure)

    # --- sessions ----------------------------------------------------------------------------

    def _connected(self, protocol: Any) -> None:
        if self._stopped is None:
            self._session_protocol = protocol
            self._sync.session_started()

    def _logged_in(self, protocol: Any) -> None:
        if self._stopped is not None:
            return
        if protocol is not self._session_protocol:
            self._connected(protocol)
        self._begin(protocol, self._sync.session)

    def _begin(self, protocol: Any, session: int) -> None:
        self._retry = None
        if self._stopped is not None or session != self._sync.session:
            return
        self._syncing = True
        self._sync_again = False
        d = self._sync.run(protocol, self._session_limits())
        d.addCallback(self._sync_done, protocol, session)

    def _session_limits(self) -> dict[str, str]:
        """What the session's event mask and filters take away (known for a factory only)."""
        factory = self._factory
        if factory is None:
            return {}
        limits: dict[str, str] = {}
        mask = getattr(factory, "_event_mask", None) or factory.login_events
        classes = classes_of_mask(mask)
        if classes is not None:
            limits.update(limits_of_classes(classes, f"the session's event mask ({mask})"))
        for topic, why in filter_limits(factory.filters).items():
            limits[topic] = f"{limits[topic]}; {why}" if topic in limits else why
        return limits

    def _sync_done(self, complete: bool, protocol: Any, session: int) -> None:
        if self._stopped is not None or session != self._sync.session:
            return
        self._syncing = False
        if not complete:
            if protocol.connected_and_open:
                self._retry = self.clock.callLater(RETRY_SECONDS, self._begin, protocol, session)
            return
        limits = dict(self._sync.limits)
        if limits != self._logged_limits:
            self._logged_limits = limits
            if limits:
                _log.warn("{what}", what=describe(limits))
            else:
                _log.info("{what}", what=describe(limits))
        resynced = self._syncs > 0
        self._syncs += 1
        self.synced = True
        outbox = self._store.outbox
        outbox.note("synced", resynced)
        outbox.flush()
        waiters, self._sync_waiters = self._sync_waiters, []
        fire_all(waiters, self)
        if self._sync_again:
            self._begin(protocol, session)

    def _fully_booted(self, event: Message) -> None:
        """Asterisk is fully booted; if it was still booting at this session's sync, sync again."""
        if not self._sync.on_fully_booted(event) or self._stopped is not None:
            return
        # Lists taken mid-boot lack what had not loaded (QueueStatus was an
        # unknown command, no hints yet): take them again now.
        _log.info("Asterisk finished booting after the sync: syncing again")
        if self._syncing:
            self._sync_again = True
        elif self._retry is None and self._session_protocol is not None:
            self._begin(self._session_protocol, self._sync.session)

    def _ended(self) -> None:
        self.synced = False
        self._syncing = False
        self._cancel_retry()
        self._sync.session_ended()

    def _lost(self, protocol: Any) -> None:
        """A bare protocol's connection ended: it does not come back."""
        if protocol is self._ami and self._stopped is None:
            self._ended()
            self._halt(
                StateStopped(
                    "the AMI connection was lost (a bare AMIProtocol does not reconnect: "
                    "give PBXState an AMIFactory)"
                )
            )

    def _watch_factory(self) -> None:
        """Until the next login, fail when the factory gives up (a stop between connections)."""
        factory = self._factory
        if factory is None or self._stopped is not None or self._ready is not None:
            return
        ready = self._ready = factory.when_ready()
        ready.addCallbacks(self._factory_ready, self._factory_gave_up)

    def _factory_ready(self, protocol: Any) -> None:
        self._ready = None  # the follower's logged_in does the work

    def _factory_gave_up(self, failure: Failure) -> None:
        self._ready = None
        factory = self._factory
        cancelled = isinstance(failure.value, CancelledError)
        if not cancelled and factory is not None and factory.stopped:
            self._halt(StateStopped(self._follower._why))

    def _cancel_retry(self) -> None:
        retry, self._retry = self._retry, None
        if retry is not None and retry.active():
            retry.cancel()


class _ConnectionFollower:
    """The `IConnectionListener` a `PBXState` registers with its factory."""

    def __init__(self, state: PBXState) -> None:
        self.state = state

    def connected(self, protocol: Any) -> None:
        self.state._connected(protocol)

    def logged_in(self, protocol: Any) -> None:
        self.state._logged_in(protocol)

    def disconnected(self, reason: Any) -> None:
        self.state._ended()
        self._maybe_stopped()
        self.state._watch_factory()

    def auth_failed(self, error: Any) -> None:
        self._why = f"the AMI login was refused ({error})"
        self._maybe_stopped()

    def connection_failed(self, reason: Any) -> None:
        self._maybe_stopped()

    _why = "the AMI factory stopped"

    def _maybe_stopped(self) -> None:
        factory = self.state._factory
        if factory is not None and factory.stopped:
            self.state._halt(StateStopped(self._why))
