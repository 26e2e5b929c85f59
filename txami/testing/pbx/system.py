"""
`PBX`: the fake PBX assembled from its layers (see `txami.testing.pbx`).
"""

from __future__ import annotations

from txami.testing.pbx.core import EmitHook
from txami.testing.pbx.directory import DirectoryMixin
from txami.testing.pbx.scenarios import ScenariosMixin
from txami.testing.timers import Timers

__all__ = ["PBX"]


class PBX(ScenariosMixin, DirectoryMixin):
    """
    The fake Asterisk's state and call simulation.

    ``timers`` schedules call progress on the server's clock; ``emit`` (set by
    the server) receives every event.  All attributes are plain, public data
    that tests may change before or during a test.
    """

    def __init__(self, timers: Timers, emit: EmitHook | None = None) -> None:
        super().__init__(timers, emit)
