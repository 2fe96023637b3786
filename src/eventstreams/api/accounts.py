"""Handlers for the 2010-04-01 Accounts and Keys resources (subaccounts, API keys)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import clock
from ..domain.accounts import Principal
from ..runtime import Runtime
from ..store.records import AccountRow, ApiKeyRow
from . import openapi
from .context import auth
from .http import JSON, PAGING, TIME_SID, form, legacy_meta, paging, query
from .surface import Surface
from .twilio_errors import TWILIO_ERRORS

INVALID_PAGE_TOKEN = 21481  # the 2010-04-01 API's code for a PageToken it did not mint

_SUBRESOURCES = (
    "addresses",
    "conferences",
    "signing_keys",
    "transcriptions",
    "connect_apps",
    "sip",
    "authorized_connect_apps",
    "usage",
    "keys",
    "applications",
    "recordings",
    "short_codes",
    "calls",
    "notifications",
    "incoming_phone_numbers",
    "queues",
    "messages",
    "outgoing_caller_ids",
    "available_phone_numbers",
    "balance",
)


def _strip(path: str) -> str:
    return path.removesuffix(".json")


def account_view(svc: Runtime, a: AccountRow, token: str | None) -> dict[str, Any]:
    base = f"/2010-04-01/Accounts/{a.sid}"
    return {
        "auth_token": token if token is not None else svc.accounts.token_of(a),
        "date_created": clock.rfc2822(a.date_created),
        "date_updated": clock.rfc2822(a.date_updated),
        "friendly_name": a.friendly_name,
        "owner_account_sid": a.parent_sid or a.sid,
        "sid": a.sid,
        "status": a.status,
        "subresource_uris": {name: f"{base}/{_camel(name)}.json" for name in _SUBRESOURCES},
        "type": "Full",
        "uri": f"{base}.json",
    }


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def key_view(k: ApiKeyRow, secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sid": k.sid,
        "friendly_name": k.friendly_name,
        "date_created": clock.rfc2822(k.date_created),
        "date_updated": clock.rfc2822(k.date_updated),
    }
    if secret is not None:
        out["secret"] = secret
    return out


async def _auth(request: Request) -> tuple[Runtime, Principal]:
    svc, p = await auth(request)
    svc.accounts.require_account_credentials(p)
    return svc, p


async def accounts_collection(request: Request) -> Response:
    svc, p = await _auth(request)
    if request.method == "POST":
        f = await form(request, {"FriendlyName"}, limit=svc.settings.max_body_bytes)
        row, token = await svc.accounts.create_sub(p, f.get("FriendlyName"))
        return JSON(account_view(svc, row, token), status_code=201)
    params = query(request, {"FriendlyName", "Status", *PAGING})
    pg = paging(params, TIME_SID, bad_token=INVALID_PAGE_TOKEN)
    page = await svc.accounts.list(p, params.get("FriendlyName"), params.get("Status"), pg.q)
    filters = [(n, v) for n in ("FriendlyName", "Status") if (v := params.get(n)) is not None]
    meta = legacy_meta("/2010-04-01/Accounts.json", filters, pg, page, "accounts", lambda a: (a.date_created, a.sid))
    meta["accounts"] = [account_view(svc, a, None) for a in page.items]
    return JSON(meta)


async def account_item(request: Request) -> Response:
    svc, p = await _auth(request)
    sid = _strip(request.path_params["sid"])
    if request.method == "POST":
        f = await form(request, {"FriendlyName", "Status"}, limit=svc.settings.max_body_bytes)
        row = await svc.accounts.update(p, sid, f.get("FriendlyName"), f.get("Status"))
        return JSON(account_view(svc, row, None))
    query(request)
    return JSON(account_view(svc, await svc.accounts.visible(p, sid), None))


async def keys_collection(request: Request) -> Response:
    svc, p = await _auth(request)
    account = await svc.accounts.visible(p, request.path_params["sid"])
    if request.method == "POST":
        f = await form(request, {"FriendlyName"}, limit=svc.settings.max_body_bytes)
        row, secret = await svc.accounts.create_key(account, f.get("FriendlyName"))
        return JSON(key_view(row, secret), status_code=201)
    params = query(request, PAGING)
    pg = paging(params, TIME_SID, bad_token=INVALID_PAGE_TOKEN)
    page = await svc.accounts.list_keys(account, pg.q)
    meta = legacy_meta(
        f"/2010-04-01/Accounts/{account.sid}/Keys.json", [], pg, page, "keys", lambda k: (k.date_created, k.sid)
    )
    meta["keys"] = [key_view(k) for k in page.items]
    return JSON(meta)


async def key_item(request: Request) -> Response:
    svc, p = await _auth(request)
    account = await svc.accounts.visible(p, request.path_params["sid"])
    key = await svc.accounts.key(account, _strip(request.path_params["key"]))
    if request.method == "DELETE":
        query(request)
        await svc.accounts.delete_key(key)
        return Response(status_code=204)
    if request.method == "POST":
        f = await form(request, {"FriendlyName"}, limit=svc.settings.max_body_bytes)
        return JSON(key_view(await svc.accounts.update_key(key, f.get("FriendlyName") or "")))
    query(request)
    return JSON(key_view(key))


routes = [
    Route("/2010-04-01/Accounts.json", accounts_collection, methods=["GET", "POST"]),
    Route("/2010-04-01/Accounts/{sid}/Keys.json", keys_collection, methods=["GET", "POST"]),
    Route("/2010-04-01/Accounts/{sid}/Keys/{key}", key_item, methods=["GET", "POST", "DELETE"]),
    Route("/2010-04-01/Accounts/{sid}", account_item, methods=["GET", "POST"]),
]

surface = Surface("twilio-accounts", routes, TWILIO_ERRORS, openapi.accounts_paths)
