"""Profiles, their identifiers, events and merges (profiles/). Resolution runs inside the tracking
ingest's transaction: the ``*_tx`` methods take its ``Tx``; the rules are profiles/service.py's."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..db import Row, Tx, keyset
from ..records import Page, PageQuery
from . import Repository


@dataclass(slots=True)
class ProfileRow:
    account_sid: str
    id: str
    merged_into: str | None
    traits: str  # JSON object
    trait_times: str  # JSON object: trait -> the timestamp of the message that set it
    phone: str | None
    phone_valid: bool
    opted_out: bool
    date_created: str
    date_updated: str


def _profile(r: Row) -> ProfileRow:
    return ProfileRow(**{**r, "phone_valid": bool(r["phone_valid"]), "opted_out": bool(r["opted_out"])})


@dataclass(slots=True)
class Writes:
    """What one resolution changes, written in one go at its end (statements batched by kind)."""

    new_profiles: list[dict[str, Any]] = field(default_factory=list)
    merges: list[tuple[str, str]] = field(default_factory=list)  # (winner, loser), in order
    updated_profiles: list[dict[str, Any]] = field(default_factory=list)
    identifiers: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    merge_records: list[dict[str, Any]] = field(default_factory=list)


class Profiles(Repository):
    area = "profiles"

    # -- inside the ingest transaction ----------------------------------------------------------

    def lock_tx(self, tx: Tx, account_sid: str) -> None:
        tx.all(self.q.lock, a=account_sid)

    def identifiers_tx(self, tx: Tx, account_sid: str, values: Sequence[str]) -> list[Row]:
        if not values:
            return []
        return tx.all(self.q.identifiers_by_value, a=account_sid, values=self.d.list_(values))

    def profiles_tx(self, tx: Tx, account_sid: str, ids: Sequence[str]) -> dict[str, ProfileRow]:
        if not ids:
            return {}
        return {r["id"]: _profile(r) for r in tx.all(self.q.profiles_by_id, a=account_sid, ids=self.d.list_(ids))}

    def counts_tx(self, tx: Tx, account_sid: str, ids: Sequence[str]) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {i: Counter() for i in ids}
        if ids:
            for r in tx.all(self.q.identifier_counts, a=account_sid, ids=self.d.list_(ids)):
                out[r["profile_id"]][r["id_type"]] = int(r["n"])
        return out

    def write_tx(self, tx: Tx, account_sid: str, w: Writes) -> None:
        if w.new_profiles:
            tx.many(self.q.insert_profile, w.new_profiles)
        for winner, loser in w.merges:  # in order: a chain A→B→C ends with everything on C
            tx.run(self.q.repoint_merged, a=account_sid, winner=winner, loser=loser)
            tx.run(self.q.move_identifiers, a=account_sid, winner=winner, loser=loser)
            tx.run(self.q.move_events, a=account_sid, winner=winner, loser=loser)
        if w.updated_profiles:
            tx.many(self.q.update_profile, w.updated_profiles)
        if w.identifiers:
            tx.many(self.q.insert_identifier, w.identifiers)
        if w.events:
            tx.many(self.q.insert_event, w.events)
        if w.merge_records:
            tx.many(self.q.insert_merge, w.merge_records)

    # -- reads ------------------------------------------------------------------------------------

    async def find(self, account_sid: str, id_type: str, value: str) -> ProfileRow | None:
        """The (surviving) profile holding this identifier."""

        def go(tx: Tx) -> ProfileRow | None:
            r = tx.one(self.q.identifier, a=account_sid, value=value, id_type=id_type)
            if r is None:
                return None
            p = tx.one(self.q.profile, a=account_sid, id=r["profile_id"])
            return _profile(p) if p else None

        return await self.db.run(go)

    async def get(self, account_sid: str, profile_id: str) -> ProfileRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.profile, a=account_sid, id=profile_id))
        return _profile(r) if r else None

    async def identifiers(self, account_sid: str, profile_id: str, types: Sequence[str] | None,
                          q: PageQuery) -> Page:  # fmt: skip
        where = ["account_sid = :a", "profile_id = :p"]
        params: dict[str, Any] = {"a": account_sid, "p": profile_id}
        if types:
            where.append(self.d.in_("id_type", "types"))
            params["types"] = self.d.list_(types)

        def go(tx: Tx) -> Page:
            key = ["date_first_seen", "id_type", "value"]
            rows, more = keyset(tx, self.q.select_identifiers, where, params, key, q)
            return Page(rows, more)

        return await self.db.run(go)

    async def events(self, account_sid: str, profile_id: str, q: PageQuery, newest_first: bool = True) -> Page:
        """The profile's messages with their stored payload (``payload``: JSON text, or None once the
        tracking message is gone)."""

        def go(tx: Tx) -> Page:
            where = ["e.account_sid = :a", "e.profile_id = :p"]
            params = {"a": account_sid, "p": profile_id}
            rows, more = keyset(tx, self.q.select_events, where, params, ["e.seq"], q, newest_first=newest_first)
            return Page(rows, more)

        return await self.db.run(go)

    async def merges(self, account_sid: str, profile_id: str, q: PageQuery) -> Page:
        """Merges and refusals this profile took part in, including those of profiles merged into it."""

        def go(tx: Tx) -> Page:
            ids = [profile_id] + [r["id"] for r in tx.all(self.q.absorbed, a=account_sid, id=profile_id)]
            where = ["account_sid = :a", f"({self.d.in_('winner', 'ids')} OR {self.d.in_('loser', 'ids')})"]
            rows, more = keyset(tx, self.q.select_merges, where, {"a": account_sid, "ids": self.d.list_(ids)},
                                ["date_created", "id"], q)  # fmt: skip
            return Page(rows, more)

        return await self.db.run(go)

    async def groups(self, account_sid: str, profile_id: str, limit: int) -> list[Row]:
        """The group ids the profile was seen in (group calls), with the first time."""
        return await self.db.run(lambda tx: tx.all(self.q.groups, a=account_sid, id=profile_id, lim=limit))

    async def set_opted_out(self, account_sid: str, phone: str, opted_out: bool, now: str) -> int:
        return await self.db.run(
            lambda tx: tx.run(self.q.set_opted_out, a=account_sid, phone=phone, opted_out=opted_out, now=now),
            write=True,
        )

    def insert_rows_tx(self, tx: Tx, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Bulk load (the benchmark seeds profiles with it); ``table`` is one of this area's."""
        assert table in ("profiles", "profile_identifiers", "profile_events", "profile_merges")
        tx.insert_rows(table, columns, rows)
