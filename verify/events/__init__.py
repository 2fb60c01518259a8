"""Events: the outbox written with every state change (webhook delivery builds on it)."""
