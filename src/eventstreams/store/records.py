"""Plain rows as the store hands them out. No behaviour here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class AccountRow:
    sid: str
    parent_sid: str | None
    friendly_name: str
    status: str
    token_hash: str
    token_sealed: str
    date_created: str
    date_updated: str


@dataclass(slots=True)
class ApiKeyRow:
    sid: str
    account_sid: str
    friendly_name: str
    secret_hash: str
    date_created: str
    date_updated: str


@dataclass(slots=True)
class EventTypeRow:
    type: str
    schema_id: str
    owner_sid: str | None
    description: str
    status: str
    documentation_url: str | None
    segment_compatible: bool
    date_created: str
    date_updated: str


@dataclass(slots=True)
class SchemaVersionRow:
    schema_id: str
    version: int
    owner_sid: str | None
    document: str
    date_created: str


@dataclass(slots=True)
class SinkRow:
    sid: str
    account_sid: str
    description: str
    sink_type: str
    configuration_sealed: str
    status: str
    signing_secret_sealed: str
    date_created: str
    date_updated: str
    in_use: bool = False


@dataclass(slots=True)
class SubscriptionRow:
    sid: str
    account_sid: str
    sink_sid: str
    description: str
    date_created: str
    date_updated: str


@dataclass(slots=True)
class SubscribedEventRow:
    subscription_sid: str
    type: str
    schema_version: int
    account_sid: str


@dataclass(slots=True)
class PageQuery:
    """Keyset paging: ``after``/``before`` hold the sort key of the edge row.

    ``offset`` is used only when a client asks for Page=N without a token.
    """

    size: int
    after: tuple[Any, ...] | None = None
    before: tuple[Any, ...] | None = None
    offset: int = 0


@dataclass(slots=True)
class Page:
    items: list[Any] = field(default_factory=list)
    has_more: bool = False
