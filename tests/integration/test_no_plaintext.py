"""No plaintext code at rest or in transit inside the system (DESIGN §5).

A realistic session runs through the API, the in-process and the separate-process worker and the sweep;
then every row of every table, every Redis key and value, every RQ job's arguments and result, every log
line and every API response is searched for every code that was issued.

Codes are 10 digits (CodeLength 10) so that a plain substring search is sound: a chance match of one
given 10-digit string anywhere in the scanned data (sids are 32 hex digits, epoch seconds are 10 digits
but never equal to a random code, timestamps' 6-digit fractions are too short) has a probability far
below 1e-6 for the whole scan. With 6-digit codes the microsecond fields of timestamps and runs of digits
inside hex sids would match by chance often enough to make the test flaky, and a "delimited by non-digits,
not in hex" search would also miss a code glued to other digits. The code path is the same for every
length, so nothing is lost by choosing 10.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rq import SimpleWorker
from rq.job import Job
from sqlalchemy import inspect, select, text

from tests.conftest import ApiClient, Backend, Tenant, code_in, make_settings
from verify import jobs
from verify.config import Settings
from verify.domain.codes import generate_code
from verify.logs import JsonFormatter
from verify.models import Base, SendAttempt, Verification

CODE_LENGTH = 10
TEST_NUMBER = "+14155550100"


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> Settings:
    """The suite's settings at DEBUG, so the worker process logs everything it can."""
    return replace(
        make_settings(backend.database_url, backend.redis_url, tmp_path), log_level="DEBUG"
    )


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG for every logger, including ones with their own level or no propagation."""
    caplog.set_level(logging.DEBUG)
    for name in ["rq.worker", "rq.job", *logging.root.manager.loggerDict]:
        caplog.set_level(logging.DEBUG, logger=name)  # restored at teardown
    detached = [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    for logger in detached:
        logger.addHandler(caplog.handler)
    yield caplog
    for logger in detached:
        logger.removeHandler(caplog.handler)


class Recorder(ApiClient):
    """An ApiClient that keeps every response body, to be searched too."""

    def __init__(self, app: Any, tenant: Tenant, bodies: list[bytes]) -> None:
        super().__init__(app, tenant)
        self.bodies = bodies

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        r = super().post(path, data, **kwargs)
        self.bodies.append(r.get_data())
        return r

    def get(self, path: str, **kwargs: Any) -> Any:
        r = super().get(path, **kwargs)
        self.bodies.append(r.get_data())
        return r

    def cancel(self, sid: str) -> Any:
        return self.post(f"{self.base}/Verifications/{sid}", {"Status": "canceled"})


def run_worker(runtime: Any) -> None:
    """The in-process worker, logging at DEBUG (the `work` fixture would log at INFO)."""
    SimpleWorker(runtime.queues, connection=runtime.redis).work(burst=True, logging_level="DEBUG")


def play_session(app, runtime, clock, tenant, worker_process, bodies) -> dict[str, Any]:
    """Several verifications through their whole lives; returns the worker process's output."""
    admin = Recorder(app, tenant, bodies)
    test_code = generate_code(CODE_LENGTH)
    r = admin.post(
        "/v2/Services",
        {
            "FriendlyName": "Acme Bank",
            "CodeLength": CODE_LENGTH,
            "CustomCodeEnabled": "true",
            "DoNotShareWarningEnabled": "true",
            "TestNumbers": json.dumps({TEST_NUMBER: test_code}),
        },
        headers={"Idempotency-Key": "create-service"},
    )
    assert r.status_code == 201, r.json
    api = Recorder(app, replace(tenant, service_sid=r.json["sid"]), bodies)
    keyed = {"headers": {"Idempotency-Key": "start-alice"}}
    # Numbers of different exchanges: many sends to one number block within minutes is what the
    # prefix-velocity and sequential-burst fraud rules block.
    sms = {"To": "+14155550123", "Channel": "sms"}

    # First wave, delivered by the in-process worker.
    a = api.post(f"{api.base}/Verifications", sms, **keyed).json["sid"]
    api.post(f"{api.base}/Verifications", sms, **keyed)  # a replay
    b = api.start("+12125550224", "call").json["sid"]
    mail = api.start("alice@acme.io", "email").json["sid"]
    canceled = api.start("+12065550527").json["sid"]
    api.cancel(canceled)
    test = api.start(TEST_NUMBER).json["sid"]
    run_worker(runtime)

    # Second wave, delivered by a separate worker process.
    api.start("+12125550224", "sms")  # a resend of b, same code
    custom = api.start("+13125550325", CustomCode=generate_code(CODE_LENGTH)).json["sid"]
    exhausted = api.start("+16175550426").json["sid"]
    late = api.start("+13055550628").json["sid"]
    process = worker_process()

    # Checks: wrong, right, by To and by sid, after the end, until the cap.
    code_of = opened_codes(runtime)
    wrong = "0" * CODE_LENGTH
    assert api.check(wrong).json["valid"] is False
    ok = api.post(
        f"{api.base}/VerificationCheck",
        {"To": "+14155550123", "Code": code_of[a]},
        headers={"Idempotency-Key": "check-alice"},
    )
    assert ok.json["status"] == "approved"
    assert api.check(code_of[a]).status_code == 404  # already approved
    by_sid = api.post(f"{api.base}/VerificationCheck", {"VerificationSid": b, "Code": code_of[b]})
    assert by_sid.json["valid"] is True
    assert api.check(code_of[mail], to="alice@acme.io").json["valid"] is True
    assert api.check(test_code, to=TEST_NUMBER).json["valid"] is True
    assert api.check(code_of[custom], to="+13125550325").json["valid"] is True
    for _ in range(5):
        api.check(wrong, to="+16175550426")
    assert api.check(code_of[exhausted], to="+16175550426").status_code == 429
    for sid in (a, b, mail, test, canceled, custom, exhausted):
        api.get(f"{api.base}/Verifications/{sid}")

    # A lost enqueue, redriven by the sweep run as a job; then expiry by the sweep.
    lost = api.start("+14155550129").json["sid"]
    runtime.queue.empty()
    clock.advance(runtime.settings.limits.redrive_after + 1)
    runtime.queue.enqueue("verify.jobs.sweep")
    run_worker(runtime)
    clock.advance(601)
    assert jobs.sweep()["expired"] == 2  # late, lost
    assert api.get(f"{api.base}/Verifications/{late}").json["status"] == "expired"
    assert api.get(f"{api.base}/Verifications/{lost}").json["status"] == "expired"
    assert api.check(code_of[late], to="+13055550628").status_code == 404
    with runtime.sessions() as session:
        statuses = set(session.scalars(select(SendAttempt.status)))
    assert statuses == {"sent", "canceled", "test"}
    return {"stdout": process.stdout, "stderr": process.stderr, "test_code": test_code}


def opened_codes(runtime: Any) -> dict[str, str]:
    """Every verification's code, opened from its sealed copy (the test is allowed to)."""
    with runtime.sessions() as session:
        rows = session.scalars(select(Verification)).all()
        return {v.sid: runtime.sealer.open(v.sid, v.sealed_code) for v in rows}


def outbox_codes(app: Any, runtime: Any) -> tuple[set[str], bytes]:
    """Codes in the messages, as the operator sees them through GET /dev/outbox."""
    token = runtime.settings.operator_token
    r = app.test_client().get("/dev/outbox?limit=200", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    codes = {code_in(entry["body"]) for entry in r.json}
    return codes, r.get_data()


# -- where to look ---------------------------------------------------------------------------------


def as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict | list):
        return json.dumps(value, default=str).encode()
    return str(value).encode()


def database_blobs(runtime: Any) -> dict[str, list[bytes]]:
    """Every value of every row of every table (those of Base.metadata and any other)."""
    names = set(inspect(runtime.engine).get_table_names())
    assert set(Base.metadata.tables) <= names
    out: dict[str, list[bytes]] = {}
    with runtime.engine.connect() as conn:
        for name in sorted(names):
            rows = conn.execute(text(f'SELECT * FROM "{name}"')).all()  # noqa: S608
            out[name] = [as_bytes(v) for row in rows for v in row]
    return out


def redis_blobs(client: Any) -> dict[bytes, list[bytes]]:
    """Every key with every value in it, raw bytes, whatever the type."""
    out: dict[bytes, list[bytes]] = {}
    for key in client.scan_iter(count=500):
        kind = client.type(key)
        if kind == b"string":
            values = [client.get(key)]
        elif kind == b"list":
            values = client.lrange(key, 0, -1)
        elif kind == b"hash":
            values = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == b"set":
            values = list(client.smembers(key))
        elif kind == b"zset":
            pairs = client.zrange(key, 0, -1, withscores=True)
            values = [part for m, score in pairs for part in (m, repr(score).encode())]
        elif kind == b"stream":
            values = [
                part
                for entry_id, fields in client.xrange(key)
                for part in (entry_id, *(b for pair in fields.items() for b in pair))
            ]
        elif kind == b"none":  # expired while we looked
            continue
        else:
            pytest.fail(f"Redis key {key!r} has a type this scan does not read: {kind!r}")
        out[key] = [key, *(v for v in values if v is not None)]
    return out


def rq_job_blobs(client: Any, keys: list[bytes]) -> dict[str, bytes]:
    """Each RQ job as RQ decodes it: function, args, kwargs, description, meta, result, error."""
    out = {}
    for key in keys:
        parts = key.decode().split(":")
        if len(parts) != 3 or parts[:2] != ["rq", "job"]:
            continue
        job = Job.fetch(parts[2], connection=client)
        result = job.latest_result()
        seen = [job.func_name, job.args, job.kwargs, job.description, job.meta]
        if result is not None:
            seen += [result.type, result.return_value, result.exc_string]
        out[job.id] = repr(seen).encode()
    return out


def log_blobs(caplog: pytest.LogCaptureFixture) -> list[bytes]:
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    return [caplog.text.encode(), *(line.encode() for line in lines)]


def leaks(blobs: Any, codes: set[str]) -> list[tuple[str, str]]:
    """(code, where) for every blob containing a code, where ``blobs`` maps a place to blobs."""
    found = []
    for where, values in blobs.items():
        for value in values if isinstance(values, list) else [values]:
            found.extend((code, str(where)) for code in codes if code.encode() in value)
    return found


# -- the test --------------------------------------------------------------------------------------


def test_no_code_appears_anywhere(app, runtime, clock, tenant, worker_process, all_logs, capfd):
    """No issued code is in any table, Redis key or value, RQ job, log line or API response."""
    bodies: list[bytes] = []
    session = play_session(app, runtime, clock, tenant, worker_process, bodies)

    codes = set(opened_codes(runtime).values()) | {session["test_code"]}
    delivered, outbox_body = outbox_codes(app, runtime)
    assert len(codes) == 9  # one per verification; the test number's is its fixed code
    assert all(len(c) == CODE_LENGTH for c in codes)
    assert len(delivered) == 7  # all but the canceled one and the test number
    assert delivered <= codes
    # The search finds a code where one is: the operator's outbox view holds them all in plaintext.
    assert {code for code, _ in leaks({"outbox": outbox_body}, delivered)} == delivered

    redis = redis_blobs(runtime.redis)
    rq_jobs = rq_job_blobs(runtime.redis, list(redis))
    tables = database_blobs(runtime)
    out, err = capfd.readouterr()
    logs = {
        "caplog": log_blobs(all_logs),
        "in-process stdout/stderr": [out.encode(), err.encode()],
        "worker process stdout": session["stdout"].encode(),
        "worker process stderr": session["stderr"].encode(),
    }
    # Nothing vacuous: each place was really looked at and holds what the session left there.
    assert all(
        tables[name] for name in ("verifications", "send_attempts", "check_attempts", "events")
    )
    assert any(key.startswith(b"verify:idem:") for key in redis)
    assert any(b"verify.jobs.deliver" in blob for blob in rq_jobs.values())
    assert any(r.name == "verify.jobs" for r in all_logs.records)
    assert any(r.name.startswith("rq.") for r in all_logs.records)
    assert '"logger": "verify.jobs"' in session["stderr"]

    found = (
        leaks({f"table {name}": blobs for name, blobs in tables.items()}, codes)
        + leaks({f"redis {key!r}": blobs for key, blobs in redis.items()}, codes)
        + leaks({f"rq job {jid}": blob for jid, blob in rq_jobs.items()}, codes)
        + leaks(logs, codes)
        + leaks({"api responses": bodies}, codes)
    )
    assert found == []
