"""The relay: turns unpublished outbox events into deliveries and hands due deliveries to RQ.

One pass (a worker runs one every ``VERIFY_RELAY_INTERVAL`` seconds under a Redis lock):

1. claim a batch of events with ``published_at IS NULL`` by a conditional update (two relays running
   at once cannot both claim one), and in the same transaction write one delivery per matching
   enabled endpoint of the event's service, plus one for the verification's StatusCallback URL;
2. enqueue one RQ job per due delivery (new, retry time reached, or replayed), by id only, and push
   its ``next_attempt_at`` a little ahead so the next pass does not enqueue it again; a lost job is
   enqueued again once that has passed. The job claims the delivery before it sends, so a duplicate
   job sends nothing.

Any event type is relayed; subscriptions choose by type (``matches``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from verify.domain import sids
from verify.domain.clock import Clock
from verify.events.webhooks import DELIVERY_PREFIX, DeliveryDispatcher, matches
from verify.models import Event, Verification
from verify.models.webhooks import WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

DELIVER = "verify.jobs.deliver_webhook"
# How long an enqueued delivery is left to its job before the relay enqueues it again, and how long
# a delivery may stay "delivering" (its worker died mid-request) before it is retried.
ENQUEUED_LEASE = 60
STALE_DELIVERING = 300
_LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def job_id(delivery_sid: str) -> str:
    return f"webhook-{delivery_sid}"


class WebhookQueue:
    """The RQ side: one job per delivery, its id derived from the delivery (never two live ones)."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def enqueue(self, delivery_sid: str) -> bool:
        """Enqueue unless a live job for this delivery exists. True if enqueued; a Redis failure is
        logged and left to the relay's next pass."""
        jid = job_id(delivery_sid)
        try:
            try:
                existing = Job.fetch(jid, connection=self._queue.connection)
            except NoSuchJobError:
                existing = None
            if existing is not None and existing.get_status(refresh=False) in _LIVE:
                return False
            self._queue.enqueue(
                DELIVER,
                delivery_sid,
                job_id=jid,
                description=f"webhook {delivery_sid}",
                job_timeout=60,
                result_ttl=600,
                failure_ttl=86_400,
            )
        except redis.RedisError:
            log.warning(
                "webhook enqueue failed; the relay retries", extra={"delivery": delivery_sid}
            )
            return False
        return True


@dataclass
class RelayResult:
    events: list[Event] = field(default_factory=list)  # claimed in this pass
    created: int = 0  # deliveries written
    enqueued: int = 0  # jobs enqueued


class Relay:
    def __init__(
        self,
        session: Session,
        *,
        clock: Clock,
        dispatcher: DeliveryDispatcher,
        batch: int = 500,
        max_batches: int = 20,
    ) -> None:
        self._session = session
        self._clock = clock
        self._dispatcher = dispatcher
        self._batch = batch
        self._max_batches = max_batches

    def run(self) -> RelayResult:
        result = RelayResult()
        for _ in range(self._max_batches):
            events, created = self._claim_batch()
            result.events += events
            result.created += created
            if len(events) < self._batch:
                break
        for sid in self._due():
            result.enqueued += self._dispatcher.enqueue(sid)
        return result

    def _claim_batch(self) -> tuple[list[Event], int]:
        with self._session.begin():
            now = self._clock.now()
            candidates = list(
                self._session.scalars(
                    select(Event.id)
                    .where(Event.published_at.is_(None))
                    .order_by(Event.id)
                    .limit(self._batch)
                )
            )
            if not candidates:
                return [], 0
            claimed = set(
                self._session.scalars(
                    update(Event)
                    .where(Event.id.in_(candidates), Event.published_at.is_(None))
                    .values(published_at=now)
                    .returning(Event.id)
                    .execution_options(synchronize_session=False)
                )
            )
            events = list(
                self._session.scalars(select(Event).where(Event.id.in_(claimed)).order_by(Event.id))
            )
            created = self._fan_out(events, now)
        return events, created

    def _fan_out(self, events: list[Event], now: object) -> int:
        services = {e.service_sid for e in events if e.service_sid}
        endpoints: dict[str, list[WebhookEndpoint]] = {}
        if services:
            for endpoint in self._session.scalars(
                select(WebhookEndpoint).where(
                    WebhookEndpoint.service_sid.in_(services), WebhookEndpoint.status == "enabled"
                )
            ):
                endpoints.setdefault(endpoint.service_sid, []).append(endpoint)
        verification_sids = {
            str(e.payload["verification_sid"])
            for e in events
            if isinstance(e.payload, dict) and e.payload.get("verification_sid")
        }
        callbacks: dict[str, str] = {}
        if verification_sids:
            callbacks = {
                sid: url
                for sid, url in self._session.execute(
                    select(Verification.sid, Verification.status_callback).where(
                        Verification.sid.in_(verification_sids),
                        Verification.status_callback.is_not(None),
                    )
                )
                if url
            }
        created = 0
        for event in events:
            verification_sid = (
                event.payload.get("verification_sid") if isinstance(event.payload, dict) else None
            )
            targets: list[tuple[str | None, str | None]] = [
                (endpoint.sid, None)
                for endpoint in endpoints.get(event.service_sid or "", [])
                if matches(endpoint.event_types, event.type)
            ]
            if verification_sid in callbacks:
                targets.append((None, callbacks[str(verification_sid)]))
            for endpoint_sid, url in targets:
                self._session.add(
                    WebhookDelivery(
                        sid=sids.new_sid(DELIVERY_PREFIX),
                        account_sid=event.account_sid,
                        service_sid=event.service_sid,
                        endpoint_sid=endpoint_sid,
                        url=url,
                        event_sid=event.sid,
                        event_type=event.type,
                        verification_sid=str(verification_sid) if verification_sid else None,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        date_created=now,
                        date_updated=now,
                    )
                )
                created += 1
        return created

    def _due(self, limit: int = 1000) -> list[str]:
        """Deliveries to enqueue now; each gets ``ENQUEUED_LEASE`` seconds before it is due again."""
        with self._session.begin():
            now = self._clock.now()
            # A worker that died mid-request left its delivery "delivering": retry it.
            self._session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.status == "delivering",
                    WebhookDelivery.date_updated <= now - timedelta(seconds=STALE_DELIVERING),
                )
                .values(status="retrying", next_attempt_at=now, date_updated=now)
                .execution_options(synchronize_session=False)
            )
            due = list(
                self._session.scalars(
                    select(WebhookDelivery.sid)
                    .where(
                        WebhookDelivery.status.in_(("pending", "retrying")),
                        WebhookDelivery.next_attempt_at <= now,
                    )
                    .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                    .limit(limit)
                )
            )
            if due:
                self._session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.sid.in_(due))
                    .values(next_attempt_at=now + timedelta(seconds=ENQUEUED_LEASE))
                    .execution_options(synchronize_session=False)
                )
        return due
