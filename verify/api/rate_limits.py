"""/v2/Services/{ServiceSid}/RateLimits and their /Buckets: Twilio's Programmable Rate Limits,
applied from a start's RateLimits parameter."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from verify.api import context
from verify.api.abuse_context import FORM, account, rate_limits, url
from verify.api.fields import TwilioDateTime
from verify.api.pagination import MetaSchema, PageArgs, page, page_window
from verify.api.parsing import Blueprint
from verify.api.schemas import Args

blp = Blueprint(
    "rate_limits",
    __name__,
    url_prefix="/v2/Services/<string:service_sid>/RateLimits",
    description="Programmable rate limits, applied from a start's RateLimits parameter",
)
context.guard_tenant_blueprint(blp)


class RateLimitCreateArgs(Args):
    UniqueName = ma.fields.String(required=True)
    Description = ma.fields.String(validate=ma.validate.Length(max=255))


class RateLimitUpdateArgs(Args):
    Description = ma.fields.String(validate=ma.validate.Length(max=255))


class BucketCreateArgs(Args):
    Max = ma.fields.Integer(required=True)
    Interval = ma.fields.Integer(required=True)


class BucketUpdateArgs(Args):
    Max = ma.fields.Integer()
    Interval = ma.fields.Integer()


class RateLimitSchema(ma.Schema):
    sid = ma.fields.String()
    service_sid = ma.fields.String()
    account_sid = ma.fields.String()
    unique_name = ma.fields.String()
    description = ma.fields.String(allow_none=True)
    date_created = TwilioDateTime()
    date_updated = TwilioDateTime()
    url = ma.fields.Method("_self")
    links = ma.fields.Method("_links")

    def _self(self, obj: Any) -> str:
        return url(f"/v2/Services/{obj.service_sid}/RateLimits/{obj.sid}")

    def _links(self, obj: Any) -> dict[str, str]:
        return {"buckets": self._self(obj) + "/Buckets"}


class BucketSchema(ma.Schema):
    sid = ma.fields.String()
    rate_limit_sid = ma.fields.String()
    service_sid = ma.fields.String()
    account_sid = ma.fields.String()
    max = ma.fields.Integer()
    interval = ma.fields.Integer()
    date_created = TwilioDateTime()
    date_updated = TwilioDateTime()
    url = ma.fields.Method("_self")

    def _self(self, obj: Any) -> str:
        base = f"/v2/Services/{obj.service_sid}/RateLimits/{obj.rate_limit_sid}"
        return url(f"{base}/Buckets/{obj.sid}")


class RateLimitListSchema(ma.Schema):
    rate_limits = ma.fields.List(ma.fields.Nested(RateLimitSchema))
    meta = ma.fields.Nested(MetaSchema)


class BucketListSchema(ma.Schema):
    buckets = ma.fields.List(ma.fields.Nested(BucketSchema))
    meta = ma.fields.Nested(MetaSchema)


@blp.route("")
class RateLimitsView(MethodView):
    @blp.arguments(RateLimitCreateArgs, location="form", content_type=FORM)
    @blp.response(201, RateLimitSchema)
    def post(self, args: dict[str, Any], service_sid: str) -> Any:
        """Create a rate limit; give it buckets, then pass RateLimits={"name": value} on starts."""
        return rate_limits().create(
            account(), service_sid, args["UniqueName"], args.get("Description")
        )

    @blp.arguments(PageArgs, location="query")
    @blp.response(200, RateLimitListSchema)
    def get(self, args: dict[str, Any], service_sid: str) -> dict[str, Any]:
        """List the service's rate limits."""
        offset, limit = page_window(args)
        items = rate_limits().page(account(), service_sid, offset, limit)
        return page("rate_limits", items, args)


@blp.route("/<string:sid>")
class RateLimitItem(MethodView):
    @blp.response(200, RateLimitSchema)
    def get(self, service_sid: str, sid: str) -> Any:
        """Fetch a rate limit."""
        return rate_limits().get(account(), service_sid, sid)

    @blp.arguments(RateLimitUpdateArgs, location="form", content_type=FORM)
    @blp.response(200, RateLimitSchema)
    def post(self, args: dict[str, Any], service_sid: str, sid: str) -> Any:
        """Update a rate limit's description."""
        return rate_limits().update(account(), service_sid, sid, args.get("Description"))

    @blp.response(204)
    def delete(self, service_sid: str, sid: str) -> None:
        """Delete a rate limit and its buckets."""
        rate_limits().delete(account(), service_sid, sid)


@blp.route("/<string:rate_limit_sid>/Buckets")
class Buckets(MethodView):
    @blp.arguments(BucketCreateArgs, location="form", content_type=FORM)
    @blp.response(201, BucketSchema)
    def post(self, args: dict[str, Any], service_sid: str, rate_limit_sid: str) -> Any:
        """Add a bucket: at most Max sends per Interval seconds for each value of the limit."""
        return rate_limits().create_bucket(
            account(), service_sid, rate_limit_sid, args["Max"], args["Interval"]
        )

    @blp.arguments(PageArgs, location="query")
    @blp.response(200, BucketListSchema)
    def get(self, args: dict[str, Any], service_sid: str, rate_limit_sid: str) -> dict[str, Any]:
        """List a rate limit's buckets."""
        items = rate_limits().buckets(account(), service_sid, rate_limit_sid)
        offset, limit = page_window(args)
        return page("buckets", items[offset : offset + limit], args)


@blp.route("/<string:rate_limit_sid>/Buckets/<string:sid>")
class BucketItem(MethodView):
    @blp.response(200, BucketSchema)
    def get(self, service_sid: str, rate_limit_sid: str, sid: str) -> Any:
        """Fetch a bucket."""
        return rate_limits().get_bucket(account(), service_sid, rate_limit_sid, sid)

    @blp.arguments(BucketUpdateArgs, location="form", content_type=FORM)
    @blp.response(200, BucketSchema)
    def post(self, args: dict[str, Any], service_sid: str, rate_limit_sid: str, sid: str) -> Any:
        """Change a bucket's Max or Interval."""
        return rate_limits().update_bucket(
            account(), service_sid, rate_limit_sid, sid, args.get("Max"), args.get("Interval")
        )

    @blp.response(204)
    def delete(self, service_sid: str, rate_limit_sid: str, sid: str) -> None:
        """Delete a bucket."""
        rate_limits().delete_bucket(account(), service_sid, rate_limit_sid, sid)
