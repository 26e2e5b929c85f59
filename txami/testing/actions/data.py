"""
Actions on the PBX's stored data: the database (DB*), voicemail boxes and IAX2 peers.
"""

from __future__ import annotations

from txami.testing import permissions as perm
from txami.testing.actions.common import ack, complete, error, id_pairs, item, list_start
from txami.testing.handler import Action, ActionEntry, Session

__all__ = ["ENTRIES"]

_S, _C, _R = perm.SYSTEM, perm.CALL, perm.REPORTING


def _db_get(session: Session, action: Action) -> None:
    family, key = action.get("Family"), action.get("Key")
    if not family:
        error(session, action, "No family specified.")
        return
    if not key:
        error(session, action, "No key specified.")
        return
    value = session.factory.pbx.db.get(f"/{family}/{key}")
    if value is None:
        error(session, action, "Database entry not found")
        return
    list_start(session, action, "Result will follow")
    item(
        session,
        "DBGetResponse",
        [("Family", family), ("Key", key), ("Val", value), *id_pairs(action)],
    )
    complete(session, action, "DBGetComplete", 1)


def _db_get_tree(session: Session, action: Action) -> None:
    family, key = action.get("Family"), action.get("Key")
    prefix = "/" + family if family else ""
    if family and key:
        prefix += "/" + key
    rows = [
        (k, v)
        for k, v in sorted(session.factory.pbx.db.items())
        if not prefix or k == prefix or k.startswith(prefix + "/")
    ]
    if not rows:
        error(session, action, "Database entry not found")
        return
    list_start(session, action, "Result will follow")
    for name, value in rows:
        item(session, "DBGetTreeResponse", [("Key", name), ("Val", value), *id_pairs(action)])
    complete(session, action, "DBGetTreeComplete", len(rows))


def _db_put(session: Session, action: Action) -> None:
    family, key = action.get("Family"), action.get("Key")
    if not family:
        error(session, action, "No family specified")
        return
    if not key:
        error(session, action, "No key specified")
        return
    session.factory.pbx.db[f"/{family}/{key}"] = action.get("Val")
    ack(session, action, "Updated database successfully")


def _db_del(session: Session, action: Action) -> None:
    family, key = action.get("Family"), action.get("Key")
    if not family:
        error(session, action, "No family specified.")
        return
    if not key:
        error(session, action, "No key specified.")
        return
    if session.factory.pbx.db.pop(f"/{family}/{key}", None) is None:
        error(session, action, "Database entry could not be deleted")
        return
    ack(session, action, "Key deleted successfully")


def _db_del_tree(session: Session, action: Action) -> None:
    family, key = action.get("Family"), action.get("Key")
    if not family:
        error(session, action, "No family specified.")
        return
    prefix = f"/{family}/{key}" if key else f"/{family}"
    db = session.factory.pbx.db
    doomed = [k for k in db if k == prefix or k.startswith(prefix + "/")]
    if not doomed:
        error(session, action, "Database entry not found")
        return
    for name in doomed:
        del db[name]
    ack(session, action, "Key tree deleted successfully")


def _mailbox_count(session: Session, action: Action) -> None:
    spec = action.get("Mailbox")
    if not spec:
        error(session, action, "Mailbox not specified")
        return
    _, box = session.factory.pbx.mailbox(spec)
    ack(
        session,
        action,
        "Mailbox Message Count",
        ("Mailbox", spec),
        ("UrgMessages", str(box.urgent)),
        ("NewMessages", str(box.new)),
        ("OldMessages", str(box.old)),
    )


def _mailbox_status(session: Session, action: Action) -> None:
    spec = action.get("Mailbox")
    if not spec:
        error(session, action, "Mailbox not specified")
        return
    _, box = session.factory.pbx.mailbox(spec)
    ack(
        session,
        action,
        "Mailbox Status",
        ("Mailbox", spec),
        ("Waiting", "1" if box.new or box.urgent else "0"),
    )


def _voicemail_users(session: Session, action: Action) -> None:
    boxes = session.factory.pbx.mailboxes
    list_start(session, action, "Voicemail user list will follow")
    for spec, box in boxes.items():
        number, _, context = spec.partition("@")
        item(
            session,
            "VoicemailUserEntry",
            [
                *id_pairs(action),
                ("VMContext", context),
                ("VoiceMailbox", number),
                ("Fullname", box.fullname),
                ("Email", box.email),
                ("Pager", ""),
                ("ServerEmail", "asterisk@localhost"),
                ("FromString", ""),
                ("MailCommand", "/usr/sbin/sendmail -t"),
                ("Language", ""),
                ("TimeZone", ""),
                ("Callback", ""),
                ("Dialout", ""),
                ("UniqueID", ""),
                ("ExitContext", ""),
                ("SayDurationMinimum", "2"),
                ("SayEnvelope", "Yes"),
                ("SayCID", "No"),
                ("AttachMessage", "No"),
                ("AttachmentFormat", ""),
                ("DeleteMessage", "No"),
                ("VolumeGain", "0.00"),
                ("CanReview", "No"),
                ("CanMarkUrgent", "Yes"),
                ("CallOperator", "No"),
                ("MaxMessageCount", "100"),
                ("MaxMessageLength", "180"),
                ("NewMessageCount", str(box.new)),
                ("OldMessageCount", str(box.old)),
            ],
        )
    complete(session, action, "VoicemailUserEntryComplete", len(boxes))


def _iax_peers(session: Session, action: Action) -> None:
    peers = session.factory.pbx.iax_peers
    list_start(session, action, "Peer status list will follow")
    for peer in peers:
        # As in chan_iax2: these rows never carry the ActionID.
        item(
            session,
            "PeerEntry",
            [
                ("Channeltype", "IAX2"),
                ("ObjectName", peer.name),
                ("ChanObjectType", "peer"),
                ("IPaddress", peer.host or "(null)"),
                ("IPport", str(peer.port) if peer.host else "(null)"),
                ("Dynamic", "no" if peer.host else "yes"),
                ("Trunk", "yes" if peer.trunk else "no"),
                ("Encryption", "yes" if peer.encryption else "no"),
                ("Status", peer.status),
                ("Description", peer.description),
            ],
        )
    complete(session, action, "PeerlistComplete", len(peers))


def _iax_peer_list(session: Session, action: Action) -> None:
    peers = session.factory.pbx.iax_peers
    list_start(session, action, "IAX Peer status list will follow")
    for peer in peers:
        item(
            session,
            "PeerEntry",
            [
                *id_pairs(action),
                ("Channeltype", "IAX"),
                ("ObjectName", peer.name),
                ("ChanObjectType", "peer"),
                ("IPaddress", peer.host or "(null)"),
                ("Mask", "255.255.255.255" if peer.host else "(null)"),
                ("Port", str(peer.port) if peer.host else "(null)"),
                ("Dynamic", "no" if peer.host else "yes"),
                ("Trunk", "yes" if peer.trunk else "no"),
                ("Encryption", "yes" if peer.encryption else "no"),
                ("Status", peer.status),
            ],
        )
    complete(session, action, "PeerlistComplete", len(peers))


def _iax_registry(session: Session, action: Action) -> None:
    list_start(session, action, "Registrations will follow")
    complete(session, action, "RegistrationsComplete", 0)


def _iax_netstats(session: Session, action: Action) -> None:
    # chan_iax2 answers with a lone line end: no Response, no ActionID.
    session.write_raw_response("\r\n")


#: The actions of this module.
ENTRIES = [
    ActionEntry("DBDel", _db_del, _S, "Delete DB entry."),
    ActionEntry("DBDelTree", _db_del_tree, _S, "Delete DB Tree."),
    ActionEntry("DBGet", _db_get, _S | _R, "Get DB Entry."),
    ActionEntry(
        "DBGetTree",
        _db_get_tree,
        _S | _R,
        "Get DB entries, optionally at a particular family/key",
    ),
    ActionEntry("DBPut", _db_put, _S, "Put DB entry."),
    ActionEntry("IAXnetstats", _iax_netstats, _S | _R, "Show IAX Netstats."),
    ActionEntry("IAXpeerlist", _iax_peer_list, _S | _R, "List IAX Peers."),
    ActionEntry("IAXpeers", _iax_peers, _S | _R, "List IAX peers."),
    ActionEntry("IAXregistry", _iax_registry, _S | _R, "Show IAX registrations."),
    ActionEntry("MailboxCount", _mailbox_count, _C | _R, "Check Mailbox Message Count."),
    ActionEntry("MailboxStatus", _mailbox_status, _C | _R, "Check mailbox."),
    ActionEntry(
        "VoicemailUsersList",
        _voicemail_users,
        _C | _R,
        "List All Voicemail User Information.",
    ),
]
