"""Helpers for the abuse-control tests: rules through the API, starts that name their number."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import ApiClient
from verify.models import SendAttempt, Verification
from verify.models.abuse import FraudDecision
from verify.runtime import Runtime

# Numbers in different prefixes and 100-blocks, so that only the rule under test can fire.
SPREAD = [f"+1{npa}5550{n:03d}" for npa, n in zip((201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218), range(100, 999, 57), strict=False)]  # fmt: skip


def add_rule(
    api: ApiClient, type_: str, params: dict[str, Any] | None = None, **fields: Any
) -> Any:
    data = {"Type": type_, "Params": json.dumps(params or {}), **fields}
    r = api.post("/v2/FraudRules", data)
    assert r.status_code == 201, r.json
    return r.json


def decisions(runtime: Runtime, verification_sid: str | None = None) -> list[FraudDecision]:
    with runtime.sessions() as session:
        query = select(FraudDecision).order_by(FraudDecision.id)
        if verification_sid:
            query = query.where(FraudDecision.verification_sid == verification_sid)
        return list(session.scalars(query))


def attempts(runtime: Runtime, verification_sid: str) -> list[SendAttempt]:
    with runtime.sessions() as session:
        return list(
            session.scalars(
                select(SendAttempt)
                .where(SendAttempt.verification_sid == verification_sid)
                .order_by(SendAttempt.number)
            )
        )


def verification(runtime: Runtime, sid: str) -> Verification:
    with runtime.sessions() as session:
        v = session.get(Verification, sid)
        assert v is not None
        return v


@pytest.fixture
def spread() -> list[str]:
    return list(SPREAD)
