"""Wiring: the long-lived adapters of one process (web or worker), built from Settings."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from rq import Queue
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from verify import redisconn
from verify.config import Settings
from verify.db import make_engine, make_session_factory
from verify.delivery.queue import RQDispatcher
from verify.domain.clock import Clock, SystemClock
from verify.domain.codes import CodeHasher, CodeSealer
from verify.domain.services import ServiceCache


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis
    queue: Queue
    hasher: CodeHasher
    sealer: CodeSealer
    dispatcher: RQDispatcher  # enqueues delivery jobs on ``queue``
    clock: Clock = field(default_factory=SystemClock)
    # Service snapshots for the start/check hot path (a few seconds old at most).
    services: ServiceCache = field(default_factory=ServiceCache)

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()


def build_runtime(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    client = redisconn.connect(settings)
    engine = make_engine(settings.effective_database_url)
    queue = Queue(settings.queue_name, connection=client)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        redis=client,
        queue=queue,
        hasher=CodeHasher(
            settings.code_peppers,
            time_cost=settings.argon2.time_cost,
            memory_cost_kib=settings.argon2.memory_cost_kib,
            parallelism=settings.argon2.parallelism,
        ),
        sealer=CodeSealer(settings.code_keys),
        dispatcher=RQDispatcher(queue),
        clock=clock or SystemClock(),
    )
