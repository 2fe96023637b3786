"""Handlers for the eventstreams extensions around delivery: publishing,
dead letters, replay, the delivery log, signing secrets and alerts
(shaped like Twilio's Monitor Alerts)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import clock
from ..delivery.service import alert_view, sink_request_method
from ..errors import TOO_LARGE, TwilioError, bad_request, not_found
from ..store.records import AlertRow, DeadLetterRow, LogRow
from .context import Services, auth
from .http import JSON, NUMBER, NUMBER_SID, PAGING, Params, form, page_meta, paging, query, read_body

_SINGLE = {"application/cloudevents+json", "application/json"}
_BATCH = "application/cloudevents-batch+json"


async def publish(request: Request) -> Response:
    svc, p = await auth(request)
    query(request)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in _SINGLE and ctype != _BATCH:
        raise TwilioError(
            20415,
            "Content-Type must be application/cloudevents+json, application/json or application/cloudevents-batch+json",
            415,
        )
    body = await read_body(request, svc.settings.publish_max_bytes)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}") from None
    if ctype == _BATCH and not isinstance(doc, list):
        raise bad_request("A batch (application/cloudevents-batch+json) must be a JSON array of events")
    events = doc if isinstance(doc, list) else [doc]
    if not events:
        raise bad_request("The batch is empty")
    if len(events) > svc.settings.publish_max_events:
        raise TwilioError(TOO_LARGE, f"At most {svc.settings.publish_max_events} events per request", 413)
    result = await svc.publisher.publish(p.account.sid, p.catalog_owner, events)
    view = result.view()
    if not result.rejected:
        return JSON(view, status_code=201)
    if result.accepted or result.duplicates:
        return JSON(view, status_code=207)
    first = result.rejected[0]
    err = TwilioError(20001, f"No event was stored: event {first.index}: {first.message}", 400)
    return JSON({**err.body(), **view}, status_code=400)


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


async def dead_letters(request: Request) -> Response:
    svc, p = await auth(request)
    sink = await svc.control.get_sink(p, request.path_params["sid"])
    params = query(request, PAGING)
    pg = paging(params, NUMBER)
    page = await svc.store.dead_letters.list(p.account.sid, sink.row.sid, pg.q)
    meta = page_meta(svc.base, f"/v1/Sinks/{sink.row.sid}/DeadLetters", [], pg, page, "dead_letters", lambda d: (d.id,))
    return JSON({"dead_letters": [dead_letter_view(d) for d in page.items], "meta": meta})


async def delivery_log(request: Request) -> Response:
    svc, p = await auth(request)
    sink = await svc.control.get_sink(p, request.path_params["sid"])
    params = query(request, PAGING)
    pg = paging(params, NUMBER)
    page = await svc.store.delivery_log.list(p.account.sid, sink.row.sid, pg.q)
    meta = page_meta(svc.base, f"/v1/Sinks/{sink.row.sid}/Deliveries", [], pg, page, "deliveries", lambda g: (g.id,))
    return JSON({"deliveries": [log_view(g) for g in page.items], "meta": meta})


def _time_ms(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{name} must be an ISO 8601 time (e.g. 2026-01-01T00:00:00Z)") from None
    if parsed.tzinfo is None:
        raise bad_request(f"{name} must carry a UTC offset")
    return int(parsed.timestamp() * 1000)


async def replay(request: Request) -> Response:
    """Replay to one sink: its dead letters, chosen events, or a time range."""
    svc, p = await auth(request)
    sink = await svc.control.get_sink(p, request.path_params["sid"])
    f = await form(request, {"DeadLetters", "EventId", "Since", "Until"}, repeatable={"EventId"})
    ids = f.all("EventId") or None
    since, until = _time_ms("Since", f.get("Since")), _time_ms("Until", f.get("Until"))
    now_ms = int(clock.now() * 1000)
    if f.bool("DeadLetters"):
        if since is not None or until is not None:
            raise bad_request("Since/Until select stored events; they cannot be combined with DeadLetters=true")
        n, _ = await svc.store.deliveries.replay_dead_letters(p.account.sid, sink.row.sid, ids, now_ms)
    else:
        if ids is None and since is None and until is None:
            raise bad_request("Say what to replay: DeadLetters=true, EventId (repeatable) or Since/Until")
        n = await svc.store.deliveries.replay_events(p.account.sid, sink.row.sid, ids, since, until, now_ms)
    if svc.delivery is not None:
        svc.delivery.dispatcher.wake([sink.row.sid])
    return JSON({"sink_sid": sink.row.sid, "replayed": n}, status_code=201)


async def signing_secret(request: Request) -> Response:
    svc, p = await auth(request)
    query(request)
    sink = await svc.control.get_sink(p, request.path_params["sid"])
    return JSON({"sink_sid": sink.row.sid, "secret": svc.box.open(sink.row.signing_secret_sealed)})


LOG_LEVELS = ("error", "warning", "notice", "debug")
_DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# hh:mm, optional :ss and fraction, optional Z or offset (as datetime.fromisoformat reads them)
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?")


@dataclass(frozen=True)
class AlertFilter:
    """Twilio's Monitor Alerts filters; ``end`` is exclusive, in ms like ``created_at``."""

    level: str | None = None
    start: int | None = None
    end: int | None = None


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


def alert_filter(params: Params) -> AlertFilter:
    level = params.get("LogLevel")
    if level is not None and level not in LOG_LEVELS:
        raise bad_request(f"LogLevel must be one of {', '.join(LOG_LEVELS)} (got {level[:40]!r})")
    start_raw, end_raw = params.get("StartDate"), params.get("EndDate")
    start = alert_bound("StartDate", start_raw)[0] if start_raw is not None else None
    end = alert_bound("EndDate", end_raw)[1] if end_raw is not None else None
    if start is not None and end is not None and start >= end:
        raise bad_request("StartDate must not be later than EndDate")
    return AlertFilter(level, start, end)


async def _methods(svc: Services, account_sid: str, alerts: list[AlertRow]) -> dict[str, str | None]:
    return {s: await sink_request_method(svc.store, svc.box, account_sid, s) for s in {a.sink_sid for a in alerts}}


async def list_alerts(request: Request) -> Response:
    svc, p = await auth(request)
    params = query(request, {"LogLevel", "StartDate", "EndDate", *PAGING})
    f = alert_filter(params)
    pg = paging(params, NUMBER_SID)
    page = await svc.store.alerts.list(p.account.sid, pg.q, f.level, f.start, f.end)
    filters = [(n, v) for n in ("LogLevel", "StartDate", "EndDate") if (v := params.get(n)) is not None]
    meta = page_meta(svc.base, "/v1/Alerts", filters, pg, page, "alerts", lambda a: (a.created_at, a.sid))
    methods = await _methods(svc, p.account.sid, page.items)
    alerts = [alert_view(a, svc.base, methods[a.sink_sid], full=False) for a in page.items]
    return JSON({"alerts": alerts, "meta": meta})


async def fetch_alert(request: Request) -> Response:
    svc, p = await auth(request)
    query(request)
    row = await svc.store.alerts.get(p.account.sid, request.path_params["sid"])
    if row is None:
        raise not_found(f"Alert {request.path_params['sid']} was not found")
    method = await sink_request_method(svc.store, svc.box, p.account.sid, row.sink_sid)
    return JSON(alert_view(row, svc.base, method))


routes = [
    Route("/v1/Events", publish, methods=["POST"]),
    Route("/v1/Sinks/{sid}/DeadLetters", dead_letters, methods=["GET"]),
    Route("/v1/Sinks/{sid}/Deliveries", delivery_log, methods=["GET"]),
    Route("/v1/Sinks/{sid}/Replay", replay, methods=["POST"]),
    Route("/v1/Sinks/{sid}/SigningSecret", signing_secret, methods=["GET"]),
    Route("/v1/Alerts", list_alerts, methods=["GET"]),
    Route("/v1/Alerts/{sid}", fetch_alert, methods=["GET"]),
]
