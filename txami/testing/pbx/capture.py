"""
`load_capture_defaults`: the fake PBX configured like the real Asterisk of
``../shared/asterisk`` (the server of the project's captures): context
``txami-test`` and its hints, queue ``support``, ConfBridge 680, parking lot
``default`` (7000, spaces 7001-7020), mailboxes, IAX2 peers, ``TXAMI_GLOBAL``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from txami.testing.pbx.directory import IAXPeer, Mailbox
from txami.testing.pbx.queues import Queue, QueueMember

if TYPE_CHECKING:
    from txami.testing.pbx.system import PBX

__all__ = ["CAPTURE_DIALPLAN", "load_capture_defaults"]

#: Context ``txami-test`` of ``../shared/asterisk/etc/extensions.conf``.
CAPTURE_DIALPLAN: dict[str, list[tuple[str, str]]] = {
    "1000": [("Answer", ""), ("Wait", "3600"), ("Hangup", "")],
    "1001": [("Answer", ""), ("Echo", "")],
    "1002": [("Answer", ""), ("Wait", "1"), ("Hangup", "")],
    "1003": [("Answer", ""), ("Wait", "0.2"), ("Hangup", "")],
    "1010": [("Answer", ""), ("Dial", "Local/1000@txami-test/n,,g"), ("Hangup", "")],
    "1011": [("Answer", ""), ("Dial", "Local/1012@txami-test,,g"), ("Hangup", "")],
    "1012": [("Dial", "Local/1013@txami-test/n,,g"), ("Hangup", "")],
    "1013": [("Answer", ""), ("MusicOnHold", "default,3600"), ("Hangup", "")],
    "900": [
        ("Answer", ""),
        ("AGI", "agi://${AGIHOST}/txami,one,two"),
        ("Verbose", "1,txami agi status ${AGISTATUS}"),
        ("Hangup", ""),
    ],
    "901": [("Answer", ""), ("AGI", "agi:async"), ("Hangup", "")],
    "680": [("Answer", ""), ("ConfBridge", "680"), ("Hangup", "")],
    "600": [("Answer", ""), ("Queue", "support,,,,120"), ("Hangup", "")],
    "700": [
        ("Answer", ""),
        ("UserEvent", "TxamiTest,Foo: bar"),
        ("Wait", "1"),
        ("Hangup", ""),
    ],
    "710": [
        ("Answer", ""),
        ("Verbose", "1,txami var FOO=${FOO} BAR=${BAR}"),
        ("Wait", "2"),
        ("Hangup", ""),
    ],
    "2000": [("Answer", ""), ("Wait", "5"), ("Hangup", "")],
    "2001": [("Hangup", "")],
    "2002": [("Hangup", "")],
    "2099": [("Set", "DEVICE_STATE(Custom:txami2000)=INUSE"), ("Hangup", "")],
    "8500": [("Answer", ""), ("VoiceMailMain", "1234@default,s"), ("Hangup", "")],
}


def load_capture_defaults(pbx: PBX) -> None:
    """Configure ``pbx`` like the real Asterisk of ``../shared/asterisk`` (see above)."""
    pbx.dialplan["txami-test"] = {exten: list(steps) for exten, steps in CAPTURE_DIALPLAN.items()}
    pbx.default_context = "txami-test"
    pbx.dialplan.setdefault("txami-iax", {})
    pbx.includes["txami-iax"] = ["txami-test"]
    pbx.hints[("txami-test", "2000")] = "Custom:txami2000"
    pbx.hints[("txami-test", "2001")] = "Custom:txami2001"
    pbx.hints[("txami-test", "2002")] = "Custom:txami2002&Custom:txami2003"
    pbx.globals["TXAMI_GLOBAL"] = "hello"
    pbx.mailboxes["1234@default"] = Mailbox(new=2, old=1, fullname="Txami Tester")
    pbx.mailboxes["1235@default"] = Mailbox(fullname="Empty Box")
    started = int(pbx.start_time)
    pbx.queues["support"] = Queue(
        "support",
        timeout=15,
        retry=5,
        members=[
            QueueMember(
                "Local/1000@txami-test/n",
                "Agent One",
                "Local/1000@txami-test/n",
                login_time=started,
            ),
            QueueMember(
                "Local/1001@txami-test/n",
                "Agent Two",
                "Local/1001@txami-test/n",
                login_time=started,
            ),
        ],
    )
    pbx.iax_peers[:] = [IAXPeer("txpeer2"), IAXPeer("txpeer1", host="127.0.0.1")]
    # The cached device states of a freshly started server with an empty AstDB
    # (Custom: states set earlier would be restored from it); app_queue starts its
    # queues' _avail device INUSE, "no member known available yet".
    pbx.device_states.update(
        {
            "Queue:support_avail": "INUSE",
            "MWI:1234@default": "INUSE",
            "MWI:1235@default": "NOT_INUSE",
            "Queue:support_pause_Local/1001@txami-test/n": "NOT_INUSE",
            "Queue:support_pause_Local/1000@txami-test/n": "NOT_INUSE",
        }
    )
