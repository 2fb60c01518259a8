"""/v2/Attempts, /v2/Attempts/{Sid} and /v2/Attempts/Summary: the account's send attempts, shaped
like Twilio's, plus the delivery status, the normalized reason code and the provider."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import flask
import marshmallow as ma
from flask.views import MethodView

from verify.api import context
from verify.api.fields import TwilioDateTime, channel
from verify.api.pagination import MetaSchema, PageArgs, page, page_window
from verify.api.parsing import Blueprint
from verify.domain.attempts import AttemptFilter, AttemptLog, AttemptView, Summary
from verify.domain.destinations import parse_any

blp = Blueprint(
    "attempts",
    __name__,
    url_prefix="/v2/Attempts",
    description="Verification attempts: every message sent (or refused), with its delivery status",
)
context.guard_tenant_blueprint(blp)


class AttemptsSummaryArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    VerifyServiceSid = ma.fields.String()
    DateCreatedAfter = ma.fields.AwareDateTime(default_timezone=UTC)
    DateCreatedBefore = ma.fields.AwareDateTime(default_timezone=UTC)
    Country = ma.fields.String()
    Channel = channel()
    DestinationPrefix = ma.fields.String(validate=ma.validate.Regexp(r"^\+?\d{1,15}$"))


class AttemptArgs(PageArgs):
    VerifyServiceSid = ma.fields.String()
    VerificationSid = ma.fields.String()
    DateCreatedAfter = ma.fields.AwareDateTime(default_timezone=UTC)
    DateCreatedBefore = ma.fields.AwareDateTime(default_timezone=UTC)
    ChannelDataTo = ma.fields.String(data_key="ChannelData.To")
    Country = ma.fields.String()
    Channel = channel()
    Status = ma.fields.String(metadata={"description": "converted or unconverted"})


class DeliveryReceiptSchema(ma.Schema):
    status = ma.fields.String()
    reason_code = ma.fields.String(allow_none=True)
    applied = ma.fields.Boolean(metadata={"description": "false: late, out of order, or unmatched"})
    source = ma.fields.String(
        metadata={
            "description": "callback: posted by the provider; lookup: the provider's answer when "
            "no final receipt had come and it was asked"
        }
    )
    date_created = TwilioDateTime()
    occurred_at = TwilioDateTime(allow_none=True)


class VerificationAttemptSchema(ma.Schema):
    sid = ma.fields.String(attribute="attempt.sid")
    account_sid = ma.fields.String(attribute="attempt.account_sid")
    service_sid = ma.fields.String(attribute="attempt.service_sid")
    verification_sid = ma.fields.String(attribute="attempt.verification_sid")
    date_created = TwilioDateTime(attribute="attempt.date_created")
    date_updated = TwilioDateTime(attribute="attempt.date_updated")
    conversion_status = ma.fields.Method("_conversion")
    channel = ma.fields.String(attribute="attempt.channel")
    price = ma.fields.Constant(None, allow_none=True)
    channel_data = ma.fields.Method("_channel_data")
    url = ma.fields.Method("_self")
    # Extensions: the delivery status, why, and who carried it.
    status = ma.fields.String(attribute="attempt.status")
    reason_code = ma.fields.String(attribute="attempt.reason_code", allow_none=True)
    provider = ma.fields.String(attribute="attempt.provider", allow_none=True)
    provider_sid = ma.fields.String(attribute="attempt.provider_sid", allow_none=True)
    attempt_number = ma.fields.Integer(attribute="attempt.number")
    replaces_sid = ma.fields.String(attribute="attempt.replaces_sid", allow_none=True)

    def _conversion(self, obj: AttemptView) -> str:
        return "converted" if obj.converted else "unconverted"

    def _channel_data(self, obj: AttemptView) -> dict[str, Any]:
        a, v = obj.attempt, obj.verification
        return {
            "verification_sid": v.sid,
            "to": v.destination,
            "status": "confirmed"
            if obj.converted
            else "expired"
            if v.status == "expired"
            else "unconfirmed",
            "message_status": a.status,
            "error_code": None,
            "country": v.country,
            "code_length": obj.code_length,
            "locale": v.locale,
        }

    def _self(self, obj: AttemptView) -> str:
        return flask.request.host_url.rstrip("/") + f"/v2/Attempts/{obj.attempt.sid}"


class VerificationAttemptDetailSchema(VerificationAttemptSchema):
    receipts = ma.fields.List(
        ma.fields.Nested(DeliveryReceiptSchema),
        metadata={"description": "Extension: delivery receipts, in arrival order"},
    )


class VerificationAttemptListSchema(ma.Schema):
    attempts = ma.fields.List(ma.fields.Nested(VerificationAttemptSchema))
    meta = ma.fields.Nested(MetaSchema)


class VerificationAttemptsSummarySchema(ma.Schema):
    total_attempts = ma.fields.Integer()
    total_converted = ma.fields.Integer()
    total_unconverted = ma.fields.Integer()
    conversion_rate_percentage = ma.fields.String()
    url = ma.fields.Method("_self")

    def _self(self, obj: Summary) -> str:
        return flask.request.host_url.rstrip("/") + "/v2/Attempts/Summary"


def to_filter(args: dict[str, Any]) -> AttemptFilter:
    to = args.get("ChannelDataTo")
    return AttemptFilter(
        date_created_after=args.get("DateCreatedAfter"),
        date_created_before=args.get("DateCreatedBefore"),
        to=parse_any(to, "ChannelData.To").value if to else None,
        destination_prefix=args.get("DestinationPrefix"),
        country=args.get("Country"),
        channel=args.get("Channel"),
        service_sid=args.get("VerifyServiceSid"),
        verification_sid=args.get("VerificationSid"),
        conversion_status=args["Status"].lower() if args.get("Status") else None,
    )


def log() -> AttemptLog:
    return AttemptLog(context.session())


@blp.route("")
class Attempts(MethodView):
    @blp.arguments(AttemptArgs, location="query")
    @blp.response(200, VerificationAttemptListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List the account's send attempts, newest first."""
        offset, limit = page_window(args)
        items = log().page(context.principal().account_sid, to_filter(args), offset, limit)
        return page("attempts", items, args)


@blp.route("/Summary")
class AttemptsSummary(MethodView):
    @blp.arguments(AttemptsSummaryArgs, location="query")
    @blp.response(200, VerificationAttemptsSummarySchema)
    def get(self, args: dict[str, Any]) -> Summary:
        """How many attempts there were and how many converted."""
        return log().summary(context.principal().account_sid, to_filter(args))


@blp.route("/<string:sid>")
class AttemptItem(MethodView):
    @blp.response(200, VerificationAttemptDetailSchema)
    def get(self, sid: str) -> AttemptView:
        """Fetch one attempt with its delivery receipts."""
        return log().get(context.principal().account_sid, sid)
