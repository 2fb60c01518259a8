"""The benchmark's stack: a private PostgreSQL cluster, redis-server, gunicorn servers for the app
and the ceilings, the tenant, the destinations it starts verifications for, and CPU accounting."""

from __future__ import annotations

import argparse
import base64
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import httpx  # noqa: E402
from ceiling_app import Base as CeilingBase  # noqa: E402
from loadgen import GeneratedBodies, ListBodies  # noqa: E402
from sqlalchemy import Engine, select  # noqa: E402

from tests import servers  # noqa: E402
from verify import migrate  # noqa: E402
from verify.config import Argon2Settings, Settings  # noqa: E402
from verify.db import make_engine, make_session_factory  # noqa: E402
from verify.domain.accounts import AccountService  # noqa: E402
from verify.domain.clock import SystemClock  # noqa: E402
from verify.domain.codes import CodeSealer  # noqa: E402
from verify.domain.destinations import parse_phone  # noqa: E402
from verify.domain.services import ServiceFields, ServiceRegistry  # noqa: E402
from verify.models import Verification  # noqa: E402

WRONG_CHECKS_PER_VERIFICATION = 4  # below the default cap of 5: every check compares a code


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class Argon2Params:
    time_cost: int
    memory_cost_kib: int
    parallelism: int = 1

    @classmethod
    def default(cls) -> Argon2Params:
        """The product's defaults (``Argon2Settings``)."""
        d = Argon2Settings()
        return cls(d.time_cost, d.memory_cost_kib, d.parallelism)

    @classmethod
    def parse(cls, spec: str) -> Argon2Params:
        parts = [int(p) for p in spec.split(":")]
        return cls(*parts)

    @property
    def label(self) -> str:
        return f"t={self.time_cost} m={self.memory_cost_kib} KiB p={self.parallelism}"

    @property
    def hash_prefix(self) -> str:
        return f"$argon2id$v=19$m={self.memory_cost_kib},t={self.time_cost},p={self.parallelism}$"

    def environ(self) -> dict[str, str]:
        return {
            "VERIFY_ARGON2_TIME_COST": str(self.time_cost),
            "VERIFY_ARGON2_MEMORY_COST_KIB": str(self.memory_cost_kib),
            "VERIFY_ARGON2_PARALLELISM": str(self.parallelism),
        }


# -- destinations ---------------------------------------------------------------------------------


def _area_codes() -> list[int]:
    """US area codes for which +1 NPA 555 XXXX parses as a valid, acceptable mobile/fixed number."""
    out = []
    for npa in range(201, 990):
        try:
            regions = {
                parse_phone(f"+1{npa}555{line}").country for line in ("0000", "0100", "9999")
            }
        except Exception:  # noqa: S112 - not a usable area code
            continue
        # Not Canada's or the Caribbean's (other countries, which a tenant's geo permissions
        # may refuse).
        if regions == {"US"}:
            out.append(npa)
    return out


# The rules of a bench tenant (Stack(lift_abuse_limits=True)): the defaults' types, with the
# largest thresholds a rule takes.
UNREACHABLE = 10_000_000
UNREACHABLE_RULES: tuple[tuple[str, dict[str, object]], ...] = (
    *(
        ("rate_limit", {"key": key, "max": UNREACHABLE, "interval": 60})
        for key in ("destination", "prefix", "country", "ip", "api_key", "account", "service")
    ),
    ("prefix_velocity", {"max": 1_000_000}),
    ("sequential_burst", {"max_numbers": 10_000}),
    ("ip_velocity", {"max_destinations": 100_000, "max_countries": 300}),
    ("conversion_rate", {"min_sample": 1_000_000}),
)


class Numbers:
    """Distinct phone numbers, never reused within a run (a second start would be a resend)."""

    def __init__(self) -> None:
        self.npas = _area_codes()

    def number(self, i: int) -> str:
        return f"+1{self.npas[i // 10_000]}555{i % 10_000:04d}"

    def start_bodies(self) -> GeneratedBodies:
        return GeneratedBodies(
            lambda i: f"To={quote(self.number(i))}&Channel=sms", len(self.npas) * 10_000
        )


# -- CPU accounting -------------------------------------------------------------------------------

_CLK = os.sysconf("SC_CLK_TCK")


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, cpu seconds) for every live process, with its exited children's (a
    PostgreSQL backend that ended with its connection is counted in the postmaster's)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime, stime, and cutime, cstime: the children it has waited for
        table[int(entry)] = (int(fields[1]), sum(int(v) for v in fields[11:15]) / _CLK)
    return table


def _tree_cpu(table: dict[int, tuple[int, float]], root: int | None) -> float:
    if root is None or root not in table:
        return 0.0
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += table[pid][1]
        stack.extend(children.get(pid, []))
    return total


def worker_cpu(root: int) -> dict[int, float]:
    """CPU seconds so far of each direct child of ``root`` (a gunicorn master's workers), with
    their own children, by pid."""
    table = _proc_table()
    return {pid: _tree_cpu(table, pid) for pid, (ppid, _) in table.items() if ppid == root}


class CpuMeter:
    """CPU seconds used by each part of the stack between two snapshots."""

    def __init__(self, roots: Callable[[], dict[str, int | None]]) -> None:
        self.roots = roots

    def snapshot(self) -> dict[str, float]:
        table = _proc_table()
        out = {name: _tree_cpu(table, pid) for name, pid in self.roots().items()}
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has exited
        out["client"] = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...: machine-wide, in seconds.
        out["_total"] = sum(ticks[:8]) / _CLK
        out["_idle"] = (ticks[3] + ticks[4]) / _CLK
        out["_steal"] = ticks[7] / _CLK
        return out

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {k: after[k] - before.get(k, 0.0) for k in after}


# -- the stack ------------------------------------------------------------------------------------


class Gunicorn:
    def __init__(
        self, name: str, app: str, env: dict[str, str], args: argparse.Namespace, workdir: Path
    ) -> None:
        self.name = name
        self.port = servers.free_port()
        self.log = workdir / f"{name}-gunicorn.log"
        cmd = [
            sys.executable, "-m", "gunicorn",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(args.workers),
            "--threads", str(args.threads),
            "--worker-class", "gthread",
            "--log-level", "warning",
            "--pythonpath", str(BENCH),
            app,
        ]  # fmt: skip
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, probe: Callable[[str], bool]) -> None:
        base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if probe(base):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"{self.name} server did not start; its log:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Tenant:
    account_sid: str
    auth_token: str
    service_sid: str

    @property
    def headers(self) -> dict[str, str]:
        basic = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}


class Stack:
    """PostgreSQL + redis-server + schema + tenant + the two gunicorn servers."""

    def __init__(
        self, args: argparse.Namespace, *, ceiling: bool = True, lift_abuse_limits: bool = False
    ) -> None:
        self.args = args
        self.with_ceiling = ceiling
        self.lift_abuse_limits = lift_abuse_limits
        self.workdir = Path(tempfile.mkdtemp(prefix="verify-bench-"))
        self.pg: servers.PostgresCluster | None = None
        self.redis: subprocess.Popen[bytes] | None = None
        self.engine: Engine | None = None
        self.app: Gunicorn | None = None
        self.ceiling: Gunicorn | None = None
        self.argon2: Argon2Params | None = None

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        bindir = servers.find_postgres()
        redis_binary = shutil.which("redis-server")
        if bindir is None or redis_binary is None:
            raise SystemExit("the benchmark needs PostgreSQL (initdb/pg_ctl) and redis-server")
        self.pg = servers.PostgresCluster(bindir, self.workdir)
        self.pg.start()
        (self.workdir / "redis").mkdir()
        self.redis, redis_url = servers.start_redis_server(redis_binary, self.workdir / "redis")
        self.settings = Settings.from_env(
            {
                "VERIFY_ENV": "production",
                "VERIFY_DATA_DIR": str(self.workdir / "data"),
                "VERIFY_DATABASE_URL": self.pg.url,
                "VERIFY_REDIS_URL": redis_url,
                "VERIFY_CODE_PEPPERS": _b64(secrets.token_bytes(32)),
                "VERIFY_CODE_KEYS": _b64(secrets.token_bytes(32)),
                "VERIFY_SECRET_KEY": _b64(secrets.token_bytes(32)),
                "VERIFY_OPERATOR_TOKEN": secrets.token_urlsafe(32),
                **(
                    {"VERIFY_GLOBAL_SENDS_PER_MINUTE": str(UNREACHABLE)}
                    if self.lift_abuse_limits
                    else {}
                ),
            }
        )
        self.sealer = CodeSealer(self.settings.code_keys)
        self.engine = make_engine(self.pg.url)
        migrate.upgrade(self.engine)
        CeilingBase.metadata.create_all(self.engine)
        clock = SystemClock()
        with make_session_factory(self.engine)() as session:
            account, token = AccountService(session, clock).create_account("Bench")
            service = ServiceRegistry(session, clock, self.sealer).create(
                account.sid, ServiceFields(friendly_name="Bench Login")
            )
        self.tenant = Tenant(account.sid, token, service.sid)
        if self.lift_abuse_limits:
            self._lift_abuse_limits()
        if not self.with_ceiling:
            return
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")}
        self.ceiling = Gunicorn(
            "ceiling",
            "ceiling_app:create_app()",
            {**base_env, "BENCH_DATABASE_URL": self.pg.url},
            self.args,
            self.workdir,
        )
        self.ceiling.wait_ready(lambda base: httpx.post(f"{base}/constant").status_code == 200)

    def _lift_abuse_limits(self) -> None:
        """A benchmark's traffic (thousands of sequential numbers of one exchange, from one
        address, never checked right) is exactly what the abuse controls exist to stop. The bench
        tenant keeps every control, so each start still pays for the rate-limit script and every
        rule with its counters, but its own rules replace the defaults with thresholds it cannot
        reach."""
        from verify import abuse
        from verify.abuse.registry import FraudRules, RuleFields
        from verify.runtime import build_runtime

        rt = build_runtime(self.settings)
        try:
            cache = abuse.controls_for(rt).cache
            with rt.sessions() as session:
                rules = FraudRules(session, rt.clock, cache, "bench")
                for type_, params in UNREACHABLE_RULES:
                    fields = RuleFields(type=type_, params=params)
                    rules.create(self.tenant.account_sid, fields)
        finally:
            rt.close()

    def start_app(self, argon2: Argon2Params) -> None:
        """(Re)start the Verify server with these argon2 parameters."""
        if self.app is not None:
            self.app.stop()
        env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")}
        env.update(self.settings.as_environ())
        env.update(argon2.environ())
        self.app = Gunicorn(
            "verify", "verify.app:create_app_from_env()", env, self.args, self.workdir
        )
        # Up, not "ready": /readyz also wants a worker, and the API benchmark runs none (sending is
        # never inside a request).
        self.app.wait_ready(lambda base: httpx.get(f"{base}/healthz").status_code == 200)
        self.argon2 = argon2

    def roots(self) -> dict[str, int | None]:
        pg_pid = None
        if self.pg is not None:
            pidfile = self.pg.dir / "data" / "postmaster.pid"
            if pidfile.exists():
                pg_pid = int(pidfile.read_text().split()[0])
        return {
            "app": self.app.pid if self.app else None,
            "ceiling": self.ceiling.pid if self.ceiling else None,
            "postgres": pg_pid,
            "redis": self.redis.pid if self.redis else None,
        }

    def close(self) -> None:
        for server in (self.app, self.ceiling):
            if server is not None:
                server.stop()
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(10)
        if self.engine is not None:
            self.engine.dispose()
        if self.pg is not None:
            self.pg.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- the check pool -----------------------------------------------------------------------

    def check_bodies(self, mode: str) -> ListBodies:
        """Check requests for every pending, never-checked verification made with the current argon2.

        ``wrong``: WRONG_CHECKS_PER_VERIFICATION wrong codes each, in passes over the whole pool (so
        two checks of one verification are never close together). ``right``: one right code each.
        The codes are known because the bench holds the sealing key (no worker or outbox needed).
        """
        assert self.engine is not None
        assert self.argon2 is not None
        query = (
            select(Verification.destination, Verification.sid, Verification.sealed_code)
            .where(
                Verification.service_sid == self.tenant.service_sid,
                Verification.status == "pending",
                Verification.check_attempts == 0,
                Verification.code_hash.startswith(self.argon2.hash_prefix),
            )
            .order_by(Verification.date_created)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        pool = []
        for destination, sid, sealed in rows:
            code = self.sealer.open(sid, sealed)
            wrong = f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"
            pool.append((quote(destination), code, wrong))
        if mode == "right":
            return ListBodies([f"To={to}&Code={code}" for to, code, _ in pool])
        return ListBodies(
            [
                f"To={to}&Code={wrong}"
                for _ in range(WRONG_CHECKS_PER_VERIFICATION)
                for to, _, wrong in pool
            ]
        )
