"""Tracking sources: many per account, each with a write key (rotatable) and an enabled flag.

A write key is shown once at creation or rotation and to its owner on request (it is Fernet-sealed
at rest); the tracking API finds a source by the key's SHA-256, so the key itself is never stored
in clear and lookups cost one indexed read.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from .. import clock
from ..crypto import Box
from ..errors import TwilioError, bad_request, not_found
from ..ids import new_sid, normalize_sid
from ..store.base import Store
from ..store.errors import Conflict
from ..store.records import AccountRow, Page, PageQuery, TrackingSourceRow

DEFAULT_RATE_LIMIT = 1000  # requests/s per source: Segment asks clients to stay under 1,000/s per workspace
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


def key_hash(write_key: str) -> str:
    return hashlib.sha256(write_key.encode()).hexdigest()


def new_write_key() -> str:
    return secrets.token_urlsafe(24)


class Sources:
    def __init__(self, store: Store, box: Box) -> None:
        self.repo = store.tracking
        self.box = box

    async def create(
        self, account: AccountRow, name: str, rate_limit: int | None = None
    ) -> tuple[TrackingSourceRow, str]:
        if not _NAME.match(name or ""):
            raise bad_request("Name must be 1-64 letters, digits, spaces, '.', '_' or '-', not starting with a symbol")
        limit = DEFAULT_RATE_LIMIT if rate_limit is None else rate_limit
        if not 1 <= limit <= 100_000:
            raise bad_request("RateLimit must be between 1 and 100000 requests per second")
        key = new_write_key()
        stamp = clock.iso(clock.now())
        row = TrackingSourceRow(new_sid("TS"), account.sid, name, key_hash(key), self.box.seal(key), True, limit,
                                stamp, stamp)  # fmt: skip
        try:
            await self.repo.create_source(row)
        except Conflict:
            raise TwilioError(20409, f"A source named {name!r} already exists", 409) from None
        return row, key

    async def get(self, account: AccountRow, sid: str) -> TrackingSourceRow:
        canon = normalize_sid("TS", sid)
        row = await self.repo.source(account.sid, canon) if canon else None
        if row is None:
            raise not_found(f"Source {sid[:40]} was not found")
        return row

    async def list(self, account: AccountRow, q: PageQuery) -> Page:
        return await self.repo.sources(account.sid, q)

    def write_key(self, row: TrackingSourceRow) -> str:
        return self.box.open(row.key_sealed)

    async def update(
        self, row: TrackingSourceRow, name: str | None, enabled: bool | None, rate_limit: int | None
    ) -> TrackingSourceRow:
        if name is not None and not _NAME.match(name):
            raise bad_request("Name must be 1-64 letters, digits, spaces, '.', '_' or '-'")
        if rate_limit is not None and not 1 <= rate_limit <= 100_000:
            raise bad_request("RateLimit must be between 1 and 100000 requests per second")
        row = TrackingSourceRow(row.sid, row.account_sid, name if name is not None else row.name, row.key_hash,
                                row.key_sealed, row.enabled if enabled is None else enabled,
                                row.rate_limit if rate_limit is None else rate_limit, row.date_created,
                                clock.iso(clock.now()))  # fmt: skip
        try:
            await self.repo.update_source(row, row.date_updated)
        except Conflict:
            raise TwilioError(20409, f"A source named {name!r} already exists", 409) from None
        return row

    async def rotate(self, row: TrackingSourceRow) -> tuple[TrackingSourceRow, str]:
        """A new write key; the old one stops working at once."""
        key = new_write_key()
        now = clock.iso(clock.now())
        await self.repo.rotate_key(row, key_hash(key), self.box.seal(key), now)
        fresh = await self.repo.source(row.account_sid, row.sid)
        assert fresh is not None
        return fresh, key

    async def delete(self, row: TrackingSourceRow) -> None:
        await self.repo.delete_source(row)

    async def by_write_key(self, write_key: str) -> TrackingSourceRow | None:
        return await self.repo.source_by_key(key_hash(write_key))
