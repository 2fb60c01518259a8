"""The ``console`` provider: development delivery to stdout and to an outbox kept in Redis.

Outbox entries are sealed with the code key, so Redis holds no readable code; ``GET /dev/outbox``
opens them for the operator.
"""

from __future__ import annotations

import base64
import json
import sys
from datetime import datetime
from typing import Any, TextIO

import redis

from verify.delivery.messages import Message
from verify.domain.codes import CodeSealer
from verify.runtime import Runtime

OUTBOX_KEY = "verify:dev:outbox"


class DevOutbox:
    def __init__(self, client: redis.Redis, sealer: CodeSealer, *, ttl: int, size: int) -> None:
        self._redis = client
        self._sealer = sealer
        self._ttl = ttl
        self._size = size

    def append(self, message: Message, at: datetime) -> None:
        sealed = self._sealer.seal(_aad(message.attempt_sid), message.body)
        entry = {
            "to": message.to,
            "channel": message.channel,
            "verification_sid": message.verification_sid,
            "attempt_sid": message.attempt_sid,
            "date_created": at.isoformat().replace("+00:00", "Z"),
            "sealed_body": base64.b64encode(sealed).decode(),
        }
        pipe = self._redis.pipeline()
        pipe.lpush(OUTBOX_KEY, json.dumps(entry))
        pipe.ltrim(OUTBOX_KEY, 0, self._size - 1)
        pipe.expire(OUTBOX_KEY, self._ttl)
        pipe.execute()

    def read(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first, bodies opened."""
        out = []
        for raw in self._redis.lrange(OUTBOX_KEY, 0, limit - 1):
            entry = json.loads(raw)
            sealed = base64.b64decode(entry.pop("sealed_body"))
            try:
                entry["body"] = self._sealer.open(_aad(entry["attempt_sid"]), sealed)
            except LookupError:
                continue  # sealed with a key that has since been removed
            out.append(entry)
        return out


def outbox_for(rt: Runtime) -> DevOutbox:
    limits = rt.settings.limits
    return DevOutbox(rt.redis, rt.sealer, ttl=limits.dev_outbox_ttl, size=limits.dev_outbox_size)


def _aad(attempt_sid: str) -> str:
    return f"outbox:{attempt_sid}"


class ConsoleProvider:
    """Writes each message to a stream (the terminal is the handset) and to the dev outbox."""

    name = "console"

    def __init__(self, outbox: DevOutbox, stream: TextIO | None = None) -> None:
        self._outbox = outbox
        self._stream = stream

    def send(self, message: Message, at: datetime) -> None:
        self._outbox.append(message, at)
        if self._stream is not None:
            print(f"[console {message.channel} -> {message.to}] {message.body}", file=self._stream)
            self._stream.flush()


def stdout() -> TextIO:
    return sys.stdout
