"""Delivery receipts: what a provider reports after it accepted a message.

Each receipt is checked by its provider's adapter (signature), stored once (an exact duplicate is
dropped by a unique index and changes nothing), and applied to its attempt only if it moves the
attempt forward: queued -> sending -> sent -> delivered | undelivered | failed. A late ``sent`` never
overrides ``delivered``; the first final state wins. A receipt that arrives before the worker has
recorded the provider's message id is kept unmatched and applied when the worker records it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from verify.delivery import attempts as lifecycle
from verify.delivery.providers.base import (
    InvalidSignature,
    Receipt,
    ReceiptRequest,
    StatusLookup,
)
from verify.delivery.routing import ProviderFactory, route_of
from verify.domain.clock import Clock
from verify.domain.sends import Dispatcher
from verify.errors import CallbackSignatureInvalid, MalformedBody, NotFound
from verify.events import outbox
from verify.models import SendAttempt, Verification
from verify.models.delivery import DeliveryReceipt, Provider

RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}
RECEIPT_STATUSES = tuple(RANK)
# What each receipt status may move an attempt from (queued/sending receipts are kept, never applied:
# the worker has already moved the attempt at least that far).
_FROM: dict[str, tuple[str, ...]] = {
    "queued": (),
    "sending": (),
    "sent": ("sending",),
    "delivered": ("sending", "sent"),
    "undelivered": ("sending", "sent"),
    "failed": ("sending", "sent"),
}

Dispatch = Callable[[str], None]


class ReceiptService:
    def __init__(
        self,
        session: Session,
        *,
        clock: Clock,
        providers: ProviderFactory,
        dispatcher: Dispatcher,
    ) -> None:
        self._session = session
        self._clock = clock
        self._providers = providers
        self._dispatcher = dispatcher

    def ingest(self, provider_sid: str, request: ReceiptRequest) -> int:
        """Check and apply one callback; returns how many receipts moved an attempt forward."""
        with self._session.begin():
            row = self._session.get(Provider, provider_sid)
            if row is None:
                raise NotFound(f"The requested resource /Callbacks/{provider_sid} was not found")
            route = route_of(row)
            account_sid = row.account_sid
        try:
            receipts = self._providers(route).parse_receipt(request)
        except InvalidSignature:
            raise CallbackSignatureInvalid(
                "The delivery receipt's signature does not verify with this provider's credentials"
            ) from None
        except (ValueError, KeyError, TypeError):
            raise MalformedBody("The delivery receipt could not be read") from None
        created: list[str] = []
        applied = 0
        with self._session.begin():
            now = self._clock.now()
            for receipt in receipts:
                if receipt.status not in RECEIPT_STATUSES:
                    continue
                applied += self._store(
                    account_sid, provider_sid, receipt, "callback", now, created.append
                )
        for sid in created:
            self._dispatcher.dispatch(sid)
        return applied

    def reconcile(self, attempt_sid: str) -> str:
        """Ask the provider where a message it accepted stands, when no final receipt came (a
        callback lost on its way, or none asked for), and apply the answer as its receipt would
        have been applied. Returns the status learnt, or why there is none."""
        with self._session.begin():
            attempt = self._session.get(SendAttempt, attempt_sid)
            if attempt is None or attempt.status != "sent" or not attempt.provider_message_id:
                return "concluded"  # a receipt came meanwhile (or it never reached a provider)
            provider = self._session.get(Provider, attempt.provider_sid)
            if provider is None:
                return "provider_gone"
            route, account_sid = route_of(provider), provider.account_sid
            provider_sid, message_id = provider.sid, attempt.provider_message_id
            channel = attempt.channel
        adapter = self._providers(route)
        if not isinstance(adapter, StatusLookup):
            return "unsupported"
        receipt = adapter.fetch_receipt(message_id, channel)
        if receipt is None or receipt.status not in RECEIPT_STATUSES:
            return "unknown"
        created: list[str] = []
        with self._session.begin():
            now = self._clock.now()
            self._store(account_sid, provider_sid, receipt, "lookup", now, created.append)
        for sid in created:
            self._dispatcher.dispatch(sid)
        return receipt.status

    def _store(
        self,
        account_sid: str,
        provider_sid: str,
        receipt: Receipt,
        source: str,
        now: datetime,
        dispatch: Dispatch,
    ) -> int:
        attempt = self._session.scalar(
            select(SendAttempt).where(
                SendAttempt.provider_sid == provider_sid,
                SendAttempt.provider_message_id == receipt.provider_message_id,
            )
        )
        dialect = self._session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            insert(DeliveryReceipt)
            .values(
                account_sid=account_sid,
                provider_sid=provider_sid,
                provider_message_id=receipt.provider_message_id[:128],
                attempt_sid=attempt.sid if attempt else None,
                status=receipt.status,
                reason_code=_cut(receipt.reason),
                raw_code=_cut(receipt.raw_code),
                applied=False,
                source=source,
                occurred_at=receipt.at,
                date_created=now,
            )
            .on_conflict_do_nothing()
            .returning(DeliveryReceipt.id)
        )
        receipt_id = self._session.execute(stmt).scalar_one_or_none()
        if receipt_id is None or attempt is None:
            return 0  # a duplicate, or not matched yet (see apply_early_receipts)
        row = self._session.get(DeliveryReceipt, receipt_id)
        assert row is not None
        return int(apply(self._session, attempt, row, now, dispatch))


def apply(
    session: Session,
    attempt: SendAttempt,
    receipt: DeliveryReceipt,
    now: datetime,
    dispatch: Dispatch,
) -> bool:
    """Move ``attempt`` to the receipt's status if that is forward; write its event."""
    status = receipt.status
    if not _FROM[status]:
        return False
    values: dict[str, object] = {"status": status, "raw_code": receipt.raw_code}
    if status == "delivered":
        values["delivered_at"] = receipt.occurred_at or now
        values["reason_code"] = None
    elif status in ("undelivered", "failed"):
        values["reason_code"] = receipt.reason_code or status
    if not lifecycle.transition(session, attempt, _FROM[status], now, **values):
        return False
    receipt.applied = True
    v = session.get(Verification, attempt.verification_sid)
    assert v is not None
    outbox.message_event(session, f"message.{status}", attempt, v.destination, now)
    if status in ("undelivered", "failed"):
        fallback = lifecycle.after_failure(session, attempt, now)
        if fallback is not None:
            dispatch(fallback.sid)
    return True


# Receipts stored before the send with their provider's message id was recorded.
_EARLY = (
    DeliveryReceipt.provider_sid == bindparam("p_provider_sid"),
    DeliveryReceipt.provider_message_id == bindparam("p_message_id"),
    DeliveryReceipt.attempt_sid.is_(None),
)
# Whether any wait (the lane looks before it opens a transaction for them).
EARLY_RECEIPT = select(DeliveryReceipt.id).where(*_EARLY).limit(1)


def apply_early_receipts(
    session: Session, attempt: SendAttempt, now: datetime, dispatch: Dispatch
) -> None:
    """Receipts that arrived before the worker recorded the provider's message id."""
    params = {"p_provider_sid": attempt.provider_sid, "p_message_id": attempt.provider_message_id}
    early = session.scalars(select(DeliveryReceipt).where(*_EARLY), params).all()
    _apply_matched(session, [(receipt, attempt) for receipt in early], now, dispatch)


# How far back the sweep looks for stranded receipts: the race that strands one lasts milliseconds,
# and the sweep runs every VERIFY_SWEEP_INTERVAL seconds.
STRANDED_WINDOW = timedelta(minutes=10)
# Sent attempts older than this past VERIFY_RECONCILE_AFTER are not looked up any more: one without
# a final status is looked up every VERIFY_RECONCILE_AFTER seconds within it (at most 6 times at the
# defaults), and past it the provider is unlikely to know more, or keeps no such message. The scan
# stays small.
LOOKUP_WINDOW = timedelta(hours=1)


def match_stranded(session: Session, now: datetime, dispatch: Dispatch, batch: int = 500) -> int:
    """Apply receipts stored unmatched although an attempt now carries their message id; returns
    how many. A receipt is stranded when its handler looked for the attempt just before the worker
    recorded the message id, and was stored just after the worker looked for early receipts."""
    rows = session.execute(
        select(DeliveryReceipt, SendAttempt)
        .join(
            SendAttempt,
            (SendAttempt.provider_sid == DeliveryReceipt.provider_sid)
            & (SendAttempt.provider_message_id == DeliveryReceipt.provider_message_id),
        )
        .where(
            DeliveryReceipt.attempt_sid.is_(None),
            DeliveryReceipt.date_created >= now - STRANDED_WINDOW,
        )
        .order_by(DeliveryReceipt.id)
        .limit(batch)
    ).all()
    _apply_matched(session, [(receipt, attempt) for receipt, attempt in rows], now, dispatch)
    return len(rows)


def due_lookups(
    session: Session, now: datetime, after: int, lookup_types: tuple[str, ...], batch: int = 500
) -> list[str]:
    """Claim the attempts created at least ``after`` seconds (and at most an hour more) ago whose
    message a provider of one of ``lookup_types`` accepted, with no final receipt since, and never
    looked up or last looked up at least ``after`` seconds ago: ``reconciled_at`` (when last
    claimed) is set to ``now``. So a message without a final status is looked up every ``after``
    seconds while it is in the window, and a lookup job lost after its claim is retried by a later
    sweep. Returns their sids."""
    if after <= 0 or not lookup_types:
        return []
    delay = timedelta(seconds=after)
    oldest, newest = now - delay - LOOKUP_WINDOW, now - delay
    # Never claimed, or the last claim expired (its answer was not final, or its job was lost).
    unclaimed = or_(SendAttempt.reconciled_at.is_(None), SendAttempt.reconciled_at <= newest)
    due = list(
        session.scalars(
            select(SendAttempt.sid)
            .join(Provider, Provider.sid == SendAttempt.provider_sid)
            .where(
                # (status, date_created) is indexed: the scan covers an hour of sent attempts.
                SendAttempt.status == "sent",
                SendAttempt.date_created > oldest,
                SendAttempt.date_created <= newest,
                unclaimed,
                Provider.type.in_(lookup_types),
            )
            .limit(batch)
        )
    )
    if not due:
        return []
    # The same condition guards the claim: of two concurrent sweeps, one claims each attempt.
    claimed = session.scalars(
        update(SendAttempt)
        .where(SendAttempt.sid.in_(due), unclaimed)
        .values(reconciled_at=now)
        .returning(SendAttempt.sid)
    )
    return list(claimed)  # fewer than ``due`` if another sweep claimed some meanwhile


def _apply_matched(
    session: Session,
    matched: list[tuple[DeliveryReceipt, SendAttempt]],
    now: datetime,
    dispatch: Dispatch,
) -> None:
    """Receipts stored unmatched, now matched to their attempts: applied in status order."""
    for receipt, attempt in sorted(matched, key=lambda pair: RANK[pair[0].status]):
        receipt.attempt_sid = attempt.sid
        apply(session, attempt, receipt, now, dispatch)


def _cut(value: str | None) -> str | None:
    return value[:64] if value else value
