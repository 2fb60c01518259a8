"""The one exception taxonomy. Every error a client can see is one of these, with a stable code.

VerifyError
├── InvalidParameter          400  60200  a parameter is missing or malformed (names the parameter)
├── NoTarget                  400  60221  neither To nor VerificationSid on a check
├── ChannelDisabled           400  60223  the channel is not enabled on the service
├── FeatureDisabled           400  60204  the service does not allow this (custom codes, approval)
├── MalformedBody             400  68400  the body could not be decoded
├── Unauthenticated           401  20003  missing or wrong credentials
├── Forbidden                 403  20403  authenticated, but not allowed here
├── NotFound                  404  20404  no such resource in this account
│   └── VerificationNotPending 404 20404  the verification is in a terminal state (named in the body)
├── MethodNotAllowed          405  20004
├── IdempotencyInFlight       409  20409  the same Idempotency-Key is still being processed
├── UnsupportedMediaType      415  68415  the body is neither form-encoded nor JSON
├── IdempotencyKeyReused      422  20422  the same Idempotency-Key came with a different request
├── TooManyRequests           429  20429  (base for the 429s; carries Retry-After)
│   ├── MaxCheckAttempts      429  60202
│   └── MaxSendAttempts       429  60203
├── InternalError             500  20500  never carries the underlying exception's text
├── ServiceUnavailable        503  20503  a dependency (database, Redis) is unreachable
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


class InternalError(VerifyError):
    status = 500
    code = 20500
    title = "Internal Server Error"


class ServiceUnavailable(VerifyError):
    status = 503
    code = 20503
    title = "Service unavailable"


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
