"""
Asterisk's permission classes: user rights, session event masks and event classes.

Asterisk keeps one bit per class (``system``, ``call``, ``user``, ...).  A
manager user's ``read`` classes say which events it may receive and its
``write`` classes which actions it may run; a session's event mask (``Events:``
at login, the ``Events`` action) narrows the events further.  The quirks of
manager.c's parsing are kept on purpose, since clients meet them: a class list
item matches any class name it is a prefix of (except the last item), digits
are a raw bitmask, and ``on``/``off`` are Asterisk's true/false words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ALL",
    "CLASS_NAMES",
    "AMIUser",
    "class_mask",
    "class_string",
    "event_class",
    "event_mask",
]

#: Class names in Asterisk's order (the order of a ``Privilege:`` header).
CLASS_NAMES = (
    "system",
    "call",
    "log",
    "verbose",
    "command",
    "agent",
    "user",
    "config",
    "dtmf",
    "reporting",
    "cdr",
    "dialplan",
    "originate",
    "agi",
    "cc",
    "aoc",
    "test",
    "security",
    "message",
)
_BITS = {name: 1 << index for index, name in enumerate(CLASS_NAMES)}
#: Every class: what ``all`` and ``Events: on`` stand for (INT_MAX in Asterisk).
ALL = 0x7FFFFFFF

SYSTEM = _BITS["system"]
CALL = _BITS["call"]
COMMAND = _BITS["command"]
AGENT = _BITS["agent"]
USER = _BITS["user"]
CONFIG = _BITS["config"]
REPORTING = _BITS["reporting"]
DIALPLAN = _BITS["dialplan"]
ORIGINATE = _BITS["originate"]
SECURITY = _BITS["security"]

_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
_FALSE = frozenset({"no", "false", "n", "f", "0", "off"})


def _in_list(classes: str, label: str) -> bool:
    """manager.c's ``ast_instring``: is ``label`` named by the comma list ``classes``?"""
    items = classes.split(",")
    for item in items[:-1]:
        if label.startswith(item):
            return True
    return items[-1] == label


def class_mask(classes: str) -> int:
    """The bitmask of a class list such as ``"call,system"`` (``all`` = every class)."""
    mask = 0
    for name, bit in _BITS.items():
        if _in_list(classes, name):
            mask |= bit
    if _in_list(classes, "all"):
        mask |= ALL
    return mask


def event_mask(value: str) -> int | None:
    """
    A session event mask from an ``Events:``/``EventMask:`` value, as Asterisk reads it:
    digits are a raw mask, ``on``/``off`` (any true/false word) all or nothing,
    anything else a class list.  `None` when the value is empty (Asterisk then
    keeps the old mask, or answers ``Invalid event mask``).
    """
    if not value:
        return None
    if value.isdigit():
        return int(value) & 0xFFFFFFFF
    low = value.lower()
    if low in _FALSE:
        return 0
    if low in _TRUE:
        return ALL
    return class_mask(value)


def class_string(mask: int) -> str:
    """The ``Privilege:`` text of a class mask, e.g. ``"call,all"`` (``"<none>"`` if empty)."""
    names = [name for name, bit in _BITS.items() if mask & bit]
    if mask:
        names.append("all")
    return ",".join(names) if names else "<none>"


#: The class Asterisk raises each well-known event in.
_EVENT_CLASSES: dict[str, int] = {}
for _names, _bit in (
    (
        "newchannel newstate hangup hanguprequest softhanguprequest newcallerid "
        "newconnectedline newaccountcode dialbegin dialend dialstate localbridge "
        "localoptimizationbegin localoptimizationend bridgecreate bridgeenter bridgeleave "
        "bridgedestroy bridgemerge originateresponse devicestatechange extensionstatus "
        "presencestatus presencestatechange messagewaiting hold unhold musiconholdstart "
        "musiconholdstop blindtransfer attendedtransfer pickup rename mcid chanspystart "
        "chanspystop confbridgestart confbridgeend confbridgejoin confbridgeleave "
        "confbridgetalking channeltalkingstart channeltalkingstop mixmonitorstart "
        "mixmonitorstop newperiodic cel parkedcall parkedcallgiveup parkedcalltimeout "
        "unparkedcall",
        CALL,
    ),
    ("newexten varset", DIALPLAN),
    ("userevent", USER),
    (
        "fullybooted reload shutdown registry peerstatus contactstatus "
        "devicestatelistcomplete moduleloadreport loadaverageexceeded",
        SYSTEM,
    ),
    (
        "queuememberstatus queuememberadded queuememberremoved queuememberpause "
        "queuememberpenalty queuememberringinuse queuecallerjoin queuecallerleave "
        "queuecallerabandon agentcalled agentconnect agentcomplete agentdump "
        "agentringnoanswer agentlogin agentlogoff",
        AGENT,
    ),
    ("cdr", _BITS["cdr"]),
    ("dtmfbegin dtmfend", _BITS["dtmf"]),
    ("agiexecstart agiexecend asyncagistart asyncagiexec asyncagiend", _BITS["agi"]),
    (
        "successfulauth invalidpassword invalidaccountid failedacl "
        "challengeresponsefailed requestnotallowed requestbadformat "
        "unexpectedaddress challengesent sessionlimit memorylimit loadaverage "
        "authmethodnotallowed",
        SECURITY,
    ),
):
    for _name in _names.split():
        _EVENT_CLASSES[_name] = _bit


def event_class(name: str, privilege: str | None = None) -> int:
    """
    The class of event ``name``: from its ``Privilege`` value if given (the
    decorative ``all`` ignored; no class at all reaches every session), else
    from the table of events Asterisk raises, else ``call``.
    """
    if privilege is not None:
        items = [item.strip() for item in privilege.split(",") if item.strip().lower() != "all"]
        return class_mask(",".join(items)) if items else 0
    return _EVENT_CLASSES.get(name.lower(), CALL)


@dataclass
class AMIUser:
    """
    A manager user, as a ``manager.conf`` section defines it.

    ``read`` and ``write`` are class lists (``"all"``, ``"call,system"``, or
    ``""`` for none).
    """

    username: str
    secret: str = field(repr=False)
    read: str = "all"
    write: str = "all"

    @property
    def read_mask(self) -> int:
        """The event classes this user may receive."""
        return class_mask(self.read) if self.read else 0

    @property
    def write_mask(self) -> int:
        """The action classes this user may run."""
        return class_mask(self.write) if self.write else 0
