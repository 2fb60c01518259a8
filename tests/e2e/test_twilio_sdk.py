"""The official twilio-python SDK, pointed at a live server, works unchanged (DESIGN.md section 4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.rest.verify.v2.service import ServiceContext

from tests.conftest import Tenant, delivered_code
from verify.domain.accounts import AccountService
from verify.runtime import Runtime

TO = "+14155550123"


def sdk_client(base_url: str, username: str, password: str, account_sid: str | None = None) -> Any:
    client = Client(username, password, account_sid)
    client.verify.base_url = base_url
    return client


@pytest.fixture
def client(live_server: str, tenant: Tenant) -> Any:
    return sdk_client(live_server, tenant.account_sid, tenant.auth_token)


@pytest.fixture
def service(client: Any, tenant: Tenant) -> ServiceContext:
    return client.verify.v2.services(tenant.service_sid)


def rest_error(call: Callable[[], object]) -> TwilioRestException:
    """The exception ``call`` raises, which must be exactly TwilioRestException (no subclass)."""
    with pytest.raises(TwilioRestException) as info:
        call()
    assert type(info.value) is TwilioRestException, type(info.value)
    return info.value


def test_services_create_fetch_list(client: Any, tenant: Tenant) -> None:
    """Services can be created, fetched and listed through the SDK."""
    created = client.verify.v2.services.create(friendly_name="SDK Service", code_length=8)
    assert created.sid.startswith("VA")
    assert created.account_sid == tenant.account_sid
    assert created.friendly_name == "SDK Service"
    assert created.code_length == 8

    fetched = client.verify.v2.services(created.sid).fetch()
    assert fetched.sid == created.sid
    assert fetched.friendly_name == "SDK Service"

    listed = {s.sid for s in client.verify.v2.services.list()}
    assert listed == {tenant.service_sid, created.sid}
    paged = {s.sid for s in client.verify.v2.services.list(page_size=1)}
    assert paged == listed


def test_start_deliver_check_with_a_worker_process(
    service: ServiceContext, worker_process: Any, runtime: Runtime
) -> None:
    """Start, deliver by a separate worker process, check wrong then right, fetch approved."""
    verification = service.verifications.create(to=TO, channel="sms")
    assert verification.status == "pending"
    assert verification.sid.startswith("VE")
    assert verification.to == TO
    assert len(verification.send_code_attempts) == 1

    worker_process()
    code = delivered_code(runtime, TO)
    wrong = "0" * len(code) if code != "0" * len(code) else "1" * len(code)

    check = service.verification_checks.create(to=TO, code=wrong)
    assert check.status == "pending"
    assert check.valid is False

    check = service.verification_checks.create(to=TO, code=code)
    assert check.status == "approved"
    assert check.valid is True
    assert check.sid == verification.sid

    assert service.verifications(verification.sid).fetch().status == "approved"


def test_cancel_then_check_is_not_found(
    service: ServiceContext, work: Callable[[], None], runtime: Runtime
) -> None:
    """A canceled verification cannot be checked: TwilioRestException 20404 / 404."""
    first = service.verifications.create(to=TO, channel="sms")
    work()
    service.verification_checks.create(to=TO, code=delivered_code(runtime, TO))

    second = service.verifications.create(to=TO, channel="sms")
    assert second.sid != first.sid
    work()
    code = delivered_code(runtime, TO)
    canceled = service.verifications(second.sid).update(status="canceled")
    assert canceled.status == "canceled"

    err = rest_error(lambda: service.verification_checks.create(to=TO, code=code))
    assert err.code == 20404
    assert err.status == 404
    err = rest_error(
        lambda: service.verification_checks.create(verification_sid=second.sid, code=code)
    )
    assert err.code == 20404
    assert service.verifications(second.sid).fetch().status == "canceled"


def test_max_check_attempts(service: ServiceContext, work: Callable[[], None]) -> None:
    """Four wrong checks are answered pending; the fifth raises 60202 (429), and so does the next."""
    service.verifications.create(to=TO, channel="sms")
    work()
    for _ in range(4):
        check = service.verification_checks.create(to=TO, code="00000000")
        assert (check.status, check.valid) == ("pending", False)

    err = rest_error(lambda: service.verification_checks.create(to=TO, code="00000000"))
    assert (err.code, err.status) == (60202, 429)
    err = rest_error(lambda: service.verification_checks.create(to=TO, code="00000000"))
    assert (err.code, err.status) == (60202, 429)


@pytest.mark.parametrize("to", ["not-a-number", "+1", ""])
def test_invalid_to(service: ServiceContext, to: str) -> None:
    """A malformed To is TwilioRestException 60200 (400)."""
    err = rest_error(lambda: service.verifications.create(to=to, channel="sms"))
    assert (err.code, err.status) == (60200, 400)


def test_max_send_attempts(service: ServiceContext) -> None:
    """Five sends for the same To share one verification; the sixth raises 60203 (429)."""
    sids = {service.verifications.create(to=TO, channel="sms").sid for _ in range(5)}
    assert len(sids) == 1

    err = rest_error(lambda: service.verifications.create(to=TO, channel="sms"))
    assert (err.code, err.status) == (60203, 429)


def test_api_key_credentials(
    live_server: str, tenant: Tenant, runtime: Runtime, work: Callable[[], None]
) -> None:
    """Client(api_key_sid, api_key_secret, account_sid) works for the whole flow."""
    with runtime.sessions() as session:
        key, secret = AccountService(session, runtime.clock).create_api_key(
            tenant.account_sid, "SDK key"
        )
    client = sdk_client(live_server, key.sid, secret, tenant.account_sid)
    service = client.verify.v2.services(tenant.service_sid)

    assert service.fetch().sid == tenant.service_sid
    started = service.verifications.create(to=TO, channel="sms")
    work()
    check = service.verification_checks.create(to=TO, code=delivered_code(runtime, TO))
    assert (check.sid, check.status, check.valid) == (started.sid, "approved", True)


def test_wrong_credentials(live_server: str, tenant: Tenant) -> None:
    """A wrong auth token is TwilioRestException 20003 (401)."""
    client = sdk_client(live_server, tenant.account_sid, "0" * 64)
    err = rest_error(lambda: client.verify.v2.services(tenant.service_sid).fetch())
    assert (err.code, err.status) == (20003, 401)
