"""/readyz: database, Redis, and an RQ worker whose heartbeat is recent; /healthz stays liveness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import flask
from rq import SimpleWorker
from rq.utils import utcformat

from verify.runtime import Runtime


def test_not_ready_without_a_worker(app: flask.Flask) -> None:
    r = app.test_client().get("/readyz")
    assert r.status_code == 503
    assert r.get_json()["checks"] == {
        "database": "ok",
        "redis": "ok",
        "workers": "none recently seen",
    }
    assert app.test_client().get("/healthz").status_code == 200


def test_ready_with_a_live_worker_and_not_once_it_is_stale_or_gone(
    app: flask.Flask, runtime: Runtime
) -> None:
    worker = SimpleWorker(runtime.queues, connection=runtime.redis)
    worker.register_birth()
    worker.heartbeat()
    try:
        r = app.test_client().get("/readyz")
        assert (r.status_code, r.get_json()["checks"]["workers"]) == (200, "ok")

        old = datetime.now(UTC) - timedelta(seconds=300)
        runtime.redis.hset(worker.key, "last_heartbeat", utcformat(old))
        assert app.test_client().get("/readyz").status_code == 503
    finally:
        worker.register_death()
    assert app.test_client().get("/readyz").status_code == 503
