"""The documentation stays true to the code: a regenerated API reference, a paragraph for every error
code, client exception names that exist, and links that resolve."""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

from verify import errors

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GUIDE = DOCS / "integration-guide.md"
MIGRATION = DOCS / "migrating-from-twilio.md"
TWILIO_OPENAPI = ROOT.parent / "shared" / "reference" / "twilio_verify_v2.openapi.json"
# The paths of that document, committed so that the check runs wherever the repository is.
TWILIO_PATHS = Path(__file__).with_name("twilio_verify_v2_paths.txt")
REGENERATE = ".venv/bin/python scripts/gen_api_reference.py"

# HTTP-level codes (68000 + status) named in verify/errors.py but produced by HttpError instances.
HTTP_LEVEL_CODES = {68413}
# Codes the abuse-control release will return; the client already knows them, so the guide does too.
ABUSE_CONTROL_CODES = {60205, 60212, 60410, 60605}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_api_reference", ROOT / "scripts" / "gen_api_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def server_codes() -> list[int]:
    codes = {
        cls.code
        for cls in errors.all_error_classes()
        if cls not in (errors.VerifyError, errors.HttpError)
    }
    return sorted(codes | HTTP_LEVEL_CODES)


def _prose(path: Path) -> list[str]:
    """The lines of a Markdown file outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def _headings_and_table_rows(path: Path) -> str:
    return "\n".join(
        line for line in _prose(path) if line.startswith("#") or line.lstrip().startswith("|")
    )


# -- the API reference ------------------------------------------------------------------------------


def test_api_reference_is_up_to_date():
    """docs/api-reference.md is exactly what the generator makes from today's OpenAPI document."""
    expected = _generator().generate()
    path = DOCS / "api-reference.md"
    actual = path.read_text(encoding="utf-8") if path.exists() else ""
    if actual != expected:
        diff = difflib.unified_diff(
            actual.splitlines(),
            expected.splitlines(),
            "docs/api-reference.md (committed)",
            "docs/api-reference.md (regenerated)",
            lineterm="",
        )
        excerpt = "\n".join(list(diff)[:60])
        pytest.fail(
            f"docs/api-reference.md is out of date; regenerate it with `{REGENERATE}` "
            f"and commit the result.\n{excerpt}"
        )


# -- the integration guide --------------------------------------------------------------------------


@pytest.mark.parametrize("code", server_codes() + sorted(ABUSE_CONTROL_CODES))
def test_every_error_code_is_in_the_guide(code):
    """Every code the API can return (or soon will) has a heading or table row in the guide."""
    text = _headings_and_table_rows(GUIDE)
    assert re.search(rf"\b{code}\b", text), (
        f"error {code} has no heading or table row in docs/integration-guide.md"
    )


def _guide_client_exceptions() -> set[str]:
    """Exception names in the guide's error tables (the column headed "client exception")."""
    names: set[str] = set()
    column = None
    for line in _prose(GUIDE):
        if not line.lstrip().startswith("|"):
            column = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if "client exception" in cells:
            column = cells.index("client exception")
        elif column is not None and column < len(cells):
            names.update(re.findall(r"`(\w+)`", cells[column]))
    return names


def test_guide_lists_client_exceptions():
    """The guide's error table names a client exception for the codes."""
    assert {"InvalidParameter", "MaxSendAttemptsReached", "VerificationNotPending"} <= (
        _guide_client_exceptions()
    )


def test_guide_names_only_client_exceptions_that_exist():
    """Every exception the guide's tables name is defined by verify.client (once it exists)."""
    client = pytest.importorskip("verify.client")
    missing = sorted(n for n in _guide_client_exceptions() if not hasattr(client, n))
    assert not missing, f"docs/integration-guide.md names exceptions verify.client lacks: {missing}"


def test_every_client_exception_is_in_the_guide():
    """Every public exception class of verify.client is explained in the guide (once it exists)."""
    client = pytest.importorskip("verify.client")
    public = getattr(client, "__all__", None) or [n for n in dir(client) if not n.startswith("_")]
    exceptions = [
        name
        for name in public
        if isinstance(getattr(client, name, None), type)
        and issubclass(getattr(client, name), Exception)
        and getattr(client, name).__module__.startswith("verify.client")
    ]
    text = GUIDE.read_text(encoding="utf-8")
    missing = sorted(n for n in exceptions if not re.search(rf"`{n}`", text))
    assert not missing, f"docs/integration-guide.md does not explain: {missing}"


# -- the migration guide ----------------------------------------------------------------------------


def test_migration_guide_accounts_for_every_twilio_path():
    """Each path of Twilio's Verify v2 API is in the migration guide, supported or not."""
    text = MIGRATION.read_text(encoding="utf-8")
    missing = [p for p in _twilio_paths() if f"`{p}`" not in text]
    assert not missing, f"docs/migrating-from-twilio.md does not mention: {missing}"


def test_twilio_path_list_matches_the_reference():
    """The committed path list is Twilio's OpenAPI document's, where that document is at hand."""
    if TWILIO_OPENAPI.exists():
        paths = json.loads(TWILIO_OPENAPI.read_text(encoding="utf-8"))["paths"]
        assert _twilio_paths() == sorted(paths)
    else:
        assert len(_twilio_paths()) > 20  # the list itself stands in for the document


def _twilio_paths() -> list[str]:
    return TWILIO_PATHS.read_text(encoding="utf-8").split()


# -- links ------------------------------------------------------------------------------------------

INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def _markdown_files() -> list[Path]:
    return [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``path`` (duplicates get -1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for line in _prose(path):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = _slug(match.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    out = []
    for line in _prose(path):
        line = re.sub(r"`[^`]*`", "", line)  # inline code is not a link
        out += INLINE_LINK.findall(line)
        match = REFERENCE_LINK.match(line)
        if match:
            out.append(match.group(1))
    return out


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(path):
    """Every relative link in docs/*.md and README.md points to a file (and heading) that exists."""
    broken = []
    for link in links(path):
        if EXTERNAL.match(link):
            continue
        target, _, fragment = link.partition("#")
        resolved = (path.parent / target).resolve() if target else path
        if not resolved.exists():
            broken.append(f"{link} (no such file)")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{link} (no such heading)")
    assert not broken, f"{path.relative_to(ROOT)} has broken links: {broken}"
