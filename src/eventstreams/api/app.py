"""Builds the ASGI application: routes, Twilio-style errors, lifespan."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import clock
from ..bridge import api as bridge
from ..catalog import SCHEMA_HOST, builtin_schema_versions, builtin_types
from ..catalog.runtime import Catalog
from ..config import Settings
from ..crypto import Box
from ..delivery.publish import Publisher
from ..domain.accounts import Accounts, Principal
from ..domain.control import ControlPlane, Sink
from ..errors import METHOD_NOT_ALLOWED, NOT_FOUND, TwilioError, bad_request
from ..store import open_store
from ..store.base import Store
from . import accounts, delivery, events_v1
from .context import Services, services
from .http import JSON, error_response
from .openapi import openapi_document

log = logging.getLogger("eventstreams.api")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RejectControlCharsInPath:
    """A decoded path with NUL or another control character (``%00``, ``%0A``)
    names no resource; PostgreSQL cannot even compare text holding NUL. 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope.get("path", "")
            bad = _CONTROL.search(path)
            if bad is not None:
                what = "a NUL" if bad.group() == "\x00" else f"a control character ({bad.group()!r})"
                err = bad_request(f"The request path contains {what} at offset {bad.start()}")
                await error_response(err)(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def healthz(request: Request) -> Response:
    try:
        ok = await services(request).store.ping()
    except Exception:  # any store failure means "not healthy", never a 500
        log.exception("health check failed")
        ok = False
    return JSON({"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503)


async def openapi(request: Request) -> Response:
    return JSON(openapi_document(services(request).base))


async def on_twilio_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TwilioError)
    return error_response(exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        err = TwilioError(METHOD_NOT_ALLOWED, f"Method {request.method} not allowed on {request.url.path}", 405)
        resp = error_response(err)
        if exc.headers and "Allow" in exc.headers:
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    if exc.status_code == 404:
        return error_response(TwilioError(NOT_FOUND, f"The requested resource {request.url.path} was not found", 404))
    return error_response(TwilioError(exc.status_code * 100, exc.detail or "HTTP error", exc.status_code))


async def on_crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(TwilioError(20500, "Internal Server Error", 500))


async def build_services(settings: Settings, store: Store | None = None) -> Services:
    store = store or open_store(settings)
    await store.open()
    await store.migrate()
    await store.catalogue.sync_builtins(builtin_types(), builtin_schema_versions())
    box = Box.load(settings.secret_key, settings.data_dir)
    catalog = Catalog(store)
    publisher = Publisher(store, catalog, settings.dedupe_window_s, base_url=settings.public_base_url())
    return Services(settings, store, box, Accounts(store, box), ControlPlane(store, box, settings), catalog, publisher)


async def start_delivery(s: Services) -> None:
    """Run the dispatcher in this process and route wake-ups to it."""
    from ..delivery.service import DeliveryService

    s.delivery = DeliveryService(s.settings, s.store, s.box, s.catalog)
    s.publisher.on_stored = s.delivery.dispatcher.wake
    await s.delivery.start()


async def send_test_event(s: Services, p: Principal, sink: Sink, test_id: str) -> None:
    """Sink Test: store com.twilio.eventstreams.test-event for this sink only.

    Like Twilio, the event id is the account SID and the source is "Sink".
    """
    from ..store.records import NewEvent

    now = clock.now()
    event = {
        "specversion": "1.0",
        "type": "com.twilio.eventstreams.test-event",
        "source": "Sink",
        "id": p.account.sid,
        "dataschema": f"{SCHEMA_HOST}/EventStreams.TestSink/1.json",
        "datacontenttype": "application/json",
        "time": clock.iso_ms(now),
        "data": {"test_id": test_id},
    }
    row = NewEvent(
        p.account.sid, "com.twilio.eventstreams.test-event", 1, clock.iso_ms(now), orjson.dumps(event).decode()
    )
    await s.store.deliveries.enqueue_for_sink(p.account.sid, sink.row.sid, [row], int(now * 1000))
    if s.delivery is not None:
        s.delivery.dispatcher.wake([sink.row.sid])


def create_app(settings: Settings, svc: Services | None = None, announce: bool = True) -> Starlette:
    """``svc`` given: the caller owns the store's lifetime (tests, embedding)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        own = app.state.services is None
        if own:
            app.state.services = await build_services(settings)
        s: Services = app.state.services
        app.state.loop = asyncio.get_running_loop()
        created = await s.accounts.ensure_first(settings.account_sid, settings.auth_token)
        if created is not None and announce:
            row, token = created
            # Printed once: the token is stored only hashed and sealed.
            print(
                "eventstreams: created first account\n"
                f"  EVENTSTREAMS_ACCOUNT_SID={row.sid}\n  EVENTSTREAMS_AUTH_TOKEN={token}",
                flush=True,
            )
        if settings.delivery and s.delivery is None:
            await start_delivery(s)
        app.state.on_sink_test = lambda p, sink, test_id: send_test_event(s, p, sink, test_id)
        try:
            yield {}
        finally:
            if s.delivery is not None:
                await s.delivery.stop()
                s.delivery = None
            if own:
                await s.store.close()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            *events_v1.routes,
            *delivery.routes,
            *bridge.routes,
            *accounts.routes,
        ],
        exception_handlers={TwilioError: on_twilio_error, HTTPException: on_http_error, Exception: on_crash},
        middleware=[Middleware(RejectControlCharsInPath)],
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # Twilio answers 404 for a trailing slash; so do we
    app.state.services = svc
    return app
