"""Prometheus metrics, computed when scraped: nothing is kept in the memory of a web process.

Counters live in Redis hashes (``verify:metrics:<name>``, one field per label set) so that every
gunicorn process and every worker adds to the same numbers: the relay counts each outbox event once,
as it claims it; webhook workers count their tries; the web tier counts error answers. Gauges (queue
depths, workers, webhook lag and backlog) are read from Redis, RQ and the database at scrape time. A
scrape is a handful of indexed queries and Redis reads, whatever the traffic.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from rq import Queue, Worker
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from verify.delivery.circuit import CircuitBreakers, Policy
from verify.models import Event
from verify.models.webhooks import WebhookDelivery
from verify.runtime import Runtime

log = logging.getLogger(__name__)

PREFIX = "verify:metrics:"
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what generate_latest writes
RECEIPT_TYPES = ("message.delivered", "message.undelivered")
RECEIPT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
# Error codes that mean "refused by a rate limit" and "refused by the fraud rules".
RATE_LIMIT_CODES = {20429, 60203, 60212}
FRAUD_CODES = {60410, 60605}
# RQ workers heartbeat at least every (worker_ttl - 15) s; workers/worker.py sets worker_ttl to 60.
WORKER_FRESH_SECONDS = 90

# name -> (help, label names); every one is a counter kept in Redis.
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "verifications_started": (
        "Verifications started (a new pending verification)",
        ("service", "channel", "country"),
    ),
    "verifications_approved": ("Verifications approved", ("service", "channel", "country")),
    "events": ("Outbox events relayed, by type", ("type",)),
    "send_attempts": (
        "Send attempt outcomes reported by the delivery pipeline, by provider and result",
        ("provider", "channel", "result"),
    ),
    "fraud_blocked": ("Sends blocked by the fraud rules (fraud.blocked events)", ("reason",)),
    "webhook_attempts": ("Webhook HTTP tries, by result", ("result",)),
    "webhook_dead": ("Webhook deliveries that spent their retries (dead-lettered)", ()),
    "api_errors": ("API error answers, by HTTP status and error code", ("status", "code")),
}


def _field(labels: Sequence[object]) -> str:
    return json.dumps([str(v) if v is not None else "" for v in labels])


class Counters:
    """Increments to the Redis-held counters. Failures are logged, never raised: a metric must not
    break the request or job that counts it."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def add(self, increments: Iterable[tuple[str, Sequence[object], float]]) -> None:
        try:
            pipe = self._redis.pipeline(transaction=False)
            n = 0
            for name, labels, amount in increments:
                if name.startswith("hist:"):
                    pipe.hincrbyfloat(PREFIX + name, _field(labels), amount)
                else:
                    pipe.hincrby(PREFIX + name, _field(labels), int(amount))
                n += 1
            if n:
                pipe.execute()
        except redis.RedisError:
            log.warning("metrics not counted: Redis unavailable")

    def inc(self, name: str, *labels: object) -> None:
        self.add([(name, labels, 1)])


def count_events(client: redis.Redis, session: Session, events: Sequence[Event]) -> None:
    """Count freshly relayed events (each is relayed once)."""
    increments: list[tuple[str, Sequence[object], float]] = []
    receipts = [e for e in events if e.type in RECEIPT_TYPES]
    sent_at = _sent_times(session, [e.subject_sid for e in receipts]) if receipts else {}
    for event in events:
        p = event.payload if isinstance(event.payload, dict) else {}
        increments.append(("events", (event.type,), 1))
        where = (event.service_sid, p.get("channel"), p.get("country"))
        if event.type == "verification.pending":
            increments.append(("verifications_started", where, 1))
        elif event.type == "verification.approved":
            increments.append(("verifications_approved", where, 1))
        elif event.type.startswith("message.") and event.type != "message.queued":
            result = event.type.split(".", 1)[1]
            increments.append(("send_attempts", (p.get("provider"), p.get("channel"), result), 1))
        elif event.type == "fraud.blocked":
            reason = p.get("reason_code") or p.get("rule") or p.get("reason")
            increments.append(("fraud_blocked", (reason,), 1))
        if event.type in RECEIPT_TYPES and event.subject_sid in sent_at:
            latency = max(0.0, (event.date_created - sent_at[event.subject_sid]).total_seconds())
            channel = p.get("channel")
            bucket = next((i for i, le in enumerate(RECEIPT_BUCKETS) if latency <= le), -1)
            increments += [
                ("hist:receipt_latency", (channel, bucket), 1),
                ("hist:receipt_latency", (channel, "sum"), latency),
            ]
    Counters(client).add(increments)


def _sent_times(session: Session, attempt_sids: list[str]) -> dict[str, datetime]:
    rows = session.execute(
        select(Event.subject_sid, func.min(Event.date_created))
        .where(Event.subject_sid.in_(attempt_sids), Event.type == "message.sent")
        .group_by(Event.subject_sid)
    )
    return {sid: at for sid, at in rows}


class VerifyCollector(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "verify_dependency_up", "1 if a dependency answered this scrape", labels=["dependency"]
        )
        for name, source in (("redis", self._redis), ("database", self._database)):
            try:
                yield from source()
                up.add_metric([name], 1)
            except Exception:
                log.warning("metrics source unavailable", extra={"source": name})
                up.add_metric([name], 0)
        yield up

    # -- Redis and RQ ------------------------------------------------------------------------------

    def _redis(self) -> Iterator[Metric]:
        client = self._rt.redis
        stored = {name: client.hgetall(PREFIX + name) for name in COUNTERS}
        for name, (doc, labels) in COUNTERS.items():
            family = CounterMetricFamily(f"verify_{name}", doc, labels=list(labels))
            for raw, value in stored[name].items():
                family.add_metric(json.loads(raw)[: len(labels)], float(value))
            yield family
        yield from self._rejections(stored["api_errors"])
        yield self._histogram(client.hgetall(PREFIX + "hist:receipt_latency"))
        yield self._circuits()
        yield from self._queues()

    def _rejections(self, errors: dict[Any, Any]) -> Iterator[Metric]:
        limited = CounterMetricFamily(
            "verify_rate_limit_rejections", "Requests refused by a rate limit", labels=["code"]
        )
        fraud = CounterMetricFamily(
            "verify_fraud_rejections", "Requests refused by the fraud rules", labels=["code"]
        )
        for raw, value in errors.items():
            _status, code = json.loads(raw)
            if code.isdigit() and int(code) in RATE_LIMIT_CODES:
                limited.add_metric([code], float(value))
            elif code.isdigit() and int(code) in FRAUD_CODES:
                fraud.add_metric([code], float(value))
        yield limited
        yield fraud

    def _histogram(self, stored: dict[Any, Any]) -> Metric:
        family = HistogramMetricFamily(
            "verify_delivery_receipt_latency_seconds",
            "Time from a message's message.sent to its delivery receipt (delivered or undelivered)",
            labels=["channel"],
        )
        per_channel: dict[str, dict[str, float]] = {}
        for raw, value in stored.items():
            channel, bucket = json.loads(raw)
            per_channel.setdefault(channel, {})[bucket] = float(value)
        for channel, values in sorted(per_channel.items()):
            cumulative, buckets = 0.0, []
            for i, le in enumerate(RECEIPT_BUCKETS):
                cumulative += values.get(str(i), 0.0)
                buckets.append((str(le), cumulative))
            total = cumulative + values.get("-1", 0.0)
            buckets.append(("+Inf", total))
            family.add_metric([channel], buckets, sum_value=values.get("sum", 0.0))
        return family

    def _circuits(self) -> Metric:
        family = GaugeMetricFamily(
            "verify_circuit_open",
            "1 while a provider's circuit breaker for a destination country is open or half open",
            labels=["provider", "country"],
        )
        breakers = CircuitBreakers(self._rt.redis, Policy())
        for name, state in breakers.states().items():
            provider, _, country = name.partition(":")
            family.add_metric([provider, country], float(state.get("state", "closed") != "closed"))
        return family

    def _queues(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "verify_queue_jobs", "RQ jobs by queue and state", labels=["queue", "state"]
        )
        for queue in self._rt.queues:
            for state, count in (
                ("queued", queue.count),
                ("started", StartedJobRegistry(queue=queue).count),
                ("deferred", DeferredJobRegistry(queue=queue).count),
                ("scheduled", ScheduledJobRegistry(queue=queue).count),  # type: ignore[no-untyped-call]
                ("failed", FailedJobRegistry(queue=queue).count),
            ):
                jobs.add_metric([queue.name, state], count)
        yield jobs
        yield from worker_metrics(self._rt.redis, self._rt.queue)

    # -- the database --------------------------------------------------------------------------------

    def _database(self) -> Iterator[Metric]:
        now = self._rt.clock.now()
        with self._rt.sessions() as session:
            oldest = session.scalar(
                select(Event.date_created)
                .where(Event.published_at.is_(None))
                .order_by(Event.id)
                .limit(1)
            )
            unpublished = session.scalar(
                select(func.count()).select_from(Event).where(Event.published_at.is_(None))
            )
            by_status = dict(
                session.execute(
                    select(WebhookDelivery.status, func.count())
                    .where(
                        WebhookDelivery.status.in_(("pending", "retrying", "delivering", "dead"))
                    )
                    .group_by(WebhookDelivery.status)
                ).all()
            )
            overdue = session.scalar(
                select(func.min(WebhookDelivery.next_attempt_at)).where(
                    WebhookDelivery.status.in_(("pending", "retrying"))
                )
            )
        lag = GaugeMetricFamily(
            "verify_webhook_relay_lag_seconds",
            "Age of the oldest event the relay has not picked up yet (0 when none waits)",
        )
        lag.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        yield lag
        waiting = GaugeMetricFamily("verify_outbox_unpublished", "Events not yet relayed")
        waiting.add_metric([], unpublished or 0)
        yield waiting
        deliveries = GaugeMetricFamily(
            "verify_webhook_deliveries", "Unfinished and dead webhook deliveries", labels=["status"]
        )
        for status in ("pending", "retrying", "delivering", "dead"):
            deliveries.add_metric([status], by_status.get(status, 0))
        yield deliveries
        behind = GaugeMetricFamily(
            "verify_webhook_delivery_lag_seconds",
            "How far past its due time the most overdue pending or retrying delivery is",
        )
        behind.add_metric([], max(0.0, (now - overdue).total_seconds()) if overdue else 0.0)
        yield behind


def fresh_workers(client: redis.Redis, queue: Queue) -> tuple[int, int]:
    """(workers registered on ``queue``, those whose heartbeat is recent)."""
    workers = Worker.all(connection=client, queue=queue)
    now = datetime.now(UTC)
    fresh = 0
    for worker in workers:
        beat = worker.last_heartbeat
        if beat is None:
            continue
        beat = beat if beat.tzinfo else beat.replace(tzinfo=UTC)
        if (now - beat).total_seconds() <= WORKER_FRESH_SECONDS:
            fresh += 1
    return len(workers), fresh


def worker_metrics(client: redis.Redis, queue: Queue) -> Iterator[Metric]:
    registered, fresh = fresh_workers(client, queue)
    family = GaugeMetricFamily(
        "verify_workers", "RQ workers on the queue, by heartbeat freshness", labels=["state"]
    )
    family.add_metric(["fresh"], fresh)
    family.add_metric(["stale"], registered - fresh)
    yield family


def render(runtime: Runtime) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(VerifyCollector(runtime))
    return generate_latest(registry)
