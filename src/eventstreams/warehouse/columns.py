"""Warehouse column types and Segment's naming rules (pure).

Segment's warehouses have five column types (timestamp, integer, float, boolean, varchar); a
column's type is chosen from the first value seen and strings are cut at 512 characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

ColumnType = Literal["varchar", "integer", "float", "boolean", "timestamp"]
COLUMN_TYPES: tuple[ColumnType, ...] = ("varchar", "integer", "float", "boolean", "timestamp")


@dataclass(frozen=True)
class Column:
    """One typed column. Values handed to a target are already of the Python type that matches:
    str, int, float, bool, or a timezone-aware UTC ``datetime`` (None for NULL)."""

    name: str
    type: ColumnType


# -- Segment's naming rules ----------------------------------------------------------------------


#: Segment cuts strings at this many characters.
MAX_VARCHAR = 512
#: PostgreSQL's identifier limit: a longer name would be cut silently there, so names are cut here,
#: the same on every target.
MAX_IDENTIFIER = 63
#: Nested objects deeper than this are stored as JSON text in one column (bounds the column count).
MAX_DEPTH = 8
#: The events warehouse's own tables: an event whose slug is one of these gets :data:`RESERVED_SUFFIX`.
RESERVED_TABLES = frozenset({"tracks", "identifies", "pages", "screens", "groups", "aliases", "users"})
RESERVED_SUFFIX = "_events"

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_LOWER_UPPER = re.compile(r"([a-z0-9])([A-Z])")
_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def snake_case(name: str) -> str:
    """Segment's column name for a key: camelCase → snake_case (``adTrackingEnabled`` →
    ``ad_tracking_enabled``, ``userID`` → ``user_id``, ``HTMLTitle`` → ``html_title``); any other
    character becomes ``_``; a leading digit gets a ``_`` before it; at most 63 characters. An empty
    result (a key of only punctuation) is ``_``."""
    s = _ACRONYM.sub(r"\1_\2", _LOWER_UPPER.sub(r"\1_\2", name))
    s = _NOT_WORD.sub("_", s.lower()).strip("_")
    if not s:
        return "_"
    if s[0].isdigit():
        s = "_" + s
    return s[:MAX_IDENTIFIER].rstrip("_") or "_"


def table_name(event: str) -> str:
    """The table of a track event: the slug of its name (``Order Completed`` → ``order_completed``).
    An event named like one of the standard tables (``tracks``, ``users``, …) would write into it, so
    it gets a suffix: ``tracks`` → ``tracks_events``."""
    slug = snake_case(event)
    if slug in RESERVED_TABLES:
        slug = slug + RESERVED_SUFFIX
    return slug


def flatten(obj: Mapping[str, Any], prefix: str = "", depth: int = 0) -> Iterator[tuple[str, Any]]:
    """``(column, value)`` pairs of a JSON object, nested objects flattened with ``_``
    (``{"device": {"adTrackingEnabled": true}}`` with prefix ``context`` →
    ``context_device_ad_tracking_enabled``). Lists, and objects deeper than :data:`MAX_DEPTH`, stay one
    value (stored as JSON text). Nulls are left out: Segment creates a column at its first non-null value."""
    for key, value in obj.items():
        name = snake_case(f"{prefix}_{key}" if prefix else str(key))
        if isinstance(value, Mapping) and depth < MAX_DEPTH:
            yield from flatten(value, name, depth + 1)
        elif value is not None:
            yield name, value


def parse_timestamp(value: str) -> datetime | None:
    """A timezone-aware UTC datetime from ISO 8601 (``Z`` or an offset; a date alone or a time without
    offset is not a timestamp) or RFC 2822 (Twilio's dates), else None."""
    text = value.strip()
    if len(text) < 20 or len(text) > 40:  # shortest: 2026-03-29T04:00:58Z
        return None
    if text[4:5] == "-" and text[:4].isdigit():
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
    elif text[3:5] == ", ":
        try:
            dt = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    else:
        return None
    if dt.tzinfo is None:
        return None
    return dt.astimezone(UTC)


def infer_type(value: Any) -> ColumnType:
    """A column's type from its first non-null value. ``bool`` is tested before ``int`` (it is one in
    Python); strings that are ISO 8601 / RFC 2822 timestamps with a zone are ``timestamp``; lists and
    objects are ``varchar`` (JSON text)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer" if -(2**63) <= value < 2**63 else "float"
    if isinstance(value, float):
        return "float"
    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, str) and parse_timestamp(value) is not None:
        return "timestamp"
    return "varchar"


def _text(value: Any) -> str:
    if isinstance(value, str):
        s = value
    elif isinstance(value, bool):
        s = "true" if value else "false"
    elif isinstance(value, datetime):
        s = value.astimezone(UTC).isoformat()
    elif isinstance(value, (int, float)):
        s = repr(value)
    else:
        s = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return s[:MAX_VARCHAR]


def coerce(value: Any, type_: ColumnType) -> Any:
    """``value`` as the Python type of a column of ``type_`` (see :class:`Column`), or None when it
    cannot be one: a column keeps the type of its first value, as in Segment, and a later value of
    another kind is converted where that is lossless (``"12"`` → 12, 3 → 3.0, 2.0 → 2) and otherwise
    stored as NULL. Strings are cut at :data:`MAX_VARCHAR` characters."""
    if value is None:
        return None
    if type_ == "varchar":
        return _text(value)
    if type_ == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return None
    if type_ == "integer":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value if -(2**63) <= value < 2**63 else None
        if isinstance(value, float):
            return int(value) if value.is_integer() and abs(value) < 2**63 else None
        if isinstance(value, str):
            try:
                n = int(value.strip())
            except ValueError:
                return None
            return n if -(2**63) <= n < 2**63 else None
        return None
    if type_ == "float":
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                return None
        return None
    # timestamp
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        return parse_timestamp(value)
    return None


def typed_rows(columns: Sequence[Column], rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with each value of ``columns`` converted by :func:`coerce` to its column's type (other keys
    dropped; a key a row lacks stays absent, which matters to a merging upsert)."""
    types = [(c.name, c.type) for c in columns]
    return [{n: coerce(r[n], t) for n, t in types if n in r} for r in rows]


def check_identifier(name: str, what: str = "identifier") -> str:
    """``name`` when it is a plain lower-case SQL name (``[a-z_][a-z0-9_]{0,62}``), else ValueError.
    Targets quote every name as well; this keeps out names that quoting would make legal but that
    differ by case or are cut by PostgreSQL."""
    if not isinstance(name, str) or IDENTIFIER.fullmatch(name) is None:
        raise ValueError(f"invalid warehouse {what} {name!r}: use [a-z_][a-z0-9_]*, at most 63 characters")
    return name
