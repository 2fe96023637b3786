"""The composition root: builds everything a process runs on, once.

``serve``, ``worker``, the CLI, the embedded API and the tests all call
:func:`build_runtime`; nothing else wires the store, catalogue, domain
services and dispatcher together. HTTP surfaces and the CLI only ever hold a
:class:`Runtime` and call its domain services.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import clock
from .bridge.credentials import BridgeCredentials
from .bridge.sms import SmsCallbacks
from .catalog import builtin_schema_versions, builtin_types
from .catalog.runtime import Catalog
from .config import DELIVERY_INDEX_ENV, Settings
from .crypto import Box
from .delivery.publish import Publisher
from .domain.accounts import Accounts
from .domain.control import ControlPlane
from .domain.operations import Operations
from .metrics import Metrics
from .objectsource.service import ObjectSources
from .profiles.identity import parse_limits
from .profiles.service import Profiles
from .sandbox.service import Sandbox
from .store import open_store
from .store.base import Store
from .store.packing import Packer
from .tracking.ingest import Ingest
from .tracking.sources import Sources
from .warehouse.events import EventsWarehouse

if TYPE_CHECKING:
    from .delivery.process import DeliveryProcess
    from .delivery.service import DeliveryService
    from .objectsource.scheduler import Scheduler
    from .objectsource.sync import Syncer
    from .sandbox.lifecycle import StatusClock


@dataclass
class Runtime:
    settings: Settings
    store: Store
    box: Box
    accounts: Accounts
    control: ControlPlane
    catalog: Catalog
    publisher: Publisher
    operations: Operations
    bridge: BridgeCredentials
    sandbox: Sandbox
    sources: Sources
    ingest: Ingest
    sms: SmsCallbacks
    profiles: Profiles
    object_sources: ObjectSources
    events_warehouse: EventsWarehouse
    metrics: Metrics = field(default_factory=Metrics.from_env)
    delivery: DeliveryService | None = None
    delivery_process: DeliveryProcess | None = None
    status_clock: StatusClock | None = None
    scheduler: Scheduler | None = None
    _closed: bool = field(default=False, repr=False)

    @property
    def base(self) -> str:
        return self.settings.public_base_url()

    async def start_delivery(self, *, here: bool = False) -> None:
        """Run the dispatcher and route wake-ups to it: in this process, or (`serve`) in delivery processes of
        its own (delivery/process.py). ``here``: in this process whatever the settings say."""
        from .delivery.metrics import DeliveryMetrics
        from .delivery.process import DeliveryProcess
        from .delivery.service import DeliveryService

        if self.delivery is not None or self.delivery_process is not None:
            return
        if not here and self._delivers_in_a_child():
            self.delivery_process = DeliveryProcess(self.settings, self._release_for_children)
            await self.delivery_process.start()
            return
        # the SMS sink reads profiles through the profiles domain
        self.delivery = DeliveryService(
            self.settings, self.store, self.box, self.catalog, DeliveryMetrics(self.metrics), profiles=self.profiles,
            **self._share_of_serve(),
        )  # fmt: skip
        await self.delivery.start()

    def _share_of_serve(self) -> dict[str, Any]:
        """As one of serve's delivery processes on SQLite: its share of the sinks, no lease release (serve
        does it) and, but for the first, no pruning."""
        from .store.sqlite import sink_shard

        index = os.environ.get(DELIVERY_INDEX_ENV)
        if index is None or self.store.dialect != "sqlite":
            return {}
        k, n = int(index), self.settings.serve_deliverers()
        return {"owns": lambda sid: sink_shard(sid, n) == k, "release_leases": False, "prunes": k == 0}

    async def _release_for_children(self, worker: str | None) -> int:
        # On PostgreSQL other workers (other machines) may hold leases: none is released, they expire
        if self.store.dialect != "sqlite":
            return 0
        return await self.store.deliveries.release_leases(worker)

    def _delivers_in_a_child(self) -> bool:
        # only where the child's metrics reach this process's /metrics (the serve command sets that up)
        s = self.settings
        return (
            s.delivery_process
            and ":memory:" not in s.database_url
            and self.metrics.multiproc_dir is not None
        )

    @property
    def delivering(self) -> bool:
        """A dispatcher runs for this runtime: here, or in its delivery process (readiness)."""
        if self.delivery is not None:
            return self.delivery.dispatcher.running
        return self.delivery_process is not None and self.delivery_process.running

    async def stop_delivery(self) -> None:
        child, self.delivery_process = self.delivery_process, None
        if child is not None:
            await child.stop()
        delivery, self.delivery = self.delivery, None
        if delivery is not None:
            await delivery.stop()

    async def start_sandbox(self) -> None:
        """Run the sandbox's status clock in this process (messages and calls move on, callbacks go out)."""
        from .sandbox.lifecycle import StatusClock

        if self.status_clock is not None:
            return
        self.status_clock = StatusClock(
            self.store,
            self.sandbox,
            self.accounts,
            self.publisher,
            allow_private=self.settings.allow_private_destinations,
        )
        await self.status_clock.start()

    async def stop_sandbox(self) -> None:
        """Stop the status clock (idempotent)."""
        status_clock, self.status_clock = self.status_clock, None
        if status_clock is not None:
            await status_clock.stop()

    def syncer(self) -> Syncer:
        """A syncer for this process (its leases carry the process's name)."""
        import os
        import socket

        from .ids import new_token
        from .objectsource.sync import Syncer

        owner = f"{socket.gethostname()}:{os.getpid()}:{new_token()[:8]}"
        syncer = Syncer(self.store, self.object_sources, self.settings, owner)
        syncer.on_report = self.metrics.record_sync
        return syncer

    async def start_syncs(self) -> None:
        """Run scheduled jobs in this process (serve, worker): object-source syncs and events-warehouse loads."""
        from .objectsource.scheduler import Scheduler

        if self.scheduler is not None:
            return
        self.scheduler = Scheduler(self.store, self.syncer(), self.settings.source_sync_concurrency)
        owner = self.scheduler.syncer.owner
        events_lease = 600.0  # a load is not renewed: its lease outlasts any one load

        async def claim_events(owner: str, now: float, lease_s: float, n: int) -> list[str]:
            return await self.store.events_warehouse.claim_due(owner, now, max(lease_s, events_lease), n)

        async def load_events(account_sid: str) -> None:
            async def renew() -> None:  # a first load of a long backlog can outlast one lease
                while True:
                    await asyncio.sleep(events_lease / 3)
                    await self.store.events_warehouse.renew(account_sid, owner, clock.now() + events_lease)

            keeper = asyncio.create_task(renew())
            try:
                self.metrics.record_load(await self.events_warehouse.run_leased(account_sid, owner))
            finally:
                keeper.cancel()

        self.scheduler.add_job("events-warehouse", claim_events, load_events)
        self.object_sources.wake.append(self.scheduler.wake)
        self.events_warehouse.wake.append(self.scheduler.wake)
        await self.scheduler.start()

    async def stop_syncs(self) -> None:
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None:
            self.object_sources.wake.remove(scheduler.wake)
            self.events_warehouse.wake.remove(scheduler.wake)
            await scheduler.stop()

    async def close(self) -> None:
        """Stop delivery and close the store (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await self.stop_syncs()
        await self.stop_sandbox()
        await self.stop_delivery()
        await self.store.close()
        self.metrics.process_exited()


async def build_runtime(settings: Settings, store: Store | None = None) -> Runtime:
    """Open (and migrate) the store and build the services on it."""
    store = store or open_store(settings)
    await store.open()
    await store.migrate()
    await store.catalogue.sync_builtins(builtin_types(), builtin_schema_versions())
    box = Box.load(settings.secret_key, settings.data_dir)
    catalog = Catalog(store)
    control = ControlPlane(store, box, settings)
    publisher = Publisher(store, catalog, settings.dedupe_window_s, base_url=settings.public_base_url(),
                          packer=Packer(settings.pack_events))  # fmt: skip
    profiles = Profiles(store, settings.profiles_default_region, parse_limits(settings.profiles_limits))
    rt = Runtime(
        settings=settings,
        store=store,
        box=box,
        accounts=Accounts(store, box),
        control=control,
        catalog=catalog,
        publisher=publisher,
        operations=Operations(store, box, control),
        bridge=BridgeCredentials(store, box),
        sandbox=Sandbox(store, settings),
        sources=Sources(store, box),
        ingest=Ingest(store, catalog, settings, profiles.resolve_tx),
        sms=SmsCallbacks(store, box, settings.profiles_default_region),
        profiles=profiles,
        object_sources=ObjectSources(store, box, settings),
        events_warehouse=EventsWarehouse(store, settings.warehouse_url),
    )
    # what comes in is counted (metrics.py) without the publish and ingest paths knowing of Prometheus
    publisher.on_accepted = rt.metrics.accepted_published
    rt.ingest.on_accepted = rt.metrics.accepted_tracked
    # the SMS callbacks record through the tracking ingest, and opt-outs through profiles
    rt.sms.ingest = rt.ingest
    rt.sms.profiles = rt.profiles
    return rt
