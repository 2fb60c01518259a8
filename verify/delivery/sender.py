"""Send one attempt: re-read state, pick a provider on the route, claim the attempt, open the code,
render the message, hand it to the provider and act on what it answered.

A job may run late, twice, or after the verification ended (a requeue from the dashboard): every run
re-checks that the verification is pending and unexpired and claims the attempt with a conditional
update (queued -> sending), so a message is sent at most once per provider call and never for a
finished verification. The provider is called outside any transaction.

Outcomes (verify/delivery/providers/base.py): accepted -> ``sent``; retry -> the same provider again
after a jittered backoff, never past the code's expiry; failover -> this attempt ``failed`` and a new
attempt for the next provider on the route; permanent -> ``failed``, then channel fallback or the
verification ``failed`` (verify/delivery/attempts.py).

On PostgreSQL a job's common send (queued, due, pending, accepted) takes a shorter way, as single
statements on the job's connection (verify/delivery/lane.py); everything else comes here.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from verify.delivery import attempts as lifecycle
from verify.delivery.circuit import CircuitBreakers
from verify.delivery.providers.base import OutboundMessage, Outcome, SendResult
from verify.delivery.queue import JOB_TIMEOUT, Timers
from verify.delivery.receipts import apply_early_receipts
from verify.delivery.routing import ProviderFactory, Route, Router
from verify.delivery.templates import LocaleResolver, Renderer
from verify.delivery.voice import continue_url
from verify.domain.clock import Clock
from verify.domain.codes import CodeSealer
from verify.domain.destinations import Destination
from verify.domain.sends import Dispatcher, OpenGate, Screening, SendContext, SendGate, StartRequest
from verify.events import outbox
from verify.models import SendAttempt, Service, Verification

log = logging.getLogger(__name__)

# An attempt still ``sending`` this long after its claim belongs to a worker that died during the
# provider call (RQ kills a job after JOB_TIMEOUT; twice that leaves no live job behind).
LOST_AFTER = 2 * JOB_TIMEOUT
WORKER_LOST = "worker_lost"


@dataclass(frozen=True)
class RetryPolicy:
    max_tries: int = 3  # calls to one provider for one attempt, the first included
    base: float = 2.0  # seconds; doubled per retry
    cap: float = 60.0

    def delay(self, tries: int, hint: float | None, rng: Callable[[], float]) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random."""
        step = min(self.cap, self.base * 2 ** (tries - 1))
        delay = step / 2 + step / 2 * rng()
        return float(max(delay, hint or 0.0))


@dataclass
class Claimed:
    attempt: SendAttempt
    route: Route
    message: OutboundMessage
    expires_at: datetime
    # Held so the session's identity map (weak) keeps them: no second read after the call.
    verification: Verification
    service: Service


class SendService:
    def __init__(
        self,
        session: Session,
        *,
        clock: Clock,
        sealer: CodeSealer,
        router: Router,
        providers: ProviderFactory,
        breakers: CircuitBreakers,
        timers: Timers,
        dispatcher: Dispatcher,
        render: Renderer,
        resolve_locale: LocaleResolver,
        retry: RetryPolicy | None = None,
        public_url: str = "",
        gate: SendGate | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._session = session
        self._clock = clock
        self._sealer = sealer
        self._router = router
        self._providers = providers
        self._breakers = breakers
        self._timers = timers
        self._dispatcher = dispatcher
        self._render = render
        self._resolve_locale = resolve_locale
        self._retry = retry or RetryPolicy()
        self._public_url = public_url
        self._gate = gate or OpenGate()
        self._rng = rng
        self._after_commit: list[Callable[[], None]] = []

    def deliver(self, attempt_sid: str) -> str:
        """Returns what happened: sent, retry, failover, failed, or why nothing was sent."""
        try:
            with self._session.begin():
                claimed = self._claim(attempt_sid)
            self._run_after_commit()
            if isinstance(claimed, str):
                return claimed
            result = self._call(claimed.route, claimed.message)
            with self._session.begin():
                outcome = self._conclude(claimed, result)
            self._run_after_commit()
            return outcome
        finally:
            self._after_commit.clear()

    # -- before the call --------------------------------------------------------------------------

    def _claim(self, attempt_sid: str) -> Claimed | str:
        # One round trip for the attempt, its verification and its service.
        row = self._session.execute(
            select(SendAttempt, Verification, Service)
            .join(Verification, Verification.sid == SendAttempt.verification_sid)
            .join(Service, Service.sid == Verification.service_sid)
            .where(SendAttempt.sid == attempt_sid)
        ).first()
        if row is None:
            return "unknown_attempt"
        attempt, v, service = row
        if attempt.status != "queued":
            return f"already_{attempt.status}"
        now = self._clock.now()
        if attempt.retry_at is not None and attempt.retry_at > now:
            return "not_due"  # an early run of a job whose retry is scheduled (a requeue)
        reason = None
        if v.status != "pending":
            reason = f"verification_{v.status}"
        elif v.expires_at <= now:
            reason = "code_expired"
        if reason:
            if not lifecycle.transition(
                self._session, attempt, ("queued",), now, status="canceled", reason_code=reason
            ):
                return "claimed_elsewhere"
            return reason

        screening = self._screen(v.sid, attempt.channel, v)
        if screening.block is not None:
            if not lifecycle.transition(
                self._session,
                attempt,
                ("queued",),
                now,
                status="blocked",
                reason_code=screening.reason_code or "blocked",
            ):
                return "claimed_elsewhere"
            self._gate.record(self._session, screening, v, attempt, now)
            lifecycle.fail_if_exhausted(self._session, attempt, now)
            return "blocked"

        routes = self._router.route(v.account_sid, attempt.channel, v.country)
        excluded = self._tried_providers(attempt)
        candidates = [r for r in routes if r.key not in excluded]
        if not candidates:
            reason = "no_route" if not routes else "providers_exhausted"
            return self._give_up(attempt, now, reason, expected=("queued",))

        ts = now.timestamp()
        chosen, wait = None, None
        for route in candidates:
            admission = self._breakers.admit(route.circuit, ts)
            if admission.allowed:
                chosen = route
                break
            wait = admission.retry_in if wait is None else min(wait, admission.retry_in)
        if chosen is None:
            # Every provider left on the route is resting: come back when the first may be probed.
            return self._retry_later(
                attempt, v, now, "circuit_open", None, wait, expected="queued", count=False
            )

        if not lifecycle.transition(
            self._session,
            attempt,
            ("queued",),
            now,
            status="sending",
            provider=chosen.type,
            provider_sid=chosen.sid,
            retry_at=None,
        ):
            return "claimed_elsewhere"
        message = self._message(chosen, attempt.channel, attempt.sid, v.sid, v, service)
        return Claimed(attempt, chosen, message, v.expires_at, v, service)

    def _screen(self, verification_sid: str, channel: str, v: Any) -> Screening:
        """The fraud rules again, just before the call. ``v``: the verification, or a SELECT_SEND
        row (which has its fields, and its account's and service's sids)."""
        destination = v.destination
        kind = "email" if "@" in destination else "phone"
        return self._gate.screen_delivery(
            SendContext(
                v.account_sid,
                v.service_sid,
                Destination(destination, kind, v.country),
                channel,
                StartRequest(to=destination, channel=channel, locale=v.locale),
                verification_sid,
            )
        )

    def _message(
        self,
        route: Route,
        channel: str,
        attempt_sid: str,
        verification_sid: str,
        v: Any,
        service: Any,
    ) -> OutboundMessage:
        """The message to send. ``v`` and ``service``: the verification and its service, or a
        SELECT_SEND row for both (it has the fields of each that a message needs)."""
        return self._render(
            channel,
            self._resolve_locale(v.locale, service.default_locale, v.country),
            friendly_name=v.custom_friendly_name or service.friendly_name,
            code=self._sealer.open(verification_sid, v.sealed_code),
            do_not_share_warning=service.do_not_share_warning_enabled,
            dtmf_required=service.dtmf_input_required,
            to=v.destination,
            verification_sid=verification_sid,
            attempt_sid=attempt_sid,
            status_callback=self._status_callback(route),
            voice_continue_url=self._voice_continue_url(route, channel, attempt_sid),
        )

    def _tried_providers(self, attempt: SendAttempt) -> set[str]:
        """Providers that already failed this send on this channel (failover never goes back)."""
        if attempt.replaces_sid is None and attempt.status != "failed":
            return set()  # a tenant's own send: nothing of it was tried before
        rows = self._session.execute(
            select(SendAttempt.provider_sid, SendAttempt.provider).where(
                SendAttempt.verification_sid == attempt.verification_sid,
                SendAttempt.number == attempt.number,
                SendAttempt.channel == attempt.channel,
                SendAttempt.status == "failed",
                SendAttempt.sid != attempt.sid,
            )
        )
        return {str(sid or provider) for sid, provider in rows if sid or provider}

    def _status_callback(self, route: Route) -> str | None:
        if not self._public_url or route.sid is None:
            return None
        return f"{self._public_url}/v2/Callbacks/{route.sid}"

    def _voice_continue_url(self, route: Route, channel: str, attempt_sid: str) -> str | None:
        """Where a DTMF-first call fetches the code after the key press (verify/delivery/voice.py)."""
        if channel != "call" or not self._public_url or route.sid is None:
            return None
        return continue_url(self._public_url, route.sid, attempt_sid)

    # -- the call -----------------------------------------------------------------------------------

    def _call(self, route: Route, message: OutboundMessage) -> SendResult:
        try:
            result = self._providers(route).send(message)
        except Exception as exc:
            # Adapters classify every provider and network outcome themselves; this is a bug in
            # one. The exception's text may quote the message: log its type only.
            log.error(
                "provider adapter raised",
                extra={"provider": route.key, "error": type(exc).__name__},
            )
            result = SendResult(Outcome.RETRY, reason="provider_error")
        ok = result.outcome in (Outcome.ACCEPTED, Outcome.PERMANENT)
        self._breakers.record(route.circuit, ok, self._clock.now().timestamp())
        return result

    # -- after the call -----------------------------------------------------------------------------

    def _conclude(self, claimed: Claimed, result: SendResult) -> str:
        attempt, route = claimed.attempt, claimed.route
        now = self._clock.now()
        if result.outcome is Outcome.ACCEPTED:
            if not lifecycle.transition(
                self._session,
                attempt,
                ("sending",),
                now,
                status="sent",
                reason_code=None,
                raw_code=result.raw_code,
                provider_message_id=result.provider_message_id,
            ):
                return "claimed_elsewhere"
            v = claimed.verification
            outbox.message_event(self._session, "message.sent", attempt, v.destination, now)
            if result.provider_message_id and route.sid and claimed.message.status_callback:
                # Receipts can only have come if we asked for them.
                apply_early_receipts(self._session, attempt, now, self._after_commit_dispatch)
            self._schedule_channel_timeout(attempt, v, claimed.service, now)
            return "sent"
        if result.outcome is Outcome.RETRY:
            v = claimed.verification
            return self._retry_later(
                attempt,
                v,
                now,
                result.reason or "provider_error",
                result.raw_code,
                result.retry_after,
                expected="sending",
            )
        if result.outcome is Outcome.FAILOVER:
            return self._fail_over(attempt, now, result.reason or "provider_unavailable", result)
        return self._give_up(
            attempt,
            now,
            result.reason or "undeliverable",
            raw_code=result.raw_code,
            expected=("sending",),
        )

    def _retry_later(
        self,
        attempt: SendAttempt,
        v: Verification,
        now: datetime,
        reason: str,
        raw_code: str | None,
        hint: float | None,
        *,
        expected: str,
        count: bool = True,
    ) -> str:
        tries = attempt.tries + 1 if count else attempt.tries
        delay = self._retry.delay(max(tries, 1), hint, self._rng)
        at = now + timedelta(seconds=delay)
        if (count and tries >= self._retry.max_tries) or at >= v.expires_at:
            # No time (or no patience) left for this provider: the next one, if there is one.
            result = SendResult(Outcome.FAILOVER, reason=reason, raw_code=raw_code)
            if expected == "queued":
                return self._give_up(attempt, now, reason, raw_code=raw_code, expected=("queued",))
            return self._fail_over(attempt, now, reason, result)
        if not lifecycle.transition(
            self._session,
            attempt,
            (expected,),
            now,
            status="queued",
            tries=tries,
            retry_at=at,
            reason_code=reason,
            raw_code=raw_code,
        ):
            return "claimed_elsewhere"
        sid, due = attempt.sid, at.timestamp()
        self._after_commit.append(lambda: self._timers.retry(sid, tries, due))
        return "retry"

    def _fail_over(
        self, attempt: SendAttempt, now: datetime, reason: str, result: SendResult
    ) -> str:
        if not self._fail(attempt, now, reason, result.raw_code, ("sending",)):
            return "claimed_elsewhere"
        v = self._verification(attempt)
        routes = self._router.route(v.account_sid, attempt.channel, v.country)
        tried = self._tried_providers(attempt) | {attempt.provider_sid or attempt.provider or ""}
        if v.status == "pending" and v.expires_at > now and any(r.key not in tried for r in routes):
            nxt = lifecycle.add_system_attempt(
                self._session, attempt, attempt.channel, v.destination, now
            )
            self._after_commit_dispatch(nxt.sid)
            return "failover"
        self._after_failure(attempt, now)
        return "failed"

    def _give_up(
        self,
        attempt: SendAttempt,
        now: datetime,
        reason: str,
        *,
        raw_code: str | None = None,
        expected: tuple[str, ...],
    ) -> str:
        if not self._fail(attempt, now, reason, raw_code, expected):
            return "claimed_elsewhere"
        self._after_failure(attempt, now)
        return reason if expected == ("queued",) else "failed"

    def _fail(
        self,
        attempt: SendAttempt,
        now: datetime,
        reason: str,
        raw_code: str | None,
        expected: tuple[str, ...],
    ) -> bool:
        if not lifecycle.transition(
            self._session,
            attempt,
            expected,
            now,
            status="failed",
            reason_code=reason,
            raw_code=raw_code,
            retry_at=None,
        ):
            return False
        v = self._verification(attempt)
        outbox.message_event(self._session, "message.failed", attempt, v.destination, now)
        return True

    def _after_failure(self, attempt: SendAttempt, now: datetime) -> None:
        fallback = lifecycle.after_failure(self._session, attempt, now)
        if fallback is not None:
            self._after_commit_dispatch(fallback.sid)

    def _schedule_channel_timeout(
        self, attempt: SendAttempt, v: Verification, service: Service, now: datetime
    ) -> None:
        if not lifecycle.fallback_channels(service):
            return
        if lifecycle.next_channel(self._session, v, service, attempt.channel) is None:
            return
        due = now + timedelta(seconds=service.channel_timeout)
        if due >= v.expires_at:
            return
        sid, at = attempt.sid, due.timestamp()
        self._after_commit.append(lambda: self._timers.channel_timeout(sid, at))

    # -- crashed workers ------------------------------------------------------------------------

    def recover_lost(self, older_than: int = LOST_AFTER, limit: int = 500) -> int:
        """Attempts left ``sending`` by a worker that died mid-call. Whether the provider got the
        message is unknown, so it is never sent again on that channel (at most once): the attempt
        fails with ``worker_lost``, then channel fallback or the verification ``failed``, as for
        any failed attempt. Returns how many were recovered."""
        now = self._clock.now()
        try:
            with self._session.begin():
                lost = self._session.scalars(
                    select(SendAttempt)
                    .where(
                        SendAttempt.status == "sending",
                        SendAttempt.date_updated <= now - timedelta(seconds=older_than),
                    )
                    .order_by(SendAttempt.date_updated)
                    .limit(limit)
                ).all()
                recovered = 0
                for attempt in lost:
                    if self._fail(attempt, now, WORKER_LOST, None, ("sending",)):
                        self._after_failure(attempt, now)
                        recovered += 1
            self._run_after_commit()
            return recovered
        finally:
            self._after_commit.clear()

    # -- shared -------------------------------------------------------------------------------------

    def _verification(self, attempt: SendAttempt) -> Verification:
        v = self._session.get(Verification, attempt.verification_sid)
        assert v is not None
        return v

    def _after_commit_dispatch(self, attempt_sid: str) -> None:
        self._after_commit.append(lambda: self._dispatcher.dispatch(attempt_sid))

    def _run_after_commit(self) -> None:
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            action()
