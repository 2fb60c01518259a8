"""Console pages: webhook deliveries, one delivery's attempt log, and replay (one, or every dead
delivery of an endpoint) through the webhooks area's own service."""

from __future__ import annotations

import flask
from werkzeug.wrappers import Response

from verify.api import context
from verify.console import auth, queries, services
from verify.console.web import blp, render
from verify.events.webhooks import DELIVERY_STATUSES

PAGE_SIZE = 50


@blp.get("/webhooks")
def webhooks() -> tuple[str, int]:
    args = flask.request.args
    status = args.get("status", "").strip() or None
    endpoint = args.get("endpoint_sid", "").strip() or None
    page = queries.page_number(args.get("page", "1"))
    # One more than a page: whether there is a next one.
    rows = services.webhooks().list_deliveries(
        status=status, endpoint_sid=endpoint, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1
    )
    session = context.session()
    shown = rows[:PAGE_SIZE]
    return render(
        "webhooks.html",
        deliveries=shown,
        more=len(rows) > PAGE_SIZE,
        page=page,
        status=status or "",
        endpoint=endpoint or "",
        statuses=DELIVERY_STATUSES,
        endpoints=queries.endpoints_by_sid(
            session, {d.endpoint_sid for d in shown if d.endpoint_sid}
        ),
        trouble=queries.endpoints_with_trouble(session),
    )


@blp.get("/webhooks/<sid>")
def webhook_delivery(sid: str) -> tuple[str, int]:
    hooks = services.webhooks()
    view = hooks.get_delivery(sid)
    event = hooks.event(view.delivery.event_sid)
    endpoint_sid = view.delivery.endpoint_sid
    endpoints = queries.endpoints_by_sid(
        context.session(), {endpoint_sid} if endpoint_sid else set()
    )
    return render(
        "webhook.html",
        d=view.delivery,
        attempts=view.attempt_log,
        event=event,
        endpoint=endpoints.get(endpoint_sid or ""),
    )


@blp.post("/webhooks/<sid>/replay")
def replay_delivery(sid: str) -> Response:
    delivery = services.webhooks().replay(sid)
    flask.flash(f"Delivery {delivery.sid} is queued to be sent again.", "success")
    return _back(flask.url_for("console.webhook_delivery", sid=sid))


@blp.post("/webhooks/endpoints/<sid>/replay-dead")
def replay_dead(sid: str) -> Response:
    count = services.webhooks().replay_dead(sid)
    noun = "delivery" if count == 1 else "deliveries"
    flask.flash(f"{count} dead {noun} of {sid} queued to be sent again.", "success")
    return _back(flask.url_for("console.webhooks", endpoint_sid=sid))


def _back(default: str) -> Response:
    return flask.redirect(auth.safe_next(flask.request.form.get("next")) or default)
