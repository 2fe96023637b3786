"""Twilio object sources (objectsource/): their configuration, leases, per-collection state and runs."""

from __future__ import annotations

from ..db import Row, Tx, asdict, keyset
from ..errors import Conflict
from ..records import ObjectSourceRow, ObjectSourceRunRow, ObjectSourceStateRow, Page, PageQuery, RunCollectionRow
from . import Repository

_BOOLS = ("include_subaccounts", "enabled", "full_sync_requested")


def _source(r: Row) -> ObjectSourceRow:
    return ObjectSourceRow(**{**r, **{k: bool(r[k]) for k in _BOOLS}})  # SQLite hands booleans back as 0/1


class ObjectSources(Repository):
    area = "object_sources"

    async def create(self, row: ObjectSourceRow) -> None:
        """Claims the schema name and inserts the source in one transaction (Conflict: either is taken)."""

        def go(tx: Tx) -> None:
            self._claim(tx, row)
            tx.run(self.q.insert_source, **asdict(row))

        await self.db.run(go, write=True)

    def _claim(self, tx: Tx, row: ObjectSourceRow) -> None:
        if not tx.run(self.q.claim_schema, schema_name=row.schema_name, account_sid=row.account_sid,
                      owner_sid=row.sid):  # fmt: skip
            raise Conflict(f"schema {row.schema_name} is taken")

    async def update(self, row: ObjectSourceRow, old_schema: str, *, now: float, full: bool, reschedule: bool,
                     reset: str | None) -> bool:  # fmt: skip
        """False when the source no longer exists. A new schema name is claimed (Conflict when taken).
        ``full`` asks for a full sync; ``reschedule`` sets ``next_run_at`` (else it is left as it is, a
        "sync now" made meanwhile included); ``reset`` "state" forgets every cursor and pass (another schema
        or account), "passes" only the unfinished passes (another start date)."""

        def go(tx: Tx) -> bool:
            if row.schema_name != old_schema:
                tx.run(self.q.release_schema, owner_sid=row.sid)
                self._claim(tx, row)
            fields = asdict(row)
            for k in ("lease_owner", "lease_until", "last_error", "full_sync_requested", "full_requested_at"):
                fields.pop(k)
            changed = 0 < tx.run(self.q.update_source, **fields, full=full, now=now, reschedule=reschedule)
            if changed and reset == "state":
                tx.run(self.q.clear_state, source_sid=row.sid)
            elif changed and reset == "passes":
                tx.run(self.q.clear_passes, source_sid=row.sid)
            return changed

        return await self.db.run(go, write=True)

    async def get(self, account_sid: str, sid: str) -> ObjectSourceRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.get_source, account_sid=account_sid, sid=sid))
        return _source(r) if r else None

    async def by_sid(self, sid: str) -> ObjectSourceRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.source_by_sid, sid=sid))
        return _source(r) if r else None

    async def by_name(self, account_sid: str, name: str) -> ObjectSourceRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.source_by_name, account_sid=account_sid, friendly_name=name))
        return _source(r) if r else None

    async def sources(self, account_sid: str, q: PageQuery) -> Page:
        def go(tx: Tx) -> Page:
            rows, more = keyset(
                tx, self.q.select_sources, ["account_sid = :a"], {"a": account_sid}, ["date_created", "sid"], q
            )
            return Page([_source(r) for r in rows], more)

        return await self.db.run(go)

    async def delete(self, account_sid: str, sid: str) -> bool:
        """Deletes the source, its state and runs, and frees its schema name (the warehouse keeps the data)."""

        def go(tx: Tx) -> bool:
            tx.run(self.q.release_schema, owner_sid=sid)
            return 0 < tx.run(self.q.delete_source, account_sid=account_sid, sid=sid)

        return await self.db.run(go, write=True)

    # -- leases: one process syncs a source at a time

    async def claim_due(self, owner: str, now: float, lease_s: float, limit: int) -> list[str]:
        def go(tx: Tx) -> list[str]:
            sids = [r["sid"] for r in tx.all(self.q.due_sources, now=now, n=limit)]
            return [s for s in sids if tx.run(self.q.take_lease, sid=s, owner=owner, now=now, until=now + lease_s)]

        return await self.db.run(go, write=True)

    async def take_lease(self, sid: str, owner: str, now: float, lease_s: float) -> bool:
        return 0 < await self.db.run(
            lambda tx: tx.run(self.q.take_lease, sid=sid, owner=owner, now=now, until=now + lease_s), write=True
        )

    async def renew_lease(self, sid: str, owner: str, until: float) -> bool:
        return 0 < await self.db.run(lambda tx: tx.run(self.q.renew_lease, sid=sid, owner=owner, until=until),
                                     write=True)  # fmt: skip

    async def release_lease(
        self, sid: str, owner: str, next_run_at: float | None, error: str | None, full_done: bool, started: float
    ) -> bool:
        """End ``owner``'s lease. A "sync now" or full sync asked after ``started`` stays asked."""
        return 0 < await self.db.run(
            lambda tx: tx.run(self.q.release_lease, sid=sid, owner=owner, next_run_at=next_run_at, last_error=error,
                              full_done=full_done, started=started),
            write=True,
        )  # fmt: skip

    async def request_run(self, account_sid: str, sid: str, now: float, full: bool) -> bool:
        return 0 < await self.db.run(
            lambda tx: tx.run(self.q.request_run, account_sid=account_sid, sid=sid, now=now, full=full), write=True
        )

    # -- state

    async def states(self, source_sid: str) -> list[ObjectSourceStateRow]:
        rows = await self.db.run(lambda tx: tx.all(self.q.select_state, source_sid=source_sid))
        return [ObjectSourceStateRow(**r) for r in rows]

    async def put_state(self, row: ObjectSourceStateRow) -> None:
        await self.db.run(lambda tx: tx.run(self.q.put_state, **asdict(row)), write=True)

    async def clear_state(self, source_sid: str) -> None:
        await self.db.run(lambda tx: tx.run(self.q.clear_state, source_sid=source_sid), write=True)

    # -- runs

    async def start_run(self, row: ObjectSourceRunRow) -> None:
        def go(tx: Tx) -> None:
            tx.run(self.q.insert_run, **asdict(row))
            tx.run(self.q.abandon_runs, source_sid=row.source_sid, keep=row.sid, now=row.date_started)

        await self.db.run(go, write=True)

    async def finish_run(self, sid: str, status: str, error: str | None, now: str) -> None:
        await self.db.run(
            lambda tx: tx.run(self.q.finish_run, sid=sid, status=status, error=error, date_finished=now), write=True
        )

    async def checkpoint(self, state: ObjectSourceStateRow | None, progress: RunCollectionRow) -> None:
        """After a page is in the warehouse: where the pass goes on, and the run's counts so far, at once."""

        def go(tx: Tx) -> None:
            if state is not None:
                tx.run(self.q.put_state, **asdict(state))
            tx.run(self.q.put_run_collection, **asdict(progress))

        await self.db.run(go, write=True)

    async def put_run_collection(self, row: RunCollectionRow) -> None:
        await self.db.run(lambda tx: tx.run(self.q.put_run_collection, **asdict(row)), write=True)

    async def runs(self, source_sid: str, q: PageQuery) -> Page:
        def go(tx: Tx) -> Page:
            rows, more = keyset(tx, self.q.select_runs, ["source_sid = :s"], {"s": source_sid},
                                ["date_started", "sid"], q, newest_first=True)  # fmt: skip
            return Page([ObjectSourceRunRow(**r) for r in rows], more)

        return await self.db.run(go)

    async def run(self, source_sid: str, sid: str) -> ObjectSourceRunRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.get_run, source_sid=source_sid, sid=sid))
        return ObjectSourceRunRow(**r) if r else None

    async def run_collections(self, run_sids: list[str]) -> list[RunCollectionRow]:
        if not run_sids:
            return []
        rows = await self.db.run(lambda tx: tx.all(self.q.run_collections, runs=self.d.list_(run_sids)))
        return [RunCollectionRow(**r) for r in rows]
