"""Wire schemas for webhooks (Twilio's ``Webhooks`` resource plus our secrets and deliveries), and the
URL field that ``StatusCallback`` shares with them."""

from __future__ import annotations

from typing import Any

import flask
import marshmallow as ma

from verify.api.fields import CommaList, TwilioDateTime
from verify.api.pagination import MetaSchema
from verify.events import ssrf


class _Args(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE


class WebhookUrl(ma.fields.String):
    """An http(s) URL the SSRF guard does not refuse by its form (an IP literal is judged here; a
    name when it is resolved, before every delivery)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        allow = ssrf.parse_networks(
            flask.current_app.extensions["verify"].settings.webhook_allow_networks
        )
        try:
            ssrf.check_form(text, allow)
        except ssrf.UnsafeURL as exc:
            raise ma.ValidationError(str(exc)) from None
        return text.strip()


def _url(path: str) -> str:
    return flask.request.host_url.rstrip("/") + path


class WebhookArgs(_Args):
    FriendlyName = ma.fields.String(validate=ma.validate.Length(1, 64))
    EventTypes = CommaList(metadata={"description": "Event types, a family (verification.*) or *"})
    WebhookUrl = ma.fields.String(validate=ma.validate.Length(1, 2048))
    Status = ma.fields.String(metadata={"description": "enabled (default) or disabled"})
    Version = ma.fields.String(metadata={"description": "v1 or v2 (default); one payload format"})
    SignatureMode = ma.fields.String(
        metadata={
            "description": "Extension: standard (default) or twilio (adds X-Twilio-Signature)"
        }
    )


class WebhookCreateArgs(WebhookArgs):
    FriendlyName = ma.fields.String(required=True, validate=ma.validate.Length(1, 64))
    EventTypes = CommaList(required=True)
    WebhookUrl = ma.fields.String(required=True, validate=ma.validate.Length(1, 2048))


class WebhookSchema(ma.Schema):
    sid = ma.fields.String()
    account_sid = ma.fields.String()
    service_sid = ma.fields.String()
    friendly_name = ma.fields.String()
    event_types = ma.fields.Method("_event_types")
    webhook_url = ma.fields.String(attribute="url")
    webhook_method = ma.fields.Constant("POST")
    status = ma.fields.String()
    version = ma.fields.String()
    signature_mode = ma.fields.String(metadata={"description": "Extension"})
    date_created = TwilioDateTime()
    date_updated = TwilioDateTime()
    url = ma.fields.Method("_self")

    def _event_types(self, obj: Any) -> list[str]:
        return [t for t in obj.event_types.split(",") if t]

    def _self(self, obj: Any) -> str:
        return _url(f"/v2/Services/{obj.service_sid}/Webhooks/{obj.sid}")


class WebhookCreatedSchema(WebhookSchema):
    secret = ma.fields.String(
        metadata={"description": "Extension: the signing secret (whsec_...), shown only here"}
    )


class WebhookListSchema(ma.Schema):
    webhooks = ma.fields.List(ma.fields.Nested(WebhookSchema))
    meta = ma.fields.Nested(MetaSchema)


class RotateArgs(_Args):
    GracePeriod = ma.fields.Integer(
        metadata={
            "description": "Seconds the current secrets keep signing (default 86400; 0-604800)"
        }
    )


class SecretSchema(ma.Schema):
    sid = ma.fields.String()
    owner_sid = ma.fields.String(metadata={"description": "The webhook (YW...) or service (VA...)"})
    date_created = TwilioDateTime()
    expires_at = TwilioDateTime(allow_none=True)


class SecretCreatedSchema(SecretSchema):
    secret = ma.fields.String(metadata={"description": "whsec_..., shown only here"})


class SecretListSchema(ma.Schema):
    secrets = ma.fields.List(ma.fields.Nested(SecretSchema))


class DeliveryArgs(_Args):
    WebhookSid = ma.fields.String()
    VerificationSid = ma.fields.String()
    Status = ma.fields.String(
        metadata={"description": "pending, delivering, retrying, succeeded, dead"}
    )
    PageSize = ma.fields.Integer(load_default=50, validate=ma.validate.Range(1, 1000))
    Page = ma.fields.Integer(load_default=0, validate=ma.validate.Range(0, 100_000))
    PageToken = ma.fields.String(load_default=None)


class AttemptSchema(ma.Schema):
    number = ma.fields.Integer()
    time = TwilioDateTime(attribute="date_created")
    status_code = ma.fields.Integer(allow_none=True)
    latency_ms = ma.fields.Integer(allow_none=True)
    error = ma.fields.String(allow_none=True)


class DeliverySchema(ma.Schema):
    sid = ma.fields.String()
    account_sid = ma.fields.String()
    service_sid = ma.fields.String()
    webhook_sid = ma.fields.String(attribute="endpoint_sid", allow_none=True)
    status_callback = ma.fields.String(attribute="url", allow_none=True)
    event_sid = ma.fields.String()
    event_type = ma.fields.String()
    verification_sid = ma.fields.String(allow_none=True)
    status = ma.fields.String()
    attempts = ma.fields.Integer(
        metadata={"description": "Tries since creation or the last replay"}
    )
    next_attempt_at = TwilioDateTime()
    last_status_code = ma.fields.Integer(allow_none=True)
    last_error = ma.fields.String(allow_none=True)
    date_created = TwilioDateTime()
    date_updated = TwilioDateTime()
    delivered_at = TwilioDateTime(allow_none=True)


class DeliveryDetailSchema(DeliverySchema):
    attempt_log = ma.fields.List(ma.fields.Nested(AttemptSchema), attribute="attempt_log")


class DeliveryListSchema(ma.Schema):
    deliveries = ma.fields.List(ma.fields.Nested(DeliverySchema))
    meta = ma.fields.Nested(MetaSchema)


class ReplaySchema(ma.Schema):
    replayed = ma.fields.Integer()
