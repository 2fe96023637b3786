"""``serve``'s delivery process on SQLite: the dispatcher in a child process of its own, so that publishing
(HTTP, validation, the SQLite writer) and delivering (leases, sending, signing) each have a core.

The child is ``eventstreams worker`` with the parent's settings (passed as its environment, so settings
given in code reach it too); it exits when the parent dies (PR_SET_PDEATHSIG, and a check of its parent
every second). The parent restarts it if it dies. The one-writer discipline holds: both processes write
through SQLite's WAL lock, the child only in short transactions (a batch, a cursor move, a retry row), and
wake-ups cross by the database's datagram socket (store/sqlite.FileWake). At start the child releases the
leases a dead predecessor left: it is the only deliverer of this file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time

from ..config import Settings

log = logging.getLogger("eventstreams.delivery")
PARENT_ENV = "EVENTSTREAMS_PARENT_PID"  # set for the child: the process whose death ends it
RESTART_DELAY_S = 1.0


class DeliveryProcess:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        """The child is alive (readiness: /readyz)."""
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("EVENTSTREAMS_")}
        # the child delivers in-process and leaves syncs and the sandbox's clock to the parent
        own = {"EVENTSTREAMS_DELIVERY_PROCESS": "false", "EVENTSTREAMS_SOURCE_SYNCS": "false",
               "EVENTSTREAMS_CONFIG": ""}  # fmt: skip
        return {**base, **self.settings.to_env(), **own, PARENT_ENV: str(os.getpid())}

    async def start(self) -> None:
        await self._spawn()
        self._task = asyncio.create_task(self._watch(), name="delivery-process")

    async def _spawn(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "eventstreams.cli.main", "worker", env=self._env()
        )
        log.info("delivery process %d started", self._proc.pid)

    def _stopped(self) -> bool:
        return self._stopping  # read after each await (stop() runs meanwhile)

    async def _watch(self) -> None:
        while not self._stopped():
            assert self._proc is not None
            started = time.monotonic()
            code = await self._proc.wait()
            if self._stopped():
                return
            log.error("delivery process %d exited (%s); restarting it", self._proc.pid, code)
            # a child that dies at once (a broken setting) is not restarted in a tight loop
            await asyncio.sleep(RESTART_DELAY_S if time.monotonic() - started > 10 else 5 * RESTART_DELAY_S)
            if not self._stopped():
                await self._spawn()

    async def stop(self) -> None:
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


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


__all__ = ["PARENT_ENV", "DeliveryProcess", "follow_parent", "watch_parent"]
