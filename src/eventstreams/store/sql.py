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

import orjson

from .base import Store
from .errors import Conflict, LimitReached
from .records import (
    AccountRow,
    AlertRow,
    ApiKeyRow,
    DeadLetterRow,
    DeliveryResult,
    ErrorReport,
    EventTypeRow,
    LeasedDelivery,
    LogEntry,
    LogRow,
    NewEvent,
    Page,
    PageQuery,
    PublishOutcome,
    SchemaVersionRow,
    SinkRow,
    SubscribedEventRow,
    SubscriptionRow,
)

T = TypeVar("T")
Row = dict[str, Any]


#: Counts behind the per-account limits (domain/accounts.py, domain/control.py).
_COUNT_OWNED = {
    "subaccounts": "SELECT COUNT(*) AS n FROM accounts WHERE parent_sid = :o",
    "api_keys": "SELECT COUNT(*) AS n FROM api_keys WHERE account_sid = :o",
    "event_types": "SELECT COUNT(*) AS n FROM event_types WHERE owner_sid = :o",
    "schemas": "SELECT COUNT(DISTINCT schema_id) AS n FROM schema_versions WHERE owner_sid = :o",
    "schema_versions": "SELECT COUNT(*) AS n FROM schema_versions WHERE owner_sid = :o AND schema_id = :s",
}


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
_INSERT_DELIVERY = (
    "INSERT INTO deliveries (sink_sid, account_sid, event_seq, due_at, window_start) VALUES (:s, :a, :q, :now, :now)"
)
_TYPE_COLS = (
    "type, schema_id, owner_sid, description, status, documentation_url, segment_compatible, date_created, date_updated"
)


class SQLDeliveryMixin(abc.ABC):
    """Delivery operations; the dialect hooks are the few places SQLite and
    PostgreSQL differ (list parameters, RETURNING from bulk inserts, locking, NOTIFY)."""

    @abc.abstractmethod
    async def _run(self, fn: Callable[[Tx], T], write: bool = False) -> T: ...

    @abc.abstractmethod
    def _in(self, column: str, name: str) -> str:
        """SQL testing ``column`` against the list parameter ``name``."""

    @abc.abstractmethod
    def _list(self, values: Sequence[Any]) -> Any:
        """Encode a Python list for a parameter used with ``_in``."""

    @abc.abstractmethod
    def _insert_events(self, tx: Tx, account_sid: str, events: Sequence[NewEvent], now_ms: int) -> list[int]:
        """Insert events, return their seqs in order."""

    @abc.abstractmethod
    def _claim_ids(self, tx: Tx, account_sid: str, ids: Sequence[str], now_ms: int, cutoff_ms: int) -> set[str]:
        """Record ids for dedupe; return those not seen since ``cutoff_ms``."""

    def _notify(self, tx: Tx, sinks: Sequence[str]) -> None:  # noqa: B027 - optional hook
        """Wake workers in other processes (PostgreSQL NOTIFY; nothing on SQLite)."""

    _SKIP_LOCKED = ""
    _FOR_UPDATE = ""  # SQLite's single writer already serialises; PostgreSQL locks the row

    def _fan_out(self, tx: Tx, account_sid: str, seqs: list[int], now_ms: int, types: list[str]) -> list[str]:
        if not seqs:
            return []
        tx.run(
            "INSERT INTO deliveries (sink_sid, account_sid, event_seq, due_at, window_start)"
            " SELECT s.sink_sid, e.account_sid, e.seq, :now, :now FROM events e"
            " JOIN subscribed_events se ON se.account_sid = e.account_sid AND se.type = e.type"
            " JOIN subscriptions s ON s.sid = se.subscription_sid"
            f" WHERE {self._in('e.seq', 'seqs')}",
            now=now_ms,
            seqs=self._list(seqs),
        )
        rows = tx.all(
            "SELECT DISTINCT s.sink_sid FROM subscribed_events se JOIN subscriptions s ON s.sid = se.subscription_sid"
            f" WHERE se.account_sid = :a AND {self._in('se.type', 'types')}",
            a=account_sid,
            types=self._list(types),
        )
        return [r["sink_sid"] for r in rows]

    async def publish_events(
        self, account_sid: str, events: Sequence[NewEvent], now_ms: int, dedupe_window_ms: int
    ) -> PublishOutcome:
        def go(tx: Tx) -> PublishOutcome:
            fresh = self._claim_ids(tx, account_sid, [e.id for e in events], now_ms, now_ms - dedupe_window_ms)
            new = [e for e in events if e.id in fresh]
            dup = [e.id for e in events if e.id not in fresh]
            seqs = self._insert_events(tx, account_sid, new, now_ms)
            sinks = self._fan_out(tx, account_sid, seqs, now_ms, sorted({e.type for e in new}))
            self._notify(tx, sinks)
            return PublishOutcome([e.id for e in new], dup, sinks)

        return await self._run(go, write=True)

    async def enqueue_for_sink(self, account_sid: str, sink_sid: str, events: Sequence[NewEvent], now_ms: int) -> int:
        def go(tx: Tx) -> int:
            seqs = self._insert_events(tx, account_sid, events, now_ms)
            tx.many(
                _INSERT_DELIVERY,
                [{"s": sink_sid, "a": account_sid, "q": q, "now": now_ms} for q in seqs],
            )
            self._notify(tx, [sink_sid])
            return len(seqs)

        return await self._run(go, write=True)

    async def lease_deliveries(
        self, sink_sid: str, now_ms: int, limit: int, lease: str, lease_ms: int
    ) -> list[LeasedDelivery]:
        def go(tx: Tx) -> list[LeasedDelivery]:
            rows = tx.all(
                "UPDATE deliveries SET due_at = :until, leased_by = :lease WHERE id IN ("
                " SELECT id FROM deliveries WHERE sink_sid = :s AND due_at <= :now ORDER BY due_at LIMIT :n"
                f" {self._SKIP_LOCKED})"
                " RETURNING id, sink_sid, account_sid, event_seq, attempts, window_start",
                until=now_ms + lease_ms,
                lease=lease,
                s=sink_sid,
                now=now_ms,
                n=limit,
            )
            if not rows:
                return []
            events = {
                r["seq"]: r
                for r in tx.all(
                    f"SELECT seq, id, type, schema_version, payload FROM events WHERE {self._in('seq', 'seqs')}",
                    seqs=self._list([r["event_seq"] for r in rows]),
                )
            }
            out = []
            for r in sorted(rows, key=lambda r: int(r["id"])):
                e = events.get(r["event_seq"])
                if e is None:  # event pruned under us: nothing left to deliver
                    continue
                out.append(
                    LeasedDelivery(
                        id=int(r["id"]),
                        sink_sid=r["sink_sid"],
                        account_sid=r["account_sid"],
                        event_seq=int(r["event_seq"]),
                        attempts=int(r["attempts"]),
                        window_start=int(r["window_start"]),
                        event_id=e["id"],
                        type=e["type"],
                        schema_version=e["schema_version"],
                        payload=e["payload"],
                        lease=lease,
                    )
                )
            return out

        return await self._run(go, write=True)

    async def complete_deliveries(
        self,
        results: Sequence[DeliveryResult],
        logs: Sequence[LogEntry],
        errors: Sequence[ErrorReport],
        now_ms: int,
        alert_every_ms: int,
    ) -> list[AlertRow]:
        from ..ids import new_sid

        gone = [r for r in results if r.kind in ("delivered", "skipped")]
        retry = [r for r in results if r.kind == "retry"]
        dead = [r for r in results if r.kind == "dead"]

        def go(tx: Tx) -> list[AlertRow]:
            by_lease: dict[str, list[int]] = {}
            for r in gone:
                by_lease.setdefault(r.delivery.lease, []).append(r.delivery.id)
            for lease, ids in by_lease.items():  # one statement per lease, not one per row
                tx.run(
                    f"DELETE FROM deliveries WHERE leased_by = :lease AND {self._in('id', 'ids')}",
                    lease=lease,
                    ids=self._list(ids),
                )
            if retry:
                tx.many(
                    "UPDATE deliveries SET attempts = attempts + 1,"
                    " due_at = :due, leased_by = NULL, last_code = :c, last_error = :e"
                    " WHERE id = :id AND leased_by = :lease",
                    [
                        {
                            "due": r.due_at,
                            "c": r.code,
                            "e": r.error,
                            "id": r.delivery.id,
                            "lease": r.delivery.lease,
                        }
                        for r in retry
                    ],
                )
            if dead:
                rows = [{"id": r.delivery.id, "lease": r.delivery.lease, "eid": r.delivery.event_id,
                         "t": r.delivery.type, "c": r.code, "e": r.error, "now": now_ms} for r in dead]  # fmt: skip
                tx.many(
                    "INSERT INTO dead_letters (account_sid, sink_sid, event_seq, event_id, type, attempts, last_code,"
                    " last_error, dead_at) SELECT d.account_sid, d.sink_sid, d.event_seq, :eid, :t, d.attempts + 1,"
                    " :c, :e, :now FROM deliveries d WHERE d.id = :id AND d.leased_by = :lease",
                    rows,
                )
                tx.many("DELETE FROM deliveries WHERE id = :id AND leased_by = :lease", rows)
            if logs:
                tx.many(
                    "INSERT INTO delivery_log (account_sid, sink_sid, at, outcome, event_count, event_ids, attempt,"
                    " code, http_status, detail) VALUES (:a, :s, :at, :o, :n, :ids, :att, :c, :h, :d)",
                    [
                        {
                            "a": g.account_sid,
                            "s": g.sink_sid,
                            "at": g.at,
                            "o": g.outcome,
                            "n": len(g.event_ids),
                            "ids": orjson.dumps(g.event_ids).decode(),
                            "att": g.attempt,
                            "c": g.code,
                            "h": g.http_status,
                            "d": g.detail,
                        }
                        for g in logs
                    ],
                )
            alerts = []
            for err in errors:
                alert = self._group_alert(tx, err, now_ms, alert_every_ms, new_sid("NO"))
                if alert is not None:
                    alerts.append(alert)
            return alerts

        return await self._run(go, write=True)

    def _group_alert(self, tx: Tx, err: ErrorReport, now_ms: int, every_ms: int, sid: str) -> AlertRow | None:
        """Twilio's cadence: alert on the first error, then every 20 minutes or
        when the error count reaches 10, 100, 1,000, ..."""
        # Create the row if missing, then lock it: two pipelines of one sink (or two workers) may
        # record their first errors at the same moment; they must not both insert (PostgreSQL).
        tx.run(
            "INSERT INTO sink_alert_state (sink_sid, account_sid, total_errors, errors_since_alert, last_alert_at,"
            " next_threshold) VALUES (:s, :a, 0, 0, 0, 10) ON CONFLICT (sink_sid) DO NOTHING",
            s=err.sink_sid,
            a=err.account_sid,
        )
        st = tx.one(f"SELECT * FROM sink_alert_state WHERE sink_sid = :s{self._FOR_UPDATE}", s=err.sink_sid)
        assert st is not None
        first = int(st["total_errors"]) == 0
        total = int(st["total_errors"]) + err.count
        since = int(st["errors_since_alert"]) + err.count
        threshold = int(st["next_threshold"])
        fire = first or now_ms - int(st["last_alert_at"]) >= every_ms or total >= threshold
        if fire:
            while threshold <= total:
                threshold *= 10
        tx.run(
            "UPDATE sink_alert_state SET total_errors = :t, errors_since_alert = :e, last_alert_at = :l,"
            " next_threshold = :n WHERE sink_sid = :s",
            s=err.sink_sid,
            t=total,
            e=0 if fire else since,
            l=now_ms if fire else int(st["last_alert_at"]),
            n=threshold,
        )
        if not fire:
            return None
        status = f" (HTTP {err.http_status})" if err.http_status is not None else ""
        text = (
            f"Sink {err.sink_sid}: delivery error {err.code}{status}: {err.detail or ''}".strip()
            + f" [{since} error(s) since the last alert, {total} in total]"
        )
        row = AlertRow(
            sid=sid,
            account_sid=err.account_sid,
            sink_sid=err.sink_sid,
            error_code=err.code,
            log_level="error" if err.code not in (91302, 91304) else "warning",
            alert_text=text[:2000],
            http_status=err.http_status,
            response_body=err.detail,
            request_url=err.request_url,
            error_count=since,
            created_at=now_ms,
        )
        tx.run(
            "INSERT INTO alerts (sid, account_sid, sink_sid, error_code, log_level, alert_text, http_status,"
            " response_body, request_url, error_count, created_at) VALUES (:sid, :account_sid, :sink_sid,"
            " :error_code, :log_level, :alert_text, :http_status, :response_body, :request_url, :error_count,"
            " :created_at)",
            **_asdict(row),
        )
        return row

    async def expire_deliveries(
        self, sink_sid: str, window_start_before: int, now_ms: int, reason: str, code: int | None = None
    ) -> int:
        def go(tx: Tx) -> int:
            # DELETE ... RETURNING first: on PostgreSQL that locks the rows, so a worker leasing them
            # concurrently skips them instead of delivering (and dead-lettering) them a second time.
            gone = tx.all(
                "DELETE FROM deliveries WHERE sink_sid = :s AND window_start < :cut AND leased_by IS NULL"
                " RETURNING account_sid, sink_sid, event_seq, attempts, last_code, last_error",
                s=sink_sid,
                cut=window_start_before,
            )
            if not gone:
                return 0
            events = {
                int(r["seq"]): r
                for r in tx.all(
                    f"SELECT seq, id, type FROM events WHERE {self._in('seq', 'seqs')}",
                    seqs=self._list([int(g["event_seq"]) for g in gone]),
                )
            }
            tx.many(
                "INSERT INTO dead_letters (account_sid, sink_sid, event_seq, event_id, type, attempts, last_code,"
                " last_error, dead_at) VALUES (:a, :s, :q, :eid, :t, :n, :c, :e, :now)",
                [
                    {
                        "a": g["account_sid"],
                        "s": g["sink_sid"],
                        "q": g["event_seq"],
                        "eid": events[int(g["event_seq"])]["id"],
                        "t": events[int(g["event_seq"])]["type"],
                        "n": g["attempts"],
                        "c": g["last_code"] or code,  # never tried: the error that kept the sink down
                        "e": f"{g['last_error']} ({reason})" if g["last_error"] else reason,
                        "now": now_ms,
                    }
                    for g in gone
                    if int(g["event_seq"]) in events
                ],
            )
            return len(gone)

        return await self._run(go, write=True)

    async def extend_lease(self, ids: Sequence[int], lease: str, until_ms: int) -> int:
        return await self._run(
            lambda tx: tx.run(
                f"UPDATE deliveries SET due_at = :until WHERE leased_by = :lease AND {self._in('id', 'ids')}",
                until=until_ms,
                lease=lease,
                ids=self._list(list(ids)),
            ),
            write=True,
        )

    async def release_leases(self) -> int:
        return await self._run(
            lambda tx: tx.run("UPDATE deliveries SET due_at = 0, leased_by = NULL WHERE leased_by IS NOT NULL"),
            write=True,
        )

    async def next_due(self, sink_sid: str) -> int | None:
        r = await self._run(
            lambda tx: tx.one("SELECT MIN(due_at) AS d FROM deliveries WHERE sink_sid = :s", s=sink_sid)
        )
        return int(r["d"]) if r and r["d"] is not None else None

    async def delivery_sinks(self) -> list[SinkRow]:
        rows = await self._run(
            lambda tx: tx.all(
                _SINK_SELECT + " WHERE EXISTS (SELECT 1 FROM subscriptions x WHERE x.sink_sid = s.sid)"
                " OR EXISTS (SELECT 1 FROM deliveries d WHERE d.sink_sid = s.sid)"
            )
        )
        return [_sink(r) for r in rows]

    async def subscribed_versions(self) -> dict[str, dict[str, int]]:
        rows = await self._run(
            lambda tx: tx.all(
                "SELECT s.sink_sid, se.type, se.schema_version FROM subscribed_events se"
                " JOIN subscriptions s ON s.sid = se.subscription_sid"
            )
        )
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            out.setdefault(r["sink_sid"], {})[r["type"]] = int(r["schema_version"])
        return out

    async def _list_by_sink(self, table: str, row: Any, account_sid: str, sink_sid: str | None, q: PageQuery) -> Page:
        where = ["account_sid = :a"]
        params: dict[str, Any] = {"a": account_sid}
        if sink_sid is not None:
            where.append("sink_sid = :s")
            params["s"] = sink_sid

        def go(tx: Tx) -> Page:
            rows, more = _keyset(tx, f"SELECT * FROM {table}", where, params, ["id"], q)
            return Page([row(**r) for r in rows], more)

        return await self._run(go)

    async def list_dead_letters(self, account_sid: str, sink_sid: str | None, q: PageQuery) -> Page:
        return await self._list_by_sink("dead_letters", DeadLetterRow, account_sid, sink_sid, q)

    async def replay_dead_letters(
        self, account_sid: str, sink_sid: str | None, event_ids: Sequence[str] | None, now_ms: int
    ) -> tuple[int, list[str]]:
        where = ["account_sid = :a"]
        params: dict[str, Any] = {"a": account_sid}
        if sink_sid is not None:
            where.append("sink_sid = :s")
            params["s"] = sink_sid
        if event_ids is not None:
            where.append(self._in("event_id", "ids"))
            params["ids"] = self._list(list(event_ids))
        cond = " AND ".join(where)

        def go(tx: Tx) -> tuple[int, list[str]]:
            rows = tx.all(f"SELECT id, sink_sid, account_sid, event_seq FROM dead_letters WHERE {cond}", **params)
            tx.many(
                _INSERT_DELIVERY,
                [{"s": r["sink_sid"], "a": r["account_sid"], "q": r["event_seq"], "now": now_ms} for r in rows],
            )
            tx.many("DELETE FROM dead_letters WHERE id = :id", [{"id": r["id"]} for r in rows])
            sinks = sorted({r["sink_sid"] for r in rows})
            self._notify(tx, sinks)
            return len(rows), sinks

        return await self._run(go, write=True)

    async def replay_events(
        self,
        account_sid: str,
        sink_sid: str,
        event_ids: Sequence[str] | None,
        since_ms: int | None,
        until_ms: int | None,
        now_ms: int,
    ) -> int:
        where = ["e.account_sid = :a"]
        params: dict[str, Any] = {"a": account_sid, "s": sink_sid, "now": now_ms}
        if event_ids is not None:
            where.append(self._in("e.id", "ids"))
            params["ids"] = self._list(list(event_ids))
        else:
            where.append(
                "e.type IN (SELECT se.type FROM subscribed_events se JOIN subscriptions x"
                " ON x.sid = se.subscription_sid WHERE x.sink_sid = :s)"
            )
        if since_ms is not None:
            where.append("e.received_at >= :since")
            params["since"] = since_ms
        if until_ms is not None:
            where.append("e.received_at < :until")
            params["until"] = until_ms
        cond = " AND ".join(where)

        def go(tx: Tx) -> int:
            n = tx.run(
                "INSERT INTO deliveries (sink_sid, account_sid, event_seq, due_at, window_start)"
                f" SELECT :s, e.account_sid, e.seq, :now, :now FROM events e WHERE {cond}",
                **params,
            )
            self._notify(tx, [sink_sid])
            return n

        return await self._run(go, write=True)

    async def list_delivery_log(self, account_sid: str, sink_sid: str | None, q: PageQuery) -> Page:
        return await self._list_by_sink("delivery_log", LogRow, account_sid, sink_sid, q)

    async def list_alerts(
        self,
        account_sid: str,
        q: PageQuery,
        log_level: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> Page:
        where: list[str] = ["account_sid = :a"]
        params: dict[str, Any] = {"a": account_sid}
        for clause, name, value in (
            ("log_level = :lvl", "lvl", log_level),
            ("created_at >= :t0", "t0", start_ms),
            ("created_at < :t1", "t1", end_ms),
        ):
            if value is not None:
                where.append(clause)
                params[name] = value

        def go(tx: Tx) -> Page:
            rows, more = _keyset(tx, "SELECT * FROM alerts", where, params, ["created_at", "sid"], q)
            return Page([AlertRow(**r) for r in rows], more)

        return await self._run(go)

    async def get_alert(self, account_sid: str, sid: str) -> AlertRow | None:
        r = await self._run(
            lambda tx: tx.one("SELECT * FROM alerts WHERE sid = :s AND account_sid = :a", s=sid, a=account_sid)
        )
        return AlertRow(**r) if r else None

    async def prune(self, now_ms: int, keep: dict[str, int]) -> dict[str, int]:
        def go(tx: Tx) -> dict[str, int]:
            out = {
                # the delivery log is kept for the log window; its error entries (failed, dead) are the
                # error log and stay for the error window, like Twilio's 7 and 23 days
                "delivery_log": tx.run(
                    "DELETE FROM delivery_log WHERE at < :t AND outcome IN ('delivered', 'skipped')",
                    t=now_ms - keep["log"],
                )
                + tx.run(
                    "DELETE FROM delivery_log WHERE at < :t AND outcome NOT IN ('delivered', 'skipped')",
                    t=now_ms - keep["errors"],
                ),
                "alerts": tx.run("DELETE FROM alerts WHERE created_at < :t", t=now_ms - keep["errors"]),
                "dead_letters": tx.run("DELETE FROM dead_letters WHERE dead_at < :t", t=now_ms - keep["errors"]),
                "event_ids": tx.run("DELETE FROM event_ids WHERE received_at < :t", t=now_ms - keep["dedupe"]),
            }
            out["events"] = tx.run(
                "DELETE FROM events WHERE received_at < :t"
                " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq)"
                " AND NOT EXISTS (SELECT 1 FROM dead_letters x WHERE x.event_seq = events.seq)",
                t=now_ms - keep["events"],
            )
            return out

        return await self._run(go, write=True)


class SQLStore(SQLDeliveryMixin, Store):
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

    async def count_owned(self, what: str, owner_sid: str, schema_id: str | None = None) -> int:
        """How many rows of ``what`` an account holds (for the per-account limits in the domain)."""
        sql = _COUNT_OWNED[what]
        r = await self._run(lambda tx: tx.one(sql, o=owner_sid, s=schema_id))
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

    # -- Twilio callback bridge
    async def put_bridge_credentials(
        self, account_sid: str, twilio_account_sid: str, token_sealed: str, now: str
    ) -> bool:
        def go(tx: Tx) -> bool:
            n = tx.run(
                "UPDATE bridge_credentials SET twilio_account_sid = :t, token_sealed = :s, date_updated = :now"
                " WHERE account_sid = :a",
                t=twilio_account_sid,
                s=token_sealed,
                now=now,
                a=account_sid,
            )
            if n:
                return False
            tx.run(
                "INSERT INTO bridge_credentials (account_sid, twilio_account_sid, token_sealed, date_created,"
                " date_updated) VALUES (:a, :t, :s, :now, :now)"
                " ON CONFLICT (account_sid) DO UPDATE SET twilio_account_sid = excluded.twilio_account_sid,"
                " token_sealed = excluded.token_sealed, date_updated = excluded.date_updated",
                t=twilio_account_sid,
                s=token_sealed,
                now=now,
                a=account_sid,
            )
            return True

        return await self._run(go, write=True)

    async def get_bridge_credentials(self, account_sid: str) -> dict[str, str] | None:
        r = await self._run(
            lambda tx: tx.one(
                "SELECT account_sid, twilio_account_sid, token_sealed, date_created, date_updated"
                " FROM bridge_credentials WHERE account_sid = :a",
                a=account_sid,
            )
        )
        return {k: str(v) for k, v in r.items()} if r else None

    async def delete_bridge_credentials(self, account_sid: str) -> bool:
        n = await self._run(
            lambda tx: tx.run("DELETE FROM bridge_credentials WHERE account_sid = :a", a=account_sid), write=True
        )
        return n > 0

    async def reset(self) -> None:
        def go(tx: Tx) -> None:
            for table in self._reset_tables():
                tx.run(f"DELETE FROM {table}")
            tx.run("DELETE FROM event_types WHERE owner_sid IS NOT NULL")
            tx.run("DELETE FROM schema_versions WHERE owner_sid IS NOT NULL")

        await self._run(go, write=True)

    def _reset_tables(self) -> list[str]:
        return [
            "deliveries",
            "dead_letters",
            "delivery_log",
            "alerts",
            "sink_alert_state",
            "event_ids",
            "events",
            "subscribed_events",
            "subscriptions",
            "sink_tests",
            "sinks",
            "api_keys",
            "accounts",
        ]


def _asdict(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}
