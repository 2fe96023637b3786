"""The six collections of Segment's Twilio object source, as data (pure, no I/O).

Each :class:`Collection` says where Twilio lists it, which typed warehouse columns a record becomes
(:func:`to_row`), and how an incremental pass filters it (:func:`filter_params`, :func:`cursor_value`).

Cursors (what an incremental pass follows; the sync engine keeps the highest value seen and starts the
next pass from it minus a lookback):

* ``messages``: ``date_sent`` through ``DateSent>``/``DateSent<``, the only date Twilio filters messages
  on. Later status changes (delivered → undelivered, price) are reached only through the lookback; a
  message never sent (no ``date_sent``) is not matched by the filter at all, on Twilio as in the sandbox.
* ``calls``: ``end_time`` through ``EndTime>``/``EndTime<``. A call in progress has no ``end_time``, so
  it is not read until it has ended, and then in its final state (status, duration); with
  ``StartTime`` it would be read while ringing and never again once the cursor moved past its start.
  Price, which Twilio may fill in shortly after the end, is caught by the lookback.
* ``conferences``: ``date_updated`` through ``DateUpdated>``/``DateUpdated<``: every change moves it.
* ``transcriptions``, ``addresses``: Twilio has no date filter: full scan (cursor None).
* ``call_feedback``: no list endpoint; one GET per call (``TwilioReader.feedback``), so it follows
  the calls read; its id is the Call SID.

Twilio sends dates as RFC 2822 strings and many numbers as strings (reference §3.4); :func:`to_row`
types them. It runs once per record, so dates are parsed through a per-day cache instead of
``strptime``/``email.utils`` (see :func:`parse_date`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import orjson

from ..warehouse.columns import Column, ColumnType

__all__ = [
    "COLLECTIONS",
    "Collection",
    "cursor_value",
    "filter_params",
    "parse_date",
    "to_row",
]

Converter = Callable[[Any], Any]

_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                        "Nov", "Dec"), start=1)}  # fmt: skip


@lru_cache(maxsize=8192)
def _day(text: str) -> tuple[int, int, int]:
    """``"18 Oct 2019"`` → (2019, 10, 18); a year of data is a few hundred distinct days."""
    d, m, y = text.split(" ")
    return int(y), _MONTHS[m], int(d)


def parse_date(value: Any) -> datetime | None:
    """A Twilio date → timezone-aware UTC datetime (None for null/empty).

    The common form, ``"Fri, 18 Oct 2019 17:00:00 +0000"``, is sliced (the day part cached); any
    other RFC 2822 form goes through :func:`email.utils.parsedate_to_datetime`, and ISO 8601 through
    :meth:`datetime.fromisoformat`. A value that is none of them raises ``ValueError``."""
    if value.__class__ is str and len(value) == 31 and value[3] == "," and value[26:] == "+0000":
        try:  # the hot path: no strptime, the day part cached
            y, mo, d = _day(value[5:16])
            return datetime(y, mo, d, int(value[17:19]), int(value[20:22]), int(value[23:25]), tzinfo=UTC)
        except (KeyError, ValueError):
            pass  # not the fixed layout after all: the general parsers decide
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    s = str(value)
    if s[:4].isdigit():
        iso = datetime.fromisoformat(s)
        return iso.astimezone(UTC) if iso.tzinfo else iso.replace(tzinfo=UTC)
    try:
        parsed = parsedate_to_datetime(s)
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"not a date: {s!r}") from exc
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(value)
    except ValueError:
        return int(float(value))  # "12.0"


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def _bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()  # Segment stores arrays as JSON text
    return str(value)


_CONVERT: dict[ColumnType, Converter] = {
    "varchar": _str,
    "integer": _int,
    "float": _float,
    "boolean": _bool,
    "timestamp": parse_date,
}

_TAIL = (Column("received_at", "timestamp"), Column("uuid_ts", "timestamp"))


@dataclass(frozen=True)
class Collection:
    """One collection: a warehouse table filled from one Twilio list (or, for ``call_feedback``,
    one GET per call)."""

    name: str  # the table
    list_key: str | None  # the records' key in Twilio's list envelope; None: not a list
    path: str  # under /2010-04-01/Accounts/{AccountSid}/
    columns: tuple[Column, ...]  # id first, received_at and uuid_ts last
    cursor: str | None = None  # the record field an incremental pass follows; None: full scan
    lower_param: str | None = None  # e.g. "DateSent>": on or after (a whole UTC day)
    upper_param: str | None = None  # e.g. "DateSent<"
    id_field: str = "sid"  # the record field that becomes ``id``
    # Read newest first by this field instead of filtering: a pass stops at the first record before its
    # lower bound. For messages: Twilio filters them only on DateSent, which drops every message that was
    # never sent (failed before reaching a carrier: no date_sent), and those would never be synced.
    newest_first: str | None = None
    # (column, record key, converter) for every column between id and the tail, precomputed
    _fields: tuple[tuple[str, str, Converter], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        assert names[0] == "id" and tuple(self.columns[-2:]) == _TAIL, self.name
        assert len(set(names)) == len(names), self.name
        fields = tuple((c.name, c.name, _CONVERT[c.type]) for c in self.columns[1:-2])
        object.__setattr__(self, "_fields", fields)

    @property
    def incremental(self) -> bool:
        return self.cursor is not None

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _cols(**types: ColumnType) -> tuple[Column, ...]:
    return (Column("id", "varchar"), *(Column(n.removesuffix("_"), t) for n, t in types.items()), *_TAIL)


# short names for the tables below
V: ColumnType = "varchar"
N: ColumnType = "integer"
F: ColumnType = "float"
B: ColumnType = "boolean"
T: ColumnType = "timestamp"

# Segment's documented properties first (reference §2.1), then Twilio's other useful fields (§3.4).
# ``from_`` is the column ``from`` (a keyword in Python).
MESSAGES = Collection(
    "messages", "messages", "Messages.json",
    _cols(account_sid=V, api_version=V, body=V, date_created=T, date_sent=T, date_updated=T, direction=V,
          error_code=N, error_message=V, from_=V, num_media=N, num_segments=N, price=F, status=V, to=V,
          messaging_service_sid=V, price_unit=V),
    cursor="date_sent", newest_first="date_created",
)  # fmt: skip
CALLS = Collection(
    "calls", "calls", "Calls.json",
    _cols(account_sid=V, api_version=V, caller_name=V, date_created=T, date_updated=T, direction=V, duration=N,
          end_time=T, forwarded_from=V, from_=V, parent_call_sid=V, phone_number_sid=V, price=F, start_time=T,
          status=V, to=V, answered_by=V, from_formatted=V, group_sid=V, price_unit=V, queue_time=N,
          to_formatted=V, trunk_sid=V),
    cursor="end_time", lower_param="EndTime>", upper_param="EndTime<",
)  # fmt: skip
CONFERENCES = Collection(
    "conferences", "conferences", "Conferences.json",
    _cols(account_sid=V, date_created=T, date_updated=T, friendly_name=V, region=V, status=V, api_version=V,
          reason_conference_ended=V, call_sid_ending_conference=V),
    cursor="date_updated", lower_param="DateUpdated>", upper_param="DateUpdated<",
)  # fmt: skip
TRANSCRIPTIONS = Collection(
    "transcriptions", "transcriptions", "Transcriptions.json",
    _cols(account_sid=V, date_created=T, date_updated=T, duration=N, price=F, recording_sid=V, status=V,
          transcription_text=V, api_version=V, price_unit=V, type=V),
)  # fmt: skip
ADDRESSES = Collection(
    "addresses", "addresses", "Addresses.json",
    _cols(account_sid=V, city=V, customer_name=V, emergency_enabled=B, friendly_name=V, iso_country=V,
          postal_code=V, region=V, street=V, validated=B, date_created=T, date_updated=T, street_secondary=V,
          verified=B),
)  # fmt: skip
CALL_FEEDBACK = Collection(
    "call_feedback", None, "Calls/{CallSid}/Feedback.json",
    _cols(quality_score=N, account_sid=V, issues=V, date_created=T, date_updated=T),
)  # fmt: skip

COLLECTIONS: dict[str, Collection] = {
    c.name: c for c in (ADDRESSES, CALLS, CONFERENCES, TRANSCRIPTIONS, MESSAGES, CALL_FEEDBACK)
}


def to_row(collection: Collection, record: Mapping[str, Any], received_at: datetime) -> dict[str, Any]:
    """One Twilio record → the collection's typed row (every column present; None for NULL).

    ``received_at`` (timezone-aware) stamps ``received_at`` and ``uuid_ts``. A value that cannot be
    typed (``"abc"`` for an integer) raises ``ValueError`` naming the column and the record."""
    get = record.get
    row: dict[str, Any] = {"id": get(collection.id_field)}
    name = "id"
    try:
        for name, key, convert in collection._fields:
            value = get(key)
            row[name] = None if value is None else convert(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{collection.name} {row['id']}: column {name}: {exc}") from exc
    row["received_at"] = received_at
    row["uuid_ts"] = received_at
    return row


def cursor_value(collection: Collection, record: Mapping[str, Any]) -> datetime | None:
    """The record's cursor as a UTC datetime (None: no cursor, or the record has no value yet)."""
    if collection.cursor is None:
        return None
    return parse_date(record.get(collection.cursor))


def _day_text(d: date) -> str:
    return d.isoformat()


def filter_params(collection: Collection, lower: datetime | None, upper: datetime | None) -> dict[str, str]:
    """The query parameters of one incremental pass over ``[lower, upper]`` (either end open).

    Twilio filters calls and conferences by day only (``YYYY-MM-DD``, UTC), so both bounds are days,
    widened so the pass can only read more, never less: the lower bound is ``lower``'s UTC day ("on
    or after" its start); the upper bound is the day after ``upper``'s UTC day, because Twilio words
    some ``<`` filters as "before" (exclusive) while the sandbox reads a bare date as the whole day
    (inclusive). Extra records at either end are read again into an upserting table, which is
    harmless. A full-scan collection has no parameters."""
    if collection.cursor is None:
        return {}
    params: dict[str, str] = {}
    if lower is not None and collection.lower_param:
        params[collection.lower_param] = _day_text(_utc(lower).date())
    if upper is not None and collection.upper_param:
        params[collection.upper_param] = _day_text(_utc(upper).date() + timedelta(days=1))
    return params


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("bounds must be timezone-aware")
    return value.astimezone(UTC)
