"""/v2/SafeList/Numbers (Twilio's) and /v2/SafeList/Prefixes (an extension): destinations the fraud
rules never block (limits still apply)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import marshmallow as ma
from flask.views import MethodView

from verify.api import context
from verify.api.abuse_context import FORM, account, safe_list, url
from verify.api.fields import TwilioDateTime
from verify.api.pagination import MetaSchema, PageArgs, page, page_window
from verify.api.parsing import Blueprint
from verify.api.schemas import Args

F = TypeVar("F", bound=Callable[..., Any])

blp = Blueprint(
    "safe_list", __name__, url_prefix="/v2/SafeList", description="Destinations never blocked"
)
context.guard_tenant_blueprint(blp)


class SafeNumberArgs(Args):
    PhoneNumber = ma.fields.String(required=True, validate=ma.validate.Length(1, 32))


class SafePrefixArgs(Args):
    Prefix = ma.fields.String(required=True, validate=ma.validate.Length(1, 32))


class SafeNumberSchema(ma.Schema):
    sid = ma.fields.String()
    phone_number = ma.fields.String(attribute="value")
    url = ma.fields.Method("_self")

    def _self(self, obj: Any) -> str:
        return url(f"/v2/SafeList/Numbers/{obj.value}")


class SafePrefixSchema(ma.Schema):
    sid = ma.fields.String()
    prefix = ma.fields.String(attribute="value")
    date_created = TwilioDateTime()
    url = ma.fields.Method("_self")

    def _self(self, obj: Any) -> str:
        return url(f"/v2/SafeList/Prefixes/{obj.value}")


class SafeNumberListSchema(ma.Schema):
    numbers = ma.fields.List(ma.fields.Nested(SafeNumberSchema))
    meta = ma.fields.Nested(MetaSchema)


class SafePrefixListSchema(ma.Schema):
    prefixes = ma.fields.List(ma.fields.Nested(SafePrefixSchema))
    meta = ma.fields.Nested(MetaSchema)


def _doc(text: str) -> Callable[[F], F]:
    """Give a view the docstring the OpenAPI document shows (the views below serve two kinds)."""

    def document(view: F) -> F:
        view.__doc__ = text
        return view

    return document


def _route(
    kind: str,
    path: str,
    field: str,
    args_schema: type[Args],
    schema: type[ma.Schema],
    list_schema: type[ma.Schema],
    endpoints: tuple[str, str],
    docs: tuple[str, str, str, str],
) -> None:
    """Route one kind of entry: add and list on /{path}, fetch and remove on /{path}/<{kind}>."""
    add, list_, fetch, remove = docs

    class Entries(MethodView):
        @blp.arguments(args_schema, location="form", content_type=FORM)
        @blp.response(201, schema)
        @_doc(add)
        def post(self, args: dict[str, Any]) -> Any:
            return safe_list().add(account(), kind, args[field])

        @blp.arguments(PageArgs, location="query")
        @blp.response(200, list_schema)
        @_doc(list_)
        def get(self, args: dict[str, Any]) -> dict[str, Any]:
            offset, limit = page_window(args)
            return page(path.lower(), safe_list().page(account(), kind, offset, limit), args)

    class Entry(MethodView):
        # The path variable is named after the kind (number, prefix), as in the OpenAPI document.
        @blp.response(200, schema)
        @_doc(fetch)
        def get(self, **value: str) -> Any:
            return safe_list().get(account(), kind, value[kind])

        @blp.response(204)
        @_doc(remove)
        def delete(self, **value: str) -> None:
            safe_list().remove(account(), kind, value[kind])

    blp.route(f"/{path}", endpoint=endpoints[0])(Entries)
    blp.route(f"/{path}/<string:{kind}>", endpoint=endpoints[1])(Entry)


_route(
    "number",
    "Numbers",
    "PhoneNumber",
    SafeNumberArgs,
    SafeNumberSchema,
    SafeNumberListSchema,
    ("SafeNumbers", "SafeNumber"),
    (
        "Add a number to the safe list: fraud rules never block it (limits still apply).",
        "List the safe-listed numbers (extension: Twilio has no list).",
        "Is this number on the safe list (404 if not).",
        "Take a number off the safe list.",
    ),
)
_route(
    "prefix",
    "Prefixes",
    "Prefix",
    SafePrefixArgs,
    SafePrefixSchema,
    SafePrefixListSchema,
    ("SafePrefixes", "SafePrefix"),
    (
        "Extension: safe-list every number starting with a prefix.",
        "List the safe-listed prefixes.",
        "Fetch a safe-listed prefix.",
        "Take a prefix off the safe list.",
    ),
)
