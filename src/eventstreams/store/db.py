"""The connection/transaction seam every repository runs on.

A repository hands ``Database.run`` a function of a ``Tx``; the database runs it
as one transaction on the right thread and connection, and translates driver
errors into the project's own (store/errors.py) on the way out. The ``Dialect``
holds the few things SQLite and PostgreSQL do differently.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import StoreError
from .records import PageQuery

if TYPE_CHECKING:
    from .dialect import Dialect, WakeChannel

T = TypeVar("T")
Row = dict[str, Any]


class Tx(abc.ABC):
    """A transaction handle: run SQL with ``:name`` parameters, get dict rows."""

    @abc.abstractmethod
    def all(self, sql: str, **params: Any) -> list[Row]: ...

    @abc.abstractmethod
    def run(self, sql: str, **params: Any) -> int: ...

    @abc.abstractmethod
    def many(self, sql: str, params: Sequence[dict[str, Any]]) -> None: ...

    @abc.abstractmethod
    def script(self, sql: str) -> None: ...

    @abc.abstractmethod
    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Bulk load of positional rows (in ``columns`` order) by the backend's fastest path.
        ``table`` and ``columns`` are the code's own names, never input."""

    def one(self, sql: str, **params: Any) -> Row | None:
        rows = self.all(sql, **params)
        return rows[0] if rows else None

    def rows(self, sql: str, **params: Any) -> Sequence[tuple[Any, ...]]:
        """Rows as plain tuples in the SELECT's column order, the driver's cheapest form: the hot reads of
        the event log, where a dict per row, then a lookup by name per column, cost a fan-out's delivery
        process a tenth and then a twelfth of its CPU (docs/benchmarks.md)."""
        return [tuple(r.values()) for r in self.all(sql, **params)]


class Database(abc.ABC):
    """One database: its connections, its dialect and its wake channel."""

    dialect: Dialect

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def _submit(self, fn: Callable[[Tx], T], write: bool) -> Awaitable[T]:
        """Run ``fn`` in one transaction (committed before the awaitable resolves)."""

    @abc.abstractmethod
    def wake_channel(self) -> WakeChannel:
        """Where deliverers hear that sinks have work (see dialect.WakeChannel)."""

    async def run(self, fn: Callable[[Tx], T], write: bool = False) -> T:
        try:
            return await self._submit(fn, write)
        except StoreError:
            raise
        except Exception as exc:
            mine = self.dialect.translate(exc)
            if mine is None:
                raise
            raise mine from exc


def keyset(
    tx: Tx,
    select: str,
    where: list[str],
    params: dict[str, Any],
    cols: list[str],
    q: PageQuery,
    newest_first: bool = False,
) -> tuple[list[Row], bool]:
    """One page by keyset (``q.after``/``q.before`` hold the edge row's sort key) or, without one, by offset.
    ``newest_first`` lists in descending key order (Twilio's 2010 lists); "after" then means older."""
    conds = list(where)
    backwards = q.before is not None and q.after is None
    desc = backwards != newest_first
    key = q.after if q.after is not None else q.before
    if key is not None:
        marks = ", ".join(f":_k{i}" for i in range(len(cols)))
        conds.append(f"({', '.join(cols)}) {'<' if desc else '>'} ({marks})")
        for i, v in enumerate(key):
            params[f"_k{i}"] = v
    order = ", ".join(f"{c} {'DESC' if desc else 'ASC'}" for c in cols)
    sql = f"{select} WHERE {' AND '.join(conds) or '1=1'} ORDER BY {order} LIMIT :_lim OFFSET :_off"
    rows = tx.all(sql, _lim=q.size + 1, _off=q.offset if key is None else 0, **params)
    more = len(rows) > q.size
    rows = rows[: q.size]
    if backwards:
        rows.reverse()
    return rows, more


def asdict(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


def conditions(*parts: tuple[str, str, Any]) -> tuple[list[str], dict[str, Any]]:
    """(SQL condition, parameter name, value) triples → the conditions and parameters whose value is not None."""
    where, params = [], {}
    for clause, name, value in parts:
        if value is not None:
            where.append(clause)
            params[name] = value
    return where, params


def count(tx: Tx, sql: str, **params: Any) -> int:
    """The ``n`` column of a ``SELECT COUNT(*) AS n`` statement."""
    r = tx.one(sql, **params)
    return int(r["n"]) if r else 0
