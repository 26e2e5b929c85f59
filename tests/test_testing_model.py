"""
txami.testing.pbx beyond the recorded scenarios: what the captures do not
show (ring-no-answer, queue time-outs and counters, aborted transfers, the
dialplan's Park, hint removal, demo traffic) and the AMI actions' errors.
The recorded behaviour itself is checked in test_testing_scenarios.py.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txami import AMIError, Message
from txami.testing import FakeAsterisk, connected_pair
from txami.testing.pbx import PBX, Channel

AGENT_ONE = "Local/1000@txami-test/n"
AGENT_TWO = "Local/1001@txami-test/n"


class Model(SynchronousTestCase):
    """A fake whose events are recorded as (name, headers)."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.fake = FakeAsterisk(self.clock)
        self.addCleanup(self.fake.stop)
        self.pbx: PBX = self.fake.pbx
        self.events: list[tuple[str, dict[str, str]]] = []
        emit = self.pbx.emit_hook

        def record(name: str, headers: list[tuple[str, str]], category: int) -> None:
            self.events.append((name, dict(headers)))
            if emit is not None:
                emit(name, headers, category)

        self.pbx.emit_hook = record

    def named(self, *names: str) -> list[tuple[str, dict[str, str]]]:
        return [(n, h) for n, h in self.events if n in names]

    def pause_all(self) -> None:
        for member in (AGENT_ONE, AGENT_TWO):
            self.pbx.pause_member("support", member, True)


class QueueModelTests(Model):
    """Queues: ringing, time-outs, strategies and counters."""

    def test_ring_no_answer_and_retry(self) -> None:
        """A member that does not answer in the queue's timeout: AgentRingNoAnswer, retry."""
        self.pbx.dialplan["txami-test"]["5000"] = [("Wait", "100")]
        queue = self.pbx.queues["support"]
        queue.members[:] = []
        self.pbx.add_member("support", "Local/5000@txami-test/n", name="Sleepy")
        caller = self.pbx.incoming_call("600", caller_id='"Alice" <201>')
        self.assertEqual([n for n, _ in self.named("AgentCalled")], ["AgentCalled"])
        self.clock.advance(queue.timeout)
        [(_, noanswer)] = self.named("AgentRingNoAnswer")
        self.assertEqual(
            (noanswer["Channel"], noanswer["MemberName"], noanswer["RingTime"]),
            (caller.name, "Sleepy", "15000"),
        )
        self.assertEqual([h["DialStatus"] for _, h in self.named("DialEnd")], ["NOANSWER"])
        self.clock.advance(queue.retry)
        self.assertEqual(len(self.named("AgentCalled")), 2)
        self.assertEqual(queue.callers, [caller])

    def test_queue_timeout_goes_on_in_the_dialplan(self) -> None:
        """Queue(name,,,,5): after 5 s the caller leaves with QUEUESTATUS=TIMEOUT and goes on."""
        self.pause_all()
        self.pbx.dialplan["txami-test"]["601"] = [
            ("Answer", ""),
            ("Queue", "support,,,,5"),
            ("UserEvent", "AfterQueue"),
            ("Hangup", ""),
        ]
        caller = self.pbx.incoming_call("601", caller_id="202")
        self.clock.advance(5)
        self.assertTrue(caller.hungup)
        self.assertEqual(caller.variables["QUEUESTATUS"], "TIMEOUT")
        self.assertEqual(
            [n for n, _ in self.named("QueueCallerLeave", "UserEvent", "QueueCallerAbandon")],
            ["QueueCallerLeave", "UserEvent"],
        )
        self.assertEqual(self.pbx.queues["support"].abandoned, 0)

    def test_counters_after_a_call(self) -> None:
        """A 3 s wait, a 10 s talk: completed, hold/talk times (the first call's), calls taken."""
        self.pause_all()
        caller = self.pbx.incoming_call("600", caller_id="203")
        self.clock.advance(3)
        self.pbx.pause_member("support", AGENT_ONE, False)
        self.clock.advance(10)
        self.pbx.hangup(caller)
        queue = self.pbx.queues["support"]
        member = queue.members[0]
        self.assertEqual(
            (queue.completed, queue.hold_time, queue.talk_time, queue.abandoned),
            (1, 3, 10, 0),
        )
        self.assertEqual(
            (member.calls_taken, member.last_call > 0, member.in_call), (1, True, False)
        )
        [(_, complete)] = self.named("AgentComplete")
        self.assertEqual(
            (complete["HoldTime"], complete["TalkTime"], complete["Reason"]), ("3", "10", "caller")
        )

    def test_agent_hangs_up(self) -> None:
        """The agent hanging up ends the call with reason agent; the caller goes on."""
        caller = self.pbx.incoming_call("600", caller_id="204")
        agent = self.pbx.channel("Local/1000@txami-test-00000001;2")
        assert agent is not None
        self.pbx.hangup(agent)
        [(_, complete)] = self.named("AgentComplete")
        self.assertEqual(complete["Reason"], "agent")
        self.assertTrue(caller.hungup)  # 600 hangs up after Queue()

    def test_ringall_cancels_the_other_members(self) -> None:
        """With ring-all, the members that did not answer get DialEnd CANCEL and hang up."""
        self.pbx.dialplan["txami-test"]["5001"] = [("Wait", "100")]
        self.pbx.add_member("support", "Local/5001@txami-test/n", name="Slow")
        self.pbx.queues["support"].members.reverse()  # the slow one is rung first
        self.pbx.incoming_call("600", caller_id="205")
        statuses = {h["DestChannel"]: h["DialStatus"] for _, h in self.named("DialEnd")}
        self.assertEqual(statuses["Local/5001@txami-test-00000001;1"], "CANCEL")
        self.assertIsNone(self.pbx.channel("Local/5001@txami-test-00000001;1"))

    def test_other_strategies_ring_one_member(self) -> None:
        """A non ring-all strategy rings only the first available member."""
        self.pbx.queues["support"].strategy = "rrmemory"
        self.pbx.dialplan["txami-test"]["1000"] = [("Wait", "100")]
        self.pbx.incoming_call("600", caller_id="206")
        self.assertEqual([h["Interface"] for _, h in self.named("AgentCalled")], [AGENT_ONE])

    def test_member_status_follows_its_device(self) -> None:
        """A member's status follows its state interface's device (QueueMemberStatus)."""
        self.pbx.add_member("support", "PJSIP/300", name="Desk", state_interface="PJSIP/300")
        self.pbx.set_device_state("PJSIP/300", "UNAVAILABLE")
        [(_, status)] = [
            e for e in self.named("QueueMemberStatus") if e[1]["Interface"] == "PJSIP/300"
        ]
        self.assertEqual(status["Status"], "5")
        self.assertFalse(self.pbx.queues["support"].member("PJSIP/300").available)  # type: ignore[union-attr]


class TransferModelTests(Model):
    """Transfers and parking beyond the recordings."""

    def bridged(self) -> tuple[Channel, Channel]:
        caller = self.pbx.incoming_call("1010", caller_id='"Alice" <201>')
        callee = self.pbx.channel("Local/1000@txami-test-00000001;1")
        assert callee is not None
        return caller, callee

    def test_attended_transfer_target_hangs_up(self) -> None:
        """The target hanging up while consulted gives the call back to the transferer."""
        caller, callee = self.bridged()
        first = caller.bridge
        self.assertEqual(self.pbx.attended_transfer(caller, "2000"), "Success")
        self.assertIsNot(caller.bridge, first)
        target = self.pbx.channel("Local/2000@txami-test-00000002;1")
        assert target is not None
        self.pbx.hangup(target)
        self.assertIs(caller.bridge, first)
        self.assertEqual([n for n, _ in self.named("Hold", "Unhold")], ["Hold", "Unhold"])
        self.assertEqual(self.named("AttendedTransfer"), [])
        self.assertIsNone(callee.music_class)

    def test_attended_transfer_completes(self) -> None:
        """The transferer hanging up joins the target to the transferee."""
        caller, callee = self.bridged()
        first = caller.bridge
        self.pbx.attended_transfer(caller, "2000")
        self.pbx.hangup(caller)
        target = self.pbx.channel("Local/2000@txami-test-00000002;1")
        assert first is not None and target is not None
        self.assertEqual(first.channels, [callee, target])
        [(_, transfer)] = self.named("AttendedTransfer")
        self.assertEqual((transfer["DestType"], transfer["Result"]), ("Bridge", "Success"))

    def test_transferer_hangs_up_before_the_target_answers(self) -> None:
        """The transfer is off: the ringing target is cancelled, the transferee's call ends."""
        self.pbx.dialplan["txami-test"]["5002"] = [("Wait", "100")]
        caller, callee = self.bridged()
        self.pbx.attended_transfer(caller, "5002")
        target = self.pbx.channel("Local/5002@txami-test-00000002;1")
        assert target is not None
        self.pbx.hangup(caller)
        self.assertTrue(target.hungup)
        self.assertTrue(callee.hungup)
        self.assertEqual((self.pbx.channels, self.pbx.bridges), ({}, {}))

    def test_blind_transfer_needs_a_bridge(self) -> None:
        """A channel in no two-party bridge cannot be blind-transferred."""
        channel = self.pbx.incoming_call("1000")
        self.assertEqual(self.pbx.blind_transfer(channel, "1002"), "Invalid")

    def test_park_in_the_dialplan_and_pick_up(self) -> None:
        """Dialling 7000@parkedcalls parks the caller in 7001; dialling 7001 picks it up."""
        parked = self.pbx.incoming_call("7000", "parkedcalls", caller_id="207")
        [call] = self.pbx.parked_calls()
        self.assertEqual((call.channel, call.space), (parked, 7001))
        picker = self.pbx.incoming_call("7001", "parkedcalls", caller_id="208")
        self.assertEqual(self.pbx.parked_calls(), [])
        self.assertIs(parked.bridge, picker.bridge)
        self.assertEqual(self.pbx.device_states["park:7001@parkedcalls"], "NOT_INUSE")

    def test_park_timeout_zero_never_times_out(self) -> None:
        """Park with timeout 0 waits until someone picks it up or it hangs up."""
        _, callee = self.bridged()
        self.pbx.park(callee, timeout=0)
        self.clock.advance(3000)  # (1000 itself hangs up after an hour)
        self.assertEqual([c.channel for c in self.pbx.parked_calls()], [callee])

    def test_redirect_one_bridged_channel(self) -> None:
        """Redirecting one party of a Dial bridge: the bridge ends, the other hangs up."""
        caller, callee = self.bridged()
        self.pbx.redirect(caller, "txami-test", "1001", 1)
        self.assertTrue(callee.hungup)
        self.assertFalse(caller.hungup)
        self.assertEqual((caller.exten, caller.application), ("1001", "Echo"))

    def test_linkedid_of_a_bridge(self) -> None:
        """Channels bridged together share the oldest Linkedid."""
        caller, callee = self.bridged()
        self.assertEqual(callee.linkedid, caller.uniqueid)


class StateModelTests(Model):
    """Hints, presence, endpoint devices, hold."""

    def test_hint_removed(self) -> None:
        """Removing a hint raises ExtensionStatus -2 (Removed)."""
        self.pbx.set_hint("txami-test", "2001", None)
        [(_, status)] = self.named("ExtensionStatus")
        self.assertEqual((status["Status"], status["StatusText"]), ("-2", "Removed"))
        self.assertEqual(self.pbx.extension_state("txami-test", "2001"), ("", -1))

    def test_presence_functions(self) -> None:
        """PRESENCE_STATE() reads back what was set, field by field."""
        self.pbx.set_var(None, "PRESENCE_STATE(CustomPresence:me)", "dnd,Meeting,Until 3")
        self.assertEqual(
            [
                self.pbx.get_var(None, f"PRESENCE_STATE(CustomPresence:me,{f})")
                for f in ("value", "subtype", "message")
            ],
            ["dnd", "Meeting", "Until 3"],
        )
        self.assertEqual(self.pbx.presence_state("CustomPresence:other"), ("not_set", "", ""))

    def test_endpoint_device_lights_a_hint(self) -> None:
        """A PJSIP call makes its device ring then be in use, and the hint follows."""
        self.pbx.set_hint("txami-test", "300", "PJSIP/300")
        self.pbx.ring_time = 2
        self.pbx.originate("PJSIP/300", application="Wait", data="5")
        self.assertEqual(self.pbx.extension_state("txami-test", "300")[1], 8)
        self.clock.advance(2)
        self.assertEqual(self.pbx.extension_state("txami-test", "300")[1], 1)
        self.clock.advance(5)
        self.assertEqual(self.pbx.extension_state("txami-test", "300")[1], 0)

    def test_dial_state_when_an_endpoint_rings(self) -> None:
        """Dial to a ringing endpoint raises DialState RINGING, then DialEnd ANSWER."""
        self.pbx.dialplan["txami-test"]["300"] = [("Dial", "PJSIP/300,20"), ("Hangup", "")]
        self.pbx.ring_time = 2
        caller = self.pbx.incoming_call("300", caller_id="201")
        self.clock.advance(2)
        self.assertEqual(
            [
                (n, h["Channel"], h.get("DialStatus"))
                for n, h in self.named("DialBegin", "DialState", "DialEnd")
            ],
            [
                ("DialBegin", caller.name, None),
                ("DialState", caller.name, "RINGING"),
                ("DialEnd", caller.name, "ANSWER"),
            ],
        )
        self.assertIsNotNone(caller.bridge)

    def test_rename(self) -> None:
        """rename() raises Rename with the old and new names; later events use the new one."""
        channel = self.pbx.incoming_call("1000", caller_id="201")
        old = channel.name
        self.pbx.rename(channel, "PJSIP/201-renamed")
        self.pbx.hangup(channel)
        [(_, rename)] = self.named("Rename")
        self.assertEqual(
            rename, {"Channel": old, "Newname": "PJSIP/201-renamed", "Uniqueid": channel.uniqueid}
        )
        [(_, hangup)] = self.named("Hangup")
        self.assertEqual(hangup["Channel"], "PJSIP/201-renamed")

    def test_hold_and_unhold(self) -> None:
        """hold()/unhold() raise Hold and Unhold once each."""
        channel = self.pbx.incoming_call("1000")
        self.pbx.hold(channel, "default")
        self.pbx.hold(channel)
        self.pbx.unhold(channel)
        self.pbx.unhold(channel)
        self.assertEqual(
            [(n, h.get("MusicClass")) for n, h in self.named("Hold", "Unhold")],
            [("Hold", "default"), ("Unhold", None)],
        )


class DemoTests(Model):
    """start_demo keeps the PBX busy, within bounds, and stops."""

    def test_demo(self) -> None:
        """Long calls, waiting callers and hint changes appear; stop() ends it cleanly."""
        demo = self.pbx.start_demo(1.0, paused_members=[AGENT_TWO], long_call_seconds=20)
        for _ in range(60):
            self.clock.advance(1)
        names = {n for n, _ in self.events}
        self.assertLessEqual(
            {"BridgeEnter", "QueueCallerJoin", "AgentConnect", "ExtensionStatus"}, names
        )
        self.assertLessEqual(len(self.pbx.channels), 16)
        demo.stop()
        self.pbx.hangup_all()
        self.clock.advance(60)
        self.assertEqual((self.pbx.channels, self.pbx.bridges), ({}, {}))
        self.assertEqual(self.pbx.timers.pending, 0)


class ActionErrorTests(SynchronousTestCase):
    """The new actions' answers and refusals, worded as Asterisk words them."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.fake = FakeAsterisk(self.clock)
        self.addCleanup(self.fake.stop)
        self.client, _, self.pump = connected_pair(self.fake, self.clock)

    def send(self, action: str, **headers: str) -> Any:
        d = self.client.send_action(action, **headers)
        self.pump.flush()
        return d

    def error(self, action: str, **headers: str) -> str:
        failure = self.failureResultOf(self.send(action, **headers), AMIError)
        message: str = failure.value.message
        return message

    def test_errors(self) -> None:
        """Each action refuses what Asterisk refuses, with its text."""
        self.assertEqual(self.error("BridgeInfo"), "BridgeUniqueid must be provided")
        self.assertEqual(
            self.error("BridgeInfo", BridgeUniqueid="nope"), "Specified BridgeUniqueid not found"
        )
        self.assertEqual(self.error("BlindTransfer"), "No channel specified")
        self.assertEqual(self.error("BlindTransfer", Channel="x"), "No extension specified")
        self.assertEqual(
            self.error("BlindTransfer", Channel="x", Exten="1"), "Channel specified does not exist"
        )
        self.assertEqual(
            self.error("Atxfer", Channel="x", Exten="1"), "Channel specified does not exist"
        )
        self.assertEqual(self.error("Park"), "Channel not specified")
        self.assertEqual(self.error("Park", Channel="x", Timeout="-1"), "Invalid Timeout value.")
        self.assertEqual(self.error("Park", Channel="x"), "Channel does not exist: x")
        self.assertEqual(
            self.error("QueuePause", Interface="x"), "Need 'Interface' and 'Paused' parameters."
        )
        self.assertEqual(
            self.error("QueuePause", Interface="x", Paused="1"), "Interface not found"
        )
        self.assertEqual(self.error("QueueAdd", Interface="x"), "'Queue' not specified.")
        self.assertEqual(
            self.error("QueueAdd", Queue="nope", Interface="x"),
            "Unable to add interface to queue: No such queue",
        )
        self.assertEqual(
            self.error("QueueAdd", Queue="support", Interface=AGENT_ONE),
            "Unable to add interface: Already there",
        )
        self.assertEqual(
            self.error("QueueRemove", Queue="support", Interface=AGENT_ONE), "Member not dynamic"
        )
        self.assertEqual(
            self.error("QueueRemove", Queue="support", Interface="x"),
            "Unable to remove interface: Not there",
        )
        self.assertEqual(
            self.error("ParkedCalls", ParkingLot="nope"),
            "Requested parking lot could not be found.",
        )
        self.assertEqual(self.error("ConfbridgeList", Conference="680"), "No active conferences.")
        self.assertEqual(self.error("PresenceState"), "No provider specified")

    def test_blind_transfer_invalid(self) -> None:
        """BlindTransfer of a channel in no bridge answers 'Transfer invalid'."""
        channel = self.fake.pbx.incoming_call("1000")
        self.assertEqual(
            self.error("BlindTransfer", Channel=channel.name, Exten="1002"), "Transfer invalid"
        )

    def test_bridge_list_filters_by_type(self) -> None:
        """BridgeList with BridgeType lists only bridges of that type."""
        self.fake.pbx.incoming_call("1010")
        self.fake.pbx.incoming_call("7000", "parkedcalls")
        d = self.send("BridgeList", BridgeType="parking")
        items = [m for m in self.successResultOf(d).events if m.name == "BridgeListItem"]
        self.assertEqual([m["BridgeType"] for m in items], ["parking"])

    def test_park_and_parked_calls(self) -> None:
        """Park answers 'Park successful' and ParkedCalls lists the call with its space."""
        self.fake.pbx.incoming_call("1010")
        callee = "Local/1000@txami-test-00000001;1"
        answer = self.successResultOf(self.send("Park", Channel=callee, Timeout="30000"))
        self.assertEqual(answer["Message"], "Park successful")  # "\n" included, as Asterisk
        listing = self.successResultOf(self.send("ParkedCalls"))
        [parked] = [m for m in listing.events if m.name == "ParkedCall"]
        self.assertEqual(
            (parked["ParkeeChannel"], parked["ParkingSpace"], parked["ParkingTimeout"]),
            (callee, "7001", "30"),
        )

    def test_queue_service_level(self) -> None:
        """QueueStatus's ServicelevelPerf counts calls answered in time; Perf2 abandoned too."""
        pbx = self.fake.pbx
        pbx.queues["support"].service_level = 5
        for member in ("Local/1000@txami-test/n", "Local/1001@txami-test/n"):
            pbx.pause_member("support", member, True)
        answered = pbx.incoming_call("600", caller_id="201")
        abandoned = pbx.incoming_call("600", caller_id="202")
        late = pbx.incoming_call("600", caller_id="203")
        self.clock.advance(3)
        pbx.pause_member("support", "Local/1000@txami-test/n", False)  # answers 201 after 3 s
        pbx.pause_member("support", "Local/1000@txami-test/n", True)
        pbx.hangup(answered)
        self.clock.advance(20)
        pbx.hangup(abandoned)  # abandoned after 23 s
        pbx.pause_member("support", "Local/1000@txami-test/n", False)  # answers 203 after 23 s
        pbx.hangup(late)
        listing = self.successResultOf(self.send("QueueStatus", Queue="support"))
        [params] = [m for m in listing.events if m.name == "QueueParams"]
        self.assertEqual(
            (params["Completed"], params["Abandoned"], params["ServiceLevel"]), ("2", "1", "5")
        )
        self.assertEqual(
            (params["ServicelevelPerf"], params["ServicelevelPerf2"]), ("50.0", "33.3")
        )

    def test_park_a_conference_member(self) -> None:
        """Park of a ConfBridge member fails once the lot's bridge exists; the conference stays."""
        # As the real Asterisk 20.20.1 answered (ConfBridge's bridge is masquerade-only).
        pbx = self.fake.pbx
        first = pbx.call("680", caller_id="300", application="Wait", data="60")
        second = pbx.call("680", caller_id="301", application="Wait", data="60")
        assert first is not None and second is not None
        members = [c.name for c in pbx.conference_members("680")]
        self.assertEqual(len(members), 2)
        self.assertEqual(self.error("Park", Channel=members[1]), "Park action failed")
        self.assertEqual([c.name for c in pbx.conference_members("680")], members)
        listing = self.successResultOf(self.send("BridgeList"))
        types = sorted(m["BridgeType"] for m in listing.events if m.name == "BridgeListItem")
        self.assertEqual(types, ["base", "parking"])
        self.assertEqual(pbx.parked_calls(), [])

    def test_presence_state(self) -> None:
        """PresenceState answers State, Subtype, Message and PresenceMessage."""
        self.fake.pbx.set_presence_state("CustomPresence:me", "away", "Lunch", "Back soon")
        answer: Message = self.successResultOf(
            self.send("PresenceState", Provider="CustomPresence:me")
        )
        self.assertEqual(
            [(k, v) for k, v in answer if k not in ("Response", "ActionID")],
            [
                ("Message", "Presence State"),
                ("State", "away"),
                ("Subtype", "Lunch"),
                ("Message", "Back soon"),
                ("PresenceMessage", "Back soon"),
            ],
        )
