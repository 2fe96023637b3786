"""Delivery wiring for a process: the dispatcher, wake-ups from the store's
wake channel, retention pruning and the optional alert webhook."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
import orjson

from .. import clock
from ..catalog.runtime import Catalog
from ..config import Settings
from ..crypto import Box
from ..domain.operations import alert_view, sink_request_method
from ..profiles.view import ProfileLookup
from ..store.base import Store
from ..store.records import AlertRow
from .dispatcher import Dispatcher, DispatcherConfig
from .hooks import Alerting, DeliveryLog, Hooks, LogLines
from .metrics import DeliveryMetrics
from .policy import RetryPolicy

log = logging.getLogger("eventstreams.delivery")
PRUNE_EVERY = 300.0


def dispatcher_config(settings: Settings) -> DispatcherConfig:
    return DispatcherConfig(
        poll_interval=settings.poll_interval,
        lease_ms=int(settings.lease_s * 1000),
        timeout=settings.delivery_timeout,
        max_in_flight=settings.sink_max_in_flight,
        allow_private=settings.allow_private_destinations,
        allow_sink_endpoint_url=settings.allow_sink_endpoint_url,
        aws_endpoint_url=settings.aws_endpoint_url,
        segment_endpoint=settings.segment_endpoint,
        retry=RetryPolicy(
            first_delay=settings.retry_first_delay,
            max_delay=settings.retry_max_delay,
            max_age=settings.retry_max_age,
        ),
    )


class DeliveryService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        box: Box,
        catalog: Catalog,
        metrics: DeliveryMetrics,
        profiles: ProfileLookup | None = None,
        *,
        owns: Callable[[str], bool] | None = None,
        release_leases: bool | None = None,
        prunes: bool = True,
    ) -> None:
        self.settings = settings
        # On SQLite a lone deliverer releases what a crash left leased; serve's delivery processes have it
        # done for them by serve, which knows which of them died (delivery/process.py).
        self.release_leases = store.dialect == "sqlite" if release_leases is None else release_leases
        self.prunes = prunes  # one of several processes on a file prunes it
        self.store = store
        self.box = box
        self.metrics = metrics
        hooks = Hooks([DeliveryLog(), Alerting(self._post_alert), LogLines(), metrics])
        config = dispatcher_config(settings)
        self.dispatcher = Dispatcher(
            store, box, catalog, config, settings.public_base_url(), hooks, profiles=profiles, owns=owns
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = store.wake_channel()

    async def start(self) -> None:
        await self.dispatcher.start(release_leases=self.release_leases)
        if self.prunes:
            self._tasks.append(asyncio.create_task(self._prune_loop(), name="prune"))
        await self._wake.listen(self.dispatcher.wake)

    async def stop(self) -> None:
        await self._wake.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.dispatcher.stop()

    async def prune_once(self) -> dict[str, int]:
        s = self.settings
        keep = {
            "log": int(s.log_retention_s * 1000),
            "errors": int(s.error_retention_s * 1000),
            "dedupe": int(s.dedupe_window_s * 1000),
            "events": int(max(s.event_retention_s, s.dedupe_window_s) * 1000),
        }
        return await self.store.retention.prune(int(clock.now() * 1000), keep)

    async def _prune_loop(self) -> None:
        while True:
            try:
                counts = await self.prune_once()
                if any(counts.values()):
                    log.info("pruned %s", counts)
            except asyncio.CancelledError:
                raise
            except Exception:  # retention is best effort; try again next round
                log.exception("prune failed")
            await asyncio.sleep(PRUNE_EVERY)

    async def _post_alert(self, alert: AlertRow) -> None:
        url = self.settings.alert_webhook_url
        if not url:
            return
        try:
            method = await sink_request_method(self.store, self.box, alert.account_sid, alert.sink_sid)
        except Exception:  # the alert still goes out, without its method
            log.exception("alert %s: could not read sink %s", alert.sid, alert.sink_sid)
            method = None
        body = orjson.dumps(alert_view(alert, self.settings.public_base_url(), method))
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("alert webhook %s failed: %s", url, exc)
