"""Delivery tables: providers, delivery receipts (issue 3)."""

from __future__ import annotations
