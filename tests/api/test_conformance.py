"""The API against its own OpenAPI document, with generated requests (schemathesis over
hypothesis): every operation, with valid and invalid bodies and parameters, on resources that
exist. No answer may be a server error, and every answer must be one the document declares: its
status, its media type, its headers and its body's schema."""

import collections
import itertools
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import flask
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ApiClient, Backend, make_settings
from verify import jobs
from verify.config import Settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
TO = "+14155550123"
NUMBER = "+14155550177"
PREFIX = "+4477009"
# Examples per operation and mode. CI runs 25 in a fixed order; a deeper search sets more, and
# VERIFY_TEST_CONFORMANCE_RANDOM=1 draws new ones on every run.
EXAMPLES = int(os.environ.get("VERIFY_TEST_CONFORMANCE_EXAMPLES", "25"))
RANDOM = os.environ.get("VERIFY_TEST_CONFORMANCE_RANDOM") == "1"
# The resource a path's ``{sid}`` names, by the collection before it.
COLLECTIONS = {
    "Services": "service",
    "Verifications": "verification",
    "Webhooks": "webhook",
    "Providers": "provider",
    "Attempts": "attempt",
    "FraudRules": "rule",
    "RateLimits": "rate_limit",
    "Buckets": "bucket",
    "WebhookDeliveries": "delivery",
}
NAMED = {
    "service_sid": "service",
    "rate_limit_sid": "rate_limit",
    "provider_sid": "provider",
    "attempt_sid": "attempt",
    "number": "number",
    "prefix": "prefix",
}


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> Settings:
    """A webhook can point at loopback (nothing is delivered here: no worker runs)."""
    base = make_settings(backend.database_url, backend.redis_url, tmp_path)
    return replace(base, webhook_allow_networks=("127.0.0.1/32",))


def created(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.json
    return dict(response.json)


def resources(api: ApiClient) -> dict[str, str]:
    """One of each resource the paths name, made through the API."""
    base = api.base
    webhook = created(
        api.post(
            f"{base}/Webhooks",
            {"FriendlyName": "hooks", "EventTypes": "*", "WebhookUrl": "http://127.0.0.1:9/v"},
        )
    )
    v = created(api.start(TO))
    jobs.relay()  # the start's events become deliveries to the webhook (none is sent here)
    delivery = created(api.get(f"{base}/WebhookDeliveries"))["deliveries"][0]
    secrets = created(api.get(f"{base}/Webhooks/{webhook['sid']}/Secrets"))
    provider = created(
        api.post(
            "/v2/Providers",
            {
                "Type": "twilio",
                "FriendlyName": "Twilio US",
                "Config": json.dumps({"account_sid": "AC" + "a" * 32, "from": "+14155550100"}),
                "Credentials": json.dumps({"auth_token": "t" * 32}),
            },
        )
    )
    rule = created(api.post("/v2/FraudRules", {"Type": "number_type"}))
    rate_limit = created(api.post(f"{base}/RateLimits", {"UniqueName": "end_user_id"}))
    bucket = created(
        api.post(f"{base}/RateLimits/{rate_limit['sid']}/Buckets", {"Max": 5, "Interval": 60})
    )
    created(api.post("/v2/SafeList/Numbers", {"PhoneNumber": NUMBER}))
    created(api.post("/v2/SafeList/Prefixes", {"Prefix": PREFIX}))
    return {
        "service": api.tenant.service_sid,
        "verification": v["sid"],
        "attempt": v["send_code_attempts"][0]["attempt_sid"],
        "webhook": webhook["sid"],
        "delivery": delivery["sid"],
        "webhook_secret": secrets[next(k for k in secrets if k != "meta")][0]["sid"],
        "callback_secret": created(api.post(f"{base}/CallbackSecrets"))["sid"],
        "provider": provider["sid"],
        "rule": rule["sid"],
        "rate_limit": rate_limit["sid"],
        "bucket": bucket["sid"],
        "number": NUMBER,
        "prefix": PREFIX,
    }


def path_parameters(path: str, ids: dict[str, str]) -> dict[str, str]:
    """Real values for the parameters of ``path`` (a template): what the request is about
    exists, so the operation gets past its 404."""
    segments = path.strip("/").split("/")
    values = {}
    for i, segment in enumerate(segments):
        if not segment.startswith("{"):
            continue
        name = segment[1:-1]
        if name == "sid":
            key = COLLECTIONS.get(segments[i - 1])
        elif name == "secret_sid":
            key = "webhook_secret" if "Webhooks" in segments else "callback_secret"
        else:
            key = NAMED.get(name)
        if key is not None:
            values[name] = ids[key]
    return values


def test_every_answer_is_declared(app: flask.Flask, api: ApiClient) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50
    ids = resources(api)
    # Deletions last, the deepest paths first: what they remove is not needed afterwards.
    operations.sort(key=lambda op: (op.method.upper() == "DELETE", -op.path.count("/")))
    failures: dict[str, str] = {}
    answered: dict[str, set[int]] = collections.defaultdict(set)

    for operation, mode in itertools.product(operations, GenerationMode):
        strategy = operation.as_strategy(mode, path_parameters=path_parameters(operation.path, ids))

        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=not RANDOM,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def answer_is_declared(case: schemathesis.Case) -> None:
            response = case.call(auth=api.tenant.auth)
            answered[case.operation.label].add(response.status_code)
            case.validate_response(response, checks=CHECKS)

        try:
            answer_is_declared()
        except Unsatisfiable:  # no invalid value exists (a path of free-form strings)
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (Exception, BaseExceptionGroup) as exc:  # each operation's failures, then fail once
            failures[f"{operation.label} ({mode.value})"] = f"{type(exc).__name__}: {exc}"[:2000]
    assert not failures, "\n\n".join(f"{label}\n{why}" for label, why in failures.items())
    # Every read reached its resource at least once: the generated requests were not all 404s.
    # (A GET to /v2/Callbacks is a delivery receipt: without the provider's signature it is
    # refused, as it should be.)
    reads = [
        op.label
        for op in operations
        if op.method.upper() == "GET" and not op.path.startswith("/v2/Callbacks")
    ]
    missed = [label for label in reads if not any(s < 300 for s in answered[label])]
    assert not missed, missed
