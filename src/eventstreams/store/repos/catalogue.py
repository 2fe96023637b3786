"""The catalogue: event types and their schema versions, built-in and per owner.

Built-ins are stored with owner ``''`` (so the primary key (owner, name) makes
names unique per owner) and handed out with ``owner_sid=None``. A custom name
never shadows a built-in: those stay reserved for everybody.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..db import Row, Tx, asdict, conditions, count, keyset
from ..errors import Conflict, LimitReached
from ..records import EventTypeRow, Page, PageQuery, SchemaVersionRow
from . import Repository

BUILTIN = ""


def _type(r: Row) -> EventTypeRow:
    r["segment_compatible"] = bool(r["segment_compatible"])
    r["owner_sid"] = r["owner_sid"] or None
    return EventTypeRow(**r)


def _version(r: Row) -> SchemaVersionRow:
    r["owner_sid"] = r["owner_sid"] or None
    return SchemaVersionRow(**r)


def _stored(obj: Any) -> dict[str, Any]:
    d = asdict(obj)
    d["owner_sid"] = d["owner_sid"] or BUILTIN
    return d


class Catalogue(Repository):
    area = "catalogue"

    async def sync_builtins(self, types: Sequence[EventTypeRow], versions: Sequence[SchemaVersionRow]) -> None:
        def go(tx: Tx) -> None:
            tx.many(self.q.sync_version, [_stored(v) for v in versions])
            tx.many(self.q.sync_type, [_stored(t) for t in types])

        await self.db.run(go, write=True)

    async def list_types(self, owner_sid: str, schema_id: str | None, q: PageQuery) -> Page:
        where, params = conditions(("owner_sid IN ('', :o)", "o", owner_sid), ("schema_id = :sid", "sid", schema_id))

        def go(tx: Tx) -> Page:
            rows, more = keyset(tx, self.q.select_types, where, params, ["type"], q)
            return Page([_type(r) for r in rows], more)

        return await self.db.run(go)

    async def get_type(self, owner_sid: str, type_: str) -> EventTypeRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.get_type, t=type_, o=owner_sid))
        return _type(r) if r else None

    async def put_type(self, row: EventTypeRow, limit: int) -> None:
        """Insert or update an operator-registered type (never a built-in); a new one only while the
        owner has fewer than ``limit`` (LimitReached), counted in the same transaction."""

        def go(tx: Tx) -> None:
            if not row.owner_sid or tx.one(self.q.builtin_type, t=row.type):
                raise Conflict(f"Event type {row.type} is a built-in")
            self.d.lock_account(tx, row.owner_sid)
            new = not tx.one(self.q.get_type, t=row.type, o=row.owner_sid)
            if new and count(tx, self.q.count_types, o=row.owner_sid) >= limit:
                raise LimitReached("types")
            tx.run(self.q.put_type, **_stored(row))

        await self.db.run(go, write=True)

    async def list_versions(self, owner_sid: str, schema_id: str, q: PageQuery) -> Page:
        def go(tx: Tx) -> Page:
            where = ["schema_id = :s", "owner_sid IN ('', :o)"]
            rows, more = keyset(tx, self.q.select_versions, where, {"s": schema_id, "o": owner_sid}, ["version"], q)
            return Page([_version(r) for r in rows], more)

        return await self.db.run(go)

    async def get_version(self, owner_sid: str, schema_id: str, version: int | None) -> SchemaVersionRow | None:
        """``version=None`` means the latest."""
        if version is None:
            r = await self.db.run(lambda tx: tx.one(self.q.latest_version, s=schema_id, o=owner_sid))
        else:
            r = await self.db.run(lambda tx: tx.one(self.q.get_version, s=schema_id, o=owner_sid, v=version))
        return _version(r) if r else None

    async def add_version(self, row: SchemaVersionRow, max_versions: int, max_schemas: int) -> SchemaVersionRow:
        """Append the owner's next version of a schema (version chosen here). Raises Conflict for a built-in's
        id, LimitReached("versions"/"schemas") at the limits, counted under the owner's lock."""

        def go(tx: Tx) -> SchemaVersionRow:
            if not row.owner_sid or tx.one(self.q.builtin_schema, s=row.schema_id):
                raise Conflict(f"Schema {row.schema_id} is a built-in")
            # Two requests versioning one schema must not both pick MAX+1 (PostgreSQL: lock the owner).
            self.d.lock_account(tx, row.owner_sid)
            cur = tx.one(self.q.max_version, o=row.owner_sid, s=row.schema_id)
            latest = int(cur["v"]) if cur is not None and cur["v"] is not None else 0
            if latest >= max_versions:
                raise LimitReached("versions")
            if latest == 0 and count(tx, self.q.count_schemas, o=row.owner_sid) >= max_schemas:
                raise LimitReached("schemas")
            row.version = latest + 1
            tx.run(self.q.insert_version, **_stored(row))
            return row

        return await self.db.run(go, write=True)

    def reset(self, tx: Tx) -> None:
        tx.run(self.q.reset_types)
        tx.run(self.q.reset_versions)
