"""What can be stored: every database and encoding Verify writes to takes any Unicode text except a
few characters, and structured values (JSON from requests, YAML from files) within bounds that no
setting comes near. Input past them is the caller's error, never a crash."""

from __future__ import annotations

import json
import re
from typing import Any

UNSTORABLE = "must not contain NUL characters or unpaired surrogates"
MAX_DEPTH = 32
TOO_DEEP = f"must not nest more than {MAX_DEPTH} levels deep"
MAX_VALUES = 100_000
TOO_LARGE = f"must not hold more than {MAX_VALUES} values"
TOO_LONG_NUMBER = "holds a number too long to read"
# PostgreSQL refuses NUL in text and JSON, and an unpaired surrogate (which JSON can spell as
# "\ud800", YAML too) has no UTF-8 encoding.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> bool:
    """Whether ``text`` holds a character that cannot be stored."""
    return _UNSTORABLE.search(text) is not None


def refusal(value: Any) -> str | None:
    """Why ``value`` (a string, or parsed JSON or YAML: mappings, lists and scalars) cannot be
    stored, or None. Walked without recursion, and only so far: a YAML alias counts as often as
    it is used, as it would be when stored."""
    if isinstance(value, str):  # most values: every form and query parameter
        return UNSTORABLE if unstorable(value) else None
    pending = [(value, 0)]
    seen = 0
    while pending:
        item, depth = pending.pop()
        seen += 1
        if seen > MAX_VALUES:
            return TOO_LARGE
        if isinstance(item, str):
            if unstorable(item):
                return UNSTORABLE
        elif isinstance(item, dict | list):
            if depth == MAX_DEPTH:
                return TOO_DEEP
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return None


def load_json(raw: str | bytes) -> Any:
    """Parse JSON. If it is not JSON or cannot be read whole (nested past the parser's depth, or a
    number with more digits than Python reads): ValueError, whose text completes a sentence that
    names what was parsed ("Params is not valid JSON (...)")."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise ValueError("is not UTF-8 text") from None
    except ValueError:  # the limit on an integer's digits
        raise ValueError(TOO_LONG_NUMBER) from None


def json_object(value: Any) -> dict[str, Any]:
    """A JSON object that can be stored, given as text (a form field) or already parsed (a JSON
    body's member); ValueError with the reason otherwise."""
    if isinstance(value, str | bytes):
        value = load_json(value)
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    problem = refusal(value)
    if problem:
        raise ValueError(problem)
    return value


def load_yaml(text: str | bytes) -> Any:
    """Parse YAML (safe types only; bytes in UTF-8, or UTF-16 with a BOM), as ``load_json`` does
    JSON."""
    import yaml

    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    except yaml.reader.ReaderError as exc:  # bytes that are not text, or a control character
        raise ValueError(f"is not valid YAML (position {exc.position}: {exc.reason})") from None
    except yaml.YAMLError as exc:
        # Where and what, not the snippet of the line PyYAML quotes (it may hold a credential).
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ValueError(f"is not valid YAML ({where}{problem})") from None
    except ValueError:
        raise ValueError(TOO_LONG_NUMBER) from None
