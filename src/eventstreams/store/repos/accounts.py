"""Accounts and API keys."""

from __future__ import annotations

from ..db import Tx, asdict, conditions, count, keyset
from ..errors import LimitReached
from ..records import AccountRow, ApiKeyRow, Page, PageQuery
from . import Repository


class Accounts(Repository):
    area = "accounts"

    async def create(self, row: AccountRow, sub_limit: int | None = None) -> None:
        """Insert an account; a subaccount only while its parent has fewer than ``sub_limit``
        (LimitReached), counted under the parent's lock in the same transaction."""

        def go(tx: Tx) -> None:
            if row.parent_sid is not None and sub_limit is not None:
                self.d.lock_account(tx, row.parent_sid)
                if count(tx, self.q.count_subaccounts, o=row.parent_sid) >= sub_limit:
                    raise LimitReached("subaccounts")
            tx.run(self.q.insert, **asdict(row))

        await self.db.run(go, write=True)

    async def create_first(self, row: AccountRow, only_if_empty: bool) -> bool:
        """Insert ``row`` unless it exists (or, with ``only_if_empty``, unless
        any account exists). Safe when several processes start together."""

        def go(tx: Tx) -> bool:
            self.d.lock_migrations(tx)
            if only_if_empty and tx.one(self.q.any):
                return False
            if tx.one(self.q.get, sid=row.sid):
                return False
            tx.run(self.q.insert, **asdict(row))
            return True

        return await self.db.run(go, write=True)

    async def get(self, sid: str) -> AccountRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.get, sid=sid))
        return AccountRow(**r) if r else None

    async def first(self) -> AccountRow | None:
        """The oldest top-level account: the one `serve` created first (what the seeder fills by default)."""
        r = await self.db.run(lambda tx: tx.one(self.q.first))
        return AccountRow(**r) if r else None

    async def count(self) -> int:
        return await self.db.run(lambda tx: count(tx, self.q.count))

    async def list(self, root_sid: str, friendly_name: str | None, status: str | None, q: PageQuery) -> Page:
        where, params = conditions(
            ("(sid = :root OR parent_sid = :root)", "root", root_sid),
            ("friendly_name = :fn", "fn", friendly_name),
            ("status = :st", "st", status),
        )

        def go(tx: Tx) -> Page:
            rows, more = keyset(tx, self.q.select, where, params, ["date_created", "sid"], q)
            return Page([AccountRow(**r) for r in rows], more)

        return await self.db.run(go)

    async def update(self, sid: str, friendly_name: str | None, status: str | None, now: str) -> None:
        await self.db.run(
            lambda tx: tx.run(self.q.update, fn=friendly_name, st=status, now=now, sid=sid), write=True
        )

    async def set_token(self, sid: str, token_hash: str, token_sealed: str) -> None:
        await self.db.run(lambda tx: tx.run(self.q.set_token, h=token_hash, s=token_sealed, sid=sid), write=True)

    # -- API keys
    async def create_key(self, row: ApiKeyRow, limit: int) -> None:
        """Insert an API key while the account has fewer than ``limit`` (LimitReached)."""

        def go(tx: Tx) -> None:
            self.d.lock_account(tx, row.account_sid)
            if count(tx, self.q.count_keys, o=row.account_sid) >= limit:
                raise LimitReached("api_keys")
            tx.run(self.q.insert_key, **asdict(row))

        await self.db.run(go, write=True)

    async def get_key(self, sid: str) -> ApiKeyRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.get_key, sid=sid))
        return ApiKeyRow(**r) if r else None

    async def list_keys(self, account_sid: str, q: PageQuery) -> Page:
        def go(tx: Tx) -> Page:
            rows, more = keyset(tx, self.q.select_keys, ["account_sid = :a"], {"a": account_sid},
                                ["date_created", "sid"], q)  # fmt: skip
            return Page([ApiKeyRow(**r) for r in rows], more)

        return await self.db.run(go)

    async def update_key(self, sid: str, friendly_name: str, now: str) -> None:
        await self.db.run(lambda tx: tx.run(self.q.update_key, fn=friendly_name, now=now, sid=sid), write=True)

    async def delete_key(self, sid: str) -> bool:
        return await self.db.run(lambda tx: tx.run(self.q.delete_key, sid=sid), write=True) > 0
