"""The one exception taxonomy. Every error a client can see is one of these, with a stable code.

VerifyError
├── InvalidParameter          400  60200  a parameter is missing or malformed (names the parameter)
├── NoTarget                  400  60221  neither To nor VerificationSid on a check
├── ChannelDisabled           400  60223  the channel is not enabled on the service
├── FeatureDisabled           400  60204  the service does not allow this (custom codes, approval)
├── MaxRateLimits             400  60207  the service has as many rate limits as it may
├── RateLimitExists           400  60208  a rate limit with this UniqueName exists on the service
├── InvalidUniqueName         400  60209  UniqueName has characters other than letters, digits, - _ .
├── MaxBuckets                400  60210  the rate limit has as many buckets as it may
├── BucketExists              400  60211  the rate limit has a bucket with this Interval
├── MalformedBody             400  68400  the body could not be decoded
├── Unauthenticated           401  20003  missing or wrong credentials
├── Forbidden                 403  20403  authenticated, but not allowed here
│   └── CallbackSignatureInvalid 403 68701  a delivery receipt whose signature does not verify
├── DeliveryBlocked           403  60410  the fraud rules blocked the send (the reason is in the body)
│   ├── GeoPermissionBlocked  403  60605  the destination's country is not allowed on the channel
│   └── SmsToLandline         403  60205  a landline cannot receive SMS or WhatsApp
├── NotFound                  404  20404  no such resource in this account
│   └── VerificationNotPending 404 20404  the verification is in a terminal state (named in the body)
├── MethodNotAllowed          405  20004
├── IdempotencyInFlight       409  20409  the same Idempotency-Key is still being processed
├── UnsupportedMediaType      415  68415  the body is neither form-encoded nor JSON
├── IdempotencyKeyReused      422  20422  the same Idempotency-Key came with a different request
├── TooManyRequests           429  20429  (base for the 429s; carries Retry-After)
│   ├── MaxCheckAttempts      429  60202
│   ├── MaxSendAttempts       429  60203
│   └── TooManyConcurrentRequests 429 60212  too many sends to one number across all accounts
├── InternalError             500  20500  never carries the underlying exception's text
├── ServiceUnavailable        503  20503  a dependency (database, Redis) is unreachable
│   └── SendLimitsUnavailable 503  68601  Redis is unreachable: sends fail closed
└── HttpError                 any  68xxx  any other HTTP-level error: 68000 + the status (413 → 68413)

Codes below 68000 are Twilio's and mean what Twilio's dictionary says; 68000-68999 are this project's.
"""

from __future__ import annotations

from typing import Any, ClassVar


class VerifyError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[int] = 60200
    title: ClassVar[str] = "Invalid parameter"

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.retry_after = retry_after
        self.extra = extra or {}
        super().__init__(self.detail)


class InvalidParameter(VerifyError):
    def __init__(self, parameter: str, detail: str, **kwargs: Any) -> None:
        self.parameter = parameter
        extra = {"parameter": parameter, **kwargs.pop("extra", {})}
        super().__init__(f"Invalid parameter `{parameter}`: {detail}", extra=extra, **kwargs)


class NoTarget(VerifyError):
    code = 60221
    title = "No target verification specified"


class ChannelDisabled(VerifyError):
    code = 60223
    title = "Delivery channel disabled"


class FeatureDisabled(VerifyError):
    code = 60204
    title = "Service does not support this feature"


class MaxRateLimits(VerifyError):
    code = 60207
    title = "Max rate limits per service reached"


class RateLimitExists(VerifyError):
    code = 60208
    title = "Rate limit with that UniqueName already exists"


class InvalidUniqueName(VerifyError):
    code = 60209
    title = "UniqueName format is invalid"


class MaxBuckets(VerifyError):
    code = 60210
    title = "Max Buckets per Rate limit reached"


class BucketExists(VerifyError):
    code = 60211
    title = "Bucket with the given Interval already exists"


class MalformedBody(VerifyError):
    code = 68400
    title = "Malformed request body"


class Unauthenticated(VerifyError):
    status = 401
    code = 20003
    title = "Authentication Error - invalid username"


class Forbidden(VerifyError):
    status = 403
    code = 20403
    title = "Forbidden"


class CallbackSignatureInvalid(Forbidden):
    code = 68701
    title = "Invalid delivery receipt signature"


class DeliveryBlocked(VerifyError):
    status = 403
    code = 60410
    title = "Verification delivery attempt blocked"


class GeoPermissionBlocked(DeliveryBlocked):
    code = 60605
    title = "Verification delivery attempt blocked by geo permissions"


class SmsToLandline(DeliveryBlocked):
    code = 60205
    title = "SMS is not supported by landline phone number"


class NotFound(VerifyError):
    status = 404
    code = 20404
    title = "The requested resource was not found"


class VerificationNotPending(NotFound):
    def __init__(self, sid: str, state: str) -> None:
        super().__init__(
            f"The requested resource {sid} was not found: the verification is {state}",
            extra={"verification_sid": sid, "verification_status": state},
        )


class MethodNotAllowed(VerifyError):
    status = 405
    code = 20004
    title = "Method not allowed"


class IdempotencyInFlight(VerifyError):
    status = 409
    code = 20409
    title = "A request with this Idempotency-Key is still being processed"


class UnsupportedMediaType(VerifyError):
    status = 415
    code = 68415
    title = "Unsupported media type: send application/x-www-form-urlencoded or application/json"


class IdempotencyKeyReused(VerifyError):
    status = 422
    code = 20422
    title = "This Idempotency-Key was already used for a different request"


class TooManyRequests(VerifyError):
    status = 429
    code = 20429
    title = "Too many requests"


class MaxCheckAttempts(TooManyRequests):
    code = 60202
    title = "Max check attempts reached"


class MaxSendAttempts(TooManyRequests):
    code = 60203
    title = "Max send attempts reached"


class TooManyConcurrentRequests(TooManyRequests):
    code = 60212
    title = "Too many concurrent requests for phone number"


class InternalError(VerifyError):
    status = 500
    code = 20500
    title = "Internal Server Error"


class ServiceUnavailable(VerifyError):
    status = 503
    code = 20503
    title = "Service unavailable"


class SendLimitsUnavailable(ServiceUnavailable):
    code = 68601
    title = "Send limits unavailable"


class HttpError(VerifyError):
    def __init__(self, status: int, title: str) -> None:
        super().__init__(title)
        self.status = status  # type: ignore[misc]
        self.code = 68000 + status  # type: ignore[misc]


def all_error_classes() -> list[type[VerifyError]]:
    """Every concrete error class, for the error reference page and its tests."""
    seen: list[type[VerifyError]] = []
    stack: list[type[VerifyError]] = [VerifyError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen
