"""
Queue actions: QueueStatus, QueueSummary, QueuePause, QueueAdd, QueueRemove.
"""

from __future__ import annotations

from txami.testing import permissions as perm
from txami.testing.actions.common import ack, complete, error, id_pairs, item, list_start, true
from txami.testing.handler import Action, ActionEntry, Session

__all__ = ["ENTRIES"]

_AGENT = perm.AGENT


def _percent(part: int, whole: int) -> str:
    """app_queue's ``%2.1f`` of ``100 * part / whole`` (0 when ``whole`` is)."""
    return f"{100 * part / whole if whole else 0:.1f}"


def _queue_status(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    wanted, member_filter = action.get("Queue"), action.get("Member")
    list_start(session, action, "Queue status will follow")
    count = 0
    now = pbx.clock.seconds()
    for queue in pbx.queues.values():
        if wanted and queue.name.lower() != wanted.lower():
            continue
        count += 1
        item(
            session,
            "QueueParams",
            [
                ("Queue", queue.name),
                ("Max", str(queue.max)),
                ("Strategy", queue.strategy),
                ("Calls", str(len(queue.callers))),
                ("Holdtime", str(queue.hold_time)),
                ("TalkTime", str(queue.talk_time)),
                ("Completed", str(queue.completed)),
                ("Abandoned", str(queue.abandoned)),
                ("ServiceLevel", str(queue.service_level)),
                ("ServicelevelPerf", _percent(queue.completed_in_sl, queue.completed)),
                (
                    "ServicelevelPerf2",
                    _percent(
                        queue.completed_in_sl + queue.abandoned_in_sl,
                        queue.completed + queue.abandoned,
                    ),
                ),
                ("Weight", str(queue.weight)),
                *id_pairs(action),
            ],
        )
        for member in queue.members:
            if member_filter and member_filter not in (member.interface, member.name):
                continue
            count += 1
            item(
                session,
                "QueueMember",
                [
                    ("Queue", queue.name),
                    ("Name", member.name or member.interface),
                    ("Location", member.interface),
                    ("StateInterface", member.state_interface or member.interface),
                    ("Membership", member.membership),
                    ("Penalty", str(member.penalty)),
                    ("CallsTaken", str(member.calls_taken)),
                    ("LastCall", str(member.last_call)),
                    ("LastPause", str(member.last_pause)),
                    ("LoginTime", str(member.login_time)),
                    ("InCall", "1" if member.in_call else "0"),
                    ("Status", str(member.status)),
                    ("Paused", "1" if member.paused else "0"),
                    ("PausedReason", member.paused_reason),
                    ("Wrapuptime", str(member.wrapup_time)),
                    *id_pairs(action),
                ],
            )
        for position, caller in enumerate(queue.callers, 1):
            count += 1
            item(
                session,
                "QueueEntry",
                [
                    ("Queue", queue.name),
                    ("Position", str(position)),
                    ("Channel", caller.name),
                    ("Uniqueid", caller.uniqueid),
                    ("CallerIDNum", caller.caller_num or "unknown"),
                    ("CallerIDName", caller.caller_name or "unknown"),
                    ("ConnectedLineNum", caller.connected_num or "unknown"),
                    ("ConnectedLineName", caller.connected_name or "unknown"),
                    ("Wait", str(int(now - pbx.queue_joined(caller)))),
                    ("Priority", "0"),
                    *id_pairs(action),
                ],
            )
    complete(session, action, "QueueStatusComplete", count)


def _queue_summary(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    wanted = action.get("Queue")
    list_start(session, action, "Queue summary will follow")
    count = 0
    now = pbx.clock.seconds()
    for queue in pbx.queues.values():
        if wanted and queue.name.lower() != wanted.lower():
            continue
        count += 1
        logged_in = [m for m in queue.members if m.status not in (4, 5)]
        available = sum(1 for m in logged_in if m.status in (0, 1) and not m.paused)
        longest = max((int(now - pbx.queue_joined(c)) for c in queue.callers), default=0)
        item(
            session,
            "QueueSummary",
            [
                ("Queue", queue.name),
                ("LoggedIn", str(len(logged_in))),
                ("Available", str(available)),
                ("Callers", str(len(queue.callers))),
                ("HoldTime", str(queue.hold_time)),
                ("TalkTime", str(queue.talk_time)),
                ("LongestHoldTime", str(longest)),
                *id_pairs(action),
            ],
        )
    complete(session, action, "QueueSummaryComplete", count)


def _queue_pause(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    interface, paused_text = action.get("Interface"), action.get("Paused")
    if not interface or not paused_text:
        error(session, action, "Need 'Interface' and 'Paused' parameters.")
        return
    paused = true(paused_text)
    if not pbx.pause_member(action.get("Queue") or None, interface, paused, action.get("Reason")):
        error(session, action, "Interface not found")
        return
    text = "Interface paused successfully" if paused else "Interface unpaused successfully"
    ack(session, action, text)


def _queue_add(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    queue, interface = action.get("Queue"), action.get("Interface")
    if not queue:
        error(session, action, "'Queue' not specified.")
        return
    if not interface:
        error(session, action, "'Interface' not specified.")
        return
    if queue not in pbx.queues:
        error(session, action, "Unable to add interface to queue: No such queue")
        return
    penalty = action.get("Penalty").strip()
    member = pbx.add_member(
        queue,
        interface,
        name=action.get("MemberName"),
        state_interface=action.get("StateInterface"),
        penalty=int(penalty) if penalty.isdigit() else 0,
        paused=true(action.get("Paused")),
        reason=action.get("Reason"),
    )
    if member is None:
        error(session, action, "Unable to add interface: Already there")
        return
    ack(session, action, "Added interface to queue")


def _queue_remove(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    queue, interface = action.get("Queue"), action.get("Interface")
    if not queue or not interface:
        error(session, action, "Need 'Queue' and 'Interface' parameters.")
        return
    found = pbx.queues.get(queue)
    if found is None:
        error(session, action, "Unable to remove interface from queue: No such queue")
        return
    member = found.member(interface)
    if member is None:
        error(session, action, "Unable to remove interface: Not there")
        return
    if member.membership != "dynamic":
        error(session, action, "Member not dynamic")
        return
    pbx.remove_member(queue, interface)
    ack(session, action, "Removed interface from queue")


#: The actions of this module.
ENTRIES = [
    ActionEntry("QueueAdd", _queue_add, _AGENT, "Add interface to queue."),
    ActionEntry(
        "QueuePause", _queue_pause, _AGENT, "Makes a queue member temporarily unavailable."
    ),
    ActionEntry("QueueRemove", _queue_remove, _AGENT, "Remove interface from queue."),
    ActionEntry("QueueStatus", _queue_status, 0, "Show queue status."),
    ActionEntry("QueueSummary", _queue_summary, 0, "Show queue summary."),
]
