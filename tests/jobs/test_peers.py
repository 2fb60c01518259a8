"""The pipeline end to end through the real protocol peers (tests/peers/) and a real RQ worker:
failover from Twilio to Vonage or a gateway, Twilio and Vonage receipts posted to the app on a
socket, email through SMTP, and the second half of "press a key first" calls."""

from __future__ import annotations

import json
import re

from sqlalchemy import event, select, update
from sqlalchemy.orm import ORMExecuteState

from tests.conftest import ApiClient, code_in, make_tenant
from tests.jobs.conftest import Gateways, add_twilio, add_vonage
from tests.peers._server import accept, fail
from tests.peers.smtp import SmtpPeer
from verify import jobs
from verify.delivery.providers import STATUS_LOOKUP_TYPES
from verify.delivery.receipts import LOOKUP_WINDOW, due_lookups
from verify.models import Event, SendAttempt
from verify.models.delivery import DeliveryReceipt

TO = "+14155550123"


def attempts_of(api: ApiClient, sid: str) -> list[dict]:
    return api.get(f"{api.base}/Verifications/{sid}").json["send_code_attempts"]


def message_id(runtime, attempt_sid: str) -> str:
    with runtime.sessions() as s:
        attempt = s.get(SendAttempt, attempt_sid)
        assert attempt is not None
        assert attempt.provider_message_id
        return attempt.provider_message_id


def events(runtime, subject: str) -> list[str]:
    with runtime.sessions() as s:
        return list(
            s.scalars(select(Event.type).where(Event.subject_sid == subject).order_by(Event.id))
        )


def delivered_through_twilio(api: ApiClient, peer, work) -> tuple[str, dict]:
    """One start through the Twilio peer, which posts a delivered receipt: the verification's sid
    and its one attempt."""
    add_twilio(api, peer)
    peer.behave(accept("delivered"))
    sid = api.start().json["sid"]
    work()
    peer.settle()
    [attempt] = attempts_of(api, sid)
    return sid, attempt


def sent_through_twilio_receipts_lost(
    api: ApiClient, peer, work, *statuses: str, error_code: str | None = None
) -> str:
    """One start through the Twilio peer, which reaches ``statuses`` (default: sent) but whose
    receipts never reach us: the verification's sid."""
    add_twilio(api, peer)
    peer.behave(accept(*(statuses or ("sent",)), error_code=error_code, lost=True))
    sid = api.start().json["sid"]
    work()
    return str(sid)


def stored_receipts(runtime) -> list[tuple[str, bool, str]]:
    """Every stored receipt as (status, applied, source), in arrival order."""
    with runtime.sessions() as s:
        rows = s.scalars(select(DeliveryReceipt).order_by(DeliveryReceipt.id))
        return [(r.status, r.applied, r.source) for r in rows]


# -- failover ------------------------------------------------------------------------------------


def test_twilio_down_vonage_delivers(api, twilio_peer, vonage_peer, work, runtime):
    """Twilio answers 503: Vonage sends the same code; both attempts listed; still pending."""
    twilio = add_twilio(api, twilio_peer)
    vonage = add_vonage(api, vonage_peer)
    twilio_peer.behave(fail(503, 20500))
    sid = api.start().json["sid"]
    work()

    attempts = attempts_of(api, sid)
    assert [(a["status"], a["provider_sid"], a["reason_code"]) for a in attempts] == [
        ("failed", twilio, "provider_unavailable"),
        ("sent", vonage, None),
    ]
    assert api.get(f"{api.base}/Verifications/{sid}").json["status"] == "pending"
    listed = api.get(f"/v2/Attempts?VerificationSid={sid}").json["attempts"]
    assert {(a["sid"], a["provider"]) for a in listed} == {
        (attempts[0]["attempt_sid"], "twilio"),
        (attempts[1]["attempt_sid"], "vonage"),
    }
    assert len(twilio_peer.sends("Messages")) == 1
    [sms] = vonage_peer.sends("/sms/json")
    assert sms.form["to"] == TO.lstrip("+")
    assert api.check(code_in(sms.form["text"])).json["status"] == "approved"


def test_twilio_unreachable_the_gateway_delivers_in_a_worker_process(
    api, twilio_peer, gateways: Gateways, worker_process
):
    """Twilio refuses connections (stopped): the http gateway delivers, run by `workers.worker`."""
    twilio = add_twilio(api, twilio_peer)
    gateway = gateways.add(api, "gateway", priority=2)
    twilio_peer.stop()
    sid = api.start().json["sid"]
    worker_process()

    attempts = attempts_of(api, sid)
    assert [(a["status"], a["provider_sid"]) for a in attempts] == [
        ("failed", twilio),
        ("sent", gateway),
    ]
    [message] = gateways.calls("gateway")
    assert (message["to"], message["attempt_sid"]) == (TO, attempts[1]["attempt_sid"])
    assert api.check(code_in(message["body"])).json["status"] == "approved"


# -- Twilio receipts -----------------------------------------------------------------------------


def test_twilio_receipts_mark_the_attempt_delivered(api, twilio_peer, work, runtime, public_url):
    """The peer posts queued, sent, delivered to the callback URL with X-Twilio-Signature."""
    add_twilio(api, twilio_peer)
    twilio_peer.behave(accept("queued", "sent", "delivered"))
    sid = api.start().json["sid"]
    work()
    twilio_peer.settle()

    [send] = twilio_peer.sends("Messages")
    provider_sid = attempts_of(api, sid)[0]["provider_sid"]
    assert send.form["StatusCallback"] == f"{public_url}/v2/Callbacks/{provider_sid}"
    assert twilio_peer.receipt_responses == [204, 204, 204]
    [attempt] = attempts_of(api, sid)
    assert attempt["status"] == "delivered"
    detail = api.get(f"/v2/Attempts/{attempt['attempt_sid']}").json
    assert [(r["status"], r["source"]) for r in detail["receipts"]] == [
        ("queued", "callback"),
        ("sent", "callback"),
        ("delivered", "callback"),
    ]
    assert events(runtime, attempt["attempt_sid"]).count("message.delivered") == 1


def test_a_lost_receipt_is_recovered_by_looking_the_message_up(
    api, twilio_peer, work, runtime, clock, public_url
):
    """The message went undelivered at Twilio, but the callback never reached us: ten minutes on,
    the sweep has a job ask Twilio, and the attempt shows what the receipt would have said. A
    message with a final status is not looked up again."""
    sid = sent_through_twilio_receipts_lost(
        api, twilio_peer, work, "sent", "undelivered", error_code="30003"
    )
    assert twilio_peer.receipt_responses == []
    assert attempts_of(api, sid)[0]["status"] == "sent"
    assert jobs.sweep()["lookups"] == 0  # too early: receipts may still come

    clock.advance(runtime.settings.limits.reconcile_after)
    assert jobs.sweep()["lookups"] == 1
    work()
    [attempt] = attempts_of(api, sid)
    assert (attempt["status"], attempt["reason_code"]) == ("undelivered", "unreachable_destination")
    msg = message_id(runtime, attempt["attempt_sid"])
    assert any(r.method == "GET" and msg in r.path for r in twilio_peer.requests)
    assert stored_receipts(runtime) == [("undelivered", True, "lookup")]
    detail = api.get(f"/v2/Attempts/{attempt['attempt_sid']}").json
    assert [(r["status"], r["source"]) for r in detail["receipts"]] == [("undelivered", "lookup")]
    assert "message.undelivered" in events(runtime, attempt["attempt_sid"])
    clock.advance(60)
    assert jobs.sweep()["lookups"] == 0
    clock.advance(runtime.settings.limits.reconcile_after)
    assert jobs.sweep()["lookups"] == 0
    assert sum(r.method == "GET" for r in twilio_peer.requests) == 1


def test_a_lookup_after_the_receipt_came_asks_nothing(api, twilio_peer, work, runtime, public_url):
    """A lookup job that finds its attempt concluded meanwhile (the receipt did come) does not call
    the provider."""
    _, attempt = delivered_through_twilio(api, twilio_peer, work)
    assert attempt["status"] == "delivered"
    assert jobs.reconcile(attempt["attempt_sid"]) == "concluded"
    assert [r.method for r in twilio_peer.requests] == ["POST"]


def test_only_providers_that_can_look_a_message_up_are_asked(
    api, twilio_peer, gateways: Gateways, work, runtime, clock
):
    """A message Twilio still shows as sent stays sent; one through a gateway (no lookup in its
    protocol) is never asked about, however often the sweep runs."""
    after = runtime.settings.limits.reconcile_after
    add_twilio(api, twilio_peer, Priority=1)
    gateways.add(api, "gw", 2)
    twilio_peer.behave(accept("sent", lost=True))
    twilio_peer.behave(fail(503, 20500), to="+12125557781")  # fails over to the gateway
    first = api.start().json["sid"]
    second = api.start(to="+12125557781").json["sid"]
    work()
    assert attempts_of(api, first)[0]["status"] == "sent"
    assert [a["status"] for a in attempts_of(api, second)] == ["failed", "sent"]

    clock.advance(after)
    assert jobs.sweep()["lookups"] == 1
    work()
    assert attempts_of(api, first)[0]["status"] == "sent"
    assert stored_receipts(runtime) == [("sent", False, "lookup")]  # kept, as if posted
    assert sum(r.method == "GET" for r in twilio_peer.requests) == 1
    assert jobs.sweep()["lookups"] == 0

    clock.advance(after)
    assert jobs.sweep()["lookups"] == 1  # the Twilio message again, never the gateway's
    work()
    assert sum(r.method == "GET" for r in twilio_peer.requests) == 2
    assert [r.method for r in gateways["gw"].requests] == ["POST"]
    assert [a["status"] for a in attempts_of(api, second)] == ["failed", "sent"]


def test_a_message_still_sent_is_looked_up_again_after_another_delay(
    api, twilio_peer, work, runtime, clock
):
    """Twilio first answers sent: the message is not asked about again before another
    VERIFY_RECONCILE_AFTER seconds, and is after it; the second answer, delivered, is applied."""
    after = runtime.settings.limits.reconcile_after
    sid = sent_through_twilio_receipts_lost(api, twilio_peer, work)
    [attempt] = attempts_of(api, sid)
    msg = message_id(runtime, attempt["attempt_sid"])

    clock.advance(after)
    assert jobs.sweep()["lookups"] == 1
    work()
    assert attempts_of(api, sid)[0]["status"] == "sent"
    assert stored_receipts(runtime) == [("sent", False, "lookup")]

    twilio_peer.statuses[msg] = ("delivered", None)  # Twilio learnt the final status meanwhile
    clock.advance(after - 1)
    assert jobs.sweep()["lookups"] == 0  # its last lookup is too recent
    work()
    assert attempts_of(api, sid)[0]["status"] == "sent"
    clock.advance(1)
    assert jobs.sweep()["lookups"] == 1
    work()
    [attempt] = attempts_of(api, sid)
    assert attempt["status"] == "delivered"
    assert [r.method == "GET" and msg in r.path for r in twilio_peer.requests].count(True) == 2
    assert stored_receipts(runtime) == [("sent", False, "lookup"), ("delivered", True, "lookup")]
    assert events(runtime, attempt["attempt_sid"]).count("message.delivered") == 1
    clock.advance(after)
    assert jobs.sweep()["lookups"] == 0  # final: never asked again


def test_a_lookup_job_lost_after_its_claim_is_retried(api, twilio_peer, work, runtime, clock):
    """The sweep claimed the attempt, then its lookup job was lost (Redis lost its data): no sweep
    asks again while the claim is fresh, and one does once VERIFY_RECONCILE_AFTER seconds more have
    passed; the attempt then gets its final status."""
    after = runtime.settings.limits.reconcile_after
    sid = sent_through_twilio_receipts_lost(api, twilio_peer, work, "sent", "delivered")

    clock.advance(after)
    assert jobs.sweep()["lookups"] == 1
    runtime.queue.empty()  # the job is gone before any worker ran it
    work()
    assert not any(r.method == "GET" for r in twilio_peer.requests)
    assert attempts_of(api, sid)[0]["status"] == "sent"
    assert jobs.sweep()["lookups"] == 0
    clock.advance(after - 1)
    assert jobs.sweep()["lookups"] == 0

    clock.advance(1)
    assert jobs.sweep()["lookups"] == 1
    work()
    assert sum(r.method == "GET" for r in twilio_peer.requests) == 1
    assert attempts_of(api, sid)[0]["status"] == "delivered"
    assert stored_receipts(runtime) == [("delivered", True, "lookup")]


def test_of_two_concurrent_sweeps_one_claims_each_lookup(api, twilio_peer, work, runtime, clock):
    """Another sweep claims the attempt between this sweep's scan and its claim: this one claims
    nothing, so the message is looked up once in that round."""
    after = runtime.settings.limits.reconcile_after
    sid = sent_through_twilio_receipts_lost(api, twilio_peer, work)
    [attempt] = attempts_of(api, sid)
    clock.advance(after)
    now = clock.now()

    def the_other_sweep_claims_first(state: ORMExecuteState) -> None:
        if state.is_update:
            claim = update(SendAttempt).where(SendAttempt.sid == attempt["attempt_sid"])
            session.connection().execute(claim.values(reconciled_at=now))

    with runtime.sessions() as session, session.begin():
        event.listen(session, "do_orm_execute", the_other_sweep_claims_first)
        assert due_lookups(session, now, after, STATUS_LOOKUP_TYPES) == []
    assert jobs.sweep()["lookups"] == 0  # claimed (by the other sweep) until another delay
    clock.advance(after)
    assert jobs.sweep()["lookups"] == 1


def test_no_lookup_once_the_window_has_passed(api, twilio_peer, work, runtime, clock):
    """A message Twilio keeps showing as sent is looked up every VERIFY_RECONCILE_AFTER seconds
    while it was created at most LOOKUP_WINDOW before that delay, and never after."""
    after = runtime.settings.limits.reconcile_after
    window = int(LOOKUP_WINDOW.total_seconds())
    assert window % after == 0  # the arithmetic below
    assert window // after > 1
    sid = sent_through_twilio_receipts_lost(api, twilio_peer, work)  # created now

    looked_up = 0
    for _ in range(window // after):  # at after, 2 * after, ... after + window - after
        clock.advance(after)
        looked_up += jobs.sweep()["lookups"]
        work()
    assert looked_up == window // after
    assert sum(r.method == "GET" for r in twilio_peer.requests) == window // after

    clock.advance(after - 1)  # created after + window - 1 seconds ago: in, but asked too recently
    assert jobs.sweep()["lookups"] == 0
    clock.advance(1)  # its claim has expired, but it was created after + window ago: out
    assert jobs.sweep()["lookups"] == 0
    clock.advance(after)
    assert jobs.sweep()["lookups"] == 0
    assert sum(r.method == "GET" for r in twilio_peer.requests) == window // after
    assert attempts_of(api, sid)[0]["status"] == "sent"


def test_twilio_duplicate_and_late_receipts_change_nothing(
    api, twilio_peer, work, runtime, public_url
):
    """A repeated delivered and a late sent are answered 204 and move nothing back."""
    sid, attempt = delivered_through_twilio(api, twilio_peer, work)
    url = f"{public_url}/v2/Callbacks/{attempt['provider_sid']}"
    msg = message_id(runtime, attempt["attempt_sid"])
    assert twilio_peer.post_receipt(url, msg, "delivered").status_code == 204
    assert twilio_peer.post_receipt(url, msg, "sent").status_code == 204
    assert attempts_of(api, sid)[0]["status"] == "delivered"
    assert stored_receipts(runtime) == [
        ("delivered", True, "callback"),
        ("sent", False, "callback"),
    ]
    assert events(runtime, attempt["attempt_sid"]).count("message.delivered") == 1


def test_twilio_undelivered_receipt_maps_the_error_code(
    api, twilio_peer, work, runtime, public_url
):
    """undelivered with ErrorCode 30003 is unreachable_destination; nothing else in flight: failed."""
    add_twilio(api, twilio_peer)
    twilio_peer.behave(accept("sent", "undelivered", error_code="30003"))
    sid = api.start().json["sid"]
    work()
    twilio_peer.settle()
    [attempt] = attempts_of(api, sid)
    assert (attempt["status"], attempt["reason_code"]) == ("undelivered", "unreachable_destination")
    assert api.get(f"{api.base}/Verifications/{sid}").json["status"] == "failed"


def test_a_forged_twilio_signature_is_refused(api, twilio_peer, work, runtime, public_url):
    """Signed with another token, or tampered after signing: 403 / 68701, nothing stored."""
    add_twilio(api, twilio_peer)
    sid = api.start().json["sid"]
    work()
    [attempt] = attempts_of(api, sid)
    url = f"{public_url}/v2/Callbacks/{attempt['provider_sid']}"
    msg = message_id(runtime, attempt["attempt_sid"])
    forged = twilio_peer.post_receipt(url, msg, "delivered", token="not-the-auth-token")
    tampered = twilio_peer.post_receipt(url, msg, "failed", tamper=True)
    assert (forged.status_code, forged.json()["code"]) == (403, 68701)
    assert (tampered.status_code, tampered.json()["code"]) == (403, 68701)
    assert attempts_of(api, sid)[0]["status"] == "sent"
    assert stored_receipts(runtime) == []


# -- Vonage receipts -----------------------------------------------------------------------------


def test_vonage_dlr_marks_the_attempt_delivered(api, vonage_peer, work, runtime, public_url):
    """A signed DLR (sig, HMAC-SHA256) posted to the callback moves the attempt to delivered."""
    add_vonage(api, vonage_peer)
    vonage_peer.behave(accept("accepted", "delivered"))
    sid = api.start().json["sid"]
    work()
    vonage_peer.settle()
    [sms] = vonage_peer.sends("/sms/json")
    assert sms.form["callback"].startswith(f"{public_url}/v2/Callbacks/PV")
    assert vonage_peer.receipt_responses == [204, 204]
    assert attempts_of(api, sid)[0]["status"] == "delivered"


def test_vonage_expired_dlr_is_undelivered_and_a_bad_sig_is_refused(
    api, vonage_peer, work, runtime, public_url
):
    """expired with err-code 3 is undelivered/unreachable; a DLR with a wrong sig is 403."""
    add_vonage(api, vonage_peer)
    sid = api.start().json["sid"]
    work()
    [attempt] = attempts_of(api, sid)
    url = f"{public_url}/v2/Callbacks/{attempt['provider_sid']}"
    msg = message_id(runtime, attempt["attempt_sid"])
    assert (
        vonage_peer.post_dlr(
            url, msg, "delivered", secret="wrong-signature-secret-" + "w" * 16
        ).status_code
        == 403
    )
    assert vonage_peer.post_dlr(url, msg, "expired", error_code="3").status_code == 204
    [attempt] = attempts_of(api, sid)
    assert (attempt["status"], attempt["reason_code"]) == ("undelivered", "unreachable_destination")


# -- email ---------------------------------------------------------------------------------------


def test_email_goes_through_the_smtp_peer(app, runtime, work):
    """An email verification is sent over SMTP: text and HTML both carry the code; no receipts."""
    peer = SmtpPeer()
    peer.start()
    try:
        api = ApiClient(app, make_tenant(runtime, "Mail", channels=("sms", "email")))
        r = api.post(
            "/v2/Providers",
            {
                "Type": "smtp",
                "FriendlyName": "mail",
                "Config": json.dumps(
                    {
                        "host": peer.host,
                        "port": peer.port,
                        "security": "none",
                        "from_address": "codes@example.com",
                    }
                ),
            },
        )
        assert r.status_code == 201, r.json
        sid = api.start(to="person@example.com", channel="email").json["sid"]
        work()
        [received] = peer.messages
    finally:
        peer.stop()
    assert received.recipients == ["person@example.com"]
    text = received.message.get_body(("plain",)).get_content()
    html = received.message.get_body(("html",)).get_content()
    code = code_in(text)
    assert code in html
    assert attempts_of(api, sid)[0]["status"] == "sent"
    assert api.check(code, to="person@example.com").json["status"] == "approved"


# -- voice: press a key first --------------------------------------------------------------------


def gather_action(twiml: str) -> str:
    match = re.search(r'<Gather [^>]*action="([^"]+)"', twiml)
    assert match, twiml
    return match.group(1).replace("&amp;", "&")


def placed_twilio_call(api, twilio_peer, work, runtime) -> tuple[str, str, str]:
    """(verification sid, the Gather's action URL, the call sid) of a DTMF-first Twilio call."""
    add_twilio(api, twilio_peer)
    sid = api.start(channel="call").json["sid"]
    work()
    [call] = twilio_peer.sends("Calls")
    [attempt] = attempts_of(api, sid)
    assert attempt["status"] == "sent"
    return sid, gather_action(call.form["Twiml"]), message_id(runtime, attempt["attempt_sid"])


def test_twilio_call_speaks_the_code_only_after_a_key(api, twilio_peer, work, runtime, public_url):
    """The call's TwiML only prompts; the Gather's action answers the digits after a key press."""
    _sid, action, call_sid = placed_twilio_call(api, twilio_peer, work, runtime)
    [call] = twilio_peer.sends("Calls")
    assert action.startswith(f"{public_url}/v2/Callbacks/PV")
    prompt = re.findall(r"<Say[^>]*>([^<]*)</Say>", call.form["Twiml"])
    assert len(prompt) == 1
    assert not re.search(r"\d", prompt[0])

    pressed = twilio_peer.gather(action, call_sid, "5")
    assert pressed.status_code == 200
    assert pressed.headers["content-type"].startswith("application/xml")
    spoken = re.findall(r"<Say[^>]*>([^<]*)</Say>", pressed.text)
    digits = "".join(s for s in spoken if s.isdigit())
    code = digits[:6]
    assert digits == code * 2  # read twice, one digit at a time
    assert api.check(code).json["status"] == "approved"

    again = twilio_peer.gather(action, call_sid, "5")  # no longer pending: hang up
    assert "<Hangup/>" in again.text
    assert "<Say" not in again.text


def test_twilio_call_without_a_key_or_with_a_forged_signature_hangs_up(
    api, twilio_peer, work, runtime, public_url
):
    """No digits: hang up. Wrong signature: 403 / 68701, no TwiML."""
    _, action, call_sid = placed_twilio_call(api, twilio_peer, work, runtime)
    silent = twilio_peer.gather(action, call_sid, None)
    assert silent.status_code == 200
    assert "<Hangup/>" in silent.text
    assert "<Say" not in silent.text
    forged = twilio_peer.gather(action, call_sid, "1", token="not-the-auth-token")
    assert (forged.status_code, forged.json()["code"]) == (403, 68701)


def test_twilio_call_hangs_up_for_a_canceled_verification(
    api, twilio_peer, work, runtime, public_url
):
    """A key pressed after the verification was canceled gets no code."""
    sid, action, call_sid = placed_twilio_call(api, twilio_peer, work, runtime)
    api.post(f"{api.base}/Verifications/{sid}", {"Status": "canceled"})
    answer = twilio_peer.gather(action, call_sid, "1")
    assert "<Hangup/>" in answer.text
    assert "<Say" not in answer.text


def test_dtmf_first_call_without_a_public_url_fails_over(api, twilio_peer, work):
    """Without VERIFY_PUBLIC_URL no continuation URL exists: the call is not placed."""
    add_twilio(api, twilio_peer)
    sid = api.start(channel="call").json["sid"]
    work()
    [attempt] = attempts_of(api, sid)
    assert (attempt["status"], attempt["reason_code"]) == ("failed", "provider_misconfigured")
    assert twilio_peer.sends("Calls") == []


def test_vonage_call_input_event_gets_the_code(api, vonage_peer, work, runtime, public_url):
    """Vonage's input eventUrl (signed JWT) gets a talk NCCO with the digits; a timeout gets []."""
    add_vonage(api, vonage_peer)
    sid = api.start(channel="call").json["sid"]
    work()
    [call] = vonage_peer.sends("/v1/calls")
    ncco = call.json["ncco"]
    [entry] = [a for a in ncco if a["action"] == "input"]
    url = entry["eventUrl"][0]
    assert url.startswith(f"{public_url}/v2/Callbacks/PV")
    call_id = message_id(runtime, attempts_of(api, sid)[0]["attempt_sid"])

    timed_out = vonage_peer.input_event(url, call_id, None)
    assert (timed_out.status_code, timed_out.json()) == (200, [])
    forged = vonage_peer.input_event(url, call_id, "1", secret="wrong-signature-secret-" + "w" * 16)
    assert (forged.status_code, forged.json()["code"]) == (403, 68701)
    pressed = vonage_peer.input_event(url, call_id, "1")
    [talk] = pressed.json()
    digits = re.sub(r"<[^>]+>", " ", talk["text"])
    spoken = "".join(re.findall(r"\b\d\b", digits))
    code = spoken[:6]
    assert spoken == code * 2  # read twice, one digit at a time
    assert api.check(code).json["status"] == "approved"
