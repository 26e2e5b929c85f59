"""
Actions on bridges and what moves channels between them: BridgeList, BridgeInfo,
BlindTransfer, Atxfer, Park, ParkedCalls, ConfbridgeList.
"""

from __future__ import annotations

from txami.testing import permissions as perm
from txami.testing.actions.common import ack, complete, error, id_pairs, item, list_start
from txami.testing.handler import Action, ActionEntry, Session

__all__ = ["ENTRIES"]

_C, _R = perm.CALL, perm.REPORTING


def _bridge_list(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    wanted = action.get("BridgeType")
    bridges = [b for b in pbx.bridges.values() if not wanted or b.type == wanted]
    list_start(session, action, "Bridge listing will follow")
    for bridge in bridges:
        item(session, "BridgeListItem", [*id_pairs(action), *bridge.headers()])
    complete(session, action, "BridgeListComplete", len(bridges))


def _bridge_info(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    uniqueid = action.get("BridgeUniqueid")
    if not uniqueid:
        error(session, action, "BridgeUniqueid must be provided")
        return
    bridge = pbx.bridges.get(uniqueid)
    if bridge is None:
        error(session, action, "Specified BridgeUniqueid not found")
        return
    list_start(session, action, "Bridge channel listing will follow")
    for channel in bridge.channels:
        item(session, "BridgeInfoChannel", [*id_pairs(action), *channel.snapshot()])
    complete(session, action, "BridgeInfoComplete", len(bridge.channels), *bridge.headers())


def _blind_transfer(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    name, exten = action.get("Channel"), action.get("Exten")
    if not name:
        error(session, action, "No channel specified")
        return
    if not exten:
        error(session, action, "No extension specified")
        return
    channel = pbx.channel(name)
    if channel is None:
        error(session, action, "Channel specified does not exist")
        return
    outcome = pbx.blind_transfer(channel, exten, action.get("Context"))
    if outcome == "Success":
        ack(session, action, "Transfer succeeded")
    else:
        error(session, action, "Transfer invalid")


def _atxfer(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    name, exten = action.get("Channel"), action.get("Exten")
    if not name:
        error(session, action, "No channel specified")
        return
    if not exten:
        error(session, action, "No extension specified")
        return
    channel = pbx.channel(name)
    if channel is None:
        error(session, action, "Channel specified does not exist")
        return
    context = action.get("Context")
    if context:
        pbx.set_channel_var(channel, "TRANSFER_CONTEXT", context)
    ack(session, action, "Atxfer successfully queued")
    pbx.attended_transfer(channel, exten, context)


def _park(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    name = action.get("Channel")
    if not name:
        error(session, action, "Channel not specified")
        return
    timeout: int | None = None
    if action.get("Timeout"):
        text = action.get("Timeout").strip()
        if not text.lstrip("-").isdigit() or int(text) < 0:
            error(session, action, "Invalid Timeout value.")
            return
        milliseconds = int(text)
        timeout = max(1, milliseconds // 1000) if milliseconds else 0
    channel = pbx.channel(name)
    if channel is None:
        error(session, action, f"Channel does not exist: {name}")
        return
    if pbx.park(channel, action.get("Parkinglot"), timeout) is None:
        error(session, action, "Park action failed\n")
        return
    ack(session, action, "Park successful\n")


def _parked_calls(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    lot = action.get("ParkingLot") or None
    if lot is not None and lot not in pbx.parking_lots:
        error(session, action, "Requested parking lot could not be found.")
        return
    parked = pbx.parked_calls(lot)
    list_start(session, action, "Parked calls will follow")
    for call in parked:
        item(session, "ParkedCall", [*pbx.parked_headers(call), *id_pairs(action)])
    complete(session, action, "ParkedCallsComplete", len(parked), ("Total", str(len(parked))))


def _confbridge_list(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    name = action.get("Conference")
    if not name:
        error(session, action, "No Conference name provided.")
        return
    conference = pbx.conferences.get(name)
    if conference is None:
        error(session, action, "No active conferences.")
        return
    members = conference.members
    list_start(session, action, "Confbridge user list will follow")
    now = pbx.clock.seconds()
    for member in members:
        joined = conference.joined.get(member.uniqueid, now)
        item(
            session,
            "ConfbridgeList",
            [
                *id_pairs(action),
                ("Conference", name),
                ("Admin", "No"),
                ("MarkedUser", "No"),
                ("WaitMarked", "No"),
                ("EndMarked", "No"),
                ("EndMarkedAny", "No"),
                ("Waiting", "No"),
                ("Muted", "No"),
                ("Talking", "No"),
                ("AnsweredTime", str(int(now - joined))),
                *member.snapshot(),
            ],
        )
    complete(session, action, "ConfbridgeListComplete", len(members))


#: The actions of this module.
ENTRIES = [
    ActionEntry("Atxfer", _atxfer, _C, "Attended transfer."),
    ActionEntry(
        "BlindTransfer", _blind_transfer, _C, "Blind transfer channel(s) to the given destination"
    ),
    ActionEntry("BridgeInfo", _bridge_info, 0, "Get information about a bridge."),
    ActionEntry("BridgeList", _bridge_list, 0, "Get a list of bridges in the system."),
    ActionEntry("ConfbridgeList", _confbridge_list, _R, "List participants in a conference."),
    ActionEntry("Park", _park, _C, "Park a channel."),
    ActionEntry("ParkedCalls", _parked_calls, _C, "List parked calls."),
]
