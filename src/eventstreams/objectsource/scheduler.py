"""Scheduled syncs inside ``serve`` and ``worker``: each process claims due sources under a lease (SKIP
LOCKED on PostgreSQL), so many processes on one database never sync one source twice at once, and with
many sources each takes what it has room for (``EVENTSTREAMS_SOURCE_SYNC_CONCURRENCY`` at a time).
A lease is renewed while its sync runs; a killed process's lease runs out and another takes the source
over, resuming from the last committed page (objectsource/sync.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from .. import clock
from ..store.base import Store
from .sync import LeaseLost, Syncer

log = logging.getLogger("eventstreams.objectsource")
POLL_S = 5.0  # how soon another process's "sync now" or a due schedule is noticed

# More scheduled jobs (the events warehouse) plug in as (claim, run) pairs: claim(owner, now, lease_s, n)
# returns keys this process now holds; run(key) does the work and releases the lease.
Claim = Callable[[str, float, float, int], Awaitable[list[str]]]
Run = Callable[[str], Awaitable[None]]


class Scheduler:
    def __init__(self, store: Store, syncer: Syncer, concurrency: int) -> None:
        self.store = store
        self.syncer = syncer
        self.concurrency = max(1, concurrency)
        self.wake = asyncio.Event()
        self.jobs: list[tuple[str, Claim, Run]] = [("source", self._claim_sources, self._run_source)]
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def add_job(self, name: str, claim: Claim, run: Run) -> None:
        self.jobs.append((name, claim, run))

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._loop(), name="source-scheduler")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        running = list(self._running.values())
        for t in running:
            t.cancel()
        for t in running:  # a cancelled sync marks its run interrupted; its lease runs out for another process
            with contextlib.suppress(BaseException):
                await t
        self._running.clear()

    async def _loop(self) -> None:
        while not self._stopping:
            self.wake.clear()
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler tick failed")  # a store hiccup: try again next poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), POLL_S)

    async def tick(self) -> int:
        """Claim and start what is due, up to the free slots; returns how many started."""
        started = 0
        for name, claim, run in self.jobs:
            free = self.concurrency - len(self._running)
            if free <= 0:
                break
            for key in await claim(self.syncer.owner, clock.now(), self.syncer.lease_s, free):
                if (name, key) in self._running:
                    continue
                task = asyncio.create_task(self._guard(name, key, run), name=f"{name}:{key}")
                self._running[(name, key)] = task
                started += 1
        return started

    async def _guard(self, name: str, key: str, run: Run) -> None:
        try:
            await run(key)
        except (LeaseLost, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("%s %s failed", name, key)
        finally:
            self._running.pop((name, key), None)
            self.wake.set()  # a slot is free

    async def _claim_sources(self, owner: str, now: float, lease_s: float, n: int) -> list[str]:
        return await self.store.object_sources.claim_due(owner, now, lease_s, n)

    async def _run_source(self, sid: str) -> None:
        row = await self.store.object_sources.by_sid(sid)
        if row is None:
            return
        report = await self.syncer.leased(row, trigger="scheduled")
        log.info("source %s synced: %s, %d rows", sid, report.run.status, report.rows_upserted)
