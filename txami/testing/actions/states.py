"""
Actions on device, hint and presence states: ExtensionState, ExtensionStateList,
DeviceStateList, PresenceState, PresenceStateList.
"""

from __future__ import annotations

from txami.testing import permissions as perm
from txami.testing.actions.common import ack, complete, error, id_pairs, item, list_start
from txami.testing.handler import Action, ActionEntry, Session

__all__ = ["ENTRIES"]

_C, _R = perm.CALL, perm.REPORTING


def _extension_state(session: Session, action: Action) -> None:
    exten = action.get("Exten")
    context = action.get("Context") or "default"
    ack(
        session,
        action,
        "Extension Status",
        *session.factory.pbx.extension_status(context, exten),
    )


def _extension_state_list(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    list_start(session, action, "Extension Statuses will follow")
    # The dialplan, and so its hints, loads late in a boot.
    hints = [] if session.factory.booting else list(reversed(pbx.hints.items()))
    for (context, exten), _ in hints:
        item(
            session, "ExtensionStatus", [*id_pairs(action), *pbx.extension_status(context, exten)]
        )
    complete(session, action, "ExtensionStateListComplete", len(hints))


def _device_state_list(session: Session, action: Action) -> None:
    states = session.factory.pbx.device_states
    list_start(session, action, "Device State Changes will follow")
    for device, state in states.items():
        item(
            session, "DeviceStateChange", [*id_pairs(action), ("Device", device), ("State", state)]
        )
    complete(session, action, "DeviceStateListComplete", len(states))


def _presence_state(session: Session, action: Action) -> None:
    provider = action.get("Provider")
    if not provider:
        error(session, action, "No provider specified")
        return
    state, subtype, message = session.factory.pbx.presence_state(provider)
    ack(
        session,
        action,
        "Presence State",
        ("State", state),
        ("Subtype", subtype),
        ("Message", message),
        ("PresenceMessage", message),
    )


def _presence_state_list(session: Session, action: Action) -> None:
    states = session.factory.pbx.presence_states
    list_start(session, action, "Presence State Changes will follow")
    for provider, (state, subtype, message) in states.items():
        item(
            session,
            "PresenceStateChange",
            [
                *id_pairs(action),
                ("Presentity", provider),
                ("Status", state),
                ("Subtype", subtype),
                ("Message", message),
            ],
        )
    complete(session, action, "PresenceStateListComplete", len(states))


#: The actions of this module.
ENTRIES = [
    ActionEntry(
        "DeviceStateList", _device_state_list, _C | _R, "List the current known device states."
    ),
    ActionEntry("ExtensionState", _extension_state, _C | _R, "Check Extension Status."),
    ActionEntry(
        "ExtensionStateList",
        _extension_state_list,
        _C | _R,
        "List the current known extension states.",
    ),
    ActionEntry("PresenceState", _presence_state, _C | _R, "Check Presence State"),
    ActionEntry(
        "PresenceStateList",
        _presence_state_list,
        _C | _R,
        "List the current known presence states.",
    ),
]
