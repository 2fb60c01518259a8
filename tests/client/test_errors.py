"""Every error the API can return becomes its own typed exception, carrying what the server said."""

from __future__ import annotations

import httpx
import pytest

from tests.client.conftest import Recorder, problem
from verify import errors as server
from verify.client import errors

CASES = [
    (60200, 400, errors.InvalidParameter),
    (60221, 400, errors.NoTarget),
    (60223, 400, errors.ChannelDisabled),
    (60204, 400, errors.FeatureDisabled),
    (60205, 400, errors.SmsToLandline),
    (60207, 400, errors.MaxRateLimits),
    (60208, 400, errors.RateLimitExists),
    (60209, 400, errors.InvalidUniqueName),
    (60210, 400, errors.MaxBuckets),
    (60211, 400, errors.BucketExists),
    (68400, 400, errors.MalformedBody),
    (20003, 401, errors.AuthenticationError),
    (20403, 403, errors.ForbiddenError),
    (68701, 403, errors.CallbackSignatureInvalid),
    (60410, 403, errors.DeliveryBlocked),
    (60605, 403, errors.GeoPermissionBlocked),
    (20404, 404, errors.NotFoundError),
    (20004, 405, errors.MethodNotAllowed),
    (20409, 409, errors.IdempotencyConflict),
    (68413, 413, errors.PayloadTooLarge),
    (68415, 415, errors.UnsupportedMediaType),
    (20422, 422, errors.IdempotencyKeyReused),
    (20429, 429, errors.RateLimited),
    (60202, 429, errors.MaxCheckAttemptsReached),
    (60203, 429, errors.MaxSendAttemptsReached),
    (60212, 429, errors.TooManyConcurrentRequests),
    (20500, 500, errors.InternalServerError),
    (20503, 503, errors.ServiceUnavailable),
    (68601, 503, errors.SendLimitsUnavailable),
]


def raised(answer: httpx.Response) -> errors.VerifyError:
    with pytest.raises(errors.VerifyError) as info:
        Recorder(answer).client(max_retries=0).services.fetch("VA1")
    return info.value


@pytest.mark.parametrize(("code", "status", "cls"), CASES, ids=[str(c[0]) for c in CASES])
def test_each_code_raises_its_own_class(code: int, status: int, cls: type[errors.ApiError]) -> None:
    """The class is chosen by the code; the exception carries code, status, message and links."""
    err = raised(problem(code, status, "what went wrong"))
    assert type(err) is cls
    assert isinstance(err, errors.ApiError)
    assert (err.code, err.status, err.message) == (code, status, "what went wrong")
    assert err.detail == "what went wrong"
    assert err.more_info == f"http://verify.test/errors/{code}"
    assert err.body["code"] == code
    assert str(err) == f"HTTP {status} {code}: what went wrong"


def test_the_table_covers_every_client_class() -> None:
    """No exception class with a code is left out of the test above."""
    assert set(errors.BY_CODE) == {code for code, _, _ in CASES}


def test_every_server_error_has_a_specific_client_class() -> None:
    """Walks the server's taxonomy: each error it can produce maps, by its code, to a class of its
    own (not the generic fallback), whose status agrees. The two taxonomies cannot drift apart."""
    for cls in server.all_error_classes():
        err = _server_instance(cls)
        body = {"code": err.code, "status": err.status, "message": err.detail, **err.extra}
        assert err.code in errors.BY_CODE, f"{cls.__name__} ({err.code}) has no client class"
        client_cls = errors.api_error_class(err.status, body)
        assert client_cls is not errors.ApiError, cls
        own_status = _status_of(client_cls)
        assert own_status in (None, err.status), (cls, client_cls)
        if cls is server.VerificationNotPending:
            assert client_cls is errors.VerificationNotPending


def _server_instance(cls: type[server.VerifyError]) -> server.VerifyError:
    if cls is server.InvalidParameter:
        return server.InvalidParameter("To", "not a phone number")
    if cls is server.VerificationNotPending:
        return server.VerificationNotPending("VE1", "expired")
    if cls is server.HttpError:
        return server.HttpError(413, "Request Entity Too Large")  # the one the app produces
    return cls()


def _status_of(cls: type[errors.ApiError]) -> int | None:
    for klass in cls.__mro__:
        status = vars(klass).get("STATUS")
        if status is not None:
            return int(status)
    return None


@pytest.mark.parametrize("state", ["approved", "canceled", "expired"])
def test_a_finished_verification_is_not_pending(state: str) -> None:
    """20404 naming a terminal state is VerificationNotPending (still a NotFoundError)."""
    err = raised(problem(20404, 404, "gone", verification_sid="VE1", verification_status=state))
    assert isinstance(err, errors.VerificationNotPending)
    assert isinstance(err, errors.NotFoundError)
    assert (err.verification_sid, err.verification_status) == ("VE1", state)


def test_rate_limits_carry_retry_after_and_the_verification() -> None:
    err = raised(
        problem(
            60202, 429, "locked", verification_sid="VE2", verification_status="max_attempts_reached"
        )
    )
    assert isinstance(err, errors.MaxCheckAttemptsReached)
    assert isinstance(err, errors.RateLimited)
    assert err.retry_after == 42
    assert err.verification_status == "max_attempts_reached"


def test_invalid_parameter_names_it() -> None:
    err = raised(problem(60200, 400, "Invalid parameter `To`", parameter="To"))
    assert isinstance(err, errors.InvalidParameter)
    assert err.parameter == "To"


def test_blocked_destinations_share_a_base() -> None:
    assert issubclass(errors.DeliveryBlocked, errors.Blocked)
    assert issubclass(errors.GeoPermissionBlocked, errors.Blocked)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, errors.AuthenticationError),
        (404, errors.NotFoundError),
        (429, errors.RateLimited),
        (503, errors.ServiceUnavailable),
        (418, errors.ApiError),
    ],
)
def test_unknown_codes_fall_back_by_status(status: int, cls: type[errors.ApiError]) -> None:
    err = raised(problem(69999, status))
    assert type(err) is cls
    assert err.code == 69999


def test_an_answer_that_is_not_json_is_still_an_api_error() -> None:
    """A proxy's HTML error page: no code, the reason phrase as message."""
    err = raised(httpx.Response(502, text="<html>Bad gateway</html>"))
    assert type(err) is errors.ApiError
    assert (err.code, err.status, err.message) == (None, 502, "Bad Gateway")
    assert err.body == {}
    assert err.parameter is None
    assert err.verification_status is None


def test_retry_after_as_an_http_date() -> None:
    answer = problem(20429, 429)
    answer.headers["Retry-After"] = "Wed, 21 Oct 2015 07:28:00 GMT"  # long past
    assert raised(answer).retry_after == 0


def test_transport_errors_are_typed() -> None:
    """No answer at all: ConnectionFailed, ConnectTimeout (a Timeout), Timeout."""
    for exc, cls in [
        (httpx.ConnectError("refused"), errors.ConnectionFailed),
        (httpx.ConnectTimeout("slow"), errors.ConnectTimeout),
        (httpx.ReadTimeout("slow"), errors.Timeout),
        (httpx.RemoteProtocolError("reset"), errors.ConnectionFailed),
    ]:
        with pytest.raises(cls) as info:
            Recorder(exc).client(max_retries=0).services.fetch("VA1")
        assert isinstance(info.value, errors.TransportError)
        assert info.value.status is None
        assert "GET http://verify.test/v2/Services/VA1" in str(info.value)
        assert isinstance(info.value.__cause__, httpx.TransportError)
    assert issubclass(errors.ConnectTimeout, errors.Timeout)
