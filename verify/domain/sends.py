"""A send as the abuse controls see it, and the hooks the lifecycle calls around one: the start
request, the screening before anything is written, and the hand-over to the delivery workers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from verify.domain.destinations import Destination
from verify.errors import VerifyError
from verify.models import SendAttempt, Verification


class Dispatcher(Protocol):
    """Hands a committed send attempt to the delivery workers: a new send of ``account_sid``
    (counted against its fair share of the workers), or without one a send already under way (a
    failover, a fallback, a redrive)."""

    def dispatch(self, attempt_sid: str, account_sid: str | None = None) -> None: ...


@dataclass(frozen=True)
class StartRequest:
    to: str
    channel: str
    custom_code: str | None = None
    locale: str | None = None
    custom_friendly_name: str | None = None
    amount: str | None = None
    payee: str | None = None
    status_callback: str | None = None  # a URL for this verification's events (webhooks)
    # What the abuse controls look at: who asked, from where, and the tenant's own limit keys.
    credential_sid: str | None = None
    client_ip: str | None = None
    # The person's device (DeviceIp) when the application says so; client_ip falls back to the
    # caller's address, which for a server-to-server call is the application's own server.
    device_ip: str | None = None
    risk_check: bool = True
    rate_limits: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendContext:
    """One send as the abuse controls see it, before anything is written or sent."""

    account_sid: str
    service_sid: str
    destination: Destination
    channel: str
    request: StartRequest
    resend_of: str | None  # the pending verification this send is a resend of


@dataclass(frozen=True)
class Screening:
    """The abuse controls' answer for one send."""

    decisions: tuple[object, ...] = ()  # the gate's own records, handed back to ``record``
    block: VerifyError | None = None  # refused: raised once the blocked attempt is committed
    reason_code: str | None = None  # the blocked attempt's reason code


class SendGate(Protocol):
    """Rate limits and fraud rules, consulted on every send before anything costs money."""

    def screen(self, ctx: SendContext) -> Screening:
        """Decide on one send. May raise (429 over a limit, 503 without Redis): nothing is written."""
        ...

    def screen_delivery(self, ctx: SendContext) -> Screening:
        """Decide again in the worker, just before a provider is called (rules change; fallback
        and failover attempts were never screened by a request). Rules only: no limit is counted."""
        ...

    def record(
        self,
        session: Session,
        screening: Screening,
        verification: Verification,
        attempt: SendAttempt,
        now: datetime,
    ) -> None:
        """Store the decisions, in the transaction that writes the attempt."""
        ...

    def approved(self, verification: Verification) -> None:
        """A verification was approved (after commit): conversion statistics."""
        ...


class OpenGate:
    """No abuse controls: every send passes (tests of the lifecycle alone)."""

    def screen(self, ctx: SendContext) -> Screening:
        return Screening()

    def screen_delivery(self, ctx: SendContext) -> Screening:
        return Screening()

    def record(
        self,
        session: Session,
        screening: Screening,
        verification: Verification,
        attempt: SendAttempt,
        now: datetime,
    ) -> None:
        return None

    def approved(self, verification: Verification) -> None:
        return None
