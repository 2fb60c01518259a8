"""Webhook tables: subscriptions, deliveries and their attempts (issue 5)."""

from __future__ import annotations
