"""Where warehouse rows go: the :class:`Target` seam and its implementations.

* :class:`DuckDBTarget` (``duckdb:///path/file.duckdb``, relative paths allowed): the embedded default.
  A page of rows becomes a pyarrow table, registered as a view, and one ``INSERT … ON CONFLICT (key) DO
  UPDATE`` moves it in (bench/warehouse_load.py: this beats ``executemany`` by far). DuckDB lets one
  process write a file at a time; the connection is held only while a target is open, and opening a
  file another process holds fails with :class:`WarehouseBusy`.
* :class:`PostgresTarget` (``postgresql://…``): psycopg 3; ``COPY`` into a temporary table, then one
  ``INSERT … ON CONFLICT DO UPDATE``, in one transaction.
* :class:`DltTarget` (``dlt+<destination>://…``, e.g. ``dlt+snowflake://`` with dlt's own config for the
  credentials): a dlt pipeline with ``write_disposition="merge"``. About 0.5 s per call whatever the size,
  so it suits warehouses the lean targets do not cover, not a commit per page.

Every call of :meth:`Target.upsert` is one transaction: last write wins on the key. Schema, table and
column names must be plain lower-case SQL names (:func:`columns.check_identifier`) and are quoted too.
Targets are synchronous; async callers run them in a thread.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from .columns import Column, ColumnType, check_identifier

Rows = tuple[list[str], list[tuple[Any, ...]]]


class WarehouseError(Exception):
    """A warehouse cannot be used as asked (bad URL, busy file, type clash)."""


class WarehouseBusy(WarehouseError):
    """The DuckDB file is held by another process (a load is running)."""


class Target(Protocol):
    def ensure_table(self, schema: str, table: str, columns: Sequence[Column], key: str = "id") -> list[Column]:
        """Create the schema and table if missing and ADD the columns it lacks (an existing column keeps
        its type); return the table's columns as they now are."""
        ...

    def upsert(
        self,
        schema: str,
        table: str,
        columns: Sequence[Column],
        rows: Sequence[Mapping[str, Any]],
        key: str = "id",
        *,
        merge: bool = False,
    ) -> int:
        """Write ``rows`` (values already of their column's Python type: :func:`columns.typed_rows` converts
        Twilio's strings) in one transaction; a row whose key exists replaces its ``columns`` (a column a
        row lacks becomes NULL), or with ``merge`` only the columns the row has. Last write wins, within
        ``rows`` too. Returns the number of distinct keys written."""
        ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """Run ``sql`` (parameters as ``?``); (column names, rows). Opened ``read_only``, a guard against
        mistakes, not a permission: whoever has the URL has the database."""
        ...

    def close(self) -> None: ...


def open_target(url: str, *, read_only: bool = False) -> Target:
    """The target for ``url``: ``duckdb:///path`` (``duckdb:///./data/w.duckdb`` relative,
    ``duckdb:////abs/w.duckdb`` absolute), ``postgresql://…`` / ``postgres://…``, or ``dlt+<dest>://…``."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "duckdb":
        return DuckDBTarget(_duckdb_path(url), read_only=read_only)
    if scheme in ("postgresql", "postgres"):
        return PostgresTarget(url, read_only=read_only)
    if scheme.startswith("dlt+"):
        return DltTarget(scheme[4:], rest)
    raise WarehouseError(
        f"unsupported warehouse URL {_redact(url)!r}: use duckdb:///…, postgresql://… or dlt+<dest>://…"
    )


def _duckdb_path(url: str) -> str:
    path = url.split("://", 1)[1]
    if not path.startswith("/"):
        raise WarehouseError(
            f"warehouse URL {url!r}: write duckdb:///relative/file.duckdb or duckdb:////abs/file.duckdb"
        )
    path = path[1:]
    if not path:
        raise WarehouseError("warehouse URL names no DuckDB file")
    return path


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(":" + parts.password + "@", ":***@")
    return url


def q(name: str) -> str:
    """A quoted identifier (names are checked first: the quotes are a second fence)."""
    return '"' + name.replace('"', '""') + '"'


def _check(schema: str, table: str, columns: Iterable[Column], key: str) -> None:
    check_identifier(schema, "schema name")
    check_identifier(table, "table name")
    check_identifier(key, "key column")
    for c in columns:
        check_identifier(c.name, "column name")
        if c.type not in _DUCK:
            raise ValueError(f"unknown column type {c.type!r}")


def _last_wins(rows: Sequence[Mapping[str, Any]], key: str, merge: bool) -> list[Mapping[str, Any]]:
    """One row per key (ON CONFLICT cannot touch a row twice in one statement): the last, or with
    ``merge`` the later rows' columns laid over the earlier ones'."""
    by_key: dict[Any, Mapping[str, Any]] = {}
    for r in rows:
        k = r.get(key)
        if k is None:
            raise ValueError(f"a row has no {key!r}")
        if merge and k in by_key:
            by_key[k] = {**by_key[k], **r}
        else:
            by_key.pop(k, None)  # keep the order of last writes
            by_key[k] = r
    return list(by_key.values())


def _groups(
    columns: Sequence[Column], rows: Sequence[Mapping[str, Any]], key: str, merge: bool
) -> list[tuple[list[Column], list[Mapping[str, Any]]]]:
    """Rows with the columns each statement writes: all ``columns``, or with ``merge`` one group per set
    of columns present (the key always)."""
    if not merge:
        return [(list(columns), list(rows))]
    by_set: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    known = [c.name for c in columns]
    for r in rows:
        names = tuple(n for n in known if n in r)
        by_set.setdefault(names, []).append(r)
    kinds = {c.name: c for c in columns}
    out = []
    for names, group in by_set.items():
        cols = [kinds[n] for n in names]
        if key not in names:
            cols.insert(0, Column(key, kinds[key].type if key in kinds else "varchar"))
        out.append((cols, group))
    return out


_DUCK: dict[ColumnType, str] = {"varchar": "VARCHAR", "integer": "BIGINT", "float": "DOUBLE", "boolean": "BOOLEAN",
                                "timestamp": "TIMESTAMPTZ"}  # fmt: skip
_PG: dict[ColumnType, str] = {"varchar": "TEXT", "integer": "BIGINT", "float": "DOUBLE PRECISION", "boolean": "BOOLEAN",
                              "timestamp": "TIMESTAMPTZ"}  # fmt: skip
_FROM_SQL: dict[str, ColumnType] = {
    "varchar": "varchar", "text": "varchar", "character varying": "varchar", "bigint": "integer", "integer": "integer",
    "int": "integer", "smallint": "integer", "hugeint": "integer", "double": "float", "double precision": "float",
    "real": "float", "float": "float", "decimal": "float", "numeric": "float", "boolean": "boolean",
    "timestamp with time zone": "timestamp", "timestamptz": "timestamp", "timestamp": "timestamp",
    "timestamp without time zone": "timestamp", "date": "timestamp",
}  # fmt: skip


def _widens(have: Column, want: Column) -> bool:
    """The one type change a column takes: an integer column that now gets fractional numbers."""
    return have.type == "integer" and want.type == "float"


def _column_type(sql_type: str) -> ColumnType:
    base = sql_type.lower().split("(", 1)[0].strip()
    return _FROM_SQL.get(base, "varchar")


class _SqlTarget:
    """What the DuckDB and PostgreSQL targets share: DDL from the catalogue, a column cache."""

    types: dict[ColumnType, str]
    _lock: threading.Lock

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], dict[str, Column]] = {}

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> None:
        raise NotImplementedError

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _begin(self) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        raise NotImplementedError

    def _rollback(self) -> None:
        raise NotImplementedError

    def _columns(self, schema: str, table: str) -> dict[str, Column]:
        rows = self._fetch(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = current_database()"
            " AND table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            (schema, table),
        )
        return {name: Column(name, _column_type(t)) for name, t in rows}

    def _ensure_table(self, schema: str, table: str, columns: Sequence[Column], key: str) -> list[Column]:
        _check(schema, table, columns, key)
        known = self._known.get((schema, table))
        if known is not None and all(c.name in known and not _widens(known[c.name], c) for c in columns):
            return list(known.values())  # the hot path: a page of a table already seen
        self._begin()
        try:
            current = self._columns(schema, table)
            if not current:
                self._exec(f"CREATE SCHEMA IF NOT EXISTS {self._schema(schema)}")
                kinds = {c.name: c.type for c in columns}
                cols = [Column(key, kinds.get(key, "varchar"))] + [c for c in columns if c.name != key]
                body = ", ".join(f"{q(c.name)} {self.types[c.type]}" for c in cols)
                self._exec(f"CREATE TABLE IF NOT EXISTS {self._table(schema, table)} ({body}, PRIMARY KEY ({q(key)}))")
            else:
                for c in columns:
                    if c.name not in current:
                        add = f"ADD COLUMN {q(c.name)} {self.types[c.type]}"
                        self._exec(f"ALTER TABLE {self._table(schema, table)} {add}")
                    elif _widens(current[c.name], c):  # 3 first, 2.5 now: integer → float, nothing lost
                        alter = f"ALTER COLUMN {q(c.name)} TYPE {self.types['float']}"
                        self._exec(f"ALTER TABLE {self._table(schema, table)} {alter}")
            self._commit()
        except BaseException:
            self._rollback()
            raise
        now = self._columns(schema, table)
        self._known[(schema, table)] = now
        return list(now.values())

    def _schema(self, schema: str) -> str:
        return q(schema)

    def _table(self, schema: str, table: str) -> str:
        return f"{q(schema)}.{q(table)}"

    def _update_set(self, cols: Sequence[Column], key: str) -> str:
        sets = [f"{q(c.name)} = excluded.{q(c.name)}" for c in cols if c.name != key]
        return "DO UPDATE SET " + ", ".join(sets) if sets else "DO NOTHING"

    def _stage(self, index: int, cols: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> str:
        """Put one group of rows where an INSERT … SELECT can read them; return that relation's name."""
        raise NotImplementedError

    def _unstage(self, name: str) -> None:
        """Drop what :meth:`_stage` made (when the transaction does not)."""

    def upsert(
        self,
        schema: str,
        table: str,
        columns: Sequence[Column],
        rows: Sequence[Mapping[str, Any]],
        key: str = "id",
        *,
        merge: bool = False,
    ) -> int:
        """One transaction: each group of rows (one group unless ``merge``) staged in bulk, then one
        ``INSERT … SELECT … ON CONFLICT (key) DO UPDATE``."""
        _check(schema, table, columns, key)
        if not rows:
            return 0
        unique = _last_wins(rows, key, merge)
        with self._lock:
            self._begin()
            try:
                for i, (cols, group) in enumerate(_groups(columns, unique, key, merge)):
                    stage = self._stage(i, cols, group)
                    try:
                        names = ", ".join(q(c.name) for c in cols)
                        self._exec(
                            f"INSERT INTO {self._table(schema, table)} ({names}) SELECT {names} FROM {q(stage)} "
                            f"ON CONFLICT ({q(key)}) {self._update_set(cols, key)}"
                        )
                    finally:
                        self._unstage(stage)
                self._commit()
            except BaseException:
                self._rollback()
                raise
        return len(unique)

    def ensure_table(self, schema: str, table: str, columns: Sequence[Column], key: str = "id") -> list[Column]:
        with self._lock:
            return self._ensure_table(schema, table, columns, key)


class DuckDBTarget(_SqlTarget):
    """The embedded warehouse: one DuckDB file, written by one process at a time."""

    types = _DUCK

    def __init__(self, path: str, *, read_only: bool = False) -> None:
        import duckdb

        super().__init__()
        self.path = path
        if not read_only:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        elif not Path(path).exists():
            raise WarehouseError(f"no warehouse at {path}: nothing has been loaded yet")
        try:
            self.conn = duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise WarehouseBusy(
                    f"the warehouse {path} is being written by another process (a load is running); "
                    "try again when it finishes"
                ) from None
            raise
        self.conn.execute("SET TimeZone = 'UTC'")  # TIMESTAMPTZ values come back in UTC
        row = self.conn.execute("SELECT current_database()").fetchone()
        # Our statements name the catalog too: a schema named like the file (warehouse.duckdb has catalog
        # "warehouse") is otherwise ambiguous in DuckDB.
        self.catalog = str(row[0]) if row else "memory"
        self._lock = threading.Lock()  # one connection: calls from several threads take turns

    def _schema(self, schema: str) -> str:
        return f"{q(self.catalog)}.{q(schema)}"

    def _table(self, schema: str, table: str) -> str:
        return f"{q(self.catalog)}.{q(schema)}.{q(table)}"

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, list(params))

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, list(params)).fetchall()

    def _begin(self) -> None:
        self.conn.execute("BEGIN TRANSACTION")

    def _commit(self) -> None:
        self.conn.execute("COMMIT")

    def _rollback(self) -> None:
        with contextlib.suppress(Exception):  # nothing to roll back: the error ended the transaction
            self.conn.execute("ROLLBACK")

    def _stage(self, index: int, cols: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> str:
        view = f"_es_stage_{uuid.uuid4().hex}"
        self.conn.register(view, _arrow(cols, rows))  # a pyarrow table: ~200x executemany (bench/warehouse_load)
        return view

    def _unstage(self, name: str) -> None:
        self.conn.unregister(name)

    def query(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        with self._lock:
            cur = self.conn.execute(sql, list(params))
            names = [d[0] for d in cur.description or ()]
            return names, cur.fetchall() if cur.description else []

    def close(self) -> None:
        self.conn.close()


_ARROW_TYPES: dict[ColumnType, Any] = {}


def _arrow(cols: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> Any:
    import pyarrow as pa  # type: ignore[import-untyped]

    if not _ARROW_TYPES:
        _ARROW_TYPES.update({"varchar": pa.string(), "integer": pa.int64(), "float": pa.float64(),
                             "boolean": pa.bool_(), "timestamp": pa.timestamp("us", tz="UTC")})  # fmt: skip
    arrays = [pa.array([r.get(c.name) for r in rows], type=_ARROW_TYPES[c.type]) for c in cols]
    return pa.Table.from_arrays(arrays, names=[c.name for c in cols])


class PostgresTarget(_SqlTarget):
    """A PostgreSQL database as the warehouse (psycopg 3, one connection)."""

    types = _PG

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        import psycopg

        super().__init__()
        self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        self.conn.execute("SET TIME ZONE 'UTC'")
        if read_only:
            self.conn.execute("SET default_transaction_read_only = on")
        self._lock = threading.Lock()

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(_pg_params(sql), params)

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(_pg_params(sql), params).fetchall()

    def _begin(self) -> None:
        self.conn.execute("BEGIN")

    def _commit(self) -> None:
        self.conn.execute("COMMIT")

    def _rollback(self) -> None:
        self.conn.execute("ROLLBACK")

    def _stage(self, index: int, cols: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> str:
        stage = f"_es_stage_{index}"
        names = ", ".join(q(c.name) for c in cols)
        body = ", ".join(f"{q(c.name)} {_PG[c.type]}" for c in cols)
        self.conn.execute(f"CREATE TEMP TABLE {q(stage)} ({body}) ON COMMIT DROP")
        with self.conn.cursor() as cur, cur.copy(f"COPY {q(stage)} ({names}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(tuple(r.get(c.name) for c in cols))
        return stage

    def query(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        with self._lock, self.conn.cursor() as cur:
            cur.execute(_pg_params(sql) if params else sql, params or None)
            names = [d.name for d in cur.description or ()]
            return names, cur.fetchall() if cur.description else []

    def close(self) -> None:
        self.conn.close()


def _pg_params(sql: str) -> str:
    # The code's own statements use ``?`` (DuckDB's style); psycopg wants %s. Only for our SQL and for
    # queries given parameters: a literal ``%`` in such a query must be written ``%%``.
    return sql.replace("%", "%%").replace("?", "%s")


# -- dlt ------------------------------------------------------------------------------------------

_DLT_TYPES: dict[ColumnType, str] = {"varchar": "text", "integer": "bigint", "float": "double", "boolean": "bool",
                                     "timestamp": "timestamp"}  # fmt: skip
_PIPELINE_NAME = re.compile(r"[^a-z0-9_]")


class DltTarget:
    """Any dlt destination (duckdb, postgres, snowflake, bigquery, redshift, …) through a dlt pipeline
    with ``write_disposition="merge"`` on the key. Column types are dlt's (``text``, ``bigint``,
    ``double``, ``bool``, ``timestamp``) mapped by the destination. ``rest`` is the destination's
    credentials URL without the scheme (``dlt+duckdb:///./w.duckdb``, ``dlt+postgres://u@h/db``); empty
    (``dlt+snowflake://``) takes the credentials from dlt's config (``.dlt/secrets.toml`` or
    ``DESTINATION__SNOWFLAKE__CREDENTIALS__…``).

    ``merge=True`` is applied by reading the stored rows of the keys first (a dlt merge replaces whole
    rows), so it costs a query more."""

    def __init__(self, destination: str, rest: str, *, pipelines_dir: str | None = None) -> None:
        import dlt

        self._dlt = dlt
        self.destination_name = destination
        if destination == "duckdb":
            path = _duckdb_path("duckdb://" + rest)
            self.destination: Any = dlt.destinations.duckdb(credentials=os.path.abspath(path))
        elif rest:
            scheme = "postgresql" if destination in ("postgres", "postgresql") else destination
            self.destination = dlt.destination(destination if destination != "postgresql" else "postgres",
                                               credentials=f"{scheme}://{rest}")  # fmt: skip
        else:
            self.destination = destination
        self.pipelines_dir = pipelines_dir
        self._pipelines: dict[str, Any] = {}

    def _pipeline(self, schema: str) -> Any:
        p = self._pipelines.get(schema)
        if p is None:
            name = "eventstreams_" + _PIPELINE_NAME.sub("_", f"{self.destination_name}_{schema}")
            kwargs: dict[str, Any] = {"pipelines_dir": self.pipelines_dir} if self.pipelines_dir else {}
            p = self._dlt.pipeline(pipeline_name=name, destination=self.destination, dataset_name=schema, **kwargs)
            self._pipelines[schema] = p
        return p

    def ensure_table(self, schema: str, table: str, columns: Sequence[Column], key: str = "id") -> list[Column]:
        """dlt creates and evolves tables as it loads: this only checks the names and answers with the
        columns dlt knows (after the first load) plus the asked ones."""
        _check(schema, table, columns, key)
        known: dict[str, Column] = {}
        p = self._pipeline(schema)
        try:
            tables = p.default_schema.tables if p.default_schema_name else {}
        except Exception:  # noqa: BLE001 - no schema yet
            tables = {}
        for name, col in tables.get(table, {}).get("columns", {}).items():
            if not name.startswith("_dlt"):
                back = {v: k for k, v in _DLT_TYPES.items()}
                known[name] = Column(name, back.get(col.get("data_type", "text"), "varchar"))
        for c in columns:
            known.setdefault(c.name, c)
        return list(known.values())

    def upsert(
        self,
        schema: str,
        table: str,
        columns: Sequence[Column],
        rows: Sequence[Mapping[str, Any]],
        key: str = "id",
        *,
        merge: bool = False,
    ) -> int:
        _check(schema, table, columns, key)
        if not rows:
            return 0
        unique = _last_wins(rows, key, merge)
        if merge:
            unique = self._merge_stored(schema, table, columns, unique, key)
        hints: Any = {c.name: {"data_type": _DLT_TYPES[c.type], "nullable": c.name != key} for c in columns}
        resource = self._dlt.resource(
            [_arrow(columns, unique)], name=table, table_name=table, write_disposition="merge", primary_key=key,
            columns=hints,
        )  # fmt: skip
        self._pipeline(schema).run(resource)
        return len(unique)

    def _merge_stored(
        self, schema: str, table: str, columns: Sequence[Column], rows: list[Mapping[str, Any]], key: str
    ) -> list[Mapping[str, Any]]:
        names = [c.name for c in columns]
        try:
            with self._pipeline(schema).sql_client() as client:
                stored_names = {c.name for c in self.ensure_table(schema, table, (), key)}
                wanted = [n for n in names if n in stored_names]
                marks = ", ".join(["%s"] * len(rows))
                cols = ", ".join(q(n) for n in wanted)
                with client.execute_query(
                    f"SELECT {cols} FROM {client.make_qualified_table_name(table)} WHERE {q(key)} IN ({marks})",
                    *[r[key] for r in rows],
                ) as cur:
                    stored = {row[wanted.index(key)]: dict(zip(wanted, row, strict=True)) for row in cur.fetchall()}
        except Exception:  # noqa: BLE001 - the table does not exist yet: nothing stored to merge with
            stored = {}
        out: list[Mapping[str, Any]] = []
        for r in rows:
            base = stored.get(r[key], {})
            merged = {**base, **r}
            for n, v in merged.items():
                if hasattr(v, "tzinfo") and v.tzinfo is not None:
                    merged[n] = v.astimezone(UTC)
            out.append(merged)
        return out

    def query(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        if not self._pipelines:
            raise WarehouseError("the dlt target answers queries about a schema it has loaded; use the destination")
        p = next(iter(self._pipelines.values()))
        with p.sql_client() as client, client.execute_query(sql, *params) as cur:
            names = [d[0] for d in cur.description or ()]
            return names, [tuple(r) for r in cur.fetchall()] if cur.description else []

    def close(self) -> None:
        self._pipelines.clear()
