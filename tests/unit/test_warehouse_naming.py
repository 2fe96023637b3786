"""Segment's warehouse naming and typing rules, and the rows one message becomes (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eventstreams.warehouse.columns import (
    MAX_VARCHAR,
    check_identifier,
    coerce,
    flatten,
    infer_type,
    parse_timestamp,
    snake_case,
    table_name,
)
from eventstreams.warehouse.events import event_message, message_rows


@pytest.mark.parametrize(("name", "column"), [
    ("adTrackingEnabled", "ad_tracking_enabled"), ("userID", "user_id"), ("HTMLTitle", "html_title"),
    ("already_snake", "already_snake"), ("Order Completed", "order_completed"), ("price ($)", "price"),
    ("2fa enabled", "_2fa_enabled"), ("$$$", "_"), ("Ünïcode key", "n_code_key"), ("a" * 80, "a" * 63),
    ("from", "from"), ("messageSid", "message_sid"),
])  # fmt: skip
def test_snake_case(name: str, column: str) -> None:
    assert snake_case(name) == column
    check_identifier(column)  # always a legal warehouse name


def test_flatten_nested_objects_with_underscores() -> None:
    ctx = {"device": {"adTrackingEnabled": True, "id": None}, "ip": "1.2.3.4", "externalIds": [{"id": "+1"}]}
    assert dict(flatten(ctx, "context")) == {
        "context_device_ad_tracking_enabled": True, "context_ip": "1.2.3.4", "context_external_ids": [{"id": "+1"}]}
    deep: dict[str, object] = {"v": 1}
    for _ in range(20):
        deep = {"k": deep}
    ((name, value),) = list(flatten(deep))
    assert name.count("k") == 9 and isinstance(value, dict)  # depth bounded: the rest is one JSON value


def test_table_names_and_reserved_tables() -> None:
    assert table_name("Order Completed") == "order_completed"
    assert table_name("com.twilio.messaging.message.delivered") == "com_twilio_messaging_message_delivered"
    assert table_name("tracks") == "tracks_events" and table_name("Users") == "users_events"
    assert table_name("pages") == "pages_events"


def test_infer_type_bool_before_int_and_timestamps() -> None:
    assert [infer_type(v) for v in (True, 0, 2**70, 1.5, "x", [1], {"a": 1})] == [
        "boolean", "integer", "float", "float", "varchar", "varchar", "varchar"]
    assert infer_type("2026-03-29T04:00:58.120Z") == "timestamp"
    assert infer_type("Fri, 18 Oct 2019 17:00:00 +0000") == "timestamp"  # Twilio's dates
    assert infer_type("2026-03-29") == "varchar" and infer_type("2026-03-29T04:00:58") == "varchar"  # no zone


def test_coerce_keeps_the_first_type() -> None:
    assert coerce("12", "integer") == 12 and coerce(2.0, "integer") == 2 and coerce(2.5, "integer") is None
    assert coerce(True, "integer") == 1 and coerce("abc", "integer") is None
    assert coerce(3, "float") == 3.0 and coerce(True, "float") is None
    assert coerce("TRUE", "boolean") is True and coerce(1, "boolean") is None
    assert coerce(False, "varchar") == "false" and coerce({"a": [1]}, "varchar") == '{"a":[1]}'
    assert coerce("x" * 600, "varchar") == "x" * MAX_VARCHAR
    ts = coerce("2026-03-29T06:00:58+02:00", "timestamp")
    assert ts == datetime(2026, 3, 29, 4, 0, 58, tzinfo=UTC) and ts.tzinfo == UTC
    assert coerce("yesterday", "timestamp") is None and parse_timestamp("Fri, 99 Oct 2019 17:00:00 +0000") is None


def test_bad_identifiers() -> None:
    for bad in ("A", "a-b", "", "a" * 64, "1a", 'a"'):
        with pytest.raises(ValueError):
            check_identifier(bad)


LOADED = datetime(2026, 1, 1, tzinfo=UTC)


def test_track_message_rows() -> None:
    msg = {"type": "track", "messageId": "m1", "userId": 42, "event": "Order Completed",
           "properties": {"orderId": "o1", "event": "x", "total": {"amountCents": 5}},
           "context": {"library": {"name": "analytics-python"}}, "receivedAt": "2026-03-29T04:00:58.120Z",
           "timestamp": "2026-03-29T04:00:58.000Z", "sentAt": None}  # fmt: skip
    (t1, tracks), (t2, event) = message_rows(msg, LOADED)
    assert (t1, t2) == ("tracks", "order_completed")
    assert tracks == {"id": "m1", "user_id": 42, "received_at": "2026-03-29T04:00:58.120Z",
                      "timestamp": "2026-03-29T04:00:58.000Z", "uuid_ts": LOADED,
                      "context_library_name": "analytics-python", "event": "order_completed",
                      "event_text": "Order Completed"}  # fmt: skip
    assert event == {**tracks, "order_id": "o1", "property_event": "x", "total_amount_cents": 5}


def test_other_message_types() -> None:
    base = {"messageId": "m", "anonymousId": "a"}
    assert message_rows({**base, "type": "identify", "traits": {"firstName": "Ada"}}, LOADED)[0][1]["first_name"] == "Ada"
    assert [t for t, _ in message_rows({**base, "type": "identify", "userId": "u"}, LOADED)] == ["identifies", "users"]
    assert message_rows({**base, "type": "identify", "userId": "u", "traits": {"id": "t"}}, LOADED)[1][1] == {
        "id": "u", "trait_id": "t"}
    assert message_rows({**base, "type": "page", "name": "Home", "properties": {"url": "u"}}, LOADED)[0][1]["url"] == "u"
    assert message_rows({**base, "type": "screen", "name": "S"}, LOADED)[0][0] == "screens"
    assert message_rows({**base, "type": "group", "groupId": "g"}, LOADED)[0][1]["group_id"] == "g"
    assert message_rows({**base, "type": "alias", "previousId": "p"}, LOADED)[0][1]["previous_id"] == "p"
    assert message_rows({**base, "type": "track"}, LOADED) == []  # no event name
    assert message_rows({"type": "track", "event": "E"}, LOADED) == []  # no messageId
    assert message_rows({**base, "type": "unknown"}, LOADED) == []


def test_event_streams_event_uses_the_segment_sink_mapping() -> None:
    doc = {"id": "EZ1", "type": "com.twilio.messaging.message.delivered", "time": "2026-03-29T04:00:58.120Z",
           "data": {"to": "+1 (415) 555-0100", "messageSid": "SM1"}}  # fmt: skip
    msg = event_message(doc, [("to",)], 1_774_756_858_500)
    assert msg["event"] == "com.twilio.messaging.message.delivered" and msg["messageId"] == "EZ1"
    assert msg["context"]["externalIds"][0]["id"] == "+14155550100" and msg["anonymousId"]
    assert msg["receivedAt"] == datetime(2026, 3, 29, 4, 0, 58, 500000, tzinfo=UTC)
    bare = event_message(doc, [], 0)  # no identity field: loaded without anonymous_id
    assert "anonymousId" not in bare and "externalIds" not in bare["context"]
    _, (table, row) = message_rows(msg, LOADED)
    assert table == "com_twilio_messaging_message_delivered" and row["message_sid"] == "SM1"


def test_typed_rows_converts_to_the_columns_types() -> None:
    from eventstreams.warehouse.columns import Column, typed_rows

    cols = [Column("id", "varchar"), Column("num_segments", "integer"), Column("date_sent", "timestamp")]
    rows = [{"id": "SM1", "num_segments": "2", "date_sent": "Fri, 18 Oct 2019 17:00:00 +0000", "extra": 1},
            {"id": "SM2"}]  # fmt: skip
    assert typed_rows(cols, rows) == [
        {"id": "SM1", "num_segments": 2, "date_sent": datetime(2019, 10, 18, 17, tzinfo=UTC)}, {"id": "SM2"}]
