"""A first end-to-end pass through the API and a real worker."""

from tests.conftest import delivered_code


def test_start_deliver_check(api, work, runtime):
    """A started verification is delivered by the worker and approved with the delivered code."""
    r = api.start()
    assert r.status_code == 201, r.json
    work()
    code = delivered_code(runtime)
    r = api.check(code)
    assert r.status_code == 200
    assert r.json["status"] == "approved"
    assert r.json["valid"] is True
