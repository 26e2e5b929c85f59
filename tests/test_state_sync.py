"""
`PBXState`'s sync: subscribe first, then read the lists on the same session;
events and list rows applied idempotently; tombstones; reconcile (never
reset) across reconnects; Asterisk restarts; the self-check of what the
session can see.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred
from twisted.trial.unittest import SynchronousTestCase

from tests.factory_harness import Harness
from tests.statefake import (
    BareSession,
    Chan,
    Log,
    PBXData,
    bridge_event,
    channel_event,
    wire,
)
from txami import ObjectGone, PBXState, StateStopped
from txami.message import Message
from txami.state.sync import GONE_DISCONNECTED, GONE_NOT_LISTED, GONE_RESTART


def pair(data: PBXData, n: int, bridge: str = "") -> tuple[Chan, Chan]:
    """A Local channel pair, n;1 and n;2, known to the scripted server."""
    one = data.add(Chan(f"100.{n}", f"Local/1000@txami-test-{n:08x};1", bridge=bridge))
    two = data.add(Chan(f"100.{n + 1}", f"Local/1000@txami-test-{n:08x};2", linkedid=one.uniqueid))
    return one, two


class FirstSyncTests(SynchronousTestCase):
    """The first sync on a bare, logged-in protocol."""

    def test_lists_become_the_model(self) -> None:
        """Channels, bridges, calls, devices and hints come from the lists; start fires."""
        data = PBXData()
        a, b = pair(data, 1, bridge="br-1")
        c = data.add(Chan("100.9", "Local/2000@txami-test-00000009;1", bridge="br-1"))
        data.bridges["br-1"] = "simple_bridge"
        data.devices["Custom:x"] = "INUSE"
        data.hints[("2000", "txami-test")] = ("Custom:x", 1, "InUse")
        session = BareSession(data)
        state, log = session.state()
        self.assertIs(self.successResultOf(session.started), state)
        self.assertTrue(state.synced)
        self.assertEqual(sorted(state.channels), ["100.1", "100.2", "100.9"])
        self.assertEqual(
            [ch.uniqueid for ch in state.bridges["br-1"].channels], ["100.1", "100.9"]
        )
        (call,) = state.calls.values()
        self.assertEqual(sorted(ch.uniqueid for ch in call.channels), ["100.1", "100.2", "100.9"])
        self.assertEqual(state.devices["Custom:x"].state, "INUSE")
        self.assertEqual(state.hints[("2000", "txami-test")].status, 1)
        self.assertEqual(log.names("synced"), [False])
        self.assertEqual(len(log.of("channel_new")), 3)
        self.assertEqual(len(log.of("call_new")), 1)
        self.assertEqual(log.of("call_merged"), [])
        self.assertEqual(state.channels["100.1"].application, "Wait")
        self.assertEqual(state.channels["100.1"].created, -5.0)
        del a, b, c

    def test_subscribed_before_listing(self) -> None:
        """An event arriving before the list answer is applied; the row then updates it, once."""
        data = PBXData()
        one, _ = pair(data, 1)
        session = BareSession(data)
        state = PBXState(session.protocol, clock=session.clock)
        log = Log()
        state.add_listener(log)
        session.started = state.start()
        one.state = 5
        session.send(channel_event("Newstate", one))
        self.assertEqual(state.channels["100.1"].state, 5)
        one.state = 6
        session.answer()
        self.assertEqual(state.channels["100.1"].state, 6)
        self.assertEqual(log.names("channel_new").count(state.channels["100.1"]), 1)

    def test_newchannel_for_a_known_channel_is_an_update(self) -> None:
        """A Newchannel arriving after the list named the channel does not make a second one."""
        data = PBXData()
        one, _ = pair(data, 1)
        session = BareSession(data)
        state, log = session.state()
        kept = state.channels["100.1"]
        one.state = 0
        session.send(channel_event("Newchannel", one))
        self.assertIs(state.channels["100.1"], kept)
        self.assertEqual(kept.state, 0)
        self.assertEqual(log.names("channel_new").count(kept), 1)

    def test_hangup_for_an_unknown_channel_does_nothing(self) -> None:
        """A Hangup of a channel never seen changes nothing and tells no listener."""
        session = BareSession()
        state, log = session.state()
        log.clear()
        session.send(channel_event("Hangup", Chan("999.1", "Local/x-1;1"), ("Cause", "16")))
        self.assertEqual(dict(state.channels), {})
        self.assertEqual(log.calls, [])

    def test_tombstone_stops_a_late_row_and_event(self) -> None:
        """After a Hangup, neither a list row nor a later event brings the channel back."""
        data = PBXData()
        one, two = pair(data, 1)
        session = BareSession(data)
        state, log = session.state()
        session.send(channel_event("Hangup", one, ("Cause", "16")))
        self.assertNotIn("100.1", state.channels)
        session.send(channel_event("Newstate", one))
        session.send(channel_event("DialEnd", two, *[(f"Dest{k}", v) for k, v in one.pairs()]))
        self.assertNotIn("100.1", state.channels)
        # A list taken just before the hangup still shows it: a re-read must not revive it.
        state._sync._channel_list(_rows(session, data), state._sync.session, {})
        self.assertNotIn("100.1", state.channels)
        self.assertEqual(log.names("channel_new").count(state.channels["100.2"]), 1)

    def test_assigned_channel_id_recurs(self) -> None:
        """A Newchannel may reuse a hung-up Uniqueid (Originate's ChannelId): a new channel."""
        session = BareSession()
        state, _log = session.state()
        chan = Chan("my-id", "Local/1000@txami-test-00000001;1")
        session.send(channel_event("Newchannel", chan))
        first = state.channels["my-id"]
        session.send(channel_event("Hangup", chan, ("Cause", "16")))
        session.send(channel_event("Newchannel", chan))
        second = state.channels["my-id"]
        self.assertIsNot(first, second)
        self.assertEqual(first.hangup_cause, 16)
        self.assertIsNone(second.hangup_cause)
        self.assertNotEqual(first.call, second.call)
        self.assertNotEqual(first.call.id, second.call.id)  # type: ignore[union-attr]

    def test_gone_from_a_list_of_the_same_session(self) -> None:
        """A channel the sync does not list (its Hangup still on its way) goes, 'not listed'."""
        session = BareSession()
        state = PBXState(session.protocol, clock=session.clock)
        log = Log()
        state.add_listener(log)
        session.started = state.start()
        session.send(channel_event("Newchannel", Chan("5.1", "Local/1@x-1;1")))
        session.answer()
        self.assertEqual(log.of("channel_gone")[0][1], GONE_NOT_LISTED)
        self.assertNotIn("5.1", state.channels)

    def test_no_bridge_id_reads_bridge_info(self) -> None:
        """Without CoreShowChannel's BridgeId (Asterisk 12.0-12.6), BridgeInfo gives members."""
        data = PBXData(no_bridge_ids=True)
        pair(data, 1, bridge="br-1")
        data.bridges["br-1"] = "simple_bridge"
        session = BareSession(data)
        state, _ = session.state()
        self.assertFalse(state.synced)
        session.answer()  # the BridgeInfo
        self.assertTrue(state.synced)
        self.assertEqual([c.uniqueid for c in state.bridges["br-1"].channels], ["100.1"])

    def test_when_synced(self) -> None:
        """when_synced fires at once when synced, else at the sync's end."""
        session = BareSession()
        state = PBXState(session.protocol, clock=session.clock)
        started = state.start()
        waiting = state.when_synced()
        self.assertNoResult(waiting)
        session.answer()
        self.assertIs(self.successResultOf(waiting), state)
        self.assertIs(self.successResultOf(started), state)
        self.assertIs(self.successResultOf(state.when_synced()), state)

    def test_when_synced_cancelled_by_another(self) -> None:
        """A when_synced cancelled by an earlier one's callback stays cancelled; the next fires."""
        session = BareSession()
        state = PBXState(session.protocol, clock=session.clock)
        first = state.start()
        second = state.when_synced()
        third = state.when_synced()

        def cancel_second(result: PBXState) -> PBXState:
            second.cancel()
            return result

        first.addCallback(cancel_second)
        session.answer()
        self.assertIs(self.successResultOf(first), state)
        self.failureResultOf(second, CancelledError)
        self.assertIs(self.successResultOf(third), state)

    def test_start_needs_a_logged_in_protocol(self) -> None:
        """A protocol that is not logged in is refused with ValueError."""
        from twisted.internet.task import Clock

        from txami import AMIProtocol

        state = PBXState(AMIProtocol(Clock()))
        self.failureResultOf(state.start(), ValueError)

    def test_a_failed_list_retries(self) -> None:
        """A list that times out leaves the model unsynced and the sync is tried again."""
        data = PBXData(ignore={"CoreShowChannels"})
        session = BareSession(data)
        state, _ = session.state()
        session.clock.advance(31)  # the action timeout
        self.assertFalse(state.synced)
        data.ignore.clear()
        session.clock.advance(10)
        session.answer()
        self.assertTrue(state.synced)


def _rows(session: BareSession, data: PBXData) -> object:
    """A CoreShowChannels answer of ``data`` as the protocol would hand it over."""
    from txami.message import Message

    raw = data._coreshowchannels(Message([("Action", "CoreShowChannels"), ("ActionID", "x")]))
    blocks = [Message.parse(b) for b in raw.split(b"\r\n\r\n") if b]
    response = blocks[0]
    response.events = [b for b in blocks[1:-1]]
    return response


class ReconnectTests(SynchronousTestCase):
    """A model over an AMIFactory follows it through reconnects."""

    def setUp(self) -> None:
        self.data = PBXData()
        self.harness = Harness(keepalive=None)
        self.state = PBXState(self.harness.factory)
        self.log = Log()
        self.state.add_listener(self.log)
        self.started = self.state.start()

    def connect(self, booted_at: float | None = None) -> list[Message]:
        """A new connection: login (and FullyBooted if Asterisk booted at that time), then sync."""
        server = self.harness.establish()
        from tests.factory_harness import BANNER

        server.send(BANNER)
        (login,) = [a for a in server.actions() if a.name == "Login"]
        server.reply(login, Message="Authentication accepted")
        if booted_at is not None:
            uptime = str(int(self.harness.clock.seconds() - booted_at))
            server.send(wire("FullyBooted", [("Privilege", "system,all"), ("Uptime", uptime)]))
        return self.data.answer(server)

    def drop(self) -> None:
        """The connection breaks; the factory's next attempt starts (after its 1 s delay)."""
        self.harness.server.transport.close()
        self.harness.clock.advance(self.harness.factory.delay)

    def test_survivors_keep_identity_and_the_vanished_go(self) -> None:
        """After a reconnect, kept channels are the same objects; vanished ones go, once."""
        one, two = pair(self.data, 1, bridge="b1")
        three, four = pair(self.data, 3, bridge="b1")
        self.data.bridges["b1"] = "simple_bridge"
        self.connect(booted_at=-100)
        self.assertTrue(self.successResultOf(self.started).synced)
        kept = self.state.channels["100.1"]
        call = kept.call
        self.drop()
        self.assertFalse(self.state.synced)
        del self.data.channels["100.3"], self.data.channels["100.4"]
        self.log.clear()
        self.harness.clock.advance(5)
        self.connect(booted_at=-100)
        self.assertTrue(self.state.synced)
        self.assertIs(self.state.channels["100.1"], kept)
        self.assertIs(kept.call, call)
        gone = sorted((c.uniqueid, why) for c, why in self.log.of("channel_gone"))
        self.assertEqual(gone, [("100.3", GONE_DISCONNECTED), ("100.4", GONE_DISCONNECTED)])
        self.assertEqual(self.log.of("channel_new"), [])
        self.assertEqual([c for c, _ in self.log.of("channel_updated") if c is kept], [])
        self.assertEqual(self.log.names("synced"), [True])
        self.assertIsNone(self.state.channels["100.2"].hangup_cause)
        self.assertEqual(three.uniqueid, "100.3")
        del one, two, four

    def test_a_changed_survivor_is_updated_once(self) -> None:
        """A channel that changed while disconnected gets one channel_updated with the fields."""
        one, _ = pair(self.data, 1)
        self.connect()
        kept = self.state.channels["100.1"]
        self.drop()
        one.state = 5
        one.exten = "2000"
        self.log.clear()
        self.connect()
        updates = [f for c, f in self.log.of("channel_updated") if c is kept]
        self.assertEqual(len(updates), 1)
        self.assertTrue({"state", "exten"} <= updates[0])

    def test_restart_seen_in_fully_booted(self) -> None:
        """Uptime says Asterisk booted after the session ended: everything ends, restarted."""
        pair(self.data, 1)
        self.harness.clock.advance(1000)
        self.connect(booted_at=500)
        old = self.state.channels["100.1"]
        self.drop()
        self.harness.clock.advance(30)
        self.data.startup = ("2026-01-01", "10:30:00")
        self.log.clear()
        self.connect(booted_at=self.harness.clock.seconds() - 10)
        new = self.state.channels["100.1"]  # the same Uniqueid again (an assigned ChannelId)
        self.assertIsNot(new, old)
        self.assertEqual(old.hangup_cause, 0)
        reasons = {why for _, why in self.log.of("channel_gone")}
        self.assertEqual(reasons, {GONE_RESTART})
        self.assertEqual({why for _, why in self.log.of("call_ended")}, {GONE_RESTART})

    def test_restart_seen_in_core_status(self) -> None:
        """Without FullyBooted (no system class), CoreStatus's startup time tells a restart."""
        pair(self.data, 1)
        self.connect()
        old = self.state.channels["100.1"]
        self.drop()
        del self.data.channels["100.2"]
        self.data.startup = ("2026-01-02", "08:00:00")
        self.log.clear()
        self.connect()
        self.assertIsNot(self.state.channels["100.1"], old)
        self.assertEqual({why for _, why in self.log.of("channel_gone")}, {GONE_RESTART})

    def test_core_status_has_the_last_word(self) -> None:
        """An Uptime that shows no restart does not stop CoreStatus from showing one."""
        pair(self.data, 1)
        self.connect(booted_at=-100)
        old = self.state.channels["100.1"]
        self.drop()
        self.data.startup = ("2026-01-01", "10:00:01")
        self.connect(booted_at=-100)
        self.assertIsNot(self.state.channels["100.1"], old)
        self.assertEqual({why for _, why in self.log.of("channel_gone")}, {GONE_RESTART})

    def test_an_unreadable_uptime_is_ignored(self) -> None:
        """A FullyBooted whose Uptime is not a number of seconds is ignored; CoreStatus decides."""
        pair(self.data, 1)
        self.connect()
        old = self.state.channels["100.1"]
        self.drop()
        server = self.harness.establish()
        from tests.factory_harness import BANNER

        server.send(BANNER)
        (login,) = [a for a in server.actions() if a.name == "Login"]
        server.reply(login, Message="Authentication accepted")
        for uptime in ("\u00b2", "-5", "soon"):
            server.send(wire("FullyBooted", [("Privilege", "system,all"), ("Uptime", uptime)]))
        self.data.answer(server)
        self.assertTrue(self.state.synced)
        self.assertIs(self.state.channels["100.1"], old)
        self.assertEqual(self.log.of("channel_gone"), [])

    def test_no_restart_when_uptime_continues(self) -> None:
        """An Uptime that goes on from before keeps every object."""
        pair(self.data, 1)
        self.connect(booted_at=-100)
        old = self.state.channels["100.1"]
        self.drop()
        self.harness.clock.advance(20)
        self.connect(booted_at=-100)
        self.assertIs(self.state.channels["100.1"], old)
        self.assertEqual(self.log.of("channel_gone"), [])

    def test_restart_seen_in_a_boot(self) -> None:
        """Booted before, booting now (no FullyBooted at login): restarted, even in one second."""
        pair(self.data, 1)
        self.connect(booted_at=-100)
        old = self.state.channels["100.1"]
        self.drop()
        self.log.clear()
        self.connect()  # CoreStatus gives the same startup second as before
        self.assertIsNot(self.state.channels["100.1"], old)
        reasons = {why for c, why in self.log.of("channel_gone") if c is old}
        self.assertEqual(reasons, {GONE_RESTART})

    def test_booting_twice_is_not_a_restart(self) -> None:
        """Two sessions in one boot (no FullyBooted in either): CoreStatus decides, no restart."""
        pair(self.data, 1)
        self.connect()
        old = self.state.channels["100.1"]
        self.drop()
        self.connect()
        self.assertIs(self.state.channels["100.1"], old)
        self.assertEqual(self.log.of("channel_gone"), [])

    def test_synced_again_when_the_boot_ends(self) -> None:
        """Lists taken mid-boot are taken again at FullyBooted: the queues come, limits clear."""
        self.data.refuse["QueueStatus"] = "Invalid/unknown command: QueueStatus."
        self.connect()
        self.assertIn("queues", self.state.limits)
        self.assertEqual(self.log.names("synced"), [False])
        del self.data.refuse["QueueStatus"]
        server = self.harness.server
        server.send(wire("FullyBooted", [("Privilege", "system,all"), ("Uptime", "3")]))
        again = self.data.answer(server)
        self.assertEqual([a.name for a in again if a.name == "QueueStatus"], ["QueueStatus"])
        self.assertEqual(dict(self.state.limits), {})
        self.assertEqual(self.log.names("synced"), [False, True])

    def test_boot_ending_during_the_sync(self) -> None:
        """A FullyBooted while the mid-boot sync still runs: one more sync follows it, not two."""
        self.data.ignore.add("QueueStatus")
        first = self.connect()
        (queue_status,) = [a for a in first if a.name == "QueueStatus"]
        self.assertFalse(self.state.synced)
        server = self.harness.server
        server.send(wire("FullyBooted", [("Privilege", "system,all"), ("Uptime", "3")]))
        self.assertEqual(server.actions(), [])
        self.data.ignore.clear()
        server.send(self.data._queuestatus(queue_status))
        self.assertEqual(self.log.names("synced"), [False])
        again = self.data.answer(server)
        self.assertEqual([a.name for a in again], [a.name for a in first])
        self.assertEqual(self.log.names("synced"), [False, True])
        self.assertEqual(server.actions(), [])

    def test_events_between_login_and_list(self) -> None:
        """A hangup announced before the re-sync's list ends the channel as a hangup."""
        one, _ = pair(self.data, 1)
        self.connect()
        self.drop()
        server = self.harness.establish()
        from tests.factory_harness import BANNER

        server.send(BANNER)
        (login,) = [a for a in server.actions() if a.name == "Login"]
        server.reply(login, Message="Authentication accepted")
        server.send(channel_event("Hangup", one, ("Cause", "17")))
        del self.data.channels["100.1"]
        self.data.answer(server)
        (gone,) = [args for args in self.log.of("channel_gone") if args[0].uniqueid == "100.1"]
        self.assertEqual(gone[1], "hangup")
        self.assertEqual(gone[0].hangup_cause, 17)

    def test_stop_before_the_lists_answer(self) -> None:
        """Lists answered after stop() change nothing."""
        pair(self.data, 1)
        server = self.harness.establish()
        server.answer_login()
        self.state.stop()
        self.data.answer(server)
        self.assertEqual(dict(self.state.channels), {})
        self.failureResultOf(self.started, StateStopped)

    def test_stop_fails_the_waiters(self) -> None:
        """stop() fails start, when_synced and the objects' when_* Deferreds with StateStopped."""
        pair(self.data, 1)
        self.data.ignore.add("CoreShowChannels")
        self.connect()
        waiting = self.state.when_synced()
        self.state.stop()
        self.failureResultOf(self.started, StateStopped)
        self.failureResultOf(waiting, StateStopped)
        self.failureResultOf(self.state.when_synced(), StateStopped)
        self.assertEqual(len(self.harness.factory.dispatcher), 0)

    def test_factory_that_gives_up(self) -> None:
        """A refused login stops the factory for good: start fails with StateStopped."""
        server = self.harness.establish()
        server.answer_login(accept=False)
        self.harness.clock.advance(0)  # the connection closes
        failure = self.failureResultOf(self.started, StateStopped)
        self.assertIn("login was refused", failure.value.reason)


class FactoryStopTests(SynchronousTestCase):
    """A factory that stops with no connection up still ends the model's Deferreds."""

    def test_stopped_while_waiting_to_retry(self) -> None:
        """The factory stopped between connections: when_synced fails with StateStopped."""
        harness = Harness(keepalive=None)
        state = PBXState(harness.factory)
        started = state.start()
        server = harness.establish()
        server.answer_login()
        PBXData().answer(server)
        self.successResultOf(started)
        harness.server.transport.close()
        waiting = state.when_synced()
        self.assertNoResult(waiting)
        harness.factory.stop()
        self.failureResultOf(waiting, StateStopped)
        self.failureResultOf(state.when_synced(), StateStopped)

    def test_start_on_a_stopped_factory(self) -> None:
        """start() on a factory stopped already fails at once with StateStopped."""
        harness = Harness(keepalive=None)
        harness.factory.stop()
        state = PBXState(harness.factory)
        self.failureResultOf(state.start(), StateStopped)

    def test_stop_leaves_no_waiter_with_the_factory(self) -> None:
        """stop() before any login takes back the model's wait for the factory."""
        harness = Harness(keepalive=None)
        state = PBXState(harness.factory)
        started = state.start()
        self.assertEqual(len(harness.factory._ready_waiters), 1)
        state.stop()
        self.failureResultOf(started, StateStopped)
        self.assertEqual(harness.factory._ready_waiters, [])


class BareProtocolTests(SynchronousTestCase):
    """A model over a bare AMIProtocol ends with the connection."""

    def test_connection_lost(self) -> None:
        """The waiters fail when the connection ends; the objects keep their values."""
        data = PBXData()
        pair(data, 1)
        session = BareSession(data)
        state, _ = session.state()
        channel = state.channels["100.1"]
        waiting = channel.when_hung_up()
        session.protocol.connectionLost()
        self.assertFalse(state.synced)
        self.failureResultOf(waiting, StateStopped)
        self.failureResultOf(state.when_synced(), StateStopped)
        self.assertIs(state.channels["100.1"], channel)


class LimitTests(SynchronousTestCase):
    """The self-check says what the session cannot see."""

    def test_everything_visible(self) -> None:
        """An admin session with all lists: no limits."""
        session = BareSession()
        state, _ = session.state()
        self.assertEqual(dict(state.limits), {})
        self.assertEqual(state.snapshot()["limits"], {})

    def test_refused_lists(self) -> None:
        """A refused list names what cannot be synced; the rest of the sync goes on."""
        data = PBXData(
            refuse={"CoreShowChannels": "Permission denied", "QueueStatus": "Permission denied"}
        )
        session = BareSession(data)
        state, _ = session.state()
        self.assertTrue(state.synced)
        self.assertIn("CoreShowChannels: Permission denied", state.limits["channels"])
        self.assertIn("QueueStatus: Permission denied", state.limits["queues"])

    def test_old_asterisk_lists(self) -> None:
        """Asterisk 12 has no DeviceStateList: device states come from events only."""
        unknown = "Invalid/unknown command: DeviceStateList."
        session = BareSession(PBXData(refuse={"DeviceStateList": unknown}))
        state, _ = session.state()
        self.assertIn("DeviceStateList", state.limits["devices"])

    def test_read_permissions(self) -> None:
        """Read classes without agent and dialplan take queues and applications away."""
        session = BareSession(PBXData(read_perm="system,call"))
        state, _ = session.state()
        self.assertEqual(sorted(state.limits), ["dialplan", "queues"])
        self.assertIn("'agent'", state.limits["queues"])

    def test_event_mask_and_filters(self) -> None:
        """A factory's event mask and filters are checked against the events needed."""
        harness = Harness(keepalive=None, events="call,system", filters=["!Event: Hangup"])
        state = PBXState(harness.factory)
        started = state.start()
        server = harness.establish()
        server.answer_login()
        for action in server.actions():
            server.reply(action)  # the filter
        PBXData().answer(server)
        self.successResultOf(started)
        self.assertIn("event mask", state.limits["queues"])
        self.assertIn("Hangup", state.limits["channels"])
        self.assertNotIn("restarts", state.limits)

    def test_logged(self) -> None:
        """The first sync logs one line saying what cannot be tracked."""
        from twisted.logger import globalLogPublisher

        seen: list[dict[str, object]] = []
        globalLogPublisher.addObserver(seen.append)
        self.addCleanup(globalLogPublisher.removeObserver, seen.append)
        session = BareSession(PBXData(read_perm="call"))
        session.state()
        lines = [e for e in seen if e.get("log_namespace") == "txami.state"]
        self.assertEqual(len(lines), 1)
        self.assertIn("queues", str(lines[0]["what"]))


class WaiterTests(SynchronousTestCase):
    """A channel's when_* Deferreds fire once, or fail when they no longer can."""

    def setUp(self) -> None:
        self.session = BareSession()
        self.state, self.log = self.session.state()
        self.chan = Chan("7.1", "Local/1000@txami-test-00000001;1", state=4)
        self.session.send(channel_event("Newchannel", self.chan))
        self.channel = self.state.channels["7.1"]

    def test_answered_bridged_hung_up(self) -> None:
        """Each fires with its value when it happens, and at once afterwards."""
        answered = self.channel.when_answered()
        bridged = self.channel.when_bridged()
        hung_up = self.channel.when_hung_up()
        self.assertNoResult(answered)
        self.chan.state = 6
        self.session.send(channel_event("Newstate", self.chan))
        self.assertIs(self.successResultOf(answered), self.channel)
        self.session.send(bridge_event("BridgeEnter", "b1", self.chan))
        self.assertIs(self.successResultOf(bridged), self.state.bridges["b1"])
        self.assertIs(self.successResultOf(self.channel.when_bridged()), self.state.bridges["b1"])
        self.session.send(channel_event("Hangup", self.chan, ("Cause", "16")))
        self.assertIs(self.successResultOf(hung_up), self.channel)
        self.assertIs(self.successResultOf(self.channel.when_hung_up()), self.channel)

    def test_hangup_first(self) -> None:
        """Hung up before answering: when_answered and when_bridged fail with ObjectGone."""
        answered = self.channel.when_answered()
        bridged = self.channel.when_bridged()
        self.session.send(channel_event("Hangup", self.chan, ("Cause", "21")))
        failure = self.failureResultOf(answered, ObjectGone)
        self.assertEqual(failure.value.reason, "hangup")
        self.failureResultOf(bridged, ObjectGone)
        self.failureResultOf(self.channel.when_answered(), ObjectGone)

    def _cancel_on_failure(self, failing: Deferred[object], other: Deferred[object]) -> None:
        def cancel(failure: object) -> object:
            other.cancel()
            return failure

        failing.addErrback(cancel)

    def test_cancelled_by_another_waiter(self) -> None:
        """A waiter cancelled by a sibling's errback is not fired again; the next event applies."""
        answered = self.channel.when_answered()
        hung_up = self.channel.when_hung_up()
        self._cancel_on_failure(answered, hung_up)
        later = Chan("9.1", "PJSIP/100-0000000a")
        self.session.send(
            channel_event("Hangup", self.chan, ("Cause", "16"))
            + channel_event("Newchannel", later)
        )
        self.failureResultOf(answered, ObjectGone)
        self.failureResultOf(hung_up, CancelledError)
        self.assertEqual([c.uniqueid for c in self.log.names("channel_gone")], ["7.1"])
        self.assertEqual(self.log.names("channel_new")[-1].uniqueid, "9.1")

    def test_cancelled_by_another_waiter_at_stop(self) -> None:
        """stop() leaves alone a waiter that a sibling's errback cancelled, and does not raise."""
        answered = self.channel.when_answered()
        hung_up = self.channel.when_hung_up()
        self._cancel_on_failure(answered, hung_up)
        self.state.stop()
        self.failureResultOf(answered, StateStopped)
        self.failureResultOf(hung_up, CancelledError)

    def test_call_when_ended(self) -> None:
        """A call's when_ended fires when its last channel goes; a merged call's fails."""
        call = self.channel.call
        assert call is not None
        ended = call.when_ended()
        other = Chan("8.1", "Local/1001@txami-test-00000002;1")
        self.session.send(channel_event("Newchannel", other))
        other_call = self.state.channels["8.1"].call
        assert other_call is not None
        merged = other_call.when_ended()
        self.session.send(bridge_event("BridgeEnter", "b1", self.chan))
        self.session.send(bridge_event("BridgeEnter", "b1", other))
        self.failureResultOf(merged, ObjectGone)
        self.session.send(bridge_event("BridgeLeave", "b1", self.chan))
        self.session.send(bridge_event("BridgeLeave", "b1", other))
        self.session.send(channel_event("Hangup", other, ("Cause", "16")))
        self.session.send(channel_event("Hangup", self.chan, ("Cause", "16")))
        self.assertIs(self.successResultOf(ended), call)
