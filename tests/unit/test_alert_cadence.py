"""Twilio's alert cadence as a pure rule (delivery/alerts.py): the first error
alerts; later ones are grouped until 20 minutes pass or the count reaches 10,
100, 1,000, ..."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventstreams.delivery.alerts import AlertState, alert_for, next_alert_state
from eventstreams.store.records import ErrorReport

MINUTE = 60_000
EVERY = 20 * MINUTE
T0 = 1_900_000_000_000


def run(steps: list[tuple[int, int]]) -> list[tuple[bool, AlertState]]:
    state, out = AlertState(), []
    for count, at in steps:
        state, fire = next_alert_state(state, count, at, EVERY)
        out.append((fire, state))
    return out


def test_the_documented_cadence() -> None:
    steps = [
        (1, T0),  # first error: alert
        (3, T0 + MINUTE),  # grouped
        (5, T0 + 2 * MINUTE),  # 9 in total
        (1, T0 + 3 * MINUTE),  # the 10th: alert
        (50, T0 + 4 * MINUTE),  # 60, within 20 minutes
        (1, T0 + 3 * MINUTE + EVERY),  # 20 minutes after the last alert: alert
        (40, T0 + 3 * MINUTE + EVERY + MINUTE),  # crosses 100: alert
        (800, T0 + 3 * MINUTE + EVERY + 2 * MINUTE),  # 901
        (100, T0 + 3 * MINUTE + EVERY + 3 * MINUTE),  # crosses 1,000: alert
    ]
    fires = [fire for fire, _ in run(steps)]
    assert fires == [True, False, False, True, False, True, True, False, True]
    *_, (_, last) = run(steps)
    assert last == AlertState(total_errors=1001, errors_since_alert=0, last_alert_at=steps[-1][1], next_threshold=10_000)


def test_grouped_errors_accumulate_until_the_alert() -> None:
    (_, s1), (_, s2) = run([(1, T0), (4, T0 + 1)])
    assert (s1.errors_since_alert, s2.errors_since_alert, s2.total_errors) == (0, 4, 5)
    assert s2.last_alert_at == T0  # only an alert moves it


def test_one_big_chunk_skips_thresholds_it_passed() -> None:
    state, fire = next_alert_state(AlertState(total_errors=5, last_alert_at=T0, next_threshold=10), 2_000, T0 + 1, EVERY)
    assert fire and state.next_threshold == 10_000


def test_alert_text_and_level() -> None:
    err = ErrorReport("AC1", "DG1", 3, 91306, 503, "HTTP 503: down", "https://x.example/h")
    row = alert_for(err, since=3, total=12, now_ms=T0, sid="NO1")
    assert row.alert_text == "Sink DG1: delivery error 91306 (HTTP 503): HTTP 503: down [3 error(s) since the last alert, 12 in total]"
    assert (row.log_level, row.error_count, row.created_at) == ("error", 3, T0)
    assert alert_for(ErrorReport("AC1", "DG1", 1, 91302, None, None, None), 1, 1, T0, "NO2").log_level == "warning"


@given(st.lists(st.tuples(st.integers(1, 5_000), st.integers(0, 3 * EVERY)), min_size=1, max_size=40))
def test_properties(raw: list[tuple[int, int]]) -> None:
    at, steps = T0, []
    for count, gap in raw:
        at += gap
        steps.append((count, at))
    state = AlertState()
    total = 0
    since = 0
    for count, now in steps:
        before = state
        state, fire = next_alert_state(state, count, now, EVERY)
        total += count
        since += count
        assert state.total_errors == total
        expected = before.total_errors == 0 or now - before.last_alert_at >= EVERY or total >= before.next_threshold
        assert fire == expected
        if fire:
            since = 0
            assert state.last_alert_at == now and state.next_threshold > total
        else:
            assert state.last_alert_at == before.last_alert_at and state.next_threshold == before.next_threshold
        assert state.errors_since_alert == since
        assert state.next_threshold >= 10 and str(state.next_threshold).rstrip("0") == "1"  # a power of ten
