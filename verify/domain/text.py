"""What text can be stored: every database and encoding Verify writes to takes any Unicode text
except these characters."""

from __future__ import annotations

import re
from typing import Any

UNSTORABLE = "must not contain NUL characters or unpaired surrogates"
# PostgreSQL refuses NUL in text and JSON, and an unpaired surrogate (which JSON can spell as
# "\ud800", YAML too) has no UTF-8 encoding.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(value: Any) -> bool:
    """Whether ``value`` (a string, or parsed JSON or YAML: mappings, lists and scalars) holds a
    character that cannot be stored."""
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(unstorable(k) or unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(unstorable(v) for v in value)
    return False
