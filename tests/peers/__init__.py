"""Local servers that speak the providers' protocols (SMTP, Twilio, Vonage, a tenant's gateway).

Each runs on 127.0.0.1 with an ephemeral port in a thread, records what it received, and can be told
per destination (or for all) to accept, fail, time out and post delivery receipts. Fixtures for them
are in ``tests/peers/fixtures.py``: import them into a conftest to use them.
"""
