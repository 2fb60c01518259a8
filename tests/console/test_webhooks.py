"""Webhook deliveries in the console: the list, one delivery's attempts, replay of one and of every
dead delivery of an endpoint — against a real receiver on a socket and a real worker."""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.conftest import ApiClient
from tests.console.conftest import Console, Receiver, deliver_everything, start
from verify.models.webhooks import WebhookDelivery
from verify.runtime import Runtime

DELIVERY = re.compile(r'href="/console/webhooks/(WD[0-9a-f]{32})"')


def statuses(runtime: Runtime) -> dict[str, str]:
    with runtime.sessions() as session:
        return {d.sid: d.status for d in session.query(WebhookDelivery)}


def test_dead_deliveries_are_replayed_from_the_console(
    console: Console,
    api: ApiClient,
    endpoint: str,
    receiver: Receiver,
    runtime: Runtime,
    work: Callable[[], None],
) -> None:
    """The receiver fails, the deliveries die; once it recovers, "Replay N dead" sends each again and
    it gets every event exactly once."""
    start(api, "+14155550123")
    start(api, "+14155550124")
    deliver_everything(work)
    dead = statuses(runtime)
    assert dead
    assert set(dead.values()) == {"dead"}

    page = console.html("/console/webhooks")
    assert f'id="replay-dead-{endpoint}"' in page
    assert f"Replay {len(dead)} dead" in page
    assert sorted(DELIVERY.findall(page.split('id="deliveries"', 1)[1])) == sorted(dead)

    receiver.status = 200
    response = console.post(
        f"/console/webhooks/endpoints/{endpoint}/replay-dead", {"next": "/console/webhooks"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/webhooks"
    assert f"{len(dead)} dead deliveries of {endpoint} queued to be sent again." in console.html(
        "/console/webhooks"
    )
    deliver_everything(work)
    assert set(statuses(runtime).values()) == {"succeeded"}
    assert sorted(receiver.taken) == sorted(set(receiver.taken))  # each exactly once
    assert len(receiver.taken) == len(dead)
    assert "Endpoints with undelivered events" not in console.html("/console/webhooks")


def test_one_delivery_is_replayed_and_its_attempts_are_listed(
    console: Console,
    api: ApiClient,
    endpoint: str,
    receiver: Receiver,
    runtime: Runtime,
    work: Callable[[], None],
) -> None:
    verification = start(api, "+14155550123")
    deliver_everything(work)
    sid = sorted(statuses(runtime))[0]
    receiver.status = 204
    page = console.html(f"/console/webhooks/{sid}")
    assert "HTTP 500" in page
    assert 'id="replay"' in page

    response = console.post(f"/console/webhooks/{sid}/replay")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/console/webhooks/{sid}"
    deliver_everything(work)
    assert statuses(runtime)[sid] == "succeeded"
    page = console.html(f"/console/webhooks/{sid}")
    assert "HTTP 500" in page
    assert "HTTP 204" in page
    assert f"Delivery {sid} is queued to be sent again." in page

    timeline = console.html(f"/console/verifications/{verification}").split('id="timeline"', 1)[1]
    assert f"to Acme hooks ({endpoint}): HTTP 500" in timeline
    assert f"to Acme hooks ({endpoint}): HTTP 204" in timeline


def test_replay_needs_the_csrf_token(
    console: Console, api: ApiClient, endpoint: str, runtime: Runtime, work: Callable[[], None]
) -> None:
    start(api, "+14155550123")
    deliver_everything(work)
    before = statuses(runtime)
    sid = sorted(before)[0]
    forged = console.client.post(f"/console/webhooks/{sid}/replay", data={"csrf_token": "x"})
    assert forged.status_code == 400
    forged = console.client.post(f"/console/webhooks/endpoints/{endpoint}/replay-dead")
    assert forged.status_code == 400
    assert statuses(runtime) == before


def test_filters_and_unknown_ids(console: Console, endpoint: str) -> None:
    assert "No delivery matches." in console.html("/console/webhooks?status=dead")
    assert console.get("/console/webhooks?status=lost").status_code == 400
    assert console.get("/console/webhooks/WD" + "0" * 32).status_code == 404
    assert console.post("/console/webhooks/WD" + "0" * 32 + "/replay").status_code == 404
    assert (
        console.post("/console/webhooks/endpoints/YW" + "0" * 32 + "/replay-dead").status_code
        == 404
    )
