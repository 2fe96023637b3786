"""Micro-benchmark of the SQLite publish and delivery paths, in-process through the SQLite ``Store`` (no
HTTP), to attribute the costs seen in the ``bench.run`` profiles and to compare two versions of the code
on a busy machine: each figure is given as wall time and as CPU time of this process (the store's thread
included) per event, and CPU time moves little when other work shares the cores.

    python -m bench.micro_sqlite [--batches 300] [--sinks 1] [--plain]

Prints µs per event for: ``Publisher._prepare`` (validation), the whole ``deliveries.publish``
transaction (100 events each), ``deliveries.lease`` + ``deliveries.complete`` per delivery (chunks of 500,
every subscribed sink), and the raw limit: the same events inserted into a bare copy of the ``events`` table
(same columns, indexes and pragmas) with ``executemany`` in 100-row transactions, as plain JSON whether or not
the store packs them (the raw figure is the cost of storing the events as they are).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from eventstreams import clock
from eventstreams.config import Settings
from eventstreams.delivery.publish import Publisher
from eventstreams.runtime import build_runtime
from eventstreams.store.packing import body, unpack
from eventstreams.store.records import DeliveryResult, LogEntry, NewEvent

from .harness import EventFactory


class Timer:
    """Wall and process CPU seconds of a block."""

    def __enter__(self) -> Timer:
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c

    def per(self, n: int) -> str:
        return f"{self.wall / n * 1e6:6.1f} µs wall {self.cpu / n * 1e6:6.1f} µs CPU"


def raw_insert(path: Path, prepared: list[list[NewEvent]], account: str) -> Timer:
    """The same rows through sqlite3 alone: the store's pragmas, the events table as the store has it."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-65536"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, account_sid TEXT NOT NULL, id TEXT NOT NULL,"
                 " type TEXT NOT NULL, schema_version INTEGER, received_at INTEGER NOT NULL, time TEXT NOT NULL,"
                 " payload TEXT NOT NULL, only_sink TEXT)")  # fmt: skip
    for ix in ("account_sid, received_at", "account_sid, id", "account_sid, seq"):
        conn.execute(f"CREATE INDEX IF NOT EXISTS ix_{ix.replace(', ', '_')} ON events({ix})")
    seq = 0
    with Timer() as t:
        for evs in prepared:
            now = int(time.time() * 1000)
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO events (seq, account_sid, id, type, schema_version, received_at, time, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (seq + i, account, e.id, e.type, e.schema_version, now, e.time, unpack(e.payload, e.packed))
                    for i, e in enumerate(evs)
                ],
            )
            conn.execute("COMMIT")
            seq += len(evs)
    conn.close()
    return t


async def main_async(batches: int, n_sinks: int, pack: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/m.db", data_dir=Path(tmp), delivery=False,
                            allow_private_destinations=True, pack_events=pack)  # fmt: skip
        svc = await build_runtime(settings)
        store = svc.store
        acct, _token = await svc.accounts.create("bench")
        sid = acct.sid
        principal = await svc.accounts.authenticate(_basic(sid, _token))
        sinks = []
        for i in range(n_sinks):
            sink = await svc.control.create_sink(principal, f"m{i}", "webhook", json.dumps(
                {"destination": "http://127.0.0.1:9/x", "method": "POST", "batch_events": True}))  # fmt: skip
            await svc.control.create_subscription(
                principal, "m", sink.row.sid, [json.dumps({"type": "com.twilio.messaging.message.delivered"})]
            )
            sinks.append(sink.row.sid)
        f = EventFactory("m1cr0")
        pub: Publisher = svc.publisher
        owner = principal.catalog_owner

        # prepared events (validation cost measured separately)
        raw = [json.loads(f.batch(100)) for _ in range(batches)]
        prepared = []
        with Timer() as prep:
            for b in raw:
                now_iso, cache = clock.iso_ms(time.time()), {}
                prepared.append([await pub._prepare(owner, e, now_iso, cache) for e in b])

        with Timer() as tx:
            for evs in prepared:
                await store.deliveries.publish(sid, evs, int(time.time() * 1000), 86_400_000)

        # lease + complete (delivered) per delivery, chunks of 500 as the dispatcher does, sink after sink
        n_done = 0
        with Timer() as deliver:
            for sink_sid in sinks:
                while True:
                    now = int(time.time() * 1000)
                    leased = await store.deliveries.lease(sink_sid, now, 500, f"l{n_done}", 60_000)
                    if not leased:
                        break
                    for d in leased:  # what the dispatcher does to each before sending it
                        body(d.payload, d.packed)
                    results = [DeliveryResult(d, "delivered") for d in leased]
                    logs = [LogEntry(sid, sink_sid, now, "delivered", [d.event_id for d in leased], 1)]
                    await store.deliveries.complete(results, logs, [], now, 1_200_000)
                    n_done += len(leased)
        await store.close()
        db_bytes = sum(p.stat().st_size for p in Path(tmp).glob("m.db*"))
        rawt = raw_insert(Path(tmp) / "raw.db", prepared, sid)
    n = batches * 100
    print(f"events: {n}, event size {f.size} B, sinks: {n_sinks}, packed: {pack}, database {db_bytes / n:,.0f} B/event")
    print(f"  Publisher._prepare (validate, build)   {prep.per(n)}")
    print(f"  publish_events tx (100/tx)             {tx.per(n)}  = {n / tx.wall:9,.0f} events/s")
    print(f"  raw insert, same rows (100/tx)         {rawt.per(n)}  = {n / rawt.wall:9,.0f} rows/s")
    print(f"  publish / raw (wall, CPU)              {rawt.wall / tx.wall:6.2f}       {rawt.cpu / tx.cpu:6.2f}")
    print(f"  lease + complete (500/chunk)           {deliver.per(max(1, n_done))}  ({n_done} deliveries)")


def _basic(sid: str, token: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--sinks", type=int, default=1, help="subscribed sinks (fan-out)")
    ap.add_argument("--plain", action="store_true", help="events stored as plain JSON (EVENTSTREAMS_PACK_EVENTS=false)")
    args = ap.parse_args()
    asyncio.run(main_async(args.batches, args.sinks, not args.plain))


if __name__ == "__main__":
    main()
