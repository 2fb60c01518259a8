"""Delivery: turning a committed send attempt into a message at a provider (the warm path)."""
