"""The events warehouse API (Twilio-style JSON over warehouse/events.py; the CLI calls it).

``/v1/EventsWarehouse``: the account's events warehouse — fetch, create or change (``SchemaName``,
``Enabled``, ``Interval`` seconds), delete (its tables stay); ``…/Loads``: load now (queued, 202; the
scheduler of a serve or worker runs it, as for object sources' syncs).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import clock
from ..api import openapi
from ..api.context import auth
from ..api.http import JSON, form, query
from ..api.surface import Surface
from ..api.twilio_errors import TWILIO_ERRORS
from ..errors import TwilioError, bad_request, not_found
from ..store.errors import Conflict
from ..store.repos.events_warehouse import EventsWarehouseRow

PATH = "/v1/EventsWarehouse"
MAX_INTERVAL = 366 * 86400


def view(base: str, w: EventsWarehouseRow) -> dict[str, Any]:
    return {
        "sid": w.sid,
        "account_sid": w.account_sid,
        "schema_name": w.schema_name,
        "enabled": w.enabled,
        "interval": w.interval_seconds,
        "rows_loaded": w.rows_loaded,
        "loading": w.lease_until is not None and w.lease_until > clock.now(),
        "next_load_at": clock.iso(w.next_run_at) if w.next_run_at is not None and w.enabled else None,
        "last_load_at": w.last_run_at,
        "last_error": w.last_error,
        "date_created": w.date_created,
        "date_updated": w.date_updated,
        "url": f"{base}{PATH}",
        "links": {"loads": f"{base}{PATH}/Loads"},
    }


async def warehouse(request: Request) -> Response:
    """GET (fetch), POST (create or change what is given) or DELETE (204; the tables stay)."""
    svc, p = await auth(request)
    wh = svc.events_warehouse
    if request.method in ("GET", "HEAD"):
        query(request)
        row = await wh.get(p.account.sid)
        if row is None:
            raise not_found(f"Account {p.account.sid} has no events warehouse: POST {PATH} with SchemaName")
        return JSON(view(svc.base, row))
    if request.method == "DELETE":
        query(request)
        if not await wh.delete(p.account.sid):
            raise not_found(f"Account {p.account.sid} has no events warehouse")
        return Response(status_code=204)
    f = await form(request, {"SchemaName", "Enabled", "Interval"}, limit=svc.settings.max_body_bytes)
    interval = f.int("Interval", 60, MAX_INTERVAL)
    existed = await wh.get(p.account.sid) is not None
    try:
        row = await wh.configure(p.account.sid, f.get("SchemaName"), f.bool("Enabled"), interval)
    except Conflict as exc:
        raise TwilioError(20409, str(exc), 409) from None
    except ValueError as exc:  # the schema name's rules, or a first call without one
        raise bad_request(f"SchemaName: {exc}") from None
    return JSON(view(svc.base, row), status_code=200 if existed else 201)


async def load_now(request: Request) -> Response:
    svc, p = await auth(request)
    await form(request, (), limit=svc.settings.max_body_bytes)
    row = await svc.events_warehouse.get(p.account.sid)
    if row is None:
        raise not_found(f"Account {p.account.sid} has no events warehouse")
    if not row.enabled:
        raise bad_request("The events warehouse is disabled: enable it first (Enabled=true)")
    await svc.events_warehouse.request_load(p.account.sid)
    fresh = await svc.events_warehouse.get(p.account.sid)
    return JSON(view(svc.base, fresh or row), status_code=202)


routes = [
    Route(PATH, warehouse, methods=["GET", "POST", "DELETE"]),
    Route(PATH + "/Loads", load_now, methods=["POST"]),
]

surface = Surface("events-warehouse", routes, TWILIO_ERRORS, openapi.events_warehouse_paths)
