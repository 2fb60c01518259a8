"""Webhook subscriptions, their signing secrets, and the deliveries an operator looks at and replays.

This is the domain API for the REST views (``verify/api/webhooks.py``) and the operator console:

    hooks = WebhookService(session, clock=rt.clock, sealer=rt.sealer,
                           allow=parse_networks(rt.settings.webhook_allow_networks),
                           dispatcher=WebhookQueue(rt.queue))
    hooks.list_deliveries(verification_sid="VE…")       # a verification's timeline
    hooks.replay("WD…")                                   # one delivery, whatever its state
    hooks.replay_dead("YW…")                              # every dead delivery of an endpoint

``account_sid=None`` means the operator's view (every account); a tenant always passes its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, func, nulls_first, select, update
from sqlalchemy.orm import Session

from verify.domain import sids
from verify.domain.clock import Clock
from verify.domain.codes import CodeSealer
from verify.errors import InvalidParameter, NotFound
from verify.events import signing, ssrf
from verify.models import Event, Service
from verify.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookSecret

ENDPOINT_PREFIX = "YW"  # Twilio's prefix for a Verify webhook
SECRET_PREFIX = "WS"  # noqa: S105 (a sid prefix)
DELIVERY_PREFIX = "WD"

EVENT_TYPES = (
    "verification.pending",
    "verification.approved",
    "verification.canceled",
    "verification.expired",
    "verification.max_attempts_reached",
    "verification.failed",
    "message.queued",
    "message.sent",
    "message.delivered",
    "message.undelivered",
    "message.failed",
    "fraud.blocked",
)
FAMILIES = ("verification", "message", "fraud")
STATUSES = ("enabled", "disabled")
VERSIONS = ("v1", "v2")
SIGNATURE_MODES = ("standard", "twilio")
DELIVERY_STATUSES = ("pending", "delivering", "retrying", "succeeded", "dead")
DEFAULT_GRACE = 86_400
# The current secret (no expiry) first, then those rotating out, the latest to expire first.
NEWEST_FIRST = (
    nulls_first(WebhookSecret.expires_at.desc()),
    WebhookSecret.date_created.desc(),
    WebhookSecret.sid,
)
MAX_GRACE = 7 * 86_400


class DeliveryDispatcher(Protocol):
    """Hands a committed delivery to the webhook workers."""

    def enqueue(self, delivery_sid: str) -> bool: ...


def matches(event_types: str, event_type: str) -> bool:
    """Whether a subscription's comma-separated ``event_types`` takes ``event_type``."""
    wanted = event_types.split(",")
    family = event_type.split(".", 1)[0]
    return "*" in wanted or event_type in wanted or f"{family}.*" in wanted


def check_event_types(values: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        v = value.strip()
        if v == "*" or v in EVENT_TYPES or (v.endswith(".*") and v[:-2] in FAMILIES):
            out.append(v)
        else:
            raise InvalidParameter(
                "EventTypes",
                f"unknown event type {v!r}; use *, a family (verification.*, message.*, "
                f"fraud.*) or one of {', '.join(EVENT_TYPES)}",
            )
    if not out:
        raise InvalidParameter("EventTypes", "must name at least one event type (* for all)")
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class EndpointFields:
    """What a create or update sets; None leaves a field as it is."""

    friendly_name: str | None = None
    event_types: Sequence[str] | None = None
    url: str | None = None
    status: str | None = None
    version: str | None = None
    signature_mode: str | None = None


@dataclass
class Created:
    """A new endpoint or secret together with its secret, shown this once."""

    obj: Any
    secret: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.obj, name)


@dataclass
class DeliveryView:
    delivery: WebhookDelivery
    attempt_log: list[WebhookAttempt] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.delivery, name)


def active_secrets(
    session: Session, sealer: CodeSealer, owner_sid: str, now: datetime
) -> list[str]:
    """The owner's secrets that sign right now, newest first, opened."""
    rows = session.scalars(
        select(WebhookSecret)
        .where(
            WebhookSecret.owner_sid == owner_sid,
            (WebhookSecret.expires_at.is_(None)) | (WebhookSecret.expires_at > now),
        )
        .order_by(*NEWEST_FIRST)
    )
    return [sealer.open(row.sid, row.sealed) for row in rows]


def add_secret(session: Session, sealer: CodeSealer, owner_sid: str, now: datetime) -> Created:
    sid = sids.new_sid(SECRET_PREFIX)
    secret = signing.new_secret()
    row = WebhookSecret(
        sid=sid,
        owner_sid=owner_sid,
        sealed=sealer.seal(sid, secret),
        date_created=now,
        expires_at=None,
    )
    session.add(row)
    return Created(row, secret)


class WebhookService:
    def __init__(
        self,
        session: Session,
        *,
        clock: Clock,
        sealer: CodeSealer,
        allow: Sequence[ssrf.Network] = (),
        dispatcher: DeliveryDispatcher | None = None,
        resolver: ssrf.Resolver = ssrf.system_resolver,
    ) -> None:
        self._session = session
        self._clock = clock
        self._sealer = sealer
        self._allow = tuple(allow)
        self._dispatcher = dispatcher
        self._resolver = resolver

    # -- endpoints ---------------------------------------------------------------------------------

    def create(self, account_sid: str, service_sid: str, fields: EndpointFields) -> Created:
        for param, value in (
            ("FriendlyName", fields.friendly_name),
            ("EventTypes", fields.event_types),
            ("WebhookUrl", fields.url),
        ):
            if value is None:
                raise InvalidParameter(param, "is required")
        values = self._validated(fields)
        with self._session.begin():
            self._service(account_sid, service_sid)
            now = self._clock.now()
            endpoint = WebhookEndpoint(
                sid=sids.new_sid(ENDPOINT_PREFIX),
                account_sid=account_sid,
                service_sid=service_sid,
                friendly_name=values["friendly_name"],
                event_types=values["event_types"],
                url=values["url"],
                status=values.get("status", "enabled"),
                version=values.get("version", "v2"),
                signature_mode=values.get("signature_mode", "standard"),
                date_created=now,
                date_updated=now,
            )
            self._session.add(endpoint)
            created = add_secret(self._session, self._sealer, endpoint.sid, now)
        return Created(endpoint, created.secret)

    def get(self, account_sid: str, service_sid: str, sid: str) -> WebhookEndpoint:
        with self._session.begin():
            return self._endpoint(account_sid, service_sid, sid)

    def page(
        self, account_sid: str, service_sid: str, offset: int, limit: int
    ) -> list[WebhookEndpoint]:
        with self._session.begin():
            self._service(account_sid, service_sid)
            return list(
                self._session.scalars(
                    select(WebhookEndpoint)
                    .where(WebhookEndpoint.service_sid == service_sid)
                    .order_by(WebhookEndpoint.date_created, WebhookEndpoint.sid)
                    .offset(offset)
                    .limit(limit)
                )
            )

    def update(
        self, account_sid: str, service_sid: str, sid: str, fields: EndpointFields
    ) -> WebhookEndpoint:
        values = self._validated(fields)
        with self._session.begin():
            endpoint = self._endpoint(account_sid, service_sid, sid)
            for name, value in values.items():
                setattr(endpoint, name, value)
            endpoint.date_updated = self._clock.now()
        return endpoint

    def delete(self, account_sid: str, service_sid: str, sid: str) -> None:
        with self._session.begin():
            endpoint = self._endpoint(account_sid, service_sid, sid)
            self._session.delete(endpoint)
            self._session.execute(delete(WebhookSecret).where(WebhookSecret.owner_sid == sid))

    def _validated(self, fields: EndpointFields) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if fields.friendly_name is not None:
            if not 1 <= len(fields.friendly_name) <= 64:
                raise InvalidParameter("FriendlyName", "must be 1-64 characters")
            values["friendly_name"] = fields.friendly_name
        if fields.event_types is not None:
            joined = ",".join(check_event_types(fields.event_types))
            if len(joined) > 1024:
                raise InvalidParameter("EventTypes", "too many event types")
            values["event_types"] = joined
        if fields.url is not None:
            try:
                ssrf.resolve_target(fields.url, self._allow, self._resolver)
            except ssrf.UnsafeURL as exc:
                raise InvalidParameter("WebhookUrl", str(exc)) from None
            values["url"] = fields.url.strip()
        for name, param, allowed in (
            ("status", "Status", STATUSES),
            ("version", "Version", VERSIONS),
            ("signature_mode", "SignatureMode", SIGNATURE_MODES),
        ):
            value = getattr(fields, name)
            if value is not None:
                if value not in allowed:
                    raise InvalidParameter(param, f"must be one of {', '.join(allowed)}")
                values[name] = value
        return values

    # -- secrets (an endpoint's, or with owner_sid = the service sid, its StatusCallbacks') --------

    def rotate_secret(
        self, account_sid: str, service_sid: str, owner_sid: str, grace: int = DEFAULT_GRACE
    ) -> Created:
        """A new secret (returned once); the current ones keep signing for ``grace`` seconds."""
        if not 0 <= grace <= MAX_GRACE:
            raise InvalidParameter("GracePeriod", f"must be 0-{MAX_GRACE} seconds")
        with self._session.begin():
            self._owner(account_sid, service_sid, owner_sid)
            now = self._clock.now()
            until = now + timedelta(seconds=grace)
            self._session.execute(
                update(WebhookSecret)
                .where(
                    WebhookSecret.owner_sid == owner_sid,
                    (WebhookSecret.expires_at.is_(None)) | (WebhookSecret.expires_at > until),
                )
                .values(expires_at=until)
                .execution_options(synchronize_session=False)
            )
            return add_secret(self._session, self._sealer, owner_sid, now)

    def secrets(self, account_sid: str, service_sid: str, owner_sid: str) -> list[WebhookSecret]:
        """The owner's secrets that still sign (without their values), newest first."""
        with self._session.begin():
            self._owner(account_sid, service_sid, owner_sid)
            now = self._clock.now()
            return list(
                self._session.scalars(
                    select(WebhookSecret)
                    .where(
                        WebhookSecret.owner_sid == owner_sid,
                        (WebhookSecret.expires_at.is_(None)) | (WebhookSecret.expires_at > now),
                    )
                    .order_by(*NEWEST_FIRST)
                )
            )

    def revoke_secret(
        self, account_sid: str, service_sid: str, owner_sid: str, secret_sid: str
    ) -> None:
        """Stop signing with one secret now (ends a rotation early); never the last one."""
        with self._session.begin():
            self._owner(account_sid, service_sid, owner_sid)
            now = self._clock.now()
            row = self._session.get(WebhookSecret, secret_sid)
            active = row is not None and (row.expires_at is None or row.expires_at > now)
            if row is None or row.owner_sid != owner_sid or not active:
                raise NotFound(f"The requested resource {secret_sid} was not found")
            others = self._session.scalar(
                select(func.count())
                .select_from(WebhookSecret)
                .where(
                    WebhookSecret.owner_sid == owner_sid,
                    WebhookSecret.sid != secret_sid,
                    (WebhookSecret.expires_at.is_(None)) | (WebhookSecret.expires_at > now),
                )
            )
            if not others:
                raise InvalidParameter("Sid", "is the only active secret; rotate first")
            row.expires_at = now

    # -- deliveries ----------------------------------------------------------------------------------

    def list_deliveries(
        self,
        *,
        account_sid: str | None = None,
        service_sid: str | None = None,
        endpoint_sid: str | None = None,
        verification_sid: str | None = None,
        status: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[WebhookDelivery]:
        """Deliveries, newest first, filtered by any of the given fields."""
        if status is not None and status not in DELIVERY_STATUSES:
            raise InvalidParameter("Status", f"must be one of {', '.join(DELIVERY_STATUSES)}")
        query = select(WebhookDelivery)
        for column, value in (
            (WebhookDelivery.account_sid, account_sid),
            (WebhookDelivery.service_sid, service_sid),
            (WebhookDelivery.endpoint_sid, endpoint_sid),
            (WebhookDelivery.verification_sid, verification_sid),
            (WebhookDelivery.status, status),
        ):
            if value is not None:
                query = query.where(column == value)
        with self._session.begin():
            if account_sid is not None and service_sid is not None:
                self._service(account_sid, service_sid)  # another tenant's service is a 404
            return list(
                self._session.scalars(
                    query.order_by(WebhookDelivery.id.desc()).offset(offset).limit(limit)
                )
            )

    def get_delivery(self, sid: str, *, account_sid: str | None = None) -> DeliveryView:
        """One delivery with its attempt log (oldest attempt first)."""
        with self._session.begin():
            delivery = self._delivery(sid, account_sid)
            attempts = list(
                self._session.scalars(
                    select(WebhookAttempt)
                    .where(WebhookAttempt.delivery_sid == sid)
                    .order_by(WebhookAttempt.number)
                )
            )
        return DeliveryView(delivery, attempts)

    def event(self, event_sid: str) -> Event | None:
        with self._session.begin():
            return self._session.scalar(select(Event).where(Event.sid == event_sid))

    def replay(self, sid: str, *, account_sid: str | None = None) -> WebhookDelivery:
        """Send one delivery again from a fresh retry budget (a delivery in flight is left alone)."""
        with self._session.begin():
            delivery = self._delivery(sid, account_sid)
            if delivery.status != "delivering":
                self._rearm(delivery)
        self._dispatch([delivery.sid])
        return delivery

    def replay_dead(self, endpoint_sid: str, *, account_sid: str | None = None) -> int:
        """Send every dead delivery of an endpoint again; returns how many."""
        with self._session.begin():
            endpoint = self._session.get(WebhookEndpoint, endpoint_sid)
            if endpoint is None or (
                account_sid is not None and endpoint.account_sid != account_sid
            ):
                raise NotFound(f"The requested resource {endpoint_sid} was not found")
            dead = list(
                self._session.scalars(
                    select(WebhookDelivery)
                    .where(
                        WebhookDelivery.endpoint_sid == endpoint_sid,
                        WebhookDelivery.status == "dead",
                    )
                    .order_by(WebhookDelivery.id)
                )
            )
            for delivery in dead:
                self._rearm(delivery)
        self._dispatch([d.sid for d in dead])
        return len(dead)

    def _rearm(self, delivery: WebhookDelivery) -> None:
        now = self._clock.now()
        delivery.status = "pending"
        delivery.attempts = 0
        delivery.next_attempt_at = now
        delivery.date_updated = now

    def _dispatch(self, delivery_sids: list[str]) -> None:
        if self._dispatcher is None:
            return  # the relay picks due deliveries up on its next pass
        for sid in delivery_sids:
            self._dispatcher.enqueue(sid)

    # -- lookups -----------------------------------------------------------------------------------

    def _service(self, account_sid: str, service_sid: str) -> Service:
        service = self._session.get(Service, service_sid)
        if service is None or service.account_sid != account_sid:
            raise NotFound(f"The requested resource /Services/{service_sid} was not found")
        return service

    def _endpoint(self, account_sid: str, service_sid: str, sid: str) -> WebhookEndpoint:
        self._service(account_sid, service_sid)
        endpoint = self._session.get(WebhookEndpoint, sid)
        if endpoint is None or endpoint.service_sid != service_sid:
            raise NotFound(f"The requested resource {sid} was not found")
        return endpoint

    def _owner(self, account_sid: str, service_sid: str, owner_sid: str) -> None:
        if owner_sid == service_sid:
            self._service(account_sid, service_sid)
        else:
            self._endpoint(account_sid, service_sid, owner_sid)

    def _delivery(self, sid: str, account_sid: str | None) -> WebhookDelivery:
        delivery = self._session.scalar(select(WebhookDelivery).where(WebhookDelivery.sid == sid))
        if delivery is None or (account_sid is not None and delivery.account_sid != account_sid):
            raise NotFound(f"The requested resource {sid} was not found")
        return delivery
