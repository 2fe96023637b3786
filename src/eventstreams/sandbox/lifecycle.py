"""The status clock (being written): moves messages and calls through their statuses,
POSTs signed status callbacks and publishes the matching Event Streams events."""

from __future__ import annotations

import zlib

from .behaviour import Behaviour

_UNDELIVERED_CODES = (30003, 30005, 30006, 30007)


def message_outcome(b: Behaviour, to: str, sid: str) -> str:
    """The final status a new message will reach: ``delivered``, ``undelivered:30003``, ``failed:30008``…
    Reproducible from the SID, so a rerun with the same data ends the same way."""
    rule = b.rule_for(to)
    if rule is not None and rule.status in ("delivered", "undelivered", "failed"):
        default = {"undelivered": 30003, "failed": 30008}.get(rule.status)
        code = rule.error_code or default
        return rule.status + (f":{code}" if code else "")
    draw = (zlib.crc32(sid.encode()) % 10_000) / 10_000
    if draw < b.failure_ratio:
        return f"undelivered:{_UNDELIVERED_CODES[zlib.crc32(sid[::-1].encode()) % len(_UNDELIVERED_CODES)]}"
    return "delivered"


def call_outcome(b: Behaviour, to: str, sid: str) -> str:
    """The final status a new call will reach: ``completed``, ``busy``, ``no-answer``, ``failed``, ``canceled``."""
    rule = b.rule_for(to)
    if rule is not None and rule.status in ("completed", "busy", "no-answer", "failed", "canceled"):
        return rule.status
    draw = (zlib.crc32(sid.encode()) % 10_000) / 10_000
    return "no-answer" if draw < b.failure_ratio else "completed"
