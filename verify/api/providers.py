"""/v2/Providers: an account's providers (create, list, fetch, update, delete). Credentials are
write-only: a provider answers with the names of the credential keys that are set, never values."""

from __future__ import annotations

from typing import Any

import flask
import marshmallow as ma
from flask.views import MethodView

from verify.api import context
from verify.api.fields import CommaList, JsonAnyObject, JsonObject, TwilioDateTime
from verify.api.pagination import MetaSchema, PageArgs, page, page_window
from verify.api.parsing import Blueprint
from verify.domain.providers import ProviderFields, ProviderRegistry
from verify.events.ssrf import parse_networks
from verify.models.delivery import Provider

blp = Blueprint(
    "providers",
    __name__,
    url_prefix="/v2/Providers",
    description="Extension: the account's SMS, voice, WhatsApp and email providers",
)
context.guard_tenant_blueprint(blp)
FORM = "application/x-www-form-urlencoded"


class ProviderArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    Type = ma.fields.String(metadata={"description": "console, smtp, twilio, vonage or http"})
    FriendlyName = ma.fields.String(validate=ma.validate.Length(1, 64))
    Channels = CommaList(metadata={"description": "channels it carries (default: all it can)"})
    Countries = CommaList(
        metadata={"description": "ISO alpha-2 destination countries; empty = every country"}
    )
    Priority = ma.fields.Integer(metadata={"description": "lower is tried first (default 10)"})
    Enabled = ma.fields.Boolean()
    Config = JsonAnyObject(metadata={"description": "JSON object of the type's settings"})
    Credentials = JsonObject(
        metadata={"description": "JSON object of the type's secrets (write-only, sealed at rest)"}
    )


class ProviderCreateArgs(ProviderArgs):
    Type = ma.fields.String(required=True)
    FriendlyName = ma.fields.String(required=True, validate=ma.validate.Length(1, 64))


class ProviderSchema(ma.Schema):
    sid = ma.fields.String()
    account_sid = ma.fields.String()
    type = ma.fields.String()
    friendly_name = ma.fields.String()
    channels = ma.fields.Method("_channels")
    countries = ma.fields.Method("_countries")
    priority = ma.fields.Integer()
    enabled = ma.fields.Boolean()
    config = ma.fields.Dict()
    credentials_set = ma.fields.Method(
        "_credentials_set", metadata={"description": "the credential keys that are set"}
    )
    callback_url = ma.fields.Method(
        "_callback", metadata={"description": "where this provider posts delivery receipts"}
    )
    date_created = TwilioDateTime()
    date_updated = TwilioDateTime()
    url = ma.fields.Method("_self")

    def _channels(self, obj: Provider) -> list[str]:
        return [c for c in obj.channels.split(",") if c]

    def _countries(self, obj: Provider) -> list[str]:
        return [c for c in obj.countries.split(",") if c]

    def _credentials_set(self, obj: Provider) -> list[str]:
        return [k for k in obj.credential_keys.split(",") if k]

    def _callback(self, obj: Provider) -> str:
        base = context.runtime().settings.public_url or flask.request.host_url.rstrip("/")
        return f"{base}/v2/Callbacks/{obj.sid}"

    def _self(self, obj: Provider) -> str:
        return flask.request.host_url.rstrip("/") + f"/v2/Providers/{obj.sid}"


class ProviderListSchema(ma.Schema):
    providers = ma.fields.List(ma.fields.Nested(ProviderSchema))
    meta = ma.fields.Nested(MetaSchema)


def registry() -> ProviderRegistry:
    rt = context.runtime()
    allow = parse_networks(rt.settings.webhook_allow_networks)
    return ProviderRegistry(context.session(), rt.clock, rt.sealer, allow=allow)


def to_fields(args: dict[str, Any]) -> ProviderFields:
    return ProviderFields(
        type=args.get("Type"),
        friendly_name=args.get("FriendlyName"),
        channels=tuple(args["Channels"]) if "Channels" in args else None,
        countries=tuple(args["Countries"]) if "Countries" in args else None,
        priority=args.get("Priority"),
        enabled=args.get("Enabled"),
        config=args.get("Config"),
        credentials=args.get("Credentials"),
    )


@blp.route("")
class Providers(MethodView):
    @blp.arguments(ProviderCreateArgs, location="form", content_type=FORM)
    @blp.response(201, ProviderSchema)
    def post(self, args: dict[str, Any]) -> Provider:
        """Create a provider."""
        return registry().create(context.principal().account_sid, to_fields(args))

    @blp.arguments(PageArgs, location="query")
    @blp.response(200, ProviderListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List the account's providers, in routing order."""
        offset, limit = page_window(args)
        items = registry().page(context.principal().account_sid, offset, limit)
        return page("providers", items, args)


@blp.route("/<string:sid>")
class ProviderItem(MethodView):
    @blp.response(200, ProviderSchema)
    def get(self, sid: str) -> Provider:
        """Fetch a provider."""
        return registry().get(context.principal().account_sid, sid)

    @blp.arguments(ProviderArgs, location="form", content_type=FORM)
    @blp.response(200, ProviderSchema)
    def post(self, args: dict[str, Any], sid: str) -> Provider:
        """Update a provider. ``Credentials``, when given, replace the stored ones."""
        return registry().update(context.principal().account_sid, sid, to_fields(args))

    @blp.response(204)
    def delete(self, sid: str) -> None:
        """Delete a provider (its past attempts keep its sid)."""
        registry().delete(context.principal().account_sid, sid)
