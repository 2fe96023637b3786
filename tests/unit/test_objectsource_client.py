"""The Twilio reader's pure parts: first page URIs, Twilio's two error shapes, the backoff."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from eventstreams.objectsource.client import PAGE_SIZE, RetryPolicy, _error, _retry_after, first_uri
from eventstreams.objectsource.collections import COLLECTIONS, filter_params, parse_date

ACCT = "AC" + "a" * 32


def test_first_uri_encodes_the_filter_names_and_asks_for_full_pages() -> None:
    c = COLLECTIONS["calls"]
    params = filter_params(c, parse_date("2024-03-01T10:00:00Z"), None)
    uri = first_uri(ACCT, c, params)
    parts = urlsplit(uri)
    assert parts.path == f"/2010-04-01/Accounts/{ACCT}/Calls.json"
    assert "EndTime%3E=2024-03-01" in parts.query  # the ">" belongs to the name (reference §3.3)
    assert dict(parse_qsl(parts.query)) == {"EndTime>": "2024-03-01", "PageSize": str(PAGE_SIZE)}
    assert first_uri(ACCT, COLLECTIONS["addresses"]).endswith("/Addresses.json?PageSize=1000")
    with pytest.raises(ValueError, match="call_feedback"):
        first_uri(ACCT, COLLECTIONS["call_feedback"])


def test_both_error_shapes() -> None:
    classic = {"code": 21481, "message": "Invalid PageToken", "more_info": "https://www.twilio.com/docs/errors/21481",
               "status": 400, "details": {}}  # fmt: skip
    assert _error(400, orjson.dumps(classic), "/x") == (21481, "Invalid PageToken")
    problem = {"type": "https://www.twilio.com/docs/errors/20001", "title": "Bad request", "status": 400,
               "code": 20001, "detail": "PageSize must be at most 1000", "instance": "/x", "errors": []}  # fmt: skip
    assert _error(400, orjson.dumps(problem), "/x") == (20001, "PageSize must be at most 1000")
    assert _error(400, orjson.dumps({"title": "Bad request", "status": 400}), "/x") == (None, "Bad request")
    assert _error(502, b"<html>Bad gateway</html>", "/x") == (None, "HTTP 502: <html>Bad gateway</html>")
    assert _error(500, b"", "/x") == (None, "HTTP 500")


def test_retry_after_in_seconds_only() -> None:
    assert _retry_after("3") == 3.0 and _retry_after("0.5") == 0.5
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None  # the date form: back off instead
    assert _retry_after(None) is None and _retry_after("-1") is None


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(first_delay=0.5, max_delay=8.0)
    rng = random.Random(7)
    for retry in range(1, 12):
        ceiling = min(8.0, 0.5 * 2 ** (retry - 1))
        delays = {policy.backoff(retry, rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
