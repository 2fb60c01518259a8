"""Request parsing: Twilio's form-encoded bodies, or JSON with the same parameter names."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import flask
import marshmallow as ma
from flask_smorest import Blueprint as SmorestBlueprint
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import MultiDict

from verify.errors import InvalidParameter, MalformedBody, UnsupportedMediaType

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class Parser(FlaskParser):
    # Invalid parameters are Twilio's 400 / 60200 (also what the OpenAPI document declares).
    DEFAULT_VALIDATION_STATUS = 400

    def load_form(self, req: flask.Request, schema: ma.Schema) -> Any:
        if req.mimetype == "application/json":
            try:
                data = json.loads(req.get_data(cache=True) or b"{}")
            except (ValueError, UnicodeDecodeError):
                raise MalformedBody("The JSON body could not be decoded") from None
            if not isinstance(data, dict):
                raise MalformedBody("The JSON body must be an object")
            return self._makeproxy(MultiDict(data), schema)
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
