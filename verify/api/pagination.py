"""Twilio-style list pages: PageSize, Page, PageToken in; ``meta`` with absolute page URLs out."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import flask
import marshmallow as ma

MAX_PAGE_SIZE = 1000


class PageArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    PageSize = ma.fields.Integer(load_default=50, validate=ma.validate.Range(1, MAX_PAGE_SIZE))
    Page = ma.fields.Integer(load_default=0, validate=ma.validate.Range(0, 100_000))
    PageToken = ma.fields.String(load_default=None)


PAGING = frozenset(PageArgs().fields)  # the parameters that choose a page, not the list


class MetaSchema(ma.Schema):
    page = ma.fields.Integer()
    page_size = ma.fields.Integer()
    first_page_url = ma.fields.String()
    previous_page_url = ma.fields.String(allow_none=True)
    next_page_url = ma.fields.String(allow_none=True)
    url = ma.fields.String()
    key = ma.fields.String()


def page_window(args: dict[str, Any]) -> tuple[int, int]:
    """(offset, limit), fetching one extra row to learn whether a next page exists."""
    return args["Page"] * args["PageSize"], args["PageSize"] + 1


def page(key: str, items: list[Any], args: dict[str, Any]) -> dict[str, Any]:
    size, number = args["PageSize"], args["Page"]
    has_next = len(items) > size
    base = flask.request.base_url
    # The list's filters stay in every page's URL, as Twilio's do: a client that follows
    # next_page_url (the SDK's list() and stream()) keeps getting the list it asked for.
    filters = [
        (name, value) for name, value in flask.request.args.items(multi=True) if name not in PAGING
    ]

    def url(n: int) -> str:
        return f"{base}?{urlencode([*filters, ('PageSize', size), ('Page', n)])}"

    return {
        key: items[:size],
        "meta": {
            "page": number,
            "page_size": size,
            "first_page_url": url(0),
            "previous_page_url": url(number - 1) if number > 0 else None,
            "next_page_url": url(number + 1) if has_next else None,
            "url": url(number),
            "key": key,
        },
    }
