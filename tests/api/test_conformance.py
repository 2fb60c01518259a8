"""The API against its own OpenAPI document, with generated requests (schemathesis over
hypothesis): every operation, with valid and invalid bodies and parameters. No answer may be a
server error, and every answer must be one the document declares: its status, its media type
and its body's schema."""

import itertools

import flask
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Tenant

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_headers_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_every_answer_is_declared(app: flask.Flask, tenant: Tenant) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50

    for operation, mode in itertools.product(operations, GenerationMode):

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(mode))
        def answer_is_declared(case: schemathesis.Case) -> None:
            if "service_sid" in (case.path_parameters or {}):
                case.path_parameters["service_sid"] = tenant.service_sid  # past the 404
            case.call_and_validate(auth=tenant.auth, checks=CHECKS)

        try:
            answer_is_declared()
        except Unsatisfiable:  # no invalid value exists (a path of free-form strings)
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (Exception, BaseExceptionGroup) as exc:  # each operation's failures, then fail once
            failures[f"{operation.label} ({mode.value})"] = f"{type(exc).__name__}: {exc}"[:2000]
    assert not failures, "\n\n".join(f"{label}\n{why}" for label, why in failures.items())
