"""Request parsing: Twilio's form-encoded bodies, or JSON with the same parameter names."""

from __future__ import annotations

from typing import Any, NoReturn

import flask
import marshmallow as ma
from flask_smorest import Blueprint as SmorestBlueprint
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import MultiDict

from verify.domain.text import load_json, refusal, unstorable
from verify.errors import InvalidParameter, MalformedBody, NotFound, UnsupportedMediaType

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class Parser(FlaskParser):
    # Invalid parameters are Twilio's 400 / 60200 (also what the OpenAPI document declares).
    DEFAULT_VALIDATION_STATUS = 400

    def load_form(self, req: flask.Request, schema: ma.Schema) -> Any:
        if req.mimetype == "application/json":
            try:
                data = load_json(req.get_data(cache=True) or b"{}")
            except ValueError as exc:  # UnicodeDecodeError included
                raise MalformedBody(f"The JSON body {exc}") from None
            if not isinstance(data, dict):
                raise MalformedBody("The JSON body must be an object")
            params = MultiDict(data)
            refuse_unstorable(params)  # (forms and query strings: refuse_unstorable_in_request)
            return self._makeproxy(params, schema)
        if req.mimetype in FORM_TYPES or not req.get_data(cache=True):
            return self._makeproxy(req.form, schema)
        raise UnsupportedMediaType()

    def handle_error(
        self, error: ma.ValidationError, req: flask.Request, schema: ma.Schema, **_: Any
    ) -> NoReturn:
        messages: dict[str, Any] = error.normalized_messages()  # type: ignore[no-untyped-call]
        # webargs nests messages under the location ("form", "query"); name the first parameter.
        for location in ("form", "query", "json", "headers"):
            if isinstance(messages.get(location), dict):
                messages = messages[location]
                break
        name, problem = next(iter(messages.items()))
        text = problem[0] if isinstance(problem, list) and problem else str(problem)
        raise InvalidParameter(str(name), str(text).rstrip("."), extra={"errors": messages})


def refuse_unstorable(params: MultiDict[str, Any]) -> None:
    """60200 naming the first parameter whose name or value cannot be stored (``text.refusal``)."""
    for name, value in params.items(multi=True):
        problem = refusal(name) or refusal(value)
        if problem:
            raise InvalidParameter(name.encode("unicode_escape").decode("ascii"), problem)


def refuse_unstorable_in_request() -> None:
    """Before anything reads a request: its path (404), query string and form (60200) hold no
    character that cannot be stored. JSON bodies are checked when they are parsed."""
    req = flask.request
    if unstorable(req.path):
        raise NotFound("The requested resource was not found")
    refuse_unstorable(req.args)
    if req.mimetype in FORM_TYPES:
        req.get_data(cache=True)  # first, so that the raw body stays readable (idempotency)
        refuse_unstorable(req.form)


class Blueprint(SmorestBlueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = Parser()

    def arguments(self, schema: type[ma.Schema] | ma.Schema, *args: Any, **kwargs: Any) -> Any:
        # Given a class, webargs builds a new schema object for every request: build it once.
        # (Loading keeps no state on the schema, so one instance serves every thread.)
        instance = schema() if isinstance(schema, type) else schema
        # A body whose parameters are all optional (an update) may be left out altogether: the
        # document says so.
        kwargs.setdefault("required", any(f.required for f in instance.fields.values()))
        return super().arguments(instance, *args, **kwargs)
