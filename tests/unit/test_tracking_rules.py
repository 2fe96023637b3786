"""Segment's per-message rules (tracking/rules.py), pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eventstreams.tracking import rules

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("item", "reason"),
    [({"type": "track", "event": "x"}, "no_user_anon_id"), ({"type": "track", "userId": "1"}, "no_event"),
     ({"type": "track", "userId": "1", "event": "  "}, "no_event"), ({"type": "group", "userId": "1"}, "no_group_id"),
     ({"type": "alias", "userId": "1"}, "no_user_or_previous_id"), ({"type": "nope", "userId": "1"}, "invalid_type"),
     ({"type": "track", "userId": "1", "event": "x", "messageId": "m" * 100}, "invalid_message_id"),
     ({"type": "track", "userId": "1", "event": "x", "timestamp": "soon"}, "invalid_timestamp"),
     ({"type": "track", "userId": "1", "event": "x", "properties": {"p": "x" * 33_000}}, "message_too_large"),
     ({"type": "track", "userId": True, "event": "x"}, "no_user_anon_id"), ("text", "not_an_object")],
)  # fmt: skip
def test_rejections(item: object, reason: str) -> None:
    assert rules.check(item, NOW).reason == reason


def test_accepted_message_is_enriched() -> None:
    c = rules.check({"type": "identify", "anonymousId": "a", "writeKey": "secret"}, NOW)
    assert c.reason is None and c.message_id.startswith("api-") and c.message["messageId"] == c.message_id
    assert c.message["receivedAt"] == "2026-03-01T12:00:00.000Z" == c.message["timestamp"]
    assert "writeKey" not in c.message
    numeric = rules.check({"type": "track", "userId": 42, "event": "x"}, NOW)
    assert numeric.reason is None  # Segment accepts numeric ids


def test_clock_skew_correction() -> None:
    item = {"type": "track", "userId": "1", "event": "x", "timestamp": "2026-03-01T13:00:00Z"}
    c = rules.check(item, NOW, sent_at="2026-03-01T13:30:00Z")  # the sender's clock is 90 min fast
    assert c.message["timestamp"] == "2026-03-01T11:30:00.000Z"
    assert c.message["originalTimestamp"] == "2026-03-01T13:00:00Z" and c.message["sentAt"].startswith("2026-03-01T13:30")
    far = rules.check({**item, "timestamp": "0001-01-01T00:00:00Z"}, NOW, sent_at="9999-12-31T00:00:00Z")
    assert far.reason == "invalid_timestamp"  # the correction would leave datetime's range


def test_batch_merge_item_wins() -> None:
    item = {"context": {"ip": "1", "app": {"v": 2}}, "integrations": {"A": True}}
    out = rules.merge_batch(item, {"ip": "2", "app": {"name": "x"}, "os": "y"}, {"All": False, "A": False})
    assert out["context"] == {"ip": "1", "app": {"name": "x", "v": 2}, "os": "y"}
    assert out["integrations"] == {"All": False, "A": True}
    assert rules.merge_batch({}, {"ip": "2"}, None) == {"context": {"ip": "2"}}
