"""The development outbox kept in Redis for the ``console`` provider.

Entries are sealed with the code key, so Redis holds no readable code; ``GET /dev/outbox`` opens them
for the operator. The provider itself is ``verify.delivery.providers.console.ConsoleProvider``.
"""

from __future__ import annotations

import base64
import json
import sys
from datetime import datetime
from typing import Any, TextIO

import redis

from verify.delivery.providers.base import OutboundMessage
from verify.domain.clock import Clock, SystemClock
from verify.domain.codes import CodeSealer
from verify.runtime import Runtime

OUTBOX_KEY = "verify:dev:outbox"


class DevOutbox:
    def __init__(
        self,
        client: redis.Redis,
        sealer: CodeSealer,
        *,
        ttl: int,
        size: int,
        clock: Clock | None = None,
    ) -> None:
        self._redis = client
        self._sealer = sealer
        self._ttl = ttl
        self._size = size
        self._clock = clock or SystemClock()

    def append(self, message: OutboundMessage, at: datetime | None = None) -> None:
        """Keep what an operator needs to see the message as the person got it; text and HTML sealed."""
        at = at or self._clock.now()
        entry = {
            "to": message.to,
            "channel": message.channel,
            "locale": message.locale,
            "subject": message.subject,
            "verification_sid": message.verification_sid,
            "attempt_sid": message.attempt_sid,
            "date_created": at.isoformat().replace("+00:00", "Z"),
            "sealed_body": self._seal("body", message.attempt_sid, message.text),
        }
        if message.html is not None:
            entry["sealed_html"] = self._seal("html", message.attempt_sid, message.html)
        pipe = self._redis.pipeline()
        pipe.lpush(OUTBOX_KEY, json.dumps(entry))
        pipe.ltrim(OUTBOX_KEY, 0, self._size - 1)
        pipe.expire(OUTBOX_KEY, self._ttl)
        pipe.execute()

    def read(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first, ``body`` (the text) and ``html`` (email) opened."""
        out = []
        for raw in self._redis.lrange(OUTBOX_KEY, 0, limit - 1):
            entry = json.loads(raw)
            try:
                entry["body"] = self._open("body", entry["attempt_sid"], entry.pop("sealed_body"))
                if "sealed_html" in entry:
                    entry["html"] = self._open(
                        "html", entry["attempt_sid"], entry.pop("sealed_html")
                    )
            except LookupError:
                continue  # sealed with a key that has since been removed
            out.append(entry)
        return out

    def _seal(self, part: str, attempt_sid: str, text: str) -> str:
        return base64.b64encode(self._sealer.seal(_aad(part, attempt_sid), text)).decode()

    def _open(self, part: str, attempt_sid: str, sealed: str) -> str:
        return self._sealer.open(_aad(part, attempt_sid), base64.b64decode(sealed))


def outbox_for(rt: Runtime) -> DevOutbox:
    limits = rt.settings.limits
    return DevOutbox(
        rt.redis, rt.sealer, ttl=limits.dev_outbox_ttl, size=limits.dev_outbox_size, clock=rt.clock
    )


def _aad(part: str, attempt_sid: str) -> str:
    # The body keeps the AAD it always had, so entries written before HTML was kept still open.
    return f"outbox:{attempt_sid}" if part == "body" else f"outbox:{part}:{attempt_sid}"


def stdout() -> TextIO:
    return sys.stdout
