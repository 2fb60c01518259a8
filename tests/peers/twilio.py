"""A Twilio-speaking peer: the Messages and Calls APIs (Basic auth, form bodies, Twilio's error JSON)
and status callbacks signed with ``X-Twilio-Signature``."""

from __future__ import annotations

import base64
import json
import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx

from tests.peers._server import Behaviour, HttpPeer, Recorded, Reply
from verify.delivery.providers.twilio import twilio_signature

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "peer-auth-token-" + "x" * 16
_RESOURCE = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/(?P<kind>Messages|Calls)\.json$")
_INSTANCE = re.compile(
    r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/(?P<kind>Messages|Calls)/(?P<id>[^/]+)\.json$"
)


class TwilioPeer(HttpPeer):
    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        # message or call sid -> (its status in Twilio's words, its error code): what a GET shows
        self.statuses: dict[str, tuple[str, str | None]] = {}

    def sends(self, kind: str | None = None) -> list[Recorded]:
        """The send requests that reached the API (Messages or Calls), oldest first."""
        return [
            r for r in self.requests if (m := _RESOURCE.match(r.path)) and kind in (None, m["kind"])
        ]

    def handle(self, request: Recorded) -> Reply:
        if request.method == "GET" and (found := _INSTANCE.match(request.path)):
            return self._fetch(request, found)
        match = _RESOURCE.match(request.path)
        if request.method != "POST" or match is None:
            return _error(404, 20404, "The requested resource was not found")
        if not self._authorized(request) or match["sid"] != self.account_sid:
            return _error(401, 20003, "Authenticate")
        form = request.form
        if match["kind"] == "Messages":
            if form.get("ContentSid") and not _variables(form.get("ContentVariables")):
                return _error(400, 21656, "The ContentVariables Parameter is invalid")
            missing = _missing(form, "To") or (
                None if form.get("Body") or form.get("ContentSid") else "Body"
            )
            if missing == "Body":
                return _error(400, 21602, "Message body is required")
            missing = missing or (
                None if form.get("From") or form.get("MessagingServiceSid") else "From"
            )
        else:
            missing = _missing(form, "To", "From") or (
                None if form.get("Twiml") or form.get("Url") else "Url"
            )
        if missing:
            return _error(400, 21604 if missing == "To" else 21603, f"A '{missing}' is required")
        to = form["To"].removeprefix("whatsapp:")
        behaviour = self.behaviour_for(to)
        if behaviour.kind == "timeout":
            self.wait_out(behaviour)
        if behaviour.kind == "fail":
            headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after else {}
            return _error(behaviour.status, int(behaviour.code or 0) or None, "failed", headers)
        prefix = "SM" if match["kind"] == "Messages" else "CA"
        sid = prefix + secrets.token_hex(16)
        final = behaviour.receipts[-1] if behaviour.receipts else "queued"
        self.statuses[sid] = (final, behaviour.error_code if final in _FAILED else None)
        callback = form.get("StatusCallback")
        if callback and behaviour.receipts and not behaviour.receipts_lost:
            self.later(lambda: self._post_all(callback, sid, match["kind"], form, behaviour))
        return Reply(
            201, {"sid": sid, "status": "queued", "to": form["To"], "account_sid": self.account_sid}
        )

    def _fetch(self, request: Recorded, match: re.Match[str]) -> Reply:
        """GET a message or call: its sid, status and error code, as Twilio's resource shows them."""
        if not self._authorized(request) or match["sid"] != self.account_sid:
            return _error(401, 20003, "Authenticate")
        found = self.statuses.get(match["id"])
        if found is None:
            return _error(404, 20404, "The requested resource was not found")
        status, error = found
        return Reply(
            200,
            {
                "sid": match["id"],
                "account_sid": self.account_sid,
                "status": status,
                "error_code": int(error) if error else None,
                "date_updated": format_datetime(datetime.now(UTC)),
            },
        )

    def _authorized(self, request: Recorded) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    def _post_all(
        self, url: str, sid: str, kind: str, form: dict[str, str], behaviour: Behaviour
    ) -> None:
        for status in behaviour.receipts:
            error = behaviour.error_code if status in _FAILED else None
            self.post_receipt(
                url, sid, status, error_code=error, call=kind == "Calls", to=form["To"]
            )

    def post_receipt(
        self,
        url: str,
        sid: str,
        status: str,
        *,
        error_code: str | None = None,
        call: bool = False,
        to: str = "+14155550123",
        token: str | None = None,
        tamper: bool = False,
    ) -> httpx.Response:
        """POST one status callback to ``url``, signed with ``token`` (default: the auth token)."""
        params = receipt_params(
            sid, status, error_code=error_code, call=call, to=to, account_sid=self.account_sid
        )
        signature = twilio_signature(token or self.auth_token, url, params)
        if tamper:
            params = {**params, ("CallStatus" if call else "MessageStatus"): "delivered"}
        response = httpx.post(
            url, data=params, headers={"X-Twilio-Signature": signature}, timeout=5
        )
        self.receipt_responses.append(response.status_code)
        return response

    def gather(
        self,
        url: str,
        call_sid: str,
        digits: str | None = "1",
        *,
        token: str | None = None,
    ) -> httpx.Response:
        """What Twilio does when a <Gather> ends: POST its ``action`` with the keys pressed (none on
        a timeout, when Twilio goes on to the verbs after the Gather instead)."""
        params = {
            "CallSid": call_sid,
            "AccountSid": self.account_sid,
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            "ApiVersion": "2010-04-01",
        }
        if digits is not None:
            params.update({"Digits": digits, "FinishedOnKey": ""})
        signature = twilio_signature(token or self.auth_token, url, params)
        return httpx.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=5)


def receipt_params(
    sid: str,
    status: str,
    *,
    error_code: str | None = None,
    call: bool = False,
    to: str = "+14155550123",
    account_sid: str = ACCOUNT_SID,
) -> dict[str, str]:
    """The form Twilio posts to a StatusCallback."""
    if call:
        params = {"CallSid": sid, "CallStatus": status, "To": to, "Direction": "outbound-api"}
    else:
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": to,
        }
    params.update({"AccountSid": account_sid, "ApiVersion": "2010-04-01"})
    if error_code:
        params["ErrorCode"] = error_code
    return params


_FAILED = ("undelivered", "failed", "busy", "no-answer")


def _variables(raw: str | None) -> bool:
    """ContentVariables as Twilio takes them: a JSON object of strings."""
    try:
        value = json.loads(raw or "")
    except ValueError:
        return False
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _missing(form: dict[str, str], *names: str) -> str | None:
    return next((n for n in names if not form.get(n)), None)


def _error(
    status: int, code: int | None, message: str, headers: dict[str, str] | None = None
) -> Reply:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Reply(status, body, headers or {})
