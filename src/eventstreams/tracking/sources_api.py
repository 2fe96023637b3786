"""The tracking sources API: Twilio-style JSON over tracking/sources.py (the CLI calls the same domain).

Form-encoded bodies parsed strictly, Twilio Basic auth (account SID + auth token, or an API key; a
parent acts on a subaccount as elsewhere), Twilio's JSON errors and paging envelope. A source's write
key appears only in the answer that created it (``POST /v1/Sources`` and ``POST …/WriteKey``).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..api import openapi
from ..api.context import auth
from ..api.http import JSON, NUMBER, PAGING, TIME_SID, form, page_meta, paging, query
from ..api.surface import Surface
from ..api.twilio_errors import TWILIO_ERRORS
from ..store.records import TrackingMessageRow, TrackingSourceRow


def source_view(base: str, s: TrackingSourceRow, write_key: str | None = None) -> dict[str, Any]:
    url = f"{base}/v1/Sources/{s.sid}"
    out: dict[str, Any] = {
        "sid": s.sid,
        "account_sid": s.account_sid,
        "name": s.name,
        "enabled": s.enabled,
        "rate_limit": s.rate_limit,
        "date_created": s.date_created,
        "date_updated": s.date_updated,
        "url": url,
        "links": {"messages": f"{url}/Messages", "write_key": f"{url}/WriteKey"},
    }
    if write_key is not None:
        out["write_key"] = write_key
    return out


def message_view(m: TrackingMessageRow) -> dict[str, Any]:
    return {
        "account_sid": m.account_sid,
        "source_sid": m.source_sid,
        "message_id": m.message_id,
        "type": m.type,
        "status": m.status,
        "reason": m.reason,
        "received_at": m.received_at,
        "payload": orjson.loads(m.payload),
    }


async def create_source(request: Request) -> Response:
    svc, p = await auth(request)
    f = await form(request, {"Name", "RateLimit"}, limit=svc.settings.max_body_bytes)
    row, key = await svc.sources.create(p.account, f.get("Name"), f.int("RateLimit"))
    return JSON(source_view(svc.base, row, key), status_code=201)


async def list_sources(request: Request) -> Response:
    svc, p = await auth(request)
    params = query(request, PAGING)
    pg = paging(params, TIME_SID)
    page = await svc.sources.list(p.account, pg.q)
    meta = page_meta(svc.base, "/v1/Sources", [], pg, page, "sources", lambda s: (s.date_created, s.sid))
    return JSON({"sources": [source_view(svc.base, s) for s in page.items], "meta": meta})


async def source_item(request: Request) -> Response:
    """GET (fetch), POST (update Name, Enabled, RateLimit) or DELETE (204) one source."""
    svc, p = await auth(request)
    sid = request.path_params["sid"]
    if request.method in ("GET", "HEAD"):
        query(request)
        return JSON(source_view(svc.base, await svc.sources.get(p.account, sid)))
    if request.method == "DELETE":
        query(request)
        await svc.sources.delete(await svc.sources.get(p.account, sid))
        return Response(status_code=204)
    f = await form(request, {"Name", "Enabled", "RateLimit"}, limit=svc.settings.max_body_bytes)
    name, enabled, rate_limit = f.get("Name"), f.bool("Enabled"), f.int("RateLimit")
    row = await svc.sources.update(await svc.sources.get(p.account, sid), name, enabled, rate_limit)
    return JSON(source_view(svc.base, row))


async def rotate_write_key(request: Request) -> Response:
    svc, p = await auth(request)
    await form(request, (), limit=svc.settings.max_body_bytes)
    row, key = await svc.sources.rotate(await svc.sources.get(p.account, request.path_params["sid"]))
    return JSON(source_view(svc.base, row, key), status_code=201)


async def list_messages(request: Request) -> Response:
    """The source's debugger: messages newest first, rejected ones with their reason."""
    svc, p = await auth(request)
    params = query(request, {"Status", *PAGING})
    pg = paging(params, NUMBER)
    row = await svc.sources.get(p.account, request.path_params["sid"])
    status = params.get("Status")
    page = await svc.sources.messages(row, status, pg.q)
    filters = [("Status", status)] if status is not None else []
    meta = page_meta(svc.base, f"/v1/Sources/{row.sid}/Messages", filters, pg, page, "messages", lambda m: (m.seq,))
    return JSON({"messages": [message_view(m) for m in page.items], "meta": meta})


routes = [
    Route("/v1/Sources", list_sources, methods=["GET"]),
    Route("/v1/Sources", create_source, methods=["POST"]),
    Route("/v1/Sources/{sid}", source_item, methods=["GET", "POST", "DELETE"]),
    Route("/v1/Sources/{sid}/WriteKey", rotate_write_key, methods=["POST"]),
    Route("/v1/Sources/{sid}/Messages", list_messages, methods=["GET"]),
]

surface = Surface("tracking-sources", routes, TWILIO_ERRORS, openapi.sources_paths)
