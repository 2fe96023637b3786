"""The events warehouse: an account's tracking messages and Event Streams events in Segment's tables.

Pure part (:func:`message_rows`): one Segment message, as the tracking API stores it, becomes rows of

* ``tracks`` (every track: the standard columns, ``event`` = the slug, ``event_text`` = the name) and the
  event's own table (:func:`columns.table_name` of the name: the same plus the properties as columns);
* ``identifies`` (standard columns + traits) and ``users`` (``id`` = userId, the latest value of each trait,
  merged: an identify that leaves a trait out keeps its stored value);
* ``pages`` / ``screens`` (``name``, ``category`` + properties), ``groups`` (``group_id`` + traits),
  ``aliases`` (``previous_id``).

Standard columns: ``id`` (messageId), ``anonymous_id``, ``user_id``, ``received_at``, ``sent_at``,
``timestamp``, ``original_timestamp``, ``uuid_ts`` (when this load wrote the row) and ``context_*`` (the
context flattened). Their types are fixed (ids varchar, times timestamp); other columns take the type of
their first value. A property or trait whose column name is a standard column of the table gets a
``property_`` / ``trait_`` prefix instead of overwriting it.

Event Streams events that are not ``com.segment.tracking.*`` (those are the tracking messages themselves)
go in as track calls built by the Segment sink's mapping (:func:`sinks.segment.track_call`): ``event`` =
the CloudEvent type, properties = ``data``, ``anonymous_id`` from the phone the schema marks. An event
without a phone identity is loaded all the same, with no ``anonymous_id`` (the sink would skip it: Segment
cannot take it, a warehouse can).

Job part (:class:`EventsWarehouse`): per account, read the messages after ``tracking_seq`` and the
events after ``events_seq`` in batches, load each batch (tables created and widened as needed, upsert on
``id``), then advance the positions: rows first, positions after, so a crash between the two loads that
batch again, which the upsert makes harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from .. import clock, ids
from ..sinks.segment import builtin_schema_lookup, find_phone, identity_fields, parse_dataschema, track_call
from ..sinks.segment.mapping import SchemaLookup
from ..store.base import Store
from ..store.repos.events_warehouse import EventsWarehouseRow
from ..tracking import rules
from .columns import Column, ColumnType, check_identifier, flatten, infer_type, snake_case, table_name, typed_rows
from .targets import Target, WarehouseBusy, WarehouseError, open_target

log = logging.getLogger(__name__)

SEGMENT_EVENT_PREFIX = "com.segment.tracking."
#: Columns whose type does not depend on the first value.
FIXED: dict[str, ColumnType] = {
    "id": "varchar", "anonymous_id": "varchar", "user_id": "varchar", "received_at": "timestamp",
    "sent_at": "timestamp", "timestamp": "timestamp", "original_timestamp": "timestamp", "uuid_ts": "timestamp",
    "event": "varchar", "event_text": "varchar", "name": "varchar", "category": "varchar", "group_id": "varchar",
    "previous_id": "varchar",
}  # fmt: skip

Row = dict[str, Any]


def _standard(msg: Mapping[str, Any], loaded_at: datetime) -> Row:
    row: Row = {
        "id": msg.get("messageId"),
        "anonymous_id": msg.get("anonymousId"),
        "user_id": msg.get("userId"),
        "received_at": msg.get("receivedAt"),
        "sent_at": msg.get("sentAt"),
        "timestamp": msg.get("timestamp"),
        "original_timestamp": msg.get("originalTimestamp"),
        "uuid_ts": loaded_at,
    }
    context = msg.get("context")
    if isinstance(context, Mapping):
        row.update(flatten(context, "context"))
    return {k: v for k, v in row.items() if v is not None}


def _add(row: Row, values: Any, prefix: str) -> Row:
    if isinstance(values, Mapping):
        for name, value in flatten(values):
            if name in row:
                name = snake_case(f"{prefix}_{name}")
                if name in row:
                    continue
            row[name] = value
    return row


def message_rows(msg: Mapping[str, Any], loaded_at: datetime) -> list[tuple[str, Row]]:
    """``(table, row)`` pairs for one Segment message (values as in the message; :class:`EventsWarehouse`
    types and converts them). A message without a messageId or of an unknown type gives none."""
    kind = msg.get("type")
    if not isinstance(msg.get("messageId"), str) or not msg.get("messageId"):
        return []
    base = _standard(msg, loaded_at)
    if kind == "track":
        name = msg.get("event")
        if not isinstance(name, str) or not name:
            return []
        tracks = {**base, "event": table_name(name), "event_text": name}
        return [("tracks", tracks), (table_name(name), _add(dict(tracks), msg.get("properties"), "property"))]
    if kind == "identify":
        out = [("identifies", _add(dict(base), msg.get("traits"), "trait"))]
        user = msg.get("userId")
        if user is not None and user != "":
            users: Row = {"id": user, "received_at": msg.get("receivedAt")}
            out.append(("users", _add({k: v for k, v in users.items() if v is not None}, msg.get("traits"), "trait")))
        return out
    if kind in ("page", "screen"):
        row = dict(base)
        for key in ("name", "category"):
            if isinstance(msg.get(key), str):
                row[key] = msg[key]
        return [("pages" if kind == "page" else "screens", _add(row, msg.get("properties"), "property"))]
    if kind == "group":
        return [("groups", _add({**base, "group_id": msg.get("groupId")}, msg.get("traits"), "trait"))]
    if kind == "alias":
        return [("aliases", {**base, "previous_id": msg.get("previousId")})]
    return []


def event_message(doc: Mapping[str, Any], fields: Iterable[tuple[str, ...]], received_ms: int) -> dict[str, Any]:
    """The Segment track call of an Event Streams event (the Segment sink's mapping), with ``receivedAt``
    from when the event was published."""
    data = doc.get("data")
    phone, _ = find_phone(data, tuple(fields)) if isinstance(data, Mapping) else (None, [])
    call = track_call(doc, str(doc.get("type") or ""), str(doc.get("id") or ""), phone)
    call["receivedAt"] = datetime.fromtimestamp(received_ms / 1000, UTC)
    return call


@dataclass
class Batch:
    """Rows for several tables, typed when loaded."""

    tables: dict[str, list[Row]] = field(default_factory=dict)

    def add(self, pairs: Iterable[tuple[str, Row]]) -> None:
        for table, row in pairs:
            self.tables.setdefault(table, []).append(row)

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


def _widened(kind: ColumnType, fractional: bool) -> ColumnType:
    return "float" if kind == "integer" and fractional else kind


def load_batch(target: Target, schema: str, batch: Batch) -> dict[str, int]:
    """Create/widen each table and upsert its rows (``users`` merged); rows written per table."""
    written: dict[str, int] = {}
    for table, rows in batch.tables.items():
        first: dict[str, Any] = {}
        fractional: set[str] = set()  # a number with a fraction: its column is float, even if 3 came first
        for r in rows:
            for name, value in r.items():
                if value is None:
                    continue
                if name not in first:
                    first[name] = value
                if isinstance(value, float) and not value.is_integer():
                    fractional.add(name)
        wanted = [Column(n, FIXED.get(n) or _widened(infer_type(v), n in fractional)) for n, v in first.items()]
        types = {c.name: c.type for c in target.ensure_table(schema, table, wanted)}
        cols = [Column(c.name, types[c.name]) for c in wanted]
        typed = [r for r in typed_rows(cols, rows) if r.get("id") is not None]
        written[table] = target.upsert(schema, table, cols, typed, merge=table == "users")
    return written


@dataclass
class LoadReport:
    account_sid: str
    schema_name: str
    tracking_messages: int = 0
    events: int = 0
    rows: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    tracking_seq: int = 0
    events_seq: int = 0


class EventsWarehouse:
    """Configures and runs accounts' events warehouses (see the module doc).

    ``url`` is the warehouse (``EVENTSTREAMS_WAREHOUSE_URL``); it is opened for each run and closed after,
    so a DuckDB file is free between runs. ``settle_s``: rows younger than this are left for the next run,
    because on PostgreSQL a smaller seq can commit after a larger one (default 5 s there, 0 on SQLite whose
    single writer commits in seq order). ``open`` makes the target (tests inject failures with it)."""

    def __init__(
        self,
        store: Store,
        url: str,
        *,
        batch_size: int = 1000,
        settle_s: float | None = None,
        schema_lookup: SchemaLookup | None = None,
        now: Callable[[], float] = clock.now,
        open: Callable[[str], Target] = open_target,
        default_interval: int = 3600,
    ) -> None:
        self.store = store
        self.url = url
        self.wake: list[asyncio.Event] = []  # a process's scheduler registers here: "load now" starts at once
        self.batch_size = batch_size
        self.settle_s = settle_s if settle_s is not None else (60.0 if store.dialect == "postgres" else 0.0)
        self.lookup = schema_lookup or builtin_schema_lookup
        self.now = now
        self.open = open
        self.default_interval = default_interval
        self._fields: dict[tuple[str, int], tuple[tuple[str, ...], ...]] = {}

    async def configure(
        self,
        account_sid: str,
        schema_name: str | None = None,
        enabled: bool | None = None,
        interval_seconds: int | None = None,
    ) -> EventsWarehouseRow:
        """Create or change the account's events warehouse (a schema another owner uses: Conflict)."""
        if schema_name is not None:
            check_identifier(schema_name, "schema name")
        if interval_seconds is not None and interval_seconds < 1:
            raise ValueError("the interval must be at least 1 second")
        t = self.now()
        return await self.store.events_warehouse.configure(
            account_sid, ids.new_sid("WH"), schema_name, enabled, interval_seconds, now=t, now_iso=clock.iso(t),
            default_interval=self.default_interval,
        )  # fmt: skip

    async def get(self, account_sid: str) -> EventsWarehouseRow | None:
        return await self.store.events_warehouse.get(account_sid)

    async def request_load(self, account_sid: str) -> bool:
        """Load now, in a serve's or worker's scheduler; False when there is none or it is disabled."""
        queued = await self.store.events_warehouse.request_run(account_sid, self.now())
        for event in self.wake:
            event.set()
        return queued

    async def delete(self, account_sid: str) -> bool:
        """The configuration and position go; the tables stay in the warehouse (the account's data)."""
        return await self.store.events_warehouse.delete(account_sid)

    async def run_once(self, account_sid: str) -> LoadReport:
        """Load everything new for the account now (see the module doc)."""
        wh = await self.store.events_warehouse.get(account_sid)
        if wh is None:
            raise WarehouseError(f"account {account_sid} has no events warehouse")
        report = LoadReport(account_sid, wh.schema_name, tracking_seq=wh.tracking_seq, events_seq=wh.events_seq)
        target = await asyncio.to_thread(self.open, self.url)
        try:
            await self._load(target, wh, report)
        finally:
            await asyncio.to_thread(target.close)
        return report

    async def _load(self, target: Target, wh: EventsWarehouseRow, report: LoadReport) -> None:
        repo = self.store.events_warehouse
        cutoff = self.now() - self.settle_s
        before_iso = rules.iso(datetime.fromtimestamp(cutoff, UTC))  # the format of tracking_messages.received_at
        tracking_done = events_done = False
        while not (tracking_done and events_done):
            batch = Batch()
            loaded_at = datetime.fromtimestamp(self.now(), UTC)
            t_seq, e_seq, n_msgs, n_events = report.tracking_seq, report.events_seq, 0, 0
            if not tracking_done:
                rows = await repo.tracking_after(wh.account_sid, t_seq, before_iso, self.batch_size)
                tracking_done = len(rows) < self.batch_size
                for r in rows:
                    t_seq = r["seq"]
                    try:
                        msg = orjson.loads(r["payload"])
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(msg, dict):
                        batch.add(message_rows(msg, loaded_at))
                n_msgs = len(rows)
            if not events_done:
                rows = await repo.events_after(wh.account_sid, e_seq, int(cutoff * 1000), self.batch_size)
                events_done = len(rows) < self.batch_size
                for r in rows:
                    e_seq = r["seq"]
                    try:
                        doc = orjson.loads(r["payload"])
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(doc, dict):
                        fields = await self._identity(doc)
                        batch.add(message_rows(event_message(doc, fields, r["received_at"]), loaded_at))
                n_events = len(rows)
            if not n_msgs and not n_events:
                break
            written = await asyncio.to_thread(load_batch, target, wh.schema_name, batch) if len(batch) else {}
            rows_written = sum(written.values())
            # rows first, positions after: a crash in between loads this batch again (upserts on id)
            await repo.advance(wh.account_sid, wh.schema_name, t_seq, e_seq, rows_written)
            report.tracking_seq, report.events_seq = t_seq, e_seq
            report.tracking_messages += n_msgs
            report.events += n_events
            report.rows += rows_written
            for table, n in written.items():
                report.tables[table] = report.tables.get(table, 0) + n

    async def _identity(self, doc: Mapping[str, Any]) -> tuple[tuple[str, ...], ...]:
        schema = doc.get("dataschema")
        key = parse_dataschema(schema) if isinstance(schema, str) else None
        if key is None:
            return ()
        if key not in self._fields:
            try:
                document = await self.lookup(*key)
            except Exception:
                log.warning("schema lookup failed for %s v%s", *key, exc_info=True)
                return ()
            self._fields[key] = identity_fields(document) if document else ()
        return self._fields[key]

    async def run_due(self, owner: str, lease_seconds: float = 600.0, limit: int = 10) -> list[LoadReport]:
        """Lease the warehouses that are due, run each once, release with its next run time and error.
        The scheduler calls this; a busy DuckDB file (another process loading) is retried within a minute."""
        reports = []
        for account_sid in await self.store.events_warehouse.claim_due(owner, self.now(), lease_seconds, limit):
            report = await self.run_leased(account_sid, owner)
            if report is not None:
                reports.append(report)
        return reports

    async def run_leased(self, account_sid: str, owner: str) -> LoadReport | None:
        """Run one account whose lease ``owner`` holds, then release it with its next run time and error."""
        wh = await self.store.events_warehouse.get(account_sid)
        interval = float(wh.interval_seconds if wh else self.default_interval)
        error: str | None = None
        report: LoadReport | None = None
        try:
            report = await self.run_once(account_sid)
        except WarehouseBusy as exc:
            error, interval = str(exc), min(interval, 60.0)
        except Exception as exc:
            log.exception("events warehouse load failed for %s", account_sid)
            error = f"{type(exc).__name__}: {exc}"[:1000]
        t = self.now()
        await self.store.events_warehouse.release(account_sid, owner, t + interval, error, clock.iso(t))
        return report
