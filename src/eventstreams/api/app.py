"""Builds the ASGI application: routes, Twilio-style errors, lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..catalog import builtin_schema_versions, builtin_types
from ..config import Settings
from ..crypto import Box
from ..domain.accounts import Accounts
from ..domain.control import ControlPlane
from ..errors import METHOD_NOT_ALLOWED, NOT_FOUND, TwilioError
from ..store import open_store
from ..store.base import Store
from . import accounts, events_v1
from .context import Services, services
from .http import JSON, error_response
from .openapi import openapi_document

log = logging.getLogger("eventstreams.api")


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
    await store.sync_builtin_catalog(builtin_types(), builtin_schema_versions())
    box = Box.load(settings.secret_key, settings.data_dir)
    return Services(settings, store, box, Accounts(store, box), ControlPlane(store, box, settings))


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
        try:
            yield {}
        finally:
            if own:
                await s.store.close()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            *events_v1.routes,
            *accounts.routes,
        ],
        exception_handlers={TwilioError: on_twilio_error, HTTPException: on_http_error, Exception: on_crash},
        lifespan=lifespan,
    )
    app.state.services = svc
    return app
