"""Verify: a self-hosted, Twilio-Verify-compatible one-time-code service."""

__version__ = "0.1.0"
