"""The Store implemented once in SQL shared by both dialects.

Subclasses supply ``_run`` (execute a function with a transaction handle
on the right thread/connection) and the few statements that differ.
Queries use ``:name`` placeholders; the PostgreSQL side rewrites them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, TypeVar

from .base import Store
from .errors import Conflict, LimitReached
from .records import (
    AccountRow,
    ApiKeyRow,
    EventTypeRow,
    Page,
    PageQuery,
    SchemaVersionRow,
    SinkRow,
    SubscribedEventRow,
    SubscriptionRow,
)

T = TypeVar("T")
Row = dict[str, Any]


class Tx(abc.ABC):
    """A transaction handle: run SQL, get dict rows."""

    @abc.abstractmethod
    def all(self, sql: str, **params: Any) -> list[Row]: ...

    @abc.abstractmethod
    def run(self, sql: str, **params: Any) -> int: ...

    @abc.abstractmethod
    def many(self, sql: str, params: Sequence[dict[str, Any]]) -> None: ...

    @abc.abstractmethod
    def script(self, sql: str) -> None: ...

    def one(self, sql: str, **params: Any) -> Row | None:
        rows = self.all(sql, **params)
        return rows[0] if rows else None


def migrations(dialect: str) -> list[tuple[str, str]]:
    """(name, sql) pairs in order, from store/sql/<dialect>/NNN_*.sql."""
    folder = resources.files("eventstreams.store").joinpath("sql", dialect)
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


def _keyset(
    tx: Tx, select: str, where: list[str], params: dict[str, Any], cols: list[str], q: PageQuery
) -> tuple[list[Row], bool]:
    conds = list(where)
    desc = False
    key = q.after if q.after is not None else q.before
    if key is not None:
        desc = q.before is not None and q.after is None
        marks = ", ".join(f":_k{i}" for i in range(len(cols)))
        conds.append(f"({', '.join(cols)}) {'<' if desc else '>'} ({marks})")
        for i, v in enumerate(key):
            params[f"_k{i}"] = v
    order = ", ".join(f"{c} {'DESC' if desc else 'ASC'}" for c in cols)
    sql = f"{select} WHERE {' AND '.join(conds) or '1=1'} ORDER BY {order} LIMIT :_lim OFFSET :_off"
    rows = tx.all(sql, _lim=q.size + 1, _off=q.offset if key is None else 0, **params)
    more = len(rows) > q.size
    rows = rows[: q.size]
    if desc:
        rows.reverse()
    return rows, more


def _sink(r: Row) -> SinkRow:
    r["in_use"] = bool(r.get("in_use", False))
    return SinkRow(**r)


def _type(r: Row) -> EventTypeRow:
    r["segment_compatible"] = bool(r["segment_compatible"])
    return EventTypeRow(**r)


_SINK_SELECT = (
    "SELECT s.sid, s.account_sid, s.description, s.sink_type, s.configuration_sealed, s.status,"
    " s.signing_secret_sealed, s.date_created, s.date_updated,"
    " EXISTS (SELECT 1 FROM subscriptions x WHERE x.sink_sid = s.sid) AS in_use FROM sinks s"
)
_TYPE_COLS = (
    "type, schema_id, owner_sid, description, status, documentation_url, segment_compatible, date_created, date_updated"
)


class SQLStore(Store):
    @abc.abstractmethod
    async def _run(self, fn: Callable[[Tx], T], write: bool = False) -> T: ...

    def _lock_account(self, tx: Tx, sid: str) -> None:
        """Serialise writes that check a per-account limit (PostgreSQL locks
        the account row; SQLite's single writer already serialises)."""

    # -- migrations
    async def migrate(self) -> list[str]:
        wanted = migrations(self.dialect)

        def apply(tx: Tx) -> list[str]:
            self._lock_migrations(tx)
            tx.script("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            done = {r["name"] for r in tx.all("SELECT name FROM schema_migrations")}
            applied = []
            for name, sql in wanted:
                if name in done:
                    continue
                tx.script(sql)
                tx.run("INSERT INTO schema_migrations (name, applied_at) VALUES (:n, CURRENT_TIMESTAMP)", n=name)
                applied.append(name)
            return applied

        return await self._run(apply, write=True)

    def _lock_migrations(self, tx: Tx) -> None:
        """Keep two processes starting together from migrating twice."""

    async def ping(self) -> bool:
        return await self._run(lambda tx: tx.one("SELECT 1 AS ok") is not None)

    # -- accounts
    async def create_account(self, row: AccountRow) -> None:
        await self._run(
            lambda tx: tx.run(
                "INSERT INTO accounts (sid, parent_sid, friendly_name, status, token_hash, token_sealed,"
                " date_created, date_updated) VALUES (:sid, :parent_sid, :friendly_name, :status,"
                " :token_hash, :token_sealed, :date_created, :date_updated)",
                **_asdict(row),
            ),
            write=True,
        )

    async def create_first_account(self, row: AccountRow, only_if_empty: bool) -> bool:
        def go(tx: Tx) -> bool:
            self._lock_migrations(tx)
            if only_if_empty and tx.one("SELECT sid FROM accounts LIMIT 1"):
                return False
            if tx.one("SELECT sid FROM accounts WHERE sid = :sid", sid=row.sid):
                return False
            tx.run(
                "INSERT INTO accounts (sid, parent_sid, friendly_name, status, token_hash, token_sealed,"
                " date_created, date_updated) VALUES (:sid, :parent_sid, :friendly_name, :status,"
                " :token_hash, :token_sealed, :date_created, :date_updated)",
                **_asdict(row),
            )
            return True

        return await self._run(go, write=True)

    async def get_account(self, sid: str) -> AccountRow | None:
        r = await self._run(lambda tx: tx.one("SELECT * FROM accounts WHERE sid = :sid", sid=sid))
        return AccountRow(**r) if r else None

    async def count_accounts(self) -> int:
        r = await self._run(lambda tx: tx.one("SELECT COUNT(*) AS n FROM accounts"))
        return int(r["n"]) if r else 0

    async def list_accounts(self, root_sid: str, friendly_name: str | None, status: str | None, q: PageQuery) -> Page:
        where = ["(sid = :root OR parent_sid = :root)"]
        params: dict[str, Any] = {"root": root_sid}
        if friendly_name is not None:
            where.append("friendly_name = :fn")
            params["fn"] = friendly_name
        if status is not None:
            where.append("status = :st")
            params["st"] = status

        def go(tx: Tx) -> Page:
            rows, more = _keyset(tx, "SELECT * FROM accounts", where, params, ["date_created", "sid"], q)
            return Page([AccountRow(**r) for r in rows], more)

        return await self._run(go)

    async def update_account(self, sid: str, friendly_name: str | None, status: str | None, now: str) -> None:
        await self._run(
            lambda tx: tx.run(
                "UPDATE accounts SET friendly_name = COALESCE(:fn, friendly_name),"
                " status = COALESCE(:st, status), date_updated = :now WHERE sid = :sid",
                fn=friendly_name,
                st=status,
                now=now,
                sid=sid,
            ),
            write=True,
        )

    async def set_account_token(self, sid: str, token_hash: str, token_sealed: str) -> None:
        await self._run(
            lambda tx: tx.run(
                "UPDATE accounts SET token_hash = :h, token_sealed = :s WHERE sid = :sid",
                h=token_hash,
                s=token_sealed,
                sid=sid,
            ),
            write=True,
        )

    async def create_api_key(self, row: ApiKeyRow) -> None:
        await self._run(
            lambda tx: tx.run(
                "INSERT INTO api_keys (sid, account_sid, friendly_name, secret_hash, date_created, date_updated)"
                " VALUES (:sid, :account_sid, :friendly_name, :secret_hash, :date_created, :date_updated)",
                **_asdict(row),
            ),
            write=True,
        )

    async def get_api_key(self, sid: str) -> ApiKeyRow | None:
        r = await self._run(lambda tx: tx.one("SELECT * FROM api_keys WHERE sid = :sid", sid=sid))
        return ApiKeyRow(**r) if r else None

    async def list_api_keys(self, account_sid: str, q: PageQuery) -> Page:
        def go(tx: Tx) -> Page:
            rows, more = _keyset(
                tx, "SELECT * FROM api_keys", ["account_sid = :a"], {"a": account_sid}, ["date_created", "sid"], q
            )
            return Page([ApiKeyRow(**r) for r in rows], more)

        return await self._run(go)

    async def update_api_key(self, sid: str, friendly_name: str, now: str) -> None:
        await self._run(
            lambda tx: tx.run(
                "UPDATE api_keys SET friendly_name = :fn, date_updated = :now WHERE sid = :sid",
                fn=friendly_name,
                now=now,
                sid=sid,
            ),
            write=True,
        )

    async def delete_api_key(self, sid: str) -> bool:
        n = await self._run(lambda tx: tx.run("DELETE FROM api_keys WHERE sid = :sid", sid=sid), write=True)
        return n > 0

    # -- catalogue
    async def sync_builtin_catalog(self, types: Sequence[EventTypeRow], versions: Sequence[SchemaVersionRow]) -> None:
        def go(tx: Tx) -> None:
            tx.many(
                "INSERT INTO schema_versions (schema_id, version, owner_sid, document, date_created)"
                " VALUES (:schema_id, :version, NULL, :document, :date_created)"
                " ON CONFLICT (schema_id, version) DO UPDATE SET document = excluded.document,"
                " date_created = excluded.date_created WHERE schema_versions.owner_sid IS NULL",
                [_asdict(v) for v in versions],
            )
            tx.many(
                f"INSERT INTO event_types ({_TYPE_COLS}) VALUES (:type, :schema_id, NULL, :description, :status,"
                " :documentation_url, :segment_compatible, :date_created, :date_updated)"
                " ON CONFLICT (type) DO UPDATE SET schema_id = excluded.schema_id,"
                " description = excluded.description, status = excluded.status,"
                " documentation_url = excluded.documentation_url,"
                " segment_compatible = excluded.segment_compatible, date_updated = excluded.date_updated"
                " WHERE event_types.owner_sid IS NULL",
                [_asdict(t) for t in types],
            )

        await self._run(go, write=True)

    async def list_event_types(self, owner_sid: str, schema_id: str | None, q: PageQuery) -> Page:
        where = ["(owner_sid IS NULL OR owner_sid = :o)"]
        params: dict[str, Any] = {"o": owner_sid}
        if schema_id is not None:
            where.append("schema_id = :sid")
            params["sid"] = schema_id

        def go(tx: Tx) -> Page:
            rows, more = _keyset(tx, f"SELECT {_TYPE_COLS} FROM event_types", where, params, ["type"], q)
            return Page([_type(r) for r in rows], more)

        return await self._run(go)

    async def get_event_type(self, owner_sid: str, type_: str) -> EventTypeRow | None:
        r = await self._run(
            lambda tx: tx.one(
                f"SELECT {_TYPE_COLS} FROM event_types WHERE type = :t AND (owner_sid IS NULL OR owner_sid = :o)",
                t=type_,
                o=owner_sid,
            )
        )
        return _type(r) if r else None

    async def put_event_type(self, row: EventTypeRow) -> None:
        def go(tx: Tx) -> None:
            cur = tx.one("SELECT owner_sid FROM event_types WHERE type = :t", t=row.type)
            if cur is not None and cur["owner_sid"] != row.owner_sid:
                raise Conflict(f"Event type {row.type} already exists")
            tx.run(
                f"INSERT INTO event_types ({_TYPE_COLS}) VALUES (:type, :schema_id, :owner_sid, :description,"
                " :status, :documentation_url, :segment_compatible, :date_created, :date_updated)"
                " ON CONFLICT (type) DO UPDATE SET schema_id = excluded.schema_id,"
                " description = excluded.description, status = excluded.status,"
                " documentation_url = excluded.documentation_url, date_updated = excluded.date_updated",
                **_asdict(row),
            )

        await self._run(go, write=True)

    async def list_schema_versions(self, owner_sid: str, schema_id: str, q: PageQuery) -> Page:
        def go(tx: Tx) -> Page:
            rows, more = _keyset(
                tx,
                "SELECT * FROM schema_versions",
                ["schema_id = :s", "(owner_sid IS NULL OR owner_sid = :o)"],
                {"s": schema_id, "o": owner_sid},
                ["version"],
                q,
            )
            return Page([SchemaVersionRow(**r) for r in rows], more)

        return await self._run(go)

    async def get_schema_version(self, owner_sid: str, schema_id: str, version: int | None) -> SchemaVersionRow | None:
        base = "SELECT * FROM schema_versions WHERE schema_id = :s AND (owner_sid IS NULL OR owner_sid = :o)"
        if version is None:
            r = await self._run(lambda tx: tx.one(base + " ORDER BY version DESC LIMIT 1", s=schema_id, o=owner_sid))
        else:
            r = await self._run(lambda tx: tx.one(base + " AND version = :v", s=schema_id, o=owner_sid, v=version))
        return SchemaVersionRow(**r) if r else None

    async def add_schema_version(self, row: SchemaVersionRow) -> SchemaVersionRow:
        def go(tx: Tx) -> SchemaVersionRow:
            cur = tx.one(
                "SELECT MAX(version) AS v, MIN(COALESCE(owner_sid, '')) AS o, MAX(COALESCE(owner_sid, '')) AS o2"
                " FROM schema_versions WHERE schema_id = :s",
                s=row.schema_id,
            )
            if cur is not None and cur["v"] is not None and (cur["o"] != row.owner_sid or cur["o2"] != row.owner_sid):
                raise Conflict(f"Schema {row.schema_id} belongs to another owner")
            row.version = int(cur["v"]) + 1 if cur is not None and cur["v"] is not None else 1
            tx.run(
                "INSERT INTO schema_versions (schema_id, version, owner_sid, document, date_created)"
                " VALUES (:schema_id, :version, :owner_sid, :document, :date_created)",
                **_asdict(row),
            )
            return row

        return await self._run(go, write=True)

    async def all_schema_versions(self) -> list[SchemaVersionRow]:
        rows = await self._run(lambda tx: tx.all("SELECT * FROM schema_versions ORDER BY schema_id, version"))
        return [SchemaVersionRow(**r) for r in rows]

    # -- sinks
    async def create_sink(self, row: SinkRow, limit: int) -> None:
        def go(tx: Tx) -> None:
            self._lock_account(tx, row.account_sid)
            n = tx.one("SELECT COUNT(*) AS n FROM sinks WHERE account_sid = :a", a=row.account_sid)
            if n is not None and int(n["n"]) >= limit:
                raise LimitReached(f"Account reached the max sink limit ({limit})")
            d = _asdict(row)
            d.pop("in_use")
            tx.run(
                "INSERT INTO sinks (sid, account_sid, description, sink_type, configuration_sealed, status,"
                " signing_secret_sealed, date_created, date_updated) VALUES (:sid, :account_sid, :description,"
                " :sink_type, :configuration_sealed, :status, :signing_secret_sealed, :date_created, :date_updated)",
                **d,
            )

        await self._run(go, write=True)

    async def get_sink(self, account_sid: str, sid: str) -> SinkRow | None:
        r = await self._run(
            lambda tx: tx.one(_SINK_SELECT + " WHERE s.sid = :sid AND s.account_sid = :a", sid=sid, a=account_sid)
        )
        return _sink(r) if r else None

    async def list_sinks(self, account_sid: str, in_use: bool | None, status: str | None, q: PageQuery) -> Page:
        where = ["s.account_sid = :a"]
        params: dict[str, Any] = {"a": account_sid}
        if in_use is not None:
            where.append(("" if in_use else "NOT ") + "EXISTS (SELECT 1 FROM subscriptions x WHERE x.sink_sid = s.sid)")
        if status is not None:
            where.append("s.status = :st")
            params["st"] = status

        def go(tx: Tx) -> Page:
            rows, more = _keyset(tx, _SINK_SELECT, where, params, ["s.date_created", "s.sid"], q)
            return Page([_sink(r) for r in rows], more)

        return await self._run(go)

    async def update_sink(self, account_sid: str, sid: str, description: str, now: str) -> SinkRow | None:
        def go(tx: Tx) -> SinkRow | None:
            tx.run(
                "UPDATE sinks SET description = :d, date_updated = :now WHERE sid = :sid AND account_sid = :a",
                d=description,
                now=now,
                sid=sid,
                a=account_sid,
            )
            r = tx.one(_SINK_SELECT + " WHERE s.sid = :sid AND s.account_sid = :a", sid=sid, a=account_sid)
            return _sink(r) if r else None

        return await self._run(go, write=True)

    async def delete_sink(self, account_sid: str, sid: str) -> bool:
        def go(tx: Tx) -> bool:
            self._lock_account(tx, account_sid)
            if tx.one(
                "SELECT 1 AS x FROM subscriptions WHERE sink_sid = :sid AND account_sid = :a", sid=sid, a=account_sid
            ):
                raise Conflict("Sink still in use")
            tx.run("DELETE FROM sink_tests WHERE sink_sid = :sid", sid=sid)
            return tx.run("DELETE FROM sinks WHERE sid = :sid AND account_sid = :a", sid=sid, a=account_sid) > 0

        return await self._run(go, write=True)

    async def record_sink_test(self, sink_sid: str, test_id: str, now: str) -> None:
        await self._run(
            lambda tx: tx.run(
                "INSERT INTO sink_tests (test_id, sink_sid, date_created) VALUES (:t, :s, :now)",
                t=test_id,
                s=sink_sid,
                now=now,
            ),
            write=True,
        )

    async def sink_test_exists(self, sink_sid: str, test_id: str) -> bool:
        r = await self._run(
            lambda tx: tx.one(
                "SELECT 1 AS x FROM sink_tests WHERE test_id = :t AND sink_sid = :s", t=test_id, s=sink_sid
            )
        )
        return r is not None

    # -- subscriptions
    async def create_subscription(
        self, row: SubscriptionRow, types: Sequence[SubscribedEventRow], limit: int, one_per_sink: bool
    ) -> None:
        def go(tx: Tx) -> None:
            self._lock_account(tx, row.account_sid)
            n = tx.one("SELECT COUNT(*) AS n FROM subscriptions WHERE account_sid = :a", a=row.account_sid)
            if n is not None and int(n["n"]) >= limit:
                raise LimitReached(f"Account reached the max subscription limit ({limit})")
            if one_per_sink and tx.one("SELECT 1 AS x FROM subscriptions WHERE sink_sid = :s", s=row.sink_sid):
                raise Conflict(f"Sink with SID {row.sink_sid} is in use")
            tx.run(
                "INSERT INTO subscriptions (sid, account_sid, sink_sid, description, date_created, date_updated)"
                " VALUES (:sid, :account_sid, :sink_sid, :description, :date_created, :date_updated)",
                **_asdict(row),
            )
            tx.many(
                "INSERT INTO subscribed_events (subscription_sid, type, schema_version, account_sid)"
                " VALUES (:subscription_sid, :type, :schema_version, :account_sid)",
                [_asdict(t) for t in types],
            )

        await self._run(go, write=True)

    async def get_subscription(self, account_sid: str, sid: str) -> SubscriptionRow | None:
        r = await self._run(
            lambda tx: tx.one(
                "SELECT * FROM subscriptions WHERE sid = :sid AND account_sid = :a", sid=sid, a=account_sid
            )
        )
        return SubscriptionRow(**r) if r else None

    async def list_subscriptions(self, account_sid: str, sink_sid: str | None, q: PageQuery) -> Page:
        where = ["account_sid = :a"]
        params: dict[str, Any] = {"a": account_sid}
        if sink_sid is not None:
            where.append("sink_sid = :s")
            params["s"] = sink_sid

        def go(tx: Tx) -> Page:
            rows, more = _keyset(tx, "SELECT * FROM subscriptions", where, params, ["date_created", "sid"], q)
            return Page([SubscriptionRow(**r) for r in rows], more)

        return await self._run(go)

    async def update_subscription(
        self, account_sid: str, sid: str, description: str | None, now: str
    ) -> SubscriptionRow | None:
        def go(tx: Tx) -> SubscriptionRow | None:
            if description is not None:
                tx.run(
                    "UPDATE subscriptions SET description = :d, date_updated = :now"
                    " WHERE sid = :sid AND account_sid = :a",
                    d=description,
                    now=now,
                    sid=sid,
                    a=account_sid,
                )
            r = tx.one("SELECT * FROM subscriptions WHERE sid = :sid AND account_sid = :a", sid=sid, a=account_sid)
            return SubscriptionRow(**r) if r else None

        return await self._run(go, write=True)

    async def delete_subscription(self, account_sid: str, sid: str) -> bool:
        def go(tx: Tx) -> bool:
            tx.run(
                "DELETE FROM subscribed_events WHERE subscription_sid = :sid AND account_sid = :a",
                sid=sid,
                a=account_sid,
            )
            return tx.run("DELETE FROM subscriptions WHERE sid = :sid AND account_sid = :a", sid=sid, a=account_sid) > 0

        return await self._run(go, write=True)

    async def list_subscribed_events(self, subscription_sid: str, q: PageQuery) -> Page:
        def go(tx: Tx) -> Page:
            rows, more = _keyset(
                tx, "SELECT * FROM subscribed_events", ["subscription_sid = :s"], {"s": subscription_sid}, ["type"], q
            )
            return Page([SubscribedEventRow(**r) for r in rows], more)

        return await self._run(go)

    async def get_subscribed_event(self, subscription_sid: str, type_: str) -> SubscribedEventRow | None:
        r = await self._run(
            lambda tx: tx.one(
                "SELECT * FROM subscribed_events WHERE subscription_sid = :s AND type = :t", s=subscription_sid, t=type_
            )
        )
        return SubscribedEventRow(**r) if r else None

    async def add_subscribed_event(self, row: SubscribedEventRow, now: str) -> None:
        def go(tx: Tx) -> None:
            if tx.one(
                "SELECT 1 AS x FROM subscribed_events WHERE subscription_sid = :s AND type = :t",
                s=row.subscription_sid,
                t=row.type,
            ):
                raise Conflict(f"Type {row.type} is already in the subscription")
            tx.run(
                "INSERT INTO subscribed_events (subscription_sid, type, schema_version, account_sid)"
                " VALUES (:subscription_sid, :type, :schema_version, :account_sid)",
                **_asdict(row),
            )
            tx.run("UPDATE subscriptions SET date_updated = :now WHERE sid = :s", now=now, s=row.subscription_sid)

        await self._run(go, write=True)

    async def update_subscribed_event(self, subscription_sid: str, type_: str, version: int, now: str) -> bool:
        def go(tx: Tx) -> bool:
            n = tx.run(
                "UPDATE subscribed_events SET schema_version = :v WHERE subscription_sid = :s AND type = :t",
                v=version,
                s=subscription_sid,
                t=type_,
            )
            tx.run("UPDATE subscriptions SET date_updated = :now WHERE sid = :s", now=now, s=subscription_sid)
            return n > 0

        return await self._run(go, write=True)

    async def delete_subscribed_event(self, subscription_sid: str, type_: str, now: str) -> bool:
        def go(tx: Tx) -> bool:
            n = tx.one("SELECT COUNT(*) AS n FROM subscribed_events WHERE subscription_sid = :s", s=subscription_sid)
            exists = tx.one(
                "SELECT 1 AS x FROM subscribed_events WHERE subscription_sid = :s AND type = :t",
                s=subscription_sid,
                t=type_,
            )
            if not exists:
                return False
            if n is not None and int(n["n"]) <= 1:
                raise Conflict("A subscription keeps at least one event type; delete the subscription instead")
            tx.run(
                "DELETE FROM subscribed_events WHERE subscription_sid = :s AND type = :t", s=subscription_sid, t=type_
            )
            tx.run("UPDATE subscriptions SET date_updated = :now WHERE sid = :s", now=now, s=subscription_sid)
            return True

        return await self._run(go, write=True)

    async def reset(self) -> None:
        def go(tx: Tx) -> None:
            for table in self._reset_tables():
                tx.run(f"DELETE FROM {table}")
            tx.run("DELETE FROM event_types WHERE owner_sid IS NOT NULL")
            tx.run("DELETE FROM schema_versions WHERE owner_sid IS NOT NULL")

        await self._run(go, write=True)

    def _reset_tables(self) -> list[str]:
        return ["subscribed_events", "subscriptions", "sink_tests", "sinks", "api_keys", "accounts"]


def _asdict(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}
