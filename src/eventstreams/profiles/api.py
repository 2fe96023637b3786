"""The Profiles surface: Segment's Profile API paths (``/v1/spaces/{space}/collections/users/profiles/
{id_type}:{value}/traits|external_ids|events|links``), its response shapes, paging (``limit`` and the
``next`` cursor, also accepted as ``cursor``) and its error shape (``{"error": {"code", "message"}}``).
Authentication is Twilio Basic (account SID + auth token, or an API key); ``{space}`` is the account SID:
an account reads only its own profiles, and a parent its subaccounts' too (docs/segment.md, Profiles)."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..api.context import auth
from ..api.http import JSON
from ..api.openapi import profiles as fragment
from ..api.surface import Surface
from ..errors import TwilioError
from ..runtime import Runtime
from ..store.repos.profiles import ProfileRow
from . import identity as rules
from .service import TRAITS_KEY, BadCursor, BadIdentifier, decode_cursor, encode_cursor

PATH_PREFIX = "/v1/spaces/"
PREFIX = PATH_PREFIX + "{space}/collections/users/profiles/{identifier:path}"
#: (default, maximum) page sizes per list, as Segment documents them
SIZES = {"traits": (10, 200), "external_ids": (25, 100), "events": (10, 100), "links": (20, 100)}
_DIGITS = re.compile(r"[0-9]{1,6}")  # ASCII only: str.isdigit() accepts "²", which int() refuses


class ProfileError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> Response:
    return JSON({"error": {"code": code, "message": message}}, status_code=status)


async def _on_profile_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProfileError)
    return error_response(exc.status, exc.code, exc.message)


async def on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = "not_found" if exc.status_code == 404 else "invalid_request_error"
    return error_response(exc.status_code, code, f"{request.method} {request.url.path[:200]}: {exc.detail}")


async def _on_crash(request: Request, exc: Exception) -> Response:
    logging.getLogger("eventstreams.profiles").exception("unhandled error on %s", request.url.path)
    return error_response(500, "internal_error", "Internal Server Error")


async def _profile(request: Request) -> tuple[Runtime, str, ProfileRow]:
    try:
        rt, principal = await auth(request)
    except TwilioError as exc:
        code = "not_found" if exc.status == 404 else "authentication_error"
        raise ProfileError(exc.status, code, exc.message) from None
    account = principal.account.sid
    space = request.path_params["space"]
    if space != account:
        # as everywhere else, a parent's credentials act on its subaccounts (and the parent itself):
        # the space names which; a subaccount never reaches its parent's or a sibling's space, and
        # the answer never says whether another account's space exists
        try:
            row = await rt.accounts.visible(principal, space)
        except TwilioError:
            raise ProfileError(404, "not_found", "Space was not found: {space} is your account SID") from None
        if row.status != "active":
            raise ProfileError(401, "authentication_error", f"Account {row.sid} is {row.status}")
        account = row.sid
    try:
        profile = await rt.profiles.find(account, request.path_params["identifier"])
    except BadIdentifier as exc:
        raise ProfileError(400, "validation_error", str(exc)) from None
    if profile is None:
        raise ProfileError(404, "not_found", "Profile was not found.")
    return rt, account, profile


def _check_query(request: Request) -> None:
    """Every query parameter, before any is used: no NUL (no database column holds one; the root app
    refuses them in form and query parameters too)."""
    for k, v in request.query_params.multi_items():
        if "\x00" in k or "\x00" in v:
            raise ProfileError(400, "invalid_request_error", f"Parameter {k[:100]!r} contains a NUL character")


def _limit(request: Request, kind: str) -> int:
    default, most = SIZES[kind]
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return default
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= most:
        raise ProfileError(400, "invalid_request_error", f"limit must be an integer between 1 and {most}")
    return int(raw)


def _cursor(request: Request) -> str | None:
    value = request.query_params.get("next") or request.query_params.get("cursor")
    if value is not None and len(value) > 2000:
        raise ProfileError(400, "invalid_request_error", "The cursor is not one this API returned")
    return value or None


def _listed(request: Request, name: str) -> list[str] | None:
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        return None
    return [p.strip() for p in raw.split(",") if p.strip()]


def _page(request: Request, limit: int, nxt: str | None) -> dict[str, Any]:
    """Segment's ``cursor`` object: the next page's URL, whether there is one, its token."""
    params = {k: v for k, v in request.query_params.items() if k not in ("next", "cursor")}
    if nxt is not None:
        params["next"] = nxt
    url = request.url.path + ("?" + urlencode(params) if params else "")
    return {"url": url, "has_more": nxt is not None, "next": nxt or "", "limit": limit}


async def traits(request: Request) -> Response:
    _check_query(request)
    limit = _limit(request, "traits")
    cursor = _cursor(request)
    include = _listed(request, "include")
    rt, _, profile = await _profile(request)
    try:
        after = decode_cursor(cursor, TRAITS_KEY)[0] if cursor else None
    except BadCursor as exc:
        raise ProfileError(400, "invalid_request_error", str(exc)) from None
    every = rt.profiles.traits(profile)
    keys = sorted(k for k in every if (include is None or k in include) and (after is None or k > str(after)))
    shown = keys[:limit]
    nxt = encode_cursor([shown[-1]]) if len(keys) > limit else None
    if request.query_params.get("verbose") == "true":
        times = orjson.loads(profile.trait_times)
        body = {k: {"value": every[k], "source_id": None, "updated_at": times.get(k)} for k in shown}
    else:
        body = {k: every[k] for k in shown}
    return JSON({"traits": body, "cursor": _page(request, limit, nxt)})


def _external_id(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["value"], "type": r["id_type"], "source_id": None, "collection": "users",
            "created_at": r["date_first_seen"], "encoding": "none",
            "first_message_id": r["first_message_id"]}  # fmt: skip


async def external_ids(request: Request) -> Response:
    _check_query(request)
    limit = _limit(request, "external_ids")
    cursor = _cursor(request)
    include = _listed(request, "include")
    rt, account, profile = await _profile(request)
    try:
        rows, nxt = await rt.profiles.external_ids(account, profile.id, include, limit, cursor)
    except BadCursor as exc:
        raise ProfileError(400, "invalid_request_error", str(exc)) from None
    return JSON({"data": [_external_id(r) for r in rows], "cursor": _page(request, limit, nxt)})


def _event(rt: Runtime, profile_id: str, r: dict[str, Any]) -> dict[str, Any]:
    m: dict[str, Any] = orjson.loads(r["payload"]) if r["payload"] else {}
    ids = rules.identity(m, rt.profiles.region).ids if m else []
    out: dict[str, Any] = {
        "external_ids": [{"collection": "users", "type": t, "id": v, "encoding": "none"} for t, v in ids],
        "context": m.get("context", {}),
        "type": r["type"],
        "message_id": r["message_id"],
        "source_id": r["source_sid"],
        "timestamp": r["timestamp"],
        "properties": m.get("properties", {}),
        "related": {"users": profile_id},
    }
    if r["type"] == "track":
        out["event"] = r["name"]
    elif r["type"] in ("page", "screen"):
        out["name"] = r["name"]
    elif r["type"] == "group":
        out["group_id"] = r["name"]
    if "traits" in m:
        out["traits"] = m["traits"]
    return out


async def events(request: Request) -> Response:
    _check_query(request)
    limit = _limit(request, "events")
    cursor = _cursor(request)
    sort = request.query_params.get("sort", "desc")
    if sort not in ("asc", "desc"):
        raise ProfileError(400, "invalid_request_error", "sort must be asc or desc")
    rt, account, profile = await _profile(request)
    try:
        rows, nxt = await rt.profiles.events(account, profile.id, limit, cursor, ascending=sort == "asc")
    except BadCursor as exc:
        raise ProfileError(400, "invalid_request_error", str(exc)) from None
    return JSON({"data": [_event(rt, profile.id, r) for r in rows], "cursor": _page(request, limit, nxt)})


async def links(request: Request) -> Response:
    """Segment's links: the accounts (group ids) the user was seen in, then (ours) the merges and
    refused merges that shaped this profile, each with the identifier that proved or refused it."""
    _check_query(request)
    limit = _limit(request, "links")
    cursor = _cursor(request)
    rt, account, profile = await _profile(request)
    try:
        merges, nxt = await rt.profiles.merges(account, profile.id, limit, cursor)
    except BadCursor as exc:
        raise ProfileError(400, "invalid_request_error", str(exc)) from None
    data: list[dict[str, Any]] = []
    if cursor is None:
        for g in await rt.profiles.groups(account, profile.id, 100):
            data.append({"to_collection": "accounts", "external_ids": [{
                "id": g["name"], "type": "group_id", "source_id": None, "collection": "accounts",
                "created_at": g["first_seen"], "encoding": "none"}]})  # fmt: skip
    for m in merges:
        data.append({
            "to_collection": "users",
            "external_ids": [{"id": m["id_value"], "type": m["id_type"], "collection": "users", "encoding": "none"}],
            "merge": {"id": m["id"], "status": m["status"], "winner": m["winner"], "loser": m["loser"],
                      "reason": m["reason"], "message_id": m["message_id"], "created_at": m["date_created"]},
        })  # fmt: skip
    return JSON({"data": data, "cursor": _page(request, limit, nxt)})


routes = [
    Route(f"{PREFIX}/traits", traits, methods=["GET"]),
    Route(f"{PREFIX}/external_ids", external_ids, methods=["GET"]),
    Route(f"{PREFIX}/events", events, methods=["GET"]),
    Route(f"{PREFIX}/links", links, methods=["GET"]),
]

surface = Surface(
    "segment-profiles",
    routes,
    {ProfileError: _on_profile_error, HTTPException: on_http, Exception: _on_crash},
    fragment.paths,
)
