"""The second half of a "press a key first" call (``DtmfInputRequired``): the provider calls
``/v2/Callbacks/{ProviderSid}/Voice/{AttemptSid}`` after the prompt, and gets the code spoken only
if a key was pressed and the verification is still pending and unexpired; otherwise the call hangs
up. The code is opened from the verification's sealed box at that moment and kept nowhere else.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from verify.delivery.providers.base import (
    InvalidSignature,
    OutboundMessage,
    ReceiptRequest,
    VoiceContinuation,
)
from verify.delivery.routing import ProviderFactory, route_of
from verify.delivery.templates import render, resolve_locale
from verify.domain.clock import Clock
from verify.domain.codes import CodeSealer
from verify.errors import CallbackSignatureInvalid, NotFound
from verify.models import SendAttempt, Service, Verification
from verify.models.delivery import Provider

# An attempt in one of these states is a call that was placed (receipts may already have moved it).
PLACED = ("sending", "sent", "delivered")


def continue_url(public_url: str, provider_sid: str, attempt_sid: str) -> str:
    return f"{public_url}/v2/Callbacks/{provider_sid}/Voice/{attempt_sid}"


class VoiceService:
    def __init__(
        self,
        session: Session,
        *,
        clock: Clock,
        sealer: CodeSealer,
        providers: ProviderFactory,
        public_url: str,
    ) -> None:
        self._session = session
        self._clock = clock
        self._sealer = sealer
        self._providers = providers
        self._public_url = public_url

    def answer(
        self, provider_sid: str, attempt_sid: str, request: ReceiptRequest
    ) -> tuple[str, bytes]:
        """(content type, body) for the provider: the rest of the script, or a hang-up."""
        with self._session.begin():
            row = self._session.get(Provider, provider_sid)
            if row is None:
                raise NotFound(f"The requested resource /Callbacks/{provider_sid} was not found")
            route = route_of(row)
        adapter = self._providers(route)
        if not isinstance(adapter, VoiceContinuation):
            raise NotFound(f"The provider {provider_sid} places no calls")
        try:
            digits = adapter.voice_request(request)
        except InvalidSignature:
            raise CallbackSignatureInvalid(
                "The voice request's signature does not verify with this provider's credentials"
            ) from None
        with self._session.begin():
            found = self._session.execute(
                select(SendAttempt, Verification, Service)
                .join(Verification, Verification.sid == SendAttempt.verification_sid)
                .join(Service, Service.sid == Verification.service_sid)
                .where(SendAttempt.sid == attempt_sid, SendAttempt.provider_sid == provider_sid)
            ).first()
            if found is None:
                raise NotFound(f"The requested resource /Voice/{attempt_sid} was not found")
            attempt, v, service = found
            now = self._clock.now()
            speak = (
                digits is not None
                and attempt.channel == "call"
                and attempt.status in PLACED
                and v.status == "pending"
                and v.expires_at > now
            )
            if not speak:
                return adapter.voice_answer(None)
            message = self._message(attempt, v, service)
        return adapter.voice_answer(message)

    def _message(self, attempt: SendAttempt, v: Verification, service: Service) -> OutboundMessage:
        return render(
            "call",
            resolve_locale(v.locale, service.default_locale, v.country),
            friendly_name=v.custom_friendly_name or service.friendly_name,
            code=self._sealer.open(v.sid, v.sealed_code),
            do_not_share_warning=service.do_not_share_warning_enabled,
            dtmf_required=True,
            to=v.destination,
            verification_sid=v.sid,
            attempt_sid=attempt.sid,
            voice_continue_url=continue_url(
                self._public_url, attempt.provider_sid or "", attempt.sid
            ),
        )
