"""HTTP clients side by side for one request per event (issue 13, ``batch_events=false``).

    python -m bench.senders [--seconds 8] [--repeat 3] [--only aiohttp,lean] [--json FILE]

``bench.receiver`` runs in its own process (as in ``bench.run``). Each client runs in a fresh
subprocess and POSTs one 784-byte event per request (the scenarios' event, a pool of 2,048
distinct ones) to it with 32 requests in flight (the sink's ``max_in_flight``), 1 s of warm-up,
then ``--seconds`` measured. Headers are the webhook sender's own (``WebhookSender._signed``:
User-Agent, I-Twilio-Idempotency-Token, Content-Type, X-Twilio-Signature on the URL with
``bodySHA256``, webhook-id/-timestamp/-signature), computed per request (``live``) or once per
pooled event before the window (``pre``), so the signing cost shows separately.

Clients:

* ``sink``     the project's ``WebhookSender.send`` itself (the lean client with the SSRF policy,
               classify_http), called as the dispatcher calls it: two lanes, each sending chunks of
               500 events with ``max_in_flight`` 32; it signs itself, so ``live`` only
* ``aiohttp``  ClientSession, TCPConnector(limit=32) keep-alive, as sinks/http.py configures it
               (no cookie jar, trust_env off, total timeout, no redirects), without the resolver
* ``httpx``    AsyncClient, HTTP/1.1, Limits(max_connections=32)
* ``httpx+sniffio``  the same with ``sniffio`` importable. httpcore 1.0.9 runs ``import sniffio``
               each time it sets up a lock or an event (several times a request); anyio 4.16 no
               longer depends on sniffio and this venv has none, so every one of those imports fails
               and searches sys.path again. The child puts a stub in ``sys.modules`` whose
               ``current_async_library()`` returns "asyncio" (``pip install sniffio`` does the same)
* ``httpx-split+sniffio``  32 AsyncClients of one connection each, sniffio stubbed: httpcore's pool
               pass is O(connections x waiting requests) per request (encode/httpcore#1035,
               encode/httpx#3215); this shows httpx without it
* ``urllib3``  PoolManager(maxsize=32, block=True) shared by 32 threads (no event loop)
* ``lean``     a raw asyncio Protocol client: a keep-alive pool of 32 connections, the request
               written as one buffer, responses parsed with httptools, a timeout handle per request

each on the default asyncio loop and on uvloop. The limit is ``wrk -t1 -c32`` with the same
body and headers against the same receiver, before and after the clients in every round.
Reported per client: requests/s, ratio to wrk (the mean of the round's two wrk runs), client CPU
per request (process CPU time in the window / requests: what a sender costs the core it shares
with the rest of ``serve``) and the receiver's CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import urllib.request
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .harness import ROOT, EventFactory, Receiver, cpu_seconds

CONCURRENCY = 32
POOL = 2048
# the sink is driven as the dispatcher drives it: DispatchConfig's pipelines, each sending leased chunks
SINK_LANES, SINK_CHUNK = 2, 500
WARMUP_S = 1.0
TOKEN = "f" * 32
CLIENTS = ["sink", "aiohttp", "httpx", "httpx+sniffio", "httpx-split+sniffio", "urllib3", "lean"]
LOOPS = ["asyncio", "uvloop"]

# -- requests ---------------------------------------------------------------------------------


def make_sender(url: str) -> Any:
    from eventstreams.sinks.base import SinkContext
    from eventstreams.sinks.signing import new_standard_webhook_secret
    from eventstreams.sinks.webhook import WebhookSender

    ctx = SinkContext(
        sid="DG" + "0" * 32,
        account_sid="AC" + "0" * 32,
        sink_type="webhook",
        configuration={"destination": url, "method": "POST", "batch_events": False},
        auth_token=TOKEN,
        signing_secret=new_standard_webhook_secret(),
        allow_private=True,
        timeout=5.0,
        max_in_flight=CONCURRENCY,
    )
    return WebhookSender(ctx)


def bodies(n: int = POOL) -> list[tuple[str, bytes]]:
    """(event id, body): the benchmark scenarios' event, distinct ids."""
    f = EventFactory(f"{os.getpid() & 0xFFFFFF:06x}s00")
    out = []
    for _ in range(n):
        b = f.one()
        eid = b.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()
        out.append((eid, b))
    return out


class Requests:
    """The next request (url, headers, body), signed now (live) or from a precomputed pool (pre)."""

    def __init__(self, url: str, mode: str) -> None:
        from eventstreams.sinks.webhook import _Request

        self.sender = make_sender(url)
        self.pool = bodies()
        self.reqs = [_Request(1, eid, self.sender.url, b) for eid, b in self.pool]
        self.mode = mode
        self.pre = [(*self.sender._signed(r), r.body) for r in self.reqs] if mode == "pre" else []
        self.i = 0

    def next(self) -> tuple[str, dict[str, str], bytes]:
        self.i += 1
        if self.mode == "pre":
            return self.pre[self.i % POOL]  # type: ignore[no-any-return]
        r = self.reqs[self.i % POOL]
        url, headers = self.sender._signed(r)
        return url, headers, r.body


# -- the clients (run in the child process) -----------------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.n = 0
        self.errors: dict[str, int] = {}
        self.stop = False

    def bad(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def run_sink(url: str, mode: str, c: Counter) -> Callable[[], Awaitable[None]]:
    from eventstreams.outcome import OutcomeKind
    from eventstreams.sinks.base import NoPacer, OutgoingEvent

    sender = make_sender(url)
    events = [OutgoingEvent(eid, "com.twilio.messaging.message.delivered", b) for eid, b in bodies()]
    pacer = NoPacer()

    async def lane(k: int) -> None:
        i = k * SINK_CHUNK
        while not c.stop:
            chunk = [events[(i + j) % POOL] for j in range(SINK_CHUNK)]
            i += SINK_LANES * SINK_CHUNK
            for outcome in await sender.send(chunk, pacer):
                if outcome.kind is OutcomeKind.SUCCESS:
                    c.n += 1
                else:
                    c.bad(f"{outcome.kind.value} {outcome.message[:80]}")

    tasks = [asyncio.create_task(lane(k)) for k in range(SINK_LANES)]

    async def close() -> None:
        await asyncio.gather(*tasks)
        await sender.close()

    return close


async def run_aiohttp(url: str, mode: str, c: Counter) -> Callable[[], Awaitable[None]]:
    import aiohttp
    from yarl import URL

    reqs = Requests(url, mode)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONCURRENCY, use_dns_cache=False),
        timeout=aiohttp.ClientTimeout(total=5.0),
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        raise_for_status=False,
    )

    async def worker() -> None:
        while not c.stop:
            u, headers, body = reqs.next()
            async with session.post(URL(u, encoded=True), data=body, headers=headers, allow_redirects=False) as r:
                await r.read()
                if r.status == 200:
                    c.n += 1
                else:
                    c.bad(f"HTTP {r.status}")

    tasks = [asyncio.create_task(worker()) for _ in range(CONCURRENCY)]

    async def close() -> None:
        await asyncio.gather(*tasks)
        await session.close()

    return close


async def run_httpx(url: str, mode: str, c: Counter, clients: int = 1) -> Callable[[], Awaitable[None]]:
    import httpx

    reqs = Requests(url, mode)
    per = CONCURRENCY // clients
    pool = [
        httpx.AsyncClient(
            http1=True,
            http2=False,
            limits=httpx.Limits(max_connections=per, max_keepalive_connections=per),
            timeout=5.0,
            trust_env=False,
            follow_redirects=False,
        )
        for _ in range(clients)
    ]

    async def worker(client: httpx.AsyncClient) -> None:
        while not c.stop:
            u, headers, body = reqs.next()
            r = await client.post(u, content=body, headers=headers)
            if r.status_code == 200:
                c.n += 1
            else:
                c.bad(f"HTTP {r.status_code}")

    tasks = [asyncio.create_task(worker(pool[k % clients])) for k in range(CONCURRENCY)]

    async def close() -> None:
        await asyncio.gather(*tasks)
        for client in pool:
            await client.aclose()

    return close


async def run_httpx_split(url: str, mode: str, c: Counter) -> Callable[[], Awaitable[None]]:
    """32 AsyncClients of one connection each: httpx without its pool's O(connections x waiters)
    assignment pass (httpcore 1.0.9; encode/httpcore#1035, encode/httpx#3215)."""
    return await run_httpx(url, mode, c, clients=CONCURRENCY)


class LeanConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request at a time; httptools parses the response."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        import httptools

        self.loop = loop
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        import httptools

        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(ConnectionError("connection closed"))

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self.parser.should_keep_alive()
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_result((self.parser.get_status_code(), b"".join(self.body)))

    def send(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.waiter = self.loop.create_future()
        self.transport.write(data)
        return self.waiter


class LeanClient:
    """A keep-alive pool of at most ``limit`` connections to one host:port (plain HTTP here)."""

    def __init__(self, host: str, port: int, limit: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.host_header = f"{host}:{port}".encode()
        self.idle: deque[LeanConnection] = deque()
        self.open = 0
        self.slots = asyncio.Semaphore(limit)

    async def _connection(self) -> LeanConnection:
        while self.idle:
            conn = self.idle.pop()
            if conn.reusable:
                return conn
            self.open -= 1
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: LeanConnection(loop), self.host, self.port)
        self.open += 1
        return conn

    async def post(self, target: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        head = "".join([f"{k}: {v}\r\n" for k, v in headers.items()]).encode("latin-1")
        data = b"POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n\r\n%s" % (
            target.encode("latin-1"),
            self.host_header,
            head,
            len(body),
            body,
        )
        async with self.slots:
            conn = await self._connection()
            fut = conn.send(data)
            timer = conn.loop.call_later(self.timeout, conn._fail, TimeoutError("no response"))
            try:
                return await fut
            finally:
                timer.cancel()
                if conn.reusable:
                    self.idle.append(conn)
                else:
                    self.open -= 1

    def close(self) -> None:
        while self.idle:
            conn = self.idle.pop()
            if conn.transport is not None:
                conn.transport.close()


async def run_lean(url: str, mode: str, c: Counter) -> Callable[[], Awaitable[None]]:
    reqs = Requests(url, mode)
    parts = urlsplit(url)
    client = LeanClient(parts.hostname or "127.0.0.1", parts.port or 80, CONCURRENCY, 5.0)

    origin = f"{parts.scheme}://{parts.netloc}"  # the sink's URL is split once; the signed URL only adds a query

    async def worker() -> None:
        while not c.stop:
            u, headers, body = reqs.next()
            status, _ = await client.post(u[len(origin) :], headers, body)
            if status == 200:
                c.n += 1
            else:
                c.bad(f"HTTP {status}")

    tasks = [asyncio.create_task(worker()) for _ in range(CONCURRENCY)]

    async def close() -> None:
        await asyncio.gather(*tasks)
        client.close()

    return close


ASYNC_CLIENTS = {
    "sink": run_sink,
    "aiohttp": run_aiohttp,
    "httpx": run_httpx,
    "httpx-split": run_httpx_split,
    "lean": run_lean,
}


def measure_window(c: Counter, seconds: float) -> dict[str, Any]:
    """Called after the warm-up: requests and process CPU over ``seconds``."""
    n0, c0, t0 = c.n, time.process_time(), time.perf_counter()
    time.sleep(seconds)
    n1, c1, t1 = c.n, time.process_time(), time.perf_counter()
    return {"requests": n1 - n0, "seconds": t1 - t0, "cpu_s": c1 - c0}


async def child_async(client: str, url: str, mode: str, seconds: float) -> dict[str, Any]:
    c = Counter()
    close = await ASYNC_CLIENTS[client](url, mode, c)
    await asyncio.sleep(WARMUP_S)
    n0, c0, t0 = c.n, time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    n1, c1, t1 = c.n, time.process_time(), time.perf_counter()
    c.stop = True
    await close()
    return {"requests": n1 - n0, "seconds": t1 - t0, "cpu_s": c1 - c0, "errors": c.errors}


def child_urllib3(url: str, mode: str, seconds: float) -> dict[str, Any]:
    import urllib3

    reqs = Requests(url, mode)
    lock = threading.Lock()  # Requests.next is not thread-safe (a counter); a real sender signs per thread
    pm = urllib3.PoolManager(maxsize=CONCURRENCY, block=True, retries=False, timeout=5.0)
    c = Counter()

    def worker() -> None:
        while not c.stop:
            with lock:
                u, headers, body = reqs.next()
            r = pm.request("POST", u, body=body, headers=headers, redirect=False, retries=False)
            if r.status == 200:
                with lock:
                    c.n += 1
            else:
                with lock:
                    c.bad(f"HTTP {r.status}")

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(CONCURRENCY)]
    for t in threads:
        t.start()
    time.sleep(WARMUP_S)
    out = measure_window(c, seconds)
    c.stop = True
    for t in threads:
        t.join(10)
    pm.clear()
    return {**out, "errors": c.errors}


def child(client: str, loop: str, url: str, mode: str, seconds: float) -> dict[str, Any]:
    if client.endswith("+sniffio"):
        import types

        stub = types.ModuleType("sniffio")
        stub.current_async_library = lambda: "asyncio"  # type: ignore[attr-defined]
        sys.modules.setdefault("sniffio", stub)
        client = client.removesuffix("+sniffio")
    if client == "urllib3":
        return child_urllib3(url, mode, seconds)
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(child_async(client, url, mode, seconds))
    return asyncio.run(child_async(client, url, mode, seconds))


# -- the parent: receiver, wrk, table -------------------------------------------------------------


def control(url: str) -> Any:
    req = urllib.request.Request(url, method="POST" if not url.endswith("/_stats") else "GET")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def run_child(client: str, loop: str, url: str, mode: str, seconds: float, receiver: Receiver) -> dict[str, Any]:
    assert receiver.proc is not None
    control(receiver.url + "/_reset")
    r0 = cpu_seconds(receiver.proc.pid)
    cmd = [sys.executable, "-m", "bench.senders", "--child", client, "--loop", loop, "--mode", mode]
    cmd += ["--url", url, "--seconds", str(seconds)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60, check=False)
    r1 = cpu_seconds(receiver.proc.pid)
    received = control(receiver.url + "/_stats")["requests"]
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}"}
    res = dict(json.loads(p.stdout.strip().splitlines()[-1]))
    n = max(1, res["requests"])
    return {
        "req_per_s": round(res["requests"] / res["seconds"]),
        "client_cpu_us_per_req": round(1e6 * res["cpu_s"] / n, 1),
        "client_cpu_pct": round(100 * res["cpu_s"] / res["seconds"]),
        # over the whole child run (warm-up included): the receiver's cost per request it answered
        "receiver_cpu_us_per_req": round(1e6 * (r1 - r0) / max(1, received), 1),
        "errors": res.get("errors") or {},
    }


def run_wrk(url: str, headers: dict[str, str], body: bytes, seconds: float, receiver: Receiver, tmp: Path) -> Any:
    exe = shutil.which("wrk")
    if exe is None or receiver.proc is None:
        return None
    script = tmp / "senders.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body.decode())}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    control(receiver.url + "/_reset")
    r0 = cpu_seconds(receiver.proc.pid)
    p = subprocess.Popen(
        [exe, "-t1", f"-c{CONCURRENCY}", f"-d{round(seconds)}s", "-s", str(script), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    out = p.stdout.read() if p.stdout else ""
    r1 = cpu_seconds(receiver.proc.pid)
    st = control(receiver.url + "/_stats")
    rps = next((float(ln.split()[1]) for ln in out.splitlines() if ln.startswith("Requests/sec:")), None)
    if rps is None:
        return None
    n = max(1, st["requests"])
    return {
        "req_per_s": round(rps),
        "client_cpu_us_per_req": round(1e6 * (usage.ru_utime + usage.ru_stime) / n, 1),
        "receiver_cpu_us_per_req": round(1e6 * (r1 - r0) / n, 1),
        "non_200": sum(v for k, v in st["statuses"].items() if k != "200"),
    }


def signing_costs() -> dict[str, float]:
    """µs per request of the webhook sender's signatures on the 784-byte event (live mode's extra)."""
    from eventstreams.sinks.signing import standard_webhook_headers, twilio_json_signature
    from eventstreams.sinks.webhook import _Request

    sender = make_sender("http://127.0.0.1:9/e2e")
    pool = bodies(1000)
    reqs = [_Request(1, eid, sender.url, b) for eid, b in pool]
    secret = sender._ctx.signing_secret
    now = int(time.time())

    def per(fn: Callable[[int], Any], n: int = 20_000) -> float:
        best = min(timeit.repeat(lambda: [fn(i % 1000) for i in range(n)], number=1, repeat=5))
        return round(1e6 * best / n, 2)

    # What caching can take off: the body's SHA-256 (per event: the same for every retry and every
    # sink), and the HMAC key set-up (per sink: hmac objects keyed once, .copy() per message).
    import base64
    import hashlib
    import hmac

    from eventstreams.sinks.signing import _decode_whsec

    tw_key = hmac.new(TOKEN.encode(), digestmod=hashlib.sha1)
    sw_key = hmac.new(_decode_whsec(secret), digestmod=hashlib.sha256)
    digests = [hashlib.sha256(b).hexdigest() for _, b in pool]

    def tw_cached(i: int) -> str:
        h = tw_key.copy()
        h.update(f"{sender.url}?bodySHA256={digests[i]}".encode())
        return base64.b64encode(h.digest()).decode()

    def sw_cached(i: int) -> str:
        h = sw_key.copy()
        h.update(f"{pool[i][0]}.{now}.".encode())
        h.update(pool[i][1])
        return "v1," + base64.b64encode(h.digest()).decode()

    return {
        "x_twilio_signature_us": per(lambda i: twilio_json_signature(sender.url, pool[i][1], TOKEN)),
        "standard_webhooks_us": per(lambda i: standard_webhook_headers(pool[i][0], now, pool[i][1], secret)),
        "sender_signed_us": per(lambda i: sender._signed(reqs[i])),  # both + the header dict, as sent
        "body_sha256_us": per(lambda i: hashlib.sha256(pool[i][1]).hexdigest()),
        "x_twilio_keyed_cached_sha_us": per(tw_cached),
        "standard_webhooks_keyed_us": per(sw_cached),
        "body_bytes": len(pool[0][1]),
    }


def summarise(values: list[float]) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    fmt = (lambda v: f"{v:,.0f}") if med >= 100 else (lambda v: f"{v:,.2f}" if med < 10 else f"{v:,.1f}")
    if len(values) == 1:
        return fmt(med)
    return f"{fmt(med)} ({fmt(min(values))}-{fmt(max(values))})"


def table(results: dict[str, Any]) -> str:
    rounds = results["rounds"]
    keys: list[str] = []
    for rd in rounds:
        for k in rd["clients"]:
            if k not in keys:
                keys.append(k)
    head = ["client", "loop", "signing", "requests/s", "ratio to wrk", "client CPU µs/req", "client CPU %",
            "receiver CPU µs/req"]  # fmt: skip
    out = [head]
    wrk_rows = [w for rd in rounds for w in (rd["wrk_before"], rd["wrk_after"]) if w]
    if wrk_rows:
        out.append(["wrk -t1 -c32 (limit)", "-", "pre", summarise([w["req_per_s"] for w in wrk_rows]), "1",
                    summarise([w["client_cpu_us_per_req"] for w in wrk_rows]), "-",
                    summarise([w["receiver_cpu_us_per_req"] for w in wrk_rows])])  # fmt: skip
    for k in keys:
        client, loop, mode = k.split("/")
        got = [rd["clients"][k] for rd in rounds if "req_per_s" in rd["clients"].get(k, {})]
        ratios = [rd["clients"][k]["ratio_to_wrk"] for rd in rounds if "ratio_to_wrk" in rd["clients"].get(k, {})]
        errs = [rd["clients"][k].get("error") or rd["clients"][k].get("errors") for rd in rounds]
        note = " *" if any(errs) else ""
        out.append([client, loop if client != "urllib3" else "threads", mode,
                    summarise([g["req_per_s"] for g in got]) + note, summarise(ratios),
                    summarise([g["client_cpu_us_per_req"] for g in got]),
                    summarise([g["client_cpu_pct"] for g in got]),
                    summarise([g["receiver_cpu_us_per_req"] for g in got])])  # fmt: skip
    widths = [max(len(r[i]) for r in out) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in out]
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in out[1:]]
    return "\n".join(lines) + "\n\nmarkdown:\n" + "\n".join(md)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.senders", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--repeat", type=int, default=1, help="rounds (each with its own wrk runs); the table gives "
                    "the median and the range")  # fmt: skip
    ap.add_argument("--only", default=",".join(CLIENTS), help="clients: " + ",".join(CLIENTS))
    ap.add_argument("--loops", default=",".join(LOOPS))
    ap.add_argument("--modes", default="live,pre")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--signing-only", action="store_true", help="only the signing costs (µs per request)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--loop", default="asyncio", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="live", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.loop, args.url, args.mode, args.seconds)))
        return

    clients = [c for c in args.only.split(",") if c]
    loops = [c for c in args.loops.split(",") if c]
    modes = [c for c in args.modes.split(",") if c]
    combos = []
    for client in clients:
        for loop in loops if client != "urllib3" else ["-"]:
            for mode in modes if client != "sink" else ["live"]:
                combos.append((client, loop, mode))
    if args.signing_only:
        print(json.dumps(signing_costs()))
        return
    results: dict[str, Any] = {"rounds": []}
    with tempfile.TemporaryDirectory(prefix="es-senders-") as tmp:
        receiver = Receiver(log_dir=Path(tmp)).start()
        try:
            url = receiver.url + "/e2e"
            reqs = Requests(url, "pre")
            wrk_url, wrk_headers, wrk_body = reqs.pre[0]
            for rnd in range(args.repeat):
                rd: dict[str, Any] = {"load_before": os.getloadavg(), "signing": signing_costs()}
                print(f"[round {rnd + 1}] signing, µs per request: {rd['signing']}", flush=True)
                rd["wrk_before"] = run_wrk(wrk_url, wrk_headers, wrk_body, args.seconds, receiver, Path(tmp))
                print(f"[round {rnd + 1}] wrk: {rd['wrk_before']}", flush=True)
                rd["clients"] = {}
                for client, loop, mode in combos:
                    res = run_child(client, loop if loop != "-" else "asyncio", url, mode, args.seconds, receiver)
                    rd["clients"][f"{client}/{loop}/{mode}"] = res
                    print(f"[round {rnd + 1}] {client}/{loop}/{mode}: {res}", flush=True)
                rd["wrk_after"] = run_wrk(wrk_url, wrk_headers, wrk_body, args.seconds, receiver, Path(tmp))
                print(f"[round {rnd + 1}] wrk: {rd['wrk_after']}", flush=True)
                walls = [w["req_per_s"] for w in (rd["wrk_before"], rd["wrk_after"]) if w]
                if walls:
                    limit = statistics.fmean(walls)
                    for res in rd["clients"].values():
                        if "req_per_s" in res:
                            res["ratio_to_wrk"] = round(res["req_per_s"] / limit, 3)
                rd["load_after"] = os.getloadavg()
                results["rounds"].append(rd)
        finally:
            receiver.close()
    print()
    print(table(results))
    sig = [rd["signing"] for rd in results["rounds"]]
    print("\nsigning, µs per request (784-byte body): " + "; ".join(
        f"{k.removesuffix('_us')} {summarise([s[k] for s in sig])}" for k in sig[0] if k.endswith("_us")))  # fmt: skip
    print("\nload average per round (before, after): " + "; ".join(
        f"{rd['load_before'][0]:.2f} -> {rd['load_after'][0]:.2f}" for rd in results["rounds"]))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
