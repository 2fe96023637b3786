"""Handlers for Twilio's Events v1 paths. Thin: parse, call the domain, render."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..catalog import builtin_schema
from ..domain.accounts import Principal
from ..domain.control import ControlPlane, Sink
from ..errors import TwilioError, not_found
from ..sinks import registry as sink_types
from ..store.records import EventTypeRow, SchemaVersionRow, SubscribedEventRow, SubscriptionRow
from . import openapi
from .context import auth
from .http import JSON, NUMBER, PAGING, TEXT, TIME_SID, Params, form, page_meta, paging, query
from .surface import Surface
from .twilio_errors import TWILIO_ERRORS


def event_type_view(base: str, t: EventTypeRow) -> dict[str, Any]:
    return {
        "type": t.type,
        "schema_id": t.schema_id,
        "date_created": t.date_created,
        "date_updated": t.date_updated,
        "description": t.description,
        "status": t.status,
        "documentation_url": t.documentation_url,
        "url": f"{base}/v1/Types/{t.type}",
        "links": {"schema": f"{base}/v1/Schemas/{t.schema_id}/Versions"},
    }


def schema_view(base: str, latest: SchemaVersionRow) -> dict[str, Any]:
    return {
        "id": latest.schema_id,
        "url": f"{base}/v1/Schemas/{latest.schema_id}",
        "links": {"versions": f"{base}/v1/Schemas/{latest.schema_id}/Versions"},
        "latest_version_date_created": latest.date_created,
        "latest_version": latest.version,
    }


def schema_version_view(base: str, v: SchemaVersionRow) -> dict[str, Any]:
    return {
        "id": v.schema_id,
        "schema_version": v.version,
        "date_created": v.date_created,
        "url": f"{base}/v1/Schemas/{v.schema_id}/Versions/{v.version}",
        "raw": f"{base}/schemas/{v.schema_id}/{v.version}",
    }


def sink_view(base: str, s: Sink) -> dict[str, Any]:
    """A sink as the API shows it. Secret configuration fields (the sink type's registry entry
    says which) are masked in every response, the creating one included: the caller already
    has the secret, and a response is often logged where the secret must not land."""
    r = s.row
    url = f"{base}/v1/Sinks/{r.sid}"
    configuration = sink_types.redact(r.sink_type, s.configuration)
    return {
        "date_created": r.date_created,
        "date_updated": r.date_updated,
        "description": r.description,
        "sid": r.sid,
        "sink_configuration": configuration,
        "sink_type": r.sink_type,
        "status": r.status,
        "url": url,
        "links": {"sink_test": f"{url}/Test", "sink_validate": f"{url}/Validate"},
    }


def subscription_view(base: str, s: SubscriptionRow) -> dict[str, Any]:
    url = f"{base}/v1/Subscriptions/{s.sid}"
    return {
        "account_sid": s.account_sid,
        "sid": s.sid,
        "date_created": s.date_created,
        "date_updated": s.date_updated,
        "description": s.description,
        "sink_sid": s.sink_sid,
        "url": url,
        "links": {"subscribed_events": f"{url}/SubscribedEvents"},
    }


def subscribed_event_view(base: str, e: SubscribedEventRow) -> dict[str, Any]:
    return {
        "account_sid": e.account_sid,
        "type": e.type,
        "schema_version": e.schema_version,
        "subscription_sid": e.subscription_sid,
        "url": f"{base}/v1/Subscriptions/{e.subscription_sid}/SubscribedEvents/{e.type}",
    }


def _filters(params: Params, names: list[str]) -> list[tuple[str, str]]:
    return [(n, v) for n in names if (v := params.get(n)) is not None]


# -- Types and Schemas


async def list_types(request: Request) -> Response:
    svc, p = await auth(request)
    params = query(request, {"SchemaId", *PAGING})
    pg = paging(params, TEXT)
    page = await svc.control.list_types(p, params.get("SchemaId"), pg.q)
    meta = page_meta(svc.base, "/v1/Types", _filters(params, ["SchemaId"]), pg, page, "types", lambda t: (t.type,))
    return JSON({"types": [event_type_view(svc.base, t) for t in page.items], "meta": meta})


async def fetch_type(request: Request) -> Response:
    svc, p = await auth(request)
    query(request)
    return JSON(event_type_view(svc.base, await svc.control.get_type(p, request.path_params["type"])))


async def fetch_schema(request: Request) -> Response:
    svc, p = await auth(request)
    query(request)
    return JSON(schema_view(svc.base, await svc.control.get_schema(p, request.path_params["id"])))


async def list_schema_versions(request: Request) -> Response:
    svc, p = await auth(request)
    params = query(request, PAGING)
    pg = paging(params, NUMBER)
    sid = request.path_params["id"]
    page = await svc.control.list_schema_versions(p, sid, pg.q)
    meta = page_meta(svc.base, f"/v1/Schemas/{sid}/Versions", [], pg, page, "schema_versions", lambda v: (v.version,))
    return JSON({"schema_versions": [schema_version_view(svc.base, v) for v in page.items], "meta": meta})


def _version(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:  # isdigit alone accepts "¹"
        raise not_found(f"Schema version {raw!r} was not found (versions are positive integers)")
    return int(raw)


async def fetch_schema_version(request: Request) -> Response:
    svc, p = await auth(request)
    query(request)
    v = await svc.control.get_schema_version(p, request.path_params["id"], _version(request.path_params["version"]))
    return JSON(schema_version_view(svc.base, v))


async def raw_schema(request: Request) -> Response:
    """Twilio's schema documents are public (as at events-schemas.twilio.com); custom ones need credentials,
    and any other id answers 401 without them, so custom ids cannot be probed."""
    schema_id, version = request.path_params["id"], request.path_params["version"].removesuffix(".json")
    numeric = version.isascii() and version.isdigit() and len(version) <= 9
    builtin = builtin_schema(schema_id, int(version)) if numeric else None
    if builtin is not None:
        query(request)
        return Response(builtin.document, media_type="application/schema+json")
    svc, p = await auth(request)
    query(request)
    v = await svc.control.get_schema_version(p, schema_id, _version(version))
    return Response(v.document, media_type="application/schema+json")


# -- Sinks


async def create_sink(request: Request) -> Response:
    svc, p = await auth(request)
    f = await form(request, {"Description", "SinkConfiguration", "SinkType"}, limit=svc.settings.max_body_bytes)
    sink = await svc.control.create_sink(p, f.get("Description"), f.get("SinkType"), f.get("SinkConfiguration"))
    return JSON(sink_view(svc.base, sink), status_code=201)


async def list_sinks(request: Request) -> Response:
    svc, p = await auth(request)
    params = query(request, {"InUse", "Status", *PAGING})
    pg = paging(params, TIME_SID)
    page, sinks = await svc.control.list_sinks(p, params.bool("InUse"), params.get("Status"), pg.q)
    meta = page_meta(
        svc.base,
        "/v1/Sinks",
        _filters(params, ["InUse", "Status"]),
        pg,
        page,
        "sinks",
        lambda s: (s.date_created, s.sid),
    )
    return JSON({"sinks": [sink_view(svc.base, s) for s in sinks], "meta": meta})


async def _resource(
    request: Request,
    view: Callable[[str, Any], dict[str, Any]],
    get: Callable[[ControlPlane, Principal, str], Awaitable[Any]],
    delete: Callable[[ControlPlane, Principal, str], Awaitable[None]],
    update: Callable[[ControlPlane, Principal, str, str | None], Awaitable[Any]],
) -> Response:
    """GET (fetch), DELETE (204) or POST (update its Description) of one sink or subscription."""
    svc, p = await auth(request)
    sid = request.path_params["sid"]
    if request.method in ("GET", "HEAD"):
        query(request)
        return JSON(view(svc.base, await get(svc.control, p, sid)))
    if request.method == "DELETE":
        query(request)
        await delete(svc.control, p, sid)
        return Response(status_code=204)
    f = await form(request, {"Description"}, limit=svc.settings.max_body_bytes)
    return JSON(view(svc.base, await update(svc.control, p, sid, f.get("Description"))))


async def sink_item(request: Request) -> Response:
    c = ControlPlane
    return await _resource(request, sink_view, c.get_sink, c.delete_sink, c.update_sink)


async def sink_test(request: Request) -> Response:
    svc, p = await auth(request)
    await form(request, (), limit=svc.settings.max_body_bytes)
    await svc.operations.test_sink(p, request.path_params["sid"])
    return JSON({"result": "submitted"}, status_code=201)


async def sink_validate(request: Request) -> Response:
    svc, p = await auth(request)
    f = await form(request, {"TestId"}, limit=svc.settings.max_body_bytes)
    await svc.control.validate_sink(p, request.path_params["sid"], f.get("TestId"))
    return JSON({"result": "valid"}, status_code=201)


# -- Subscriptions


async def create_subscription(request: Request) -> Response:
    svc, p = await auth(request)
    f = await form(
        request, {"Description", "SinkSid", "Types"}, repeatable={"Types"}, limit=svc.settings.max_body_bytes
    )
    sub = await svc.control.create_subscription(p, f.get("Description"), f.get("SinkSid"), f.all("Types"))
    return JSON(subscription_view(svc.base, sub), status_code=201)


async def list_subscriptions(request: Request) -> Response:
    svc, p = await auth(request)
    params = query(request, {"SinkSid", *PAGING})
    pg = paging(params, TIME_SID)
    page = await svc.control.list_subscriptions(p, params.get("SinkSid"), pg.q)
    meta = page_meta(
        svc.base,
        "/v1/Subscriptions",
        _filters(params, ["SinkSid"]),
        pg,
        page,
        "subscriptions",
        lambda s: (s.date_created, s.sid),
    )
    return JSON({"subscriptions": [subscription_view(svc.base, s) for s in page.items], "meta": meta})


async def subscription_item(request: Request) -> Response:
    c = ControlPlane
    return await _resource(request, subscription_view, c.get_subscription, c.delete_subscription, c.update_subscription)


async def subscribed_events(request: Request) -> Response:
    svc, p = await auth(request)
    sid = request.path_params["sid"]
    if request.method == "POST":
        f = await form(request, {"Type", "SchemaVersion"}, limit=svc.settings.max_body_bytes)
        row = await svc.control.add_subscribed_event(p, sid, f.get("Type"), f.int("SchemaVersion", 1, 1_000_000))
        return JSON(subscribed_event_view(svc.base, row), status_code=201)
    params = query(request, PAGING)
    pg = paging(params, TEXT)
    page = await svc.control.list_subscribed_events(p, sid, pg.q)
    canon = svc.control.subscription_sid(sid)
    meta = page_meta(
        svc.base, f"/v1/Subscriptions/{canon}/SubscribedEvents", [], pg, page, "types", lambda e: (e.type,)
    )
    return JSON({"types": [subscribed_event_view(svc.base, e) for e in page.items], "meta": meta})


async def subscribed_event_item(request: Request) -> Response:
    svc, p = await auth(request)
    sid, type_ = request.path_params["sid"], request.path_params["type"]
    if request.method in ("GET", "HEAD"):
        query(request)
        return JSON(subscribed_event_view(svc.base, await svc.control.get_subscribed_event(p, sid, type_)))
    if request.method == "DELETE":
        query(request)
        await svc.control.delete_subscribed_event(p, sid, type_)
        return Response(status_code=204)
    f = await form(request, {"SchemaVersion"}, limit=svc.settings.max_body_bytes)
    row = await svc.control.update_subscribed_event(p, sid, type_, f.int("SchemaVersion", 1, 1_000_000))
    return JSON(subscribed_event_view(svc.base, row))


# -- operator catalogue (an eventstreams extension)


async def register_schema_version(request: Request) -> Response:
    svc, p = await auth(request)
    f = await form(request, {"Schema"}, limit=svc.settings.max_body_bytes)
    raw = f.get("Schema")
    if not raw:
        raise TwilioError(20001, "Missing required parameter Schema (a JSON Schema document)", 400)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TwilioError(91201, f"Schema is not valid JSON: {exc}", 400) from None
    row = await svc.control.register_schema_version(p, request.path_params["id"], doc)
    return JSON(schema_version_view(svc.base, row), status_code=201)


async def register_type(request: Request) -> Response:
    svc, p = await auth(request)
    f = await form(request, {"Type", "SchemaId", "Description", "Status"}, limit=svc.settings.max_body_bytes)
    for name in ("Type", "SchemaId", "Description"):
        if not f.get(name):
            raise TwilioError(20001, f"Missing required parameter {name}", 400)
    row = await svc.control.register_type(
        p, f.get("Type") or "", f.get("SchemaId") or "", f.get("Description") or "", f.get("Status")
    )
    return JSON(event_type_view(svc.base, row), status_code=201)


routes = [
    Route("/v1/Types", list_types, methods=["GET"]),
    Route("/v1/Types/{type}", fetch_type, methods=["GET"]),
    Route("/v1/Schemas/{id}", fetch_schema, methods=["GET"]),
    Route("/v1/Schemas/{id}/Versions", list_schema_versions, methods=["GET"]),
    Route("/v1/Schemas/{id}/Versions/{version}", fetch_schema_version, methods=["GET"]),
    Route("/schemas/{id}/{version}", raw_schema, methods=["GET"]),
    Route("/v1/Sinks", list_sinks, methods=["GET"]),
    Route("/v1/Sinks", create_sink, methods=["POST"]),
    Route("/v1/Sinks/{sid}", sink_item, methods=["GET", "POST", "DELETE"]),
    Route("/v1/Sinks/{sid}/Test", sink_test, methods=["POST"]),
    Route("/v1/Sinks/{sid}/Validate", sink_validate, methods=["POST"]),
    Route("/v1/Subscriptions", list_subscriptions, methods=["GET"]),
    Route("/v1/Subscriptions", create_subscription, methods=["POST"]),
    Route("/v1/Subscriptions/{sid}", subscription_item, methods=["GET", "POST", "DELETE"]),
    Route("/v1/Subscriptions/{sid}/SubscribedEvents", subscribed_events, methods=["GET", "POST"]),
    Route("/v1/Subscriptions/{sid}/SubscribedEvents/{type}", subscribed_event_item, methods=["GET", "POST", "DELETE"]),
    Route("/v1/Catalog/Schemas/{id}/Versions", register_schema_version, methods=["POST"]),
    Route("/v1/Catalog/Types", register_type, methods=["POST"]),
]

surface = Surface("twilio-events-v1", routes, TWILIO_ERRORS, openapi.events_v1_paths)
