"""The one error body: Twilio's fields plus RFC 9457's ``detail``, as application/problem+json.

Never both ``type`` and ``title`` on /v2: twilio-python would raise a different exception class.
"""

from __future__ import annotations

import logging
from typing import Any

import flask
import marshmallow as ma
import redis
from apispec import BasePlugin
from flask_smorest import Api
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from verify import errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_HTTP = {
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    415: errors.UnsupportedMediaType,
    400: errors.MalformedBody,
}


class ProblemSchema(ma.Schema):
    """The error body, for the OpenAPI document (rendering is ``render`` below)."""

    code = ma.fields.Integer(required=True, metadata={"description": "Stable error code"})
    message = ma.fields.String(required=True)
    more_info = ma.fields.String(required=True, metadata={"description": "URL of the code's page"})
    status = ma.fields.Integer(required=True, metadata={"description": "HTTP status"})
    detail = ma.fields.String(required=True)
    parameter = ma.fields.String(metadata={"description": "The invalid parameter (60200)"})
    errors = ma.fields.Dict(metadata={"description": "Messages per parameter (60200)"})
    verification_sid = ma.fields.String()
    verification_status = ma.fields.String(
        metadata={"description": "The terminal state of the verification (20404, 60202)"}
    )
    details = ma.fields.Dict(
        metadata={"description": "The extra members again, where the Twilio SDKs look for them"}
    )


class _ProblemMediaType(BasePlugin):
    """Documents error responses with the media type they are sent with. flask-smorest registers
    them (the ``default`` and 400 of every operation) as application/json."""

    def response_helper(self, response: dict[str, Any], **_: Any) -> dict[str, Any] | None:
        content = response.get("content", {})
        body = content.get("application/json")
        if body is None or body.get("schema") != {"$ref": "#/components/schemas/Problem"}:
            return None
        return {"content": {PROBLEM_JSON: body}}


class VerifyApi(Api):  # type: ignore[misc]
    ERROR_SCHEMA = ProblemSchema

    def __init__(self, app: flask.Flask) -> None:
        super().__init__(app, spec_kwargs={"extra_plugins": [_ProblemMediaType()]})


def render(err: errors.VerifyError) -> flask.Response:
    body = {
        "code": err.code,
        "message": err.detail,
        "more_info": flask.url_for("meta.error_reference", code=err.code, _external=True),
        "status": err.status,
        "detail": err.detail,
        **err.extra,
    }
    if err.extra:
        # twilio-python exposes only a "details" member (TwilioRestException.details).
        body["details"] = dict(err.extra)
    response = flask.make_response(flask.json.dumps(body), err.status)
    response.mimetype = PROBLEM_JSON
    if err.status == 429 or err.retry_after is not None:
        response.headers["Retry-After"] = str(max(0, err.retry_after or 1))
    if err.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Verify"'
    return response


def from_http(exc: HTTPException) -> errors.VerifyError:
    cls = _HTTP.get(exc.code or 500)
    if cls is not None:
        return cls()
    return errors.HttpError(exc.code or 500, exc.name)


def register(app: flask.Flask) -> None:
    @app.errorhandler(errors.VerifyError)
    def _verify_error(err: errors.VerifyError) -> flask.Response:
        return render(err)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> flask.Response:
        response = render(from_http(exc))
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # RFC 9110: required
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(redis.ConnectionError)
    @app.errorhandler(redis.TimeoutError)
    def _unavailable(exc: Exception) -> flask.Response:
        log.error("dependency unavailable", extra={"error": type(exc).__name__})
        return render(errors.ServiceUnavailable("A dependency is unavailable; retry shortly"))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> flask.Response:
        log.exception("unhandled error")
        return render(errors.InternalError("An unexpected error occurred; it has been logged"))
