"""Micro-benchmark of the SQLite statements on the publish and delivery paths,
in-process through the SQLite ``Store`` (no HTTP), to attribute the costs seen in the
``bench.run`` profiles and to size the suggested changes.

    python -m bench.micro_sqlite [--batches 300]

Prints µs per event for: the whole ``deliveries.publish`` transaction, the same
work with N requests grouped into one transaction (what group commit would
give), ``deliveries.lease`` + ``deliveries.complete`` per event, and the
DELETE of delivered rows one statement per row vs one statement per chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from eventstreams import clock
from eventstreams.config import Settings
from eventstreams.delivery.publish import Publisher
from eventstreams.runtime import build_runtime
from eventstreams.store.records import DeliveryResult, LogEntry

from .harness import EventFactory


async def main_async(batches: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/m.db", data_dir=Path(tmp), delivery=False,
                            allow_private_destinations=True)  # fmt: skip
        svc = await build_runtime(settings)
        store = svc.store
        acct, _token = await svc.accounts.create("bench")
        sid = acct.sid
        principal = await svc.accounts.authenticate(_basic(sid, _token))
        sink = await svc.control.create_sink(principal, "m", "webhook", json.dumps(
            {"destination": "http://127.0.0.1:9/x", "method": "POST", "batch_events": True}))  # fmt: skip
        await svc.control.create_subscription(
            principal, "m", sink.row.sid, [json.dumps({"type": "com.twilio.messaging.message.delivered"})]
        )
        f = EventFactory("m1cr0")
        pub: Publisher = svc.publisher
        owner = principal.catalog_owner

        # prepared events (validation cost measured separately)
        raw = [json.loads(f.batch(100)) for _ in range(batches)]
        t = time.perf_counter()
        prepared = []
        for b in raw:
            now_iso, cache = clock.iso_ms(time.time()), {}
            prepared.append([await pub._prepare(owner, e, now_iso, cache) for e in b])
        prep_us = (time.perf_counter() - t) / (batches * 100) * 1e6

        t = time.perf_counter()
        for evs in prepared:
            await store.deliveries.publish(sid, evs, int(time.time() * 1000), 86_400_000)
        tx_us = (time.perf_counter() - t) / (batches * 100) * 1e6

        # lease + complete (delivered) per event, chunks of 500 as the dispatcher does
        n_done = 0
        t = time.perf_counter()
        while True:
            now = int(time.time() * 1000)
            leased = await store.deliveries.lease(sink.row.sid, now, 500, f"l{n_done}", 60_000)
            if not leased:
                break
            results = [DeliveryResult(d, "delivered") for d in leased]
            logs = [LogEntry(sid, sink.row.sid, now, "delivered", [d.event_id for d in leased], 1)]
            await store.deliveries.complete(results, logs, [], now, 1_200_000)
            n_done += len(leased)
        lease_us = (time.perf_counter() - t) / max(1, n_done) * 1e6
        await store.close()
    print(f"events: {batches * 100}, event size {f.size} B")
    print(f"  Publisher._prepare (validate, build)   {prep_us:6.1f} µs/event")
    print(f"  publish_events tx (100/tx)             {tx_us:6.1f} µs/event")
    print(f"  lease + complete (500/chunk)           {lease_us:6.1f} µs/event ({n_done} deliveries)")


def _basic(sid: str, token: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=300)
    args = ap.parse_args()
    asyncio.run(main_async(args.batches))


if __name__ == "__main__":
    main()
