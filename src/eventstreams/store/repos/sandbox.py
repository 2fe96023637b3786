"""The Twilio sandbox's resources: messages, calls, call feedback, conferences,
transcriptions, addresses, and each account's sandbox settings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

from ..db import Row, Tx, asdict, keyset
from ..records import (
    Page,
    PageQuery,
    SandboxAddressRow,
    SandboxCallRow,
    SandboxConferenceRow,
    SandboxFeedbackRow,
    SandboxMessageRow,
    SandboxTranscriptionRow,
)
from . import Repository


@dataclass(frozen=True)
class Kind:
    """One resource: its query-name suffix, table and row type."""

    name: str
    table: str
    row: type


MESSAGE = Kind("message", "sandbox_messages", SandboxMessageRow)
CALL = Kind("call", "sandbox_calls", SandboxCallRow)
FEEDBACK = Kind("feedback", "sandbox_call_feedback", SandboxFeedbackRow)
CONFERENCE = Kind("conference", "sandbox_conferences", SandboxConferenceRow)
TRANSCRIPTION = Kind("transcription", "sandbox_transcriptions", SandboxTranscriptionRow)
ADDRESS = Kind("address", "sandbox_addresses", SandboxAddressRow)
KINDS = (MESSAGE, CALL, FEEDBACK, CONFERENCE, TRANSCRIPTION, ADDRESS)
# Children first: what reset() deletes.
TABLES = ("sandbox_call_feedback", "sandbox_messages", "sandbox_calls", "sandbox_conferences",
          "sandbox_transcriptions", "sandbox_addresses", "sandbox_settings")  # fmt: skip


def _row(kind: Kind, r: Row) -> Any:
    if kind is ADDRESS:  # SQLite hands booleans back as 0/1
        r = {**r, "emergency_enabled": bool(r["emergency_enabled"]), "validated": bool(r["validated"]),
             "verified": bool(r["verified"])}  # fmt: skip
    return kind.row(**r)


class SandboxResources(Repository):
    area = "sandbox"

    async def insert(self, kind: Kind, row: Any) -> None:
        await self.db.run(lambda tx: tx.run(self.q[f"insert_{kind.name}"], **asdict(row)), write=True)

    async def insert_many(self, kind: Kind, rows: Sequence[Any], chunk: int = 5000) -> None:
        """Bulk load (the seeder): one transaction per ``chunk`` rows, through the backend's fastest
        insert (positional executemany on SQLite, COPY on PostgreSQL)."""
        columns = tuple(f.name for f in fields(kind.row))
        values = attrgetter(*columns)  # a row's values as a tuple, in C
        for i in range(0, len(rows), chunk):
            batch = [values(r) for r in rows[i : i + chunk]]
            await self.db.run(lambda tx, b=batch: tx.insert_rows(kind.table, columns, b), write=True)  # type: ignore[misc]

    async def get(self, kind: Kind, account_sid: str, sid: str) -> Any | None:
        r = await self.db.run(lambda tx: tx.one(self.q[f"get_{kind.name}"], account_sid=account_sid, sid=sid))
        return _row(kind, r) if r else None

    async def exists(self, kind: Kind, sid: str) -> bool:
        """Whether any account holds a row with this SID (messages, calls, conferences, transcriptions,
        addresses): the seeder checks before it inserts."""
        return await self.db.run(lambda tx: tx.one(self.q[f"exists_{kind.name}"], sid=sid)) is not None

    async def list(
        self, kind: Kind, account_sid: str, where: Iterable[str], params: dict[str, Any], q: PageQuery
    ) -> Page:
        """Newest first by (date_created, sid); ``where``/``params`` are the list's filters."""
        conds = ["account_sid = :account_sid", *where]
        ps = {**params, "account_sid": account_sid}

        def go(tx: Tx) -> Page:
            rows, more = keyset(
                tx, self.q[f"select_{kind.name}"], conds, ps, ["date_created", "sid"], q, newest_first=True
            )
            return Page([_row(kind, r) for r in rows], more)

        return await self.db.run(go)

    async def delete(self, kind: Kind, account_sid: str, sid: str) -> bool:
        n = await self.db.run(
            lambda tx: tx.run(self.q[f"delete_{kind.name}"], account_sid=account_sid, sid=sid), write=True
        )
        return n > 0

    async def redact_message(self, account_sid: str, sid: str, now: str) -> None:
        await self.db.run(
            lambda tx: tx.run(self.q.redact_message, account_sid=account_sid, sid=sid, now=now), write=True
        )

    async def put_feedback(self, row: SandboxFeedbackRow) -> SandboxFeedbackRow:
        """Create or replace a call's feedback (date_created kept from the first); one statement, so two
        racing first POSTs both succeed."""

        def go(tx: Tx) -> SandboxFeedbackRow:
            tx.run(self.q.upsert_feedback, **asdict(row))
            stored = tx.one(self.q.get_feedback, account_sid=row.account_sid, sid=row.call_sid)
            assert stored is not None
            return SandboxFeedbackRow(**stored)

        return await self.db.run(go, write=True)

    async def settings(self, account_sid: str) -> str | None:
        r = await self.db.run(lambda tx: tx.one(self.q.get_settings, account_sid=account_sid))
        return str(r["document"]) if r else None

    async def put_settings(self, account_sid: str, document: str, now: str) -> None:
        await self.db.run(
            lambda tx: tx.run(self.q.put_settings, account_sid=account_sid, document=document, now=now), write=True
        )

    # -- status clock (sandbox/lifecycle.py)

    async def claim_due(
        self, kind: Kind, now: float, lease_until: float, limit: int, advance: Callable[[Any], Any]
    ) -> Sequence[tuple[Any, Any]]:
        """Claim up to ``limit`` messages or calls due at ``now`` and move each one step in the same
        transaction: ``advance(row)`` returns the row after its step, its ``next_step_at`` the lease
        (``lease_until``). Returns (before, after) pairs. Columns written: see ``step_<kind>``."""
        step = self.q[f"step_{kind.name}"]
        cols = _STEP_COLUMNS[kind.name]

        def go(tx: Tx) -> Sequence[tuple[Any, Any]]:
            out = []
            for r in tx.all(self.q[f"due_{kind.name}"], now=now, n=limit):
                old = _row(kind, r)
                new = advance(old)
                tx.run(step, **{c: getattr(new, c) for c in cols})
                out.append((old, new))
            return out

        return await self.db.run(go, write=True)

    async def release(self, kind: Kind, sid: str, lease: float, next_step_at: float | None) -> bool:
        """Set the real next step time of a row claimed with ``lease``; False when the lease was lost
        (it expired and another claim moved the row on)."""
        n = await self.db.run(
            lambda tx: tx.run(self.q[f"release_{kind.name}"], sid=sid, lease=lease, next=next_step_at), write=True
        )
        return n > 0

    async def next_due(self) -> float | None:
        """The earliest ``next_step_at`` of any message or call (leases included), or None."""

        def go(tx: Tx) -> float | None:
            dues = [r["due"] for q in (self.q.next_due_message, self.q.next_due_call) if (r := tx.one(q))]
            known = [float(d) for d in dues if d is not None]
            return min(known) if known else None

        return await self.db.run(go)


_STEP_COLUMNS = {
    "message": ("sid", "status", "price", "error_code", "error_message", "next_step_at", "date_updated", "date_sent"),
    "call": ("sid", "status", "start_time", "end_time", "duration", "price", "next_step_at", "date_updated"),
}
