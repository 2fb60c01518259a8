"""The ``vonage`` provider: SMS through the SMS API (``/sms/json``), calls through the Voice API
(``/v1/calls`` with an NCCO, authenticated by an RS256 JWT from the application's private key).

Receipts: SMS delivery receipts signed with the account's signature secret (the ``sig`` parameter,
HMAC-SHA256 mode), and Voice events signed with a JWT (HS256, same secret) carrying the body's hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import jwt

from verify.delivery import templates
from verify.delivery.providers import _common as r
from verify.delivery.providers.base import (
    InvalidSignature,
    OutboundMessage,
    Outcome,
    Receipt,
    ReceiptRequest,
    SendResult,
)

DEFAULT_SMS_URL = "https://rest.nexmo.com"
DEFAULT_API_URL = "https://api.nexmo.com"
SIGNATURE_TOLERANCE = 300  # seconds between a receipt's timestamp and now, either way

# SMS API per-message status -> (outcome, reason). 0 is success.
SMS_ERRORS: dict[str, tuple[Outcome, str]] = {
    "1": (Outcome.RETRY, r.PROVIDER_RATE_LIMITED),  # throttled
    "2": (Outcome.FAILOVER, r.PROVIDER_MISCONFIGURED),  # missing parameters
    "3": (Outcome.FAILOVER, r.REJECTED),  # invalid parameters
    "4": (Outcome.FAILOVER, r.PROVIDER_AUTH_FAILED),  # invalid credentials
    "5": (Outcome.FAILOVER, r.PROVIDER_UNAVAILABLE),  # internal error
    "6": (Outcome.PERMANENT, r.UNREACHABLE_DESTINATION),  # unroutable (unknown prefix)
    "7": (Outcome.PERMANENT, r.BLOCKED_BY_PROVIDER),  # number barred
    "8": (Outcome.FAILOVER, r.PROVIDER_MISCONFIGURED),  # account barred
    "9": (Outcome.FAILOVER, r.PROVIDER_MISCONFIGURED),  # partner quota (balance) exceeded
    "10": (Outcome.RETRY, r.PROVIDER_RATE_LIMITED),  # too many existing binds
    "11": (Outcome.FAILOVER, r.PROVIDER_MISCONFIGURED),  # account not enabled for HTTP
    "12": (Outcome.FAILOVER, r.REJECTED),  # message too long
    "14": (Outcome.FAILOVER, r.PROVIDER_AUTH_FAILED),  # invalid signature
    "15": (Outcome.FAILOVER, r.PROVIDER_MISCONFIGURED),  # invalid sender address
    "22": (Outcome.FAILOVER, r.REJECTED),  # invalid network code
    "23": (Outcome.FAILOVER, r.PROVIDER_MISCONFIGURED),  # invalid callback URL
    "29": (Outcome.FAILOVER, r.BLOCKED_BY_PROVIDER),  # non-whitelisted destination (trial)
    "32": (Outcome.FAILOVER, r.PROVIDER_AUTH_FAILED),  # signature and secret both refused
    "33": (Outcome.PERMANENT, r.UNREACHABLE_DESTINATION),  # number de-activated
}

DLR_STATUSES = {
    "accepted": "sent",
    "buffered": "sending",
    "delivered": "delivered",
    "expired": "undelivered",
    "failed": "failed",
    "rejected": "failed",
}

DLR_ERRORS = {
    "1": r.UNKNOWN,
    "2": r.UNREACHABLE_DESTINATION,  # absent subscriber, temporary
    "3": r.UNREACHABLE_DESTINATION,  # absent subscriber, permanent
    "4": r.BLOCKED_BY_PROVIDER,  # barred by the subscriber
    "5": r.UNREACHABLE_DESTINATION,  # portability error
    "6": r.BLOCKED_BY_PROVIDER,  # anti-spam rejection
    "7": r.UNREACHABLE_DESTINATION,  # handset busy
    "8": r.UNKNOWN,  # network error
    "9": r.INVALID_DESTINATION,  # illegal number
    "10": r.REJECTED,  # illegal message
    "11": r.UNREACHABLE_DESTINATION,  # unroutable
    "12": r.UNREACHABLE_DESTINATION,  # destination unreachable
    "13": r.BLOCKED_BY_PROVIDER,  # subscriber age restriction
    "14": r.BLOCKED_BY_PROVIDER,  # number blocked by carrier
    "15": r.UNREACHABLE_DESTINATION,  # prepaid, insufficient funds
    "99": r.UNKNOWN,
}

CALL_STATUSES = {
    "started": "queued",
    "ringing": "sending",
    "answered": "sent",
    "completed": "delivered",
    "busy": "undelivered",
    "cancelled": "undelivered",
    "unanswered": "undelivered",
    "timeout": "undelivered",
    "rejected": "undelivered",
    "failed": "failed",
}

# Our locales' voice tags where Vonage names the language differently.
VOICE_LANGUAGES = {"ar-XA": "ar"}


class VonageProvider:
    type: ClassVar[str] = "vonage"

    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        from_: str | None = None,
        voice_from: str | None = None,
        application_id: str | None = None,
        private_key: str | None = None,
        signature_secret: str | None = None,
        sms_url: str = DEFAULT_SMS_URL,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._key = api_key
        self._secret = api_secret
        self._from = from_
        self._voice_from = voice_from or from_
        self._application_id = application_id
        self._private_key = private_key
        self._signature_secret = signature_secret
        self._sms_url = sms_url.rstrip("/")
        self._api_url = api_url.rstrip("/")
        self._timeout = timeout
        self._transport = transport
        self._http: httpx.Client | None = None

    # -- sending -----------------------------------------------------------------------------------

    def send(self, message: OutboundMessage) -> SendResult:
        if message.channel == "sms":
            return self._sms(message)
        if message.channel == "call":
            return self._call(message)
        return SendResult(Outcome.PERMANENT, reason=r.UNSUPPORTED_CHANNEL, raw_code=message.channel)

    def _sms(self, message: OutboundMessage) -> SendResult:
        if not self._from:
            return _misconfigured("no from")
        form = {
            "api_key": self._key,
            "api_secret": self._secret,
            "from": self._from.lstrip("+"),
            "to": message.to.lstrip("+"),
            "text": message.text,
            "type": "text" if templates.is_gsm7(message.text) else "unicode",
            "client-ref": message.attempt_sid,
        }
        if message.status_callback:
            form["status-report-req"] = "1"
            form["callback"] = message.status_callback
        try:
            response = self._client().post(f"{self._sms_url}/sms/json", data=form)
        except httpx.HTTPError as exc:
            return r.transport_failure(exc)
        if not response.is_success:
            return r.by_status(response)
        parts = r.json_object(response.content).get("messages")
        if not isinstance(parts, list) or not parts:
            return SendResult(Outcome.FAILOVER, reason=r.UNKNOWN, raw_code="no messages")
        for part in parts:
            status = str(part.get("status", ""))
            if status != "0":
                outcome, reason = SMS_ERRORS.get(status, (Outcome.FAILOVER, r.UNKNOWN))
                return SendResult(outcome, reason=reason, raw_code=status)
        return SendResult(Outcome.ACCEPTED, provider_message_id=str(parts[0].get("message-id")))

    def _call(self, message: OutboundMessage) -> SendResult:
        if not (self._application_id and self._private_key and self._voice_from):
            return _misconfigured("voice needs application_id, private_key and a from number")
        if message.dtmf_required and not message.voice_continue_url:
            return _misconfigured("a DTMF-first call needs a voice_continue_url")
        body: dict[str, Any] = {
            "to": [{"type": "phone", "number": message.to.lstrip("+")}],
            "from": {"type": "phone", "number": self._voice_from.lstrip("+")},
            "ncco": self.ncco(message),
        }
        if message.status_callback:
            body["event_url"] = [message.status_callback]
            body["event_method"] = "POST"
        try:
            token = self._jwt()
        except (ValueError, TypeError, jwt.PyJWTError):
            return _misconfigured("private_key is not a usable RSA key")
        try:
            response = self._client().post(
                f"{self._api_url}/v1/calls",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError as exc:
            return r.transport_failure(exc)
        payload = r.json_object(response.content)
        if response.is_success and isinstance(payload.get("uuid"), str):
            return SendResult(Outcome.ACCEPTED, provider_message_id=payload["uuid"])
        if response.status_code == 400 and _invalid_to(payload):
            return SendResult(Outcome.PERMANENT, reason=r.INVALID_DESTINATION, raw_code="400")
        return r.by_status(response)

    def ncco(self, message: OutboundMessage) -> list[dict[str, Any]]:
        """The call's NCCO. DTMF-first: the prompt, then a one-key ``input`` whose event URL returns
        the rest (``continue_ncco``); that URL is called on timeout too, with no digits."""
        if not message.dtmf_required:
            return [self._talk(message, message.speech)]
        return [
            {**self._talk(message, message.speech[:1]), "bargeIn": True},
            {
                "action": "input",
                "type": ["dtmf"],
                "dtmf": {"maxDigits": 1, "timeOut": 10},
                "eventUrl": [message.voice_continue_url],
                "eventMethod": "POST",
            },
        ]

    def continue_ncco(self, message: OutboundMessage) -> list[dict[str, Any]]:
        """What a DTMF-first call says after the key press: the script without its prompt."""
        return [self._talk(message, message.speech[1:])]

    def voice_request(self, request: ReceiptRequest) -> str | None:
        """The ``input`` action's event (a signed Voice webhook): the digits, or None on a timeout."""
        if not self._signature_secret:
            raise InvalidSignature("no signature secret configured: webhooks cannot be trusted")
        _check_jwt(request, self._signature_secret)
        dtmf = r.json_object(request.body).get("dtmf")
        if isinstance(dtmf, dict):
            digits = None if dtmf.get("timed_out") else dtmf.get("digits")
        else:
            digits = dtmf
        return str(digits) if digits else None

    def voice_answer(self, message: OutboundMessage | None) -> tuple[str, bytes]:
        # An empty NCCO ends the call.
        ncco = self.continue_ncco(message) if message is not None else []
        return "application/json", json.dumps(ncco).encode()

    def _talk(self, message: OutboundMessage, segments: tuple[str, ...]) -> dict[str, Any]:
        voice = templates.catalog(message.locale).voice
        ssml = "".join(f'{_ssml_escape(s)}<break time="1s"/>' for s in segments)
        return {
            "action": "talk",
            "text": f"<speak>{ssml}</speak>",
            "language": VOICE_LANGUAGES.get(voice, voice),
        }

    def _jwt(self) -> str:
        now = int(time.time())
        claims = {
            "application_id": self._application_id,
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._private_key or "", algorithm="RS256")

    def _client(self) -> httpx.Client:
        # One client per adapter: its TLS context and connection pool are built once.
        if self._http is None:
            self._http = httpx.Client(timeout=self._timeout, transport=self._transport)
        return self._http

    # -- receipts ----------------------------------------------------------------------------------

    def parse_receipt(self, request: ReceiptRequest) -> list[Receipt]:
        if not self._signature_secret:
            raise InvalidSignature("no signature secret configured: receipts cannot be trusted")
        if r.header(request.headers, "Authorization"):
            return self._call_event(request, self._signature_secret)
        return self._dlr(request, self._signature_secret)

    def _dlr(self, request: ReceiptRequest, secret: str) -> list[Receipt]:
        params = {**request.query, **request.form}
        if not params and request.body:
            params = {k: str(v) for k, v in r.json_object(request.body).items()}
        given = params.pop("sig", "")
        if not given or not r.same(given.lower(), sms_signature(secret, params)):
            raise InvalidSignature("sig does not match")
        try:
            stamp = int(params.get("timestamp", ""))
        except ValueError:
            raise InvalidSignature("no timestamp") from None
        if abs(time.time() - stamp) > SIGNATURE_TOLERANCE:
            raise InvalidSignature("timestamp outside the tolerance")
        message_id = params.get("messageId") or params.get("message-id")
        status = DLR_STATUSES.get(params.get("status", ""))
        if not message_id or status is None:
            return []
        error = params.get("err-code") or None
        reason = None
        if status in ("undelivered", "failed"):
            reason = DLR_ERRORS.get(error or "", r.UNKNOWN)
            if params.get("status") == "expired" and reason == r.UNKNOWN:
                reason = r.UNREACHABLE_DESTINATION
        raw = f"{params.get('status')}:{error}" if error and error != "0" else params.get("status")
        return [Receipt(message_id, status, reason=reason, raw_code=raw, at=_dlr_time(params))]

    def _call_event(self, request: ReceiptRequest, secret: str) -> list[Receipt]:
        _check_jwt(request, secret)
        event = r.json_object(request.body)
        call_id, status = event.get("uuid"), CALL_STATUSES.get(str(event.get("status", "")))
        if not isinstance(call_id, str) or status is None:
            return []
        reason = None
        if status == "undelivered":
            reason = r.UNREACHABLE_DESTINATION
        elif status == "failed":
            reason = r.UNKNOWN
        return [Receipt(call_id, status, reason=reason, raw_code=str(event.get("status")))]


def _check_jwt(request: ReceiptRequest, secret: str) -> None:
    """A Voice API webhook's signature: an HS256 JWT whose ``payload_hash`` is the body's SHA-256."""
    token = (r.header(request.headers, "Authorization") or "").removeprefix("Bearer ").strip()
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], leeway=SIGNATURE_TOLERANCE)
    except jwt.PyJWTError:
        raise InvalidSignature("the event's JWT does not verify") from None
    digest = hashlib.sha256(request.body).hexdigest()
    if not r.same(str(claims.get("payload_hash", "")), digest):
        raise InvalidSignature("payload_hash does not match the body")


def sms_signature(secret: str, params: Mapping[str, str]) -> str:
    """Vonage's signed-request digest (HMAC-SHA256 mode): ``&key=value`` for every parameter but
    ``sig``, sorted by key, with ``&`` and ``=`` in values replaced by ``_``; lowercase hex."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    for key in sorted(params):
        if key == "sig":
            continue
        value = params[key].replace("&", "_").replace("=", "_")
        mac.update(f"&{key}={value}".encode())
    return mac.hexdigest()


def _dlr_time(params: Mapping[str, str]) -> datetime | None:
    value = params.get("message-timestamp")
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _ssml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _invalid_to(payload: dict[str, Any]) -> bool:
    params = payload.get("invalid_parameters")
    return isinstance(params, list) and any(
        isinstance(p, dict) and str(p.get("name", "")).startswith("to") for p in params
    )


def _misconfigured(why: str) -> SendResult:
    return SendResult(Outcome.FAILOVER, reason=r.PROVIDER_MISCONFIGURED, raw_code=why)
