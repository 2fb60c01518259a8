"""/v2/FraudDecisions: what the fraud rules decided, per send attempt."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from verify.api import context
from verify.api.abuse_context import account, fraud_rules
from verify.api.fields import TwilioDateTime
from verify.api.fraud_rules import DryRunDecisionSchema
from verify.api.pagination import MetaSchema, PageArgs, page, page_window
from verify.api.parsing import Blueprint


class DecisionSchema(DryRunDecisionSchema):
    """What a rule decided (as a dry run shows it), for which send, and when."""

    verification_sid = ma.fields.String()
    attempt_sid = ma.fields.String(allow_none=True)
    service_sid = ma.fields.String()
    date_created = TwilioDateTime()


class DecisionListArgs(PageArgs):
    VerificationSid = ma.fields.String()


class DecisionListSchema(ma.Schema):
    fraud_decisions = ma.fields.List(ma.fields.Nested(DecisionSchema))
    meta = ma.fields.Nested(MetaSchema)


blp = Blueprint(
    "fraud_decisions",
    __name__,
    url_prefix="/v2/FraudDecisions",
    description="What the fraud rules decided, per send attempt",
)
context.guard_tenant_blueprint(blp)


@blp.route("")
class Decisions(MethodView):
    @blp.arguments(DecisionListArgs, location="query")
    @blp.response(200, DecisionListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Blocks, flags and bypasses, newest first (filter with VerificationSid)."""
        offset, limit = page_window(args)
        items = fraud_rules().decisions(account(), offset, limit, args.get("VerificationSid"))
        return page("fraud_decisions", items, args)
