"""/v2/Services/{ServiceSid}/Verifications and /VerificationCheck."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from verify.api import context
from verify.api.parsing import Blueprint
from verify.api.schemas import (
    VerificationCheckArgs,
    VerificationCheckSchema,
    VerificationCreateArgs,
    VerificationSchema,
    VerificationUpdateArgs,
)
from verify.domain.lifecycle import Outcome
from verify.domain.sends import StartRequest

blp = Blueprint(
    "verifications",
    __name__,
    url_prefix="/v2/Services/<string:service_sid>",
    description="Start, fetch, cancel and check verifications",
)
FORM = "application/x-www-form-urlencoded"
context.guard_tenant_blueprint(blp)


@blp.route("/Verifications")
class Verifications(MethodView):
    @blp.arguments(VerificationCreateArgs, location="form", content_type=FORM)
    @blp.response(201, VerificationSchema)
    def post(self, args: dict[str, Any], service_sid: str) -> Outcome:
        """Start a verification, or resend the pending one for the same destination."""
        request = StartRequest(
            to=args["To"],
            channel=args["Channel"],
            custom_code=args.get("CustomCode"),
            locale=args.get("Locale"),
            custom_friendly_name=args.get("CustomFriendlyName"),
            amount=args.get("Amount"),
            payee=args.get("Payee"),
            status_callback=args.get("StatusCallback"),
            credential_sid=context.principal().credential_sid,
            client_ip=args.get("DeviceIp") or context.client_ip(),
            device_ip=args.get("DeviceIp"),
            risk_check=args.get("RiskCheck") != "disable",
            rate_limits=args.get("RateLimits") or {},
        )
        return context.verifications().start(context.principal().account_sid, service_sid, request)


@blp.route("/Verifications/<string:sid>")
class VerificationItem(MethodView):
    @blp.response(200, VerificationSchema)
    def get(self, service_sid: str, sid: str) -> Outcome:
        """Fetch a verification with its true current status."""
        return context.verifications().fetch(context.principal().account_sid, service_sid, sid)

    @blp.arguments(VerificationUpdateArgs, location="form", content_type=FORM)
    @blp.response(200, VerificationSchema)
    def post(self, args: dict[str, Any], service_sid: str, sid: str) -> Outcome:
        """Cancel (or, where the service allows it, approve) a pending verification."""
        account = context.principal().account_sid
        return context.verifications().set_status(account, service_sid, sid, args["Status"])


@blp.route("/VerificationCheck")
class VerificationCheck(MethodView):
    # No one field is required, but the body is: Code, and To or VerificationSid (checked by the
    # domain, so that a missing target is 60221 as on Twilio).
    @blp.arguments(VerificationCheckArgs, location="form", content_type=FORM, required=True)
    @blp.response(200, VerificationCheckSchema)
    def post(self, args: dict[str, Any], service_sid: str) -> Outcome:
        """Check a code, by To or by VerificationSid."""
        return context.checks().check(
            context.principal().account_sid,
            service_sid,
            args.get("Code"),
            to=args.get("To"),
            verification_sid=args.get("VerificationSid"),
        )
