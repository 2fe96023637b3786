"""Twilio's error shape for the surfaces that speak Twilio's API: every failure,
including Starlette's own 404/405 and unexpected bugs, answers Twilio's JSON
(``code``, ``message``, ``more_info``, ``status``)."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..errors import METHOD_NOT_ALLOWED, NOT_FOUND, TwilioError
from ..store.errors import NotFound
from .http import error_response

log = logging.getLogger("eventstreams.api")


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


async def on_gone(request: Request, exc: Exception) -> Response:
    """A write whose referent a racing request deleted, where the domain did not say more."""
    return error_response(TwilioError(NOT_FOUND, f"{exc}; the request was not applied", 404))


async def on_crash(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after answering, so the root app's handler sees the surface's crash again.
    if not getattr(exc, "_eventstreams_logged", False):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        exc._eventstreams_logged = True  # type: ignore[attr-defined]
    return error_response(TwilioError(20500, "Internal Server Error", 500))


TWILIO_ERRORS: dict[Any, Any] = {
    TwilioError: on_twilio_error,
    HTTPException: on_http_error,
    NotFound: on_gone,
    Exception: on_crash,
}
