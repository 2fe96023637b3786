"""``serve``'s delivery processes: the dispatcher in child processes of its own, so that publishing (HTTP,
validation, the store's writes) and delivering (leases, sending, signing) each have a core.

Each child is ``eventstreams worker`` with the parent's settings (passed as its environment, so settings
given in code reach it too) and its index; it exits when the parent dies (PR_SET_PDEATHSIG, and a check of
its parent every second). The parent restarts a child that dies. The one-writer discipline holds: every
process writes through SQLite's WAL lock, the children only in short transactions (a batch, a cursor move,
a retry row), and wake-ups cross by the database's datagram sockets (store/sqlite.FileWake).

On SQLite, with ``EVENTSTREAMS_DELIVERY_PROCESSES`` above 1, each child delivers its own share of the sinks
(store/sqlite.sink_shard), listens on a wake-up address of its own, and only the first prunes. Leases a
dead child left are released by the parent before it starts the child's successor (by the dead child's pid,
which its leases name), and all of them at start: the children then never release each other's. On
PostgreSQL the children are workers like any other (LISTEN/NOTIFY, leases taken over when they expire;
other machines' workers may hold some, so none is released).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable

from ..config import DELIVERY_INDEX_ENV, Settings

log = logging.getLogger("eventstreams.delivery")
PARENT_ENV = "EVENTSTREAMS_PARENT_PID"  # set for the child: the process whose death ends it
RESTART_DELAY_S = 1.0
Release = Callable[[str | None], Awaitable[int]]  # deliveries.release_leases: a worker's prefix, or every lease


def worker_prefix(pid: int) -> str:
    """The start of every lease a worker process on this host names (Dispatcher.worker_id)."""
    return f"{socket.gethostname()}:{pid}:"


class DeliveryProcess:
    def __init__(self, settings: Settings, release: Release) -> None:
        self.settings = settings
        self.release = release
        self.count = settings.serve_deliverers()
        self._procs: list[asyncio.subprocess.Process | None] = [None] * self.count
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def running(self) -> bool:
        """Every child is alive (readiness: /readyz)."""
        return all(p is not None and p.returncode is None for p in self._procs)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p is not None]

    def _env(self, index: int) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("EVENTSTREAMS_")}
        # the child delivers in-process and leaves syncs and the sandbox's clock to the parent
        own = {"EVENTSTREAMS_SOURCE_SYNCS": "false", "EVENTSTREAMS_CONFIG": "", DELIVERY_INDEX_ENV: str(index)}
        return {**base, **self.settings.to_env(), **own, PARENT_ENV: str(os.getpid())}

    async def start(self) -> None:
        n = await self.release(None)  # what a previous run left: no child of this one holds a lease yet
        if n:
            log.info("released %d leases left by a previous run", n)
        for k in range(self.count):
            await self._spawn(k)
            self._tasks.append(asyncio.create_task(self._watch(k), name=f"delivery-process-{k}"))

    async def _spawn(self, index: int) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "eventstreams.cli.main", "worker", env=self._env(index)
        )
        self._procs[index] = proc
        log.info("delivery process %d started (%d of %d)", proc.pid, index + 1, self.count)

    def _stopped(self) -> bool:
        return self._stopping  # read after each await (stop() runs meanwhile)

    async def _watch(self, index: int) -> None:
        while not self._stopped():
            proc = self._procs[index]
            assert proc is not None
            started = time.monotonic()
            code = await proc.wait()
            if self._stopped():
                return
            log.error("delivery process %d exited (%s); restarting it", proc.pid, code)
            try:
                n = await self.release(worker_prefix(proc.pid))  # its batches are sent again, not left to expire
                if n:
                    log.info("released %d leases of delivery process %d", n, proc.pid)
            except Exception:  # they expire in their own time instead
                log.exception("could not release the leases of delivery process %d", proc.pid)
            # a child that dies at once (a broken setting) is not restarted in a tight loop
            await asyncio.sleep(RESTART_DELAY_S if time.monotonic() - started > 10 else 5 * RESTART_DELAY_S)
            if not self._stopped():
                await self._spawn(index)

    async def stop(self) -> None:
        self._stopping = True
        # the watchers first: one caught starting a successor would otherwise leave it running (asyncio kills
        # a child whose start is cancelled)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        live = [p for p in self._procs if p is not None and p.returncode is None]
        for proc in live:
            proc.terminate()
        for proc in live:
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def follow_parent() -> None:
    """In the child: end with the parent (SIGTERM when it dies, whatever killed it)."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    if sys.platform == "linux":
        import ctypes
        import signal

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != int(parent):  # it died before prctl took hold
        os.kill(os.getpid(), 15)


async def watch_parent(stop: asyncio.Event) -> None:
    """In the child: also poll, for platforms without PR_SET_PDEATHSIG."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    while not stop.is_set():
        if os.getppid() != int(parent):
            log.warning("the serve process %s is gone: stopping delivery", parent)
            stop.set()
            return
        await asyncio.sleep(1.0)


__all__ = ["PARENT_ENV", "DeliveryProcess", "follow_parent", "watch_parent", "worker_prefix"]
