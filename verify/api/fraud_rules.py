"""/v2/FraudRules: the account's fraud rules, their audit trail (/Changes) and a dry run (/DryRun)
that says what the limits and rules would decide for a send."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from verify.abuse.registry import MAX_DESCRIPTION, RuleFields
from verify.api import context
from verify.api.abuse_context import FORM, account, controls, fraud_rules, url
from verify.api.fields import CommaList, JsonAnyObject, JsonObject, TwilioDateTime, channel
from verify.api.pagination import MetaSchema, PageArgs, page, page_window
from verify.api.parsing import Blueprint
from verify.api.schemas import Args
from verify.domain.destinations import parse_destination
from verify.domain.sends import SendContext, StartRequest
from verify.errors import InvalidParameter, NotFound
from verify.models import Service

# -- schemas ----------------------------------------------------------------------------------------


class RuleArgs(Args):
    Type = ma.fields.String(metadata={"description": "Rule type (docs/abuse.md)"})
    Params = JsonAnyObject(metadata={"description": "JSON object of the type's parameters"})
    Mode = ma.fields.String(metadata={"description": "enforce (default) or monitor"})
    ServiceSid = ma.fields.String(
        metadata={"description": "Scope: this service only (default: every service)"}
    )
    Channels = CommaList(metadata={"description": "Channels watched (default: the type's)"})
    Priority = ma.fields.Integer(metadata={"description": "Evaluation order, lowest first"})
    Enabled = ma.fields.Boolean()
    Description = ma.fields.String(validate=ma.validate.Length(max=MAX_DESCRIPTION))


class RuleCreateArgs(RuleArgs):
    Type = ma.fields.String(required=True)


class RuleSchema(ma.Schema):
    sid = ma.fields.String()
    account_sid = ma.fields.String()
    service_sid = ma.fields.String(allow_none=True)
    scope = ma.fields.Method("_scope")
    type = ma.fields.String()
    mode = ma.fields.String()
    channels = ma.fields.Method("_channels")
    priority = ma.fields.Integer()
    enabled = ma.fields.Boolean()
    description = ma.fields.String(allow_none=True)
    params = ma.fields.Dict()
    date_created = TwilioDateTime()
    date_updated = TwilioDateTime()
    url = ma.fields.Method("_self")

    def _scope(self, obj: Any) -> str:
        return "service" if obj.service_sid else "account"

    def _channels(self, obj: Any) -> list[str]:
        return [c for c in obj.channels.split(",") if c]

    def _self(self, obj: Any) -> str:
        return url(f"/v2/FraudRules/{obj.sid}")


class RuleListArgs(PageArgs):
    ServiceSid = ma.fields.String()


class RuleListSchema(ma.Schema):
    fraud_rules = ma.fields.List(ma.fields.Nested(RuleSchema))
    meta = ma.fields.Nested(MetaSchema)


class ChangeSchema(ma.Schema):
    rule_sid = ma.fields.String()
    action = ma.fields.String()
    actor = ma.fields.String()
    before = ma.fields.Dict(allow_none=True)
    after = ma.fields.Dict(allow_none=True)
    date_created = TwilioDateTime()


class ChangeListSchema(ma.Schema):
    changes = ma.fields.List(ma.fields.Nested(ChangeSchema))
    meta = ma.fields.Nested(MetaSchema)


class DryRunArgs(Args):
    ServiceSid = ma.fields.String(required=True)
    To = ma.fields.String(required=True, validate=ma.validate.Length(1, 320))
    Channel = channel(load_default="sms")
    DeviceIp = ma.fields.String(validate=ma.validate.Length(max=64))
    ClientIp = ma.fields.String(
        validate=ma.validate.Length(max=64),
        metadata={"description": "The caller's address to assume (default: this request's)"},
    )
    RiskCheck = ma.fields.String(validate=ma.validate.OneOf(["enable", "disable"]))
    RateLimits = JsonObject()


class DryRunDecisionSchema(ma.Schema):
    rule_sid = ma.fields.String()
    rule_type = ma.fields.String()
    mode = ma.fields.String()
    action = ma.fields.String()
    reason_code = ma.fields.String()
    reason = ma.fields.String()
    inputs = ma.fields.Dict()


class DryRunLimitSchema(ma.Schema):
    key = ma.fields.String()
    counter = ma.fields.String()
    max = ma.fields.Integer()
    interval = ma.fields.Integer()
    enforced = ma.fields.Boolean()
    allowed = ma.fields.Boolean()
    remaining = ma.fields.Integer()
    retry_after = ma.fields.Integer()


class DryRunSchema(ma.Schema):
    outcome = ma.fields.String(metadata={"description": "allow, block or refuse (429)"})
    code = ma.fields.Integer(allow_none=True)
    status = ma.fields.Integer(allow_none=True)
    reason = ma.fields.String(allow_none=True)
    decisions = ma.fields.List(ma.fields.Nested(DryRunDecisionSchema))
    limits = ma.fields.List(ma.fields.Nested(DryRunLimitSchema))


# -- /v2/FraudRules ---------------------------------------------------------------------------------

blp = Blueprint(
    "fraud_rules", __name__, url_prefix="/v2/FraudRules", description="Fraud rules and send limits"
)
context.guard_tenant_blueprint(blp)


def _fields(args: dict[str, Any]) -> RuleFields:
    channels = args.get("Channels")
    return RuleFields(
        type=args.get("Type"),
        params=args.get("Params"),
        mode=args.get("Mode"),
        service_sid=args.get("ServiceSid"),
        channels=tuple(channels) if channels is not None else None,
        priority=args.get("Priority"),
        enabled=args.get("Enabled"),
        description=args.get("Description"),
    )


@blp.route("")
class Rules(MethodView):
    @blp.arguments(RuleCreateArgs, location="form", content_type=FORM)
    @blp.response(201, RuleSchema)
    def post(self, args: dict[str, Any]) -> Any:
        """Create a rule (recorded in the audit trail; in force everywhere within about a second)."""
        return fraud_rules().create(account(), _fields(args))

    @blp.arguments(RuleListArgs, location="query")
    @blp.response(200, RuleListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List the account's rules (the built-in defaults apply to every type not listed)."""
        offset, limit = page_window(args)
        items = fraud_rules().page(account(), offset, limit, args.get("ServiceSid"))
        return page("fraud_rules", items, args)


@blp.route("/Changes")
class Changes(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, ChangeListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The audit trail: every change to the account's rules, newest first."""
        offset, limit = page_window(args)
        return page("changes", fraud_rules().changes(account(), offset, limit), args)


@blp.route("/DryRun")
class DryRun(MethodView):
    @blp.arguments(DryRunArgs, location="form", content_type=FORM)
    @blp.response(200, DryRunSchema)
    def post(self, args: dict[str, Any]) -> dict[str, Any]:
        """What the limits and rules would decide for a hypothetical send (writes and counts
        nothing)."""
        service_sid = args["ServiceSid"]
        service = context.session().get(Service, service_sid)
        if service is None or service.account_sid != account():
            raise NotFound(f"The requested resource /Services/{service_sid} was not found")
        channel = args["Channel"]
        if channel not in ("sms", "call", "email", "whatsapp"):
            raise InvalidParameter("Channel", "must be one of sms, call, email, whatsapp")
        destination = parse_destination(args["To"], channel)
        device_ip = args.get("DeviceIp")
        request = StartRequest(
            to=destination.value,
            channel=channel,
            credential_sid=context.principal().credential_sid,
            client_ip=device_ip or args.get("ClientIp") or context.client_ip(),
            device_ip=device_ip,
            risk_check=args.get("RiskCheck", "enable") != "disable",
            rate_limits=args.get("RateLimits") or {},
        )
        ctx = SendContext(account(), service_sid, destination, channel, request, None)
        verdict = controls().evaluate(ctx, dry=True, session=context.session())
        error = verdict.refusal or verdict.block
        return {
            "outcome": "refuse" if verdict.refusal else "block" if verdict.block else "allow",
            "code": error.code if error else None,
            "status": error.status if error else None,
            "reason": error.detail if error else None,
            "decisions": [
                {
                    "rule_sid": d.rule.sid,
                    "rule_type": d.rule.type,
                    "mode": d.rule.mode,
                    "action": d.action,
                    "reason_code": d.reason_code,
                    "reason": d.reason,
                    "inputs": d.inputs,
                }
                for d in verdict.decisions
            ],
            "limits": [
                {
                    "key": s.charge.limit.key,
                    "counter": s.charge.label,
                    "max": s.charge.limit.max,
                    "interval": s.charge.limit.interval,
                    "enforced": s.charge.limit.enforce,
                    "allowed": s.allowed,
                    "remaining": s.remaining,
                    "retry_after": int(s.retry_after + 0.999),
                }
                for s in verdict.limits
            ],
        }


@blp.route("/<string:sid>")
class RuleItem(MethodView):
    @blp.response(200, RuleSchema)
    def get(self, sid: str) -> Any:
        """Fetch a rule."""
        return fraud_rules().get(account(), sid)

    @blp.arguments(RuleArgs, location="form", content_type=FORM)
    @blp.response(200, RuleSchema)
    def post(self, args: dict[str, Any], sid: str) -> Any:
        """Update a rule (its type cannot change)."""
        return fraud_rules().update(account(), sid, _fields(args))

    @blp.response(204)
    def delete(self, sid: str) -> None:
        """Delete a rule (the built-in default of its type applies again if it was the last)."""
        fraud_rules().delete(account(), sid)
