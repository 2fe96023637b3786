"""Per-sink throttle: Twilio's 100/s cap, 0.99 decay, 5-minute recovery."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstreams.delivery.throttle import Throttle

T0 = 1_000.0


def test_healthy_sink_is_unlimited() -> None:
    throttle = Throttle()
    assert throttle.current_rate(T0) is None
    assert not throttle.is_throttled(T0)
    assert throttle.acquire(1_000_000, T0) == 0.0
    assert throttle.acquire(1_000_000, T0) == 0.0


def test_first_error_caps_at_100_then_decays_by_one_percent() -> None:
    throttle = Throttle()
    throttle.record_error(T0)
    assert throttle.current_rate(T0) == 100.0
    throttle.record_error(T0 + 1)
    assert throttle.current_rate(T0 + 1) == pytest.approx(99.0)
    throttle.record_error(T0 + 2)
    assert throttle.current_rate(T0 + 2) == pytest.approx(98.01)
    assert throttle.error_count == 3


def test_cap_never_drops_below_floor() -> None:
    throttle = Throttle()
    for i in range(2_000):  # 100 * 0.99**2000 would be ~2e-7
        throttle.record_error(T0 + i * 0.01)
    assert throttle.current_rate(T0 + 20) == 1.0


def test_cap_lifts_after_five_quiet_minutes() -> None:
    throttle = Throttle()
    throttle.record_error(T0)
    throttle.record_error(T0 + 10)
    assert throttle.current_rate(T0 + 10 + 299.9) == pytest.approx(99.0)
    assert throttle.current_rate(T0 + 10 + 300) is None
    assert throttle.acquire(10_000, T0 + 10 + 300) == 0.0


def test_each_error_restarts_the_quiet_period() -> None:
    throttle = Throttle()
    throttle.record_error(T0)
    throttle.record_error(T0 + 200)
    assert throttle.is_throttled(T0 + 400)
    assert not throttle.is_throttled(T0 + 500)


def test_successes_do_not_lift_the_cap_early() -> None:
    throttle = Throttle()
    throttle.record_error(T0)
    for i in range(100):
        throttle.record_success(T0 + 1 + i)
    assert throttle.current_rate(T0 + 150) == 100.0
    throttle.record_success(T0 + 301)
    assert throttle.current_rate(T0 + 301) is None
    assert throttle.error_count == 0


def test_new_error_after_recovery_restarts_at_100() -> None:
    throttle = Throttle()
    throttle.record_error(T0)
    throttle.record_error(T0 + 1)  # 99
    throttle.record_error(T0 + 1000)  # long after the quiet period
    assert throttle.current_rate(T0 + 1000) == 100.0
    assert throttle.error_count == 1


def test_out_of_order_error_report_does_not_shorten_quiet_period() -> None:
    throttle = Throttle()
    throttle.record_error(T0 + 100)
    throttle.record_error(T0)  # a late report from a slower worker
    assert throttle.is_throttled(T0 + 399)


def test_token_bucket_waits() -> None:
    throttle = Throttle()
    throttle.record_error(T0)
    # the bucket starts empty after an overload signal: no burst
    assert throttle.acquire(1, T0) == pytest.approx(0.01)
    # reservations queue behind each other
    assert throttle.acquire(100, T0) == pytest.approx(1.01)
    # half a second later, 50 tokens have been earned towards the debt
    assert throttle.acquire(0, T0 + 0.5) == 0.0
    assert throttle.acquire(1, T0 + 0.5) == pytest.approx(0.52)


def test_sustained_throughput_matches_cap() -> None:
    throttle = Throttle()
    throttle.record_error(T0)
    now = T0
    for _ in range(1_000):
        now += throttle.acquire(1, now)
    assert now - T0 == pytest.approx(10.0, rel=1e-6)


def test_throughput_follows_decayed_cap() -> None:
    throttle = Throttle()
    throttle.record_error(T0)
    throttle.record_error(T0)  # 99/s
    now = T0
    for _ in range(99):
        now += throttle.acquire(10, now)
    assert now - T0 == pytest.approx(10.0, rel=1e-6)


def test_configured_max_rate_applies_without_errors_and_allows_a_burst() -> None:
    throttle = Throttle(max_rate=10.0)
    assert throttle.current_rate(T0) == 10.0
    assert throttle.acquire(10, T0) == 0.0  # one second's burst
    assert throttle.acquire(1, T0) == pytest.approx(0.1)


def test_error_cap_combines_with_configured_max() -> None:
    low = Throttle(max_rate=10.0)
    low.record_error(T0)
    assert low.current_rate(T0) == 10.0
    high = Throttle(max_rate=500.0)
    high.record_error(T0)
    assert high.current_rate(T0) == 100.0
    assert high.current_rate(T0 + 300) == 500.0


def test_clock_going_backwards_grants_nothing() -> None:
    throttle = Throttle()
    throttle.record_error(T0)
    assert throttle.acquire(100, T0 + 1) == 0.0  # 100 tokens earned in 1 s
    wait = throttle.acquire(100, T0 + 0.5)  # clock stepped back
    assert wait >= 1.0 - 1e-9


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_rate": 0.0},
        {"throttled_rate": 0.0},
        {"min_rate": -1.0},
        {"decrease_factor": 0.0},
        {"decrease_factor": 1.5},
        {"quiet_period": -1.0},
        {"burst_seconds": 0.0},
    ],
)
def test_invalid_configuration(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Throttle(**kwargs)


def test_negative_acquire_rejected() -> None:
    with pytest.raises(ValueError):
        Throttle().acquire(-1, T0)


@given(
    steps=st.lists(
        st.tuples(st.floats(min_value=0, max_value=0.5), st.integers(min_value=1, max_value=40)),
        min_size=1,
        max_size=200,
    )
)
def test_never_exceeds_cap(steps: list[tuple[float, int]]) -> None:
    """Events sent by any time s never exceed rate * s (bucket starts empty)."""
    throttle = Throttle()
    throttle.record_error(0.0)
    now = 0.0
    sends: list[tuple[float, int]] = []
    for dt, n in steps:
        now += dt
        sends.append((now + throttle.acquire(n, now), n))
    for s, _ in sends:
        sent_by_s = sum(n for t, n in sends if t <= s)
        assert sent_by_s <= 100.0 * s + 1e-6
