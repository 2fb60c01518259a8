"""One verification's story for the console: everything recorded about it, in time order, and a
one-paragraph answer to "did the code arrive, and if not, why?".

Rows come from the core tables (attempts, checks, events) and, where those areas record them, from
the delivery, abuse and webhook modules. Nothing here shows a code: none of these rows holds one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from verify.abuse.registry import FraudRules
from verify.events.webhooks import DeliveryView, WebhookService
from verify.models import CheckAttempt, Event, SendAttempt, Service, Verification
from verify.models.abuse import FraudDecision
from verify.models.delivery import DeliveryReceipt
from verify.models.webhooks import WebhookEndpoint

MAX_DELIVERIES = 200
MAX_DECISIONS = 200

# Tones the page colours entries by.
GOOD, BAD, WARN, INFO = "good", "bad", "warn", "info"

_EVENT_TONES = {
    "verification.approved": GOOD,
    "verification.canceled": WARN,
    "verification.expired": WARN,
    "verification.max_attempts_reached": BAD,
    "verification.failed": BAD,
    "message.delivered": GOOD,
    "message.undelivered": BAD,
    "message.failed": BAD,
    "fraud.blocked": BAD,
}
_CHECK_TEXT = {
    "approved": ("Right code entered: approved", GOOD),
    "wrong_code": ("Wrong code entered", WARN),
    "max_attempts": ("Check refused: too many wrong codes", BAD),
    "expired": ("Check after the code expired", WARN),
    "budget_exhausted": ("Check refused: too many failures for this destination", BAD),
}


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # verification | send | check | event | receipt | fraud | webhook
    title: str
    detail: str = ""
    tone: str = INFO
    ref: str = ""  # the sid of the row it comes from


@dataclass
class Timeline:
    verification: Verification
    service: Service | None
    attempts: list[SendAttempt]
    checks: list[CheckAttempt]
    events: list[Event]
    receipts: list[DeliveryReceipt]
    deliveries: list[DeliveryView] = field(default_factory=list)
    endpoints: dict[str, str] = field(default_factory=dict)  # endpoint sid -> friendly name
    decisions: list[FraudDecision] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    diagnosis: tuple[str, str] = ("", INFO)  # (sentence, tone)


def load(
    session: Session, sid: str, *, webhooks: WebhookService, fraud: FraudRules
) -> Timeline | None:
    with session.begin():
        v = session.get(Verification, sid)
        if v is None:
            return None
        attempts = list(
            session.scalars(
                select(SendAttempt)
                .where(SendAttempt.verification_sid == sid)
                .order_by(SendAttempt.date_created, SendAttempt.number)
            )
        )
        attempt_sids = [a.sid for a in attempts]
        checks = list(
            session.scalars(
                select(CheckAttempt)
                .where(CheckAttempt.verification_sid == sid)
                .order_by(CheckAttempt.date_created, CheckAttempt.id)
            )
        )
        events = list(
            session.scalars(
                select(Event)
                .where(Event.subject_sid.in_([sid, *attempt_sids]))
                .order_by(Event.date_created, Event.id)
            )
        )
        receipts = list(
            session.scalars(
                select(DeliveryReceipt)
                .where(DeliveryReceipt.attempt_sid.in_(attempt_sids))
                .order_by(DeliveryReceipt.date_created, DeliveryReceipt.id)
            )
        )
        service = session.get(Service, v.service_sid)
    t = Timeline(v, service, attempts, checks, events, receipts)
    t.decisions = list(reversed(fraud.decisions(v.account_sid, 0, MAX_DECISIONS, sid)))
    listed = webhooks.list_deliveries(verification_sid=sid, limit=MAX_DELIVERIES)
    t.deliveries = [webhooks.get_delivery(d.sid) for d in reversed(listed)]  # oldest first
    t.endpoints = endpoint_names(session, {d.delivery.endpoint_sid or "" for d in t.deliveries})
    t.entries = sorted(
        [*_core_entries(t), *_receipt_entries(t), *_fraud_entries(t), *_webhook_entries(t)],
        key=lambda e: e.at,
    )
    t.diagnosis = diagnose(t)
    return t


def _core_entries(t: Timeline) -> list[Entry]:
    v = t.verification
    out = [
        Entry(
            v.date_created,
            "verification",
            f"Verification started ({v.channel})",
            f"code valid until {v.expires_at:%Y-%m-%d %H:%M:%S}"
            + (" · test number" if v.is_test else ""),
            INFO,
            v.sid,
        )
    ]
    for a in t.attempts:
        out.append(
            Entry(
                a.date_created,
                "send",
                f"Send attempt #{a.number} ({a.channel}) created",
                f"now {a.status}" + (f" · {a.reason_code}" if a.reason_code else ""),
                INFO,
                a.sid,
            )
        )
    for c in t.checks:
        title, tone = _CHECK_TEXT.get(c.outcome, (f"Check: {c.outcome}", INFO))
        out.append(Entry(c.date_created, "check", title, "", tone, str(c.id)))
    for e in t.events:
        out.append(
            Entry(
                e.date_created,
                "event",
                e.type,
                _event_detail(e),
                _EVENT_TONES.get(e.type, INFO),
                e.sid,
            )
        )
    return out


def _receipt_entries(t: Timeline) -> list[Entry]:
    numbers = {a.sid: a.number for a in t.attempts}
    out = [
        Entry(
            a.reconciled_at,
            "receipt",
            "Looked up at the provider",
            f"attempt #{a.number} · no final receipt had come, so the provider was asked where the"
            " message stands; a looked-up status below is its answer, if it was news",
            INFO,
            f"lookup-{a.sid}",
        )
        for a in t.attempts
        if a.reconciled_at is not None
    ]
    for r in t.receipts:
        tone = {"delivered": GOOD, "undelivered": BAD, "failed": BAD}.get(r.status, INFO)
        parts = [f"attempt #{numbers.get(r.attempt_sid or '', '?')}"]
        if r.reason_code:
            parts.append(f"reason {r.reason_code}")
        if r.occurred_at is not None:
            parts.append(f"at the provider {r.occurred_at:%H:%M:%S}")
        if not r.applied:
            parts.append("not applied (out of order or duplicate)")
        out.append(
            Entry(
                r.date_created,
                "receipt",
                f"Looked-up status: {r.status}"
                if r.source == "lookup"
                else f"Delivery receipt: {r.status}",
                " · ".join(parts),
                tone,
                str(r.id),
            )
        )
    return out


def _fraud_entries(t: Timeline) -> list[Entry]:
    numbers = {a.sid: a.number for a in t.attempts}
    out = []
    for d in t.decisions:
        enforced = d.action == "block" and d.mode == "enforce"
        what = {"block": "blocked" if enforced else "would block (monitor)", "flag": "flagged"}
        title = f"Fraud rule {d.rule_type}: {what.get(d.action, d.action)}"
        where = f"attempt #{numbers[d.attempt_sid]} · " if d.attempt_sid in numbers else ""
        detail = f"{where}{d.reason} · {d.reason_code} · rule {d.rule_sid}"
        out.append(
            Entry(d.date_created, "fraud", title, detail, BAD if enforced else WARN, str(d.id))
        )
    return out


def _webhook_entries(t: Timeline) -> list[Entry]:
    out = []
    for view in t.deliveries:
        d = view.delivery
        if d.endpoint_sid is None:
            target = "StatusCallback"
        else:
            target = t.endpoints.get(d.endpoint_sid, d.endpoint_sid)
        for a in view.attempt_log:
            ok = a.status_code is not None and 200 <= a.status_code < 300
            answer = (
                f"HTTP {a.status_code}" if a.status_code is not None else (a.error or "no answer")
            )
            latency = f" in {a.latency_ms} ms" if a.latency_ms is not None else ""
            out.append(
                Entry(
                    a.date_created,
                    "webhook",
                    f"Webhook {d.event_type} to {target}: {answer}",
                    f"try #{a.number}{latency}"
                    + (f" · {a.error}" if a.error and a.error != answer else ""),
                    GOOD if ok else WARN,
                    d.sid,
                )
            )
        if d.status == "dead":
            out.append(
                Entry(
                    d.date_updated,
                    "webhook",
                    f"Webhook {d.event_type} to {target} is dead",
                    "replay it from the webhooks page",
                    BAD,
                    d.sid,
                )
            )
    return out


def endpoint_names(session: Session, sids: set[str]) -> dict[str, str]:
    sids.discard("")
    if not sids:
        return {}
    with session.begin():
        rows = session.execute(
            select(WebhookEndpoint.sid, WebhookEndpoint.friendly_name).where(
                WebhookEndpoint.sid.in_(sids)
            )
        )
        return {sid: f"{name} ({sid})" for sid, name in rows}


def _event_detail(e: Event) -> str:
    p = e.payload
    parts = [
        f"{key.replace('_', ' ')} {p[key]}"
        for key in ("provider", "reason_code", "rule", "reason")
        if p.get(key)
    ]
    if e.published_at is not None:
        parts.append(f"published {e.published_at:%H:%M:%S}")
    return " · ".join(parts)


def diagnose(t: Timeline) -> tuple[str, str]:
    """The answer an operator is looking for: did anything reach the person, and if not, why."""
    v = t.verification
    if v.status == "approved":
        return (
            "The code arrived: the right code was entered and the verification is approved.",
            GOOD,
        )
    if v.is_test or any(a.status == "test" for a in t.attempts):
        return (
            "A test number: nothing is ever sent; the service's fixed code is the only one.",
            INFO,
        )
    if not t.attempts:
        return f"No send attempt was recorded; the verification is {v.status}.", WARN
    delivered = [a for a in t.attempts if a.status == "delivered"]
    sent = [a for a in t.attempts if a.status == "sent"]
    if delivered or sent:
        a = (delivered or sent)[-1]
        provider = a.provider or "the provider"
        if delivered:
            head, tone = f"Delivered to the handset by {provider} (attempt #{a.number})", GOOD
        else:
            head = f"Handed to {provider} (attempt #{a.number}); no delivery receipt says it reached the handset"
            tone = WARN
        wrong = sum(c.outcome == "wrong_code" for c in t.checks)
        tail = {
            "max_attempts_reached": (f", then {wrong} wrong codes locked the verification.", BAD),
            "expired": (", but the code expired before the right one was entered.", WARN),
            "canceled": (", then the application canceled the verification.", WARN),
            "failed": (", yet the verification failed.", BAD),
        }.get(v.status, (_no_right_code_yet(wrong), tone))
        return head + tail[0], tail[1]
    in_flight = [a for a in t.attempts if a.status in ("queued", "sending")]
    if in_flight and v.status != "pending":
        return (
            f"Not sent: the verification ended first ({v.status}); no worker had sent it yet.",
            WARN,
        )
    if in_flight:
        a = in_flight[-1]
        if a.status == "sending":
            return (
                "A worker is sending it right now (or died while sending; the sweep will tell).",
                WARN,
            )
        if a.tries:
            return (
                f"Waiting to retry (try {a.tries} failed: {a.reason_code or 'no reason recorded'}).",
                WARN,
            )
        return "Still queued: no worker has picked it up. Check the RQ dashboard for workers.", WARN
    last = t.attempts[-1]
    if all(a.status == "canceled" for a in t.attempts):
        return f"Not sent: the verification ended first ({last.reason_code or v.status}).", WARN
    blocked = [a for a in t.attempts if a.status == "blocked"]
    if blocked:
        reason = blocked[-1].reason_code or "no reason recorded"
        return (
            f"Not sent: the abuse controls blocked it ({reason}). See the fraud decisions below.",
            BAD,
        )
    return (
        f"Never reached the person: every send failed (last reason: {last.reason_code or 'unknown'}).",
        BAD,
    )


def _no_right_code_yet(wrong: int) -> str:
    if not wrong:
        return "; no code has been checked yet."
    return f"; {wrong} wrong code{'s' if wrong > 1 else ''} entered so far, not the right one yet."
