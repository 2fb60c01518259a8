"""Wire schemas: Twilio's PascalCase parameters in, Twilio's snake_case fields out (plus ours)."""

from __future__ import annotations

from typing import Any

import flask
import marshmallow as ma

from verify.api.fields import CommaList, JsonObject, TwilioDateTime, channel
from verify.api.pagination import MetaSchema
from verify.api.webhook_schemas import WebhookUrl
from verify.domain.lifecycle_store import APPROVED, CANCELED
from verify.domain.services import RANGES


def bounded(parameter: str, **metadata: Any) -> dict[str, Any]:
    """OpenAPI metadata for a numeric service setting: its range, as the domain enforces it."""
    low, high = RANGES[parameter]
    return {"minimum": low, "maximum": high, **metadata}


class Args(ma.Schema):
    class Meta:
        # Twilio ignores parameters it does not know (warning 20001); so do we.
        unknown = ma.EXCLUDE


def _url(path: str) -> str:
    return flask.request.host_url.rstrip("/") + path


# -- services ---------------------------------------------------------------------------------------


class ServiceArgs(Args):
    FriendlyName = ma.fields.String(validate=ma.validate.Length(1, 64))
    CodeLength = ma.fields.Integer(metadata=bounded("CodeLength"))
    LookupEnabled = ma.fields.Boolean()
    SkipSmsToLandlines = ma.fields.Boolean()
    DtmfInputRequired = ma.fields.Boolean()
    TtsName = ma.fields.String(validate=ma.validate.Length(max=64))
    Psd2Enabled = ma.fields.Boolean()
    DoNotShareWarningEnabled = ma.fields.Boolean()
    CustomCodeEnabled = ma.fields.Boolean()
    ManualApprovalEnabled = ma.fields.Boolean(
        metadata={"description": "Extension: allow Status=approved on a verification"}
    )
    CodeTtl = ma.fields.Integer(
        metadata=bounded("CodeTtl", description="Extension: code lifetime, seconds")
    )
    MaxCheckAttempts = ma.fields.Integer(
        metadata=bounded("MaxCheckAttempts", description="Extension (default 5)")
    )
    MaxSendAttempts = ma.fields.Integer(
        metadata=bounded("MaxSendAttempts", description="Extension (default 5)")
    )
    Channels = CommaList(metadata={"description": "Extension: enabled channels"})
    DefaultLocale = ma.fields.String(metadata={"description": "Extension: default message locale"})
    FallbackChannels = CommaList(
        metadata={"description": "Extension: channels to fall back to, in order (empty: none)"}
    )
    ChannelTimeout = ma.fields.Integer(
        metadata=bounded(
            "ChannelTimeout",
            description="Extension: seconds to wait for delivery or a check (default 60)",
        )
    )
    TestNumbers = JsonObject(
        metadata={"description": "Extension: JSON object of destination -> fixed code (write-only)"}
    )


class ServiceCreateArgs(ServiceArgs):
    FriendlyName = ma.fields.String(required=True, validate=ma.validate.Length(1, 64))


class ServiceSchema(ma.Schema):
    sid = ma.fields.String()
    account_sid = ma.fields.String()
    friendly_name = ma.fields.String()
    code_length = ma.fields.Integer()
    lookup_enabled = ma.fields.Boolean()
    psd2_enabled = ma.fields.Boolean()
    skip_sms_to_landlines = ma.fields.Boolean()
    dtmf_input_required = ma.fields.Boolean()
    tts_name = ma.fields.String(allow_none=True)
    do_not_share_warning_enabled = ma.fields.Boolean()
    custom_code_enabled = ma.fields.Boolean()
    push = ma.fields.Constant(None, allow_none=True)
    totp = ma.fields.Constant(None, allow_none=True)
    default_template_sid = ma.fields.Constant(None, allow_none=True)
    whatsapp = ma.fields.Constant(None, allow_none=True)
    passkeys = ma.fields.Constant(None, allow_none=True)
    verify_event_subscription_enabled = ma.fields.Constant(False)
    manual_approval_enabled = ma.fields.Boolean()
    code_ttl = ma.fields.Integer()
    max_check_attempts = ma.fields.Integer()
    max_send_attempts = ma.fields.Integer()
    channels = ma.fields.Method("_channels")
    default_locale = ma.fields.String(allow_none=True)
    fallback_channels = ma.fields.Method(
        "_fallback_channels", metadata={"description": "Extension"}
    )
    channel_timeout = ma.fields.Integer(metadata={"description": "Extension"})
    test_numbers = ma.fields.Method("_test_numbers", metadata={"description": "Extension"})
    date_created = TwilioDateTime()
    date_updated = TwilioDateTime()
    url = ma.fields.Method("_self")
    links = ma.fields.Method("_links")

    def _channels(self, obj: Any) -> list[str]:
        return [c for c in obj.channels.split(",") if c]

    def _fallback_channels(self, obj: Any) -> list[str]:
        return [c for c in obj.fallback_channels.split(",") if c]

    def _test_numbers(self, obj: Any) -> list[str]:
        return [t.destination for t in obj.test_numbers]

    def _self(self, obj: Any) -> str:
        return _url(f"/v2/Services/{obj.sid}")

    def _links(self, obj: Any) -> dict[str, str]:
        base = _url(f"/v2/Services/{obj.sid}")
        return {
            "verifications": f"{base}/Verifications",
            "verification_checks": f"{base}/VerificationCheck",
        }


class ServiceListSchema(ma.Schema):
    services = ma.fields.List(ma.fields.Nested(ServiceSchema))
    meta = ma.fields.Nested(MetaSchema)


# -- verifications ----------------------------------------------------------------------------------


class VerificationCreateArgs(Args):
    To = ma.fields.String(required=True, validate=ma.validate.Length(1, 320))
    Channel = channel(required=True)
    CustomFriendlyName = ma.fields.String(validate=ma.validate.Length(1, 64))
    CustomCode = ma.fields.String()
    Locale = ma.fields.String(
        validate=ma.validate.Regexp(r"^[a-zA-Z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
    )
    Amount = ma.fields.String(validate=ma.validate.Length(max=64))
    Payee = ma.fields.String(validate=ma.validate.Length(max=64))
    DeviceIp = ma.fields.String(validate=ma.validate.Length(max=64))
    RiskCheck = ma.fields.String(validate=ma.validate.OneOf(["enable", "disable"]))
    RateLimits = JsonObject(
        metadata={"description": "JSON object: rate limit unique name -> the value to count"}
    )
    StatusCallback = WebhookUrl(
        metadata={"description": "Extension: a URL that gets this verification's events, signed"}
    )


class VerificationUpdateArgs(Args):
    Status = ma.fields.String(required=True, metadata={"enum": [CANCELED, APPROVED]})


class VerificationCheckArgs(Args):
    Code = ma.fields.String()
    To = ma.fields.String(validate=ma.validate.Length(1, 320))
    VerificationSid = ma.fields.String()
    Amount = ma.fields.String()
    Payee = ma.fields.String()


class SendCodeAttemptSchema(ma.Schema):
    attempt_sid = ma.fields.String(attribute="sid")
    channel = ma.fields.String()
    time = TwilioDateTime(attribute="date_created")
    status = ma.fields.String(
        metadata={
            "description": "Extension: delivery status (queued, sending, sent, delivered, "
            "undelivered, failed, canceled, blocked, test)"
        }
    )
    provider = ma.fields.String(allow_none=True)
    provider_sid = ma.fields.String(allow_none=True, metadata={"description": "Extension"})
    reason_code = ma.fields.String(allow_none=True)
    replaces_sid = ma.fields.String(
        allow_none=True,
        metadata={"description": "Extension: the attempt this one fails over or falls back from"},
    )


class VerificationSchema(ma.Schema):
    sid = ma.fields.String(attribute="verification.sid")
    service_sid = ma.fields.String(attribute="verification.service_sid")
    account_sid = ma.fields.String(attribute="verification.account_sid")
    to = ma.fields.String(attribute="verification.destination")
    channel = ma.fields.String(attribute="verification.channel")
    status = ma.fields.String(attribute="verification.status")
    valid = ma.fields.Boolean()
    lookup = ma.fields.Method("_lookup")
    amount = ma.fields.String(attribute="verification.amount", allow_none=True)
    payee = ma.fields.String(attribute="verification.payee", allow_none=True)
    send_code_attempts = ma.fields.List(
        ma.fields.Nested(SendCodeAttemptSchema), attribute="attempts"
    )
    date_created = TwilioDateTime(attribute="verification.date_created")
    date_updated = TwilioDateTime(attribute="verification.date_updated")
    expires_at = TwilioDateTime(
        attribute="verification.expires_at", metadata={"description": "Extension"}
    )
    check_attempts = ma.fields.Integer(
        attribute="verification.check_attempts", metadata={"description": "Extension"}
    )
    sna = ma.fields.Constant(None, allow_none=True)
    url = ma.fields.Method("_self")

    def _lookup(self, obj: Any) -> dict[str, Any]:
        return {"carrier": None, "country_code": obj.verification.country}

    def _self(self, obj: Any) -> str:
        v = obj.verification
        return _url(f"/v2/Services/{v.service_sid}/Verifications/{v.sid}")


class VerificationCheckSchema(ma.Schema):
    sid = ma.fields.String(attribute="verification.sid")
    service_sid = ma.fields.String(attribute="verification.service_sid")
    account_sid = ma.fields.String(attribute="verification.account_sid")
    to = ma.fields.String(attribute="verification.destination")
    channel = ma.fields.String(attribute="verification.channel")
    status = ma.fields.String(attribute="verification.status")
    valid = ma.fields.Boolean()
    amount = ma.fields.String(attribute="verification.amount", allow_none=True)
    payee = ma.fields.String(attribute="verification.payee", allow_none=True)
    date_created = TwilioDateTime(attribute="verification.date_created")
    date_updated = TwilioDateTime(attribute="verification.date_updated")
    sna_attempts_error_codes: ma.fields.Field[list[int]] = ma.fields.Constant([])
