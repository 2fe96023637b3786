"""Schedules and durations of object sources (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eventstreams.objectsource import schedule


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("text", "seconds"), [("3h", 10800), ("90m", 5400), ("1d12h", 129600), ("60", 60),
                                                ("2d", 172800), (" 1H ", 3600)])  # fmt: skip
def test_intervals(text: str, seconds: int) -> None:
    s = schedule.parse(text)
    assert s.interval == seconds
    assert s.next_after(1000.0) == 1000.0 + seconds


def test_default_is_three_hours_and_manual_never_runs() -> None:
    assert schedule.parse(None).interval == 3 * 3600
    assert schedule.parse("").text == schedule.DEFAULT
    assert schedule.parse("manual").next_after(1000.0) is None


def test_cron_is_utc() -> None:
    s = schedule.parse("0 */3 * * *")
    assert s.next_after(_ts("2026-12-03T07:10:00")) == _ts("2026-12-03T09:00:00")
    assert schedule.parse("30 2 * * 1").next_after(_ts("2026-12-03T07:10:00")) == _ts("2026-12-07T02:30:00")


@pytest.mark.parametrize("text", ["5s", "59", "400d", "abc", "* * *", "61 * * * *", "3h foo", "\u0661h", "1e3"])
def test_bad_schedules_say_what_is_accepted(text: str) -> None:
    with pytest.raises(schedule.ScheduleError) as e:
        schedule.parse(text)
    assert repr(text.strip())[:20] in str(e.value) or "minute" in str(e.value) or "year" in str(e.value)


def test_durations() -> None:
    assert schedule.duration("3d") == 3 * 86400
    assert schedule.duration("0") == 0
    assert schedule.duration("12h30m") == 45000
    for bad in ("", "3 days", "-1h", "1.5h", "99999999999"):
        assert schedule.duration(bad) is None
