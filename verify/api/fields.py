"""Marshmallow fields for Twilio's wire format."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma

from verify.domain import text
from verify.domain.destinations import CHANNELS


class TwilioDateTime(ma.fields.Field[datetime]):
    """ISO 8601 in UTC with a trailing Z and whole seconds, as Twilio writes dates."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CommaList(ma.fields.Field[list[str]]):
    """A list given as repeated parameters, one comma-separated value, or a JSON array."""

    is_multiple = True  # webargs: collect every repeated form value

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        items = value if isinstance(value, list) else [value]
        out: list[str] = []
        for item in items:
            if not isinstance(item, str):
                raise ma.ValidationError("must be a list of strings")
            out.extend(part.strip() for part in item.split(",") if part.strip())
        return out


def json_object(value: Any) -> dict[str, Any]:
    """A JSON object given as a string (form bodies) or as an object (JSON bodies)."""
    try:
        return text.json_object(value)
    except ValueError as exc:
        raise ma.ValidationError(str(exc)) from None


class JsonAnyObject(ma.fields.Field[dict[str, Any]]):
    """A JSON object of any values, given as a string (form bodies) or an object (JSON bodies)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        return json_object(value)


class JsonObject(ma.fields.Field[dict[str, str]]):
    """A JSON object of strings, given as a string (form bodies) or an object (JSON bodies)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, str]:
        obj = json_object(value)
        strings = {k: v for k, v in obj.items() if isinstance(v, str)}
        if len(strings) != len(obj):
            raise ma.ValidationError("must be a JSON object of strings")
        return strings


def channel(**kwargs: Any) -> ma.fields.String:
    """A ``Channel`` parameter, documented with the channels there are (the domain checks it)."""
    return ma.fields.String(metadata={"enum": list(CHANNELS)}, **kwargs)
