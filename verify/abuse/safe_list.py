"""The safe list: numbers and prefixes the fraud rules never block (Twilio's /v2/SafeList)."""

from __future__ import annotations

import re

from sqlalchemy import select

from verify.abuse.registry import Registry
from verify.domain import sids
from verify.domain.destinations import parse_phone
from verify.errors import (
    InvalidParameter,
    NotFound,
)
from verify.models.abuse import (
    SafeListEntry,
)

SAFE = "GN"
PREFIX = re.compile(r"^\+[1-9][0-9]{1,13}$")


class SafeList(Registry):
    """Numbers (Twilio's SafeList/Numbers) and prefixes that fraud rules never block."""

    def add(self, account_sid: str, kind: str, raw: str) -> SafeListEntry:
        value = self._normalize(kind, raw)
        with self._session.begin():
            found = self._find(account_sid, value)
            if found is not None:
                return found  # adding twice is harmless, as on Twilio
            entry = SafeListEntry(
                sid=sids.new_sid(SAFE),
                account_sid=account_sid,
                kind=kind,
                value=value,
                date_created=self._clock.now(),
            )
            self._session.add(entry)
        self._cache.changed()
        return entry

    def get(self, account_sid: str, kind: str, raw: str) -> SafeListEntry:
        value = self._normalize(kind, raw)
        with self._session.begin():
            found = self._find(account_sid, value)
            if found is None or found.kind != kind:
                raise NotFound(f"{raw} is not on the safe list")
            return found

    def remove(self, account_sid: str, kind: str, raw: str) -> None:
        value = self._normalize(kind, raw)
        with self._changing():
            found = self._find(account_sid, value)
            if found is None or found.kind != kind:
                raise NotFound(f"{raw} is not on the safe list")
            self._session.delete(found)

    def page(self, account_sid: str, kind: str, offset: int, limit: int) -> list[SafeListEntry]:
        with self._session.begin():
            query = select(SafeListEntry).where(
                SafeListEntry.account_sid == account_sid, SafeListEntry.kind == kind
            )
            return self._page(query.order_by(SafeListEntry.value), offset, limit)

    def _find(self, account_sid: str, value: str) -> SafeListEntry | None:
        return self._session.scalar(
            select(SafeListEntry).where(
                SafeListEntry.account_sid == account_sid, SafeListEntry.value == value
            )
        )

    @staticmethod
    def _normalize(kind: str, raw: str) -> str:
        if kind == "number":
            return parse_phone(raw, "PhoneNumber").value
        text = raw.strip()
        if text[:1] != "+":
            text = "+" + text
        if not PREFIX.match(text):
            raise InvalidParameter("Prefix", "a + and 1 to 14 digits, e.g. +4477009")
        return text
