"""
`add_redis`: connect a daemon's PBXs to Redis Streams.

Each PBX gets a `PBXBuffer` (bounded by ``[redis] buffer-events`` and
``buffer-bytes``, all of them by ``total-buffer-events`` and
``total-buffer-bytes``) fed by its `Sequencer`; one `StreamPublisher`
sends them through a `RedisStreamEngine` on one connection, at most
``window`` in flight.  With ``actions = yes`` an `ActionConsumer` reads the
request streams on a second connection (blocking reads hold theirs) and
answers on the first.
"""

from __future__ import annotations

from typing import Any

from txami.daemon.buffer import BufferBudget, PBXBuffer
from txami.daemon.config import RedisConfig
from txami.daemon.service import BridgeService

__all__ = ["add_redis"]


def add_redis(bridge: BridgeService, config: RedisConfig, reactor: Any) -> None:
    """Publish every session of ``bridge`` (add them first) to Redis, and take actions from it."""
    from txami.daemon.actionconsumer import ActionConsumer
    from txami.daemon.publisher import StreamPublisher
    from txami.daemon.redisconn import RedisConnection
    from txami.daemon.redisengine import RedisStreamEngine

    connection = RedisConnection(reactor, config, name="events")
    engine = RedisStreamEngine(connection, config.prefix, config.maxlen)
    publisher = StreamPublisher(engine, reactor, config.window)
    budget = BufferBudget(config.total_buffer_events, config.total_buffer_bytes)
    for session in bridge.sessions.values():
        buffer = PBXBuffer(
            session.pbx,
            max_events=config.buffer_events,
            max_bytes=config.buffer_bytes,
            budget=budget,
            metrics=session.metrics,
        )
        session.attach_buffer(buffer)
        publisher.add_buffer(buffer)
    bridge.metrics.publishing = True
    bridge.metrics.add_value(
        "txami_redis_connected",
        "gauge",
        "1 while the connection that publishes events to Redis is up.",
        lambda: 1 if connection.connected else 0,
    )
    bridge.publisher = publisher
    bridge.redis = [connection]
    # Start order: the connection, then the publisher (stopped the other way round,
    # so the publisher drains into a live connection).
    bridge.add_service(connection)
    bridge.add_service(publisher)
    if config.actions:
        reader = RedisConnection(reactor, config, name="actions")
        consumer = ActionConsumer(reactor, reader, connection, bridge.sessions, config)
        bridge.redis.append(reader)
        bridge.actions = consumer
        bridge.add_service(reader)
        bridge.add_service(consumer)
