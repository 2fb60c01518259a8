"""The delivery pipeline through a real RQ worker against local gateways speaking the ``http``
provider's protocol (tests/peers/gateway.py, one peer per provider): failover, retries bounded by
expiry, circuit breaking, channel fallback and delivery receipts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import ApiClient, code_in, make_tenant
from tests.jobs.conftest import MODES, Gateways
from verify import jobs
from verify.delivery.queue import TIMERS
from verify.delivery.sender import SendService
from verify.models import Event, SendAttempt
from verify.models.delivery import DeliveryReceipt

TO = "+14155550123"
# Unrelated numbers (no prefix or sequence an abuse rule would see as a burst).
DISTINCT = [
    "+14155550123",
    "+12125557781",
    "+13105554409",
    "+16175552276",
    "+17735558830",
    "+12065551194",
    "+15125556652",
    "+13035553317",
]


def attempts_of(api: ApiClient, sid: str) -> list[dict]:
    return api.get(f"{api.base}/Verifications/{sid}").json["send_code_attempts"]


def verification(api: ApiClient, sid: str) -> dict:
    return api.get(f"{api.base}/Verifications/{sid}").json


def events(runtime, subject: str) -> list[str]:
    with runtime.sessions() as s:
        return list(
            s.scalars(select(Event.type).where(Event.subject_sid == subject).order_by(Event.id))
        )


def advance_and_release(clock, runtime, seconds: float) -> int:
    clock.advance(seconds)
    return jobs.release_timers()


# -- failover ------------------------------------------------------------------------------------


def test_first_provider_down_the_second_delivers(api, gateways, work, runtime):
    """Provider 1 answers 503: a second attempt goes to provider 2; both are visible; still pending."""
    first = gateways.add(api, "p1", 1)
    second = gateways.add(api, "p2", 2)
    gateways.mode("p1", "unavailable")
    sid = api.start().json["sid"]
    work()

    attempts = attempts_of(api, sid)
    assert [(a["status"], a["provider_sid"]) for a in attempts] == [
        ("failed", first),
        ("sent", second),
    ]
    assert attempts[0]["reason_code"] == "provider_unavailable"
    assert attempts[1]["replaces_sid"] == attempts[0]["attempt_sid"]
    assert verification(api, sid)["status"] == "pending"
    listed = api.get(f"/v2/Attempts?VerificationSid={sid}").json["attempts"]
    assert {a["sid"] for a in listed} == {a["attempt_sid"] for a in attempts}
    assert {a["provider_sid"] for a in listed} == {first, second}
    [message] = gateways.calls("p2")
    assert api.check(code_in(message["body"])).json["status"] == "approved"


def test_failover_does_not_count_against_max_send_attempts(app, runtime, gateways, work):
    """With MaxSendAttempts=1, a failover still happens and the verification stays usable."""
    api = ApiClient(app, make_tenant(runtime, "One", max_send_attempts=1))
    gateways.add(api, "p1", 1)
    gateways.add(api, "p2", 2)
    gateways.mode("p1", "unavailable")
    sid = api.start().json["sid"]
    work()
    assert [a["status"] for a in attempts_of(api, sid)] == ["failed", "sent"]


def test_permanent_failure_is_not_failed_over(api, gateways, work, runtime):
    """An invalid destination fails the attempt and the verification; provider 2 is not tried."""
    gateways.add(api, "p1", 1)
    gateways.add(api, "p2", 2)
    gateways.mode("p1", "invalid")
    sid = api.start().json["sid"]
    work()
    [attempt] = attempts_of(api, sid)
    assert (attempt["status"], attempt["reason_code"]) == ("failed", "invalid_destination")
    assert gateways.calls("p2") == []
    assert verification(api, sid)["status"] == "failed"
    assert "verification.failed" in events(runtime, sid)


def test_no_route_in_production_fails_with_no_route(app, runtime, work, settings):
    """In production an account without a provider for the route fails the attempt: no_route."""
    from dataclasses import replace

    from verify.delivery.pipeline import Delivery

    jobs._delivery = Delivery(replace(runtime, settings=replace(settings, env="production")))
    api = ApiClient(app, make_tenant(runtime))
    sid = api.start().json["sid"]
    work()
    [attempt] = attempts_of(api, sid)
    assert (attempt["status"], attempt["reason_code"]) == ("failed", "no_route")
    assert verification(api, sid)["status"] == "failed"


# -- retries -------------------------------------------------------------------------------------


def test_retry_backs_off_then_delivers_with_the_same_provider(api, gateways, work, runtime, clock):
    """A 429 schedules a retry of the same attempt; when it falls due the message goes out."""
    gateways.add(api, "p1", 1)
    gateways.mode("p1", "rate_limited")
    sid = api.start().json["sid"]
    work()
    [attempt] = attempts_of(api, sid)
    assert (attempt["status"], attempt["reason_code"]) == ("queued", "provider_rate_limited")
    assert runtime.redis.zcard(TIMERS) == 1
    assert jobs.release_timers() == 0  # not due yet
    gateways.mode("p1", "accept")
    assert advance_and_release(clock, runtime, 5) == 1
    work()
    [attempt] = attempts_of(api, sid)
    assert attempt["status"] == "sent"
    assert len(gateways.calls("p1")) == 2


def test_retries_stop_at_the_codes_expiry(app, runtime, gateways, work, clock):
    """A retry that would fall after the code expires is not scheduled: the attempt fails."""
    api = ApiClient(app, make_tenant(runtime, "Short", code_ttl=30))
    gateways.add(api, "p1", 1)
    gateways.mode("p1", "rate_limited")
    sid = api.start().json["sid"]
    clock.advance(29)
    work()
    [attempt] = attempts_of(api, sid)
    assert (attempt["status"], attempt["reason_code"]) == ("failed", "provider_rate_limited")
    assert runtime.redis.zcard(TIMERS) == 0


def test_retries_are_bounded_then_fail_over(api, gateways, work, runtime, clock):
    """After VERIFY_DELIVERY_MAX_TRIES calls to one provider the next provider takes the message."""
    gateways.add(api, "p1", 1)
    gateways.add(api, "p2", 2)
    gateways.mode("p1", "rate_limited")
    sid = api.start().json["sid"]
    work()
    for _ in range(5):
        advance_and_release(clock, runtime, 61)
        work()
    assert len(gateways.calls("p1")) == runtime.settings.limits.delivery_max_tries
    assert [a["status"] for a in attempts_of(api, sid)] == ["failed", "sent"]
    assert len(gateways.calls("p2")) == 1


def test_a_retry_never_sends_for_a_canceled_verification(api, gateways, work, runtime, clock):
    """A retry that falls due after the verification was canceled sends nothing."""
    gateways.add(api, "p1", 1)
    gateways.mode("p1", "rate_limited")
    sid = api.start().json["sid"]
    work()
    api.post(f"{api.base}/Verifications/{sid}", {"Status": "canceled"})
    gateways.mode("p1", "accept")
    advance_and_release(clock, runtime, 61)
    work()
    assert len(gateways.calls("p1")) == 1
    [attempt] = attempts_of(api, sid)
    assert (attempt["status"], attempt["reason_code"]) == ("canceled", "verification_canceled")


@pytest.mark.parametrize("end", ["canceled", "approved", "expired"])
def test_a_job_requeued_by_hand_sends_nothing_for_a_finished_verification(
    app, runtime, gateways, work, clock, end
):
    """Requeuing the deliver job (as from rq-dashboard) after the verification ended sends nothing."""
    api = ApiClient(app, make_tenant(runtime, "Req", custom_code_enabled=True))
    gateways.add(api, "p1", 1)
    gateways.mode("p1", "rate_limited")  # leaves the attempt queued, waiting for a retry
    sid = api.start(CustomCode="4821").json["sid"]
    work()
    attempt_sid = attempts_of(api, sid)[0]["attempt_sid"]
    gateways.mode("p1", "accept")
    if end == "canceled":
        api.post(f"{api.base}/Verifications/{sid}", {"Status": "canceled"})
    elif end == "approved":
        assert api.check("4821").json["status"] == "approved"
    else:
        clock.advance(601)
    runtime.queue.enqueue("verify.jobs.deliver", attempt_sid)
    work()
    assert len(gateways.calls("p1")) == 1


# -- circuit breaker -----------------------------------------------------------------------------


def test_circuit_opens_skips_probes_and_closes(api, gateways, work, runtime, clock):
    """5 failures open p1's circuit: it is skipped; after the cool-down one probe closes it."""
    gateways.add(api, "p1", 1)
    gateways.add(api, "p2", 2)
    gateways.mode("p1", "unavailable")
    for to in DISTINCT[:5]:
        assert api.start(to=to).status_code == 201
        work()
    assert len(gateways.calls("p1")) == 5

    sid = api.start(to=DISTINCT[5]).json["sid"]
    work()
    assert len(gateways.calls("p1")) == 5  # skipped while open
    assert [a["status"] for a in attempts_of(api, sid)] == ["sent"]

    gateways.mode("p1", "accept")
    clock.advance(runtime.settings.limits.circuit_cooldown + 1)
    for to in DISTINCT[6:8]:
        sid = api.start(to=to).json["sid"]
        work()
        [attempt] = attempts_of(api, sid)
        assert attempt["provider_sid"] == gateway_provider(api, "p1")
    assert len(gateways.calls("p1")) == 7


# Unrelated French mobiles.
FRENCH = [
    "+33612873405",
    "+33698120457",
    "+33645290318",
    "+33677304912",
    "+33630958846",
    "+33751862039",
]


def test_an_outage_in_one_country_rests_the_provider_for_that_country_only(
    api, gateways, work, runtime
):
    """p1 cannot reach French numbers: after 5 failures its French circuit opens and French
    messages go straight to p2, while American ones still go to p1."""
    p1 = gateways.add(api, "p1", 1)
    p2 = gateways.add(api, "p2", 2)
    for to in FRENCH:
        gateways["p1"].behave(MODES["unavailable"], to=to)
    for to in FRENCH[:5]:
        sid = api.start(to=to).json["sid"]
        work()
        assert [a["provider_sid"] for a in attempts_of(api, sid)] == [p1, p2]

    sid = api.start(to=FRENCH[5]).json["sid"]
    work()
    assert [a["provider_sid"] for a in attempts_of(api, sid)] == [p2]  # no call to p1
    assert len(gateways.calls("p1")) == 5
    sid = api.start(to=DISTINCT[0]).json["sid"]
    work()
    assert [(a["provider_sid"], a["status"]) for a in attempts_of(api, sid)] == [(p1, "sent")]
    breakers = jobs.delivery().breakers
    assert breakers.state(f"{p1}:FR")["state"] == "open"
    assert breakers.state(f"{p1}:US").get("state", "closed") == "closed"


def gateway_provider(api: ApiClient, name: str) -> str:
    providers = api.get("/v2/Providers").json["providers"]
    return next(p["sid"] for p in providers if p["friendly_name"] == name)


# -- channel fallback ----------------------------------------------------------------------------


@pytest.fixture
def fallback_api(app, runtime, gateways) -> ApiClient:
    api = ApiClient(
        app, make_tenant(runtime, "Fb", fallback_channels=("sms", "call"), channel_timeout=30)
    )
    gateways.add(api, "sms1", 1, Channels="sms")
    gateways.add(api, "voice1", 1, Channels="call")
    return api


def test_permanent_failure_falls_back_to_the_next_channel(fallback_api, gateways, work):
    """SMS fails permanently: the same code goes out by call; the verification stays pending."""
    api = fallback_api
    gateways.mode("sms1", "invalid")
    sid = api.start().json["sid"]
    work()
    attempts = attempts_of(api, sid)
    assert [(a["channel"], a["status"]) for a in attempts] == [("sms", "failed"), ("call", "sent")]
    assert verification(api, sid)["status"] == "pending"
    [call] = gateways.calls("voice1")
    assert call["channel"] == "call"
    assert api.check(code_in(call["body"])).json["status"] == "approved"


def test_channel_timeout_falls_back_when_nothing_happened(
    fallback_api, gateways, work, clock, runtime
):
    """No receipt and no check within ChannelTimeout: the next channel is sent."""
    api = fallback_api
    sid = api.start().json["sid"]
    work()
    assert advance_and_release(clock, runtime, 31) == 1
    work()
    assert [(a["channel"], a["status"]) for a in attempts_of(api, sid)] == [
        ("sms", "sent"),
        ("call", "sent"),
    ]


def test_no_fallback_after_a_check(fallback_api, gateways, work, clock, runtime):
    """A check (even a wrong one) within the timeout means the person got the message."""
    api = fallback_api
    sid = api.start().json["sid"]
    work()
    clock.advance(5)
    api.check("000000")
    advance_and_release(clock, runtime, 30)
    work()
    assert [a["channel"] for a in attempts_of(api, sid)] == ["sms"]


def test_no_fallback_after_a_delivered_receipt(fallback_api, gateways, work, clock, runtime):
    """A delivered receipt within the timeout stops the fallback."""
    api = fallback_api
    sid = api.start().json["sid"]
    work()
    post_receipt(api, gateways, "sms1", "delivered")
    advance_and_release(clock, runtime, 31)
    work()
    assert [(a["channel"], a["status"]) for a in attempts_of(api, sid)] == [("sms", "delivered")]


# -- delivery receipts ---------------------------------------------------------------------------


def post_receipt(
    api: ApiClient, gateways: Gateways, name: str, status: str, reason=None, headers=None
):
    """The gateway's receipt for the first message it accepted, through the test client."""
    peer = gateways[name]
    body, signed = peer.signed_receipt(peer.message_ids[0], status, reason=reason)
    sid = gateway_provider(api, name)
    return api.client.post(f"/v2/Callbacks/{sid}", data=body, headers=headers or signed)


def receipts(runtime) -> list[tuple[str, bool]]:
    with runtime.sessions() as s:
        rows = s.scalars(select(DeliveryReceipt).order_by(DeliveryReceipt.id))
        return [(r.status, r.applied) for r in rows]


def test_receipts_are_duplicate_and_out_of_order_safe(api, gateways, work, runtime):
    """delivered moves the attempt on; a duplicate and a late sent change nothing."""
    gateways.add(api, "p1", 1)
    sid = api.start().json["sid"]
    work()
    attempt_sid = attempts_of(api, sid)[0]["attempt_sid"]
    assert post_receipt(api, gateways, "p1", "delivered").status_code == 204
    assert post_receipt(api, gateways, "p1", "delivered").status_code == 204
    assert post_receipt(api, gateways, "p1", "sent").status_code == 204
    assert attempts_of(api, sid)[0]["status"] == "delivered"
    assert events(runtime, attempt_sid).count("message.delivered") == 1
    assert receipts(runtime) == [("delivered", True), ("sent", False)]
    detail = api.get(f"/v2/Attempts/{attempt_sid}").json
    assert [r["status"] for r in detail["receipts"]] == ["delivered", "sent"]


def test_a_receipt_that_comes_before_the_send_is_recorded_is_applied(
    api, gateways, work, runtime, public_url, monkeypatch
):
    """A gateway may post its receipt before the worker has recorded the message id it answered:
    the receipt is kept unmatched, and applied as the send is recorded."""
    gateways.add(api, "p1", 1)
    call = SendService._call

    def call_then_receipt(self, route, message):  # type: ignore[no-untyped-def]
        result = call(self, route, message)
        assert message.status_callback is not None  # the send asked for receipts
        assert post_receipt(api, gateways, "p1", "delivered").status_code == 204
        assert receipts(runtime) == [("delivered", False)]  # not matched yet
        return result

    monkeypatch.setattr(SendService, "_call", call_then_receipt)
    sid = api.start().json["sid"]
    work()
    [attempt] = attempts_of(api, sid)
    assert attempt["status"] == "delivered"
    assert receipts(runtime) == [("delivered", True)]
    assert events(runtime, attempt["attempt_sid"]).count("message.sent") == 1
    assert events(runtime, attempt["attempt_sid"]).count("message.delivered") == 1


def test_the_sweep_applies_a_receipt_stranded_by_the_race_with_the_worker(
    api, gateways, work, runtime, clock
):
    """A receipt whose handler missed the attempt, stored after the worker looked for early ones,
    waits unmatched: the next sweep matches and applies it. A receipt for a message nobody sent
    stays unmatched."""
    gateways.add(api, "p1", 1)
    sid = api.start().json["sid"]
    work()
    [attempt] = attempts_of(api, sid)
    provider_sid = gateway_provider(api, "p1")
    with runtime.sessions() as session, session.begin():
        for message_id in (gateways["p1"].message_ids[0], "gw-nobody-sent-this"):
            session.add(
                DeliveryReceipt(
                    account_sid=api.tenant.account_sid,
                    provider_sid=provider_sid,
                    provider_message_id=message_id,
                    attempt_sid=None,
                    status="delivered",
                    applied=False,
                    date_created=clock.now(),
                )
            )
    assert jobs.sweep()["receipts_matched"] == 1
    assert attempts_of(api, sid)[0]["status"] == "delivered"
    assert events(runtime, attempt["attempt_sid"]).count("message.delivered") == 1
    assert receipts(runtime) == [("delivered", True), ("delivered", False)]
    assert jobs.sweep()["receipts_matched"] == 0


def test_undelivered_receipt_fails_the_verification(api, gateways, work, runtime):
    """undelivered with a reason: the attempt says why, and with nothing else in flight it is failed."""
    gateways.add(api, "p1", 1)
    sid = api.start().json["sid"]
    work()
    post_receipt(api, gateways, "p1", "undelivered", "unreachable_destination")
    [attempt] = attempts_of(api, sid)
    assert (attempt["status"], attempt["reason_code"]) == ("undelivered", "unreachable_destination")
    assert verification(api, sid)["status"] == "failed"


def test_a_receipt_with_a_bad_signature_changes_nothing(api, gateways, work, runtime):
    """A wrong signature is 403 / 68701 and nothing is stored."""
    gateways.add(api, "p1", 1)
    sid = api.start().json["sid"]
    work()
    _, headers = gateways["p1"].signed_receipt(gateways["p1"].message_ids[0], "undelivered")
    r = post_receipt(api, gateways, "p1", "delivered", headers=headers)  # signed another body
    assert (r.status_code, r.json["code"]) == (403, 68701)
    assert attempts_of(api, sid)[0]["status"] == "sent"
    assert receipts(runtime) == []


def test_a_receipt_for_an_unknown_provider_is_404(api):
    """The callback path names a provider; an unknown one is 404."""
    r = api.client.post("/v2/Callbacks/PV" + "0" * 32, data=b"{}")
    assert (r.status_code, r.json["code"]) == (404, 20404)


# -- the attempt log -----------------------------------------------------------------------------


def test_attempts_summary_counts_conversions(api, gateways, work, runtime):
    """Summary: total, converted, unconverted and the rate, per the filters."""
    gateways.add(api, "p1", 1)
    api.start()
    api.start(to="+14155550124")
    work()
    api.check(code_in(gateways.calls("p1")[0]["body"]))
    summary = api.get("/v2/Attempts/Summary").json
    assert (
        summary["total_attempts"],
        summary["total_converted"],
        summary["total_unconverted"],
    ) == (2, 1, 1)
    assert summary["conversion_rate_percentage"] == "50"
    converted = api.get("/v2/Attempts?Status=converted").json["attempts"]
    assert [a["conversion_status"] for a in converted] == ["converted"]
    assert api.get("/v2/Attempts?Channel=call").json["attempts"] == []


def test_blocked_attempts_appear_in_the_log(api, runtime):
    """An attempt the abuse controls blocked is listed with its status and reason."""
    sid = api.start().json["sid"]
    with runtime.sessions() as s, s.begin():
        attempt = s.scalar(select(SendAttempt).where(SendAttempt.verification_sid == sid))
        attempt.status, attempt.reason_code = "blocked", "geo_permission"
    [listed] = api.get("/v2/Attempts").json["attempts"]
    assert (listed["status"], listed["reason_code"]) == ("blocked", "geo_permission")


def test_no_attempts_of_another_account(api, app, runtime, gateways, work):
    """/v2/Attempts lists only the caller's account; another account's attempt is 404."""
    sid = api.start().json["sid"]
    attempt_sid = attempts_of(api, sid)[0]["attempt_sid"]
    other = ApiClient(app, make_tenant(runtime, "Other"))
    assert other.get("/v2/Attempts").json["attempts"] == []
    assert other.get(f"/v2/Attempts/{attempt_sid}").status_code == 404
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(SendAttempt)) == 1
    _ = timedelta
