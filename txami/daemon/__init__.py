"""
The ``twistd txami`` daemon: one module per piece.

- `txami.daemon.options`: the command line and `makeService`;
- `txami.daemon.service`: the service tree (AMI client, event log, HTTP);
- `txami.daemon.web`: the HTTP resources (health, events, actions, metrics);
- `txami.daemon.hub`: the event hub that fans events out to the sinks;
- `txami.daemon.eventlog`: the JSON lines event log;
- `txami.daemon.metrics`: counters in Prometheus text form;
- `txami.daemon.demo`: the embedded fake PBX behind ``--demo``.

The library (`txami`) never imports this package; `txami.tap` is the thin
entry point the twistd plugin names.
"""
