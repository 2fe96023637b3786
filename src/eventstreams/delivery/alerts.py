"""Twilio's alert cadence, as a pure rule: a sink's first delivery error
alerts; later errors are grouped into the next alert, raised once 20 minutes
(``every_ms``) have passed since the last one or when the sink's error count
reaches 10, 100, 1,000, ... The store keeps the state row and calls this in
the same transaction."""

from __future__ import annotations

from dataclasses import dataclass

from ..store.records import AlertRow, ErrorReport

WARNING_CODES = (91302, 91304)  # reported as warnings, not errors


@dataclass(frozen=True, slots=True)
class AlertState:
    total_errors: int = 0
    errors_since_alert: int = 0
    last_alert_at: int = 0  # epoch ms
    next_threshold: int = 10


def next_alert_state(state: AlertState, count: int, now_ms: int, every_ms: int) -> tuple[AlertState, bool]:
    """The state after ``count`` more errors at ``now_ms``, and whether they raise an alert."""
    total = state.total_errors + count
    since = state.errors_since_alert + count
    threshold = state.next_threshold
    fire = state.total_errors == 0 or now_ms - state.last_alert_at >= every_ms or total >= threshold
    if not fire:
        return AlertState(total, since, state.last_alert_at, threshold), False
    while threshold <= total:
        threshold *= 10
    return AlertState(total, 0, now_ms, threshold), True


def alert_for(err: ErrorReport, since: int, total: int, now_ms: int, sid: str) -> AlertRow:
    """The alert raised for ``err`` after ``since`` errors since the last alert (``total`` in all)."""
    status = f" (HTTP {err.http_status})" if err.http_status is not None else ""
    text = (
        f"Sink {err.sink_sid}: delivery error {err.code}{status}: {err.detail or ''}".strip()
        + f" [{since} error(s) since the last alert, {total} in total]"
    )
    return AlertRow(
        sid=sid,
        account_sid=err.account_sid,
        sink_sid=err.sink_sid,
        error_code=err.code,
        log_level="warning" if err.code in WARNING_CODES else "error",
        alert_text=text[:2000],
        http_status=err.http_status,
        response_body=err.detail,
        request_url=err.request_url,
        error_count=since,
        created_at=now_ms,
    )
