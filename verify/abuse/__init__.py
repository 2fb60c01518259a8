"""Abuse controls (issue 4): send limits and the fraud-rule engine behind the send gate.

``build_gate(runtime)`` is what the start path and the worker call; everything else here is the
configuration (rules, safe list, tenant rate limits) and its storage. docs/abuse.md describes it.
"""

from __future__ import annotations

import threading
import weakref

from sqlalchemy.orm import Session

from verify.abuse.gate import AbuseControls, Gate
from verify.domain.ratelimits import DEFAULT_LIMITS, Limit
from verify.runtime import Runtime

_controls: dict[int, tuple[weakref.ref[Runtime], AbuseControls]] = {}
_lock = threading.Lock()


def controls_for(runtime: Runtime) -> AbuseControls:
    """The process-wide controls of ``runtime`` (built on first use; nothing happens at import)."""
    key = id(runtime)
    found = _controls.get(key)
    if found is not None and found[0]() is runtime:
        return found[1]
    with _lock:
        found = _controls.get(key)
        if found is not None and found[0]() is runtime:
            return found[1]
        limits = runtime.settings.limits
        defaults = (*DEFAULT_LIMITS, Limit("global", limits.global_sends_per_minute, 60))
        controls = AbuseControls(runtime.sessions, runtime.redis, runtime.clock, defaults)
        _controls[key] = (weakref.ref(runtime, lambda _: _controls.pop(key, None)), controls)
        return controls


def build_gate(runtime: Runtime, session: Session | None = None) -> Gate:
    """A send gate for one request or one job; ``session`` is the one its screening runs in."""
    return controls_for(runtime).gate(session)


__all__ = ["AbuseControls", "Gate", "build_gate", "controls_for"]
