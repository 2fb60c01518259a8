"""Development tools behind the operator credential: the console provider's outbox."""

from __future__ import annotations

from typing import Any

import flask
import marshmallow as ma

from verify.api import context
from verify.delivery.console import outbox_for
from verify.errors import InvalidParameter

blp = flask.Blueprint("dev", __name__, url_prefix="/dev")


class OutboxArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(1, 200))


@blp.before_request
def _operator_only() -> None:
    context.authenticate_operator()


@blp.get("/outbox")
def outbox() -> Any:
    """Messages the console provider delivered, newest first."""
    try:
        args = OutboxArgs().load(flask.request.args)
    except ma.ValidationError as exc:
        raise InvalidParameter("limit", "must be 1-200") from exc
    entries = outbox_for(context.runtime()).read(args["limit"])
    return flask.jsonify(entries)
