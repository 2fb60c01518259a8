"""Console page: the rate-limit state of one number — each send limit it counts against, how much
is left and when it frees up, and what the fraud rules would decide — from the abuse area's dry run
(``AbuseControls.evaluate(..., dry=True)``: it reads the counters and writes nothing)."""

from __future__ import annotations

from typing import Any

import flask

from verify.api import context
from verify.console import queries, services
from verify.console.web import blp, render
from verify.domain.destinations import CHANNELS, parse_destination
from verify.domain.sends import SendContext, StartRequest
from verify.errors import InvalidParameter


@blp.get("/rate-limits")
def rate_limits() -> tuple[str, int]:
    args = flask.request.args
    form = {name: args.get(name, "").strip() for name in ("number", "service", "channel", "ip")}
    form["channel"] = form["channel"] or "sms"
    known = queries.services(context.session())
    if not form["service"] and len(known) == 1:
        form["service"] = known[0].sid
    values: dict[str, Any] = {
        "form": form,
        "services": known,
        "channels": CHANNELS,
        "verdict": None,
    }
    if not form["number"]:
        return render("rate_limits.html", **values)
    try:
        service = next((s for s in known if s.sid == form["service"]), None)
        if service is None:
            raise InvalidParameter("service", "choose the service whose limits to read")
        if form["channel"] not in CHANNELS:
            raise InvalidParameter("channel", f"must be one of {', '.join(CHANNELS)}")
        destination = parse_destination(form["number"], form["channel"], "number")
    except InvalidParameter as exc:
        return render("rate_limits.html", 400, error=exc.detail, **values)
    request = StartRequest(
        to=destination.value,
        channel=form["channel"],
        client_ip=form["ip"] or None,
        device_ip=form["ip"] or None,
    )
    ctx = SendContext(service.account_sid, service.sid, destination, form["channel"], request, None)
    values["verdict"] = services.abuse_controls().evaluate(ctx, dry=True)
    values["destination"] = destination
    return render("rate_limits.html", **values)
