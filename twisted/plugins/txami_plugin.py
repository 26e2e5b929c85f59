"""
The ``twistd txami`` plugin: an AMI event bridge daemon.

Kept lazy on purpose: Twisted imports every plugin module to list plugins, so
this file imports only `ServiceMaker`, which loads `txami.tap` (and with it
txami) the first time the options or `makeService` are needed.
"""

from twisted.application.service import ServiceMaker

txami = ServiceMaker(  # type: ignore[no-untyped-call]
    "txami",
    "txami.tap",
    "An Asterisk Manager Interface (AMI) event bridge: JSON lines and HTTP.",
    "txami",
)
