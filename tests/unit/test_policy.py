"""Retry policy and outcome classification (pure; no clock, no sleeps)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstreams.delivery.policy import (
    EXCERPT_LIMIT,
    Action,
    Outcome,
    OutcomeKind,
    RetryPolicy,
    classify_http,
    error_code,
    is_retryable,
    is_throttle_signal,
    parse_retry_after,
)

HOUR = 3600.0
T0 = 1_700_000_000.0  # arbitrary epoch seconds
NO_JITTER = RetryPolicy(jitter=0.0)


# -- backoff -----------------------------------------------------------------------------------


def test_nominal_sequence_doubles_and_caps_at_300() -> None:
    policy = RetryPolicy()
    got = [policy.nominal_delay(n) for n in range(1, 13)]
    assert got == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]


def test_no_jitter_next_delay_is_exact() -> None:
    assert [NO_JITTER.next_delay(n) for n in (1, 2, 3, 9, 10, 50)] == [1, 2, 4, 256, 300, 300]


def test_jitter_stays_within_20_percent_and_actually_varies() -> None:
    policy = RetryPolicy()
    rng = random.Random(42)
    for attempt in range(1, 40):
        nominal = policy.nominal_delay(attempt)
        samples = [policy.next_delay(attempt, rng) for _ in range(200)]
        assert all(0.8 * nominal <= s <= 1.2 * nominal for s in samples)
        # both halves of the band are used: jitter is symmetric, not one-sided
        assert min(samples) < nominal < max(samples)
        assert max(samples) - min(samples) > 0.2 * nominal


def test_seeded_rng_is_reproducible() -> None:
    policy = RetryPolicy()
    a = [policy.next_delay(n, random.Random(7)) for n in range(1, 15)]
    b = [policy.next_delay(n, random.Random(7)) for n in range(1, 15)]
    assert a == b


@given(attempt=st.integers(min_value=1, max_value=10**9), seed=st.integers(0, 2**32))
def test_delay_bounded_for_any_attempt(attempt: int, seed: int) -> None:
    delay = RetryPolicy().next_delay(attempt, random.Random(seed))
    assert 0.8 <= delay <= 300 * 1.2


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().next_delay(0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"first_delay": 0},
        {"factor": 0.5},
        {"max_delay": 0.5},
        {"max_age": 0},
        {"jitter": 1.0},
        {"jitter": -0.1},
        {"max_retry_after": -1},
    ],
)
def test_invalid_policy_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


# -- classification ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "retried"),
    [
        (400, 91305, False),
        (401, 91305, False),
        (404, 91305, False),
        (408, 91305, False),  # Twilio: every 4xx except 429 is discarded
        (410, 91305, False),
        (429, 91302, True),
        (500, 91306, True),
        (502, 91306, True),
        (503, 91306, True),
        (599, 91306, True),
        (301, 91300, False),  # redirects are failures, not followed (documented choice)
        (304, 91300, False),
        (101, 91300, False),
    ],
)
def test_http_status_mapping(status: int, code: int, retried: bool) -> None:
    outcome = classify_http(status, {})
    assert outcome.kind is OutcomeKind.HTTP_STATUS
    assert outcome.status == status
    assert error_code(outcome) == code
    assert is_retryable(outcome) is retried


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_success(status: int) -> None:
    outcome = classify_http(status, {"Retry-After": "5"})
    assert outcome.kind is OutcomeKind.SUCCESS
    assert not is_retryable(outcome)
    with pytest.raises(ValueError):
        error_code(outcome)


@pytest.mark.parametrize(
    ("outcome", "code", "retried"),
    [
        (Outcome.timeout("5s elapsed"), 91308, True),
        (Outcome.connect_error("connection refused"), 91307, True),
        (Outcome.connect_error("Name or service not known"), 91307, True),
        (Outcome.tls_error("certificate verify failed"), 91307, True),
        (Outcome.internal("db hiccup"), 91304, True),
        (Outcome.dropped("payload too large"), 91303, False),
    ],
)
def test_transport_outcomes(outcome: Outcome, code: int, retried: bool) -> None:
    assert error_code(outcome) == code
    assert is_retryable(outcome) is retried


def test_throttle_signals() -> None:
    assert is_throttle_signal(classify_http(429, {}))
    assert is_throttle_signal(classify_http(503, {}))
    assert is_throttle_signal(Outcome.timeout())
    assert not is_throttle_signal(classify_http(404, {}))
    assert not is_throttle_signal(Outcome.connect_error())
    assert not is_throttle_signal(Outcome.success(200))


def test_retry_after_header_is_case_insensitive() -> None:
    assert classify_http(429, {"retry-after": "30"}).retry_after == "30"
    assert classify_http(503, {"RETRY-AFTER": "7"}).retry_after == "7"
    assert classify_http(503, {}).retry_after is None


def test_excerpt_is_bounded() -> None:
    long_body = b"x" * 100_000
    outcome = classify_http(500, {}, long_body)
    assert len(outcome.message) <= EXCERPT_LIMIT
    assert outcome.message.startswith("xxx")
    assert len(Outcome.internal("y" * 10_000).message) == EXCERPT_LIMIT
    # invalid UTF-8 does not raise
    assert classify_http(400, {}, b"\xff\xfebad").message.endswith("bad")


def test_http_status_outcome_requires_status() -> None:
    with pytest.raises(ValueError):
        Outcome(OutcomeKind.HTTP_STATUS)


# -- Retry-After parsing -----------------------------------------------------------------------


def test_parse_retry_after_seconds() -> None:
    assert parse_retry_after("120", T0) == 120.0
    assert parse_retry_after(" 5 ", T0) == 5.0
    assert parse_retry_after("0", T0) == 0.0


@pytest.mark.parametrize("value", [None, "", "   ", "-1", "1.5", "soon", "Wed, 99 Foo 2015", "\u00b2", "\u0661\u0662"])
def test_parse_retry_after_rejects_garbage(value: str | None) -> None:
    assert parse_retry_after(value, T0) is None


def test_parse_retry_after_http_date() -> None:
    when = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    header = format_datetime(when, usegmt=True)
    assert header == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after(header, when.timestamp() - 30) == pytest.approx(30.0)
    # a date in the past means "now", never negative
    assert parse_retry_after(header, when.timestamp() + 100) == 0.0


# -- decide ------------------------------------------------------------------------------------


def test_success_is_delivered() -> None:
    decision = RetryPolicy().decide(Outcome.success(200), 3, T0, T0 + 10)
    assert decision.action is Action.DELIVERED
    assert decision.error_code is None


def test_404_is_dead_lettered_immediately() -> None:
    decision = NO_JITTER.decide(classify_http(404, {}, b"no such hook"), 1, T0, T0)
    assert decision.is_dead_letter
    assert decision.retry_at is None
    assert decision.error_code == 91305
    assert decision.reason is not None
    assert "404" in decision.reason
    assert "no such hook" in decision.reason


def test_dropped_is_dead_lettered() -> None:
    decision = NO_JITTER.decide(Outcome.dropped("bad"), 1, T0, T0)
    assert decision.is_dead_letter
    assert decision.error_code == 91303


def test_503_is_retried_with_backoff() -> None:
    now = T0 + 100
    decision = NO_JITTER.decide(classify_http(503, {}), 4, T0, now)
    assert decision.is_retry
    assert decision.delay == 8.0
    assert decision.retry_at == now + 8.0
    assert decision.error_code == 91306


def test_jittered_retry_at_is_consistent_with_delay() -> None:
    now = T0 + 5
    decision = RetryPolicy().decide(Outcome.timeout(), 6, T0, now, random.Random(1))
    assert decision.is_retry
    assert decision.delay is not None
    assert decision.retry_at == now + decision.delay
    assert 32 * 0.8 <= decision.delay <= 32 * 1.2
    assert decision.error_code == 91308


def test_retry_after_overrides_when_larger() -> None:
    decision = NO_JITTER.decide(classify_http(429, {"Retry-After": "120"}), 1, T0, T0)
    assert decision.is_retry
    assert decision.retry_at == T0 + 120
    assert decision.error_code == 91302


def test_retry_after_ignored_when_smaller_than_backoff() -> None:
    decision = NO_JITTER.decide(classify_http(503, {"Retry-After": "1"}), 10, T0, T0)
    assert decision.retry_at == T0 + 300


def test_retry_after_http_date_is_resolved_against_now() -> None:
    now = T0 + 50
    header = format_datetime(datetime.fromtimestamp(now + 90, tz=UTC), usegmt=True)
    decision = NO_JITTER.decide(classify_http(503, {"Retry-After": header}), 1, T0, now)
    assert decision.retry_at == pytest.approx(now + 90)


def test_retry_after_is_capped() -> None:
    policy = RetryPolicy(jitter=0.0)
    assert policy.retry_after_cap == 1200
    decision = policy.decide(classify_http(429, {"Retry-After": "86400"}), 1, T0, T0)
    assert decision.retry_at == T0 + 1200
    custom = RetryPolicy(jitter=0.0, max_retry_after=60)
    assert custom.decide(classify_http(429, {"Retry-After": "86400"}), 1, T0, T0).retry_at == T0 + 60


def test_retry_after_on_404_does_not_make_it_retryable() -> None:
    decision = NO_JITTER.decide(classify_http(404, {"Retry-After": "10"}), 1, T0, T0)
    assert decision.is_dead_letter


def test_dead_letter_when_next_attempt_would_pass_4h() -> None:
    now = T0 + 4 * HOUR - 100  # next step is 300 s: would land after the deadline
    decision = NO_JITTER.decide(classify_http(503, {}), 60, T0, now)
    assert decision.is_dead_letter
    assert decision.reason == "retry window (4h) exhausted"
    assert decision.error_code == 91306


def test_retry_landing_exactly_on_deadline_is_allowed() -> None:
    now = T0 + 4 * HOUR - 300
    decision = NO_JITTER.decide(classify_http(503, {}), 60, T0, now)
    assert decision.is_retry
    assert decision.retry_at == T0 + 4 * HOUR


def test_retry_after_cannot_extend_past_window() -> None:
    now = T0 + 4 * HOUR - 600
    decision = NO_JITTER.decide(classify_http(429, {"Retry-After": "900"}), 2, T0, now)
    assert decision.is_dead_letter
    assert decision.reason == "retry window (4h) exhausted"


def test_already_expired_event_is_dead_lettered_even_for_short_delay() -> None:
    decision = NO_JITTER.decide(Outcome.connect_error(), 1, T0, T0 + 5 * HOUR)
    assert decision.is_dead_letter


def test_window_reason_follows_max_age() -> None:
    policy = RetryPolicy(max_age=1800, jitter=0.0)
    decision = policy.decide(classify_http(500, {}), 100, T0, T0 + 1799)
    assert decision.reason == "retry window (30m) exhausted"


def test_full_timeline_of_a_dead_sink() -> None:
    """Simulate a sink that always returns 503 from T0: retries stop at the 4 h mark."""
    policy = RetryPolicy()
    rng = random.Random(2024)
    now, attempt = T0, 1
    retry_times: list[float] = []
    while True:
        decision = policy.decide(classify_http(503, {}), attempt, T0, now, rng)
        if decision.action is Action.DEAD_LETTER:
            break
        assert decision.retry_at is not None
        assert decision.retry_at > now
        retry_times.append(decision.retry_at)
        now, attempt = decision.retry_at, attempt + 1
    assert decision.reason == "retry window (4h) exhausted"
    assert max(retry_times) <= T0 + 4 * HOUR
    # the last attempt happened within one (jittered) max step of the deadline
    assert now >= T0 + 4 * HOUR - 300 * 1.2
    # ~511 s of ramp-up, then ~13,900 s at ~300 s per step: roughly 55 attempts
    assert 45 <= attempt <= 70
