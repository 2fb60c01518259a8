"""Operational endpoints: health, readiness, metrics, and the error-code reference that ``more_info``
links. Only /metrics is guarded (the operator token, unless VERIFY_METRICS_PUBLIC)."""

from __future__ import annotations

from typing import Any

import flask
from sqlalchemy import text

from verify import errors, metrics
from verify.api import context

blp = flask.Blueprint("meta", __name__)


@blp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@blp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    rt = context.runtime()
    checks: dict[str, str] = {}
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unavailable"
    try:
        rt.redis.ping()
        checks["redis"] = "ok"
    except Exception:
        checks["redis"] = "unavailable"
    try:
        # Without a worker that heartbeat recently nothing would be sent: not ready.
        _, fresh = metrics.fresh_workers(rt.redis, rt.queue)
        checks["workers"] = "ok" if fresh else "none recently seen"
    except Exception:
        checks["workers"] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503


@blp.get("/metrics")
def prometheus() -> flask.Response:
    rt = context.runtime()
    if not rt.settings.metrics_public:
        context.authenticate_operator()
    return flask.Response(metrics.render(rt), content_type=metrics.CONTENT_TYPE)


@blp.after_app_request
def count_errors(response: flask.Response) -> flask.Response:
    """Count every /v2 error answer by status and code (rate-limit and fraud rejections included)."""
    if response.status_code >= 400 and flask.request.path.startswith("/v2/"):
        body = response.get_json(silent=True) if response.is_json else None
        code = body.get("code") if isinstance(body, dict) else None
        metrics.Counters(context.runtime().redis).inc(
            "api_errors", response.status_code, code if code is not None else ""
        )
    return response


def _reference() -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for cls in errors.all_error_classes():
        if cls is errors.HttpError:
            continue
        out.setdefault(cls.code, {"code": cls.code, "status": cls.status, "title": cls.title})
    return out


@blp.get("/errors")
def error_index() -> dict[str, Any]:
    return {"errors": sorted(_reference().values(), key=lambda e: e["code"])}


@blp.get("/errors/<int:code>")
def error_reference(code: int) -> dict[str, Any]:
    entry = _reference().get(code)
    if entry is None:
        if 68000 < code < 69000:
            return {"code": code, "status": code - 68000, "title": "HTTP error"}
        raise errors.NotFound(f"No error code {code}")
    return entry
