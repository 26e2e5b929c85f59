"""
`Bridge`: one Asterisk bridge (two parties talking, a conference, a parking
lot, a holding bridge), keyed by its ``BridgeUniqueid``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from txami.state.channel import intern_value

if TYPE_CHECKING:
    from txami.state.call import Call
    from txami.state.channel import Channel

__all__ = ["BRIDGE_FIELDS", "Bridge"]

#: The fields of `Bridge.as_dict`, in order (the snapshot's bridge shape).
BRIDGE_FIELDS = (
    "uniqueid",
    "type",
    "technology",
    "creator",
    "name",
    "channels",
    "call",
    "created",
)

#: The bridge technology whose members wait side by side without talking.
HOLDING = "holding_bridge"


def _unknown(value: str) -> str:
    return "" if value == "<unknown>" else value


class Bridge:
    """
    An Asterisk bridge.  ``type`` is Asterisk's ``BridgeType`` (``basic``,
    ``base`` for ConfBridge, ``parking``, ``holding``), ``technology`` its
    ``BridgeTechnology`` (``simple_bridge``, ``native_rtp``, ``softmix``,
    ``holding_bridge``), ``creator`` and ``name`` are ``""`` when Asterisk
    says ``<unknown>`` (ConfBridge sets both: ``ConfBridge``, the conference).

    ``channels`` are the member channels in the order they joined (a channel
    that replaces another, as a Local channel optimising away does, takes its
    place; members found by a sync are in the order Asterisk listed them).
    ``call`` is the `Call` its members belong to, or `None` when it is empty
    or a holding bridge (a parking lot holds many unrelated calls).
    """

    __slots__ = (
        "call",
        "channels",
        "created",
        "creator",
        "name",
        "technology",
        "type",
        "uniqueid",
    )

    def __init__(
        self,
        uniqueid: str,
        type: str = "",
        technology: str = "",
        creator: str = "",
        name: str = "",
        created: float = 0.0,
    ) -> None:
        self.uniqueid = uniqueid
        self.type = intern_value(type)
        self.technology = intern_value(technology)
        self.creator = intern_value(_unknown(creator))
        self.name = _unknown(name)
        self.channels: list[Channel] = []
        self.call: Call | None = None
        self.created = created

    def __repr__(self) -> str:
        return (
            f"<Bridge {self.uniqueid} {self.type}/{self.technology} {len(self.channels)} channels>"
        )

    @property
    def connects(self) -> bool:
        """Whether its members talk to each other (so belong to one call)."""
        return self.technology != HOLDING

    def update(self, type: str, technology: str, creator: str, name: str) -> list[str] | None:
        """Take Asterisk's description; the names of the fields that changed, or `None`."""
        changed: list[str] = []
        if type and type != self.type:
            self.type = intern_value(type)
            changed.append("type")
        if technology and technology != self.technology:
            self.technology = intern_value(technology)
            changed.append("technology")
        creator = _unknown(creator)
        if creator != self.creator:
            self.creator = intern_value(creator)
            changed.append("creator")
        name = _unknown(name)
        if name != self.name:
            self.name = name
            changed.append("name")
        return changed or None

    def as_dict(self) -> dict[str, Any]:
        """This bridge as plain JSON-able data (the snapshot's bridge shape)."""
        call = self.call
        return {
            "uniqueid": self.uniqueid,
            "type": self.type,
            "technology": self.technology,
            "creator": self.creator,
            "name": self.name,
            "channels": [c.uniqueid for c in self.channels],
            "call": call.id if call is not None else None,
            "created": self.created,
        }
