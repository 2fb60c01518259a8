"""/v2/Callbacks/{ProviderSid}: delivery receipts posted by providers, and
/v2/Callbacks/{ProviderSid}/Voice/{AttemptSid}: the rest of a "press a key first" call. Public (no
tenant credentials): the provider's own signature, checked by its adapter, is the authentication."""

from __future__ import annotations

import flask
from flask.views import MethodView

from verify.api import context
from verify.api.parsing import Blueprint
from verify.delivery.pipeline import Delivery
from verify.delivery.providers.base import ReceiptRequest

blp = Blueprint(
    "callbacks",
    __name__,
    url_prefix="/v2/Callbacks",
    description="Extension: delivery receipts from providers (signed by the provider)",
)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def delivery() -> Delivery:
    extensions = flask.current_app.extensions
    if "verify.delivery" not in extensions:
        extensions["verify.delivery"] = Delivery(context.runtime())
    found: Delivery = extensions["verify.delivery"]
    return found


def receipt_request() -> ReceiptRequest:
    req = flask.request
    public = context.runtime().settings.public_url
    # Signatures cover the URL the provider called: behind a proxy that is the public one.
    url = public + req.full_path.rstrip("?") if public else req.url
    return ReceiptRequest(
        url=url,
        method=req.method,
        headers=dict(req.headers.items()),
        body=req.get_data(cache=True),
        form=req.form.to_dict() if req.mimetype in FORM_TYPES else {},
        query=req.args.to_dict(),
    )


@blp.route("/<string:provider_sid>")
class Callback(MethodView):
    @blp.doc(security=[])
    @blp.response(204)
    def post(self, provider_sid: str) -> None:
        """A delivery receipt (the provider's own format and signature)."""
        self._ingest(provider_sid)

    @blp.doc(security=[])
    @blp.response(204)
    def get(self, provider_sid: str) -> None:
        """A delivery receipt sent as a GET (Vonage can be configured so)."""
        self._ingest(provider_sid)

    def _ingest(self, provider_sid: str) -> None:
        delivery().receipts(context.session()).ingest(provider_sid, receipt_request())


@blp.route("/<string:provider_sid>/Voice/<string:attempt_sid>")
class VoiceContinue(MethodView):
    @blp.doc(security=[])
    @blp.response(200, content_type="application/xml")
    def post(self, provider_sid: str, attempt_sid: str) -> flask.Response:
        """A DTMF-first call after its prompt: TwiML or an NCCO that speaks the code if a key was
        pressed and the verification is still pending, else hangs up."""
        content_type, body = (
            delivery().voice(context.session()).answer(provider_sid, attempt_sid, receipt_request())
        )
        return flask.Response(body, status=200, content_type=content_type)
