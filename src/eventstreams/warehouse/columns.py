"""Warehouse column types and Segment's naming rules (pure).

Segment's warehouses have five column types (timestamp, integer, float, boolean, varchar); a
column's type is chosen from the first value seen and strings are cut at 512 characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnType = Literal["varchar", "integer", "float", "boolean", "timestamp"]
COLUMN_TYPES: tuple[ColumnType, ...] = ("varchar", "integer", "float", "boolean", "timestamp")


@dataclass(frozen=True)
class Column:
    """One typed column. Values handed to a target are already of the Python type that matches:
    str, int, float, bool, or a timezone-aware UTC ``datetime`` (None for NULL)."""

    name: str
    type: ColumnType
