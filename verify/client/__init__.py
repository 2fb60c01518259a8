"""A Python client for Verify (and the Twilio Verify v2 API it speaks).

Sign-in with a code sent by SMS, in three calls::

    from verify.client import VerifyClient, VerificationNotPending, MaxCheckAttemptsReached

    client = VerifyClient("http://127.0.0.1:8000", account_sid, auth_token)

    client.verifications.start(service_sid, "+14155550123", channel="sms")   # sends the code
    check = client.verifications.check(service_sid, typed_code, to="+14155550123")
    if check.status == "approved":
        ...  # the person controls the number
    elif not check.valid:
        ...  # wrong code: let them try again

Errors are typed exceptions (``verify.client.errors`` has the whole tree): catch
``VerificationNotPending`` (``.verification_status`` is ``expired``, ``approved`` or ``canceled``),
``MaxCheckAttemptsReached``, ``MaxSendAttemptsReached`` (``.retry_after`` seconds), ``Blocked``,
``InvalidParameter`` (``.parameter``), or ``VerifyError`` for everything. ``AsyncVerifyClient``
offers the same methods for asyncio, and ``verify_webhook`` checks a signed webhook.
"""

from verify.client._async import AsyncServices, AsyncVerifications, AsyncVerifyClient
from verify.client._operations import ServiceSettings
from verify.client._sync import Services, Verifications, VerifyClient
from verify.client.errors import (
    ApiError,
    AuthenticationError,
    Blocked,
    BucketExists,
    CallbackSignatureInvalid,
    ChannelDisabled,
    ConnectionFailed,
    ConnectTimeout,
    DeliveryBlocked,
    FeatureDisabled,
    ForbiddenError,
    GeoPermissionBlocked,
    IdempotencyConflict,
    IdempotencyKeyReused,
    InternalServerError,
    InvalidParameter,
    InvalidUniqueName,
    MalformedBody,
    MaxBuckets,
    MaxCheckAttemptsReached,
    MaxRateLimits,
    MaxSendAttemptsReached,
    MethodNotAllowed,
    NoTarget,
    NotFoundError,
    PayloadTooLarge,
    RateLimited,
    RateLimitExists,
    SendLimitsUnavailable,
    ServiceUnavailable,
    SmsToLandline,
    Timeout,
    TooManyConcurrentRequests,
    TransportError,
    UnsupportedMediaType,
    VerificationNotPending,
    VerifyError,
    WebhookVerificationError,
)
from verify.client.models import SendCodeAttempt, Service, Verification, VerificationCheck
from verify.client.webhooks import sign_webhook, verify_webhook

__all__ = [
    "ApiError",
    "AsyncServices",
    "AsyncVerifications",
    "AsyncVerifyClient",
    "AuthenticationError",
    "Blocked",
    "BucketExists",
    "CallbackSignatureInvalid",
    "ChannelDisabled",
    "ConnectTimeout",
    "ConnectionFailed",
    "DeliveryBlocked",
    "FeatureDisabled",
    "ForbiddenError",
    "GeoPermissionBlocked",
    "IdempotencyConflict",
    "IdempotencyKeyReused",
    "InternalServerError",
    "InvalidParameter",
    "InvalidUniqueName",
    "MalformedBody",
    "MaxBuckets",
    "MaxCheckAttemptsReached",
    "MaxRateLimits",
    "MaxSendAttemptsReached",
    "MethodNotAllowed",
    "NoTarget",
    "NotFoundError",
    "PayloadTooLarge",
    "RateLimitExists",
    "RateLimited",
    "SendCodeAttempt",
    "SendLimitsUnavailable",
    "Service",
    "ServiceSettings",
    "ServiceUnavailable",
    "Services",
    "SmsToLandline",
    "Timeout",
    "TooManyConcurrentRequests",
    "TransportError",
    "UnsupportedMediaType",
    "Verification",
    "VerificationCheck",
    "VerificationNotPending",
    "Verifications",
    "VerifyClient",
    "VerifyError",
    "WebhookVerificationError",
    "sign_webhook",
    "verify_webhook",
]
