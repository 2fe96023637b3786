"""Builds the ASGI application: the mounted surfaces, the root's own few
paths (/healthz, /readyz, /metrics: api/ops.py; /openapi.json), and the lifespan that owns the runtime."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..bridge import api as bridge
from ..config import Settings
from ..console import views as console
from ..errors import bad_request
from ..objectsource import api as object_sources_api
from ..profiles import api as profiles_api
from ..runtime import Runtime, build_runtime
from ..tracking import api as tracking_api
from ..tracking import sources_api
from ..warehouse import api as events_warehouse_api
from . import accounts, delivery, events_v1, openapi
from .context import services
from .http import JSON, error_response
from .ops import HttpMetrics, healthz, metrics, readyz
from .surface import Mounted, Surface
from .twilio_errors import TWILIO_ERRORS, on_http_error

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
                message = f"The request path contains {what} at offset {bad.start()}"
                if path.startswith(profiles_api.PATH_PREFIX):  # that surface answers in Segment's shape
                    await profiles_api.error_response(400, "invalid_request_error", message)(scope, receive, send)
                    return
                await error_response(bad_request(message))(scope, receive, send)
                return
        await self.app(scope, receive, send)


def surfaces(sandbox: bool = False) -> list[Surface]:
    """Every HTTP surface, in matching order (the publish path first: it is the hot one); the Twilio
    sandbox's only when it is mounted (``EVENTSTREAMS_SANDBOX``, or ``eventstreams sandbox``)."""
    system = Surface(
        "system",
        [
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/openapi.json", _openapi, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        TWILIO_ERRORS,
        openapi.system_paths,
    )
    mounted = [delivery.surface, events_v1.surface, tracking_api.surface, profiles_api.surface, accounts.surface,
               sources_api.surface, object_sources_api.surface, events_warehouse_api.surface, bridge.surface, system,
               console.surface]  # fmt: skip
    if sandbox:
        from ..sandbox import api as sandbox_api

        mounted.insert(3, sandbox_api.surface)
    return mounted


async def _root_http_error(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith(profiles_api.PATH_PREFIX):
        return await profiles_api.on_http(request, exc)
    return await on_http_error(request, exc)


async def _openapi(request: Request) -> Response:
    rt = services(request)
    return JSON(openapi.openapi_document(rt.base, surfaces(rt.settings.sandbox)))


def create_app(settings: Settings, svc: Runtime | None = None, announce: bool = True) -> Starlette:
    """``svc`` given: the caller owns the runtime's lifetime (tests, embedding)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        own = app.state.services is None
        if own:
            app.state.services = await build_runtime(settings)
        rt: Runtime = app.state.services
        app.state.loop = asyncio.get_running_loop()
        created = await rt.accounts.ensure_first(settings.account_sid, settings.auth_token)
        if created is not None and announce:
            row, token = created
            # Printed once: the token is stored only hashed and sealed.
            print(
                "eventstreams: created first account\n"
                f"  EVENTSTREAMS_ACCOUNT_SID={row.sid}\n  EVENTSTREAMS_AUTH_TOKEN={token}",
                flush=True,
            )
        if settings.delivery:
            await rt.start_delivery()
        if settings.sandbox:
            await rt.start_sandbox()
        if settings.source_syncs:
            await rt.start_syncs()
        try:
            yield {}
        finally:
            await rt.stop_syncs()
            await rt.stop_sandbox()
            await rt.stop_delivery()
            if own:
                await rt.close()

    mounted: Sequence[Mounted] = [Mounted(s) for s in surfaces(settings.sandbox)]
    app = Starlette(
        routes=list(mounted),
        # Only what no surface matched reaches the root: answer it in Twilio's shape, the default, except
        # under the Profile API's prefix (a path there that matches no route still gets Segment's shape).
        exception_handlers={**TWILIO_ERRORS, HTTPException: _root_http_error},
        middleware=[Middleware(HttpMetrics), Middleware(RejectControlCharsInPath)],
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # Twilio answers 404 for a trailing slash; so do we
    app.state.services = svc
    app.state.surfaces = [m.surface for m in mounted]
    return app
