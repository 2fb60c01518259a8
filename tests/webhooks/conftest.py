"""Webhook fixtures: a real HTTP receiver on loopback (allowlisted), settings with short backoff, and a
helper that does what running workers do (send messages, relay events, send webhooks)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Backend, make_settings
from verify import jobs
from verify.config import Settings


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    """A tenant's endpoint. ``answer`` decides each status (default 204); every request is kept."""

    host: str = "127.0.0.1"
    url: str = ""
    answer: Callable[[Request], int] = lambda _: 204
    extra_headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> list[Request]:
        return [r for r in self.requests if 200 <= r.answered < 300]


def start_receiver(host: str = "127.0.0.1") -> tuple[Receiver, Callable[[], None]]:
    state = Receiver(host=host)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            try:
                if state.delay:
                    threading.Event().wait(state.delay)
                request = Request(self.path, dict(self.headers.items()), body, 0)
                request.answered = state.answer(request)
                with state.lock:
                    state.requests.append(request)
            finally:
                with state.lock:
                    state.in_flight -= 1
            self.send_response(request.answered)
            for name, value in state.extra_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://{host}:{server.server_port}/hooks"

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return state, stop


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state, stop = start_receiver()
    yield state
    stop()


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> Settings:
    """Loopback 127.0.0.1 allowed (the receiver), three tries per delivery, backoff of 1-4 s."""
    base = make_settings(backend.database_url, backend.redis_url, tmp_path)
    return replace(
        base,
        webhook_allow_networks=("127.0.0.1/32",),
        limits=replace(
            base.limits,
            webhook_max_attempts=3,
            webhook_backoff_base=1,
            webhook_backoff_cap=4,
            webhook_timeout=2,
        ),
    )


@pytest.fixture
def pump(work: Callable[[], None]) -> Callable[[], Any]:
    """What running workers do, until nothing is left: deliver, relay, send webhooks."""

    def run() -> None:
        for _ in range(8):
            work()
            passed = jobs.relay()
            if not passed["events"] and not passed["enqueued"]:
                return
        raise AssertionError("the relay never came to rest")

    return run
