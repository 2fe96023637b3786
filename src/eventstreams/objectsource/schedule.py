"""When a source syncs (pure): ``manual``, an interval (``3h``, ``90m``, ``1d12h``; at least a minute) or
a cron expression (five fields, UTC, via croniter). Segment syncs every three hours; so does the default."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import CroniterBadDateError, croniter

DEFAULT = "3h"
MIN_INTERVAL = 60
_PART = re.compile(r"([0-9]+)([smhd])")
_DURATION = re.compile(r"(?:[0-9]{1,9}[smhd]){1,4}")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ScheduleError(ValueError):
    """The text is not a schedule; the message says what is."""


@dataclass(frozen=True)
class Schedule:
    text: str
    interval: int | None = None  # seconds; None with cron or manual
    cron: str | None = None

    def next_after(self, ts: float) -> float | None:
        """The next run after a run that started at ``ts``; None when manual (or a cron that never fires)."""
        if self.interval is not None:
            return ts + self.interval
        if self.cron is not None:
            try:
                nxt: datetime = croniter(self.cron, datetime.fromtimestamp(ts, UTC)).get_next(datetime)
            except CroniterBadDateError:  # valid fields that name no date (Feb 30): it never runs
                return None
            return nxt.timestamp()
        return None


def duration(text: str) -> int | None:
    """Seconds in ``90m``, ``3d``, ``1d12h``, a bare number of seconds, or None when it is none of those."""
    text = text.strip().lower()
    if text.isascii() and text.isdigit() and len(text) < 10:
        return int(text)
    if _DURATION.fullmatch(text):
        return sum(int(n) * _UNIT[u] for n, u in _PART.findall(text))
    return None


def parse(text: str | None) -> Schedule:
    raw = (text or DEFAULT).strip()
    lowered = raw.lower()
    if lowered == "manual":
        return Schedule("manual")
    seconds = duration(lowered)
    if seconds is not None:
        if seconds < MIN_INTERVAL:
            raise ScheduleError(f"Schedule {raw!r} is shorter than a minute")
        if seconds > 366 * 86400:
            raise ScheduleError(f"Schedule {raw!r} is longer than a year")
        return Schedule(lowered, interval=seconds)
    fields = raw.split()
    if len(fields) == 5 and croniter.is_valid(raw):
        return Schedule(" ".join(fields), cron=" ".join(fields))
    raise ScheduleError(
        f"Schedule {raw[:60]!r} is not 'manual', an interval such as '3h' or '90m' (at least a minute), or a "
        "five-field cron expression such as '0 */3 * * *'"
    )
