"""Helpers for the client's unit tests: a VerifyClient over httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from verify.client import VerifyClient

BASE = "http://verify.test"
Handler = Callable[[httpx.Request], httpx.Response]


def problem(code: int, status: int, message: str = "nope", **extra: Any) -> httpx.Response:
    """An error answer shaped like the server's (application/problem+json)."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"{BASE}/errors/{code}",
        "status": status,
        "detail": message,
        **extra,
    }
    headers = {"Content-Type": "application/problem+json"}
    if status == 429:
        headers["Retry-After"] = "42"
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


class Recorder:
    """A MockTransport handler that answers from a script and keeps every request it saw."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):  # a copy: the same answer may be given again
            return httpx.Response(
                answer.status_code, headers=answer.headers, content=answer.content
            )
        return answer(request)

    def client(self, **kwargs: Any) -> VerifyClient:
        kwargs.setdefault("backoff_base", 0.0)
        return VerifyClient(BASE, "AC1", "token", transport=httpx.MockTransport(self), **kwargs)
