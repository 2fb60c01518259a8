"""Traffic simulator for the abuse controls: legitimate users and an SMS-pumping attack, through the
real API (gunicorn), PostgreSQL, redis-server and a real worker (bench/stack.py).

Legitimate users in several countries start a verification from their own device IP, sometimes ask
for a resend, and mostly type their code a few seconds later (the simulator holds the sealing key, as
bench_api.py does). The attack sends to random numbers in a few prefixes, rotating its IPs, and never
checks a code. Printed: pumping sends let through per attacked prefix, the share of pumping sends
stopped (blocked by a rule or refused by a limit), the legitimate sends stopped (false positives),
and what every rule decided. ``--mode monitor`` runs the same traffic with every rule and limit in
monitor mode: nothing is stopped, the decisions are recorded.

    .venv/bin/python bench/simulate_fraud.py               # about 3 minutes
    .venv/bin/python bench/simulate_fraud.py --mode monitor
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import phonenumbers
from sqlalchemy import func, select
from stack import ROOT, Argon2Params, Stack

from verify.domain import fraud
from verify.domain.destinations import parse_phone
from verify.domain.ratelimits import DEFAULT_LIMITS
from verify.models import Verification
from verify.models.abuse import FraudDecision

LEGIT_COUNTRIES = ("US", "GB", "DE", "FR", "BR", "IN", "ES", "MX")
ATTACKED = ("GB", "US", "DE", "BR")  # allowed countries: geo permissions alone would not stop it


def random_number(rng: random.Random, region: str, prefix: str | None = None) -> str:
    """A valid mobile (or US-style ambiguous) number in ``region``, optionally under ``prefix``."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    template = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    for _ in range(10_000):
        if prefix is None:
            cc = f"+{example.country_code}"
            national = "".join(rng.choice("0123456789") for _ in range(len(template) - len(cc)))
            candidate = cc + str(example.national_number)[:2] + national[2:]
        else:
            candidate = prefix + "".join(
                rng.choice("0123456789") for _ in range(len(template) - len(prefix))
            )
        try:
            parse_phone(candidate)
        except Exception:  # noqa: S112 - not a valid number: draw again
            continue
        if fraud.number_type(candidate) in ("mobile", "fixed_line_or_mobile"):
            return candidate
    raise RuntimeError(f"no valid number for {region} {prefix}")


def random_ip(rng: random.Random) -> str:
    return (
        f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    )


@dataclass
class Tally:
    legit_sends: int = 0
    legit_stopped: int = 0
    legit_checks: int = 0
    legit_approved: int = 0
    attack_sends: int = 0
    attack_stopped: int = 0
    through: Counter[str] = field(default_factory=Counter)  # attacked prefix -> sends let through
    statuses: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Simulation:
    def __init__(self, stack: Stack, args: argparse.Namespace) -> None:
        self.stack = stack
        self.args = args
        self.rng = random.Random(args.seed)
        self.base = f"http://127.0.0.1:{stack.app.port}" if stack.app else ""
        self.url = f"{self.base}/v2/Services/{stack.tenant.service_sid}"
        self.tally = Tally()
        self.client = httpx.Client(headers=stack.tenant.headers, timeout=30)
        self.queue: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = 0
        self.qlock = threading.Lock()
        self.shared: dict[str, list[str]] = {}

    # -- scheduling ---------------------------------------------------------------------------------

    def at(self, when: float, fn: Callable[[], None]) -> None:
        with self.qlock:
            self.seq += 1
            heapq.heappush(self.queue, (when, self.seq, fn))

    def run(self) -> None:
        start = time.monotonic()
        self.plan(start)
        pending = []
        with ThreadPoolExecutor(self.args.clients) as pool:
            while True:
                with self.qlock:
                    item = heapq.heappop(self.queue) if self.queue else None
                if item is None:
                    if all(f.done() for f in pending):
                        with self.qlock:
                            if not self.queue:
                                break
                        continue
                    time.sleep(0.05)
                    continue
                when, _, fn = item
                delay = when - time.monotonic()
                if delay > 0:
                    # Something earlier may be scheduled meanwhile: wait in short steps.
                    self.at(when, fn)
                    time.sleep(min(delay, 0.02))
                    continue
                pending.append(pool.submit(self._safe, fn))
                pending = [f for f in pending if not f.done()]

    def _safe(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:
            with self.tally.lock:
                self.tally.errors += 1
            print(f"  request error: {type(exc).__name__}: {exc}", file=sys.stderr)

    def plan(self, start: float) -> None:
        a, rng = self.args, self.rng
        for _ in range(a.users):
            region = rng.choice(LEGIT_COUNTRIES)
            number = random_number(rng, region)
            # One user in ten shares an address with others (a household, an office NAT).
            ip = self.shared_ip(region) if rng.random() < 0.1 else random_ip(rng)
            self.at(start + rng.uniform(0, a.duration), lambda n=number, i=ip: self.legit(n, i))
        self.prefixes = []
        for region in ATTACKED[: a.prefixes]:
            sample = random_number(rng, region)
            self.prefixes.append(sample[:-4])
        per_prefix = a.attack // len(self.prefixes)
        for prefix in self.prefixes:
            # The attack starts a little after the legitimate traffic and comes in bursts.
            t0 = start + rng.uniform(0.1, 0.3) * a.duration
            span = a.duration * 0.6
            ip = random_ip(rng)
            for k in range(per_prefix):
                if k % rng.randint(1, 3) == 0:
                    ip = random_ip(rng)  # rotating addresses
                when = t0 + span * (k / per_prefix) + rng.uniform(0, 0.5)
                self.at(when, lambda p=prefix, i=ip: self.pump(p, i))

    def shared_ip(self, region: str) -> str:
        """An address shared by a few users of one country."""
        pool = self.shared.setdefault(region, [])
        if not pool or self.rng.random() < 0.3:
            pool.append(random_ip(self.rng))
        return self.rng.choice(pool)

    # -- traffic ------------------------------------------------------------------------------------

    def start(self, to: str, ip: str) -> httpx.Response:
        r = self.client.post(
            f"{self.url}/Verifications", data={"To": to, "Channel": "sms", "DeviceIp": ip}
        )
        with self.tally.lock:
            self.tally.statuses[f"{r.status_code} {r.json().get('code', '')}"] += 1
        return r

    def legit(self, to: str, ip: str, resent: bool = False) -> None:
        r = self.start(to, ip)
        stopped = r.status_code in (403, 429)
        with self.tally.lock:
            self.tally.legit_sends += 1
            self.tally.legit_stopped += stopped
        if r.status_code != 201:
            if r.status_code not in (403, 429):
                print(f"  legit start {r.status_code}: {r.text[:200]}", file=sys.stderr)
            return
        sid = r.json()["sid"]
        now = time.monotonic()
        roll = self.rng.random()
        if roll < self.args.abandon:
            return  # never types the code
        if roll < self.args.abandon + self.args.resend and not resent:
            self.at(now + self.rng.uniform(5, 20), lambda: self.legit(to, ip, resent=True))
            return
        self.at(now + self.rng.uniform(3, 15), lambda: self.check(to, sid))

    def check(self, to: str, sid: str) -> None:
        with self.stack.engine.connect() as conn:  # type: ignore[union-attr]
            sealed = conn.execute(
                select(Verification.sealed_code).where(Verification.sid == sid)
            ).scalar_one()
        code = self.stack.sealer.open(sid, sealed)
        r = self.client.post(f"{self.url}/VerificationCheck", data={"To": to, "Code": code})
        if r.status_code != 200 or r.json()["status"] != "approved":
            print(f"  check {r.status_code}: {r.text[:200]}", file=sys.stderr)
        with self.tally.lock:
            self.tally.legit_checks += 1
            self.tally.legit_approved += r.status_code == 200 and r.json()["status"] == "approved"

    def pump(self, prefix: str, ip: str) -> None:
        to = self._in_prefix(prefix)
        r = self.start(to, ip)
        with self.tally.lock:
            self.tally.attack_sends += 1
            if r.status_code in (403, 429):
                self.tally.attack_stopped += 1
            elif r.status_code == 201:
                self.tally.through[prefix] += 1
            else:
                print(f"  pump start {r.status_code}: {r.text[:200]}", file=sys.stderr)

    def _in_prefix(self, prefix: str) -> str:
        region = phonenumbers.region_code_for_country_code(
            phonenumbers.parse(prefix + "0000", None).country_code
        )
        return random_number(self.rng, region, prefix)


def monitor_everything(client: httpx.Client) -> None:
    """Every default rule and limit again as an account rule in monitor mode."""
    for rule in fraud.DEFAULT_RULES:
        if rule.type == "risk_check":
            continue
        data = {"Type": rule.type, "Params": json.dumps(dict(rule.params)), "Mode": "monitor"}
        data["Priority"] = str(rule.priority)
        r = client.post("/v2/FraudRules", data=data)
        r.raise_for_status()
    for limit in DEFAULT_LIMITS:
        if limit.key in ("global", "destination_global"):
            continue
        params = {"key": limit.key, "max": limit.max, "interval": limit.interval}
        if limit.key == "prefix":
            params["prefix_digits"] = limit.prefix_digits
        r = client.post(
            "/v2/FraudRules",
            data={"Type": "rate_limit", "Params": json.dumps(params), "Mode": "monitor"},
        )
        r.raise_for_status()


def start_worker(stack: Stack) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")}
    env.update(stack.settings.as_environ())
    log = open(stack.workdir / "worker.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "workers.worker"], env=env, cwd=ROOT, stdout=log, stderr=log
    )


def decisions_table(stack: Stack) -> list[tuple[str, str, str, int]]:
    with stack.engine.connect() as conn:  # type: ignore[union-attr]
        rows = conn.execute(
            select(
                FraudDecision.rule_type,
                FraudDecision.mode,
                FraudDecision.action,
                func.count(),
            )
            .group_by(FraudDecision.rule_type, FraudDecision.mode, FraudDecision.action)
            .order_by(FraudDecision.rule_type)
        ).all()
    return [(str(a), str(b), str(c), int(d)) for a, b, c, d in rows]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mode", choices=("enforce", "monitor"), default="enforce")
    p.add_argument("--duration", type=float, default=150, help="seconds of traffic (150)")
    p.add_argument("--users", type=int, default=900, help="legitimate users (900)")
    p.add_argument("--attack", type=int, default=2400, help="pumping requests in all (2400)")
    p.add_argument("--prefixes", type=int, default=4, help="attacked prefixes, 1-4 (4)")
    p.add_argument("--abandon", type=float, default=0.08, help="users who never check (0.08)")
    p.add_argument("--resend", type=float, default=0.07, help="users who ask again (0.07)")
    p.add_argument("--clients", type=int, default=8, help="concurrent client threads (8)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (2)")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (4)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path, help="write the figures as JSON")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with Stack(args, ceiling=False) as stack:
        # "test": messages go to the built-in console provider (production has no route without
        # configured providers); nothing else differs for what is measured here.
        stack.settings = replace(stack.settings, env="test")
        worker = start_worker(stack)  # first: /readyz waits for a worker
        try:
            stack.start_app(Argon2Params.default())
            sim = Simulation(stack, args)
            if args.mode == "monitor":
                with httpx.Client(base_url=sim.base, headers=stack.tenant.headers) as admin:
                    monitor_everything(admin)
                time.sleep(1.2)  # every process picks the rules up within a second
            print(
                f"simulating {args.duration:.0f}s: {args.users} users in {', '.join(LEGIT_COUNTRIES)}; "
                f"{args.attack} pumping requests on {args.prefixes} prefixes; mode {args.mode}",
                flush=True,
            )
            began = time.monotonic()
            sim.run()
            elapsed = time.monotonic() - began
            table = decisions_table(stack)
        finally:
            worker.terminate()
            worker.wait(20)
    t = sim.tally
    stopped_share = t.attack_stopped / t.attack_sends if t.attack_sends else 0.0
    fp = t.legit_stopped / t.legit_sends if t.legit_sends else 0.0
    print(
        f"\nran {elapsed:.0f}s, {t.legit_sends + t.attack_sends + t.legit_checks} requests, {t.errors} errors"
    )
    print("\npumping sends let through per attacked prefix (target <= 20):")
    for prefix in sim.prefixes:
        print(f"  {prefix}xxxx  {t.through[prefix]}")
    print(
        f"pumping sends stopped: {t.attack_stopped}/{t.attack_sends} = {stopped_share:.2%} (target >= 99%)"
    )
    print(
        f"legitimate sends stopped: {t.legit_stopped}/{t.legit_sends} = {fp:.2%} (target <= 0.5%)"
    )
    print(f"legitimate checks: {t.legit_checks}, approved {t.legit_approved}")
    print("\nanswers to starts: " + ", ".join(f"{k}: {v}" for k, v in sorted(t.statuses.items())))
    print("\ndecisions recorded (rule type, mode, action, count):")
    for row in table:
        print(f"  {row[0]:<18} {row[1]:<8} {row[2]:<7} {row[3]}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "mode": args.mode,
                    "through": dict(t.through),
                    "attack_sends": t.attack_sends,
                    "attack_stopped": t.attack_stopped,
                    "legit_sends": t.legit_sends,
                    "legit_stopped": t.legit_stopped,
                    "decisions": table,
                    "statuses": dict(t.statuses),
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
