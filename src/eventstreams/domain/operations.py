"""Delivery operations the HTTP API and the CLI share: dead letters, the
delivery log, replay, alerts, signing secrets and sink test events.

Each is one call here; ``api/delivery.py`` and ``cli/main.py`` only parse
their input and render what comes back, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from .. import clock
from ..catalog import SCHEMA_HOST
from ..crypto import Box
from ..errors import bad_request, not_found
from ..sinks import registry as sink_types
from ..store.base import Store
from ..store.records import AlertRow, DeadLetterRow, LogRow, NewEvent, Page, PageQuery
from .accounts import Principal
from .control import ControlPlane, Sink

LOG_LEVELS = ("error", "warning", "notice", "debug")
TEST_EVENT_TYPE = "com.twilio.eventstreams.test-event"
_DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# hh:mm, optional :ss and fraction, optional Z or offset (as datetime.fromisoformat reads them)
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?")


def parse_instant(name: str, value: str | None) -> int | None:
    """An ISO 8601 time with a UTC offset, in ms since the epoch (``None`` stays ``None``)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{name} must be an ISO 8601 time (e.g. 2026-01-01T00:00:00Z)") from None
    if parsed.tzinfo is None:
        raise bad_request(f"{name} must carry a UTC offset")
    return int(parsed.timestamp() * 1000)


@dataclass(frozen=True)
class ReplayRequest:
    """What to deliver again to one sink: its dead letters (optionally only some events), or stored
    events chosen by id and/or a received-at range (``since`` inclusive, ``until`` exclusive, ms)."""

    dead_letters: bool = False
    event_ids: tuple[str, ...] = ()
    since: int | None = None
    until: int | None = None


@dataclass(frozen=True)
class AlertFilter:
    """Twilio's Monitor Alerts filters; ``end`` is exclusive, in ms like ``created_at``."""

    level: str | None = None
    start: int | None = None
    end: int | None = None


def dead_letter_view(d: DeadLetterRow) -> dict[str, Any]:
    return {
        "id": d.id,
        "sink_sid": d.sink_sid,
        "event_id": d.event_id,
        "type": d.type,
        "attempts": d.attempts,
        "error_code": d.last_code,
        "error": d.last_error,
        "date_created": clock.iso(d.dead_at / 1000),
    }


def log_view(g: LogRow) -> dict[str, Any]:
    return {
        "id": g.id,
        "sink_sid": g.sink_sid,
        "date_created": clock.iso(g.at / 1000),
        "outcome": g.outcome,
        "event_count": g.event_count,
        "event_ids": orjson.loads(g.event_ids),
        "error_code": g.code,
        "http_status": g.http_status,
        "detail": g.detail,
    }


def alert_view(a: AlertRow, base: str, method: str | None, full: bool = True) -> dict[str, Any]:
    """Monitor Alerts resource shape (monitor.twilio.com/v1/Alerts). As Twilio,
    the response body is only in a fetched alert (``full``), not in lists."""
    date = clock.iso(a.created_at / 1000)
    return {
        "account_sid": a.account_sid,
        "alert_text": a.alert_text,
        "api_version": "v1",
        "date_created": date,
        "date_generated": date,
        "date_updated": date,
        "error_code": str(a.error_code),
        "log_level": a.log_level,
        "more_info": f"https://www.twilio.com/docs/errors/{a.error_code}",
        "request_method": method,
        "request_url": a.request_url,
        "request_variables": None,
        "resource_sid": a.sink_sid,
        "response_body": a.response_body if full else None,
        "response_headers": None,
        "sid": a.sid,
        "url": f"{base}/v1/Alerts/{a.sid}",
        "request_headers": None,
        "service_sid": None,
    }


class Operations:
    """Sinks with new work are woken by the store's wake channel when the transaction commits."""

    def __init__(self, store: Store, box: Box, control: ControlPlane) -> None:
        self.store = store
        self.box = box
        self.control = control

    async def dead_letters(self, p: Principal, sink_sid: str | None, q: PageQuery) -> tuple[Sink | None, Page]:
        """One page of dead letters, of one sink (checked to be the caller's) or of the whole account."""
        sink = await self.control.get_sink(p, sink_sid) if sink_sid is not None else None
        page = await self.store.dead_letters.list(p.account.sid, sink.row.sid if sink else None, q)
        return sink, page

    async def delivery_log(self, p: Principal, sink_sid: str, q: PageQuery) -> tuple[Sink, Page]:
        sink = await self.control.get_sink(p, sink_sid)
        return sink, await self.store.delivery_log.list(p.account.sid, sink.row.sid, q)

    async def replay(self, p: Principal, sink_sid: str, what: ReplayRequest) -> tuple[Sink, int]:
        """Re-enqueue to one sink; returns the sink and how many deliveries were created."""
        sink = await self.control.get_sink(p, sink_sid)
        ids = list(what.event_ids) or None
        now_ms = int(clock.now() * 1000)
        if what.dead_letters:
            if what.since is not None or what.until is not None:
                raise bad_request("Since/Until select stored events; they cannot be combined with DeadLetters=true")
            n, _ = await self.store.deliveries.replay_dead_letters(p.account.sid, sink.row.sid, ids, now_ms)
        else:
            if ids is None and what.since is None and what.until is None:
                raise bad_request("Say what to replay: DeadLetters=true, EventId (repeatable) or Since/Until")
            n = await self.store.deliveries.replay_events(
                p.account.sid, sink.row.sid, ids, what.since, what.until, now_ms
            )
        return sink, n

    async def signing_secret(self, p: Principal, sink_sid: str) -> tuple[Sink, str]:
        sink = await self.control.get_sink(p, sink_sid)
        return sink, self.box.open(sink.row.signing_secret_sealed)

    async def test_sink(self, p: Principal, sink_sid: str) -> Sink:
        """Sink Test: record a test id and store com.twilio.eventstreams.test-event for this sink only.

        Like Twilio, the event id is the account SID and the source is "Sink".
        """
        sink, test_id = await self.control.test_sink(p, sink_sid)
        now = clock.now()
        event = {
            "specversion": "1.0",
            "type": TEST_EVENT_TYPE,
            "source": "Sink",
            "id": p.account.sid,
            "dataschema": f"{SCHEMA_HOST}/EventStreams.TestSink/1.json",
            "datacontenttype": "application/json",
            "time": clock.iso_ms(now),
            "data": {"test_id": test_id},
        }
        row = NewEvent(p.account.sid, TEST_EVENT_TYPE, 1, clock.iso_ms(now), orjson.dumps(event).decode())
        await self.store.deliveries.enqueue_for_sink(p.account.sid, sink.row.sid, [row], int(now * 1000))
        return sink

    # -- alerts
    async def alerts(self, p: Principal, f: AlertFilter, q: PageQuery) -> tuple[Page, dict[str, str | None]]:
        """A page of alerts and each alert sink's request method."""
        page = await self.store.alerts.list(p.account.sid, q, f.level, f.start, f.end)
        methods = {s: await self.sink_request_method(p.account.sid, s) for s in {a.sink_sid for a in page.items}}
        return page, methods

    async def alert(self, p: Principal, sid: str) -> tuple[AlertRow, str | None]:
        row = await self.store.alerts.get(p.account.sid, sid)
        if row is None:
            raise not_found(f"Alert {sid} was not found")
        return row, await self.sink_request_method(p.account.sid, row.sink_sid)

    async def sink_request_method(self, account_sid: str, sink_sid: str) -> str | None:
        return await sink_request_method(self.store, self.box, account_sid, sink_sid)


async def sink_request_method(store: Store, box: Box, account_sid: str, sink_sid: str) -> str | None:
    """``request_method`` for alerts of this sink; None once the sink is deleted (the method is not
    stored with the alert, and a sink's configuration cannot change, so the sink still tells it)."""
    row = await store.sinks.get(account_sid, sink_sid)
    if row is None:
        return None
    return sink_types.request_method(row.sink_type, orjson.loads(box.open(row.configuration_sealed)))


def alert_bound(name: str, value: str) -> tuple[int, int]:
    """(first ms, ms after the last) of the span a StartDate/EndDate value names:
    a whole day for YYYY-MM-DD, a second or minute for a time at that precision,
    the instant (to the ms) when fractional seconds are given. Times are GMT
    unless they carry an offset, as Twilio documents."""
    hint = f"{name} must be YYYY-MM-DD or an ISO 8601 time such as 2026-01-31T12:00:00Z (got {value[:40]!r})"
    text = value.upper()
    if _DATE.fullmatch(text):
        unit = _DAY_MS
    else:
        m = _DATETIME.fullmatch(text)
        if m is None:
            raise bad_request(hint)
        unit = 60_000 if m.group(1) is None else 1_000 if m.group(2) is None else 1
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:  # e.g. month 13, hour 25
        raise bad_request(hint) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    first = (parsed - _EPOCH) // timedelta(milliseconds=1)
    return first, first + unit


def alert_filter(level: str | None, start_raw: str | None, end_raw: str | None) -> AlertFilter:
    if level is not None and level not in LOG_LEVELS:
        raise bad_request(f"LogLevel must be one of {', '.join(LOG_LEVELS)} (got {level[:40]!r})")
    start = alert_bound("StartDate", start_raw)[0] if start_raw is not None else None
    end = alert_bound("EndDate", end_raw)[1] if end_raw is not None else None
    if start is not None and end is not None and start >= end:
        raise bad_request("StartDate must not be later than EndDate")
    return AlertFilter(level, start, end)
