"""The send gate: rate limits and fraud rules on every send, in the start path and in the worker.

``AbuseControls`` is built once per process (it holds the configuration cache and the Lua script);
``Gate`` is one per request, so that a start retried inside one request (a lost insert race) is
counted once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import redis
from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session, sessionmaker

from verify.abuse.cache import AccountConfig, ConfigCache
from verify.abuse.counters import Counters, Observed
from verify.domain import fraud, ratelimits
from verify.domain.clock import Clock
from verify.domain.destinations import mask
from verify.domain.fraud import Decision, Rule, SendFacts
from verify.domain.ratelimits import LimitState, SendKeys
from verify.domain.sends import Screening, SendContext
from verify.errors import (
    DeliveryBlocked,
    GeoPermissionBlocked,
    InvalidParameter,
    SendLimitsUnavailable,
    SmsToLandline,
    VerifyError,
)
from verify.events import outbox
from verify.models import SendAttempt, Verification
from verify.models.abuse import FraudBlock, FraudDecision

log = logging.getLogger(__name__)
DECISIONS = cast(Table, FraudDecision.__table__)
SAFE_LIST = Rule("safe_list", "safe_list", {}, mode="enforce")
RISK_CHECK = "default:risk_check"
REFUNDED = frozenset({"country", "api_key", "account", "service", "global"})
_ERRORS: dict[str, type[DeliveryBlocked]] = {
    "fraud": DeliveryBlocked,
    "geo": GeoPermissionBlocked,
    "landline": SmsToLandline,
}


@dataclass
class Verdict:
    """Everything one screening found (the dry-run endpoint shows it as it is)."""

    limits: list[LimitState] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    refusal: VerifyError | None = None  # a limit (429), raised before anything is written
    block: VerifyError | None = None  # a rule's block (403), written as a blocked attempt
    reason_code: str | None = None

    def screening(self) -> Screening:
        return Screening(tuple(self.decisions), self.block, self.reason_code)


class AbuseControls:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        client: redis.Redis,
        clock: Clock,
        default_limits: tuple[ratelimits.Limit, ...] = ratelimits.DEFAULT_LIMITS,
        check_every: float = 1.0,
    ) -> None:
        self.counters = Counters(client)
        self.cache = ConfigCache(sessions, self.counters, default_limits, check_every)
        self._clock = clock

    def gate(self, session: Session | None = None) -> Gate:
        return Gate(self, session)

    # -- screening --------------------------------------------------------------------------------

    def evaluate(
        self,
        ctx: SendContext,
        *,
        dry: bool = False,
        peek: bool = False,
        session: Session | None = None,
    ) -> Verdict:
        """Limits, then rules. ``dry``: count nothing, write nothing (the dry run); ``peek``: rules
        only, on the counters as they are (the worker's second screening). ``session``: the
        caller's, when it is inside a transaction (the configuration is read through it)."""
        try:
            return self._evaluate(ctx, dry=dry, peek=peek, session=session)
        except redis.RedisError:
            log.warning("send limits unavailable", extra={"service": ctx.service_sid})
            raise SendLimitsUnavailable(
                "Send limits cannot be checked right now, so nothing was sent; retry shortly"
            ) from None

    def _evaluate(
        self, ctx: SendContext, *, dry: bool, peek: bool, session: Session | None
    ) -> Verdict:
        config = self.cache.get(ctx.account_sid, session)
        rules, limits = config.for_send(ctx.service_sid, ctx.channel)
        req, dest = ctx.request, ctx.destination
        now = self._clock.now()
        now_ms = int(now.timestamp() * 1000)
        verdict = Verdict()
        charges: list[ratelimits.Charge] = []
        if not peek:
            keys = SendKeys(
                ctx.account_sid, ctx.service_sid, dest.value, dest.kind, dest.country,
                req.client_ip, req.credential_sid,
            )  # fmt: skip
            charges = ratelimits.charges(keys, limits) + self._tenant_charges(ctx, config)
        facts = SendFacts(
            ctx.account_sid, ctx.service_sid, dest.value, dest.kind, dest.country, ctx.channel,
            req.device_ip,
            "email" if dest.kind == "email" else dest.number_type or fraud.number_type(dest.value),
        )  # fmt: skip
        bypass = self._bypass(ctx, config, rules, facts)
        verdict.decisions.extend(bypass)
        screened = [] if any(d.action == "bypass" for d in bypass) else rules
        wanted = [c for rule in screened for c in fraud.counters(rule, facts)]
        seen = self.counters.observe(now_ms, charges, wanted, dry=dry, peek=peek)
        verdict.limits = seen.limits
        if seen.refused:
            refused = max(
                (s for s in seen.limits if not s.allowed and s.charge.limit.enforce),
                key=lambda s: s.retry_after,
            )
            verdict.refusal = ratelimits.refusal(refused)
            return verdict
        verdict.decisions.extend(self._limit_flags(seen))
        decisions = fraud.decide(screened, facts, seen.counters, config.blocks, now)
        verdict.decisions.extend(decisions)
        blocking = next((d for d in decisions if d.blocks), None)
        if blocking is not None:
            extra: dict[str, Any] = {
                "reason": blocking.reason,
                "reason_code": blocking.reason_code,
                "rule_sid": blocking.rule.sid,
            }
            verdict.block = _ERRORS[blocking.error](
                f"Verification delivery attempt blocked: {blocking.reason}", extra=extra
            )
            verdict.reason_code = blocking.reason_code
        if not dry and not peek:
            self._after(decisions, facts, screened, verdict, now_ms)
        return verdict

    def _tenant_charges(self, ctx: SendContext, config: AccountConfig) -> list[ratelimits.Charge]:
        values = ctx.request.rate_limits
        if not values:
            return []
        names = config.limit_names.get(ctx.service_sid, frozenset())
        unknown = sorted(set(values) - names)
        if unknown:
            raise InvalidParameter(
                "RateLimits", f"no rate limit named {', '.join(unknown)} on this service"
            )
        return ratelimits.tenant_charges(
            ctx.service_sid, config.buckets.get(ctx.service_sid, []), values
        )

    def _bypass(
        self, ctx: SendContext, config: AccountConfig, rules: list[Rule], facts: SendFacts
    ) -> list[Decision]:
        inputs = {"destination": mask(facts.destination)}
        if config.is_safe(facts.destination):
            return [
                Decision(
                    SAFE_LIST, "bypass", "safe_list", "the destination is on the safe list", inputs
                )
            ]
        if ctx.request.risk_check:
            return []
        policy = next((r for r in rules if r.type == "risk_check"), None)
        if policy is not None and policy.params["allow_disable"]:
            reason = "RiskCheck=disable: fraud rules skipped for this send"
            return [Decision(policy, "bypass", "risk_check_disabled", reason, inputs)]
        rule = policy or Rule(RISK_CHECK, "risk_check", {"allow_disable": False})
        reason = "RiskCheck=disable ignored: this service does not allow it"
        return [Decision(rule, "flag", "risk_check_not_allowed", reason, inputs)]

    def _limit_flags(self, seen: Observed) -> list[Decision]:
        """Monitor-mode limits that would have refused this send."""
        out = []
        for state in seen.limits:
            limit = state.charge.limit
            if state.allowed or limit.enforce:
                continue
            rule = Rule(limit.rule_sid, "rate_limit", {"key": limit.key}, mode="monitor")
            reason = f"would exceed the send limit: {state.charge.label}"
            inputs = {"key": limit.key, "max": limit.max, "interval": limit.interval}
            out.append(Decision(rule, "block", "rate_limit", reason, inputs))
        return out

    def _after(
        self,
        decisions: list[Decision],
        facts: SendFacts,
        rules: list[Rule],
        verdict: Verdict,
        now_ms: int,
    ) -> None:
        for d in decisions:
            if d.cooldown is not None and d.rule.mode == "enforce":
                c = d.cooldown
                self.counters.block(c.block_key, now_ms, c.seconds, c.conversion_key)
        if verdict.block is not None:
            # A blocked send costs nothing and reached nobody: it takes no allowance from the
            # limits that measure cost, and is no "sent" in the conversion statistics. (The keys
            # that measure who is asking — destination, prefix, IP — keep counting it.)
            refund = [s.charge for s in verdict.limits if s.charge.limit.key in REFUNDED]
            keys = []
            for rule in rules:
                if rule.type == "conversion_rate" and facts.channel in rule.watched_channels:
                    found = fraud.conversion_keys(rule, facts)
                    if found is not None:
                        keys.append((found[0], found[1]))
            self.counters.uncount(refund, keys, now_ms)

    # -- recording ----------------------------------------------------------------------------------

    def record(
        self,
        session: Session,
        screening: Screening,
        verification: Verification,
        attempt: SendAttempt,
        now: datetime,
    ) -> None:
        decisions = [d for d in screening.decisions if isinstance(d, Decision)]
        if screening.block is not None:
            screening.block.extra["verification_sid"] = verification.sid
        if not decisions:
            return
        conn = session.connection()
        conn.execute(
            insert(DECISIONS),
            [
                {
                    "account_sid": verification.account_sid,
                    "service_sid": verification.service_sid,
                    "verification_sid": verification.sid,
                    "attempt_sid": attempt.sid,
                    "rule_sid": d.rule.sid,
                    "rule_type": d.rule.type,
                    "mode": d.rule.mode,
                    "action": d.action,
                    "reason_code": d.reason_code,
                    "reason": d.reason[:500],
                    "inputs": d.inputs,
                    "date_created": now,
                }
                for d in decisions
            ],
        )
        cooldowns = [d for d in decisions if d.cooldown is not None and d.rule.mode == "enforce"]
        for d in cooldowns:
            self._store_block(session, verification.account_sid, d, now)
        blocking = next((d for d in decisions if d.blocks), None)
        if blocking is not None:
            outbox.record(
                session,
                "fraud.blocked",
                account_sid=verification.account_sid,
                service_sid=verification.service_sid,
                subject_sid=verification.sid,
                payload={
                    "verification_sid": verification.sid,
                    "attempt_sid": attempt.sid,
                    "service_sid": verification.service_sid,
                    "channel": attempt.channel,
                    "to": mask(verification.destination),
                    "rule_sid": blocking.rule.sid,
                    "rule_type": blocking.rule.type,
                    "reason_code": blocking.reason_code,
                    "reason": blocking.reason,
                    "date": now.isoformat(),
                },
                at=now,
            )
        if cooldowns:
            self.cache.changed()

    def _store_block(self, session: Session, account_sid: str, d: Decision, now: datetime) -> None:
        c = d.cooldown
        assert c is not None
        until = datetime.fromtimestamp(now.timestamp() + c.seconds, tz=now.tzinfo)
        row = session.scalar(
            select(FraudBlock).where(
                FraudBlock.account_sid == account_sid,
                FraudBlock.scope_sid == c.scope_sid,
                FraudBlock.rule_sid == d.rule.sid,
                FraudBlock.dimension == c.dimension,
                FraudBlock.value == c.value,
            )
        )
        if row is None:
            session.add(
                FraudBlock(
                    account_sid=account_sid, scope_sid=c.scope_sid, rule_sid=d.rule.sid,
                    dimension=c.dimension, value=c.value, strikes=c.strikes, blocked_until=until,
                    reason=d.reason[:500], date_created=now, date_updated=now,
                )
            )  # fmt: skip
        else:
            row.strikes, row.blocked_until, row.reason = c.strikes, until, d.reason[:500]
            row.date_updated = now

    # -- approvals ----------------------------------------------------------------------------------

    def approved(self, verification: Verification) -> None:
        """Count an approval for the conversion-rate guard. Never fails a check: Redis errors
        and the like are logged and swallowed."""
        v = verification
        if v.is_test or not v.destination.startswith("+"):
            return
        try:
            rules, _ = self.cache.get(v.account_sid).for_send(v.service_sid, v.channel)
            facts = SendFacts(
                v.account_sid, v.service_sid, v.destination, "phone", v.country, v.channel, None
            )
            keys = [
                found
                for rule in rules
                if rule.type == "conversion_rate" and v.channel in rule.watched_channels
                if (found := fraud.conversion_keys(rule, facts)) is not None
            ]
            if keys:
                now_ms = int(self._clock.now().timestamp() * 1000)
                self.counters.count_approved(keys, now_ms)
        except Exception:
            log.warning("approval not counted for the conversion-rate guard", exc_info=True)


class Gate:
    """The SendGate of one request (see the module docstring)."""

    def __init__(self, controls: AbuseControls, session: Session | None = None) -> None:
        self._controls = controls
        self._session = session
        self._screened: dict[int, Verdict] = {}
        self.limits: list[LimitState] = []  # for the RateLimit headers of the response

    def screen(self, ctx: SendContext) -> Screening:
        verdict = self._screened.get(id(ctx.request))
        if verdict is None:
            verdict = self._controls.evaluate(ctx, session=self._session)
            self._screened[id(ctx.request)] = verdict
        self.limits = verdict.limits
        if verdict.refusal is not None:
            raise verdict.refusal
        return verdict.screening()

    def screen_delivery(self, ctx: SendContext) -> Screening:
        return self._controls.evaluate(ctx, peek=True, session=self._session).screening()

    def rate_limit_headers(self) -> dict[str, str]:
        return ratelimits.headers(self.limits)

    def record(
        self,
        session: Session,
        screening: Screening,
        verification: Verification,
        attempt: SendAttempt,
        now: datetime,
    ) -> None:
        self._controls.record(session, screening, verification, attempt, now)

    def approved(self, verification: Verification) -> None:
        self._controls.approved(verification)
