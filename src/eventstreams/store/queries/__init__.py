"""Named SQL, loaded once: ``-- name: query_name`` headers split each file into
statements. ``<area>.sql`` holds what both dialects share; ``<dialect>/<area>.sql``
holds only the statements that differ and overrides by name.

Shared statements use markers the dialect fills in: ``col IN LIST(:name)``
(a list parameter: ``= ANY(...)`` on PostgreSQL, ``json_each`` on SQLite),
``{skip_locked}`` and ``{for_update}`` (row locks; nothing on SQLite, whose single
writer already serialises), ``JSON_PAIRS(a, b)`` (an aggregate of ``[a, b]`` as JSON
text) and ``{redoable}`` (a select-list item: the COMMIT need not wait for the disk,
see ``Dialect.redoable``)."""

from __future__ import annotations

import re
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..dialect import Dialect

_LIST = re.compile(r"([\w.]+) IN LIST\(:(\w+)\)")
_PAIRS = re.compile(r"JSON_PAIRS\(([\w.]+), ([\w.]+)\)")
_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """``-- name: x`` starts statement ``x``; other comment lines are dropped."""
    parts = _HEADER.split(text)
    out: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [ln for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("--")]
        sql = " ".join(ln.strip() for ln in lines).rstrip(";").strip()
        if name in out:
            raise ValueError(f"query {name} defined twice")
        out[name] = sql
    return out


class Queries:
    """name -> SQL for one area in one dialect; ``q.name`` or ``q["name"]``."""

    def __init__(self, sql: dict[str, str]) -> None:
        self._sql = dict(sql)
        self.__dict__.update(sql)  # plain attributes: looked up on every statement of the hot path

    def __getattr__(self, name: str) -> str:  # only for names that do not exist
        raise AttributeError(f"no query named {name}")

    def __getitem__(self, name: str) -> str:
        return self._sql[name]

    def names(self) -> set[str]:
        return set(self._sql)


def _read(*parts: str) -> str | None:
    f = resources.files(__package__).joinpath(*parts)
    return f.read_text() if f.is_file() else None


def expand(sql: str, dialect: Dialect) -> str:
    sql = _LIST.sub(lambda m: dialect.in_(m.group(1), m.group(2)), sql)
    sql = _PAIRS.sub(lambda m: dialect.json_pairs.format(a=m.group(1), b=m.group(2)), sql)
    sql = sql.replace("{redoable}", dialect.redoable_item)
    return sql.replace("{skip_locked}", dialect.skip_locked).replace("{for_update}", dialect.for_update)


_loaded: dict[tuple[str, str], Queries] = {}


def load(area: str, dialect: Dialect) -> Queries:
    key = (area, dialect.name)
    if key not in _loaded:
        shared = parse(_read(f"{area}.sql") or "")
        own = parse(_read(dialect.name, f"{area}.sql") or "")
        _loaded[key] = Queries({name: expand(sql, dialect) for name, sql in {**shared, **own}.items()})
    return _loaded[key]
