"""The operator's paths of the root surface (docs/operations.md): ``/healthz`` (alive), ``/readyz`` (able
to serve: store, migrations, dispatcher), ``/metrics`` (Prometheus), and the middleware counting HTTP
requests by route template."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import AUTH_FAILED, TwilioError, not_found
from ..runtime import Runtime
from .context import services
from .http import JSON

log = logging.getLogger("eventstreams.api")
CHECK_TIMEOUT_S = 2.0  # a store that does not answer in this long is not ready


async def healthz(request: Request) -> Response:
    """The process answers: nothing else is asked (a liveness probe must not fail because the store did)."""
    return JSON({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready to serve: the store answers, every packaged migration is applied, and the dispatcher runs
    when this process delivers. 200 or 503, with each check."""
    rt = services(request)
    checks: dict[str, dict[str, Any]] = {}

    async def check(name: str, probe: Any) -> None:
        try:
            ok, detail = await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
        except TimeoutError:
            ok, detail = False, f"no answer within {CHECK_TIMEOUT_S:g} s"
        except Exception as exc:  # any failure is "not ready", never a 500
            log.warning("readiness check %s failed", name, exc_info=True)
            # the driver's message can name hosts and users: it goes to the log, not to whoever asks
            ok, detail = False, f"failed ({type(exc).__name__}; the server's log says why)"
        checks[name] = {"ok": ok, **({"detail": detail} if detail else {})}

    async def store() -> tuple[bool, str | None]:
        return await rt.store.ping(), None

    async def migrations() -> tuple[bool, str | None]:
        pending = await rt.store.pending_migrations()
        return not pending, f"not applied: {', '.join(pending)}" if pending else None

    await check("store", store)
    await check("migrations", migrations)
    if rt.settings.delivery:

        async def dispatcher() -> tuple[bool, str | None]:
            running = rt.delivering
            return running, None if running else "the delivery dispatcher is not running"

        await check("dispatcher", dispatcher)
    ready = all(c["ok"] for c in checks.values())
    return JSON({"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    """Prometheus text, for a scraper holding ``EVENTSTREAMS_METRICS_TOKEN`` as a bearer token. The
    numbers are the whole process's (every account's; every process's in multiprocess mode), so account
    credentials do not open them; without the setting the path does not exist."""
    rt = services(request)
    token = rt.settings.metrics_token
    if not token:
        raise not_found(f"The requested resource {request.url.path} was not found")
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise TwilioError(AUTH_FAILED, "Authenticate with Authorization: Bearer <EVENTSTREAMS_METRICS_TOKEN>", 401)
    await rt.metrics.refresh(rt.store)
    body = await asyncio.to_thread(rt.metrics.render) if rt.metrics.multiproc_dir else rt.metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class HttpMetrics:
    """Counts each request by method, route template (``/v1/Sinks/{sid}``, never the raw path: bounded
    labels) and status, and times it. The route is what the routers matched (Starlette leaves it in the
    scope); a request no route matched is ``unmatched``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = scope["app"]  # the sub-apps replace scope["app"]; the runtime hangs off the root's state
        status = 500
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            rt: Runtime | None = getattr(root.state, "services", None)
            if rt is not None:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                method = scope["method"] if scope["method"] in _METHODS else "OTHER"
                rt.metrics.observe_http(method, route, status, time.perf_counter() - started)


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
