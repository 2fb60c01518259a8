"""/metrics: guarded by the operator token (or public by setting), Prometheus text, and numbers that
follow what happened — counted once across processes through Redis, or read at scrape time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import flask
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ApiClient, delivered_code
from verify import jobs
from verify.delivery.circuit import CircuitBreakers, Policy
from verify.domain.clock import FrozenClock
from verify.events import outbox
from verify.runtime import Runtime

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(app: flask.Flask, runtime: Runtime) -> Samples:
    token = runtime.settings.operator_token
    r = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.content_type.startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_need_the_operator_token(app: flask.Flask, runtime: Runtime) -> None:
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    runtime.settings = replace(runtime.settings, metrics_public=True)
    assert client.get("/metrics").status_code == 200


def test_started_approved_and_send_attempts_are_counted_by_label(
    api: ApiClient, app: flask.Flask, runtime: Runtime, work: Callable[[], None]
) -> None:
    """A start and an approval, relayed once, show up by service, channel and country."""
    service = api.tenant.service_sid
    api.start("+14155550141")
    work()
    api.check(delivered_code(runtime, "+14155550141"), to="+14155550141")
    jobs.relay()
    jobs.relay()  # a second pass counts nothing twice
    samples = scrape(app, runtime)
    where = {"service": service, "channel": "sms", "country": "US"}
    assert value(samples, "verify_verifications_started_total", **where) == 1
    assert value(samples, "verify_verifications_approved_total", **where) == 1
    assert value(samples, "verify_events_total", type="verification.pending") == 1
    sent = [
        v
        for (name, labels), v in samples.items()
        if name == "verify_send_attempts_total" and ("result", "sent") in labels
    ]
    assert sent == [1.0]
    assert value(samples, "verify_dependency_up", dependency="database") == 1
    assert value(samples, "verify_dependency_up", dependency="redis") == 1


def test_queue_depth_and_outbox_lag(
    api: ApiClient, app: flask.Flask, runtime: Runtime, clock: FrozenClock
) -> None:
    """A queued send job is a queue depth; events not yet relayed are a lag, gone after the relay."""
    api.start("+14155550142")
    clock.advance(30)
    samples = scrape(app, runtime)
    assert value(samples, "verify_queue_jobs", queue=runtime.queue.name, state="queued") >= 1
    assert value(samples, "verify_outbox_unpublished") == 2  # verification.pending, message.queued
    assert value(samples, "verify_webhook_relay_lag_seconds") == 30
    jobs.relay()
    samples = scrape(app, runtime)
    assert value(samples, "verify_outbox_unpublished") == 0
    assert value(samples, "verify_webhook_relay_lag_seconds") == 0


def test_rate_limit_rejections_are_counted(
    api: ApiClient, app: flask.Flask, runtime: Runtime
) -> None:
    """Every 429 on /v2 is counted by its code; rate-limit codes are summed apart."""
    statuses = [api.start("+14155550143").status_code for _ in range(7)]
    refused = statuses.count(429)
    assert refused >= 1
    samples = scrape(app, runtime)
    limited = sum(
        v for (name, _), v in samples.items() if name == "verify_rate_limit_rejections_total"
    )
    errors = sum(
        v
        for (name, labels), v in samples.items()
        if name == "verify_api_errors_total" and ("status", "429") in labels
    )
    assert limited == errors == refused


def test_delivery_receipt_latency_is_a_histogram(
    api: ApiClient, app: flask.Flask, runtime: Runtime, clock: FrozenClock
) -> None:
    """message.sent then message.delivered 7 s later: one observation in the 10 s bucket."""
    sent_at = clock.now()
    with runtime.sessions() as session, session.begin():
        for type_, at in (
            ("message.sent", sent_at),
            ("message.delivered", sent_at + timedelta(seconds=7)),
        ):
            outbox.record(
                session,
                type_,
                account_sid=api.tenant.account_sid,
                service_sid=api.tenant.service_sid,
                subject_sid="VL" + "1" * 32,
                payload={"channel": "sms", "provider": "twilio", "status": type_[8:]},
                at=at,
            )
    jobs.relay()
    samples = scrape(app, runtime)
    name = "verify_delivery_receipt_latency_seconds"
    assert value(samples, f"{name}_bucket", channel="sms", le="5.0") == 0
    assert value(samples, f"{name}_bucket", channel="sms", le="10.0") == 1
    assert value(samples, f"{name}_bucket", channel="sms", le="+Inf") == 1
    assert value(samples, f"{name}_sum", channel="sms") == 7
    assert (
        value(
            samples,
            "verify_send_attempts_total",
            provider="twilio",
            channel="sms",
            result="delivered",
        )
        == 1
    )


def test_open_circuits_are_gauged_per_provider_and_country(
    app: flask.Flask, runtime: Runtime
) -> None:
    """A provider resting for one country shows 1 there, its other breakers 0."""
    breakers = CircuitBreakers(runtime.redis, Policy(failures=2))
    now = runtime.clock.now().timestamp()
    breakers.record("PN1:FR", False, now)
    breakers.record("PN1:FR", False, now)
    breakers.record("PN1:US", True, now)
    breakers.record("PN2", True, now)
    circuits = {
        labels: v
        for (name, labels), v in scrape(app, runtime).items()
        if name == "verify_circuit_open"
    }
    assert circuits == {
        (("country", "FR"), ("provider", "PN1")): 1.0,
        (("country", "US"), ("provider", "PN1")): 0.0,
        (("country", ""), ("provider", "PN2")): 0.0,
    }
