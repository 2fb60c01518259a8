"""rq-dashboard at /console/rq: the operator's only, on the service's Redis, with CSRF on its POSTs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rq import SimpleWorker

from tests.conftest import ApiClient
from tests.console.conftest import Console, start
from verify.runtime import Runtime

DASHBOARD_PAGES = [
    "/console/rq/",
    "/console/rq/0/view/workers",
    "/console/rq/0/view/jobs",
    "/console/rq/0/view/jobs/verify/queued/8/asc/1",
]
DASHBOARD_DATA = [
    "/console/rq/0/data/queues.json",
    "/console/rq/0/data/workers.json",
    "/console/rq/0/data/jobs/verify/queued/8/asc/1.json",
]


@pytest.fixture
def worker(runtime: Runtime) -> Iterator[SimpleWorker]:
    """A worker registered in Redis, as a running ``verify worker`` is."""
    w = SimpleWorker(runtime.queues, connection=runtime.redis)
    w.register_birth()
    yield w
    w.register_death()


@pytest.mark.parametrize(
    "path", [*DASHBOARD_PAGES, "/console/rq/static/css/main.css", "/console/rq/favicon.ico"]
)
def test_anonymous_pages_go_to_sign_in(anonymous: Console, path: str) -> None:
    response = anonymous.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login?next=/console/rq")


@pytest.mark.parametrize("path", DASHBOARD_DATA)
def test_anonymous_data_is_refused(anonymous: Console, path: str) -> None:
    response = anonymous.get(path)
    assert response.status_code == 401
    assert b"queues" not in response.data


@pytest.mark.parametrize(
    "path", ["/console/rq/requeue/verify", "/console/rq/queue/verify/failed/empty"]
)
def test_anonymous_actions_are_refused(anonymous: Console, path: str) -> None:
    assert anonymous.client.post(path).status_code == 401


def test_the_operator_sees_the_services_queues_and_workers(
    console: Console, api: ApiClient, worker: SimpleWorker, runtime: Runtime
) -> None:
    start(api, "+14155550123")
    for path in DASHBOARD_PAGES:
        assert console.get(path).status_code == 200, path
    queues = console.get("/console/rq/0/data/queues.json").get_json()["queues"]
    assert [(q["name"], q["count"]) for q in queues] == [(runtime.settings.queue_name, 1)]
    workers = console.get("/console/rq/0/data/workers.json").get_json()["workers"]
    assert [w["name"] for w in workers] == [worker.name]
    assert workers[0]["queues"] == [q.name for q in runtime.queues]  # with the overflow queue


def test_other_redis_instances_do_not_exist(console: Console) -> None:
    assert console.get("/console/rq/1/view/queues").status_code == 404
    assert console.get("/console/rq/1/data/queues.json").status_code == 404


def test_dashboard_actions_need_the_csrf_token(console: Console) -> None:
    """Its scripts send the _csrf_token cookie back as X-CSRFToken; nothing else gets through,
    including "requeue all" by a plain link (GET)."""
    console.get("/console/rq/")
    cookie = console.client.get_cookie("_csrf_token", path="/console/rq")
    assert cookie is not None
    assert cookie.value == console.csrf
    assert console.client.post("/console/rq/requeue/verify").status_code == 403
    assert console.client.get("/console/rq/requeue/verify").status_code == 403
    forged = console.client.post("/console/rq/requeue/verify", headers={"X-CSRFToken": "nope"})
    assert forged.status_code == 403
    ok = console.client.post("/console/rq/requeue/verify", headers={"X-CSRFToken": cookie.value})
    assert ok.status_code == 200
    assert ok.get_json() == {"count": 0, "status": "OK"}


def test_job_descriptions_name_ids_only(console: Console, api: ApiClient) -> None:
    """A queued delivery job shows its attempt sid: no number, no code, no message text."""
    start(api, "+14155550123")
    jobs = console.get("/console/rq/0/data/jobs/verify/queued/8/asc/1.json").get_json()["jobs"]
    assert len(jobs) == 1
    assert jobs[0]["description"].startswith("deliver VL")
    detail = console.get(f"/console/rq/0/data/job/{jobs[0]['id']}.json").get_data(as_text=True)
    assert "4155550123" not in detail
