"""The generated OpenAPI document and the interactive docs page."""

import pytest
from openapi_spec_validator import validate

SERVICE = "/v2/Services/{service_sid}"


@pytest.fixture
def spec(app) -> dict:
    r = app.test_client().get("/openapi.json")
    assert r.status_code == 200
    return r.json


def form_schema(spec: dict, path: str) -> dict:
    """The form body schema of ``POST path``, its reference resolved."""
    body = spec["paths"][path]["post"]["requestBody"]
    schema = body["content"]["application/x-www-form-urlencoded"]["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return dict(schema)


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
    schema = form_schema(spec, f"{SERVICE}/Verifications")
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


def test_documented_ranges_are_the_enforced_ones(spec, api):
    """Each numeric service setting's documented minimum and maximum are accepted, and one past
    either is refused with 60200 naming the parameter."""
    props = form_schema(spec, "/v2/Services/{sid}")["properties"]
    ranged = {name: p for name, p in props.items() if "minimum" in p}
    assert {"CodeLength", "CodeTtl", "MaxCheckAttempts", "MaxSendAttempts"} <= ranged.keys()
    path = f"/v2/Services/{api.tenant.service_sid}"
    for name, p in ranged.items():
        for value in (p["minimum"], p["maximum"]):
            assert api.post(path, {name: value}).status_code == 200, (name, value)
        for value in (p["minimum"] - 1, p["maximum"] + 1):
            r = api.post(path, {name: value})
            assert (r.status_code, r.json["code"], r.json["parameter"]) == (400, 60200, name)


def test_documented_channels_are_the_accepted_ones(spec, api):
    """Start's Channel lists every channel there is; anything else is 60200."""
    channel = form_schema(spec, f"{SERVICE}/Verifications")["properties"]["Channel"]
    assert channel["enum"] == ["sms", "call", "email", "whatsapp"]
    r = api.start(channel="fax")
    assert (r.status_code, r.json["code"], r.json["parameter"]) == (400, 60200, "Channel")
