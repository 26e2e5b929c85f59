"""
Queues: members from rows and events under their two spellings, waiting
callers whose positions close up, and counters that follow app_queue's own
arithmetic instead of freezing at the last sync.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.statefake import BareSession, Chan, PBXData, channel_event, wire

PARAMS = [
    ("Queue", "support"),
    ("Max", "0"),
    ("Strategy", "ringall"),
    ("Calls", "0"),
    ("Holdtime", "8"),
    ("TalkTime", "40"),
    ("Completed", "10"),
    ("Abandoned", "2"),
    ("ServiceLevel", "20"),
    ("ServicelevelPerf", "80.0"),
    ("ServicelevelPerf2", "75.0"),
    ("Weight", "0"),
]


def member_row(
    location: str, name: str, status: int = 1, paused: int = 0
) -> list[tuple[str, str]]:
    return [
        ("Queue", "support"),
        ("Name", name),
        ("Location", location),
        ("StateInterface", location),
        ("Membership", "static"),
        ("Penalty", "0"),
        ("CallsTaken", "3"),
        ("LastCall", "0"),
        ("LastPause", "0"),
        ("LoginTime", "1700000000"),
        ("InCall", "0"),
        ("Status", str(status)),
        ("Paused", str(paused)),
        ("PausedReason", ""),
        ("Wrapuptime", "0"),
    ]


def member_event(name: str, interface: str, **fields: str) -> bytes:
    pairs = [
        ("Privilege", "agent,all"),
        ("Queue", "support"),
        ("MemberName", "Agent One"),
        ("Interface", interface),
        ("StateInterface", interface),
        ("Membership", "static"),
        ("Penalty", "0"),
        ("CallsTaken", "3"),
        ("LastCall", "0"),
        ("LastPause", "0"),
        ("LoginTime", "1700000000"),
        ("InCall", "0"),
        ("Status", "1"),
        ("Paused", "0"),
        ("PausedReason", ""),
        ("Ringinuse", "1"),
        ("Wrapuptime", "0"),
    ]
    pairs = [(k, fields.get(k, v)) for k, v in pairs]
    return wire(name, pairs)


AGENT = "Local/1000@txami-test/n"


class QueueTests(SynchronousTestCase):
    """The queue `support`, its members and its callers."""

    def setUp(self) -> None:
        data = PBXData()
        data.queue_rows = [
            ("QueueParams", PARAMS),
            ("QueueMember", member_row(AGENT, "Agent One")),
        ]
        self.session = BareSession(data)
        self.state, self.log = self.session.state()
        self.queue = self.state.queues["support"]
        self.log.clear()

    def caller(self, n: int) -> Chan:
        chan = Chan(f"5.{n}", f"Local/600@txami-test-0000000{n};2")
        self.session.send(channel_event("Newchannel", chan))
        return chan

    def join(self, chan: Chan, position: int) -> None:
        self.session.send(
            channel_event(
                "QueueCallerJoin", chan, ("Queue", "support"), ("Position", str(position))
            )
        )

    def leave(self, chan: Chan, event: str = "QueueCallerLeave", **extra: str) -> None:
        self.session.send(channel_event(event, chan, ("Queue", "support"), *extra.items()))

    def test_rows(self) -> None:
        """QueueParams and QueueMember rows give the parameters, counters and members."""
        q = self.queue
        self.assertEqual((q.strategy, q.holdtime, q.talktime), ("ringall", 8, 40))
        self.assertEqual((q.completed, q.abandoned, q.service_level), (10, 2, 20))
        member = q.members[AGENT]
        self.assertEqual(
            (member.name, member.status_text, member.paused), ("Agent One", "NOT_INUSE", False)
        )
        self.assertEqual(q.available, 1)
        self.assertEqual(q.as_dict()["members"][AGENT]["name"], "Agent One")

    def test_member_events_use_the_other_spelling(self) -> None:
        """QueueMemberPause (MemberName/Interface) updates the member the row made."""
        self.session.send(
            member_event("QueueMemberPause", AGENT, Paused="1", PausedReason="lunch")
        )
        member = self.queue.members[AGENT]
        self.assertTrue(member.paused)
        self.assertEqual(member.paused_reason, "lunch")
        ((_queue, updated, fields),) = self.log.of("queue_member_updated")
        self.assertIs(updated, member)
        self.assertEqual(fields, {"paused", "paused_reason", "ring_in_use"})
        self.assertEqual(self.queue.available, 0)

    def test_members_added_and_removed(self) -> None:
        """QueueMemberAdded and QueueMemberRemoved add and drop a member."""
        other = "Local/1001@txami-test/n"
        self.session.send(member_event("QueueMemberAdded", other, MemberName="Agent Two"))
        self.assertEqual(self.queue.members[other].name, "Agent Two")
        self.session.send(member_event("QueueMemberRemoved", other))
        self.assertNotIn(other, self.queue.members)
        self.assertEqual([r for _, _, r in self.log.of("queue_member_removed")], ["removed"])

    def test_positions_close_up(self) -> None:
        """Callers join at their positions; when one leaves, those behind move up."""
        a, b, c = self.caller(1), self.caller(2), self.caller(3)
        self.join(a, 1)
        self.join(b, 2)
        self.join(c, 2)  # a higher priority caller goes ahead of b
        self.assertEqual([e.uniqueid for e in self.queue.entries], ["5.1", "5.3", "5.2"])
        self.assertEqual([e.position for e in self.queue.entries], [1, 2, 3])
        self.assertEqual(self.queue.calls, 3)
        self.log.clear()
        self.leave(a)
        self.assertEqual(
            [(e.uniqueid, e.position) for e in self.queue.entries], [("5.3", 1), ("5.2", 2)]
        )
        moved = sorted(e.uniqueid for _, e, f in self.log.of("queue_entry_updated"))
        self.assertEqual(moved, ["5.2", "5.3"])
        self.assertEqual([r for _, _, r in self.log.of("queue_entry_left")], ["left"])

    def test_abandoned(self) -> None:
        """A caller who hangs up waiting counts as abandoned and leaves with that reason."""
        a = self.caller(1)
        self.join(a, 1)
        self.leave(a, "QueueCallerAbandon", Position="1", OriginalPosition="1", HoldTime="30")
        self.leave(a, Position="1")
        self.assertEqual(self.queue.abandoned, 3)
        self.assertEqual([r for _, _, r in self.log.of("queue_entry_left")], ["abandoned"])
        # 8 of 10 answered in time; 1 of 2 abandoned in time; this one was not.
        self.assertEqual(self.queue.service_level_perf2, round(100 * 9 / 13, 1))

    def test_hangup_removes_the_entry(self) -> None:
        """A waiting caller whose channel hangs up (no leave event seen) leaves the queue."""
        a = self.caller(1)
        self.join(a, 1)
        self.session.send(channel_event("Hangup", a, ("Cause", "16")))
        self.assertEqual(self.queue.entries, [])

    def test_counters_follow_app_queue(self) -> None:
        """AgentConnect and AgentComplete move hold/talk time and completed as app_queue does."""
        connect = [
            ("Queue", "support"),
            ("Interface", AGENT),
            ("HoldTime", "12"),
            ("RingTime", "2"),
        ]
        self.session.send(wire("AgentConnect", connect))
        self.assertEqual(self.queue.holdtime, (3 * 8 + 12) >> 2)
        complete = [
            ("Queue", "support"),
            ("Interface", AGENT),
            ("HoldTime", "12"),
            ("TalkTime", "60"),
        ]
        self.session.send(wire("AgentComplete", complete))
        self.assertEqual(self.queue.completed, 11)
        self.assertEqual(self.queue.talktime, (3 * 40 + 60) >> 2)
        self.assertEqual(self.queue.service_level_perf, round(100 * 9 / 11, 1))
        (_, fields) = self.log.of("queue_updated")[-1]
        self.assertTrue({"completed", "talktime", "service_level_perf"} <= fields)

    def test_first_completed_call_sets_the_averages(self) -> None:
        """With nothing completed or abandoned yet, the first call's times are the averages."""
        q = self.queue
        q.completed = q.abandoned = 0
        self.session.send(
            wire("AgentConnect", [("Queue", "support"), ("Interface", AGENT), ("HoldTime", "5")])
        )
        self.session.send(
            wire("AgentComplete", [("Queue", "support"), ("Interface", AGENT), ("TalkTime", "33")])
        )
        self.assertEqual((q.holdtime, q.talktime, q.completed), (5, 33, 1))

    def test_percentages_that_are_not_numbers(self) -> None:
        """A QueueParams row with nan or inf percentages is still applied, those two skipped."""
        params = [
            (k, "nan" if k == "ServicelevelPerf" else "inf" if k == "ServicelevelPerf2" else v)
            for k, v in PARAMS
        ]
        self.session.data.queue_rows = [
            ("QueueParams", [*params[:6], ("Completed", "11"), *params[7:]])
        ]
        self.state._sync.refresh_queue("support")
        self.session.answer()
        self.assertEqual(self.queue.completed, 11)
        self.assertEqual(
            (self.queue.service_level_perf, self.queue.service_level_perf2), (80.0, 75.0)
        )

    def test_unknown_queue_is_read(self) -> None:
        """An event naming an unknown queue creates it and reads its QueueStatus once."""
        self.session.send(
            wire("QueueMemberStatus", [("Queue", "sales"), ("Interface", "PJSIP/9")])
        )
        self.session.send(
            wire("QueueMemberStatus", [("Queue", "sales"), ("Interface", "PJSIP/9")])
        )
        self.assertIn("sales", self.state.queues)
        asked = [a for a in self.session.answer() if a.name == "QueueStatus"]
        self.assertEqual([a.get("Queue") for a in asked], ["sales"])

    def test_resync_drops_absent_members_and_entries(self) -> None:
        """Members and callers a sync does not list are removed."""
        a = self.caller(1)
        self.join(a, 1)
        self.session.data.queue_rows = [("QueueParams", PARAMS)]
        self.state._sync.refresh_queue("support")
        self.session.answer()
        self.assertEqual(self.queue.members, {})
        self.assertEqual(self.queue.entries, [])
