"""/v2/Services/{ServiceSid}/Webhooks (Twilio's shape), their secrets, StatusCallback secrets, and
webhook deliveries with replay."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from verify.api import context
from verify.api.pagination import PageArgs, page, page_window
from verify.api.parsing import Blueprint
from verify.api.webhook_schemas import (
    DeliveryArgs,
    DeliveryDetailSchema,
    DeliveryListSchema,
    ReplaySchema,
    RotateArgs,
    SecretCreatedSchema,
    SecretListSchema,
    WebhookArgs,
    WebhookCreateArgs,
    WebhookCreatedSchema,
    WebhookListSchema,
    WebhookSchema,
)
from verify.errors import NotFound
from verify.events.relay import WebhookQueue
from verify.events.ssrf import parse_networks
from verify.events.webhooks import (
    DEFAULT_GRACE,
    Created,
    DeliveryView,
    EndpointFields,
    WebhookService,
)
from verify.models.webhooks import WebhookEndpoint, WebhookSecret

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/v2/Services/<string:service_sid>",
    description="Webhook subscriptions, signing secrets, deliveries and replay",
)
FORM = "application/x-www-form-urlencoded"
context.guard_tenant_blueprint(blp)


def hooks() -> WebhookService:
    rt = context.runtime()
    return WebhookService(
        context.session(),
        clock=rt.clock,
        sealer=rt.sealer,
        allow=parse_networks(rt.settings.webhook_allow_networks),
        dispatcher=WebhookQueue(rt.queue),
    )


def _account() -> str:
    return context.principal().account_sid


def _fields(args: dict[str, Any]) -> EndpointFields:
    return EndpointFields(
        friendly_name=args.get("FriendlyName"),
        event_types=args.get("EventTypes"),
        url=args.get("WebhookUrl"),
        status=args.get("Status"),
        version=args.get("Version"),
        signature_mode=args.get("SignatureMode"),
    )


@blp.route("/Webhooks")
class Webhooks(MethodView):
    @blp.arguments(WebhookCreateArgs, location="form", content_type=FORM)
    @blp.response(201, WebhookCreatedSchema)
    def post(self, args: dict[str, Any], service_sid: str) -> Created:
        """Subscribe a URL to the service's events; the answer carries the signing secret, once."""
        return hooks().create(_account(), service_sid, _fields(args))

    @blp.arguments(PageArgs, location="query")
    @blp.response(200, WebhookListSchema)
    def get(self, args: dict[str, Any], service_sid: str) -> dict[str, Any]:
        """List the service's webhooks."""
        offset, limit = page_window(args)
        return page("webhooks", hooks().page(_account(), service_sid, offset, limit), args)


@blp.route("/Webhooks/<string:sid>")
class WebhookItem(MethodView):
    @blp.response(200, WebhookSchema)
    def get(self, service_sid: str, sid: str) -> WebhookEndpoint:
        """Fetch a webhook."""
        return hooks().get(_account(), service_sid, sid)

    @blp.arguments(WebhookArgs, location="form", content_type=FORM)
    @blp.response(200, WebhookSchema)
    def post(self, args: dict[str, Any], service_sid: str, sid: str) -> WebhookEndpoint:
        """Update a webhook (Status=disabled pauses it)."""
        return hooks().update(_account(), service_sid, sid, _fields(args))

    @blp.response(204)
    def delete(self, service_sid: str, sid: str) -> None:
        """Delete a webhook, its secrets and its deliveries."""
        hooks().delete(_account(), service_sid, sid)


def _secret_routes(path: str, name: str, owner: str | None) -> None:
    """Secrets of a webhook (``owner`` None: the ``sid`` in the path) or of the service's
    StatusCallbacks (``owner`` "service")."""

    def owner_of(service_sid: str, sid: str | None) -> str:
        return service_sid if owner == "service" else str(sid)

    class Secrets(MethodView):
        @blp.arguments(RotateArgs, location="form", content_type=FORM)
        @blp.response(201, SecretCreatedSchema)
        def post(self, args: dict[str, Any], service_sid: str, sid: str | None = None) -> Created:
            """Rotate: a new secret (returned once); the current ones keep signing for
            GracePeriod seconds (0 ends them now)."""
            grace = args.get("GracePeriod", DEFAULT_GRACE)
            return hooks().rotate_secret(_account(), service_sid, owner_of(service_sid, sid), grace)

        @blp.response(200, SecretListSchema)
        def get(self, service_sid: str, sid: str | None = None) -> dict[str, list[WebhookSecret]]:
            """The secrets that sign right now (without their values)."""
            return {"secrets": hooks().secrets(_account(), service_sid, owner_of(service_sid, sid))}

    class SecretItem(MethodView):
        @blp.response(204)
        def delete(self, service_sid: str, secret_sid: str, sid: str | None = None) -> None:
            """Stop signing with this secret now (never the last active one)."""
            owner_sid = owner_of(service_sid, sid)
            hooks().revoke_secret(_account(), service_sid, owner_sid, secret_sid)

    Secrets.__name__ = f"{name}Secrets"
    SecretItem.__name__ = f"{name}SecretItem"
    blp.route(path, endpoint=f"{name}_secrets")(Secrets)
    blp.route(f"{path}/<string:secret_sid>", endpoint=f"{name}_secret_item")(SecretItem)


_secret_routes("/Webhooks/<string:sid>/Secrets", "webhook", None)
_secret_routes("/CallbackSecrets", "callback", "service")


@blp.route("/Webhooks/<string:sid>/Replay")
class WebhookReplay(MethodView):
    @blp.response(200, ReplaySchema)
    def post(self, service_sid: str, sid: str) -> dict[str, int]:
        """Send every dead delivery of this webhook again."""
        service = hooks()
        service.get(_account(), service_sid, sid)
        return {"replayed": service.replay_dead(sid, account_sid=_account())}


@blp.route("/WebhookDeliveries")
class Deliveries(MethodView):
    @blp.arguments(DeliveryArgs, location="query")
    @blp.response(200, DeliveryListSchema)
    def get(self, args: dict[str, Any], service_sid: str) -> dict[str, Any]:
        """Deliveries of the service's events, newest first (filter by WebhookSid,
        VerificationSid, Status)."""
        offset, limit = page_window(args)
        items = hooks().list_deliveries(
            account_sid=_account(),
            service_sid=service_sid,
            endpoint_sid=args.get("WebhookSid"),
            verification_sid=args.get("VerificationSid"),
            status=args.get("Status"),
            offset=offset,
            limit=limit,
        )
        return page("deliveries", items, args)


@blp.route("/WebhookDeliveries/<string:sid>")
class DeliveryItem(MethodView):
    @blp.response(200, DeliveryDetailSchema)
    def get(self, service_sid: str, sid: str) -> DeliveryView:
        """One delivery with its attempt log (time, status code, latency, error)."""
        view = hooks().get_delivery(sid, account_sid=_account())
        _same_service(view.delivery.service_sid, service_sid, sid)
        return view


@blp.route("/WebhookDeliveries/<string:sid>/Replay")
class DeliveryReplay(MethodView):
    @blp.response(200, DeliveryDetailSchema)
    def post(self, service_sid: str, sid: str) -> DeliveryView:
        """Send this delivery again, with a fresh retry budget."""
        service = hooks()
        _same_service(
            service.get_delivery(sid, account_sid=_account()).service_sid, service_sid, sid
        )
        service.replay(sid, account_sid=_account())
        return service.get_delivery(sid, account_sid=_account())


def _same_service(actual: str | None, expected: str, sid: str) -> None:
    if actual != expected:
        raise NotFound(f"The requested resource {sid} was not found")
