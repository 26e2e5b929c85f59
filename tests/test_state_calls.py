"""
Calls as connected components: dials, Local pairs, bridges (not holding
bridges), merges when calls join, splits when they fall apart, Local
optimisation swaps, bridge merges without a transient split, and channel
fields that no snapshot carries (hold, rename).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.statefake import BareSession, Chan, bridge_event, channel_event, wire


def dest(chan: Chan) -> list[tuple[str, str]]:
    return [(f"Dest{k}", v) for k, v in chan.pairs()]


class CallTests(SynchronousTestCase):
    """How channels group into calls."""

    def setUp(self) -> None:
        self.session = BareSession()
        self.state, self.log = self.session.state()
        self.log.clear()

    def new(self, uniqueid: str, linkedid: str = "", state: int = 6) -> Chan:
        chan = Chan(uniqueid, f"Local/{uniqueid}@txami-test-00000001;1", state, linkedid)
        self.session.send(channel_event("Newchannel", chan))
        return chan

    def call_of(self, uniqueid: str) -> str:
        call = self.state.channels[uniqueid].call
        assert call is not None
        return call.id

    def test_lone_channel_is_a_call(self) -> None:
        """A new channel that nobody requested starts a call named after it."""
        self.new("1.1")
        self.assertEqual(self.call_of("1.1"), "1.1")
        self.assertEqual(self.log.names("call_new"), [self.state.calls["1.1"]])
        self.assertEqual(self.state.calls["1.1"].started, 0.0)
        self.assertEqual(self.state.calls["1.1"].answered, 0.0)

    def test_requested_channel_joins_its_requester(self) -> None:
        """A channel whose Linkedid names a live channel starts in that channel's call."""
        self.new("1.1")
        self.new("1.2", linkedid="1.1")
        self.assertEqual(self.call_of("1.2"), "1.1")
        self.assertEqual(len(self.log.of("call_new")), 1)
        self.assertEqual(self.log.of("call_merged"), [])

    def test_dial_links_and_a_failed_dial_unlinks(self) -> None:
        """DialBegin joins caller and callee; a DialEnd other than ANSWER parts them."""
        caller = self.new("1.1")
        callee = self.new("2.1")
        self.session.send(wire("DialBegin", [*caller.pairs(), *dest(callee)]))
        self.assertEqual(self.call_of("2.1"), "1.1")
        self.assertEqual(self.log.of("call_merged")[0][0].id, "2.1")
        self.session.send(
            wire("DialEnd", [*caller.pairs(), *dest(callee), ("DialStatus", "BUSY")])
        )
        self.assertEqual(self.call_of("1.1"), "1.1")
        self.assertEqual(self.call_of("2.1"), "2.1-2")  # "2.1" named the merged call lately

    def test_answered_dial_holds(self) -> None:
        """DialEnd ANSWER keeps the link: the call survives the parties' bridge changes."""
        caller = self.new("1.1")
        callee = self.new("2.1")
        self.session.send(wire("DialBegin", [*caller.pairs(), *dest(callee)]))
        self.session.send(
            wire("DialEnd", [*caller.pairs(), *dest(callee), ("DialStatus", "ANSWER")])
        )
        self.session.send(bridge_event("BridgeEnter", "b1", caller))
        self.session.send(bridge_event("BridgeEnter", "b1", callee))
        self.session.send(bridge_event("BridgeLeave", "b1", caller))
        self.assertEqual(self.call_of("2.1"), "1.1")

    def test_local_bridge_links_the_halves(self) -> None:
        """LocalBridge joins the two halves of a Local channel."""
        one = self.new("1.1")
        two = self.new("2.1")
        pairs = [(f"LocalOne{k}", v) for k, v in one.pairs()]
        pairs += [(f"LocalTwo{k}", v) for k, v in two.pairs()]
        self.session.send(wire("LocalBridge", [*pairs, ("LocalOptimization", "Yes")]))
        self.assertEqual(self.call_of("2.1"), "1.1")

    def test_bridge_merges_calls_older_survives(self) -> None:
        """Two calls meeting in a bridge merge; the older survives, the newer is merged."""
        a = self.new("1.1")
        b = self.new("2.1")
        self.session.send(bridge_event("BridgeEnter", "b1", b))
        self.session.send(bridge_event("BridgeEnter", "b1", a))
        ((merged, into),) = self.log.of("call_merged")
        self.assertEqual((merged.id, into.id), ("2.1", "1.1"))
        self.assertEqual(merged.ended, "merged")
        self.assertEqual(sorted(self.state.calls), ["1.1"])
        self.assertIs(self.state.bridges["b1"].call, into)
        self.assertEqual(into.bridges, (self.state.bridges["b1"],))

    def test_leaving_splits_the_call(self) -> None:
        """A channel leaving the bridge that held it to the call gets a call of its own."""
        a = self.new("1.1")
        b = self.new("2.1")
        self.session.send(bridge_event("BridgeEnter", "b1", a))
        self.session.send(bridge_event("BridgeEnter", "b1", b))
        self.log.clear()
        self.session.send(bridge_event("BridgeLeave", "b1", a))
        self.assertEqual(self.call_of("1.1"), "1.1")
        self.assertEqual(self.call_of("2.1"), "2.1-2")  # "2.1" named the merged call lately
        self.assertEqual([c.id for c in self.log.names("call_new")], ["2.1-2"])

    def test_split_keeps_the_biggest_part(self) -> None:
        """When a call falls apart, its biggest part keeps it; the rest is a new call."""
        a = self.new("1.1")
        b = self.new("2.1")
        c = self.new("3.1")
        for chan in (a, b, c):
            self.session.send(bridge_event("BridgeEnter", "b1", chan))
        self.log.clear()
        self.session.send(bridge_event("BridgeLeave", "b1", a))
        self.assertEqual(self.call_of("2.1"), "1.1")
        self.assertEqual(self.call_of("3.1"), "1.1")
        self.assertEqual(self.call_of("1.1"), "1.1-2")
        self.assertEqual([c.id for c in self.log.names("call_new")], ["1.1-2"])
        moved = {c.uniqueid for c, f in self.log.of("channel_updated") if "call" in f}
        self.assertEqual(moved, {"1.1"})

    def test_holding_bridge_does_not_join(self) -> None:
        """Channels parked side by side in a holding bridge stay separate calls."""
        a = self.new("1.1")
        b = self.new("2.1")
        for chan in (a, b):
            self.session.send(
                bridge_event("BridgeEnter", "lot", chan, technology="holding_bridge")
            )
        self.assertEqual(self.call_of("1.1"), "1.1")
        self.assertEqual(self.call_of("2.1"), "2.1")
        self.assertIsNone(self.state.bridges["lot"].call)
        self.assertEqual(len(self.state.bridges["lot"].channels), 2)

    def test_bridge_merge_moves_without_splitting(self) -> None:
        """BridgeMerge moves the members at once: no call falls apart on the way."""
        a, b, c = self.new("1.1"), self.new("2.1"), self.new("3.1")
        self.session.send(bridge_event("BridgeEnter", "to", a))
        self.session.send(bridge_event("BridgeEnter", "from", b))
        self.session.send(bridge_event("BridgeEnter", "from", c))
        self.log.clear()
        merge = [("Privilege", "call,all")]
        from tests.statefake import bridge_pairs

        merge += bridge_pairs("to", prefix="To") + bridge_pairs("from", prefix="From")
        self.session.send(wire("BridgeMerge", merge))
        self.session.send(bridge_event("BridgeLeave", "from", b))
        self.session.send(bridge_event("BridgeEnter", "to", b))
        self.session.send(bridge_event("BridgeLeave", "from", c))
        self.session.send(bridge_event("BridgeEnter", "to", c))
        self.assertEqual(
            [ch.uniqueid for ch in self.state.bridges["to"].channels], ["1.1", "2.1", "3.1"]
        )
        self.assertEqual(self.state.bridges["from"].channels, [])
        self.assertEqual(self.log.of("call_new"), [])
        self.assertEqual([m.id for m, _ in self.log.of("call_merged")], ["2.1"])
        self.assertEqual({self.call_of(u) for u in ("1.1", "2.1", "3.1")}, {"1.1"})

    def test_swap_takes_the_place(self) -> None:
        """A BridgeEnter with SwapUniqueid puts the newcomer where the swapped channel was."""
        a, b, c = self.new("1.1"), self.new("2.1"), self.new("3.1")
        self.session.send(bridge_event("BridgeEnter", "b1", a))
        self.session.send(bridge_event("BridgeEnter", "b1", b))
        self.session.send(bridge_event("BridgeEnter", "b1", c, SwapUniqueid="1.1"))
        order = [ch.uniqueid for ch in self.state.bridges["b1"].channels]
        self.assertEqual(order, ["3.1", "1.1", "2.1"])
        self.session.send(bridge_event("BridgeLeave", "b1", a))
        self.assertEqual([ch.uniqueid for ch in self.state.bridges["b1"].channels], ["3.1", "2.1"])

    def test_optimization_keeps_the_call_together(self) -> None:
        """Between LocalOptimizationBegin and End, the moving channel stays linked to the pair."""
        one, two, source = self.new("1.1"), self.new("1.2"), self.new("1.3")
        peer = self.new("1.4")
        local = [(f"LocalOne{k}", v) for k, v in one.pairs()]
        local += [(f"LocalTwo{k}", v) for k, v in two.pairs()]
        self.session.send(wire("LocalBridge", local))
        self.session.send(bridge_event("BridgeEnter", "b1", peer))
        self.session.send(bridge_event("BridgeEnter", "b1", one))
        self.session.send(bridge_event("BridgeEnter", "b2", two))
        self.session.send(bridge_event("BridgeEnter", "b2", source))
        self.log.clear()
        begin = [*local, *[(f"Source{k}", v) for k, v in source.pairs()], ("Id", "0")]
        self.session.send(wire("LocalOptimizationBegin", begin))
        self.session.send(bridge_event("BridgeLeave", "b2", source))
        self.assertEqual(self.call_of("1.3"), "1.1")
        self.session.send(bridge_event("BridgeEnter", "b1", source, SwapUniqueid="1.1"))
        self.session.send(bridge_event("BridgeLeave", "b1", one))
        self.session.send(wire("LocalOptimizationEnd", [*local, ("Id", "0")]))
        self.session.send(channel_event("Hangup", one, ("Cause", "16")))
        self.session.send(channel_event("Hangup", two, ("Cause", "16")))
        self.assertEqual([c.uniqueid for c in self.state.bridges["b1"].channels], ["1.4", "1.3"])
        self.assertEqual(self.call_of("1.3"), self.call_of("1.4"))
        self.assertEqual(self.log.of("call_new"), [])
        self.assertEqual(self.log.of("call_merged"), [])

    def test_hangup_of_the_last_channel_ends_the_call(self) -> None:
        """call_ended comes with the last channel's hangup, with its reason."""
        a = self.new("1.1")
        b = self.new("1.2", linkedid="1.1")
        call = self.state.calls["1.1"]
        self.session.send(channel_event("Hangup", a, ("Cause", "16")))
        self.assertIsNone(call.ended)
        self.session.send(channel_event("Hangup", b, ("Cause", "16")))
        self.assertEqual(call.ended, "hangup")
        self.assertEqual(self.log.of("call_ended"), [(call, "hangup")])
        self.assertEqual(dict(self.state.calls), {})

    def test_hold_and_rename(self) -> None:
        """Hold/Unhold set on_hold; Rename changes the name; each is one channel_updated."""
        a = self.new("1.1")
        channel = self.state.channels["1.1"]
        self.log.clear()
        self.session.send(channel_event("Hold", a, ("MusicClass", "default")))
        self.assertTrue(channel.on_hold)
        self.session.send(channel_event("Unhold", a))
        self.assertFalse(channel.on_hold)
        rename = [("Channel", a.name), ("Newname", "Local/renamed;1"), ("Uniqueid", "1.1")]
        self.session.send(wire("Rename", rename))
        self.assertEqual(channel.name, "Local/renamed;1")
        fields = [f for c, f in self.log.of("channel_updated")]
        self.assertEqual(fields, [{"on_hold"}, {"on_hold"}, {"name"}])

    def test_newexten_sets_the_application(self) -> None:
        """Newexten gives the channel's dialplan application and its data."""
        a = self.new("1.1")
        a.exten = "1001"
        a.priority = 2
        self.session.send(
            channel_event(
                "Newexten", a, ("Extension", "1001"), ("Application", "Echo"), ("AppData", "")
            )
        )
        channel = self.state.channels["1.1"]
        self.assertEqual(
            (channel.exten, channel.priority, channel.application), ("1001", 2, "Echo")
        )
