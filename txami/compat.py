"""
What older Asterisk releases send differently, in one place: the AMI version
from the banner, and the rules txami follows for each range of versions.

Asterisk 13.2 (AMI 2.7.0) and later frame everything the same way: every
response carries the ActionID it answers, every list starts with
``EventList: start`` and ends with ``EventList: Complete``.  Older releases
left out some of that, each in its own way (the facts below come from each
release's ``main/manager.c`` and the modules named).  `AMIProtocol` reads the
banner, asks `rules_for` which of these rules the server needs, and switches
on only those; a modern server runs none of them.

Two old framings are recognised by their content on any server, as no
version number tells them apart (13.x kept them after 14.0 had dropped them):
the ``Response: Follows`` Command answer that ends in ``--END COMMAND--``
(before 14), and the bare text of the ``Queues`` action (before 15).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from txami.message import Message

__all__ = [
    "LIST_ENDS",
    "MODERN",
    "RULES",
    "AMIVersion",
    "Rule",
    "ServerRules",
    "iax_peers_from_text",
    "rules_for",
]

_NUMBERS = re.compile(r"\d+(?:\.\d+)*")


class AMIVersion(str):
    """
    The AMI version of a banner (``"1.1"``, ``"2.10.6"``, ``"9.0.0"``): the text
    as the server sent it, ordered by its numbers.

    ``AMIVersion("2.10.6") > "2.7"`` compares ``(2, 10, 6)`` with ``(2, 7)``
    (missing parts count as 0); a tuple of ints may be given instead of text.
    Equality and hashing stay those of the text, so ``version == "9.0.0"``
    holds as before.  ``numbers`` is empty when the text does not start with a
    number; such a version sorts before every other.
    """

    __slots__ = ("numbers",)

    numbers: tuple[int, ...]

    def __new__(cls, text: str) -> AMIVersion:
        self = super().__new__(cls, text)
        match = _NUMBERS.match(text.strip())
        numbers = tuple(int(n) for n in match.group().split(".")) if match else ()
        while numbers and numbers[-1] == 0 and len(numbers) > 1:
            numbers = numbers[:-1]
        self.numbers = numbers
        return self

    @staticmethod
    def _key(other: str | tuple[int, ...]) -> tuple[int, ...]:
        if isinstance(other, AMIVersion):
            return other.numbers
        if isinstance(other, tuple):
            return AMIVersion(".".join(str(n) for n in other)).numbers
        return AMIVersion(other).numbers

    def __lt__(self, other: str | tuple[int, ...]) -> bool:
        return self.numbers < self._key(other)

    def __le__(self, other: str | tuple[int, ...]) -> bool:
        return self.numbers <= self._key(other)

    def __gt__(self, other: str | tuple[int, ...]) -> bool:
        return self.numbers > self._key(other)

    def __ge__(self, other: str | tuple[int, ...]) -> bool:
        return self.numbers >= self._key(other)

    def __repr__(self) -> str:
        return f"AMIVersion({str(self)!r})"


#: The list actions of releases before 13.2 (AMI 2.7.0) and the event that
#: ends each one's list (lower-case action name -> event names).  Before the
#: 13.2 change "AMI: Make AMI actions that generate event lists consistent",
#: many of them answered without ``EventList: start`` and ended without
#: ``EventList: Complete``.  Chan_dahdi of 1.4 names its completion after the
#: channel driver's mode, whichever of the two actions was called.
LIST_ENDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "agents": ("AgentsComplete",),
        "bridgeinfo": ("BridgeInfoComplete",),
        "bridgelist": ("BridgeListComplete",),
        "bridgetechnologylist": ("BridgeTechnologyListComplete",),
        "confbridgelist": ("ConfbridgeListComplete",),
        "confbridgelistrooms": ("ConfbridgeListRoomsComplete",),
        "coreshowchannels": ("CoreShowChannelsComplete",),
        "dahdishowchannels": ("DAHDIShowChannelsComplete", "ZapShowChannelsComplete"),
        "zapshowchannels": ("ZapShowChannelsComplete", "DAHDIShowChannelsComplete"),
        "dbget": ("DBGetComplete",),
        "devicestatelist": ("DeviceStateListComplete",),
        "extensionstatelist": ("ExtensionStateListComplete",),
        "faxsessions": ("FAXSessionsComplete",),
        "iaxpeerlist": ("PeerlistComplete",),
        "iaxpeers": ("PeerlistComplete",),
        "iaxregistry": ("RegistrationsComplete",),
        "meetmelist": ("MeetmeListComplete",),
        "meetmelistrooms": ("MeetmeListRoomsComplete",),
        "mwiget": ("MWIGetComplete",),
        "parkedcalls": ("ParkedCallsComplete",),
        "parkinglots": ("ParkinglotsComplete",),
        "pjsipshowendpoint": ("EndpointDetailComplete",),
        "pjsipshowendpoints": ("EndpointListComplete",),
        "pjsipshowregistrationsinbound": ("InboundRegistrationDetailComplete",),
        "pjsipshowregistrationsoutbound": ("OutboundRegistrationDetailComplete",),
        "pjsipshowresourcelists": ("ResourceListDetailComplete",),
        "pjsipshowsubscriptionsinbound": ("InboundSubscriptionDetailComplete",),
        "pjsipshowsubscriptionsoutbound": ("OutboundSubscriptionDetailComplete",),
        "presencestatelist": ("PresenceStateListComplete",),
        "prishowspans": ("PRIShowSpansComplete",),
        "queuestatus": ("QueueStatusComplete",),
        "queuesummary": ("QueueSummaryComplete",),
        "showdialplan": ("ShowDialPlanComplete",),
        "sippeers": ("PeerlistComplete",),
        "sippeerstatus": ("SIPpeerstatusComplete",),
        "sipshowregistry": ("RegistrationsComplete",),
        "skinnydevices": ("DevicelistComplete",),
        "skinnylines": ("LinelistComplete",),
        "status": ("StatusComplete",),
        "voicemailuserslist": ("VoicemailUserEntryComplete",),
    }
)

#: The answers 1.6.0 to 1.6.1.11 send without the blank line that ends a message
#: (Events up to 1.6.0.19 and 1.6.1.11, Ping in 1.6.0 and 1.6.0.1).
UNTERMINATED: tuple[bytes, ...] = (
    b"Response: Success\r\nEvents: On\r\n",
    b"Response: Success\r\nEvents: Off\r\n",
    b"Response: Success\r\nPing: Pong\r\n",
)


class Rule(NamedTuple):
    """One old-server rule: the `ServerRules` field it sets, for which AMI versions, and why."""

    field: str
    #: The first AMI version that needs it.
    since: str
    #: The first AMI version that no longer needs it.
    until: str
    #: The Asterisk releases behind those AMI versions.
    releases: str
    #: What those servers do, and what txami does about it.
    behaviour: str


#: Every rule, in the order the documentation's table gives them.
RULES: tuple[Rule, ...] = (
    Rule(
        "success_words",
        "1.0",
        "1.1",
        "1.4",
        "Ping answers 'Response: Pong' and Events 'Response: Events On' or "
        "'Events Off': these are successes.",
    ),
    Rule(
        "untagged_answers",
        "1.1",
        "1.2",
        "1.6.0 to 1.8.x",
        "Events (up to 1.8.4) and Ping (up to 1.6.1) answer without ActionID: "
        "a response without any ActionID goes to the oldest action still "
        "waiting for its response (Asterisk answers a session's actions in order).",
    ),
    Rule(
        "unterminated_answers",
        "1.1",
        "1.2",
        "1.6.0 to 1.6.1.11",
        "The Events answer (and Ping's in 1.6.0 and 1.6.0.1) has no blank line "
        "after it, so it runs into the next message: txami cuts it off there, "
        "and takes it at once when nothing follows yet.",
    ),
    Rule(
        "loose_blocks",
        "1.0",
        "1.3",
        "1.4 to 10",
        "Some answers do not start with Response (app_rpt puts ActionID first; "
        "1.4's IAXpeers sends its ActionID, then the CLI table as bare text): "
        "a block is classified by its Response or Event header wherever it "
        "stands, and bare text answering an ActionID becomes Output lines.",
    ),
    Rule(
        "list_ends",
        "1.0",
        "2.7.0",
        "1.4 to 13.1",
        "List actions may answer without 'EventList: start': txami collects the "
        "items of the actions in its table (`txami.compat.LIST_ENDS`) until the "
        "event that completes each, as for a modern list.",
    ),
    Rule(
        "closing_ping",
        "1.0",
        "1.2",
        "1.4 to 1.8",
        "DBGet (up to 1.6) and IAXpeers (1.6) send their items with no event "
        "after them: txami sends a Ping behind them and ends the list when the "
        "Ping is answered.",
    ),
)


@dataclass(frozen=True)
class ServerRules:
    """
    The old-server rules one server needs (`rules_for` builds it from the
    banner's version); every field is off for a modern server (`MODERN`).
    """

    version: AMIVersion | None = None
    #: Lower-case response words that mean success besides Success, Goodbye, Follows.
    success_words: frozenset[str] = frozenset()
    #: Whether a response with no ActionID goes to the oldest action waiting for one.
    untagged_answers: bool = False
    #: Whole answers the server sends without their blank line (see `UNTERMINATED`).
    unterminated_answers: tuple[bytes, ...] = ()
    #: Whether blocks are classified by a Response/Event header anywhere in them.
    loose_blocks: bool = False
    #: List actions whose answer may lack ``EventList``: lower-case action ->
    #: lower-case names of the events that end the list.
    list_ends: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    #: Lower-case list actions that may end with no event: a Ping's answer ends them.
    closing_ping: frozenset[str] = frozenset()

    @property
    def modern(self) -> bool:
        """Whether no old-server rule is on."""
        return not (
            self.success_words
            or self.untagged_answers
            or self.unterminated_answers
            or self.loose_blocks
            or self.list_ends
            or self.closing_ping
        )


#: The rules of Asterisk 13.2 and later (and of a server whose version is unknown).
MODERN = ServerRules()

_SETTINGS: dict[str, object] = {
    "success_words": frozenset({"pong", "events on", "events off"}),
    "untagged_answers": True,
    "unterminated_answers": UNTERMINATED,
    "loose_blocks": True,
    "list_ends": MappingProxyType(
        {action: tuple(e.lower() for e in ends) for action, ends in LIST_ENDS.items()}
    ),
}


def rules_for(version: AMIVersion | str | None) -> ServerRules:
    """
    The rules a server announcing AMI ``version`` needs; `MODERN` when the
    version is unknown, unreadable or 2.7.0 and later.
    """
    if version is None:
        return MODERN
    if not isinstance(version, AMIVersion):
        version = AMIVersion(version)
    if not version.numbers:
        return MODERN
    chosen: dict[str, object] = {}
    for rule in RULES:
        if version >= rule.since and version < rule.until:
            if rule.field == "closing_ping":
                # 1.4 and 1.6 have no DBGetComplete (1.8 added it); 1.6's IAXpeers
                # has no PeerlistComplete (1.4 answers with text, 1.8 with a list).
                chosen["closing_ping"] = frozenset(
                    {"dbget", "iaxpeers"} if version >= "1.1" else {"dbget"}
                )
            else:
                chosen[rule.field] = _SETTINGS[rule.field]
    if not chosen:
        return MODERN
    return ServerRules(version, **chosen)  # type: ignore[arg-type]


def iax_peers_from_text(lines: list[str]) -> list[Message]:
    """
    The rows of the ``iax2 show peers`` table that 1.4 answers ``IAXpeers``
    with, as the ``PeerEntry`` events later releases send instead.

    Each row is chan_iax2's ``"%-15.15s  %-15.15s %s  %-15.15s  %-5d%s  %s
    %-10s"`` (name, host, ``(D)``/``(S)``, mask, port, ``(T)``, ``(E)``,
    status); names longer than 15 characters arrive cut, as 1.4 prints them.
    The heading and the ``N iax2 peers`` summary are left out.
    """
    peers = []
    for line in lines:
        dynamic, port = line[33:36], line[55:60].strip()
        if len(line) < 69 or dynamic not in ("(D)", "(S)") or not port.isdecimal():
            continue
        host = line[17:32].strip()
        peers.append(
            Message(
                [
                    ("Event", "PeerEntry"),
                    ("Channeltype", "IAX2"),
                    ("ObjectName", line[0:15].strip()),
                    ("ChanObjectType", "peer"),
                    ("IPaddress", "-none-" if host == "(Unspecified)" else host),
                    ("IPport", port),
                    ("Mask", line[38:53].strip()),
                    ("Dynamic", "yes" if dynamic == "(D)" else "no"),
                    ("Trunk", "yes" if line[60:63] == "(T)" else "no"),
                    ("Encryption", "yes" if line[65:68] == "(E)" else "no"),
                    ("Status", line[69:].strip()),
                ]
            )
        )
    return peers
