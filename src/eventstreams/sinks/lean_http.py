"""A lean HTTP/1.1 client for the webhook sink: one request per event at the rate a receiver can take.

aiohttp's client spends most of a small request in Python (request objects, timers, stream readers;
docs/benchmarks.md, issue 13); this one writes each request as one buffer and parses the answer with
httptools (the parser uvicorn uses) on keep-alive connections pooled per sender. The policy is
:mod:`eventstreams.sinks.http`'s: every address is checked against the SSRF policy when a connection is
made (resolved once, pinned; nothing cached, so a rebinding answer is checked again), a total timeout per
request, no redirects, proxies or cookies, and at most :data:`EXCERPT_BYTES` of a body kept (a longer body
ends the connection instead of being read).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

import httptools

from ..netpolicy import AsyncResolver, resolve_checked
from ..outcome import EXCERPT_BYTES

__all__ = ["InvalidResponse", "LeanClient", "Response"]


class InvalidResponse(Exception):
    """The endpoint answered with something that is not HTTP/1.1 (its fault: retried like a lost connection)."""


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names; the last value of a repeated one
    body: bytes = b""  # at most EXCERPT_BYTES


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.response = Response(0)
        self.body = bytearray()
        self.reusable = True
        self.closed = False
        self.answered = False  # a byte of the answer arrived (a reused connection that fails before may be retried)
        self.deadline = 0.0  # loop time by which the request in flight must be answered (LeanClient._sweep)

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(InvalidResponse("the endpoint switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(InvalidResponse(str(exc) or type(exc).__name__))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        w = self.waiter
        if w is None or w.done():
            return
        if self.response.status >= 200:  # a body delimited by the connection's end
            self._finish()
        else:
            w.set_exception(exc or ConnectionResetError("the endpoint closed the connection without answering"))

    # -- httptools callbacks
    def on_message_begin(self) -> None:
        self.response, self.body = Response(0), bytearray()

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self.response.headers
        if len(headers) < 100:
            headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.response.status = self.parser.get_status_code()
        if not self.parser.should_keep_alive():
            self.reusable = False

    def on_body(self, body: bytes) -> None:
        room = EXCERPT_BYTES - len(self.body)
        if room > 0:
            self.body += body[:room]
        if len(body) > room and self.waiter is not None and not self.waiter.done():
            # more than the excerpt: answer now and drop the connection rather than read the rest
            self.reusable = False
            self._finish()

    def on_message_complete(self) -> None:
        if self.response.status < 200:  # 1xx (100 Continue, 103): the real answer follows
            self.response = Response(0)
            return
        self._finish()

    # -- the client's side
    def _finish(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            self.response.body = bytes(self.body)
            w.set_result(self.response)

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        w = self.waiter
        if w is not None and not w.done():
            w.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def send(self, data: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None
        if not self.usable():
            raise ConnectionResetError("the connection closed while idle")
        self.answered = False
        self.response, self.body = Response(0), bytearray()  # never the last request's answer
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()


Key = tuple[str, str, int]  # scheme, host, port
_LINE_BREAK = re.compile("[\r\n\0]")


class ClientPolicy:
    """What every outbound HTTP client of the sinks is given (sinks/http.py's policy)."""

    def __init__(
        self, *, allow_private: bool, timeout: float, max_in_flight: int, resolver: AsyncResolver | None = None
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.allow_private = allow_private
        self.timeout = timeout
        self._max_in_flight = max_in_flight
        self._resolver = resolver


class LeanClient(ClientPolicy):
    """A sender's connections (at most ``max_in_flight`` kept idle per destination; the sender bounds how many
    requests run at once). Created outside a running loop; connections belong to the loop that made them."""

    def __init__(
        self, *, allow_private: bool, timeout: float, max_in_flight: int, resolver: AsyncResolver | None = None
    ) -> None:
        super().__init__(allow_private=allow_private, timeout=timeout, max_in_flight=max_in_flight, resolver=resolver)
        self._max_idle = max_in_flight
        self._idle: dict[Key, list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None
        # Requests in flight are timed out by one sweep every twentieth of the timeout while any is in flight,
        # not by a timer each: asyncio.timeout per request was a tenth of the sender's CPU (docs/benchmarks.md).
        self._in_flight: set[_Connection] = set()
        self._sweeping: asyncio.TimerHandle | None = None
        self._sweep_every = min(1.0, max(0.005, self.timeout / 20))

    async def request(
        self, method: str, scheme: str, host: str, port: int, target: str, headers: Mapping[str, str],
        body: bytes | None,
    ) -> Response:  # fmt: skip
        """Send one request and read its answer within the timeout. ``host`` is the URL's host (IDNA,
        brackets for IPv6), ``target`` the path and query as sent. Raises ``TimeoutError``,
        ``DestinationRefused``, ``ssl.SSLError``, ``OSError`` or :class:`InvalidResponse`."""
        data = _request_bytes(method, host, port, scheme, target, headers, body)
        key = (scheme, host, port)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            conn = self._take(key)
            reused = conn is not None
            if conn is None:
                async with asyncio.timeout_at(deadline):  # connecting is rare: a timer of its own is cheap here
                    conn = await self._connect(scheme, host, port)
            try:
                response = await self._exchange(loop, conn, data, deadline)
            except TimeoutError:
                conn.close()
                raise
            except (ConnectionError, OSError):
                conn.close()
                if reused and not conn.answered:
                    continue  # the endpoint closed an idle connection as it was reused: a fresh one
                raise
            except BaseException:
                conn.close()
                raise
            break
        if conn.reusable and not conn.closed and len(self._idle.setdefault(key, [])) < self._max_idle:
            self._idle[key].append(conn)
        else:
            conn.close()
        return response

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, conn: _Connection, data: bytes, deadline: float
    ) -> Response:
        if loop.time() >= deadline:
            raise TimeoutError(f"no answer within {self.timeout:g} s")
        waiter = conn.send(data)
        conn.deadline = deadline
        self._in_flight.add(conn)
        if self._sweeping is None:
            self._sweeping = loop.call_at(loop.time() + self._sweep_every, self._sweep, loop)
        try:
            return await waiter
        finally:
            self._in_flight.discard(conn)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail the requests whose deadline passed (their connection closes); look again while any is in flight."""
        now = loop.time()
        try:
            for conn in [c for c in self._in_flight if c.deadline <= now]:
                self._in_flight.discard(conn)
                conn._fail(TimeoutError(f"no answer within {self.timeout:g} s"))
        finally:  # whatever happened, the requests still in flight keep a sweep
            self._sweeping = loop.call_at(now + self._sweep_every, self._sweep, loop) if self._in_flight else None

    def _take(self, key: Key) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.usable():
                return conn
        return None

    async def _connect(self, scheme: str, host: str, port: int) -> _Connection:
        bare = host[1:-1] if host.startswith("[") else host
        addresses = await resolve_checked(bare, port, self.allow_private, resolver=self._resolver)
        loop = asyncio.get_running_loop()
        tls = self._context() if scheme == "https" else None
        error: OSError | None = None
        for ip in addresses:  # each one passed the policy; the first that answers is used
            try:
                _, proto = await loop.create_connection(
                    _Connection, ip, port, ssl=tls, server_hostname=bare if tls is not None else None
                )
                return proto
            except ssl.SSLError:
                raise
            except OSError as exc:
                error = exc
        raise error or OSError(f"no address to connect to for {bare}")

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def close(self) -> None:
        if self._sweeping is not None:
            self._sweeping.cancel()
            self._sweeping = None
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


def _request_bytes(
    method: str, host: str, port: int, scheme: str, target: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    default = 443 if scheme == "https" else 80
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}" if port == default else f"Host: {host}:{port}"]
    if _LINE_BREAK.search("".join(headers.values())):  # an event id is the sender's text: no header injection
        name = next(n for n, v in headers.items() if _LINE_BREAK.search(v))
        raise ValueError(f"header {name} holds a line break")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()  # UTF-8 values, as aiohttp sends them
    return head + body if body else head
