"""JSON logs through a whole start / deliver / webhook / check cycle: a request id on request logs,
and never a code or a full phone number anywhere."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from tests.conftest import ApiClient, delivered_code
from tests.webhooks.conftest import Receiver, start_receiver
from verify import jobs
from verify.logs import JsonFormatter, request_id
from verify.runtime import Runtime

NUMBER = "+14155550151"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state, stop = start_receiver()
    yield state
    stop()


def test_a_full_cycle_logs_no_code_and_no_full_number(
    api: ApiClient,
    runtime: Runtime,
    receiver: Receiver,
    work: Callable[[], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime.settings = replace(
        runtime.settings, webhook_allow_networks=("127.0.0.1/32",), log_level="DEBUG"
    )
    caplog.set_level(logging.DEBUG)
    formatter = JsonFormatter()
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(formatter.format(record))  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        api.post(
            f"{api.base}/Webhooks",
            {"FriendlyName": "x", "EventTypes": "*", "WebhookUrl": receiver.url},
        )
        api.start(NUMBER, StatusCallback=receiver.url)
        work()
        code = delivered_code(runtime, NUMBER)
        api.check("0" * len(code) if code != "0" * len(code) else "1" * len(code), to=NUMBER)
        api.check(code, to=NUMBER)
        for _ in range(3):
            jobs.relay()
            work()
        token = request_id.set("req12345abcd")
        logging.getLogger("verify.test").warning("a request-scoped line")
        request_id.reset(token)
    finally:
        logging.getLogger().removeHandler(handler)

    assert len(receiver.accepted()) >= 8, "the cycle should have sent webhooks"
    assert any(json.loads(line).get("message") == "webhook attempt" for line in lines)
    assert json.loads(lines[-1])["request_id"] == "req12345abcd"
    text = "\n".join(lines)
    assert code not in text
    assert NUMBER not in text
    assert NUMBER[1:] not in text
