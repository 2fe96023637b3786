"""The surface seam: a surface's crash is answered in its error shape and logged once."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventstreams.api.surface import Mounted, Surface
from eventstreams.api.twilio_errors import TWILIO_ERRORS


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug")


def call(app: Any, path: str) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [], "root_path": "", "scheme": "http", "server": ("t", 80), "app": app}  # fmt: skip

    async def go() -> None:
        try:
            await app(scope, receive, send)
        except RuntimeError:
            pass  # Starlette re-raises a crash after answering (for the server to log); we answered

    asyncio.run(go())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body


def test_a_surface_crash_is_twilio_shaped_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    root = Starlette(routes=[Mounted(Surface("t", [Route("/boom", boom)], TWILIO_ERRORS))],
                     exception_handlers=TWILIO_ERRORS)  # fmt: skip
    root.state.services = object()
    with caplog.at_level(logging.ERROR, logger="eventstreams.api"):
        status, body = call(root, "/boom")
    assert status == 500 and json.loads(body)["code"] == 20500
    assert [r.getMessage() for r in caplog.records if r.name == "eventstreams.api"] == ["unhandled error on GET /boom"]
    status, body = call(root, "/nothing-here")
    assert status == 404 and json.loads(body)["code"] == 20404
