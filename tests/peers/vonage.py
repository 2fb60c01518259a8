"""A Vonage-speaking peer: the SMS API (``/sms/json``, per-message status codes), the Voice API
(``/v1/calls``, RS256 JWT checked against the application's public key), and signed DLRs / voice
events posted back to the callbacks."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from functools import cache

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.peers._server import Behaviour, HttpPeer, Recorded, Reply
from verify.delivery.providers.vonage import sms_signature

API_KEY = "peerkey1"
API_SECRET = "peer-api-secret"
APPLICATION_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
SIGNATURE_SECRET = "peer-signature-secret-" + "s" * 16


@cache
def keypair() -> tuple[str, str]:
    """(private PEM, public PEM) of the peer's Voice application, made once per test session."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


class VonagePeer(HttpPeer):
    def __init__(self, signature_secret: str = SIGNATURE_SECRET) -> None:
        super().__init__()
        self.api_key = API_KEY
        self.api_secret = API_SECRET
        self.application_id = APPLICATION_ID
        self.signature_secret = signature_secret
        self.private_key, self.public_key = keypair()

    def sends(self, path: str | None = None) -> list[Recorded]:
        return [
            r for r in self.requests if r.path in ((path,) if path else ("/sms/json", "/v1/calls"))
        ]

    def handle(self, request: Recorded) -> Reply:
        if request.method == "POST" and request.path == "/sms/json":
            return self._sms(request)
        if request.method == "POST" and request.path == "/v1/calls":
            return self._call(request)
        return Reply(404, {"type": "not-found", "title": "Not Found"})

    def _sms(self, request: Recorded) -> Reply:
        params = request.form or {k: str(v) for k, v in (request.json or {}).items()}
        if params.get("api_key") != self.api_key or params.get("api_secret") != self.api_secret:
            return _sms_status("4", "Bad Credentials")
        if not params.get("to") or not params.get("from") or not params.get("text"):
            return _sms_status("2", "Missing to, from or text")
        behaviour = self.behaviour_for("+" + params["to"])
        if behaviour.kind == "timeout":
            self.wait_out(behaviour)
        if behaviour.kind == "fail":
            if behaviour.status != 200:
                headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after else {}
                return Reply(behaviour.status, {"error": "failed"}, headers)
            return _sms_status(behaviour.code or "5", "failed")
        message_id = secrets.token_hex(8).upper()
        callback = params.get("callback")
        if callback and behaviour.receipts:
            self.later(
                lambda: [
                    self.post_dlr(
                        callback,
                        message_id,
                        s,
                        to=params["to"],
                        error_code=behaviour.error_code,
                        client_ref=params.get("client-ref"),
                    )
                    for s in behaviour.receipts
                ]
            )
        return Reply(
            200,
            {
                "message-count": "1",
                "messages": [
                    {
                        "to": params["to"],
                        "message-id": message_id,
                        "status": "0",
                        "remaining-balance": "10.0",
                        "message-price": "0.05",
                        "network": "23410",
                    }
                ],
            },
        )

    def _call(self, request: Recorded) -> Reply:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self.public_key, algorithms=["RS256"])
        except jwt.PyJWTError:
            return Reply(
                401,
                {
                    "type": "https://developer.nexmo.com/api-errors#unauthorized",
                    "title": "Unauthorized",
                },
            )
        if claims.get("application_id") != self.application_id:
            return Reply(
                401,
                {
                    "type": "https://developer.nexmo.com/api-errors#unauthorized",
                    "title": "Unauthorized",
                },
            )
        body = request.json or {}
        to = (body.get("to") or [{}])[0].get("number")
        if not to or not body.get("ncco") or not (body.get("from") or {}).get("number"):
            return Reply(
                400,
                {
                    "type": "bad-request",
                    "title": "Bad Request",
                    "invalid_parameters": [{"name": "to", "reason": "missing"}],
                },
            )
        behaviour = self.behaviour_for("+" + to)
        if behaviour.kind == "timeout":
            self.wait_out(behaviour)
        if behaviour.kind == "fail":
            return Reply(
                behaviour.status,
                {
                    "type": "error",
                    "title": "failed",
                    "invalid_parameters": [{"name": behaviour.code or "x"}],
                },
            )
        call_id = str(uuid.uuid4())
        event_url = (body.get("event_url") or [None])[0]
        if event_url and behaviour.receipts:
            self.later(
                lambda: [self.post_call_event(event_url, call_id, s) for s in behaviour.receipts]
            )
        return Reply(
            201,
            {
                "uuid": call_id,
                "status": "started",
                "direction": "outbound",
                "conversation_uuid": "CON-" + call_id,
            },
        )

    # -- receipts ---------------------------------------------------------------------------------

    def post_dlr(
        self,
        url: str,
        message_id: str,
        status: str,
        *,
        to: str = "14155550123",
        error_code: str | None = None,
        client_ref: str | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
        tamper: bool = False,
    ) -> httpx.Response:
        """POST one signed delivery receipt (form-encoded, HMAC-SHA256 ``sig``)."""
        params = dlr_params(
            message_id,
            status,
            to=to,
            error_code=error_code,
            client_ref=client_ref,
            api_key=self.api_key,
            timestamp=timestamp,
        )
        params["sig"] = sms_signature(secret or self.signature_secret, params)
        if tamper:
            params["status"] = "delivered"
        response = httpx.post(url, data=params, timeout=5)
        self.receipt_responses.append(response.status_code)
        return response

    def post_call_event(
        self,
        url: str,
        call_id: str,
        status: str,
        *,
        secret: str | None = None,
        tamper: bool = False,
    ) -> httpx.Response:
        """POST one Voice event, signed with a HS256 JWT that carries the body's hash."""
        body = call_event_body(call_id, status)
        token = jwt.encode(
            {
                "iat": int(time.time()),
                "jti": str(uuid.uuid4()),
                "iss": "Vonage",
                "payload_hash": hashlib.sha256(body).hexdigest(),
                "api_key": self.api_key,
                "application_id": self.application_id,
            },
            secret or self.signature_secret,
            algorithm="HS256",
        )
        if tamper:
            body = body.replace(status.encode(), b"completed")
        response = httpx.post(
            url,
            content=body,
            headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
            timeout=5,
        )
        self.receipt_responses.append(response.status_code)
        return response

    def input_event(
        self,
        url: str,
        call_id: str,
        digits: str | None = "1",
        *,
        secret: str | None = None,
    ) -> httpx.Response:
        """What Vonage posts to an ``input`` action's eventUrl: the DTMF result (``timed_out`` and
        no digits when nobody pressed a key), signed like every Voice webhook."""
        body = json.dumps(
            {
                "uuid": call_id,
                "conversation_uuid": "CON-" + call_id,
                "dtmf": {"digits": digits or "", "timed_out": digits is None},
                "timestamp": datetime.now(UTC).isoformat(),
            }
        ).encode()
        return httpx.post(
            url,
            content=body,
            headers={
                "Authorization": f"Bearer {self._event_jwt(body, secret)}",
                "content-type": "application/json",
            },
            timeout=5,
        )

    def _event_jwt(self, body: bytes, secret: str | None) -> str:
        return jwt.encode(
            {
                "iat": int(time.time()),
                "jti": str(uuid.uuid4()),
                "iss": "Vonage",
                "payload_hash": hashlib.sha256(body).hexdigest(),
                "api_key": self.api_key,
                "application_id": self.application_id,
            },
            secret or self.signature_secret,
            algorithm="HS256",
        )


def dlr_params(
    message_id: str,
    status: str,
    *,
    to: str = "14155550123",
    error_code: str | None = None,
    client_ref: str | None = None,
    api_key: str = API_KEY,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The parameters of a Vonage SMS delivery receipt, before ``sig``."""
    now = datetime.now(UTC)
    params = {
        "msisdn": to,
        "to": "VerifyPeer",
        "network-code": "23410",
        "messageId": message_id,
        "price": "0.05",
        "status": status,
        "scts": now.strftime("%y%m%d%H%M"),
        "err-code": error_code or "0",
        "api-key": api_key,
        "message-timestamp": now.strftime("%Y-%m-%d %H:%M:%S"),
        "timestamp": str(timestamp if timestamp is not None else int(time.time())),
        "nonce": str(uuid.uuid4()),
    }
    if client_ref:
        params["client-ref"] = client_ref
    return params


def call_event_body(call_id: str, status: str) -> bytes:
    return json.dumps(
        {
            "uuid": call_id,
            "conversation_uuid": "CON-" + call_id,
            "status": status,
            "direction": "outbound",
            "timestamp": datetime.now(UTC).isoformat(),
        }
    ).encode()


def _sms_status(status: str, text: str) -> Reply:
    return Reply(200, {"message-count": "1", "messages": [{"status": status, "error-text": text}]})


__all__ = ["Behaviour", "VonagePeer"]
