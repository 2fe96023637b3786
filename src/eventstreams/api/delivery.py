"""The publish and operations surface (eventstreams extensions, Twilio's
conventions): publishing, dead letters, replay, the delivery log, signing
secrets and alerts (shaped like Twilio's Monitor Alerts). Handlers parse,
call domain/operations.py (shared with the CLI) and render."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..domain.operations import (
    ReplayRequest,
    alert_filter,
    alert_view,
    dead_letter_view,
    log_view,
    parse_instant,
)
from ..errors import TOO_LARGE, TwilioError, bad_request
from . import openapi
from .context import auth
from .http import JSON, NUMBER, NUMBER_SID, PAGING, form, page_meta, paging, query, read_body
from .surface import Surface
from .twilio_errors import TWILIO_ERRORS

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


async def dead_letters(request: Request) -> Response:
    svc, p = await auth(request)
    params = query(request, PAGING)
    pg = paging(params, NUMBER)
    sink, page = await svc.operations.dead_letters(p, request.path_params["sid"], pg.q)
    assert sink is not None
    meta = page_meta(svc.base, f"/v1/Sinks/{sink.row.sid}/DeadLetters", [], pg, page, "dead_letters", lambda d: (d.id,))
    return JSON({"dead_letters": [dead_letter_view(d) for d in page.items], "meta": meta})


async def delivery_log(request: Request) -> Response:
    svc, p = await auth(request)
    params = query(request, PAGING)
    pg = paging(params, NUMBER)
    sink, page = await svc.operations.delivery_log(p, request.path_params["sid"], pg.q)
    meta = page_meta(svc.base, f"/v1/Sinks/{sink.row.sid}/Deliveries", [], pg, page, "deliveries", lambda g: (g.id,))
    return JSON({"deliveries": [log_view(g) for g in page.items], "meta": meta})


async def replay(request: Request) -> Response:
    """Replay to one sink: its dead letters, chosen events, or a time range."""
    svc, p = await auth(request)
    f = await form(request, {"DeadLetters", "EventId", "Since", "Until"}, repeatable={"EventId"})
    what = ReplayRequest(
        dead_letters=f.bool("DeadLetters") or False,
        event_ids=tuple(f.all("EventId")),
        since=parse_instant("Since", f.get("Since")),
        until=parse_instant("Until", f.get("Until")),
    )
    sink, n = await svc.operations.replay(p, request.path_params["sid"], what)
    return JSON({"sink_sid": sink.row.sid, "replayed": n}, status_code=201)


async def signing_secret(request: Request) -> Response:
    svc, p = await auth(request)
    query(request)
    sink, secret = await svc.operations.signing_secret(p, request.path_params["sid"])
    return JSON({"sink_sid": sink.row.sid, "secret": secret})


async def list_alerts(request: Request) -> Response:
    svc, p = await auth(request)
    params = query(request, {"LogLevel", "StartDate", "EndDate", *PAGING})
    f = alert_filter(params.get("LogLevel"), params.get("StartDate"), params.get("EndDate"))
    pg = paging(params, NUMBER_SID)
    page, methods = await svc.operations.alerts(p, f, pg.q)
    filters = [(n, v) for n in ("LogLevel", "StartDate", "EndDate") if (v := params.get(n)) is not None]
    meta = page_meta(svc.base, "/v1/Alerts", filters, pg, page, "alerts", lambda a: (a.created_at, a.sid))
    alerts = [alert_view(a, svc.base, methods[a.sink_sid], full=False) for a in page.items]
    return JSON({"alerts": alerts, "meta": meta})


async def fetch_alert(request: Request) -> Response:
    svc, p = await auth(request)
    query(request)
    row, method = await svc.operations.alert(p, request.path_params["sid"])
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

surface = Surface("operations", routes, TWILIO_ERRORS, openapi.operations_paths)
