"""The object source's collections (pure): columns, typing of Twilio's wire values, cursors, filters.

Records come from the sandbox's views (``sandbox/views.py``), which render rows in Twilio's wire
types; the expected values are computed here from the rows, not from the code under test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from eventstreams.objectsource.collections import (
    COLLECTIONS,
    cursor_value,
    filter_params,
    parse_date,
    to_row,
)
from eventstreams.sandbox import views
from eventstreams.store.records import (
    SandboxAddressRow,
    SandboxCallRow,
    SandboxConferenceRow,
    SandboxFeedbackRow,
    SandboxMessageRow,
    SandboxTranscriptionRow,
)

NOW = datetime(2026, 12, 3, 6, 0, 0, 123456, tzinfo=UTC)
ACCT = "AC" + "1" * 32

# Segment's documented properties per collection (reference §2.1), every one must be a column
SEGMENT = {
    "addresses": "account_sid, city, customer_name, emergency_enabled, friendly_name, iso_country, postal_code, "
    "region, street, received_at, validated",
    "calls": "account_sid, api_version, caller_name, date_created, date_updated, direction, duration, end_time, "
    "forwarded_from, from, parent_call_sid, phone_number_sid, price, received_at, start_time, status, to",
    "conferences": "account_sid, date_created, date_updated, friendly_name, region, status",
    "transcriptions": "account_sid, date_created, date_updated, duration, price, recording_sid, status, "
    "transcription_text",
    "messages": "account_sid, api_version, body, date_created, date_sent, date_updated, direction, error_code, "
    "error_message, from, num_media, num_segments, price, status, to",
    "call_feedback": "quality_score",
}


def iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_every_collection_has_segments_properties_typed_id_first_timestamps_last() -> None:
    assert set(COLLECTIONS) == set(SEGMENT)
    for name, c in COLLECTIONS.items():
        names = [col.name for col in c.columns]
        assert names[0] == "id" and c.columns[0].type == "varchar"
        assert names[-2:] == ["received_at", "uuid_ts"]
        assert all(col.type == "timestamp" for col in c.columns[-2:])
        assert len(set(names)) == len(names)
        missing = {p.strip() for p in SEGMENT[name].split(",")} - set(names)
        assert not missing, (name, missing)
        for col in c.columns:
            if col.name.startswith("date_") or (col.name.endswith("_time") and col.name != "queue_time"):
                assert col.type == "timestamp", (name, col)
    types = {(c.name, col.name): col.type for c in COLLECTIONS.values() for col in c.columns}
    assert types[("messages", "num_segments")] == types[("messages", "num_media")] == "integer"
    assert types[("messages", "error_code")] == types[("calls", "duration")] == "integer"
    assert types[("messages", "price")] == types[("calls", "price")] == types[("transcriptions", "price")] == "float"
    assert types[("addresses", "emergency_enabled")] == types[("addresses", "validated")] == "boolean"
    assert types[("call_feedback", "quality_score")] == "integer"
    for extra in ("messaging_service_sid", "price_unit"):
        assert ("messages", extra) in types
    for extra in ("answered_by", "queue_time", "price_unit"):
        assert ("calls", extra) in types
    assert COLLECTIONS["call_feedback"].list_key is None


def test_message_row_types_and_values() -> None:
    row = SandboxMessageRow("SM" + "a" * 32, ACCT, "MG" + "b" * 32, "outbound-api", "+15005550006", "+14155552671",
                            "hello", "undelivered", 3, 1, "-0.02250", "USD", 30003, "Unreachable destination handset",
                            None, None, None, "2024-03-01T10:00:00Z", "2024-03-01T10:00:09Z",
                            "2024-03-01T10:00:01Z")  # fmt: skip
    c = COLLECTIONS["messages"]
    got = to_row(c, views.message(row), NOW)
    assert list(got) == [col.name for col in c.columns]  # every column, in order
    assert got == {
        "id": row.sid, "account_sid": ACCT, "api_version": "2010-04-01", "body": "hello",
        "date_created": iso(row.date_created), "date_sent": iso(row.date_sent), "date_updated": iso(row.date_updated),
        "direction": "outbound-api", "error_code": 30003, "error_message": "Unreachable destination handset",
        "from": "+15005550006", "num_media": 1, "num_segments": 3, "price": -0.0225, "status": "undelivered",
        "to": "+14155552671", "messaging_service_sid": row.messaging_service_sid, "price_unit": "USD",
        "received_at": NOW, "uuid_ts": NOW,
    }  # fmt: skip
    assert got["date_sent"].tzinfo is not None and got["date_sent"].utcoffset() == timedelta(0)
    assert cursor_value(c, views.message(row)) == iso(row.date_sent)
    # a message never sent: no cursor, NULLs stay NULL
    row.date_sent, row.price, row.error_code = None, None, None
    unsent = to_row(c, views.message(row), NOW)
    assert unsent["date_sent"] is None and unsent["price"] is None and unsent["error_code"] is None
    assert cursor_value(c, views.message(row)) is None


def test_call_row_types_and_values() -> None:
    row = SandboxCallRow("CA" + "c" * 32, ACCT, "CA" + "d" * 32, "+14155552671", "(415) 555-2671", "+15005550006",
                         "(500) 555-0006", "PN" + "e" * 32, "completed", "2024-03-01T12:00:03Z",
                         "2024-03-01T12:01:17Z", 74, "-0.01400", "USD", "outbound-api", "human", None, None,
                         "ADA LOVELACE", 1234, None, None, None, None, None, "2024-03-01T12:00:00Z",
                         "2024-03-01T12:01:17Z")  # fmt: skip
    c = COLLECTIONS["calls"]
    got = to_row(c, views.call(row), NOW)
    assert list(got) == [col.name for col in c.columns]
    assert (got["duration"], got["price"], got["queue_time"]) == (74, -0.014, 1234)
    assert (got["start_time"], got["end_time"]) == (iso(row.start_time), iso(row.end_time))
    assert (got["from"], got["to"], got["caller_name"]) == ("+15005550006", "+14155552671", "ADA LOVELACE")
    assert got["parent_call_sid"] == row.parent_call_sid and got["answered_by"] == "human"
    assert cursor_value(c, views.call(row)) == iso(row.end_time)


def test_conference_transcription_address_feedback_rows() -> None:
    conf = SandboxConferenceRow("CF" + "1" * 32, ACCT, "room", "us1", "completed", "last-participant-left",
                                "CA" + "2" * 32, "2024-01-10T00:00:00Z", "2024-02-10T08:30:00Z")  # fmt: skip
    got = to_row(COLLECTIONS["conferences"], views.conference(conf), NOW)
    assert got["status"] == "completed" and got["reason_conference_ended"] == "last-participant-left"
    assert cursor_value(COLLECTIONS["conferences"], views.conference(conf)) == iso(conf.date_updated)

    tr = SandboxTranscriptionRow("TR" + "3" * 32, ACCT, "RE" + "4" * 32, "completed", "hi " * 300, "fast", 61,
                                 "0.10", "USD", "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z")  # fmt: skip
    got = to_row(COLLECTIONS["transcriptions"], views.transcription(tr), NOW)
    assert (got["duration"], got["price"], got["recording_sid"]) == (61, 0.1, tr.recording_sid)
    assert got["transcription_text"] == tr.transcription_text
    assert cursor_value(COLLECTIONS["transcriptions"], views.transcription(tr)) is None  # full scan

    ad = SandboxAddressRow("AD" + "5" * 32, ACCT, "Ada", None, "1 Main St", None, "SF", "CA", "94105", "US", True,
                           False, True, "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z")  # fmt: skip
    got = to_row(COLLECTIONS["addresses"], views.address(ad), NOW)
    assert (got["emergency_enabled"], got["validated"], got["verified"]) == (True, False, True)
    assert got["friendly_name"] is None and got["date_updated"] == iso(ad.date_updated)

    fb = SandboxFeedbackRow("CA" + "6" * 32, ACCT, 2, orjson.dumps(["dropped-call", "one-way-audio"]).decode(),
                            "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z")  # fmt: skip
    got = to_row(COLLECTIONS["call_feedback"], views.feedback(fb), NOW)
    assert got["id"] == fb.call_sid and got["quality_score"] == 2
    assert orjson.loads(got["issues"]) == ["dropped-call", "one-way-audio"]


def test_wire_value_variants() -> None:
    c = COLLECTIONS["messages"]
    got = to_row(c, {"sid": "SM1", "num_segments": 2, "price": -0.5, "error_code": "30003", "date_sent": ""}, NOW)
    assert (got["num_segments"], got["price"], got["error_code"], got["date_sent"]) == (2, -0.5, 30003, None)
    assert to_row(COLLECTIONS["addresses"], {"sid": "AD1", "validated": "true"}, NOW)["validated"] is True
    with pytest.raises(ValueError, match="messages SM1: column num_segments"):
        to_row(c, {"sid": "SM1", "num_segments": "many"}, NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Fri, 18 Oct 2019 17:00:00 +0000", datetime(2019, 10, 18, 17, 0, 0, tzinfo=UTC)),
        ("Mon, 01 Jan 2024 00:00:59 +0000", datetime(2024, 1, 1, 0, 0, 59, tzinfo=UTC)),
        ("Tue, 5 Mar 2024 01:02:03 -0500", datetime(2024, 3, 5, 6, 2, 3, tzinfo=UTC)),  # other RFC 2822 forms
        ("Thu, 29 Feb 2024 23:59:59 +0100", datetime(2024, 2, 29, 22, 59, 59, tzinfo=UTC)),
        ("2024-03-05T01:02:03Z", datetime(2024, 3, 5, 1, 2, 3, tzinfo=UTC)),  # ISO passes
        ("2024-03-05 01:02:03", datetime(2024, 3, 5, 1, 2, 3, tzinfo=UTC)),  # naive is UTC
        (None, None),
        ("", None),
    ],
)
def test_parse_date(text: str | None, expected: datetime | None) -> None:
    got = parse_date(text)
    assert got == expected
    if got is not None:
        assert got.tzinfo is UTC


def test_parse_date_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_date("yesterday")
    with pytest.raises(ValueError):
        parse_date("Fri, 18 Xyz 2019 17:00:00 +0000")


def test_parse_date_matches_the_sandbox_renderer_across_a_year() -> None:
    from eventstreams import clock

    start = datetime(2025, 1, 1, tzinfo=UTC)
    for hours in range(0, 24 * 366, 7):
        d = start + timedelta(hours=hours, seconds=hours % 61)
        assert parse_date(clock.rfc2822(d.strftime("%Y-%m-%dT%H:%M:%SZ"))) == d


def test_filter_params() -> None:
    msgs, calls, confs = COLLECTIONS["messages"], COLLECTIONS["calls"], COLLECTIONS["conferences"]
    lower = datetime(2024, 3, 1, 23, 30, tzinfo=UTC)
    upper = datetime(2024, 3, 5, 0, 10, tzinfo=UTC)
    # messages are read newest first and cut at the bound: DateSent> would drop never-sent messages
    assert msgs.newest_first == "date_created" and filter_params(msgs, lower, upper) == {}
    assert filter_params(calls, lower, upper) == {"EndTime>": "2024-03-01", "EndTime<": "2024-03-06"}
    assert filter_params(calls, lower, None) == {"EndTime>": "2024-03-01"}
    assert filter_params(confs, None, upper) == {"DateUpdated<": "2024-03-06"}
    assert filter_params(confs, None, None) == {}
    # bounds in another zone are read as UTC days
    plus2 = datetime(2024, 3, 2, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert filter_params(calls, plus2, None) == {"EndTime>": "2024-03-01"}
    for name in ("transcriptions", "addresses", "call_feedback"):
        assert filter_params(COLLECTIONS[name], lower, upper) == {}
    with pytest.raises(ValueError):
        filter_params(calls, datetime(2024, 3, 1), None)
