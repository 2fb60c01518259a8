"""Send one webhook delivery: claim it, sign the event, POST it through the SSRF guard, log the try.

Each try is one ``WebhookAttempt`` (time, status code, latency, error). A 2xx ends the delivery;
anything else is retried with exponential backoff and jitter, capped, until the retry budget is
spent and the delivery is dead (replay starts a fresh budget). At most ``webhook_concurrency``
requests run at once per endpoint, across all workers (a lease set in Redis); a delivery that finds
no free slot goes back to the relay without spending a try.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from verify.config import Limits
from verify.domain.clock import Clock
from verify.domain.codes import CodeSealer
from verify.events import signing, ssrf
from verify.events.webhooks import active_secrets, add_secret
from verify.models import Event
from verify.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

USER_AGENT = "Verify-Webhooks/1"
DEFER_SECONDS = 1  # a delivery without a free concurrency slot waits this long

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
"""


class ConcurrencyLimiter:
    """A counting semaphore per key in Redis: a sorted set of holders scored by lease expiry, so a
    worker that dies holding a slot frees it when the lease runs out."""

    def __init__(self, client: redis.Redis, limit: int, lease: int) -> None:
        self._redis = client
        self._limit = limit
        self._lease = lease
        self._script = client.register_script(_ACQUIRE)

    @staticmethod
    def key(name: str) -> str:
        return f"verify:webhook:inflight:{name}"

    def acquire(self, name: str, holder: str) -> bool:
        now = time.time()
        args: list[str | float] = [now, now + self._lease, self._limit, holder, self._lease * 2]
        return bool(self._script(keys=[self.key(name)], args=args))

    def release(self, name: str, holder: str) -> None:
        self._redis.zrem(self.key(name), holder)


def backoff(tries: int, base: int, cap: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds before the next try after ``tries`` failed ones: exponential, capped, with the upper
    half jittered (never less than half the step, so retries do not bunch up at zero)."""
    step = float(min(cap, base * 2 ** max(0, tries - 1)))
    return step / 2 + rand() * step / 2


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    latency_ms: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300

    @property
    def result(self) -> str:
        """A low-cardinality label for metrics."""
        if self.ok:
            return "success"
        if self.status_code is not None:
            return f"http_{self.status_code // 100}xx"
        return (self.error or "error").split(":", 1)[0].replace(" ", "_")


def envelope(event: Event) -> bytes:
    """The body every subscriber gets: Standard Webhooks' recommended shape."""
    body = {
        "id": event.sid,
        "type": event.type,
        "timestamp": event.date_created.isoformat().replace("+00:00", "Z"),
        "account_sid": event.account_sid,
        "service_sid": event.service_sid,
        "data": event.payload,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


class WebhookSender:
    def __init__(
        self,
        session: Session,
        *,
        clock: Clock,
        sealer: CodeSealer,
        redis_client: redis.Redis,
        limits: Limits,
        allow: Sequence[ssrf.Network] = (),
        resolver: ssrf.Resolver = ssrf.system_resolver,
        transport: httpx.BaseTransport | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._clock = clock
        self._sealer = sealer
        self._limits = limits
        self._allow = tuple(allow)
        self._resolver = resolver
        self._transport = transport
        self._wall = wall  # the signature's timestamp is real time: receivers compare it to theirs
        self._limiter = ConcurrencyLimiter(
            redis_client, limits.webhook_concurrency, lease=limits.webhook_timeout * 3
        )

    def deliver(self, delivery_sid: str) -> tuple[str, Answer | None]:
        """Returns what happened (sent, failed, dead, deferred, or why nothing was tried) and the
        answer of the try, if there was one."""
        prepared = self._claim(delivery_sid)
        if isinstance(prepared, str):
            return prepared, None
        delivery, url, secrets_, mode, body, slot = prepared
        if not self._limiter.acquire(slot, delivery_sid):
            self._defer(delivery)
            return "deferred", None
        try:
            answer = self._post(url, secrets_, mode, body, delivery_sid)
        finally:
            self._limiter.release(slot, delivery_sid)
        outcome = self._record(delivery, answer)
        log.info(
            "webhook attempt",
            extra={
                "delivery": delivery_sid,
                "endpoint": delivery.endpoint_sid,
                "event_type": delivery.event_type,
                "host": urlsplit(url).hostname,
                "status_code": answer.status_code,
                "latency_ms": answer.latency_ms,
                "error": answer.error,
                "outcome": outcome,
            },
        )
        return outcome, answer

    def _claim(self, sid: str) -> str | tuple[WebhookDelivery, str, list[str], str, bytes, str]:
        with self._session.begin():
            delivery = self._session.scalar(
                select(WebhookDelivery).where(WebhookDelivery.sid == sid)
            )
            if delivery is None:
                return "unknown_delivery"
            if delivery.status not in ("pending", "retrying"):
                return f"already_{delivery.status}"
            now = self._clock.now()
            claimed = self._session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.sid == sid,
                    WebhookDelivery.status.in_(("pending", "retrying")),
                )
                .values(status="delivering", date_updated=now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return "claimed_elsewhere"
            self._session.refresh(delivery)
            endpoint = (
                self._session.get(WebhookEndpoint, delivery.endpoint_sid)
                if delivery.endpoint_sid
                else None
            )
            if delivery.endpoint_sid and (endpoint is None or endpoint.status != "enabled"):
                delivery.status = "dead"
                delivery.last_error = "endpoint disabled"
                return "endpoint_disabled"
            event = self._session.scalar(select(Event).where(Event.sid == delivery.event_sid))
            if event is None:
                delivery.status = "dead"
                delivery.last_error = "event no longer exists"
                return "unknown_event"
            owner = endpoint.sid if endpoint else str(delivery.service_sid)
            secrets_ = active_secrets(self._session, self._sealer, owner, now)
            if not secrets_:
                # A StatusCallback before the service made a callback secret: never send unsigned.
                secrets_ = [add_secret(self._session, self._sealer, owner, now).secret]
            url = endpoint.url if endpoint else str(delivery.url)
            mode = endpoint.signature_mode if endpoint else "standard"
            slot = endpoint.sid if endpoint else f"callback:{urlsplit(url).hostname}"
            return delivery, url, secrets_, mode, envelope(event), slot

    def _defer(self, delivery: WebhookDelivery) -> None:
        with self._session.begin():
            now = self._clock.now()
            self._session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.sid == delivery.sid, WebhookDelivery.status == "delivering")
                .values(
                    status="retrying" if delivery.attempts else "pending",
                    next_attempt_at=now + timedelta(seconds=DEFER_SECONDS),
                    date_updated=now,
                )
                .execution_options(synchronize_session=False)
            )

    def _post(self, url: str, secrets_: list[str], mode: str, body: bytes, msg_id: str) -> Answer:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **signing.standard_headers(secrets_, msg_id, int(self._wall()), body),
        }
        if mode == "twilio":
            url = signing.with_body_hash(url, body)
            headers["X-Twilio-Signature"] = signing.twilio_signature(secrets_[0], url)
        try:
            target = ssrf.resolve_target(url, self._allow, self._resolver)
        except ssrf.UnsafeURL as exc:
            return Answer(None, None, f"refused: {exc}")
        headers["Host"] = target.host_header
        timeout = self._limits.webhook_timeout
        started = time.monotonic()
        try:
            with (
                httpx.Client(
                    transport=self._transport,
                    timeout=httpx.Timeout(timeout, connect=min(timeout, 3)),
                    follow_redirects=False,
                    trust_env=False,  # no proxy from the environment: we connect where we checked
                ) as client,
                client.stream(
                    "POST",
                    target.pinned_url,
                    content=body,
                    headers=headers,
                    extensions={"sni_hostname": target.host},
                ) as response,
            ):
                status = response.status_code
        except httpx.TimeoutException:
            return Answer(None, _ms(started), "timeout")
        except httpx.ConnectError:
            return Answer(None, _ms(started), "connect error")
        except httpx.HTTPError as exc:
            return Answer(None, _ms(started), f"http error: {type(exc).__name__}")
        latency = _ms(started)
        if 300 <= status < 400:
            return Answer(status, latency, "redirect not followed")
        if not 200 <= status < 300:
            return Answer(status, latency, f"HTTP {status}")
        return Answer(status, latency, None)

    def _record(self, delivery: WebhookDelivery, answer: Answer) -> str:
        with self._session.begin():
            now = self._clock.now()
            number = (
                self._session.scalar(
                    select(func.max(WebhookAttempt.number)).where(
                        WebhookAttempt.delivery_sid == delivery.sid
                    )
                )
                or 0
            ) + 1
            self._session.add(
                WebhookAttempt(
                    delivery_sid=delivery.sid,
                    number=number,
                    date_created=now,
                    status_code=answer.status_code,
                    latency_ms=answer.latency_ms,
                    error=(answer.error or None) and answer.error[:200],
                )
            )
            tries = delivery.attempts + 1
            values: dict[str, object] = {
                "attempts": tries,
                "last_status_code": answer.status_code,
                "last_error": answer.error[:200] if answer.error else None,
                "date_updated": now,
            }
            if answer.ok:
                outcome = "sent"
                values.update(status="succeeded", delivered_at=now)
            elif tries >= self._limits.webhook_max_attempts:
                outcome = "dead"
                values.update(status="dead")
            else:
                outcome = "failed"
                delay = backoff(
                    tries, self._limits.webhook_backoff_base, self._limits.webhook_backoff_cap
                )
                values.update(status="retrying", next_attempt_at=now + timedelta(seconds=delay))
            self._session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.sid == delivery.sid, WebhookDelivery.status == "delivering")
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        return outcome


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
