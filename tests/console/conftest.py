"""Fixtures for the console: a signed-in Flask test client, and a seeded story to look at."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import flask
import pytest
from werkzeug.test import TestResponse

from tests.conftest import ApiClient, Tenant
from verify import jobs
from verify.config import Settings
from verify.events.ssrf import parse_networks
from verify.events.webhooks import EndpointFields, WebhookService
from verify.runtime import Runtime

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


class Console:
    """The Flask test client as an operator's browser: cookies kept, CSRF token read from pages."""

    def __init__(self, app: flask.Flask, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.client = app.test_client()
        self.csrf = ""

    def login(self, token: str | None = None, **extra: str) -> TestResponse:
        page = self.client.get("/console/login")
        self.csrf = csrf_of(page.get_data(as_text=True))
        form = {"csrf_token": self.csrf, "token": token or self.settings.operator_token, **extra}
        response = self.client.post("/console/login", data=form)
        if response.status_code == 302:
            # Signing in starts a new session with a new token: read it from the next page.
            self.csrf = csrf_of(self.get("/console/verifications").get_data(as_text=True))
        return response

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, **kwargs)

    def html(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        return self.client.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)


@pytest.fixture
def console(app: flask.Flask, settings: Settings) -> Console:
    """Signed in."""
    c = Console(app, settings)
    assert c.login().status_code == 302
    return c


@pytest.fixture
def anonymous(app: flask.Flask, settings: Settings) -> Console:
    return Console(app, settings)


def start(api: ApiClient, to: str, channel: str = "sms") -> str:
    response = api.start(to, channel)
    assert response.status_code == 201, response.get_json()
    sid: str = response.get_json()["sid"]
    return sid


# -- a tenant's webhook receiver --------------------------------------------------------------------


@dataclass
class Receiver:
    """A tenant's webhook endpoint that answers ``status`` and records each webhook-id it took."""

    url: str = ""
    status: int = 500
    taken: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            wid = self.headers.get("webhook-id", "")
            (state.taken if state.status < 300 else state.refused).append(wid)
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/hooks"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def endpoint(runtime: Runtime, tenant: Tenant, receiver: Receiver) -> str:
    """A subscription to message.* events; one try per delivery, loopback allowed (the receiver)."""
    settings = runtime.settings
    runtime.settings = replace(
        settings,
        webhook_allow_networks=("127.0.0.0/8",),
        limits=replace(settings.limits, webhook_max_attempts=1),
    )
    with runtime.sessions() as session:
        hooks = WebhookService(
            session,
            clock=runtime.clock,
            sealer=runtime.sealer,
            allow=parse_networks(runtime.settings.webhook_allow_networks),
        )
        created = hooks.create(
            tenant.account_sid,
            tenant.service_sid,
            EndpointFields(friendly_name="Acme hooks", event_types=["message.*"], url=receiver.url),
        )
    return str(created.sid)


def deliver_everything(work: Callable[[], None]) -> None:
    """What running workers do: send messages, relay their events, send the webhooks."""
    for _ in range(3):
        work()
        jobs.relay()
    work()
