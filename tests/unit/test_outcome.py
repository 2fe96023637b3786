"""Outcome vocabulary: remote text is escaped and bounded before it is stored or logged (finding 8)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstreams import outcome as outcome_module
from eventstreams.outcome import (
    EXCERPT_BYTES,
    EXCERPT_LIMIT,
    Outcome,
    OutcomeKind,
    bound,
    classify_http,
    escape_controls,
)
from eventstreams.sinks import http

LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("tab\there", "tab\\there"),
        ("nul\x00", "nul\\x00"),
        ("esc\x1b[31m", "esc\\x1b[31m"),
        ("del\x7f", "del\\x7f"),
        ("nel\x85", "nel\\x85"),
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("plain text, ünïcode ✓", "plain text, ünïcode ✓"),
    ],
)
def test_escape_controls(raw: str, escaped: str) -> None:
    assert escape_controls(raw) == escaped


@given(st.text())
def test_escaped_text_is_one_printable_line(text: str) -> None:
    out = escape_controls(text)
    assert not any(c in out for c in LINE_BREAKS)
    assert all(not (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) for c in out)
    assert escape_controls(out) == out  # idempotent: bounding twice changes nothing
    assert len(bound(text)) <= EXCERPT_LIMIT


def test_response_bodies_and_messages_are_escaped() -> None:
    forged = b"error\nINFO eventstreams.delivery delivered 100 events\r\n"
    outcome = classify_http(500, {}, forged)
    assert outcome.message == "error\\nINFO eventstreams.delivery delivered 100 events"
    assert "\n" not in outcome.describe()
    assert Outcome.connect_error("remote said: a\nb").message == "remote said: a\\nb"
    assert Outcome(OutcomeKind.HTTP_STATUS, status=429, retry_after="1\r\nX: y").retry_after == "1\\r\\nX: y"


def test_a_forged_line_stays_inside_one_log_record(caplog: pytest.LogCaptureFixture) -> None:
    outcome = classify_http(502, {}, b"bad gateway\n2026-01-01 INFO forged")
    with caplog.at_level(logging.INFO):
        logging.getLogger("eventstreams.test").warning("delivery failed: %s", outcome.describe())
    assert caplog.text.count("\n") == 1


def test_long_messages_are_bounded_after_escaping() -> None:
    outcome = Outcome.internal("\n" * EXCERPT_LIMIT)
    assert len(outcome.message) == EXCERPT_LIMIT and outcome.message.endswith("…")


def test_refused_is_91307_and_not_retried() -> None:
    refused = Outcome.refused("destination refused: host 'x' is not a public address")
    assert refused.kind is OutcomeKind.CONNECT_ERROR and refused.code == 91307 and refused.retryable is False


def test_a_message_is_bounded_once_and_an_empty_one_not_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counting(text: str) -> str:
        calls.append(text)
        return bound(text)

    monkeypatch.setattr(outcome_module, "bound", counting)
    failed = classify_http(500, {}, b"oops\n" * 1000)
    assert len(calls) == 1 and failed.message.startswith("oops\\noops") and len(failed.message) == EXCERPT_LIMIT
    calls.clear()
    assert Outcome.success(200).message == "" and classify_http(204).message == ""
    assert calls == []


def test_the_client_reads_only_what_an_excerpt_can_keep() -> None:
    # UTF-8 needs at most 4 bytes a character: reading more than that is thrown away
    assert http.EXCERPT_BYTES == EXCERPT_BYTES == EXCERPT_LIMIT * 4
    body = ("é" * EXCERPT_BYTES).encode()
    assert len(classify_http(502, {}, body).message) == EXCERPT_LIMIT
