"""The storage seam: a narrow set of coarse operations.

The domain calls only these; SQLite and PostgreSQL implement them with the
same SQL where they can (store/sql.py) and a dialect object where they
cannot. Every operation is one transaction.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from .records import (
    AccountRow,
    AlertRow,
    ApiKeyRow,
    DeliveryResult,
    ErrorReport,
    EventTypeRow,
    LeasedDelivery,
    LogEntry,
    NewEvent,
    Page,
    PageQuery,
    PublishOutcome,
    SchemaVersionRow,
    SinkRow,
    SubscribedEventRow,
    SubscriptionRow,
)


class ControlStore(abc.ABC):
    dialect: str

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied."""

    @abc.abstractmethod
    async def ping(self) -> bool: ...

    # accounts and keys
    @abc.abstractmethod
    async def create_account(self, row: AccountRow) -> None: ...

    @abc.abstractmethod
    async def create_first_account(self, row: AccountRow, only_if_empty: bool) -> bool:
        """Insert ``row`` unless it exists (or, with ``only_if_empty``, unless
        any account exists). Safe when several processes start together."""

    @abc.abstractmethod
    async def get_account(self, sid: str) -> AccountRow | None: ...

    @abc.abstractmethod
    async def count_accounts(self) -> int: ...

    @abc.abstractmethod
    async def count_owned(self, what: str, owner_sid: str, schema_id: str | None = None) -> int:
        """Rows of ``what`` (subaccounts, api_keys, event_types, schemas, schema_versions) an account holds."""

    @abc.abstractmethod
    async def list_accounts(
        self, root_sid: str, friendly_name: str | None, status: str | None, q: PageQuery
    ) -> Page: ...

    @abc.abstractmethod
    async def update_account(self, sid: str, friendly_name: str | None, status: str | None, now: str) -> None: ...

    @abc.abstractmethod
    async def set_account_token(self, sid: str, token_hash: str, token_sealed: str) -> None: ...

    @abc.abstractmethod
    async def create_api_key(self, row: ApiKeyRow) -> None: ...

    @abc.abstractmethod
    async def get_api_key(self, sid: str) -> ApiKeyRow | None: ...

    @abc.abstractmethod
    async def list_api_keys(self, account_sid: str, q: PageQuery) -> Page: ...

    @abc.abstractmethod
    async def update_api_key(self, sid: str, friendly_name: str, now: str) -> None: ...

    @abc.abstractmethod
    async def delete_api_key(self, sid: str) -> bool: ...

    # catalogue
    @abc.abstractmethod
    async def sync_builtin_catalog(
        self, types: Sequence[EventTypeRow], versions: Sequence[SchemaVersionRow]
    ) -> None: ...

    @abc.abstractmethod
    async def list_event_types(self, owner_sid: str, schema_id: str | None, q: PageQuery) -> Page: ...

    @abc.abstractmethod
    async def get_event_type(self, owner_sid: str, type_: str) -> EventTypeRow | None: ...

    @abc.abstractmethod
    async def put_event_type(self, row: EventTypeRow) -> None:
        """Insert or update an operator-registered type (never a built-in)."""

    @abc.abstractmethod
    async def list_schema_versions(self, owner_sid: str, schema_id: str, q: PageQuery) -> Page: ...

    @abc.abstractmethod
    async def get_schema_version(self, owner_sid: str, schema_id: str, version: int | None) -> SchemaVersionRow | None:
        """``version=None`` means the latest."""

    @abc.abstractmethod
    async def add_schema_version(self, row: SchemaVersionRow) -> SchemaVersionRow:
        """Append the next version of an operator schema (version chosen here)."""

    @abc.abstractmethod
    async def all_schema_versions(self) -> list[SchemaVersionRow]: ...

    # sinks
    @abc.abstractmethod
    async def create_sink(self, row: SinkRow, limit: int) -> None: ...

    @abc.abstractmethod
    async def get_sink(self, account_sid: str, sid: str) -> SinkRow | None: ...

    @abc.abstractmethod
    async def list_sinks(self, account_sid: str, in_use: bool | None, status: str | None, q: PageQuery) -> Page: ...

    @abc.abstractmethod
    async def update_sink(self, account_sid: str, sid: str, description: str, now: str) -> SinkRow | None: ...

    @abc.abstractmethod
    async def delete_sink(self, account_sid: str, sid: str) -> bool:
        """Delete unless a subscription uses it (raises Conflict)."""

    @abc.abstractmethod
    async def record_sink_test(self, sink_sid: str, test_id: str, now: str) -> None: ...

    @abc.abstractmethod
    async def sink_test_exists(self, sink_sid: str, test_id: str) -> bool: ...

    # subscriptions
    @abc.abstractmethod
    async def create_subscription(
        self,
        row: SubscriptionRow,
        types: Sequence[SubscribedEventRow],
        limit: int,
        one_per_sink: bool,
    ) -> None: ...

    @abc.abstractmethod
    async def get_subscription(self, account_sid: str, sid: str) -> SubscriptionRow | None: ...

    @abc.abstractmethod
    async def list_subscriptions(self, account_sid: str, sink_sid: str | None, q: PageQuery) -> Page: ...

    @abc.abstractmethod
    async def update_subscription(
        self, account_sid: str, sid: str, description: str | None, now: str
    ) -> SubscriptionRow | None: ...

    @abc.abstractmethod
    async def delete_subscription(self, account_sid: str, sid: str) -> bool: ...

    @abc.abstractmethod
    async def list_subscribed_events(self, subscription_sid: str, q: PageQuery) -> Page: ...

    @abc.abstractmethod
    async def get_subscribed_event(self, subscription_sid: str, type_: str) -> SubscribedEventRow | None: ...

    @abc.abstractmethod
    async def add_subscribed_event(self, row: SubscribedEventRow, now: str) -> None:
        """Raises Conflict when the type is already in the subscription."""

    @abc.abstractmethod
    async def update_subscribed_event(self, subscription_sid: str, type_: str, version: int, now: str) -> bool: ...

    @abc.abstractmethod
    async def delete_subscribed_event(self, subscription_sid: str, type_: str, now: str) -> bool:
        """Refuses (Conflict) to remove the last type of a subscription."""

    @abc.abstractmethod
    async def reset(self) -> None:
        """Delete all account data (tests only); keeps the catalogue."""

    # Twilio callback bridge (rows: account_sid, twilio_account_sid, token_sealed, date_created, date_updated)
    @abc.abstractmethod
    async def put_bridge_credentials(
        self, account_sid: str, twilio_account_sid: str, token_sealed: str, now: str
    ) -> bool:
        """Create or replace; True when created."""

    @abc.abstractmethod
    async def get_bridge_credentials(self, account_sid: str) -> dict[str, str] | None: ...

    @abc.abstractmethod
    async def delete_bridge_credentials(self, account_sid: str) -> bool: ...


class DeliveryStore(abc.ABC):
    """The delivery half of the seam: events in, leased deliveries out."""

    @abc.abstractmethod
    async def publish_events(
        self, account_sid: str, events: Sequence[NewEvent], now_ms: int, dedupe_window_ms: int
    ) -> PublishOutcome:
        """Store new events (dropping ids seen within the dedupe window) and one
        delivery per subscribed sink, in one transaction."""

    @abc.abstractmethod
    async def enqueue_for_sink(self, account_sid: str, sink_sid: str, events: Sequence[NewEvent], now_ms: int) -> int:
        """Store events for one sink only (sink test events), no dedupe."""

    @abc.abstractmethod
    async def lease_deliveries(
        self, sink_sid: str, now_ms: int, limit: int, lease: str, lease_ms: int
    ) -> list[LeasedDelivery]: ...

    @abc.abstractmethod
    async def complete_deliveries(
        self,
        results: Sequence[DeliveryResult],
        logs: Sequence[LogEntry],
        errors: Sequence[ErrorReport],
        now_ms: int,
        alert_every_ms: int,
    ) -> list[AlertRow]:
        """Apply outcomes (only where the lease is still ours), write logs,
        update alert grouping; return alerts raised."""

    @abc.abstractmethod
    async def expire_deliveries(
        self, sink_sid: str, window_start_before: int, now_ms: int, reason: str, code: int | None = None
    ) -> int:
        """Dead-letter the sink's unleased deliveries whose retry window has
        passed without an attempt (a sink paused as down never tried them);
        ``code`` is the error that kept the sink down, for those never tried."""

    @abc.abstractmethod
    async def extend_lease(self, ids: Sequence[int], lease: str, until_ms: int) -> int:
        """Push the lease on these deliveries to ``until_ms`` while they are still ``lease``'s
        (a send that outlasts the lease must not let another worker take them); how many were."""

    @abc.abstractmethod
    async def release_leases(self) -> int:
        """Make every leased delivery due now (single-process SQLite start-up)."""

    @abc.abstractmethod
    async def next_due(self, sink_sid: str) -> int | None: ...

    @abc.abstractmethod
    async def delivery_sinks(self) -> list[SinkRow]:
        """Sinks with a subscription or with pending deliveries."""

    @abc.abstractmethod
    async def subscribed_versions(self) -> dict[str, dict[str, int]]:
        """sink SID -> (type -> schema_version) of every sink's subscriptions, in one query."""

    @abc.abstractmethod
    async def list_dead_letters(self, account_sid: str, sink_sid: str | None, q: PageQuery) -> Page: ...

    @abc.abstractmethod
    async def replay_dead_letters(
        self, account_sid: str, sink_sid: str | None, event_ids: Sequence[str] | None, now_ms: int
    ) -> tuple[int, list[str]]:
        """Re-enqueue dead letters (all of a sink's, or those events); returns (count, sinks)."""

    @abc.abstractmethod
    async def replay_events(
        self,
        account_sid: str,
        sink_sid: str,
        event_ids: Sequence[str] | None,
        since_ms: int | None,
        until_ms: int | None,
        now_ms: int,
    ) -> int:
        """Re-enqueue stored events for a sink: by id, or those received in a
        time range whose type the sink's subscription includes."""

    @abc.abstractmethod
    async def list_delivery_log(self, account_sid: str, sink_sid: str | None, q: PageQuery) -> Page: ...

    @abc.abstractmethod
    async def list_alerts(
        self,
        account_sid: str,
        q: PageQuery,
        log_level: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> Page:
        """Alerts in creation order; ``start_ms`` inclusive, ``end_ms`` exclusive."""

    @abc.abstractmethod
    async def get_alert(self, account_sid: str, sid: str) -> AlertRow | None: ...

    @abc.abstractmethod
    async def prune(self, now_ms: int, keep: dict[str, int]) -> dict[str, int]:
        """Delete expired rows; ``keep`` maps log/errors/dedupe/events to ages in ms."""


class Store(ControlStore, DeliveryStore):
    """Everything the service stores; one implementation per dialect."""
