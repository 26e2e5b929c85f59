"""
The ``twistd txami-agi`` plugin: host a FastAGI handler as a daemon.

Kept lazy on purpose, as txami_plugin.py: Twisted imports every plugin module
to list plugins, so this file imports only `ServiceMaker`, which loads
`txami.agi.tap` the first time the options or `makeService` are needed.
"""

from twisted.application.service import ServiceMaker

txami_agi = ServiceMaker(  # type: ignore[no-untyped-call]
    "txami-agi",
    "txami.agi.tap",
    "A FastAGI server: Asterisk's AGI(agi://...) calls run a txami.agi handler.",
    "txami-agi",
)
