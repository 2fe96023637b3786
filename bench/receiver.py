"""A minimal, fast webhook receiver for the benchmarks (run in its own process).

``python -m bench.receiver PORT`` serves HTTP/1.1 with keep-alive on 127.0.0.1:PORT
using a raw asyncio protocol + httptools (on uvloop when available), so that it
is never what bounds a benchmark (``bench.run`` measures it with ``wrk``).

Every POST whose path does not start with ``/_`` is a delivery: its body is a
CloudEvent or a JSON array of them. The receiver counts events (total and per
path, paths without their query string) and, for events carrying the ``benchts``
extension attribute (publish time in ns since the epoch, set by the client),
records receipt latency = now - benchts.

Control endpoints (JSON answers):

* ``GET  /_stats``                 counts: ``{"events", "requests", "paths": {path: events}, "statuses": {...}}``
* ``POST /_reset``                 zero the counters and latencies
* ``GET  /_latency``               latencies in microseconds, as a JSON array
* ``POST /_status?code=503``       answer every delivery with that status from now on (200 restores)
* ``POST /_parse?on=0``            stop parsing bodies (count requests only, for ``wrk``)
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import defaultdict
from typing import Any

import httptools
import orjson

_RESP_CACHE: dict[int, bytes] = {}
_REASONS = {200: b"OK", 503: b"Service Unavailable", 404: b"Not Found", 500: b"Internal Server Error"}


def _response(status: int, body: bytes = b"", keep_alive: bool = True) -> bytes:
    head = b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\nContent-Type: application/json\r\n" % (
        status,
        _REASONS.get(status, b"X"),
        len(body),
    )
    if not keep_alive:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body


class State:
    def __init__(self) -> None:
        self.reset()
        self.status = 200
        self.parse = True

    def reset(self) -> None:
        self.events = 0
        self.requests = 0
        self.paths: dict[str, int] = defaultdict(int)
        self.statuses: dict[int, int] = defaultdict(int)
        self.latencies_us: list[int] = []
        self.first_ns = 0
        self.last_ns = 0

    def stats(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "requests": self.requests,
            "paths": dict(self.paths),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "latencies": len(self.latencies_us),
        }


STATE = State()


class Proto(asyncio.Protocol):
    __slots__ = ("body", "parser", "transport", "url")

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(_response(400, b"", keep_alive=False))
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        url = self.url
        path, _, query = url.partition(b"?")
        st = STATE
        if path.startswith(b"/_"):
            self.transport.write(self._control(path, query))
            return
        now = time.time_ns()
        st.requests += 1
        status = st.status
        st.statuses[status] += 1
        if status != 200:
            self.transport.write(_RESP_CACHE.setdefault(status, _response(status)))
            return
        n = 1
        if st.parse:
            body = b"".join(self.body)
            if body:
                try:
                    doc = orjson.loads(body)
                except orjson.JSONDecodeError:
                    doc = None
                events = doc if isinstance(doc, list) else [doc]
                n = len(events)
                lat = st.latencies_us
                for ev in events:
                    if isinstance(ev, dict):
                        ts = ev.get("benchts")
                        if ts:
                            lat.append((now - int(ts)) // 1000)
        st.events += n
        st.paths[path.decode()] += n
        if not st.first_ns:
            st.first_ns = now
        st.last_ns = now
        self.transport.write(_RESP_CACHE.setdefault(200, _response(200)))

    def _control(self, path: bytes, query: bytes) -> bytes:
        st = STATE
        params = dict(p.split(b"=", 1) for p in query.split(b"&") if b"=" in p)
        if path == b"/_stats":
            return _response(200, orjson.dumps(st.stats()))
        if path == b"/_latency":
            return _response(200, orjson.dumps(st.latencies_us))
        if path == b"/_reset":
            st.reset()
            return _response(200, b"{}")
        if path == b"/_status":
            st.status = int(params.get(b"code", b"200"))
            return _response(200, b"{}")
        if path == b"/_parse":
            st.parse = params.get(b"on", b"1") == b"1"
            return _response(200, b"{}")
        return _response(404, b"{}")


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Proto, "127.0.0.1", port, backlog=1024, reuse_address=True)
    print(f"receiver listening on {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    port = int(sys.argv[1])
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # plain asyncio is still fast enough for the smaller runs
        pass
    asyncio.run(serve(port))


if __name__ == "__main__":
    main()
