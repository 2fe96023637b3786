"""The tracking surface: Segment's HTTP Tracking API paths, auth by write key, Segment's errors
(``{"code", "message"}``, what segment-analytics-python reads) and its limits. Every request's
messages are stored in one transaction before the 200."""

from __future__ import annotations

import time
import zlib
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..api import openapi
from ..api.http import JSON
from ..api.surface import Surface, runtime_of
from ..runtime import Runtime
from ..store.errors import NotFound
from ..store.records import TrackingSourceRow
from . import rules


class SegmentError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


async def _on_segment_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SegmentError)
    body = {"success": False, "code": exc.code, "message": exc.message}
    return JSON(body, status_code=exc.status, headers=exc.headers)


async def _on_crash(request: Request, exc: Exception) -> Response:
    import logging

    logging.getLogger("eventstreams.tracking").exception("unhandled error on %s", request.url.path)
    return JSON({"success": False, "code": "internal", "message": "Internal Server Error"}, status_code=500)


async def _on_http(request: Request, exc: Exception) -> Response:
    from starlette.exceptions import HTTPException

    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    return JSON({"success": False, "code": code, "message": f"{request.method} {request.url.path}: {exc.detail}"},
                status_code=exc.status_code)  # fmt: skip


class _Buckets:
    """Per-source token buckets (requests/s), in this process."""

    def __init__(self) -> None:
        self._state: dict[str, tuple[float, float]] = {}

    def take(self, source: TrackingSourceRow) -> float:
        """0 when the request may go on, else the seconds until it may."""
        now = time.monotonic()
        tokens, last = self._state.get(source.sid, (float(source.rate_limit), now))
        tokens = min(float(source.rate_limit), tokens + (now - last) * source.rate_limit)
        if tokens < 1.0:
            self._state[source.sid] = (tokens, now)
            return (1.0 - tokens) / source.rate_limit
        self._state[source.sid] = (tokens - 1.0, now)
        return 0.0


_buckets = _Buckets()


async def _body(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit * 4:  # compressed or not, far too big
        raise SegmentError(400, "too_large", f"Request body is larger than {limit} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit * 4:
            raise SegmentError(400, "too_large", f"Request body is larger than {limit} bytes")
    data = bytes(raw)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding == "gzip":
        try:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            data = d.decompress(data, limit + 1)
        except zlib.error:
            raise SegmentError(400, "invalid_body", "Content-Encoding is gzip but the body is not valid gzip") from None
    elif encoding not in ("", "identity"):
        raise SegmentError(400, "invalid_body", f"Unsupported Content-Encoding {encoding[:20]!r} (use gzip or none)")
    if len(data) > limit:
        raise SegmentError(400, "too_large", f"Request body is larger than {limit} bytes")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/json", "text/plain", ""):
        raise SegmentError(400, "invalid_body", f"Content-Type must be application/json (got {ctype[:40]})")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SegmentError(400, "invalid_json", f"The body is not valid JSON: {exc}") from None


def _write_key(request: Request, body: Any) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:6].lower() == "basic ":
        import base64
        import binascii

        try:
            user, _, _password = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise SegmentError(401, "unauthorized", "The Authorization header is not valid Basic auth") from None
        if user:
            return user
    key = body.get("writeKey") if isinstance(body, dict) else None
    return key if isinstance(key, str) and key else None


async def _source(svc: Runtime, request: Request, body: Any) -> TrackingSourceRow:
    key = _write_key(request, body)
    if key is None:
        raise SegmentError(401, "unauthorized", "A write key is required: Basic auth with it as the username, or "
                                                "writeKey in the body")  # fmt: skip
    source = await svc.sources.by_write_key(key)
    if source is None:
        raise SegmentError(401, "unauthorized", "Invalid write key")
    if not source.enabled:
        raise SegmentError(403, "source_disabled", f"Source {source.name!r} is disabled")
    wait = _buckets.take(source)
    if wait > 0:
        secs = max(1, int(wait + 0.999))
        raise SegmentError(429, "rate_limited", f"More than {source.rate_limit} requests/s for this source",
                           {"Retry-After": str(secs), "X-RateLimit-Reset": str(secs)})  # fmt: skip
    return source


async def _receive(request: Request, batch: bool, forced_type: str | None = None) -> Response:
    svc: Runtime = runtime_of(request)
    body = await _body(request, rules.MAX_BATCH_BYTES if batch else rules.MAX_CALL_BYTES)
    if not isinstance(body, dict):
        raise SegmentError(400, "invalid_body", "The body must be a JSON object")
    source = await _source(svc, request, body)
    now = time.time()
    received = datetime.fromtimestamp(now, UTC)
    if batch:
        items = body.get("batch")
        if not isinstance(items, list):
            raise SegmentError(400, "invalid_body", "batch must be an array of messages")
        over = len(items) > rules.MAX_BATCH_EVENTS
        checked = []
        for item in items:
            if isinstance(item, dict):
                item = rules.merge_batch(item, body.get("context"), body.get("integrations"))
            c = rules.check(item, received, body.get("sentAt"))
            if over and c.reason is None:  # Segment answers 200 and drops the whole over-long batch
                c = rules.Checked(c.message, c.message_id, c.type, "too_many_events")
            checked.append(c)
    else:
        checked = [rules.check(body, received, None, forced_type)]
    try:
        rows, stored = await svc.ingest.receive(source, checked, received)
    except NotFound:  # the source was deleted while this request ran
        raise SegmentError(401, "unauthorized", "Invalid write key (its source was deleted)") from None
    accepted = sum(1 for r in stored if r.status == "accepted")
    rejected = sum(1 for r in rows if r.status == "rejected")
    out: dict[str, Any] = {"success": True, "accepted": accepted, "rejected": rejected,
                           "duplicates": len(rows) - len(stored)}  # fmt: skip
    if rejected:
        out["reasons"] = sorted({r.reason for r in rows if r.reason})
    return JSON(out)


def _single(kind: str) -> Any:
    async def endpoint(request: Request) -> Response:
        return await _receive(request, batch=False, forced_type=kind)

    endpoint.__name__ = kind
    return endpoint


async def batch(request: Request) -> Response:
    return await _receive(request, batch=True)


routes = [Route(f"/v1/{kind}", _single(kind), methods=["POST"]) for kind in sorted(rules.TYPES)]
routes += [Route("/v1/batch", batch, methods=["POST"]), Route("/v1/import", batch, methods=["POST"])]


def _errors() -> dict[Any, Any]:
    from starlette.exceptions import HTTPException

    return {SegmentError: _on_segment_error, HTTPException: _on_http, Exception: _on_crash}


surface = Surface("segment-tracking", routes, _errors(), openapi.tracking_paths)
