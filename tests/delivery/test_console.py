"""The console provider and the sealed dev outbox (Redis on both backends), and GET /dev/outbox."""

import io

from tests.conftest import code_in, delivered_code
from tests.delivery.conftest import message
from verify.delivery.console import OUTBOX_KEY, outbox_for
from verify.delivery.providers import build_provider
from verify.delivery.providers.base import Outcome
from verify.delivery.providers.console import ConsoleProvider


def test_console_keeps_what_an_operator_needs(runtime):
    """to, channel, locale, subject, sids, date, the text and the HTML, newest first."""
    provider = build_provider("console", {}, {}, timeout=1, outbox=outbox_for(runtime))
    m = message("email", "fr", code="551177")
    result = provider.send(m)
    assert result.outcome is Outcome.ACCEPTED
    [entry] = outbox_for(runtime).read()
    assert entry == {
        "to": m.to,
        "channel": "email",
        "locale": "fr",
        "subject": m.subject,
        "verification_sid": m.verification_sid,
        "attempt_sid": m.attempt_sid,
        "date_created": runtime.clock.now().isoformat().replace("+00:00", "Z"),
        "body": m.text,
        "html": m.html,
    }


def test_outbox_in_redis_holds_no_readable_code(runtime):
    """Text and HTML are sealed: the raw Redis entry does not contain the code."""
    ConsoleProvider(outbox_for(runtime)).send(message("email", code="551177"))
    [raw] = runtime.redis.lrange(OUTBOX_KEY, 0, -1)
    assert b"551177" not in raw


def test_echo_prints_to_the_stream(runtime):
    """In `verify dev` the terminal shows the message."""
    stream = io.StringIO()
    ConsoleProvider(outbox_for(runtime), stream).send(message("sms", "es"))
    assert stream.getvalue().startswith("[console sms es -> +14155550123] Tu código")


def test_delivered_code_reads_any_channel_and_locale(runtime):
    """The test helper finds the code in calls, WhatsApp and RTL messages alike."""
    provider = ConsoleProvider(outbox_for(runtime))
    for channel, locale, to in [
        ("call", "de", "+4915112345678"),
        ("whatsapp", "ar", "+966501234567"),
    ]:
        provider.send(message(channel, locale, to=to, code="80417", do_not_share_warning=True))
        assert delivered_code(runtime, to) == "80417"
    assert code_in("Your Acme 2 verification code is: 1, 2, 3.") == "123"


def test_dev_outbox_endpoint_shows_the_new_fields(app, runtime):
    """GET /dev/outbox (operator only) returns the opened entries."""
    ConsoleProvider(outbox_for(runtime)).send(message("email", "ar"))
    client = app.test_client()
    assert client.get("/dev/outbox").status_code == 401
    r = client.get(
        "/dev/outbox", headers={"Authorization": f"Bearer {runtime.settings.operator_token}"}
    )
    [entry] = r.json
    assert (entry["channel"], entry["locale"]) == ("email", "ar")
    assert code_in(entry["body"]) == "123456"
    assert "<bdi>Acme Login</bdi>" in entry["html"]
