"""Console pages: the verification search and one verification's timeline."""

from __future__ import annotations

import flask
from werkzeug.exceptions import NotFound

from verify.api import context
from verify.console import queries, services, timeline
from verify.console.web import blp, render
from verify.errors import InvalidParameter


@blp.get("/verifications")
def verifications() -> tuple[str, int]:
    args = flask.request.args
    form = {name: args.get(name, "") for name in ("q", "status", "from", "to")}
    try:
        criteria = queries.parse_criteria(form["q"], form["status"], form["from"], form["to"])
        page = queries.search(
            context.session(), criteria, queries.page_number(args.get("page", "1"))
        )
    except InvalidParameter as exc:
        # Shown above the form, which keeps what was typed.
        return render(
            "verifications.html", 400, form=form, page=None, error=exc.detail,
            statuses=queries.STATUSES,
        )  # fmt: skip
    return render("verifications.html", form=form, page=page, error=None, statuses=queries.STATUSES)


@blp.get("/verifications/<sid>")
def verification(sid: str) -> tuple[str, int]:
    story = timeline.load(
        context.session(), sid, webhooks=services.webhooks(), fraud=services.fraud_rules()
    )
    if story is None:
        raise NotFound(f"No verification {sid}.")
    return render("verification.html", t=story)
