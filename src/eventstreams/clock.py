"""Time in one place, so tests can move it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache


def now() -> float:
    return time.time()


def iso(ts: float) -> str:
    """ISO 8601 UTC with second precision, as Twilio's v1 APIs render dates."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(ts: float) -> str:
    """ISO 8601 UTC with milliseconds, as CloudEvents ``time`` is rendered."""
    d = datetime.fromtimestamp(ts, UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def rfc2822(iso_value: str) -> str:
    """Render a stored ISO date (``YYYY-MM-DDTHH:MM:SSZ``) the way the 2010-04-01 API does. Lists render
    three per record, so the day part is cached and the time copied (strptime costs ~6 µs)."""
    if len(iso_value) == 20 and iso_value[10] == "T" and iso_value[19] == "Z":
        return f"{_rfc2822_day(iso_value[:10])} {iso_value[11:19]} +0000"
    d = datetime.strptime(iso_value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return d.strftime("%a, %d %b %Y %H:%M:%S +0000")


@lru_cache(maxsize=4096)
def _rfc2822_day(day: str) -> str:
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).strftime("%a, %d %b %Y")
