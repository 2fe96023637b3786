"""The seeder's bulk path on both backends: ``store.sandbox.insert_many`` (positional executemany on
SQLite, COPY on PostgreSQL) stores exactly the rows it was given, NULLs, booleans and non-ASCII
text included, across chunk boundaries, and a duplicate SID fails the chunk as a Conflict."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from eventstreams.config import Settings
from eventstreams.runtime import build_runtime
from eventstreams.sandbox import seed as seeding
from eventstreams.store.errors import Conflict
from eventstreams.store.records import PageQuery
from eventstreams.store.repos import sandbox as kinds

NOW = 1_780_000_000


async def test_insert_many_stores_the_rows_as_given(database: str, tmp_path: Path) -> None:
    settings = Settings(database_url=database, data_dir=tmp_path, secret_key=Fernet.generate_key().decode(),
                        delivery=False)  # fmt: skip
    rt = await build_runtime(settings)
    try:
        main, _ = await rt.accounts.create("Main")
        sub, _ = await rt.accounts.create("Sub", parent_sid=main.sid)
        data = seeding.generate([main.sid, sub.sid], 700, 300, 21, NOW)
        for kind, rows in data.collections():
            await rt.store.sandbox.insert_many(kind, rows, chunk=128)
        for kind, rows in data.collections():
            for account in (main.sid, sub.sid):
                mine = [r for r in rows if r.account_sid == account]
                if kind is kinds.FEEDBACK:  # no list: one GET per call, as Twilio
                    stored = [await rt.store.sandbox.get(kind, account, r.call_sid) for r in mine]
                    assert stored == mine
                    continue
                page = await rt.store.sandbox.list(kind, account, [], {}, PageQuery(size=1000))
                assert not page.has_more
                assert page.items == sorted(mine, key=lambda r: (r.date_created, r.sid), reverse=True), kind.name
        assert any("🎉" in m.body or not m.body.isascii() for m in data.messages)
        assert await rt.store.sandbox.exists(kinds.MESSAGE, data.messages[0].sid)
        assert not await rt.store.sandbox.exists(kinds.MESSAGE, "SM" + "f" * 32)

        with pytest.raises(Conflict):
            await rt.store.sandbox.insert_many(kinds.CALL, data.calls[:3])
    finally:
        await rt.close()
