"""What differs between SQLite and PostgreSQL, in one object per database.

Repositories write one SQL text with ``:name`` placeholders; the dialect
supplies list parameters (``in_``/``list_``), row locking (``skip_locked``,
``for_update``, ``lock_account``, ``lock_migrations``), the bulk event insert
with its sequence numbers, publish dedupe, NOTIFY, and the translation of
driver errors. Statements that differ as a whole live in
``queries/<dialect>/<area>.sql`` instead.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from .db import Tx
from .errors import StoreError
from .records import NewEvent

WakeCallback = Callable[[list[str]], None]


class WakeChannel(abc.ABC):
    """Tells deliverers which sinks have new work (PostgreSQL: LISTEN across
    processes; SQLite: in-process, as nothing else can deliver)."""

    @abc.abstractmethod
    async def listen(self, callback: WakeCallback) -> None:
        """Call ``callback(sink_sids)`` on the running loop for each wake-up until closed."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class LocalWake(WakeChannel):
    """In-process wake-ups: each listener hears, on its own event loop, what this process's
    transactions notified once they committed. ``fire`` may be called from any thread."""

    def __init__(self) -> None:
        self._listeners: list[tuple[asyncio.AbstractEventLoop, WakeCallback]] = []

    async def listen(self, callback: WakeCallback) -> None:
        self._listeners.append((asyncio.get_running_loop(), callback))

    async def close(self) -> None:
        self._listeners.clear()

    def fire(self, sinks: list[str]) -> None:
        for loop, callback in list(self._listeners):
            if not loop.is_closed():
                loop.call_soon_threadsafe(callback, sinks)


class Dialect(abc.ABC):
    name: str
    skip_locked = ""  # appended to the lease's sub-select
    for_update = ""  # appended to a SELECT that must lock its row until commit
    # a select-list item that makes the transaction's COMMIT not wait for the disk (see redoable)
    redoable_item = "NULL"
    json_pairs = "json_group_array(json_array({a}, {b}))"  # aggregate of [a, b] pairs as JSON text

    @abc.abstractmethod
    def in_(self, column: str, name: str) -> str:
        """SQL testing ``column`` against the list parameter ``name``."""

    @abc.abstractmethod
    def list_(self, values: Sequence[Any]) -> Any:
        """Encode a Python list for a parameter used with ``in_``."""

    @abc.abstractmethod
    def next_seqs(self, tx: Tx, table: str, n: int) -> list[int]:
        """``n`` fresh, increasing values for ``table``'s ``seq`` column, never handed out before
        (not even for rows since deleted). ``table`` is the code's own name, never input."""

    @abc.abstractmethod
    def insert_events(self, tx: Tx, account_sid: str, events: Sequence[NewEvent], now_ms: int) -> list[int]:
        """Insert events, return their seqs in order."""

    def append_events(self, tx: Tx, account_sid: str, events: Sequence[NewEvent], now_ms: int) -> None:
        """Insert events when their seqs are not needed (a publish: the cursors find them)."""
        self.insert_events(tx, account_sid, events, now_ms)

    @abc.abstractmethod
    def claim_ids(self, tx: Tx, account_sid: str, ids: Sequence[str], now_ms: int, cutoff_ms: int) -> set[str]:
        """Record ids for dedupe; return those not seen since ``cutoff_ms``."""

    @abc.abstractmethod
    def notify(self, tx: Tx, sinks: Sequence[str]) -> None:
        """Wake deliverers of these sinks once ``tx`` commits (see WakeChannel)."""

    @abc.abstractmethod
    def translate(self, exc: Exception) -> StoreError | None:
        """The project's error for a driver error, or None to let it through."""

    def fanned_params(self, account_sid: str) -> dict[str, Any]:
        """Extra parameters of the ``fanned_sinks`` query in this dialect's form of it."""
        return {}

    def fanned(self, tx: Tx, account_sid: str, sinks: Sequence[str]) -> None:
        """``fanned_sinks`` found these sinks for a publish: wake them once ``tx`` commits."""
        self.notify(tx, sinks)

    def redoable(self, tx: Tx) -> None:  # noqa: B027 - SQLite's WAL commits do not wait for the disk (NORMAL)
        """``tx`` only records what a crash would make the dispatcher redo (a lease, an outcome): its COMMIT
        need not wait for the disk. A later durable commit flushes it too (the WAL is written in order), and
        if the database crashes first the batch is leased again and re-sent (at least once)."""

    def lock_account(self, tx: Tx, sid: str) -> None:  # noqa: B027 - SQLite's single writer already serialises
        """Serialise writes that check a per-account rule (limits, next version)."""

    def lock_migrations(self, tx: Tx) -> None:  # noqa: B027 - as above
        """Keep two processes starting together from migrating (or seeding) twice."""
