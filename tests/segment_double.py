"""A local Segment-compatible HTTP Tracking API receiver for tests.

Runs aiohttp.web on 127.0.0.1 (random port) in its own thread and event loop,
so both async tests and the synchronous end-to-end tests (the server has its
own loop) can use it. It checks requests the way Segment does:

* only ``POST /v1/batch`` (anything else: 404);
* ``Content-Type: application/json`` and ``Authorization: Basic
  base64(<write_key>:)`` with an empty password (else 400 / 401);
* body ≤ 500 KB and valid JSON with a ``batch`` array (else 400);
* like Segment, per-call problems (over 32 KB, more than 2,500 calls, missing
  ``type``/``event``/identity, ``messageId`` ≥ 100 chars) do not change the
  200 answer: those calls are recorded in :attr:`SegmentDouble.rejected`.

``plan`` is a list of ``(status, headers)`` answers consumed one per request
(then 200 ``{"success": true}``); requests answered with a planned failure are
recorded but their calls are not accepted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

MAX_BODY = 500 * 1024
MAX_CALL = 32 * 1024
MAX_CALLS = 2500


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class SegmentDouble:
    write_key: str = "wk_test_segment"
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    #: parsed bodies of the requests answered 200
    batches: list[dict[str, Any]] = field(default_factory=list)
    #: (reason, call) of calls Segment would silently drop
    rejected: list[tuple[str, Any]] = field(default_factory=list)
    plan: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> SegmentDouble:
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def _start(self) -> int:
        app = web.Application(client_max_size=4 * MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return int(self._runner.addresses[0][1])

    def close(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    # -- views ---------------------------------------------------------------------------

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every accepted track call, in arrival order."""
        with self._lock:
            return [call for batch in self.batches for call in batch["batch"]]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError("condition not met in time")

    # -- the endpoint --------------------------------------------------------------------

    def _reply(self, request: web.Request, body: bytes, status: int, payload: dict[str, Any]) -> web.Response:
        with self._lock:
            self.requests.append(Request(request.method, request.path, dict(request.headers), body, status))
        return web.json_response(payload, status=status)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.method != "POST" or request.path != "/v1/batch":
            return self._reply(request, body, 404, {"success": False, "message": "not found"})
        if request.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            return self._reply(request, body, 400, {"success": False, "message": "Content-Type must be JSON"})
        expected = "Basic " + base64.b64encode(f"{self.write_key}:".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return self._reply(request, body, 401, {"success": False, "message": "invalid write key"})
        if len(body) > MAX_BODY:
            return self._reply(request, body, 400, {"success": False, "message": "request too large"})
        try:
            doc = json.loads(body)
        except ValueError:
            return self._reply(request, body, 400, {"success": False, "message": "invalid JSON"})
        if not isinstance(doc, dict) or not isinstance(doc.get("batch"), list):
            return self._reply(request, body, 400, {"success": False, "message": "batch must be an array"})
        with self._lock:
            planned = self.plan.pop(0) if self.plan else None
        if planned is not None:
            status, headers = planned
            with self._lock:
                self.requests.append(Request(request.method, request.path, dict(request.headers), body, status))
            return web.json_response({"success": False}, status=status, headers=headers)
        received = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        accepted: list[dict[str, Any]] = []
        for n, call in enumerate(doc["batch"]):
            reason = self._problem(call, n)
            if reason is not None:
                with self._lock:
                    self.rejected.append((reason, call))
                continue
            accepted.append({**call, "receivedAt": received})
        with self._lock:
            self.batches.append({**doc, "batch": accepted})
        return self._reply(request, body, 200, {"success": True})

    @staticmethod
    def _problem(call: Any, n: int) -> str | None:
        if n >= MAX_CALLS:
            return "batch has more than 2500 calls"
        if not isinstance(call, dict):
            return "call is not an object"
        if len(json.dumps(call, separators=(",", ":"), ensure_ascii=False).encode()) > MAX_CALL:
            return "call over 32 KB"
        if not call.get("type"):
            return "missing type"
        if call["type"] == "track" and not call.get("event"):
            return "track without event"
        if not call.get("userId") and not call.get("anonymousId"):
            return "no_user_anon_id"
        message_id = call.get("messageId")
        if message_id is not None and (not isinstance(message_id, str) or len(message_id) >= 100):
            return "messageId must be a string under 100 characters"
        return None
