"""Webhook delivery end to end: a real receiver on a socket, the real relay and a real RQ worker, every
signature checked by the reference ``standardwebhooks`` library."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook
from twilio.request_validator import RequestValidator

from tests.conftest import ApiClient, delivered_code
from tests.webhooks.conftest import Receiver, Request
from verify import jobs
from verify.client import verify_webhook
from verify.domain.clock import FrozenClock
from verify.events import outbox
from verify.models import Event
from verify.models.webhooks import WebhookAttempt, WebhookDelivery
from verify.runtime import Runtime

Pump = Callable[[], None]


def subscribe(api: ApiClient, receiver: Receiver, **extra: Any) -> dict[str, Any]:
    r = api.post(
        f"{api.base}/Webhooks",
        {"FriendlyName": "Acme", "EventTypes": "*", "WebhookUrl": receiver.url, **extra},
    )
    assert r.status_code == 201, r.get_json()
    body: dict[str, Any] = r.get_json()
    return body


def verified(secret: str, request: Request) -> dict[str, Any]:
    """The request's payload, checked by the reference implementation."""
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return payload


def service_events(runtime: Runtime, service_sid: str) -> list[str]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Event.sid).where(Event.service_sid == service_sid)))


def test_a_receiver_that_fails_for_a_while_gets_every_event_exactly_once(
    api: ApiClient, receiver: Receiver, pump: Pump, clock: FrozenClock, runtime: Runtime
) -> None:
    """500s for a while, then recovery: retries deliver some events, replay the dead ones; in the
    end every event was accepted exactly once, each with a valid Standard Webhooks signature."""
    failing = True
    receiver.answer = lambda _: 500 if failing else 204
    hook = subscribe(api, receiver)

    api.start("+14155550101")  # its deliveries will spend all three tries and die
    for _ in range(3):
        pump()
        clock.advance(10)
    dead = api.get(f"{api.base}/WebhookDeliveries?Status=dead").get_json()["deliveries"]
    assert dead, "the first verification's deliveries should be dead by now"

    api.start("+14155550102")  # these fail once and are retried after the receiver recovers
    pump()
    failing = False
    clock.advance(10)
    pump()
    r = api.post(f"{api.base}/Webhooks/{hook['sid']}/Replay")
    assert r.get_json()["replayed"] == len(dead)
    pump()
    api.check(delivered_code(runtime, "+14155550102"), to="+14155550102")
    pump()

    accepted = [verified(hook["secret"], req) for req in receiver.accepted()]
    ids = Counter(payload["id"] for payload in accepted)
    assert set(ids) == set(service_events(runtime, api.tenant.service_sid))
    assert set(ids.values()) == {1}, "an event was accepted more than once"
    assert {"verification.pending", "message.sent", "verification.approved"} <= {
        p["type"] for p in accepted
    }
    with runtime.sessions() as session:
        deliveries = session.scalars(select(WebhookDelivery)).all()
        tries = Counter(a.delivery_sid for a in session.scalars(select(WebhookAttempt)))
    assert {d.status for d in deliveries} == {"succeeded"}
    assert any(tries[d.sid] == 2 for d in deliveries), "no delivery succeeded on a retry"
    assert any(tries[d.sid] == 4 for d in deliveries), "no delivery succeeded on a replay"


def test_the_body_is_the_event_with_no_code_and_a_masked_number(
    api: ApiClient, receiver: Receiver, pump: Pump, runtime: Runtime
) -> None:
    """The payload carries ids, status, channel and the masked destination — never the code."""
    hook = subscribe(api, receiver, EventTypes="verification.pending")
    sid = api.start("+14155550103").get_json()["sid"]
    pump()
    (request,) = receiver.accepted()
    payload = verified(hook["secret"], request)
    assert payload["type"] == "verification.pending"
    assert payload["data"]["verification_sid"] == sid
    assert payload["data"]["channel"] == "sms"
    assert payload["data"]["to"].endswith("0103")
    assert "+14155550103" not in request.body.decode()
    assert delivered_code(runtime, "+14155550103") not in request.body.decode()
    assert request.headers["webhook-id"].startswith("WD")


def test_every_try_is_logged_and_a_dead_delivery_is_replayed(
    api: ApiClient, receiver: Receiver, pump: Pump, clock: FrozenClock
) -> None:
    """Three failed tries (status code, latency, error each) make a delivery dead; replaying it alone
    delivers it with a fresh budget."""
    answers = iter([503, 500, 502, 200])
    receiver.answer = lambda _: next(answers)
    hook = subscribe(api, receiver, EventTypes="verification.canceled")
    sid = api.start("+14155550104").get_json()["sid"]
    api.post(f"{api.base}/Verifications/{sid}", {"Status": "canceled"})
    for _ in range(3):
        pump()
        clock.advance(10)
    (delivery,) = api.get(f"{api.base}/WebhookDeliveries?WebhookSid={hook['sid']}").get_json()[
        "deliveries"
    ]
    detail = api.get(f"{api.base}/WebhookDeliveries/{delivery['sid']}").get_json()
    assert detail["status"] == "dead"
    assert [a["status_code"] for a in detail["attempt_log"]] == [503, 500, 502]
    assert [a["error"] for a in detail["attempt_log"]] == ["HTTP 503", "HTTP 500", "HTTP 502"]
    assert all(a["latency_ms"] is not None and a["time"] for a in detail["attempt_log"])

    replayed = api.post(f"{api.base}/WebhookDeliveries/{delivery['sid']}/Replay").get_json()
    assert replayed["status"] == "pending"
    pump()
    detail = api.get(f"{api.base}/WebhookDeliveries/{delivery['sid']}").get_json()
    assert detail["status"] == "succeeded"
    assert [a["number"] for a in detail["attempt_log"]] == [1, 2, 3, 4]
    assert len(receiver.accepted()) == 1


def test_backoff_waits_before_the_next_try(
    api: ApiClient, receiver: Receiver, pump: Pump, clock: FrozenClock
) -> None:
    """A failed try is not repeated before its backoff has passed."""
    receiver.answer = lambda _: 500
    subscribe(api, receiver, EventTypes="verification.pending")
    api.start("+14155550105")
    pump()
    pump()
    assert len(receiver.requests) == 1
    clock.advance(10)
    pump()
    assert len(receiver.requests) == 2


def test_rotation_signs_with_both_secrets_until_the_grace_period_ends(
    api: ApiClient, receiver: Receiver, pump: Pump, clock: FrozenClock
) -> None:
    """During a rotation each message carries one v1 signature per active secret; both verify."""
    hook = subscribe(api, receiver, EventTypes="verification.pending")
    rotated = api.post(f"{api.base}/Webhooks/{hook['sid']}/Secrets", {"GracePeriod": "3600"})
    assert rotated.status_code == 201
    new = rotated.get_json()["secret"]
    assert new.startswith("whsec_")
    assert new != hook["secret"]
    assert len(api.get(f"{api.base}/Webhooks/{hook['sid']}/Secrets").get_json()["secrets"]) == 2

    api.start("+14155550106")
    pump()
    request = receiver.accepted()[-1]
    assert len(request.headers["webhook-signature"].split()) == 2
    verified(hook["secret"], request)
    verified(new, request)
    verify_webhook(new, request.headers, request.body)

    clock.advance(3601)
    api.start("+14155550107")
    pump()
    request = receiver.accepted()[-1]
    assert len(request.headers["webhook-signature"].split()) == 1
    verified(new, request)
    with pytest.raises(Exception, match="signature"):
        verified(hook["secret"], request)


def test_twilio_signature_mode_is_checked_by_twilios_validator(
    api: ApiClient, receiver: Receiver, pump: Pump
) -> None:
    """SignatureMode=twilio adds X-Twilio-Signature over the URL with bodySHA256, as Twilio signs."""
    hook = subscribe(api, receiver, EventTypes="verification.pending", SignatureMode="twilio")
    api.start("+14155550108")
    pump()
    (request,) = receiver.accepted()
    url = receiver.url.rsplit("/", 1)[0] + request.path
    assert "bodySHA256=" in url
    validator = RequestValidator(hook["secret"])
    assert validator.validate(url, request.body.decode(), request.headers["X-Twilio-Signature"])
    assert not validator.validate(
        url, request.body.decode() + " ", request.headers["X-Twilio-Signature"]
    )
    verified(hook["secret"], request)  # the Standard Webhooks headers are there too


def test_a_status_callback_gets_its_verifications_events(
    api: ApiClient, receiver: Receiver, pump: Pump, runtime: Runtime
) -> None:
    """StatusCallback on create: that verification's events go to its URL, signed with the service's
    callback secret; another verification's do not."""
    secret = api.post(f"{api.base}/CallbackSecrets").get_json()["secret"]
    sid = api.start("+14155550109", StatusCallback=receiver.url).get_json()["sid"]
    api.start("+14155550110")
    pump()
    api.check(delivered_code(runtime, "+14155550109"), to="+14155550109")
    pump()
    payloads = [verified(secret, r) for r in receiver.accepted()]
    assert {p["data"]["verification_sid"] for p in payloads} == {sid}
    assert {"verification.pending", "message.queued", "verification.approved"} <= {
        p["type"] for p in payloads
    }


def test_a_disabled_webhook_gets_nothing(api: ApiClient, receiver: Receiver, pump: Pump) -> None:
    """Status=disabled pauses a subscription: no deliveries are made for it."""
    hook = subscribe(api, receiver)
    api.post(f"{api.base}/Webhooks/{hook['sid']}", {"Status": "disabled"})
    api.start("+14155550111")
    pump()
    assert receiver.requests == []


def test_the_concurrency_limit_holds_across_workers(
    api: ApiClient, receiver: Receiver, pump: Pump, runtime: Runtime, clock: FrozenClock
) -> None:
    """With a limit of 2, six deliveries sent by six threads at once never have more than two
    requests open at the endpoint; the ones turned away are sent later without losing a try."""
    runtime.settings = replace(
        runtime.settings, limits=replace(runtime.settings.limits, webhook_concurrency=2)
    )
    receiver.delay = 0.5
    subscribe(api, receiver)  # "*" takes any type, even one the API does not list
    with runtime.sessions() as session, session.begin():
        for n in range(6):
            outbox.record(
                session,
                "test.event",
                account_sid=api.tenant.account_sid,
                service_sid=api.tenant.service_sid,
                subject_sid=f"VE{n:032x}",
                payload={"n": n},
                at=clock.now(),
            )
    passed = jobs.relay()
    assert passed["created"] == 6
    with runtime.sessions() as session:
        sids = list(session.scalars(select(WebhookDelivery.sid)))
    outcomes: list[str] = []
    threads = [
        threading.Thread(target=lambda s=s: outcomes.append(jobs.deliver_webhook(s))) for s in sids
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert receiver.max_in_flight == 2
    assert outcomes.count("sent") >= 2
    assert "deferred" in outcomes
    clock.advance(5)
    pump()
    assert len(receiver.accepted()) == 6
    with runtime.sessions() as session:
        assert {d.attempts for d in session.scalars(select(WebhookDelivery))} == {1}


def test_an_unknown_or_finished_delivery_job_sends_nothing(
    api: ApiClient, receiver: Receiver, pump: Pump
) -> None:
    """A duplicate job for a delivery that already succeeded, or for no delivery, does nothing."""
    subscribe(api, receiver, EventTypes="verification.pending")
    api.start("+14155550112")
    pump()
    (delivery,) = api.get(f"{api.base}/WebhookDeliveries").get_json()["deliveries"]
    assert jobs.deliver_webhook(delivery["sid"]) == "already_succeeded"
    assert jobs.deliver_webhook("WD" + "0" * 32) == "unknown_delivery"
    assert len(receiver.requests) == 1


def test_payload_body_is_compact_json(api: ApiClient, receiver: Receiver, pump: Pump) -> None:
    """The body is one JSON object with id, type, timestamp and data (Standard Webhooks' shape)."""
    subscribe(api, receiver, EventTypes="verification.*")
    api.start("+14155550113")
    pump()
    body = json.loads(receiver.accepted()[0].body)
    assert set(body) >= {"id", "type", "timestamp", "data"}
    assert body["timestamp"].endswith("Z")
