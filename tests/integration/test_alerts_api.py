"""Monitor Alerts (GET /v1/Alerts, GET /v1/Alerts/{Sid}) through the official
twilio client, as Twilio documents them: LogLevel, StartDate and EndDate
filters with paging, the list/instance difference, request_method, and
account isolation. Alerts come from real failing webhooks and, where a test
needs them at chosen times, from the store's alert grouping with an injected
clock. On SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from twilio.rest import Client

from eventstreams.store.records import ErrorReport
from tests.conftest import Receiver, Server, own_server, twilio_error
from tests.integration.test_delivery import DELIVERED, event, publish, webhook

EVERY = 20 * 60_000
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def monitor(server: Server, account: tuple[str, str]) -> Client:
    client = server.client(*account)
    client.monitor.base_url = server.url
    return client


def wait_for_alerts(client: Client, n: int, timeout: float = 20.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        alerts = client.monitor.v1.alerts.list()
        if len(alerts) >= n or time.monotonic() > deadline:
            assert len(alerts) == n, [a.alert_text for a in alerts]
            return alerts
        time.sleep(0.1)


def sids(alerts: list[Any]) -> list[str]:
    return [a.sid for a in alerts]


def day(d: date | datetime) -> str:
    return d.strftime("%Y-%m-%d")


def stamp(d: datetime) -> str:
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_alerts_from_failing_webhooks(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    client = monitor(server, account)
    down = webhook(client, receiver, "/down", batch=False)  # POST, answers 503: an error
    busy = client.events.v1.sinks.create(
        description="busy",
        sink_type="webhook",
        sink_configuration={"destination": receiver.url + "/busy", "method": "GET", "batch_events": False},
    )  # answers 429: throttled, a warning
    client.events.v1.subscriptions.create(description="busy", sink_sid=busy.sid, types=[{"type": DELIVERED}])
    receiver.plan["/down"] = [(503, 0)]
    receiver.plan["/busy"] = [(429, 0)]
    assert publish(server, account, [event(1)]).status_code == 201

    alerts = wait_for_alerts(client, 2)
    by_sink = {a.resource_sid: a for a in alerts}
    assert set(by_sink) == {down, busy.sid}
    err, warn = by_sink[down], by_sink[busy.sid]
    assert (err.log_level, err.error_code, err.request_method) == ("error", "91306", "POST")
    assert (warn.log_level, warn.error_code, warn.request_method) == ("warning", "91302", "GET")
    for a in alerts:
        assert a.sid.startswith("NO") and len(a.sid) == 34
        assert a.account_sid == account[0] and a.api_version == "v1"
        assert a.url == f"{server.url}/v1/Alerts/{a.sid}"
        assert a.more_info == f"https://www.twilio.com/docs/errors/{a.error_code}"
        assert a.date_created.tzinfo is not None and a.date_generated == a.date_created
        assert a.response_body is None  # lists leave out the request/response data, as Twilio's do
    assert err.request_url == receiver.url + "/down" and warn.request_url == receiver.url + "/busy"
    assert "HTTP 503" in err.alert_text and "HTTP 429" in warn.alert_text

    # LogLevel
    assert sids(client.monitor.v1.alerts.list(log_level="error")) == [err.sid]
    assert sids(client.monitor.v1.alerts.list(log_level="warning")) == [warn.sid]
    assert client.monitor.v1.alerts.list(log_level="notice") == []
    assert client.monitor.v1.alerts.list(log_level="debug") == []

    # StartDate / EndDate as dates (whole GMT days) and as times (to the second)
    created = err.date_created
    first, last = min(a.date_created for a in alerts), max(a.date_created for a in alerts)
    assert sorted(sids(client.monitor.v1.alerts.list(start_date=day(first), end_date=day(last)))) == sorted(
        sids(alerts)
    )
    assert err.sid in sids(client.monitor.v1.alerts.list(start_date=day(created), end_date=day(created)))
    assert err.sid not in sids(client.monitor.v1.alerts.list(start_date=day(created + DAY)))
    assert err.sid not in sids(client.monitor.v1.alerts.list(end_date=day(created - DAY)))
    assert err.sid in sids(client.monitor.v1.alerts.list(end_date=day(created)))  # through the end of that day
    assert err.sid in sids(client.monitor.v1.alerts.list(start_date=created, end_date=created))  # datetime objects
    assert err.sid not in sids(client.monitor.v1.alerts.list(start_date=created + SECOND))
    assert err.sid not in sids(client.monitor.v1.alerts.list(end_date=created - SECOND))
    assert sids(
        client.monitor.v1.alerts.list(log_level="warning", start_date=created - DAY, end_date=stamp(created + DAY))
    ) == [warn.sid]

    # the instance carries the response data and the method the sink used
    got = client.monitor.v1.alerts(err.sid).fetch()
    assert (got.sid, got.resource_sid, got.request_method, got.log_level) == (err.sid, down, "POST", "error")
    assert got.response_body == "nope"  # what the receiver answered
    assert got.alert_text == err.alert_text and got.date_created == err.date_created
    assert client.monitor.v1.alerts(warn.sid).fetch().request_method == "GET"

    # another account sees none of them
    other = monitor(server, server.new_account("Other"))
    assert other.monitor.v1.alerts.list() == []
    assert twilio_error(lambda: other.monitor.v1.alerts(err.sid).fetch()) == (404, 20404)
    assert twilio_error(lambda: client.monitor.v1.alerts("NO" + "0" * 32).fetch()) == (404, 20404)


def inject(server: Server, account_sid: str, at: datetime, code: int, n: int) -> None:
    """An alert at ``at`` from the store's alert grouping (the first error of a new sink)."""
    sink = "DG" + secrets.token_hex(16)  # no such sink: its alerts have no request_method
    report = ErrorReport(account_sid, sink, 1, code, 503, f"HTTP 503: injected {n}", "https://x.example/h")
    raised = server.call(server.services.store.deliveries.complete([], [], [report], int(at.timestamp() * 1000), EVERY))
    assert len(raised) == 1


def test_filters_page_like_unfiltered_lists(server: Server, account: tuple[str, str]) -> None:
    """Filtered lists page forwards (next_page_url), backwards (previous_page_url)
    and by offset (Page=N), with the filters kept in every page URL."""
    client = monitor(server, account)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    d1, d2 = today - 3 * DAY, today - 2 * DAY  # within the retention window, so pruning leaves them
    half = timedelta(milliseconds=500)  # listed as hh:00:00, raised half a second later
    for i in range(6):  # day 1: error, warning, error, warning, error, warning at 01:00..06:00
        inject(server, account[0], d1 + timedelta(hours=1 + i) + half, 91306 if i % 2 == 0 else 91302, i)
    inject(server, account[0], d2 + timedelta(hours=1) + half, 91306, 6)  # day 2: one more error

    everything = client.monitor.v1.alerts.list()
    assert len(everything) == 7 and all(a.request_method is None for a in everything)
    day1_errors = [a.sid for a in everything[:6:2]]
    assert [a.log_level for a in everything] == ["error", "warning"] * 3 + ["error"]

    # the twilio client follows next_page_url through filtered pages of 2
    got = client.monitor.v1.alerts.list(log_level="error", start_date=day(d1), end_date=day(d1), page_size=2)
    assert sids(got) == day1_errors
    assert sids(client.monitor.v1.alerts.list(log_level="error", page_size=1)) == [*day1_errors, everything[6].sid]
    assert sids(client.monitor.v1.alerts.list(start_date=day(d2), page_size=1)) == [everything[6].sid]
    # times to the second span that second: 03:00:00 up to and including 05:00:00(.999)
    at5 = d1 + timedelta(hours=5)
    window = client.monitor.v1.alerts.list(start_date=d1 + timedelta(hours=3), end_date=stamp(at5))
    assert sids(window) == sids(everything[2:5])
    # fractional seconds name an instant: the 05:00:00.500 alert is after .200 and before .600
    assert sids(client.monitor.v1.alerts.list(end_date=f"{day(d1)}T05:00:00.200Z")) == sids(everything[:4])
    assert sids(client.monitor.v1.alerts.list(start_date=f"{day(d1)}T05:00:00.600Z")) == sids(everything[5:])
    assert sids(client.monitor.v1.alerts.list(start_date=f"{day(d1)}T05:00:00.500Z")) == sids(everything[4:])
    # a minute spans that minute; an offset moves the bound (06:30+01:00 is 05:30 GMT)
    assert sids(client.monitor.v1.alerts.list(end_date=f"{day(d1)}T05:00Z")) == sids(everything[:5])
    assert sids(client.monitor.v1.alerts.list(end_date=f"{day(d1)}T06:30:00+01:00")) == sids(everything[:5])

    auth = account
    url = f"{server.url}/v1/Alerts?LogLevel=error&EndDate={day(d1)}&PageSize=2"
    first = requests.get(url, auth=auth, timeout=10).json()
    assert [a["sid"] for a in first["alerts"]] == day1_errors[:2]
    assert first["meta"]["previous_page_url"] is None
    nxt = first["meta"]["next_page_url"]
    assert parse_qs(urlsplit(nxt).query)["LogLevel"] == ["error"] and parse_qs(urlsplit(nxt).query)["EndDate"] == [
        day(d1)
    ]
    second = requests.get(nxt, auth=auth, timeout=10).json()
    assert [a["sid"] for a in second["alerts"]] == day1_errors[2:]
    assert second["meta"]["next_page_url"] is None
    back = requests.get(second["meta"]["previous_page_url"], auth=auth, timeout=10).json()
    assert [a["sid"] for a in back["alerts"]] == day1_errors[:2]
    assert back["meta"]["previous_page_url"] is None and back["meta"]["next_page_url"] is not None
    by_offset = requests.get(url + "&Page=1", auth=auth, timeout=10).json()
    assert [a["sid"] for a in by_offset["alerts"]] == day1_errors[2:]


def test_bad_filters_are_400_naming_the_parameter(server: Server, account: tuple[str, str]) -> None:
    client = monitor(server, account)
    assert twilio_error(lambda: client.monitor.v1.alerts.list(log_level="fatal")) == (400, 20001)
    cases = {
        "LogLevel=ERROR": "LogLevel",
        "LogLevel=": "LogLevel",
        "StartDate=yesterday": "StartDate",
        "StartDate=2026-02-30": "StartDate",
        "EndDate=2026-01-01T25:00:00Z": "EndDate",
        "EndDate=2026-1-1": "EndDate",
        "EndDate=": "EndDate",
        "StartDate=2026-01-02&EndDate=2026-01-01": "StartDate",
        "StartDate=2026-01-01T12:00:01Z&EndDate=2026-01-01T12:00:00.500Z": "StartDate",
        "Level=error": "Level",
    }
    for qs, name in cases.items():
        r = requests.get(f"{server.url}/v1/Alerts?{qs}", auth=account, timeout=10)  # qs needs no escaping
        body = r.json()
        assert r.status_code == 400 and body["status"] == 400 and body["code"] == 20001, (qs, body)
        assert set(body) == {"code", "message", "more_info", "status"}
        assert name in body["message"], (qs, body["message"])
    # accepted forms: a date, a time in GMT or with an offset, with or without seconds
    accepted: list[dict[str, str]] = [
        {"StartDate": "2026-01-01"},
        {"EndDate": "2026-01-01T12:00:00Z"},
        {"EndDate": "2026-01-01T12:00+05:30"},
        {"StartDate": "2026-01-01T12:00:00.25Z", "LogLevel": "notice"},
        {"StartDate": "2026-01-01", "EndDate": "2026-01-01"},
    ]
    for params in accepted:
        r = requests.get(f"{server.url}/v1/Alerts", params=params, auth=account, timeout=10)
        assert r.status_code == 200 and r.json()["alerts"] == [], (params, r.text[:300])


def test_request_method_follows_the_sink(server: Server, account: tuple[str, str]) -> None:
    """request_method is how the sink is called: a webhook's own method; HTTPS POST for Kinesis
    (PutRecords) and Segment (its batch API); null once the sink is gone."""
    client = monitor(server, account)
    configs: dict[str, tuple[str, dict[str, Any]]] = {
        "GET": ("webhook", {"destination": "https://example.com/g", "method": "GET", "batch_events": False}),
        "POST": ("webhook", {"destination": "https://example.com/p", "method": "POST", "batch_events": True}),
        "kinesis": (
            "kinesis",
            {
                "arn": "arn:aws:kinesis:us-east-1:111111111111:stream/s",
                "role_arn": "arn:aws:iam::111111111111:role/R",
                "external_id": "x",
            },
        ),
        "segment": ("segment", {"write_key": "wk"}),
    }
    expected = {"GET": "GET", "POST": "POST", "kinesis": "POST", "segment": "POST"}
    now = datetime.now(UTC)
    alert_of: dict[str, str] = {}
    for name, (sink_type, cfg) in configs.items():
        sink = client.events.v1.sinks.create(description=name, sink_type=sink_type, sink_configuration=cfg)
        report = ErrorReport(account[0], str(sink.sid), 1, 91306, 503, "HTTP 503", "https://x.example/h")
        (raised,) = server.call(
            server.services.store.deliveries.complete([], [], [report], int(now.timestamp() * 1000), EVERY)
        )
        alert_of[name] = raised.sid
        assert client.monitor.v1.alerts(raised.sid).fetch().request_method == expected[name], name
    listed = {a.sid: a.request_method for a in client.monitor.v1.alerts.list()}
    assert listed == {alert_of[n]: expected[n] for n in configs}
    gone = client.monitor.v1.alerts(alert_of["GET"]).fetch().resource_sid
    assert client.events.v1.sinks(gone).delete()
    assert client.monitor.v1.alerts(alert_of["GET"]).fetch().request_method is None


def test_alert_webhook_matches_the_api(backend: str, tmp_path: Path, receiver: Receiver) -> None:
    """EVENTSTREAMS_ALERT_WEBHOOK_URL receives the alert as GET /v1/Alerts/{Sid} shows it."""
    with own_server(backend, tmp_path, alert_webhook_url=receiver.url + "/alerts") as srv:
        account = srv.new_account()
        client = monitor(srv, account)
        sink = client.events.v1.sinks.create(
            description="get",
            sink_type="webhook",
            sink_configuration={"destination": receiver.url + "/get-down", "method": "GET", "batch_events": False},
        )
        client.events.v1.subscriptions.create(description="get", sink_sid=sink.sid, types=[{"type": DELIVERED}])
        receiver.plan["/get-down"] = [(503, 0)]
        assert publish(srv, account, [event(1)]).status_code == 201
        receiver.wait_for(lambda: len(receiver.events("/alerts")) == 1)
        (posted,) = receiver.events("/alerts")
        fetched = requests.get(f"{srv.url}/v1/Alerts/{posted['sid']}", auth=account, timeout=10).json()
        # url aside: the dispatcher's settings were built before the test server learnt its port
        assert posted.pop("url").endswith(fetched.pop("url").removeprefix(srv.url))
        assert posted == fetched
        assert (posted["request_method"], posted["response_body"], posted["resource_sid"]) == ("GET", "nope", sink.sid)
