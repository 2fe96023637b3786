"""The webhook sink's lean HTTP/1.1 client against a scripted raw TCP server: keep-alive reuse, an idle
connection the server closed, bodies longer than the excerpt, 1xx answers, close-delimited bodies, broken
HTTP, header injection, the SSRF policy at connect time and the timeout. Each runs on asyncio and uvloop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import uvloop

from eventstreams.netpolicy import DestinationRefused
from eventstreams.outcome import EXCERPT_BYTES
from eventstreams.sinks.lean_http import InvalidResponse, LeanClient

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture(params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    return uvloop.EventLoopPolicy() if request.param == "uvloop" else asyncio.DefaultEventLoopPolicy()


@dataclass
class Scripted:
    """Answers each request on a connection with ``answer(n)`` (n counts requests on all connections);
    ``close_after`` closes a connection after that many answers."""

    answer: Callable[[int], bytes] = lambda n: OK
    close_after: int | None = None
    port: int = 0
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
                self.requests.append(head + await reader.readexactly(length))
                writer.write(self.answer(len(self.requests)))
                await writer.drain()
                served += 1
                if self.close_after is not None and served >= self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Scripted]:
    s = Scripted()
    srv = await asyncio.start_server(s.handle, "127.0.0.1", 0)
    s.port = srv.sockets[0].getsockname()[1]
    try:
        yield s
    finally:
        srv.close()


def client(timeout: float = 2.0, allow_private: bool = True) -> LeanClient:
    return LeanClient(allow_private=allow_private, timeout=timeout, max_in_flight=4)


async def post(c: LeanClient, s: Scripted, body: bytes = b"{}", **headers: str) -> tuple[int, bytes]:
    r = await c.request("POST", "http", "127.0.0.1", s.port, "/hook?a=1", headers, body)
    return r.status, r.body


async def test_requests_share_a_keep_alive_connection(server: Scripted) -> None:
    c = client()
    assert [await post(c, server) for _ in range(3)] == [(200, b"ok")] * 3
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /hook?a=1 HTTP/1.1\r\nHost: 127.0.0.1:") and b"Content-Length: 2\r\n\r\n{}" in first
    await c.close()


async def test_an_idle_connection_the_server_closed_is_replaced(server: Scripted) -> None:
    server.close_after = 1  # the server hangs up after each answer, without saying so
    c = client()
    for _ in range(3):
        assert await post(c, server) == (200, b"ok")
        await asyncio.sleep(0.05)  # the close reaches the client while the connection is idle
    assert server.connections == 3
    await c.close()


async def test_a_long_body_is_cut_to_the_excerpt_and_its_connection_dropped(server: Scripted) -> None:
    big = b"x" * (EXCERPT_BYTES * 50)
    server.answer = lambda n: b"HTTP/1.1 503 Busy\r\nContent-Length: %d\r\nRetry-After: 7\r\n\r\n" % len(big) + big
    c = client()
    r = await c.request("POST", "http", "127.0.0.1", server.port, "/", {}, b"{}")
    assert (r.status, len(r.body), r.headers["retry-after"]) == (503, EXCERPT_BYTES, "7")
    assert await post(c, server) == (503, big[:EXCERPT_BYTES])
    assert server.connections == 2
    await c.close()


async def test_informational_answers_are_skipped_and_a_close_delimited_body_is_read(server: Scripted) -> None:
    server.answer = lambda n: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nConnection: close\r\n\r\nmade"
    server.close_after = 1
    assert await post(client(), server) == (201, b"made")


async def test_broken_http_is_an_invalid_response(server: Scripted) -> None:
    server.answer = lambda n: b"SMTP ready\r\n\r\n"
    with pytest.raises(InvalidResponse):
        await post(client(), server)


async def test_a_line_break_in_a_header_value_is_refused_before_sending(server: Scripted) -> None:
    with pytest.raises(ValueError, match="line break"):
        await post(client(), server, **{"I-Twilio-Idempotency-Token": "a\r\nX-Injected: 1"})
    assert server.requests == []


async def test_private_addresses_are_refused_at_connect_time(server: Scripted) -> None:
    with pytest.raises(DestinationRefused):
        await post(client(allow_private=False), server)
    assert server.connections == 0


async def test_no_answer_within_the_timeout(server: Scripted) -> None:
    server.answer = lambda n: b""  # reads the request, never answers
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await post(client(timeout=0.2), server)
    assert 0.2 <= loop.time() - started < 1.0


async def test_a_timed_out_request_is_not_sent_again_and_the_connection_is_not_reused(server: Scripted) -> None:
    c = client(timeout=0.3)
    assert await post(c, server) == (200, b"ok")
    server.answer = lambda n: b"" if n == 2 else OK
    with pytest.raises(TimeoutError):
        await post(c, server)  # on the kept-alive connection: a timeout is not a stale connection to retry
    assert len(server.requests) == 2
    assert await post(c, server) == (200, b"ok")  # a fresh connection: the timed-out one was closed
    assert server.connections == 2


async def test_only_the_request_without_an_answer_times_out(server: Scripted) -> None:
    server.answer = lambda n: b"" if n == 3 else OK
    c = client(timeout=0.3)
    results = await asyncio.gather(*(post(c, server) for _ in range(4)), return_exceptions=True)
    assert sum(isinstance(r, TimeoutError) for r in results) == 1
    assert results.count((200, b"ok")) == 3
    assert await post(c, server) == (200, b"ok")  # the sweep left the client usable


async def test_a_hang_up_without_an_answer_is_an_error_not_a_success(server: Scripted) -> None:
    c = client()
    assert await post(c, server) == (200, b"ok")  # a keep-alive connection to reuse
    server.answer = lambda n: b""
    server.close_after = 1  # from now on: read the request, hang up
    with pytest.raises(ConnectionError):
        await post(c, server)  # the reused connection hangs up, and so does the fresh one tried after it
    assert len(server.requests) == 3
