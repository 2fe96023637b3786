"""Tracking sources: many per account, each with a write key (rotatable), an enabled flag, a rate
limit, and the messages it received (accepted and rejected: the source's debugger). The HTTP API
(tracking/sources_api.py) and the CLI both call this.

A write key is shown once, at creation or rotation, and never again: the tracking API finds a source
by the key's SHA-256 (one indexed read), and the key itself is kept only Fernet-sealed at rest.
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
from .ingest import INTERNAL_SOURCE

DEFAULT_RATE_LIMIT = 1000  # requests/s per source: Segment asks clients to stay under 1,000/s per workspace
MIN_RATE_LIMIT, MAX_RATE_LIMIT = 1, 100_000
STATUSES = ("accepted", "rejected")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}")  # fullmatch: "$" would let a trailing "\n" in
_NAME_RULE = "Name must be 1-64 letters, digits, spaces, '.', '_' or '-', not starting with a symbol"


def check_name(name: str | None) -> str:
    if name is None:
        raise bad_request("Missing required parameter Name")
    if not _NAME.fullmatch(name):
        raise bad_request(_NAME_RULE)
    return name


def check_not_reserved(name: str, current: str | None = None) -> str:
    """eventstreams' own messages go to the source named INTERNAL_SOURCE (tracking/ingest.py): a user's
    source of that name would receive them, so no other source may take it (in any case)."""
    if name != current and name.casefold() == INTERNAL_SOURCE:
        raise bad_request(f"Name {name!r} is reserved for eventstreams' own messages")
    return name


def _check_not_internal(row: TrackingSourceRow) -> None:
    """The internal source takes no writes from outside (no write key) and is always on."""
    if row.name == INTERNAL_SOURCE:
        raise bad_request(f"Source {row.sid} holds eventstreams' own messages: it has no write key and cannot be "
                          "changed (deleting it is allowed; it is recreated when needed)")  # fmt: skip


def check_rate_limit(rate_limit: int) -> int:
    if not MIN_RATE_LIMIT <= rate_limit <= MAX_RATE_LIMIT:
        raise bad_request(
            f"RateLimit must be between {MIN_RATE_LIMIT} and {MAX_RATE_LIMIT} requests per second (got {rate_limit})"
        )
    return rate_limit


def check_status(status: str | None) -> str | None:
    if status is not None and status not in STATUSES:
        raise bad_request(f"Status must be one of {', '.join(STATUSES)} (got {status[:40]!r})")
    return status


def _gone(sid: str) -> TwilioError:
    return not_found(f"Source {sid} was not found")


def key_hash(write_key: str) -> str:
    return hashlib.sha256(write_key.encode()).hexdigest()


def new_write_key() -> str:
    return secrets.token_urlsafe(24)


class Sources:
    def __init__(self, store: Store, box: Box) -> None:
        self.repo = store.tracking
        self.box = box

    async def create(
        self, account: AccountRow, name: str | None, rate_limit: int | None = None
    ) -> tuple[TrackingSourceRow, str]:
        name = check_not_reserved(check_name(name))
        limit = check_rate_limit(DEFAULT_RATE_LIMIT if rate_limit is None else rate_limit)
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

    async def update(
        self, row: TrackingSourceRow, name: str | None, enabled: bool | None, rate_limit: int | None
    ) -> TrackingSourceRow:
        _check_not_internal(row)
        if name is not None:
            check_not_reserved(check_name(name), row.name)
        if rate_limit is not None:
            check_rate_limit(rate_limit)
        row = TrackingSourceRow(row.sid, row.account_sid, name if name is not None else row.name, row.key_hash,
                                row.key_sealed, row.enabled if enabled is None else enabled,
                                row.rate_limit if rate_limit is None else rate_limit, row.date_created,
                                clock.iso(clock.now()))  # fmt: skip
        try:
            changed = await self.repo.update_source(row, row.date_updated)
        except Conflict:
            raise TwilioError(20409, f"A source named {row.name!r} already exists", 409) from None
        if not changed:  # deleted since it was read
            raise _gone(row.sid)
        return row

    async def rotate(self, row: TrackingSourceRow) -> tuple[TrackingSourceRow, str]:
        """A new write key; the old one stops working at once."""
        _check_not_internal(row)
        key = new_write_key()
        now = clock.iso(clock.now())
        await self.repo.rotate_key(row, key_hash(key), self.box.seal(key), now)
        fresh = await self.repo.source(row.account_sid, row.sid)
        if fresh is None:  # deleted since it was read
            raise _gone(row.sid)
        return fresh, key

    async def delete(self, row: TrackingSourceRow) -> None:
        if not await self.repo.delete_source(row):  # a concurrent delete got there first
            raise _gone(row.sid)

    async def messages(self, row: TrackingSourceRow, status: str | None, q: PageQuery) -> Page:
        """The source's debugger: what it received, newest first; ``status`` accepted or rejected
        (rejected ones carry their reason)."""
        return await self.repo.messages(row.sid, check_status(status), q)

    async def by_write_key(self, write_key: str) -> TrackingSourceRow | None:
        return await self.repo.source_by_key(key_hash(write_key))
