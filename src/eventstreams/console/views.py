"""The console's pages: parse the form or query, call the runtime's domain services (the same calls
the API and the CLI make), render a template. Errors the domain raises (``TwilioError``) come back as a
flash message on the page the form was posted from."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import html
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import orjson
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import clock
from ..api.surface import Surface, runtime_of
from ..domain.accounts import Principal
from ..domain.operations import ReplayRequest, parse_instant
from ..errors import TwilioError, bad_request
from ..profiles.service import BadIdentifier
from ..runtime import Runtime
from ..sinks import registry as sink_types
from ..sinks.spec import ConfigOptions, Field, SinkType
from ..store.records import PageQuery
from . import session as sessions

HERE = Path(__file__).parent
PREFIX = "/console"
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False, default=str)
templates.env.filters["ms_iso"] = lambda ms: clock.iso(ms / 1000) if ms is not None else ""
FLASH = "es_flash"
OUTCOMES = ("delivered", "failed", "dead", "skipped")
FIRST_PAGE = 50
STREAM_S = 5.0  # how long one debugger stream lasts before the browser reconnects (and resumes)


@dataclasses.dataclass
class Ctx:
    """What a signed-in page handler gets: the runtime, who is acting, the session and the POSTed form."""

    rt: Runtime
    p: Principal
    session: sessions.Session
    form: dict[str, list[str]]

    def one(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None


Handler = Callable[[Request, Ctx], Awaitable[Response]]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def _set_session(request: Request, response: Response, rt: Runtime, s: sessions.Session) -> None:
    response.set_cookie(sessions.COOKIE, sessions.encode(rt.box, s), max_age=sessions.MAX_AGE_S, path=PREFIX,
                        httponly=True, samesite="lax", secure=_secure(request))  # fmt: skip


def _flash(response: Response, kind: str, text: str) -> Response:
    value = base64.urlsafe_b64encode(orjson.dumps({"kind": kind, "text": text[:500]})).decode()
    response.set_cookie(FLASH, value, max_age=60, path=PREFIX, httponly=True, samesite="lax")
    return response


def _read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH)
    if not raw:
        return None
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("text"), str) and doc.get("kind") in ("ok", "error"):
        return {"kind": str(doc["kind"]), "text": doc["text"]}
    return None


def _local(url: str | None, default: str) -> str:
    """``url``'s path and query when it is a console page (a redirect target must never leave the site)."""
    if not url:
        return default
    parts = urlsplit(url)
    if not parts.path.startswith(PREFIX + "/") or "\\" in parts.path or parts.path.startswith("//"):
        return default
    return parts.path + (f"?{parts.query}" if parts.query else "")


MAX_FORM_BYTES = 256 * 1024


async def read_form(request: Request, max_fields: int) -> dict[str, list[str]] | None:
    """The urlencoded body, or ``None`` when it is too large or has too many fields."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        return parse_qs(bytes(body).decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=max_fields)
    except ValueError:  # more fields than max_fields
        return None


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


async def render(request: Request, c: Ctx | None, name: str, status: int = 200, **context: Any) -> Response:
    extra: dict[str, Any] = {}
    if c is not None:
        subs = await c.rt.accounts.list(c.p, None, "active", PageQuery(size=100))
        extra = {"p": c.p, "csrf": c.session.csrf, "accounts": subs.items}
    flash = _read_flash(request)
    response = templates.TemplateResponse(
        request, name, {"prefix": PREFIX, "flash": flash, "path": request.url.path, **extra, **context},
        status_code=status,
    )
    response.headers["cache-control"] = "no-store"
    if flash is not None:
        response.delete_cookie(FLASH, path=PREFIX)
    return response


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Signed in, or off to the sign-in page; a POST must carry the session's CSRF token."""

    async def endpoint(request: Request) -> Response:
        rt: Runtime = runtime_of(request)
        s = sessions.decode(rt.box, request.cookies.get(sessions.COOKIE))
        p = await sessions.principal(rt.store, rt.box, s) if s is not None else None
        if s is None or p is None:
            if request.method != "GET" or request.headers.get("accept") == "text/event-stream":
                return HTMLResponse("Sign in first", status_code=401)
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response = redirect(f"{PREFIX}/signin?next={quote(target, safe='')}")
            response.delete_cookie(sessions.COOKIE, path=PREFIX)
            return response
        form: dict[str, list[str]] = {}
        if request.method == "POST":
            parsed = await read_form(request, 1000)
            if parsed is None:
                return HTMLResponse("The form is too large", status_code=413)
            form = parsed
            given = request.headers.get("x-csrf-token") or (form.get("csrf") or [""])[0]
            if not sessions.csrf_ok(s.csrf, given):
                return HTMLResponse("Invalid or missing CSRF token: reload the page and try again", status_code=403)
        c = Ctx(rt, p, s, form)
        try:
            return await handler(request, c)
        except (TwilioError, BadIdentifier) as exc:
            text = exc.message if isinstance(exc, TwilioError) else str(exc)
            if request.method == "POST":
                back = _local(request.headers.get("referer"), PREFIX + "/")
                return _flash(redirect(back), "error", text)
            status = exc.status if isinstance(exc, TwilioError) else 400
            return await render(request, c, "error.html", status=status, message=text)

    return endpoint


# -- sign-in, sign-out, the account switcher ---------------------------------------------------------


async def root(request: Request) -> Response:
    return redirect(PREFIX + "/")


async def signin(request: Request) -> Response:
    rt: Runtime = runtime_of(request)
    limiter: sessions.SignInLimiter | None = getattr(request.app.state, "signin_limiter", None)
    if limiter is None:  # one per mounted app, so each server (and each test server) counts its own
        limiter = request.app.state.signin_limiter = sessions.SignInLimiter()
    next_url = _local(request.query_params.get("next"), PREFIX + "/")
    token = request.cookies.get(sessions.SIGNIN_COOKIE) or secrets.token_urlsafe(24)
    error: str | None = None
    status = 200
    if request.method == "GET":
        current = sessions.decode(rt.box, request.cookies.get(sessions.COOKIE))
        if current is not None and await sessions.principal(rt.store, rt.box, current) is not None:
            return redirect(next_url)  # signed in already
    if request.method == "POST":
        form = await read_form(request, 20)
        if form is None:
            return HTMLResponse("The form is too large", status_code=413)
        got = {k: v[0] for k, v in form.items()}
        next_url = _local(got.get("next"), next_url)
        who = _client(request)
        if limiter.blocked(who):
            error, status = "Too many failed sign-ins from your address: wait a minute and try again", 429
        elif not sessions.csrf_ok(token, got.get("csrf")) or request.cookies.get(sessions.SIGNIN_COOKIE) is None:
            error, status = "The form expired: try again", 403
        else:
            user, secret = got.get("username", "").strip(), got.get("password", "")
            header = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
            # counted as a failure before the check, taken back on success: concurrent attempts cannot all
            # pass `blocked` while the first ones are still being checked
            limiter.failed(who)
            try:
                p = await rt.accounts.authenticate(header)
            except TwilioError:
                error, status = "Those credentials were not accepted", 401
            else:
                limiter.succeeded(who)
                stored = await _credential_hash(rt, p)
                response = redirect(next_url)
                _set_session(request, response, rt, sessions.new_session(rt.box, p, stored))
                response.delete_cookie(sessions.SIGNIN_COOKIE, path=PREFIX)
                return response
    response = templates.TemplateResponse(
        request, "signin.html", {"prefix": PREFIX, "csrf": token, "next": next_url, "error": error, "flash": None},
        status_code=status,
    )
    response.set_cookie(sessions.SIGNIN_COOKIE, token, max_age=3600, path=PREFIX, httponly=True, samesite="lax",
                        secure=_secure(request))  # fmt: skip
    return response


async def _credential_hash(rt: Runtime, p: Principal) -> str:
    if p.key_sid is not None:
        key = await rt.store.accounts.get_key(p.key_sid)
        if key is None:
            raise bad_request("The key was deleted")
        return key.secret_hash
    return p.caller.token_hash


@page
async def signout(request: Request, c: Ctx) -> Response:
    response = redirect(PREFIX + "/signin")
    response.delete_cookie(sessions.COOKIE, path=PREFIX)
    return response


@page
async def switch_account(request: Request, c: Ctx) -> Response:
    """Act as one of the caller's subaccounts (or itself), as the API's X-Eventstreams-Account does."""
    target = c.one("account") or ""
    row = await c.rt.accounts.visible(Principal(c.p.caller, c.p.caller, c.p.key_sid), target)
    if row.status != "active":
        raise bad_request(f"Account {row.sid} is {row.status}")
    response = _flash(redirect(PREFIX + "/"), "ok", f"Now acting as {row.friendly_name} ({row.sid})")
    _set_session(request, response, c.rt, c.session.acting_as(row.sid))
    return response


# -- overview and charts ---------------------------------------------------------------------------


@page
async def overview(request: Request, c: Ctx) -> Response:
    _, sinks = await c.rt.control.list_sinks(c.p, None, None, PageQuery(size=FIRST_PAGE))
    return await render(request, c, "overview.html", sinks=sinks)


@page
async def chart_data(request: Request, c: Ctx) -> Response:
    """Per minute over the last hour: events in, and per sink delivered/failed; the retry backlog."""
    now_ms = int(time.time() * 1000)
    first = now_ms // 60000 - 59
    ins, outs = await c.rt.store.delivery_log.per_minute(c.p.account.sid, first * 60000)
    minutes = list(range(first, first + 60))
    events_in = [0] * 60
    for r in ins:
        if 0 <= int(r["m"]) - first < 60:  # an event of the minute that began after now_ms (or a clock ahead)
            events_in[int(r["m"]) - first] += int(r["n"])
    per_sink: dict[str, dict[str, list[int]]] = {}
    for r in outs:
        series = per_sink.setdefault(r["sink_sid"], {o: [0] * 60 for o in ("delivered", "failed")})
        kind = "delivered" if r["outcome"] == "delivered" else "failed" if r["outcome"] in ("failed", "dead") else None
        if kind is not None and 0 <= int(r["m"]) - first < 60:
            series[kind][int(r["m"]) - first] += int(r["n"])
    backlog = [{"sink_sid": b["sink_sid"], "pending": int(b["n"]),
                "oldest_age_s": max(0, (now_ms - int(b["oldest"])) // 1000)} for b in
               await c.rt.store.delivery_log.backlog(c.p.account.sid)]  # fmt: skip
    body = {"minutes": [m * 60 for m in minutes], "events_in": events_in, "sinks": per_sink, "backlog": backlog}
    return Response(orjson.dumps(body), media_type="application/json", headers={"cache-control": "no-store"})


# -- sinks -----------------------------------------------------------------------------------------


def _field_value(f: Field, raw: str | None) -> Any:
    """A form input as the JSON value the sink type declares (absent when left empty)."""
    if f.type == "boolean":
        return raw == "true"
    if raw is None or raw.strip() == "":
        return None
    if f.type == "integer":
        try:
            return int(raw)
        except ValueError:
            raise bad_request(f"{f.key} must be a whole number") from None
    if f.type in ("array", "object"):
        try:
            return json.loads(raw)
        except ValueError:
            raise bad_request(f"{f.key} must be JSON ({'a list' if f.type == 'array' else 'an object'})") from None
    return raw


def _form_fields(t: SinkType, rt: Runtime) -> list[Field]:
    """The type's fields, less those the operator has not enabled here (as the API would refuse them)."""
    options = ConfigOptions(allow_private=rt.settings.allow_private_destinations,
                            allow_sink_endpoint_url=rt.settings.allow_sink_endpoint_url)  # fmt: skip
    return [f for f in t.fields if f.operator_gate is None or getattr(options, f.operator_gate)]


@page
async def sinks_list(request: Request, c: Ctx) -> Response:
    _, sinks = await c.rt.control.list_sinks(c.p, None, None, PageQuery(size=FIRST_PAGE))
    backlog = {b["sink_sid"]: b for b in await c.rt.store.delivery_log.backlog(c.p.account.sid)}
    return await render(request, c, "sinks.html", sinks=sinks, backlog=backlog, types=sink_types.names())


@page
async def sink_new(request: Request, c: Ctx) -> Response:
    chosen = request.query_params.get("type") or sink_types.names()[0]
    t = sink_types.get(chosen)
    if t is None:
        raise bad_request(f"Unknown sink type {chosen!r}")
    if request.method == "POST":
        cfg: dict[str, Any] = {}
        for f in _form_fields(t, c.rt):
            value = _field_value(f, c.one(f"cfg.{f.key}"))
            if value is not None and not (f.type == "boolean" and value is False and f.default in (None, False)):
                cfg[f.key] = value
        sink = await c.rt.control.create_sink(c.p, c.one("description"), t.name, json.dumps(cfg))
        return _flash(redirect(f"{PREFIX}/sinks/{sink.row.sid}"), "ok", f"Sink {sink.row.sid} created")
    return await render(request, c, "sink_new.html", types=sink_types.names(), t=t, fields=_form_fields(t, c.rt))


@page
async def sink_detail(request: Request, c: Ctx) -> Response:
    sink = await c.rt.control.get_sink(c.p, request.path_params["sid"])
    _, log = await c.rt.operations.delivery_log(c.p, sink.row.sid, PageQuery(size=200))
    failures = [g for g in reversed(log.items) if g.outcome in ("failed", "dead")][:20]
    _, dead = await c.rt.operations.dead_letters(c.p, sink.row.sid, PageQuery(size=FIRST_PAGE))
    backlog = {b["sink_sid"]: b for b in await c.rt.store.delivery_log.backlog(c.p.account.sid)}
    subs = await c.rt.control.list_subscriptions(c.p, sink.row.sid, PageQuery(size=FIRST_PAGE))
    return await render(
        request, c, "sink.html", sink=sink.row, config=sink_types.redact(sink.row.sink_type, sink.configuration),
        failures=failures, dead=dead.items, backlog=backlog.get(sink.row.sid), subscriptions=subs.items,
        destination=sink_types.destination_of(sink.row.sink_type, sink.configuration, {}),
        log=[_log_entry(g) for g in reversed(log.items)][:FIRST_PAGE],
    )


@page
async def sink_test(request: Request, c: Ctx) -> Response:
    sink = await c.rt.operations.test_sink(c.p, request.path_params["sid"])
    return _flash(redirect(f"{PREFIX}/sinks/{sink.row.sid}"), "ok", "Test event sent: watch the delivery log")


@page
async def sink_delete(request: Request, c: Ctx) -> Response:
    await c.rt.control.delete_sink(c.p, request.path_params["sid"])
    return _flash(redirect(f"{PREFIX}/sinks"), "ok", "Sink deleted")


@page
async def sink_replay(request: Request, c: Ctx) -> Response:
    """Replay one dead letter, all of them, or the events received in a time range."""
    mode = c.one("mode") or "dead_letters"
    if mode == "range":
        since = parse_instant("Since", _with_zone(c.one("since")))
        until = parse_instant("Until", _with_zone(c.one("until")))
        if since is None and until is None:
            raise bad_request("Give a start or an end for the range")
        what = ReplayRequest(since=since, until=until)
    else:
        ids = tuple(i for i in c.form.get("event_id", []) if i)
        what = ReplayRequest(dead_letters=True, event_ids=ids)
    sink, n = await c.rt.operations.replay(c.p, request.path_params["sid"], what)
    back = _local(request.headers.get("referer"), f"{PREFIX}/sinks/{sink.row.sid}")
    return _flash(redirect(back), "ok", f"Replayed {n} event(s)")


def _with_zone(value: str | None) -> str | None:
    """``datetime-local`` inputs carry no offset; the console shows and takes UTC."""
    if not value:
        return None
    return value if value.endswith("Z") or "+" in value[10:] else value + "Z"


def _log_entry(g: Any) -> dict[str, Any]:
    return {"id": g.id, "sink_sid": g.sink_sid, "at": clock.iso(g.at / 1000), "outcome": g.outcome,
            "events": json.loads(g.event_ids), "attempt": g.attempt, "code": g.code, "http_status": g.http_status,
            "detail": g.detail}  # fmt: skip


# -- subscriptions and the catalogue ---------------------------------------------------------------


def product_of(type_: str) -> str:
    parts = type_.split(".")
    return ".".join(parts[1:3]) if len(parts) > 3 else ".".join(parts[:-1]) or type_


async def _catalogue(c: Ctx) -> dict[str, list[dict[str, Any]]]:
    """Every type the account may use, grouped by product, with its schema versions."""
    out: dict[str, list[dict[str, Any]]] = {}
    after: tuple[Any, ...] | None = None
    while True:
        page_ = await c.rt.control.list_types(c.p, None, PageQuery(size=1000, after=after))
        for t in page_.items:
            latest = await c.rt.catalog.latest_version(c.p.catalog_owner, t.schema_id) or 1
            out.setdefault(product_of(t.type), []).append(
                {"type": t.type, "schema_id": t.schema_id, "description": t.description, "status": t.status,
                 "versions": list(range(latest, 0, -1))},
            )
        if not page_.has_more or not page_.items:
            break
        after = (page_.items[-1].type,)
    return dict(sorted(out.items()))


def _version(text: str | None) -> int:
    if not text:
        return 1
    if not (text.isascii() and text.isdigit() and len(text) < 10):
        raise bad_request(f"Schema version {text[:20]!r} must be a whole number")
    return int(text)


@page
async def subscriptions(request: Request, c: Ctx) -> Response:
    if request.method == "POST":
        types = [json.dumps({"type": t, "schema_version": _version(c.one(f"v:{t}"))}) for t in c.form.get("type", [])]
        sub = await c.rt.control.create_subscription(c.p, c.one("description"), c.one("sink_sid"), types)
        return _flash(redirect(f"{PREFIX}/subscriptions"), "ok", f"Subscription {sub.sid} created")
    page_ = await c.rt.control.list_subscriptions(c.p, None, PageQuery(size=FIRST_PAGE))
    rows = []
    for s in page_.items:
        events = await c.rt.control.list_subscribed_events(c.p, s.sid, PageQuery(size=100))
        rows.append({"sub": s, "types": events.items})
    _, sinks = await c.rt.control.list_sinks(c.p, None, "active", PageQuery(size=FIRST_PAGE))
    return await render(request, c, "subscriptions.html", rows=rows, sinks=sinks, catalogue=await _catalogue(c),
                        chosen_sink=request.query_params.get("sink"))  # fmt: skip


@page
async def subscription_delete(request: Request, c: Ctx) -> Response:
    await c.rt.control.delete_subscription(c.p, request.path_params["sid"])
    return _flash(redirect(f"{PREFIX}/subscriptions"), "ok", "Subscription deleted")


@page
async def catalogue(request: Request, c: Ctx) -> Response:
    return await render(request, c, "catalogue.html", catalogue=await _catalogue(c))


@page
async def schema(request: Request, c: Ctx) -> Response:
    t = await c.rt.control.get_type(c.p, request.path_params["type"])
    latest = await c.rt.catalog.latest_version(c.p.catalog_owner, t.schema_id) or 1
    try:
        version = int(request.query_params.get("version") or latest)
    except ValueError:
        raise bad_request("version must be a number") from None
    v = await c.rt.control.get_schema_version(c.p, t.schema_id, version)
    doc = json.loads(v.document)
    return await render(request, c, "schema.html", t=t, version=version, versions=list(range(latest, 0, -1)),
                        doc=doc, props=_properties(doc))  # fmt: skip


def _properties(doc: Any, prefix: str = "", depth: int = 0) -> list[dict[str, Any]]:
    """A schema's properties as readable rows (name, type, required, description), nested objects flattened."""
    if not isinstance(doc, dict) or depth > 6:
        return []
    rows: list[dict[str, Any]] = []
    required = set(doc.get("required") or [])
    for name, sub in (doc.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        kind = sub.get("type") or ("ref" if "$ref" in sub else "any")
        rows.append({"name": prefix + name, "type": kind if isinstance(kind, str) else " | ".join(map(str, kind)),
                     "required": name in required, "description": sub.get("description", ""),
                     "enum": sub.get("enum")})  # fmt: skip
        rows.extend(_properties(sub, f"{prefix}{name}.", depth + 1))
    return rows


# -- the debugger ----------------------------------------------------------------------------------


@page
async def debugger(request: Request, c: Ctx) -> Response:
    _, sinks = await c.rt.control.list_sinks(c.p, None, None, PageQuery(size=FIRST_PAGE))
    q = request.query_params
    f = {"type": q.get("type", ""), "sink": q.get("sink", ""), "outcome": q.get("outcome", "")}
    return await render(request, c, "debugger.html", sinks=sinks, outcomes=OUTCOMES, f=f)


def _sse(kind: str, data: Any, cursor: tuple[int, int]) -> bytes:
    return (b"event: " + kind.encode() + b"\nid: " + f"{cursor[0]}.{cursor[1]}".encode() + b"\ndata: "
            + orjson.dumps(data) + b"\n\n")  # fmt: skip


def _resume(value: str | None) -> tuple[int, int] | None:
    """The cursor a reconnecting EventSource sends back (``Last-Event-ID``: event seq . log id)."""
    if not value:
        return None
    seq, _, log = value.partition(".")
    try:
        cursor = max(0, int(seq)), max(0, int(log))
    except ValueError:
        return None
    return cursor if max(cursor) < 2**63 else None  # past a BIGINT names nothing: start afresh


@page
async def debugger_stream(request: Request, c: Ctx) -> Response:
    """Server-sent events: the account's recent events, then each new one and each delivery attempt,
    filtered by type (events), sink and outcome (attempts). Polls the store once a second.

    A stream lasts ``STREAM_S`` and then ends: the browser reconnects at once with ``Last-Event-ID`` and
    resumes where it was. An open tab therefore never holds a server's graceful shutdown for longer, and
    a revoked session stops streaming within that time."""
    q = request.query_params
    type_f, sink_f, outcome_f = q.get("type") or "", q.get("sink") or "", q.get("outcome") or ""
    account = c.p.account.sid
    log_repo = c.rt.store.delivery_log
    resumed = _resume(request.headers.get("last-event-id"))

    def event_view(e: Mapping[str, Any]) -> dict[str, Any]:
        return {"id": e["id"], "type": e["type"], "received": clock.iso(e["received_at"] / 1000),
                "payload": json.loads(e["payload"])}  # fmt: skip

    async def stream() -> AsyncIterator[bytes]:
        last_seq, last_log = resumed or (0, 0)
        first = resumed is None
        ends = time.monotonic() + STREAM_S
        yield b"retry: 500\n\n"
        while True:
            events = await log_repo.recent_events(account, last_seq, 20 if first else 200)
            entries = await log_repo.recent(account, last_log, 50 if first else 500)
            if first and (events or entries):  # an empty first batch still marks where the feed starts
                first = False
            for e in events:
                last_seq = max(last_seq, int(e["seq"]))
                if not type_f or e["type"] == type_f:
                    yield _sse("event", event_view(e), (last_seq, last_log))
            for g in entries:
                last_log = max(last_log, g.id)
                if (not sink_f or g.sink_sid == sink_f) and (not outcome_f or g.outcome == outcome_f):
                    yield _sse("attempt", _log_entry(g), (last_seq, last_log))
            if time.monotonic() >= ends or await request.is_disconnected():
                # the resume point, even when the filters let nothing through
                yield b"event: cursor\nid: " + f"{last_seq}.{last_log}".encode() + b"\ndata: {}\n\n"
                return
            yield b": keep-alive\n\n"
            await asyncio.sleep(1.0)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})  # fmt: skip


@page
async def event_detail(request: Request, c: Ctx) -> Response:
    """One event: its payload and every delivery attempt, per sink, with its error code and response."""
    event_id = request.path_params["id"]
    found = await c.rt.store.delivery_log.event(c.p.account.sid, event_id)
    if found is None:
        raise TwilioError(20404, f"Event {event_id[:80]} was not found (or is past retention)", 404)
    attempts = await c.rt.store.delivery_log.for_event(c.p.account.sid, event_id, int(found["received_at"]))
    return await render(request, c, "event.html", event=found, payload=json.loads(found["payload"]),
                        attempts=[_log_entry(g) for g in attempts])  # fmt: skip


@page
async def alerts(request: Request, c: Ctx) -> Response:
    from ..domain.operations import alert_filter

    page_, _ = await c.rt.operations.alerts(c.p, alert_filter(None, None, None), PageQuery(size=FIRST_PAGE))
    return await render(request, c, "alerts.html", alerts=page_.items)


@page
async def dead_letters(request: Request, c: Ctx) -> Response:
    sink_f = request.query_params.get("sink") or None
    _, page_ = await c.rt.operations.dead_letters(c.p, sink_f, PageQuery(size=FIRST_PAGE))
    _, sinks = await c.rt.control.list_sinks(c.p, None, None, PageQuery(size=FIRST_PAGE))
    return await render(request, c, "dead_letters.html", dead=page_.items, sinks=sinks, sink_f=sink_f or "")


# -- connections -----------------------------------------------------------------------------------


@page
async def tracking_sources(request: Request, c: Ctx) -> Response:
    if request.method == "POST":
        row, key = await c.rt.sources.create(c.p.account, c.one("name"))
        # The write key is shown on this response only: it is stored sealed and never rendered again.
        page_ = await c.rt.sources.list(c.p.account, PageQuery(size=FIRST_PAGE))
        return await render(request, c, "sources.html", sources=page_.items, created=row, write_key=key)
    page_ = await c.rt.sources.list(c.p.account, PageQuery(size=FIRST_PAGE))
    return await render(request, c, "sources.html", sources=page_.items, created=None, write_key=None)


@page
async def tracking_source(request: Request, c: Ctx) -> Response:
    row = await c.rt.sources.get(c.p.account, request.path_params["sid"])
    msgs = await c.rt.sources.messages(row, None, PageQuery(size=FIRST_PAGE))
    return await render(request, c, "source.html", source=row, messages=[_message(m) for m in msgs.items])


def _message(m: Any) -> dict[str, Any]:
    return {"message_id": m.message_id, "type": m.type, "status": m.status, "reason": m.reason,
            "received_at": m.received_at, "payload": json.loads(m.payload)}  # fmt: skip


@page
async def tracking_source_messages(request: Request, c: Ctx) -> Response:
    """The source's newest messages as an HTML fragment (htmx polls it: the live stream)."""
    row = await c.rt.sources.get(c.p.account, request.path_params["sid"])
    msgs = await c.rt.sources.messages(row, None, PageQuery(size=FIRST_PAGE))
    return templates.TemplateResponse(request, "_messages.html", {"messages": [_message(m) for m in msgs.items]})


@page
async def object_sources(request: Request, c: Ctx) -> Response:
    page_ = await c.rt.object_sources.list_sources(c.p.account, PageQuery(size=FIRST_PAGE))
    return await render(request, c, "object_sources.html", sources=page_.items)


@page
async def object_source(request: Request, c: Ctx) -> Response:
    row = await c.rt.object_sources.get(c.p.account, request.path_params["sid"])
    runs, parts = await c.rt.object_sources.runs(row, PageQuery(size=20))
    return await render(request, c, "object_source.html", source=row, runs=runs.items, parts=parts)


@page
async def object_source_sync(request: Request, c: Ctx) -> Response:
    row = await c.rt.object_sources.get(c.p.account, request.path_params["sid"])
    await c.rt.object_sources.request_sync(row, c.one("full") == "true")
    return _flash(redirect(f"{PREFIX}/object-sources/{row.sid}"), "ok", "Sync requested: a scheduler picks it up")


@page
async def profiles(request: Request, c: Ctx) -> Response:
    kind = request.query_params.get("kind") or "user_id"
    value = (request.query_params.get("value") or "").strip()
    found: dict[str, Any] | None = None
    searched = False
    if value:
        if kind not in ("user_id", "email", "phone", "anonymous_id"):
            raise bad_request("Search by user_id, email, phone or anonymous_id")
        searched = True
        row = await c.rt.profiles.find(c.p.account.sid, f"{kind}:{value}")
        if row is not None:
            ids, _ = await c.rt.profiles.external_ids(c.p.account.sid, row.id, None, 50, None)
            events, _ = await c.rt.profiles.events(c.p.account.sid, row.id, 20, None)
            found = {"id": row.id, "traits": c.rt.profiles.traits(row), "identifiers": ids, "events": events}
    return await render(request, c, "profiles.html", kind=kind, value=value, found=found, searched=searched)


def _routes() -> list[Any]:
    p = PREFIX
    return [
        Route("/", root, methods=["GET"]),
        Route(p, root, methods=["GET"]),
        Route(p + "/", overview, methods=["GET"]),
        Route(p + "/signin", signin, methods=["GET", "POST"]),
        Route(p + "/signout", signout, methods=["POST"]),
        Route(p + "/account", switch_account, methods=["POST"]),
        Route(p + "/charts.json", chart_data, methods=["GET"]),
        Route(p + "/sinks", sinks_list, methods=["GET"]),
        Route(p + "/sinks/new", sink_new, methods=["GET", "POST"]),
        Route(p + "/sinks/{sid}", sink_detail, methods=["GET"]),
        Route(p + "/sinks/{sid}/test", sink_test, methods=["POST"]),
        Route(p + "/sinks/{sid}/delete", sink_delete, methods=["POST"]),
        Route(p + "/sinks/{sid}/replay", sink_replay, methods=["POST"]),
        Route(p + "/subscriptions", subscriptions, methods=["GET", "POST"]),
        Route(p + "/subscriptions/{sid}/delete", subscription_delete, methods=["POST"]),
        Route(p + "/catalogue", catalogue, methods=["GET"]),
        Route(p + "/catalogue/{type}", schema, methods=["GET"]),
        Route(p + "/debugger", debugger, methods=["GET"]),
        Route(p + "/debugger/stream", debugger_stream, methods=["GET"]),
        Route(p + "/events/{id}", event_detail, methods=["GET"]),
        Route(p + "/alerts", alerts, methods=["GET"]),
        Route(p + "/dead-letters", dead_letters, methods=["GET"]),
        Route(p + "/sources", tracking_sources, methods=["GET", "POST"]),
        Route(p + "/sources/{sid}", tracking_source, methods=["GET"]),
        Route(p + "/sources/{sid}/messages", tracking_source_messages, methods=["GET"]),
        Route(p + "/object-sources", object_sources, methods=["GET"]),
        Route(p + "/object-sources/{sid}", object_source, methods=["GET"]),
        Route(p + "/object-sources/{sid}/sync", object_source_sync, methods=["POST"]),
        Route(p + "/profiles", profiles, methods=["GET"]),
        Mount(p + "/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]


async def _on_error(request: Request, exc: Exception) -> Response:
    from starlette.exceptions import HTTPException

    status = exc.status_code if isinstance(exc, HTTPException) else 500
    text = exc.detail if isinstance(exc, HTTPException) else "Something went wrong"
    body = f"<!doctype html><title>{status}</title><p>{status}: {html.escape(str(text))}</p>"
    return HTMLResponse(body, status_code=status)


def _errors() -> dict[Any, Any]:
    from starlette.exceptions import HTTPException

    return {HTTPException: _on_error, Exception: _on_error}


class SecurityHeaders:
    """Every console response: never framed (clickjacking), no MIME sniffing, no referrer to other sites."""

    HEADERS = [(b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'"),
               (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]  # fmt: skip

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


# HTML pages, documented in docs/console.md rather than in /openapi.json.
surface = Surface("console", _routes(), _errors(), None, middleware=(Middleware(SecurityHeaders),))
