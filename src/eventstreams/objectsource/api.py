"""The object sources API (Twilio-style JSON over objectsource/service.py; the CLI calls the same domain).

``/v1/ObjectSources``: create, list, fetch, update, delete Twilio object sources; ``…/Syncs``: sync now
(``Full=true`` re-reads everything from the start date); ``…/Runs``: what each run read and loaded per
collection and Twilio account (the Overview tab). A credential's secret is accepted, never returned.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import clock
from ..api import openapi
from ..api.context import auth
from ..api.http import JSON, PAGING, TIME_SID, Params, form, page_meta, paging, query
from ..api.surface import Surface
from ..api.twilio_errors import TWILIO_ERRORS
from ..store.records import ObjectSourceRow, ObjectSourceRunRow, ObjectSourceStateRow, RunCollectionRow

FIELDS = frozenset({
    "FriendlyName", "TwilioAccountSid", "AuthToken", "ApiKeySid", "ApiKeySecret", "SchemaName", "StartDate",
    "Collections", "Schedule", "LookbackWindow", "IncludeSubaccounts", "Enabled", "BaseUrl",
})  # fmt: skip
_PATH = "/v1/ObjectSources"


def _iso(ts: float | None) -> str | None:
    return clock.iso(ts) if ts is not None else None


def source_view(base: str, s: ObjectSourceRow, states: list[ObjectSourceStateRow] | None = None) -> dict[str, Any]:
    url = f"{base}{_PATH}/{s.sid}"
    now = clock.now()
    out: dict[str, Any] = {
        "sid": s.sid,
        "account_sid": s.account_sid,
        "friendly_name": s.friendly_name,
        "schema_name": s.schema_name,
        "twilio_account_sid": s.twilio_account_sid,
        "credential_type": "api_key" if s.key_sid else "auth_token",
        "api_key_sid": s.key_sid,
        "base_url": s.base_url,
        "start_date": s.start_date,
        "collections": s.collections.split(","),
        "schedule": s.schedule,
        "lookback_window": s.lookback_seconds,
        "include_subaccounts": s.include_subaccounts,
        "enabled": s.enabled,
        "full_sync_requested": s.full_sync_requested,
        "syncing": s.lease_until is not None and s.lease_until > now,
        "next_sync_at": _iso(s.next_run_at) if s.enabled else None,
        "last_error": s.last_error,
        "date_created": s.date_created,
        "date_updated": s.date_updated,
        "url": url,
        "links": {"runs": f"{url}/Runs", "syncs": f"{url}/Syncs"},
    }
    if states is not None:
        out["state"] = [
            {"twilio_account_sid": st.twilio_account_sid, "collection": st.collection, "cursor": st.cursor,
             "resuming": st.resume_uri is not None, "date_updated": st.date_updated}
            for st in sorted(states, key=lambda st: (st.twilio_account_sid, st.collection))
        ]
    return out


def run_view(base: str, r: ObjectSourceRunRow, parts: list[RunCollectionRow]) -> dict[str, Any]:
    return {
        "sid": r.sid,
        "account_sid": r.account_sid,
        "source_sid": r.source_sid,
        "kind": r.kind,
        "trigger": r.trigger,
        "status": r.status,
        "error": r.error,
        "date_started": r.date_started,
        "date_finished": r.date_finished,
        "rows_read": sum(p.rows_read for p in parts),
        "rows_upserted": sum(p.rows_upserted for p in parts),
        "collections": [
            {"twilio_account_sid": p.twilio_account_sid, "collection": p.collection, "status": p.status,
             "rows_read": p.rows_read, "rows_upserted": p.rows_upserted, "duration": p.duration, "cursor": p.cursor,
             "error": p.error}
            for p in parts
        ],
        "url": f"{base}{_PATH}/{r.source_sid}/Runs/{r.sid}",
    }


def _settings(f: Params) -> dict[str, Any]:
    return {
        "friendly_name": f.get("FriendlyName"),
        "twilio_account_sid": f.get("TwilioAccountSid"),
        "auth_token": f.get("AuthToken"),
        "api_key_sid": f.get("ApiKeySid"),
        "api_key_secret": f.get("ApiKeySecret"),
        "schema_name": f.get("SchemaName"),
        "start_date": f.get("StartDate"),
        "collections": f.get("Collections"),
        "schedule": f.get("Schedule"),
        "lookback": f.get("LookbackWindow"),
        "include_subaccounts": f.bool("IncludeSubaccounts"),
        "enabled": f.bool("Enabled"),
        "base_url": f.get("BaseUrl"),
    }


async def create_source(request: Request) -> Response:
    svc, p = await auth(request)
    f = await form(request, FIELDS, limit=svc.settings.max_body_bytes)
    row = await svc.object_sources.create(p.account, **_settings(f))
    return JSON(source_view(svc.base, row), status_code=201)


async def list_sources(request: Request) -> Response:
    svc, p = await auth(request)
    pg = paging(query(request, PAGING), TIME_SID)
    page = await svc.object_sources.list_sources(p.account, pg.q)
    meta = page_meta(svc.base, _PATH, [], pg, page, "object_sources", lambda s: (s.date_created, s.sid))
    return JSON({"object_sources": [source_view(svc.base, s) for s in page.items], "meta": meta})


async def source_item(request: Request) -> Response:
    """GET (fetch, with each collection's cursor), POST (update what is given) or DELETE (204)."""
    svc, p = await auth(request)
    row = None
    if request.method in ("GET", "HEAD"):
        query(request)
        row = await svc.object_sources.get(p.account, request.path_params["sid"])
        return JSON(source_view(svc.base, row, await svc.object_sources.states(row)))
    if request.method == "DELETE":
        query(request)
        await svc.object_sources.delete(await svc.object_sources.get(p.account, request.path_params["sid"]))
        return Response(status_code=204)
    f = await form(request, FIELDS, limit=svc.settings.max_body_bytes)
    changes = _settings(f)
    row = await svc.object_sources.get(p.account, request.path_params["sid"])
    row = await svc.object_sources.update(row, **changes)
    return JSON(source_view(svc.base, row))


async def sync_now(request: Request) -> Response:
    """Queue a sync at once (202); the scheduler of a serve or worker process runs it."""
    svc, p = await auth(request)
    f = await form(request, {"Full"}, limit=svc.settings.max_body_bytes)
    row = await svc.object_sources.get(p.account, request.path_params["sid"])
    row = await svc.object_sources.request_sync(row, bool(f.bool("Full")))
    return JSON(source_view(svc.base, row), status_code=202)


async def list_runs(request: Request) -> Response:
    svc, p = await auth(request)
    pg = paging(query(request, PAGING), TIME_SID)
    row = await svc.object_sources.get(p.account, request.path_params["sid"])
    page, parts = await svc.object_sources.runs(row, pg.q)
    meta = page_meta(svc.base, f"{_PATH}/{row.sid}/Runs", [], pg, page, "runs", lambda r: (r.date_started, r.sid))
    return JSON({"runs": [run_view(svc.base, r, parts.get(r.sid, [])) for r in page.items], "meta": meta})


async def fetch_run(request: Request) -> Response:
    svc, p = await auth(request)
    query(request)
    row = await svc.object_sources.get(p.account, request.path_params["sid"])
    view = await svc.object_sources.run(row, request.path_params["run"])
    return JSON(run_view(svc.base, view.run, view.collections))


routes = [
    Route(_PATH, list_sources, methods=["GET"]),
    Route(_PATH, create_source, methods=["POST"]),
    Route(_PATH + "/{sid}", source_item, methods=["GET", "POST", "DELETE"]),
    Route(_PATH + "/{sid}/Syncs", sync_now, methods=["POST"]),
    Route(_PATH + "/{sid}/Runs", list_runs, methods=["GET"]),
    Route(_PATH + "/{sid}/Runs/{run}", fetch_run, methods=["GET"]),
]

surface = Surface("object-sources", routes, TWILIO_ERRORS, openapi.object_sources_paths)
