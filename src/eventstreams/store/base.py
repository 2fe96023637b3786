"""The store: one object exposing a repository per area of the schema.

``store.accounts``, ``store.catalogue``, ``store.sinks``, ``store.subscriptions``,
``store.deliveries``, ``store.dead_letters``, ``store.delivery_log``,
``store.alerts``, ``store.bridge``, ``store.retention``, ``store.sandbox``, ``store.tracking``,
``store.sms``, ``store.profiles``, ``store.object_sources`` and ``store.events_warehouse`` each run their
operations as single transactions on one ``Database`` (store/db.py): the
connection/transaction seam, with a ``Dialect`` for what SQLite and PostgreSQL
do differently. The store itself only opens, migrates, checks and resets.
"""

from __future__ import annotations

from importlib import resources

from .db import Database, Tx
from .dialect import WakeChannel
from .queries import load
from .repos.accounts import Accounts
from .repos.alerts import Alerts
from .repos.bridge import BridgeCredentials
from .repos.catalogue import Catalogue
from .repos.deliveries import Deliveries
from .repos.events_warehouse import EventsWarehouses
from .repos.history import DeadLetters, DeliveryLog
from .repos.object_sources import ObjectSources
from .repos.profiles import Profiles
from .repos.retention import Retention
from .repos.sandbox import TABLES as SANDBOX_TABLES
from .repos.sandbox import SandboxResources
from .repos.sinks import Sinks, Subscriptions
from .repos.sms import SmsLedger
from .repos.tracking import Tracking

# Deleted by reset(), children first; the catalogue's built-ins stay.
_ACCOUNT_TABLES = (
    *SANDBOX_TABLES, "object_source_run_collections", "object_source_runs", "object_source_state",
    "object_sources", "events_warehouses", "warehouse_schemas",
    "profile_merges", "profile_events", "profile_identifiers", "profiles", "sms_opt_outs",
    "sms_messages", "tracking_message_ids", "tracking_messages", "tracking_sources",
    "deliveries", "dead_letters", "delivery_log", "alerts", "sink_alert_state", "event_ids", "events",
    "subscribed_events", "subscriptions", "sink_tests", "sinks", "bridge_credentials", "api_keys", "accounts",
)  # fmt: skip


def migrations(dialect: str) -> list[tuple[str, str]]:
    """(name, sql) pairs in order, from store/sql/<dialect>/NNN_*.sql."""
    folder = resources.files("eventstreams.store").joinpath("sql", dialect)
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


class Store:
    """Everything the service stores, by area."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect.name
        self.accounts = Accounts(db)
        self.catalogue = Catalogue(db)
        self.sinks = Sinks(db)
        self.subscriptions = Subscriptions(db)
        self.alerts = Alerts(db)
        self.deliveries = Deliveries(db, self.alerts)
        self.dead_letters = DeadLetters(db)
        self.delivery_log = DeliveryLog(db)
        self.bridge = BridgeCredentials(db)
        self.retention = Retention(db)
        self.sandbox = SandboxResources(db)
        self.tracking = Tracking(db)
        self.sms = SmsLedger(db)
        self.profiles = Profiles(db)
        self.object_sources = ObjectSources(db)
        self.events_warehouse = EventsWarehouses(db)
        self._q = load("store", db.dialect)

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    def wake_channel(self) -> WakeChannel:
        """Where a deliverer hears which sinks have new work."""
        return self.db.wake_channel()

    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied."""
        wanted = migrations(self.dialect)

        def apply(tx: Tx) -> list[str]:
            self.db.dialect.lock_migrations(tx)
            tx.script(self._q.migrations_table)
            done = {r["name"] for r in tx.all(self._q.applied)}
            applied = []
            for name, sql in wanted:
                if name in done:
                    continue
                tx.script(sql)
                tx.run(self._q.record_migration, n=name)
                applied.append(name)
            return applied

        return await self.db.run(apply, write=True)

    async def pending_migrations(self) -> list[str]:
        """The packaged migrations this database has not applied (readiness: a build newer than its schema)."""
        wanted = [name for name, _ in migrations(self.dialect)]
        done = await self.db.run(lambda tx: {r["name"] for r in tx.all(self._q.applied)})
        return [name for name in wanted if name not in done]

    async def ping(self) -> bool:
        return await self.db.run(lambda tx: tx.one(self._q.ping) is not None)

    async def reset(self) -> None:
        """Delete all account data (tests only); keeps the catalogue's built-ins."""

        def go(tx: Tx) -> None:
            for table in _ACCOUNT_TABLES:
                tx.run(f"DELETE FROM {table}")
            self.catalogue.reset(tx)

        await self.db.run(go, write=True)
