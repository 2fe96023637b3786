"""Time in one place, so tests can move it."""

from __future__ import annotations

import time
from datetime import UTC, datetime


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
    """Render a stored ISO date the way the 2010-04-01 API does."""
    d = datetime.strptime(iso_value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return d.strftime("%a, %d %b %Y %H:%M:%S +0000")
