"""The ``twilio`` provider: SMS and WhatsApp through Twilio's Messages API, calls through its Calls API
with inline TwiML, receipts from ``StatusCallback`` posts signed with ``X-Twilio-Signature``.

Twilio answers errors with its own numeric codes (``{"code": 21211, ...}``); those decide the outcome
where they say more than the HTTP status does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit
from xml.sax.saxutils import escape, quoteattr

import httpx

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

DEFAULT_BASE_URL = "https://api.twilio.com"

# Twilio error code -> (outcome, reason). Codes not listed fall back to the HTTP status.
ERRORS: dict[int, tuple[Outcome, str]] = {
    20003: (Outcome.FAILOVER, r.PROVIDER_AUTH_FAILED),
    20005: (Outcome.FAILOVER, r.PROVIDER_MISCONFIGURED),  # account not active
    20404: (Outcome.FAILOVER, r.PROVIDER_MISCONFIGURED),  # wrong account sid
    20429: (Outcome.RETRY, r.PROVIDER_RATE_LIMITED),
    21211: (Outcome.PERMANENT, r.INVALID_DESTINATION),  # invalid 'To' number
    21217: (Outcome.PERMANENT, r.INVALID_DESTINATION),  # voice: not a valid phone number
    13224: (Outcome.PERMANENT, r.INVALID_DESTINATION),  # voice: invalid number
    21614: (Outcome.PERMANENT, r.UNREACHABLE_DESTINATION),  # 'To' is not a mobile number
    21610: (Outcome.PERMANENT, r.RECIPIENT_OPTED_OUT),  # the person replied STOP
    21612: (Outcome.FAILOVER, r.UNREACHABLE_DESTINATION),  # not reachable from this sender
    21408: (Outcome.FAILOVER, r.BLOCKED_BY_PROVIDER),  # geo permission for the region is off
    21215: (Outcome.FAILOVER, r.BLOCKED_BY_PROVIDER),  # voice geo permission
    21216: (Outcome.FAILOVER, r.BLOCKED_BY_PROVIDER),  # account not allowed to call the number
    21608: (Outcome.FAILOVER, r.BLOCKED_BY_PROVIDER),  # trial account, unverified number
    21611: (Outcome.RETRY, r.PROVIDER_RATE_LIMITED),  # sender's queue is full
    21212: (Outcome.FAILOVER, r.PROVIDER_MISCONFIGURED),  # invalid 'From'
    21606: (Outcome.FAILOVER, r.PROVIDER_MISCONFIGURED),  # 'From' cannot send SMS
    21659: (Outcome.FAILOVER, r.PROVIDER_MISCONFIGURED),  # 'From' is not a Twilio number
    21603: (Outcome.FAILOVER, r.PROVIDER_MISCONFIGURED),  # 'From' missing
    63007: (Outcome.FAILOVER, r.PROVIDER_MISCONFIGURED),  # WhatsApp sender not found
    63016: (Outcome.FAILOVER, r.PROVIDER_MISCONFIGURED),  # WhatsApp needs an approved template
    63003: (Outcome.PERMANENT, r.UNREACHABLE_DESTINATION),  # not a WhatsApp user
}

# ErrorCode on an undelivered/failed receipt -> reason.
RECEIPT_ERRORS: dict[str, str] = {
    "30001": r.PROVIDER_RATE_LIMITED,
    "30002": r.PROVIDER_MISCONFIGURED,
    "30003": r.UNREACHABLE_DESTINATION,
    "30004": r.BLOCKED_BY_PROVIDER,
    "30005": r.INVALID_DESTINATION,
    "30006": r.UNREACHABLE_DESTINATION,
    "30007": r.BLOCKED_BY_PROVIDER,
    "30008": r.UNKNOWN,
    "30010": r.PROVIDER_MISCONFIGURED,
    "30034": r.BLOCKED_BY_PROVIDER,
    "21610": r.RECIPIENT_OPTED_OUT,
    "21211": r.INVALID_DESTINATION,
    "21614": r.UNREACHABLE_DESTINATION,
    "63003": r.UNREACHABLE_DESTINATION,
    "63024": r.UNREACHABLE_DESTINATION,
}

MESSAGE_STATUSES = {
    "queued": "queued",
    "accepted": "queued",
    "scheduled": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
}

CALL_STATUSES = {
    "queued": "queued",
    "initiated": "queued",
    "ringing": "sending",
    "in-progress": "sent",
    "completed": "delivered",  # answered and played through
    "busy": "undelivered",
    "no-answer": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}


class TwilioProvider:
    type: ClassVar[str] = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        whatsapp_from: str | None = None,
        voice_from: str | None = None,
        voice: str | None = None,
        whatsapp_content_sid: str | None = None,
        whatsapp_content_sids: Mapping[str, str] | None = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._sid = account_sid
        self._token = auth_token
        self._from = from_number
        self._service = messaging_service_sid
        self._whatsapp_from = whatsapp_from or from_number
        self._voice_from = voice_from or from_number
        self._voice = voice
        self._content_sid = whatsapp_content_sid
        self._content_sids = dict(whatsapp_content_sids or {})
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._transport = transport
        self._http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        # One client per adapter (the pipeline keeps one adapter per provider and process): its
        # TLS context and connection pool are built once, not per message.
        if self._http is None:
            self._http = httpx.Client(timeout=self._timeout, transport=self._transport)
        return self._http

    # -- sending -----------------------------------------------------------------------------------

    def send(self, message: OutboundMessage) -> SendResult:
        if message.channel == "sms":
            if self._service:
                sender = {"MessagingServiceSid": self._service}
            elif self._from:
                sender = {"From": self._from}
            else:
                return _misconfigured("no From or MessagingServiceSid")
            form = {"To": message.to, "Body": message.text, **sender}
            return self._post("Messages.json", form, message)
        if message.channel == "whatsapp":
            if not self._whatsapp_from:
                return _misconfigured("no WhatsApp sender")
            form = {"To": _whatsapp(message.to), "From": _whatsapp(self._whatsapp_from)}
            content_sid = self._content_sids.get(message.locale, self._content_sid)
            if content_sid:
                # An authentication template: WhatsApp sets its words (in the template's language)
                # and the copy-code button; its one variable is the code.
                form["ContentSid"] = content_sid
                form["ContentVariables"] = json.dumps({"1": message.code})
            else:
                form["Body"] = message.text  # a session message: only inside the 24-hour window
            return self._post("Messages.json", form, message)
        if message.channel == "call":
            if not self._voice_from:
                return _misconfigured("no voice From number")
            if message.dtmf_required and not message.voice_continue_url:
                return _misconfigured("a DTMF-first call needs a voice_continue_url")
            form = {"To": message.to, "From": self._voice_from, "Twiml": self.twiml(message)}
            return self._post("Calls.json", form, message)
        return SendResult(Outcome.PERMANENT, reason=r.UNSUPPORTED_CHANNEL, raw_code=message.channel)

    def twiml(self, message: OutboundMessage) -> str:
        """The call's script. DTMF-first: the prompt inside a one-key <Gather> whose action serves the
        rest (``continue_twiml``); silence hangs up, so a voicemail never hears the code."""
        if not message.dtmf_required:
            return _document(self._says(message, message.speech))
        prompt = self._says(message, message.speech[:1])
        gather = (
            f'<Gather input="dtmf" numDigits="1" timeout="10" method="POST" '
            f"action={quoteattr(message.voice_continue_url or '')}>{prompt}</Gather>"
        )
        return _document(gather + "<Hangup/>")

    def continue_twiml(self, message: OutboundMessage) -> str:
        """What a DTMF-first call says after the key press: the script without its prompt."""
        return _document(self._says(message, message.speech[1:]))

    def voice_request(self, request: ReceiptRequest) -> str | None:
        """The <Gather> action's request: signed like a status callback; ``Digits`` is the key."""
        self._check_signature(request)
        return request.form.get("Digits") or None

    def voice_answer(self, message: OutboundMessage | None) -> tuple[str, bytes]:
        body = self.continue_twiml(message) if message is not None else _document("<Hangup/>")
        return "application/xml", body.encode()

    def _says(self, message: OutboundMessage, segments: tuple[str, ...]) -> str:
        attrs = f" language={quoteattr(templates.catalog(message.locale).voice)}"
        if self._voice:
            attrs += f" voice={quoteattr(self._voice)}"
        return "".join(f'<Say{attrs}>{escape(s)}</Say><Pause length="1"/>' for s in segments)

    def _post(self, resource: str, form: dict[str, str], message: OutboundMessage) -> SendResult:
        if message.status_callback:
            form["StatusCallback"] = message.status_callback
        url = f"{self._base}/2010-04-01/Accounts/{self._sid}/{resource}"
        try:
            response = self._client().post(url, data=form, auth=(self._sid, self._token))
        except httpx.HTTPError as exc:
            return r.transport_failure(exc)
        body = r.json_object(response.content)
        if response.is_success and isinstance(body.get("sid"), str):
            return SendResult(Outcome.ACCEPTED, provider_message_id=body["sid"])
        code = body.get("code")
        if isinstance(code, int) and code in ERRORS:
            outcome, reason = ERRORS[code]
            retry_after = r.retry_after(response.headers) if outcome is Outcome.RETRY else None
            return SendResult(outcome, reason=reason, raw_code=str(code), retry_after=retry_after)
        return r.by_status(response, str(code) if code is not None else None)

    # -- receipts ----------------------------------------------------------------------------------

    def _check_signature(self, request: ReceiptRequest) -> None:
        signature = r.header(request.headers, "X-Twilio-Signature")
        if not signature or not any(
            r.same(signature, twilio_signature(self._token, url, request.form))
            for url in _url_variants(request.url)
        ):
            raise InvalidSignature("X-Twilio-Signature does not match")

    def parse_receipt(self, request: ReceiptRequest) -> list[Receipt]:
        self._check_signature(request)
        form = request.form
        if "CallSid" in form and "MessageSid" not in form:
            sid, status, call = form["CallSid"], form.get("CallStatus", ""), True
        else:
            sid = form.get("MessageSid") or form.get("SmsSid") or ""
            status, call = form.get("MessageStatus") or form.get("SmsStatus") or "", False
        receipt = _receipt(
            sid, status, call, form.get("ErrorCode"), _timestamp(form.get("Timestamp"))
        )
        return [receipt] if receipt is not None else []

    def fetch_receipt(self, provider_message_id: str, channel: str) -> Receipt | None:
        """The message's (or call's) resource: where it stands now, as its receipt would say."""
        call = channel == "call"
        resource = "Calls" if call else "Messages"
        url = f"{self._base}/2010-04-01/Accounts/{self._sid}/{resource}/{provider_message_id}.json"
        try:
            response = self._client().get(url, auth=(self._sid, self._token))
        except httpx.HTTPError:
            return None
        body = r.json_object(response.content)
        if not response.is_success or body.get("sid") != provider_message_id:
            return None
        error = body.get("error_code")
        return _receipt(
            provider_message_id,
            str(body.get("status") or ""),
            call,
            str(error) if error is not None else None,
            _timestamp(body.get("date_updated")),
        )


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's request signature: HMAC-SHA1 over the URL and the sorted POST parameters, base64."""
    payload = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> list[str]:
    """The URL as received, and with the default port added or removed: Twilio signs the URL it
    called, and a proxy in between may have changed how the port is written."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a Host header no URL can hold: nothing to vary
        return [url]
    default = {"https": 443, "http": 80}.get(parts.scheme)
    variants = [url]
    host = parts.hostname or ""
    if port is None and default:
        variants.append(urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}")))
    elif port == default:
        netloc = parts.netloc.rsplit(":", 1)[0]
        variants.append(urlunsplit(parts._replace(netloc=netloc or host)))
    return variants


def _receipt(
    sid: str, twilio_status: str, call: bool, error: str | None, at: datetime | None
) -> Receipt | None:
    """A message's or call's status in Twilio's words as our receipt; None for a status we do not
    track (receiving, or one Twilio adds later)."""
    status = (CALL_STATUSES if call else MESSAGE_STATUSES).get(twilio_status)
    if not sid or status is None:
        return None
    error = error or None
    reason = None
    if status in ("undelivered", "failed"):
        reason = RECEIPT_ERRORS.get(error or "", r.UNKNOWN)
        if error is None and call and twilio_status in ("busy", "no-answer"):
            reason = r.UNREACHABLE_DESTINATION
    return Receipt(sid, status, reason=reason, raw_code=error or twilio_status, at=at)


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _document(inner: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'


def _whatsapp(number: str) -> str:
    return number if number.startswith("whatsapp:") else f"whatsapp:{number}"


def _misconfigured(why: str) -> SendResult:
    return SendResult(Outcome.FAILOVER, reason=r.PROVIDER_MISCONFIGURED, raw_code=why)
