"""The tracking API with profile resolution on, beside the Event Streams publish path, on SQLite.

    python -m bench.profiles [--profiles 1000000] [--seconds 8] [--concurrency 8]

Seeds a fresh SQLite file with ``--profiles`` profiles (each with a ``user_id`` and an
``anonymous_id``, through ``Tx.insert_rows``, not the API), starts ``eventstreams serve`` on it as its
own process (delivery off: the request path alone), then, from ``--concurrency`` keep-alive
connections for ``--seconds`` each, measures requests/s and latency (p50, p99) of:

- ``publish``: ``POST /v1/Events``, one ~780-byte event per request (the Event Streams path);
- ``identify``: ``POST /v1/identify`` for a random seeded user (its anonymousId too, two traits): a
  lookup, a trait merge and an update of an existing profile;
- ``identify-new``: a user no profile holds: a new profile and two identifiers;
- ``track``: ``POST /v1/track`` for a random seeded user;
- the same three with 100 per request (``/v1/Events`` batch, ``/v1/batch``).

Every tracking call stores the message, resolves its profile and publishes its Event Streams event in
one transaction. No sink is subscribed, so neither path writes deliveries.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.harness import EventFactory
from bench.sandbox_list import free_port, wait_up
from eventstreams.config import Settings
from eventstreams.runtime import build_runtime

PROFILE_COLUMNS = ("account_sid", "id", "merged_into", "traits", "trait_times", "phone", "phone_valid", "opted_out",
                   "date_created", "date_updated")  # fmt: skip
IDENT_COLUMNS = ("account_sid", "value", "id_type", "profile_id", "first_message_id", "date_first_seen")
STAMP = "2026-12-01T00:00:00.000Z"


async def seed(db: Path, tmp: Path, n: int, chunk: int = 100_000) -> tuple[str, str, str, float]:
    """(account SID, auth token, write key, seconds spent seeding)."""
    rt = await build_runtime(Settings(database_url=f"sqlite:///{db}", data_dir=tmp, delivery=False))
    try:
        account, token = await rt.accounts.create("bench")
        _, key = await rt.sources.create(account, "bench", 100_000)
        repo = rt.store.profiles
        a = account.sid
        traits = orjson.dumps({"plan": "free", "first_name": "Seed"}).decode()
        times = orjson.dumps({"plan": STAMP, "first_name": STAMP}).decode()
        t0 = time.perf_counter()
        for start in range(0, n, chunk):
            ids = range(start, min(n, start + chunk))
            profiles = [(a, f"prf_{i:032x}", None, traits, times, None, False, False, STAMP, STAMP) for i in ids]
            idents = [(a, f"u{i}", "user_id", f"prf_{i:032x}", "seed", STAMP) for i in ids]
            idents += [(a, f"a{i}", "anonymous_id", f"prf_{i:032x}", "seed", STAMP) for i in ids]

            def load(tx: Any, p: list[tuple[Any, ...]] = profiles, i: list[tuple[Any, ...]] = idents) -> None:
                repo.insert_rows_tx(tx, "profiles", PROFILE_COLUMNS, p)
                repo.insert_rows_tx(tx, "profile_identifiers", IDENT_COLUMNS, i)

            await rt.store.db.run(load, write=True)
        return a, token, key, time.perf_counter() - t0
    finally:
        await rt.close()


async def in_process(db: Path, tmp: Path, key: str, n: int, batches: int = 30) -> dict[str, float]:
    """Messages (events) per second through the ingest (the publisher), 100 per transaction."""
    from datetime import UTC, datetime

    from eventstreams.tracking import rules

    rt = await build_runtime(Settings(database_url=f"sqlite:///{db}", data_dir=tmp, delivery=False))
    try:
        source = await rt.sources.by_write_key(key)
        assert source is not None
        rng = random.Random(2)
        out: dict[str, float] = {}
        factory = EventFactory(f"{random.getrandbits(32):08x}")
        a = source.account_sid
        t = time.perf_counter()
        for _ in range(batches):
            await rt.publisher.publish(a, a, orjson.loads(factory.batch(100)))
        out["publish"] = batches * 100 / (time.perf_counter() - t)
        for resolve in (True, False):
            rt.ingest.resolver = rt.profiles.resolve_tx if resolve else None
            for kind in ("identify", "track"):
                t = time.perf_counter()
                for _ in range(batches):
                    now = datetime.now(UTC)
                    msgs = []
                    for _ in range(100):
                        i = rng.randrange(n)
                        m = ({"type": "identify", "userId": f"u{i}", "anonymousId": f"a{i}",
                              "traits": {"plan": "pro", "v": rng.random()}} if kind == "identify" else
                             {"type": "track", "userId": f"u{i}", "event": "Product Viewed",
                              "properties": {"a": 1}})  # fmt: skip
                        msgs.append(rules.check(m, now))
                    await rt.ingest.receive(source, msgs, now)
                out[f"{kind} {'with' if resolve else 'without'} resolution"] = batches * 100 / (time.perf_counter() - t)
        return out
    finally:
        await rt.close()


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] if s else 0.0


async def drive(session: aiohttp.ClientSession, url: str, auth: str, body: Callable[[], bytes], per_request: int,
                concurrency: int, seconds: float) -> dict[str, Any]:  # fmt: skip
    """POST ``body()`` from ``concurrency`` tasks for ``seconds``: requests/s, items/s, p50/p99 ms."""
    lat: list[float] = []
    errors = [0]
    t0 = time.perf_counter()
    end = t0 + seconds
    headers = {"Authorization": auth, "Content-Type": "application/json"}

    async def worker() -> None:
        while time.perf_counter() < end:
            data = body()
            t = time.perf_counter()
            async with session.post(url, data=data, headers=headers) as r:
                await r.read()
                if r.status >= 300:
                    errors[0] += 1
            lat.append(time.perf_counter() - t)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    dt = time.perf_counter() - t0
    return {"requests_per_s": round(len(lat) / dt), "items_per_s": round(len(lat) * per_request / dt),
            "p50_ms": round(pct(lat, 50) * 1000, 1), "p99_ms": round(pct(lat, 99) * 1000, 1),
            "requests": len(lat), "errors": errors[0]}  # fmt: skip


async def measure(base: str, sid: str, token: str, key: str, n: int, seconds: float,
                  concurrency: int) -> dict[str, dict[str, Any]]:  # fmt: skip
    twilio = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
    segment = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    factory = EventFactory(f"{random.getrandbits(32):08x}")
    rng = random.Random(1)
    counter = [0]

    def identify() -> dict[str, Any]:
        i = rng.randrange(n)
        counter[0] += 1
        return {"type": "identify", "userId": f"u{i}", "anonymousId": f"a{i}",
                "traits": {"plan": "pro", "visits": counter[0]}}  # fmt: skip

    def identify_new() -> dict[str, Any]:
        counter[0] += 1
        return {"type": "identify", "userId": f"new{counter[0]}", "anonymousId": f"anew{counter[0]}",
                "traits": {"plan": "trial"}}  # fmt: skip

    def track() -> dict[str, Any]:
        return {"type": "track", "userId": f"u{rng.randrange(n)}", "event": "Product Viewed",
                "properties": {"sku": "SKU-1", "price": 9.5}}  # fmt: skip

    def one(make: Callable[[], dict[str, Any]]) -> Callable[[], bytes]:
        return lambda: orjson.dumps(make())

    def hundred(make: Callable[[], dict[str, Any]]) -> Callable[[], bytes]:
        return lambda: orjson.dumps({"batch": [make() for _ in range(100)]})

    plan: list[tuple[str, str, str, Callable[[], bytes], int]] = [
        ("publish", "/v1/Events", twilio, lambda: factory.batch(1), 1),
        ("identify", "/v1/identify", segment, one(identify), 1),
        ("identify-new", "/v1/identify", segment, one(identify_new), 1),
        ("track", "/v1/track", segment, one(track), 1),
        ("publish x100", "/v1/Events", twilio, lambda: factory.batch(100), 100),
        ("identify x100", "/v1/batch", segment, hundred(identify), 100),
        ("track x100", "/v1/batch", segment, hundred(track), 100),
    ]
    out: dict[str, dict[str, Any]] = {}
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        for name, path, auth, body, per in plan:
            await drive(session, base + path, auth, body, per, concurrency, 1.0)  # warm-up
            out[name] = await drive(session, base + path, auth, body, per, concurrency, seconds)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        sid, token, key, took = asyncio.run(seed(db, Path(tmp), args.profiles))
        size = db.stat().st_size + sum(p.stat().st_size for p in Path(tmp).glob("bench.db-*"))
        print(f"profiles benchmark, SQLite: seeded {args.profiles:,} profiles ({2 * args.profiles:,} identifiers) "
              f"in {took:.1f} s, {size / 1e6:.0f} MB")  # fmt: skip
        inproc = asyncio.run(in_process(db, Path(tmp), key, args.profiles))
        print("in-process, 100 per transaction (no HTTP):")
        for name, rate in inproc.items():
            print(f"  {name:30s} {rate:9,.0f}/s")
        port = free_port()
        env = {"EVENTSTREAMS_DATABASE_URL": f"sqlite:///{db}", "EVENTSTREAMS_DATA_DIR": tmp,
               "EVENTSTREAMS_DELIVERY": "false", "EVENTSTREAMS_PORT": str(port)}  # fmt: skip
        cmd = [sys.executable, "-m", "eventstreams.cli.main", "serve"]
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_up(base)
            results = asyncio.run(measure(base, sid, token, key, args.profiles, args.seconds, args.concurrency))
        finally:
            proc.terminate()
            proc.wait(10)
        pub1, pub100 = results["publish"]["items_per_s"], results["publish x100"]["items_per_s"]
        print(f"{args.concurrency} connections, {args.seconds:.0f} s each")
        print(f"  {'scenario':14s} {'requests/s':>10s} {'items/s':>9s} {'p50 ms':>7s} {'p99 ms':>7s}  vs publish")
        for name, r in results.items():
            ref = pub100 if name.endswith("x100") else pub1
            print(f"  {name:14s} {r['requests_per_s']:10,d} {r['items_per_s']:9,d} {r['p50_ms']:7.1f} "
                  f"{r['p99_ms']:7.1f}  {r['items_per_s'] / max(1, ref):.2f}"
                  f"{'  errors ' + str(r['errors']) if r['errors'] else ''}")  # fmt: skip


if __name__ == "__main__":
    main()
