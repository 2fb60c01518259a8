"""Idempotency-Key records in Redis (IETF draft semantics), scoped to the account.

same key + same request  -> the stored response, replayed
same key + other request -> 422          same key while the first is running -> 409
Responses that invite a retry (5xx, 409, 429) are not kept, so the retry runs for real.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import redis

from verify.errors import IdempotencyInFlight, IdempotencyKeyReused, InvalidParameter

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    content_type: str


def fingerprint(method: str, path: str, content_type: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), content_type.encode(), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


class IdempotencyStore:
    def __init__(self, client: redis.Redis, *, ttl: int, lock_ttl: int) -> None:
        self._redis = client
        self._ttl = ttl
        self._lock_ttl = lock_ttl

    @staticmethod
    def _key(account_sid: str, key: str) -> str:
        return f"verify:idem:{account_sid}:{hashlib.sha256(key.encode()).hexdigest()}"

    def begin(self, account_sid: str, key: str, fp: str) -> StoredResponse | None:
        """Claim ``key`` for this request; return a stored response to replay instead, if any."""
        if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
            raise InvalidParameter("Idempotency-Key", f"1-{MAX_KEY_LENGTH} printable characters")
        rkey = self._key(account_sid, key)
        claim = json.dumps({"state": "running", "fp": fp})
        if self._redis.set(rkey, claim, nx=True, ex=self._lock_ttl):
            return None
        raw = self._redis.get(rkey)
        if raw is None:  # expired between the two calls: try once more
            if self._redis.set(rkey, claim, nx=True, ex=self._lock_ttl):
                return None
            raise IdempotencyInFlight()
        record = json.loads(raw)
        if record["fp"] != fp:
            raise IdempotencyKeyReused()
        if record["state"] == "running":
            raise IdempotencyInFlight(retry_after=1)
        return StoredResponse(record["status"], record["body"].encode(), record["content_type"])

    def finish(self, account_sid: str, key: str, fp: str, response: StoredResponse) -> None:
        rkey = self._key(account_sid, key)
        if response.status >= 500 or response.status in (409, 429):
            self._redis.delete(rkey)
            return
        record = {
            "state": "done",
            "fp": fp,
            "status": response.status,
            "body": response.body.decode(),
            "content_type": response.content_type,
        }
        self._redis.set(rkey, json.dumps(record), ex=self._ttl)
