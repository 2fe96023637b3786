"""Events warehouses (warehouse/events.py): one per account, its schema claimed in ``warehouse_schemas``,
its schedule leased like deliveries, its positions in the tracking messages and the events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..db import Row, Tx
from ..errors import Conflict
from ..packing import unpacked
from . import Repository


@dataclass(frozen=True, slots=True)
class EventsWarehouseRow:
    account_sid: str
    sid: str
    schema_name: str
    enabled: bool
    interval_seconds: int
    tracking_seq: int
    events_seq: int
    rows_loaded: int
    next_run_at: float | None
    lease_owner: str | None
    lease_until: float | None
    last_run_at: str | None
    last_error: str | None
    date_created: str
    date_updated: str


def _row(r: Row) -> EventsWarehouseRow:
    return EventsWarehouseRow(**{**r, "enabled": bool(r["enabled"])})  # SQLite: booleans as 0/1


class EventsWarehouses(Repository):
    area = "events_warehouse"

    async def get(self, account_sid: str) -> EventsWarehouseRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.get, a=account_sid))
        return _row(r) if r else None

    async def configure(
        self,
        account_sid: str,
        new_sid: str,
        schema_name: str | None,
        enabled: bool | None,
        interval_seconds: int | None,
        *,
        now: float,
        now_iso: str,
        default_interval: int,
    ) -> EventsWarehouseRow:
        """Create or change the account's events warehouse in one transaction. A schema name is claimed
        for the warehouse; one another owner holds is a :class:`Conflict`. Changing the schema releases
        the old name and starts the load over (the new schema is empty). ``None`` keeps a value; a new
        warehouse needs a schema and is enabled unless told otherwise. Enabling makes it due now."""

        def go(tx: Tx) -> EventsWarehouseRow:
            self.d.lock_account(tx, account_sid)
            current = tx.one(self.q.get, a=account_sid)
            if current is None and schema_name is None:
                raise ValueError("a new events warehouse needs a schema name")
            sid = current["sid"] if current else new_sid
            schema = schema_name or current["schema_name"]  # type: ignore[index]
            claim = tx.one(self.q.claim_of_schema, s=schema)
            if claim is not None and claim["owner_sid"] != sid:
                raise Conflict(f"schema {schema!r} is already used by another warehouse owner ({claim['owner_sid']})")
            if claim is None:
                tx.run(self.q.release_schema, o=sid)
                tx.run(self.q.claim_schema, s=schema, a=account_sid, o=sid)
            on = enabled if enabled is not None else (bool(current["enabled"]) if current else True)
            interval = interval_seconds or (current["interval_seconds"] if current else default_interval)
            was_on = bool(current["enabled"]) if current else False
            next_run: Any = current["next_run_at"] if current and was_on and on else (now if on else None)
            if current is None:
                tx.run(self.q.insert, a=account_sid, sid=sid, s=schema, enabled=on, interval=interval, next=next_run,
                       now=now_iso)  # fmt: skip
            else:
                tx.run(self.q.update_config, a=account_sid, s=schema, enabled=on, interval=interval, next=next_run,
                       now=now_iso)  # fmt: skip
            r = tx.one(self.q.get, a=account_sid)
            assert r is not None
            return _row(r)

        return await self.db.run(go, write=True)

    async def request_run(self, account_sid: str, now: float) -> bool:
        """Due now (the scheduler of a serve or worker loads it); False when missing or disabled."""
        return 0 < await self.db.run(lambda tx: tx.run(self.q.request_run, a=account_sid, now=now), write=True)

    async def delete(self, account_sid: str) -> bool:
        def go(tx: Tx) -> bool:
            r = tx.one(self.q.get, a=account_sid)
            if r is None:
                return False
            tx.run(self.q.release_schema, o=r["sid"])
            return tx.run(self.q.delete, a=account_sid) > 0

        return await self.db.run(go, write=True)

    async def claim_due(self, owner: str, now: float, lease_seconds: float, limit: int) -> list[str]:
        """Lease up to ``limit`` enabled warehouses that are due and not leased; their account SIDs."""
        rows = await self.db.run(
            lambda tx: tx.all(self.q.claim_due, o=owner, now=now, until=now + lease_seconds, n=limit), write=True
        )
        return [r["account_sid"] for r in rows]

    async def renew(self, account_sid: str, owner: str, until: float) -> bool:
        """Extend a lease still held; False when it was lost."""
        return 0 < await self.db.run(lambda tx: tx.run(self.q.renew, a=account_sid, o=owner, until=until), write=True)

    async def release(
        self, account_sid: str, owner: str, next_run_at: float | None, error: str | None, now_iso: str
    ) -> bool:
        """End ``owner``'s lease: the next run time, and the error of this run (None: it succeeded)."""
        return 0 < await self.db.run(
            lambda tx: tx.run(self.q.release, a=account_sid, o=owner, next=next_run_at, e=error, ran=now_iso),
            write=True,
        )

    async def advance(self, account_sid: str, schema_name: str, tracking_seq: int, events_seq: int, rows: int) -> bool:
        """Record what is loaded (after the rows are in the warehouse). False when the positions were
        already further (another run got there first), the warehouse is gone, or its schema changed
        meanwhile (the new schema starts from nothing: this run's positions are not its)."""
        return 0 < await self.db.run(
            lambda tx: tx.run(self.q.advance, a=account_sid, s=schema_name, t=tracking_seq, e=events_seq, r=rows),
            write=True,
        )

    async def tracking_after(self, account_sid: str, after: int, before_iso: str, limit: int) -> list[Row]:
        """Accepted tracking messages after seq ``after`` received up to ``before_iso``: (seq, payload)."""
        return await self.db.run(
            lambda tx: tx.all(self.q.tracking_after, a=account_sid, after=after, before=before_iso, n=limit)
        )

    async def events_after(self, account_sid: str, after: int, before_ms: int, limit: int) -> list[Row]:
        """Events other than com.segment.tracking.* after seq ``after``: (seq, id, type, received_at, payload)."""
        rows = await self.db.run(
            lambda tx: tx.all(self.q.events_after, a=account_sid, after=after, before_ms=before_ms, n=limit)
        )
        return [unpacked(r) for r in rows]
