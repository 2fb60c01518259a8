"""Exceptions raised by the Verify client: one class per error code the API can return.

VerifyError                              every exception the client raises
├── ApiError                             the server answered with an HTTP error (mapped by ``code``)
│   ├── InvalidParameter          400  60200  a parameter is missing or malformed (``parameter``)
│   ├── NoTarget                  400  60221  a check named neither ``to`` nor ``verification_sid``
│   ├── ChannelDisabled           400  60223  the channel is not enabled on the service
│   ├── FeatureDisabled           400  60204  the service does not allow this (custom codes, approval)
│   ├── MaxRateLimits             400  60207  the service has as many rate limits as it may
│   ├── RateLimitExists           400  60208  a rate limit with this UniqueName already exists
│   ├── InvalidUniqueName         400  60209  UniqueName has characters other than A-Z a-z 0-9 - _ .
│   ├── MaxBuckets                400  60210  the rate limit has as many buckets as it may
│   ├── BucketExists              400  60211  the rate limit has a bucket with this Interval
│   ├── MalformedBody             400  68400  the request body could not be decoded
│   ├── AuthenticationError       401  20003  missing or wrong credentials
│   ├── ForbiddenError            403  20403  authenticated, but not allowed here
│   │   └── CallbackSignatureInvalid 403 68701  a delivery receipt's signature did not verify
│   ├── Blocked                   403         the destination may not be sent codes
│   │   ├── DeliveryBlocked       403  60410  blocked as likely fraud
│   │   ├── GeoPermissionBlocked  403  60605  the destination's country is not allowed
│   │   └── SmsToLandline         403  60205  the number is a landline and cannot receive SMS
│   ├── NotFoundError             404  20404  no such resource
│   │   └── VerificationNotPending 404 20404  the verification is approved, canceled, expired or failed
│   │                                         (``verification_status`` says which)
│   ├── MethodNotAllowed          405  20004
│   ├── IdempotencyConflict       409  20409  the same Idempotency-Key is still being processed
│   ├── PayloadTooLarge           413  68413  the request body is too large
│   ├── UnsupportedMediaType      415  68415  the body is neither form-encoded nor JSON
│   ├── IdempotencyKeyReused      422  20422  the same Idempotency-Key came with another request
│   ├── RateLimited               429  20429  slow down; ``retry_after`` says for how long
│   │   ├── MaxCheckAttemptsReached   60202  too many wrong codes: start a new verification
│   │   ├── MaxSendAttemptsReached    60203  too many sends to this destination
│   │   └── TooManyConcurrentRequests 60212  too many concurrent requests for this destination
│   ├── InternalServerError       500  20500
│   └── ServiceUnavailable        503  20503  a dependency of the server is down; retry later
│       └── SendLimitsUnavailable     68601  the send limits cannot be checked: nothing is sent
├── TransportError                       no HTTP answer at all
│   ├── Timeout                          connecting, sending or reading took too long
│   │   └── ConnectTimeout               the connection could not be made in time
│   └── ConnectionFailed                 refused, reset or broken connection
└── WebhookVerificationError             a webhook's signature or timestamp is not valid

An error code the client does not know falls back to a class chosen by HTTP status (401, 403, 404,
405, 413, 415, 429, 500, 503), else to ``ApiError`` itself, so ``except ApiError`` always works.

Every exception carries what the server said: ``code``, ``status``, ``message``, ``detail``,
``more_info``, ``retry_after`` (seconds, from the ``Retry-After`` header), ``parameter``,
``verification_sid``, ``verification_status`` and the whole decoded ``body``. Attributes the answer
did not include are ``None``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class VerifyError(Exception):
    """Base of every exception the Verify client raises."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        body = body or {}
        self.message = message
        self.code = code
        self.status = status
        self.retry_after = retry_after
        self.body = body
        self.detail: str | None = _text(body.get("detail"))
        self.more_info: str | None = _text(body.get("more_info"))
        self.parameter: str | None = _text(body.get("parameter"))
        self.verification_sid: str | None = _text(body.get("verification_sid"))
        self.verification_status: str | None = _text(body.get("verification_status"))

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        code = f" {self.code}" if self.code is not None else ""
        return f"HTTP {self.status}{code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class ApiError(VerifyError):
    """The server answered with an HTTP error. Subclasses set ``CODE`` (the error code they stand
    for) and ``STATUS`` (the HTTP status they stand for when the code is unknown)."""

    CODE: ClassVar[int | None] = None
    STATUS: ClassVar[int | None] = None


# -- 400 ------------------------------------------------------------------------------------------


class InvalidParameter(ApiError):
    """A parameter is missing or malformed; ``parameter`` names it (``To``, ``Code``, ...)."""

    CODE = 60200


class NoTarget(ApiError):
    """A check named neither ``to`` nor ``verification_sid``."""

    CODE = 60221


class ChannelDisabled(ApiError):
    """The channel is not enabled on the service."""

    CODE = 60223


class FeatureDisabled(ApiError):
    """The service does not allow this (custom codes, manual approval)."""

    CODE = 60204


class MaxRateLimits(ApiError):
    """The service already has as many rate limits as it may have."""

    CODE = 60207


class RateLimitExists(ApiError):
    """The service already has a rate limit with this ``unique_name``."""

    CODE = 60208


class InvalidUniqueName(ApiError):
    """A rate limit's ``unique_name`` may only hold letters, digits, ``-``, ``_`` and ``.``."""

    CODE = 60209


class MaxBuckets(ApiError):
    """The rate limit already has as many buckets as it may have."""

    CODE = 60210


class BucketExists(ApiError):
    """The rate limit already has a bucket with this ``interval``."""

    CODE = 60211


class MalformedBody(ApiError):
    """The request body could not be decoded."""

    CODE = 68400


# -- 401 / 403 ------------------------------------------------------------------------------------


class AuthenticationError(ApiError):
    """Missing or wrong credentials."""

    CODE = 20003
    STATUS = 401


class ForbiddenError(ApiError):
    """Authenticated, but not allowed to do this."""

    CODE = 20403
    STATUS = 403


class CallbackSignatureInvalid(ForbiddenError):
    """A delivery receipt posted to ``/v2/Callbacks/{ProviderSid}`` did not carry a valid signature
    (seen by gateways that post receipts, not by applications)."""

    CODE = 68701


class Blocked(ApiError):
    """Codes may not be sent to this destination (fraud protection, geographic permissions)."""


class DeliveryBlocked(Blocked):
    """The send was blocked as likely fraud."""

    CODE = 60410


class GeoPermissionBlocked(Blocked):
    """Sending to the destination's country is not allowed."""

    CODE = 60605


class SmsToLandline(Blocked):
    """The number is a landline and cannot receive SMS (or WhatsApp)."""

    CODE = 60205


# -- 404 - 422 ------------------------------------------------------------------------------------


class NotFoundError(ApiError):
    """No such resource (service, verification, or pending verification for a ``to``)."""

    CODE = 20404
    STATUS = 404


class VerificationNotPending(NotFoundError):
    """The verification exists but is finished: ``verification_status`` is ``approved``,
    ``canceled``, ``expired`` or ``failed``. Start a new verification to send a new code."""


class MethodNotAllowed(ApiError):
    CODE = 20004
    STATUS = 405


class IdempotencyConflict(ApiError):
    """A request with the same Idempotency-Key is still being processed."""

    CODE = 20409


class PayloadTooLarge(ApiError):
    CODE = 68413
    STATUS = 413


class UnsupportedMediaType(ApiError):
    CODE = 68415
    STATUS = 415


class IdempotencyKeyReused(ApiError):
    """The Idempotency-Key was already used for a different request."""

    CODE = 20422


# -- 429 ------------------------------------------------------------------------------------------


class RateLimited(ApiError):
    """Too many requests; ``retry_after`` says how many seconds to wait. Never retried by the
    client: show it to the person (or back off) instead."""

    CODE = 20429
    STATUS = 429


class MaxCheckAttemptsReached(RateLimited):
    """Too many wrong codes for this verification: start a new one."""

    CODE = 60202


class MaxSendAttemptsReached(RateLimited):
    """Too many codes sent for this verification; ``retry_after`` is when a new one may start."""

    CODE = 60203


class TooManyConcurrentRequests(RateLimited):
    CODE = 60212


# -- 5xx ------------------------------------------------------------------------------------------


class InternalServerError(ApiError):
    CODE = 20500
    STATUS = 500


class ServiceUnavailable(ApiError):
    """A dependency of the server (database, Redis) is unreachable; retry later."""

    CODE = 20503
    STATUS = 503


class SendLimitsUnavailable(ServiceUnavailable):
    """The server cannot check its send limits (Redis is down), so it sends nothing; retry later."""

    CODE = 68601


# -- no HTTP answer -------------------------------------------------------------------------------


class TransportError(VerifyError):
    """No HTTP answer: the request could not be sent or its response not read."""


class Timeout(TransportError):
    """Connecting, sending or reading took longer than the client's ``timeout``."""


class ConnectTimeout(Timeout):
    """The connection could not be made within the client's ``timeout``."""


class ConnectionFailed(TransportError):
    """The connection was refused, reset or broken."""


class WebhookVerificationError(VerifyError):
    """A webhook's headers, signature or timestamp are not valid: do not trust its body."""


# -- mapping --------------------------------------------------------------------------------------


def _api_classes() -> list[type[ApiError]]:
    out: list[type[ApiError]] = []
    stack: list[type[ApiError]] = [ApiError]
    while stack:
        cls = stack.pop()
        out.append(cls)
        stack.extend(cls.__subclasses__())
    return out


def _own(cls: type[ApiError], name: str) -> int | None:
    value = vars(cls).get(name)  # set on this class itself, not inherited
    return value if isinstance(value, int) else None


BY_CODE = {code: c for c in _api_classes() if (code := _own(c, "CODE")) is not None}
BY_STATUS = {status: c for c in _api_classes() if (status := _own(c, "STATUS")) is not None}


def api_error_class(status: int, body: dict[str, Any]) -> type[ApiError]:
    """The exception class for an error answer: by code, else by HTTP status, else ApiError."""
    code = body.get("code")
    cls = BY_CODE.get(code) if isinstance(code, int) else None
    cls = cls or BY_STATUS.get(status, ApiError)
    if cls is NotFoundError and isinstance(body.get("verification_status"), str):
        return VerificationNotPending
    return cls
