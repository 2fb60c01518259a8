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
    overflow: Queue  # an account's new sends past its fair share (verify.delivery.queue)
    hasher: CodeHasher
    sealer: CodeSealer
    dispatcher: RQDispatcher  # enqueues delivery jobs on ``queue`` and ``overflow``
    clock: Clock = field(default_factory=SystemClock)
    # Service snapshots for the start/check hot path (a few seconds old at most).
    services: ServiceCache = field(default_factory=ServiceCache)

    @property
    def queues(self) -> list[Queue]:
        """What workers take jobs from, in order: ``overflow`` only when ``queue`` is empty."""
        return [self.queue, self.overflow]

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()


def build_runtime(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    client = redisconn.connect(settings)
    engine = make_engine(settings.effective_database_url)
    queue = Queue(settings.queue_name, connection=client)
    overflow = Queue(f"{settings.queue_name}-overflow", connection=client)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        redis=client,
        queue=queue,
        overflow=overflow,
        hasher=CodeHasher(
            settings.code_peppers,
            time_cost=settings.argon2.time_cost,
            memory_cost_kib=settings.argon2.memory_cost_kib,
            parallelism=settings.argon2.parallelism,
        ),
        sealer=CodeSealer(settings.code_keys),
        dispatcher=RQDispatcher(queue, overflow, settings.limits.delivery_fair_share),
        clock=clock or SystemClock(),
    )
