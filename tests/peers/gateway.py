"""A tenant's own gateway for the ``http`` provider: checks the Standard Webhooks signature with the
reference ``standardwebhooks`` package, records each message, answers as told, posts signed receipts."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.peers._server import Behaviour, HttpPeer, Recorded, Reply


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class GatewayPeer(HttpPeer):
    def __init__(self, secret: str | None = None) -> None:
        super().__init__()
        self.secret = secret or new_secret()
        self.messages: list[dict] = []  # verified payloads, oldest first
        self.message_ids: list[str] = []  # the ids we answered for accepted messages, oldest first
        self.rejected = 0  # requests whose signature did not verify

    def handle(self, request: Recorded) -> Reply:
        try:
            payload = Webhook(self.secret).verify(request.body, request.headers)
        except WebhookVerificationError:
            self.rejected += 1
            return Reply(401, {"error": "bad signature"})
        self.messages.append(payload)
        behaviour = self.behaviour_for(payload.get("to", ""))
        if behaviour.kind == "timeout":
            self.wait_out(behaviour)
        if behaviour.kind == "fail":
            headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after else {}
            return Reply(
                behaviour.status, {"reason": behaviour.code} if behaviour.code else {}, headers
            )
        message_id = "gw-" + secrets.token_hex(8)
        self.message_ids.append(message_id)
        callback = payload.get("status_callback")
        if callback and behaviour.receipts:
            self.later(lambda: self._post_all(callback, message_id, behaviour))
        return Reply(200, {"message_id": message_id})

    def _post_all(self, url: str, message_id: str, behaviour: Behaviour) -> None:
        for status in behaviour.receipts:
            reason = behaviour.error_code if status in ("undelivered", "failed") else None
            self.post_receipt(url, message_id, status, reason=reason)

    def post_receipt(
        self,
        url: str,
        message_id: str,
        status: str,
        *,
        reason: str | None = None,
        secret: str | None = None,
        timestamp: datetime | None = None,
        tamper: bool = False,
    ) -> httpx.Response:
        """POST one receipt ``{"message_id", "status", "reason"?}`` with Standard Webhooks headers."""
        data, headers = self.signed_receipt(
            message_id, status, reason=reason, secret=secret, timestamp=timestamp, tamper=tamper
        )
        response = httpx.post(url, content=data, headers=headers, timeout=5)
        self.receipt_responses.append(response.status_code)
        return response

    def signed_receipt(
        self,
        message_id: str,
        status: str,
        *,
        reason: str | None = None,
        secret: str | None = None,
        timestamp: datetime | None = None,
        tamper: bool = False,
    ) -> tuple[bytes, dict[str, str]]:
        """A receipt's body and signed headers, as the gateway would post them."""
        body = {"message_id": message_id, "status": status}
        if reason:
            body["reason"] = reason
        data = json.dumps(body)
        msg_id = "msg_" + secrets.token_hex(8)
        when = timestamp or datetime.now(UTC)
        signature = Webhook(secret or self.secret).sign(msg_id, when, data)
        if tamper:
            data = data.replace(status, "delivered")
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature,
        }
        return data.encode(), headers
