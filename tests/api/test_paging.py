"""List pages keep the list's filters in their URLs, so following next_page_url (as the Twilio SDK's
list() and stream() do) walks the filtered list, not the whole one."""

from urllib.parse import parse_qsl, urlsplit

from tests.conftest import ApiClient


def test_next_page_url_keeps_the_filters(api: ApiClient) -> None:
    for to in ("+14155550101", "+14155550102", "+14155550103"):
        assert api.start(to).status_code == 201
    assert api.start("ada@example.com", channel="email").status_code == 201

    seen, url = [], "/v2/Attempts?Channel=sms&PageSize=1"
    while url:
        body = api.get(url).json
        seen += [a["channel"] for a in body["attempts"]]
        url = body["meta"]["next_page_url"]
        if url:
            query = dict(parse_qsl(urlsplit(url).query))
            assert (query["Channel"], query["PageSize"]) == ("sms", "1")
            url = f"{urlsplit(url).path}?{urlsplit(url).query}"
    assert seen == ["sms", "sms", "sms"]
    first = api.get("/v2/Attempts?Channel=sms&PageSize=1&Page=2").json["meta"]["first_page_url"]
    assert urlsplit(first).query == "Channel=sms&PageSize=1&Page=0"
