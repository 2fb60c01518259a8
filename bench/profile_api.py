"""Where a start and a check spend their time: the real app in-process, one thread, no HTTP server.

    .venv/bin/python bench/profile_api.py [--requests 300] [--cprofile] [--top 30]

Same stack as bench_api.py (private PostgreSQL cluster, redis-server, production settings, one
tenant), but requests go through Flask's test client in this process, one at a time. For the
one-row-insert ceiling (bench/ceiling_app.py), start and check (wrong code) it prints, per request:
wall ms, CPU ms of this process (unprofiled), SQL statements, connection checkouts (each one costs a
pre-ping ``SELECT 1`` round trip: verify.db.make_engine sets pool_pre_ping), transactions, and Redis
commands.

Then ablations: the same requests with one piece of work removed by patching *this process only*
(nothing in verify/ is changed), so that the saving of each candidate change is measured rather
than guessed. The patched runs are not correct behaviour (e.g. the response lists no send attempts);
they only price the work.

--cprofile adds a cProfile taken with a CPU clock (time.thread_time: waiting on PostgreSQL or
Redis is not counted), grouped by area. cProfile's own overhead inflates Python-heavy areas
(SQLAlchemy) relative to C ones (argon2, psycopg's C parts): read it for shape, and the unprofiled
and ablation figures for size.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from unittest import mock

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import bench_api  # noqa: E402
import ceiling_app  # noqa: E402
import redis  # noqa: E402
from loadgen import Bodies, ConstantBodies  # noqa: E402
from sqlalchemy import Engine, event  # noqa: E402
from stack import Argon2Params, Numbers, Stack  # noqa: E402

from verify.app import create_app  # noqa: E402
from verify.config import Argon2Settings  # noqa: E402
from verify.delivery.queue import RQDispatcher  # noqa: E402
from verify.domain.accounts import AccountService, Principal  # noqa: E402
from verify.domain.checks import CheckService  # noqa: E402
from verify.domain.codes import CodeHasher  # noqa: E402
from verify.domain.verifications import VerificationService  # noqa: E402
from verify.runtime import Runtime, build_runtime  # noqa: E402

FORM = "application/x-www-form-urlencoded"

# Substrings of "file:function" -> area; the first match wins.
AREAS = [
    ("argon2", "argon2 (hash/verify)"),
    ("psycopg", "psycopg (driver)"),
    ("/sqlalchemy/", "SQLAlchemy"),
    ("/phonenumbers/", "phonenumbers"),
    ("/marshmallow/", "marshmallow"),
    ("/flask_smorest/", "flask-smorest/webargs/apispec"),
    ("/webargs/", "flask-smorest/webargs/apispec"),
    ("/apispec/", "flask-smorest/webargs/apispec"),
    ("/rq/", "RQ"),
    ("/redis/", "redis-py"),
    ("/werkzeug/", "werkzeug"),
    ("/flask/", "flask"),
    ("/cryptography/", "cryptography (AES-GCM)"),
    ("/verify/", "verify (own code)"),
    ("/json/", "json"),
    ("socket", "socket calls"),
]


class Counters:
    def __init__(self, engine: Engine, client: redis.Redis) -> None:
        self.redis = client
        self.counts = {"statements": 0, "checkouts": 0, "transactions": 0}
        event.listen(engine, "before_cursor_execute", self._bump("statements"))
        event.listen(engine, "checkout", self._bump("checkouts"))
        event.listen(engine, "commit", self._bump("transactions"))
        event.listen(engine, "rollback", self._bump("transactions"))

    def _bump(self, key: str) -> Callable[..., None]:
        def bump(*_: object) -> None:
            self.counts[key] += 1

        return bump

    def snapshot(self) -> dict[str, int]:
        info = self.redis.info("stats")
        return {**self.counts, "redis cmds": int(info["total_commands_processed"])}


def area_summary(stats: pstats.Stats, n: int) -> None:
    areas: dict[str, float] = {}
    total = 0.0
    for (filename, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        key = f"{filename}:{name}"
        area = next((label for sub, label in AREAS if sub in key), "other (stdlib, builtins)")
        areas[area] = areas.get(area, 0.0) + tt
        total += tt
    print(f"    {'area (own CPU time, profiled)':<34} {'ms/request':>10} {'share':>7}")
    for area, tt in sorted(areas.items(), key=lambda kv: -kv[1]):
        print(f"    {area:<34} {tt * 1000 / n:>10.3f} {tt / total:>7.1%}")


def _block(
    post: Callable[[str], int], bodies: Bodies, n: int, statuses: dict[int, int]
) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        status = post(str(bodies.next()))
        statuses[status] = statuses.get(status, 0) + 1
    return time.perf_counter() - t0, time.process_time() - c0


def _line(
    label: str,
    wall: float,
    cpu: float,
    saving: str,
    per: dict[str, float],
    statuses: dict[int, int],
) -> None:
    codes = ",".join(f"{k}x{v}" for k, v in sorted(statuses.items()))
    print(
        f"  {label:<34} {wall:>7.2f} {cpu:>7.2f} {saving:>7}  "
        + " ".join(f"{v:>5.1f}" for v in per.values())
        + f"   {codes}",
        flush=True,
    )


def measure(
    label: str, post: Callable[[str], int], bodies: Bodies, n: int, counters: Counters
) -> None:
    """n requests: wall and CPU ms per request, and what each request did."""
    for _ in range(20):  # warm caches and the pool outside the measurement
        post(str(bodies.next()))
    statuses: dict[int, int] = {}
    before = counters.snapshot()
    wall, cpu = _block(post, bodies, n, statuses)
    after = counters.snapshot()
    per = {k: (after[k] - before[k]) / n for k in after}
    per["redis cmds"] -= 1 / n  # the INFO of the snapshot itself
    _line(label, wall * 1000 / n, cpu * 1000 / n, "", per, statuses)


def compare(
    label: str,
    post: Callable[[str], int],
    bodies: Bodies,
    n: int,
    counters: Counters,
    variant: Callable[[], contextlib.AbstractContextManager[None]],
    rounds: int = 6,
) -> None:
    """The variant against the unpatched app, interleaved in blocks (the machine drifts)."""
    block = max(1, n // rounds)
    base = [0.0, 0.0]
    var = [0.0, 0.0]
    statuses: dict[int, int] = {}
    counts = {k: 0.0 for k in counters.snapshot()}
    for _ in range(rounds):
        w, c = _block(post, bodies, block, {})
        base[0] += w
        base[1] += c
        with variant():
            before = counters.snapshot()
            w, c = _block(post, bodies, block, statuses)
            after = counters.snapshot()
        var[0] += w
        var[1] += c
        for k in counts:
            counts[k] += after[k] - before[k]
    total = block * rounds
    per = {k: v / total for k, v in counts.items()}
    per["redis cmds"] -= 1 / block  # the INFO of the snapshot itself
    saving = f"{1 - var[1] / base[1]:+.0%}"
    _line(label, var[0] * 1000 / total, var[1] * 1000 / total, saving, per, statuses)


def cprofile(post: Callable[[str], int], bodies: Bodies, n: int, top: int) -> None:
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    for _ in range(n):
        post(str(bodies.next()))
    profiler.disable()
    stats = pstats.Stats(profiler)
    area_summary(stats, n)
    if top:
        stats.sort_stats("tottime").print_stats(top)


def ablations(runtime: Runtime) -> dict[str, Callable[[], contextlib.AbstractContextManager[None]]]:
    @contextlib.contextmanager
    def no_pre_ping() -> Iterator[None]:
        with mock.patch.object(runtime.engine.pool, "_pre_ping", False):
            yield

    @contextlib.contextmanager
    def auth_in_memory() -> Iterator[None]:
        with mock.patch.object(
            AccountService, "authenticate", lambda self, user, password: Principal(user, user)
        ):
            yield

    @contextlib.contextmanager
    def no_enqueue() -> Iterator[None]:
        with mock.patch.object(RQDispatcher, "dispatch", return_value=None):
            yield

    @contextlib.contextmanager
    def no_attempts_reread() -> Iterator[None]:
        with mock.patch.object(VerificationService, "_attempts", return_value=[]):
            yield

    @contextlib.contextmanager
    def no_test_number_lookup() -> Iterator[None]:
        with mock.patch.object(VerificationService, "_test_code", return_value=None):
            yield

    @contextlib.contextmanager
    def no_argon2() -> Iterator[None]:
        with (
            mock.patch.object(CodeHasher, "hash", return_value="$no-argon2$"),
            mock.patch.object(CodeHasher, "verify", return_value=False),
        ):
            yield

    parts = {
        "no pool pre-ping": no_pre_ping,
        "auth answered from memory": auth_in_memory,
        "no RQ enqueue": no_enqueue,
        "no send-attempts re-read": no_attempts_reread,
        "no test-number lookup": no_test_number_lookup,
        "no argon2": no_argon2,
    }

    @contextlib.contextmanager
    def all_but_argon2() -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for name, part in parts.items():
                if name != "no argon2":
                    stack.enter_context(part())
            yield

    cache: dict[str, object] = {}

    def canned(cls: type, method: str) -> Callable[..., object]:
        original = getattr(cls, method)

        def call(self: object, *args: object, **kwargs: object) -> object:
            if method not in cache:
                cache[method] = original(self, *args, **kwargs)
            return cache[method]

        return call

    @contextlib.contextmanager
    def http_layer_only() -> Iterator[None]:
        """What is left with no database or Redis work at all: gunicorn aside, the Flask, webargs,
        marshmallow and response cost of the endpoint (auth from memory, the domain call canned)."""
        with (
            auth_in_memory(),
            mock.patch.object(VerificationService, "start", canned(VerificationService, "start")),
            mock.patch.object(CheckService, "check", canned(CheckService, "check")),
        ):
            yield

    return {
        **parts,
        "all of the above but argon2": all_but_argon2,
        "HTTP layer only (no DB, no Redis)": http_layer_only,
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--cprofile", action="store_true", help="add a CPU-clock cProfile by area")
    p.add_argument("--top", type=int, default=0, help="with --cprofile: list the top N functions")
    p.add_argument("--argon2-time-cost", type=int, default=Argon2Settings().time_cost)
    p.add_argument("--argon2-memory-kib", type=int, default=Argon2Settings().memory_cost_kib)
    args = p.parse_args()
    n = args.requests
    numbers = Numbers()
    with Stack(bench_api.parse_args([]), ceiling=False, lift_abuse_limits=True) as stack:
        stack.argon2 = Argon2Params(args.argon2_time_cost, args.argon2_memory_kib)
        settings = replace(
            stack.settings, argon2=Argon2Settings(args.argon2_time_cost, args.argon2_memory_kib, 1)
        )
        runtime = build_runtime(settings)
        counters = Counters(runtime.engine, runtime.redis)
        client = create_app(settings, runtime=runtime).test_client()
        headers = stack.tenant.headers
        base = f"/v2/Services/{stack.tenant.service_sid}"

        def poster(test_client, path: str) -> Callable[[str], int]:  # type: ignore[no-untyped-def]
            def post(body: str) -> int:
                response = test_client.post(path, data=body, headers=headers, content_type=FORM)
                return int(response.status_code)

            return post

        assert stack.pg is not None
        os.environ["BENCH_DATABASE_URL"] = stack.pg.url
        ceiling = ceiling_app.create_app()
        ceiling_counters = Counters(ceiling.extensions["engine"], runtime.redis)
        insert = poster(ceiling.test_client(), "/insert")
        start = poster(client, f"{base}/Verifications")
        check = poster(client, f"{base}/VerificationCheck")
        constant = ConstantBodies("To=%2B14155550123")
        starts = numbers.start_bodies()
        variants = ablations(runtime)

        print(
            f"argon2id {stack.argon2.label}; one request at a time, in-process; {n} requests each"
        )
        print(
            f"  {'':<34} {'wall':>7} {'CPU':>7} {'CPU':>7}  {'per request':^29}\n"
            f"  {'':<34} {'ms':>7} {'ms':>7} {'saved':>7}  {'stmts':>5} {'chkout':>5} {'txns':>5} "
            f"{'redis':>5}   statuses"
        )
        measure("insert ceiling", insert, constant, n, ceiling_counters)
        measure("start", start, starts, n, counters)
        print(" start with one piece removed (CPU saved vs the unpatched app, interleaved)")
        for name, variant in variants.items():
            compare(name, start, starts, n, counters, variant)
        checks = stack.check_bodies("wrong")
        measure("check (wrong code)", check, checks, n, counters)
        print(" check (wrong code) with one piece removed")
        for name, variant in variants.items():
            if name not in ("no RQ enqueue", "no test-number lookup"):
                compare(name, check, checks, n, counters, variant)

        if args.cprofile:
            for label, post, bodies in (
                ("insert ceiling", insert, constant),
                ("start", start, starts),
                ("check", check, checks),
            ):
                print(f"\n  cProfile (CPU clock): {label}")
                cprofile(post, bodies, n, args.top)
        runtime.close()
        ceiling.extensions["engine"].dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
