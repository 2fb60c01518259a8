"""Abuse-control tables: rate limits, fraud rules and decisions, safe list (issue 4)."""

from __future__ import annotations
