"""
The ``twistd txami`` daemon: one module per piece.

- `txami.daemon.options`: the command line and `makeService`;
- `txami.daemon.config`: the ``--config`` file's ``[http]`` and ``[redis]``
  sections, and the checks the flags share with it;
- `txami.daemon.service`: the service tree (the PBXs, event log, HTTP, Redis);
- `txami.daemon.session`: one PBX's session (its AMI client, hub, metrics);
- `txami.daemon.routes`: the HTTP tree, per PBX (``/pbx/NAME/...``);
- `txami.daemon.web`: the HTTP resources (health, events, actions, metrics),
  Server-Sent Events streams, and each request's grant;
- `txami.daemon.hub`: the event hub that fans events out to the sinks;
- `txami.daemon.eventlog`: the JSON lines event log;
- `txami.daemon.metrics`: counters per PBX in Prometheus text form;
- `txami.daemon.entries`: the Redis stream format (keys, fields, markers);
- `txami.daemon.sequencer`: epochs, seq and session markers of one PBX;
- `txami.daemon.buffer`: the bounded buffers and their gap accounting;
- `txami.daemon.publisher`: the windowed publisher and the engine interface;
- `txami.daemon.redisconn`: a reconnecting Redis connection (txredisapi);
- `txami.daemon.redisengine`: the Redis Streams engine (``XADD``);
- `txami.daemon.actionconsumer`: actions requested through Redis;
- `txami.daemon.redisbridge`: wires the PBXs to Redis;
- `txami.daemon.acl`: scoped HTTP tokens;
- `txami.daemon.statefeed`: one PBX's live state as numbered deltas;
- `txami.daemon.stateweb`: ``/state`` and ``/state/stream``;
- `txami.daemon.board`: the call board's files and ``/whoami``;
- `txami.daemon.demo`: the embedded fake PBX behind ``--demo``.

The library (`txami`) never imports this package; `txami.tap` is the thin
entry point the twistd plugin names.
"""
