"""The generated OpenAPI document and the interactive docs page."""

import pytest
from openapi_spec_validator import validate

SERVICE = "/v2/Services/{service_sid}"


@pytest.fixture
def spec(app) -> dict:
    r = app.test_client().get("/openapi.json")
    assert r.status_code == 200
    return r.json


def test_openapi_document_is_valid(spec):
    """/openapi.json is a valid OpenAPI document."""
    validate(spec)


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/v2/Services", {"get", "post"}),
        ("/v2/Services/{sid}", {"get", "post", "delete"}),
        (f"{SERVICE}/Verifications", {"post"}),
        (f"{SERVICE}/Verifications/{{sid}}", {"get", "post"}),
        (f"{SERVICE}/VerificationCheck", {"post"}),
    ],
)
def test_openapi_documents_the_paths(spec, path, methods):
    """Services, Verifications and VerificationCheck are documented with their methods."""
    assert methods <= spec["paths"][path].keys()


def test_openapi_documents_twilio_parameters(spec):
    """The create-verification body documents Twilio's PascalCase parameters."""
    body = spec["paths"][f"{SERVICE}/Verifications"]["post"]["requestBody"]
    schema = body["content"]["application/x-www-form-urlencoded"]["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    assert {"To", "Channel"} <= set(schema["required"])


def test_openapi_declares_basic_auth(spec):
    """The document declares HTTP Basic as the security scheme."""
    assert spec["components"]["securitySchemes"]["basicAuth"] == {"type": "http", "scheme": "basic"}
    assert {"basicAuth": []} in spec["security"]


def test_docs_page_is_html(app):
    """/docs/ serves the interactive documentation as HTML."""
    r = app.test_client().get("/docs/")
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    assert b"/openapi.json" in r.data
