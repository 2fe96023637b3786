"""The tracking API's sources (write keys) and the messages they received."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..db import Row, Tx, asdict, keyset
from ..records import Page, PageQuery, TrackingMessageRow, TrackingSourceRow
from . import Repository


def _source(r: Row) -> TrackingSourceRow:
    return TrackingSourceRow(**{**r, "enabled": bool(r["enabled"])})  # SQLite hands booleans back as 0/1


_MESSAGE_COLUMNS = ("seq", "account_sid", "source_sid", "message_id", "type", "status", "reason", "received_at",
                    "payload")  # fmt: skip


class Tracking(Repository):
    area = "tracking"

    async def create_source(self, row: TrackingSourceRow) -> None:
        await self.db.run(lambda tx: tx.run(self.q.insert_source, **asdict(row)), write=True)

    async def source_by_key(self, key_hash: str) -> TrackingSourceRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.source_by_key, key_hash=key_hash))
        return _source(r) if r else None

    async def source(self, account_sid: str, sid: str) -> TrackingSourceRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.get_source, account_sid=account_sid, sid=sid))
        return _source(r) if r else None

    async def source_by_name(self, account_sid: str, name: str) -> TrackingSourceRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.source_by_name, account_sid=account_sid, name=name))
        return _source(r) if r else None

    async def sources(self, account_sid: str, q: PageQuery) -> Page:
        def go(tx: Tx) -> Page:
            rows, more = keyset(
                tx, self.q.select_sources, ["account_sid = :a"], {"a": account_sid}, ["date_created", "sid"], q
            )
            return Page([_source(r) for r in rows], more)

        return await self.db.run(go)

    async def update_source(self, row: TrackingSourceRow, now: str) -> bool:
        """False when the source no longer exists."""
        return 0 < await self.db.run(
            lambda tx: tx.run(self.q.update_source, name=row.name, enabled=row.enabled, rate_limit=row.rate_limit,
                              now=now, account_sid=row.account_sid, sid=row.sid),
            write=True,
        )  # fmt: skip

    async def rotate_key(self, row: TrackingSourceRow, key_hash: str, key_sealed: str, now: str) -> None:
        await self.db.run(
            lambda tx: tx.run(self.q.rotate_key, key_hash=key_hash, key_sealed=key_sealed, now=now,
                              account_sid=row.account_sid, sid=row.sid),
            write=True,
        )  # fmt: skip

    async def delete_source(self, row: TrackingSourceRow) -> bool:
        """False when it was already gone."""
        return 0 < await self.db.run(
            lambda tx: tx.run(self.q.delete_source, account_sid=row.account_sid, sid=row.sid), write=True
        )

    async def receive(
        self,
        messages: Sequence[TrackingMessageRow],
        now: float,
        dedupe_s: float,
        then: Callable[[Tx, list[TrackingMessageRow]], None] | None = None,
    ) -> list[TrackingMessageRow]:
        """Store one request's messages in one transaction (durable before the caller answers). An
        accepted message whose messageId the account sent within ``dedupe_s`` is dropped; the rest
        (rejected ones too, with their reason) are stored. ``then(tx, stored)`` runs in the same
        transaction (profiles, events). Returns what was stored, each with its ``seq``."""

        def go(tx: Tx) -> list[TrackingMessageRow]:
            # set-wise: one claim for the request's messageIds, one seq allocation, one bulk insert
            # sorted: concurrent requests sharing ids then lock them in one order (no deadlock on PostgreSQL)
            ids = sorted({m.message_id for m in messages if m.status == "accepted"})
            fresh: set[str] = set()
            if ids:
                account = messages[0].account_sid
                assert all(m.account_sid == account for m in messages)  # one request, one source
                claimed = tx.all(self.q.claim_message_ids, account_sid=account, ids=self.d.list_(ids), now=now,
                                 cutoff=now - dedupe_s)  # fmt: skip
                fresh = {r["message_id"] for r in claimed}
            kept: list[TrackingMessageRow] = []
            for m in messages:
                if m.status == "accepted":
                    if m.message_id not in fresh:
                        continue
                    fresh.discard(m.message_id)  # a repeat within the request is a duplicate too
                kept.append(m)
            if kept:
                seqs = self.d.next_seqs(tx, "tracking_messages", len(kept))
                kept = [TrackingMessageRow(m.account_sid, m.source_sid, m.message_id, m.type, m.status, m.reason,
                                           m.received_at, m.payload, q)  # dataclasses.replace: 4x the cost
                        for m, q in zip(kept, seqs, strict=True)]
                tx.insert_rows("tracking_messages", _MESSAGE_COLUMNS, [
                    (m.seq, m.account_sid, m.source_sid, m.message_id, m.type, m.status, m.reason, m.received_at,
                     m.payload) for m in kept])  # fmt: skip
            if then is not None:
                then(tx, kept)
            return kept

        return await self.db.run(go, write=True)

    async def messages(self, source_sid: str, status: str | None, q: PageQuery) -> Page:
        where = ["source_sid = :s"] + (["status = :st"] if status else [])

        def go(tx: Tx) -> Page:
            rows, more = keyset(tx, self.q.select_messages, where, {"s": source_sid, "st": status}, ["seq"], q,
                                newest_first=True)  # fmt: skip
            return Page([TrackingMessageRow(**r) for r in rows], more)

        return await self.db.run(go)
