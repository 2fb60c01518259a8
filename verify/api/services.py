"""/v2/Services: create, list, fetch, update, delete."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from verify.api import context
from verify.api.pagination import PageArgs, page, page_window
from verify.api.parsing import Blueprint
from verify.api.schemas import ServiceArgs, ServiceCreateArgs, ServiceListSchema, ServiceSchema
from verify.domain.services import ServiceFields
from verify.models import Service

blp = Blueprint("services", __name__, url_prefix="/v2/Services", description="Verify services")
context.guard_tenant_blueprint(blp)

_FIELDS = {
    "FriendlyName": "friendly_name",
    "CodeLength": "code_length",
    "LookupEnabled": "lookup_enabled",
    "SkipSmsToLandlines": "skip_sms_to_landlines",
    "DtmfInputRequired": "dtmf_input_required",
    "TtsName": "tts_name",
    "Psd2Enabled": "psd2_enabled",
    "DoNotShareWarningEnabled": "do_not_share_warning_enabled",
    "CustomCodeEnabled": "custom_code_enabled",
    "ManualApprovalEnabled": "manual_approval_enabled",
    "CodeTtl": "code_ttl",
    "MaxCheckAttempts": "max_check_attempts",
    "MaxSendAttempts": "max_send_attempts",
    "DefaultLocale": "default_locale",
    "TestNumbers": "test_numbers",
    "ChannelTimeout": "channel_timeout",
}


def to_fields(args: dict[str, Any]) -> ServiceFields:
    values = {_FIELDS[k]: v for k, v in args.items() if k in _FIELDS}
    if "Channels" in args:
        values["channels"] = tuple(args["Channels"])
    if "FallbackChannels" in args:
        values["fallback_channels"] = tuple(args["FallbackChannels"])
    return ServiceFields(**values)


@blp.route("")
class Services(MethodView):
    @blp.arguments(
        ServiceCreateArgs, location="form", content_type="application/x-www-form-urlencoded"
    )
    @blp.response(201, ServiceSchema)
    def post(self, args: dict[str, Any]) -> Service:
        """Create a service."""
        return context.services().create(context.principal().account_sid, to_fields(args))

    @blp.arguments(PageArgs, location="query")
    @blp.response(200, ServiceListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List the account's services."""
        offset, limit = page_window(args)
        items = context.services().page(context.principal().account_sid, offset, limit)
        return page("services", items, args)


@blp.route("/<string:sid>")
class ServiceItem(MethodView):
    @blp.response(200, ServiceSchema)
    def get(self, sid: str) -> Service:
        """Fetch a service."""
        return context.services().get(context.principal().account_sid, sid)

    @blp.arguments(ServiceArgs, location="form", content_type="application/x-www-form-urlencoded")
    @blp.response(200, ServiceSchema)
    def post(self, args: dict[str, Any], sid: str) -> Service:
        """Update a service."""
        return context.services().update(context.principal().account_sid, sid, to_fields(args))

    @blp.response(204)
    def delete(self, sid: str) -> None:
        """Delete a service and its verifications."""
        context.services().delete(context.principal().account_sid, sid)
