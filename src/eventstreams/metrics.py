"""A process's Prometheus metrics (docs/operations.md), served at ``GET /metrics`` (api/ops.py).

Each runtime has a registry of its own (tests start many servers in one process; the global registry
would refuse the second). With ``PROMETHEUS_MULTIPROC_DIR`` set, every process (``serve``s, ``worker``s)
writes its counters and histograms to files there, and a scrape of any ``serve`` reads them all through
prometheus_client's ``MultiProcessCollector``: one scrape, every process's numbers. The backlog gauges
are the store's, not a process's: computed at scrape time by one small query, cached a few seconds.
The code that counts calls the recording methods here, or a hook (delivery/metrics.py) does.
"""

from __future__ import annotations

import logging
import os
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .objectsource.sync import RunReport
    from .store.base import Store
    from .warehouse.events import LoadReport

log = logging.getLogger("eventstreams.metrics")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
BACKLOG_CACHE_S = 5.0  # scrapes within this reuse the last backlog query
# event received -> delivered: milliseconds when all is well, hours while a sink is down (the retry window)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)
SEND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
HTTP_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Backlog:
    depth: int = 0  # deliveries waiting (due, leased or scheduled for a retry)
    retrying: int = 0  # of those, the ones tried at least once
    oldest_age_s: float = 0.0  # since the oldest waiting delivery was created; 0 when none waits


class _BacklogCollector(Collector):
    """Yields the last backlog read; :meth:`Metrics.refresh` reads it (async, before rendering)."""

    def __init__(self) -> None:
        self.backlog: Backlog | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        b = self.backlog
        if b is None:  # not read yet, or the store did not answer: no sample rather than a false zero
            return
        yield GaugeMetricFamily(
            "eventstreams_delivery_queue_depth", "Deliveries waiting to be made (all sinks)", value=b.depth
        )
        yield GaugeMetricFamily(
            "eventstreams_delivery_retry_queue_depth", "Waiting deliveries already tried at least once", b.retrying
        )
        yield GaugeMetricFamily(
            "eventstreams_delivery_oldest_pending_age_seconds",
            "Age of the oldest waiting delivery (since it was created); 0 when none waits",
            b.oldest_age_s,
        )


def observe_many(histogram: Histogram, amounts: Iterable[float]) -> None:
    """``histogram.observe`` for each amount, with one write per bucket touched instead of two per amount:
    in multiprocess mode each write is a locked update of a shared file, and observing every event of a
    fan-out one by one cost ~8 % of the delivery process's CPU. Falls back to ``observe`` should
    prometheus-client's internals change."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total_value = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total_value is None:
        for amount in amounts:
            histogram.observe(amount)
        return
    counts = [0] * len(bounds)
    total = 0.0
    for amount in amounts:
        total += amount
        counts[bisect_left(bounds, amount)] += 1  # the first bound >= amount, as observe() finds it
    total_value.inc(total)
    for i, n in enumerate(counts):
        if n:
            buckets[i].inc(n)


class Metrics:
    def __init__(self, multiproc_dir: str | None = None) -> None:
        self.multiproc_dir = multiproc_dir
        if multiproc_dir and values.ValueClass.__name__ == "MutexValue":
            # The variable was set after prometheus_client was imported (it reads it at import): switch
            # now, before any metric exists, so this process's numbers reach the shared directory too.
            values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        self.registry = r = CollectorRegistry()
        self.events_accepted = Counter(
            "eventstreams_events_accepted", "Events stored, by how they came in (publish, tracking)", ["source"],
            registry=r,
        )  # fmt: skip
        self.deliveries = Counter(
            "eventstreams_deliveries",
            "Delivery attempts by sink type and outcome (delivered, retried, dead_lettered, skipped, expired)",
            ["sink_type", "outcome"],
            registry=r,
        )
        self.delivery_latency = Histogram(
            "eventstreams_delivery_latency_seconds", "From an event's delivery being created to its delivery",
            ["sink_type"], registry=r, buckets=LATENCY_BUCKETS,
        )  # fmt: skip
        self.send_seconds = Histogram(
            "eventstreams_sink_send_seconds", "Time one leased chunk took to send (all its requests)",
            ["sink_type"], registry=r, buckets=SEND_BUCKETS,
        )  # fmt: skip
        self.alerts = Counter("eventstreams_alerts", "Alerts raised", registry=r)
        self.http_requests = Counter(
            "eventstreams_http_requests", "HTTP requests by method, route template and status",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip
        self.http_duration = Histogram(
            "eventstreams_http_request_duration_seconds", "HTTP request duration by method and route template",
            ["method", "route"], registry=r, buckets=HTTP_BUCKETS,
        )  # fmt: skip
        self.sync_rows = Counter(
            "eventstreams_source_sync_rows", "Object-source rows by collection and stage (read, upserted)",
            ["collection", "stage"], registry=r,
        )  # fmt: skip
        self.sync_runs = Counter(
            "eventstreams_source_sync_runs", "Object-source syncs ended, by status", ["status"], registry=r
        )
        self.warehouse_rows = Counter(
            "eventstreams_events_warehouse_rows", "Rows loaded into events warehouses", registry=r
        )
        self.warehouse_loads = Counter(
            "eventstreams_events_warehouse_loads", "Events-warehouse loads, by status (succeeded, failed)",
            ["status"], registry=r,
        )  # fmt: skip
        self._backlog = _BacklogCollector()
        r.register(self._backlog)
        self._backlog_at = float("-inf")
        # children bound once: .labels() takes a lock and checks the labels on every call
        self._accepted_publish = self.events_accepted.labels("publish")
        self._accepted_tracking = self.events_accepted.labels("tracking")
        self._http: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    @classmethod
    def from_env(cls) -> Metrics:
        return cls(os.environ.get(MULTIPROC_ENV) or None)

    # -- recording (called by the code that counts, through small callbacks)

    def accepted_published(self, n: int) -> None:
        if n:
            self._accepted_publish.inc(n)

    def accepted_tracked(self, n: int) -> None:
        if n:
            self._accepted_tracking.inc(n)

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        bound = self._http.get(key)
        if bound is None:  # bounded: methods x route templates x statuses
            bound = self._http[key] = (
                self.http_requests.labels(method, route, str(status)),
                self.http_duration.labels(method, route),
            )
        bound[0].inc()
        bound[1].observe(seconds)

    def record_sync(self, report: RunReport) -> None:
        for part in report.collections:
            if part.rows_read:
                self.sync_rows.labels(part.collection, "read").inc(part.rows_read)
            if part.rows_upserted:
                self.sync_rows.labels(part.collection, "upserted").inc(part.rows_upserted)
        self.sync_runs.labels(report.run.status).inc()

    def record_load(self, report: LoadReport | None) -> None:
        self.warehouse_loads.labels("failed" if report is None else "succeeded").inc()
        if report is not None and report.rows:
            self.warehouse_rows.inc(report.rows)

    # -- scraping

    async def refresh(self, store: Store, *, force: bool = False) -> None:
        """Read the backlog from the store unless read within the last few seconds."""
        mono = time.monotonic()
        if not force and mono - self._backlog_at < BACKLOG_CACHE_S:
            return
        self._backlog_at = mono
        now_ms = int(time.time() * 1000)
        try:
            depth, retrying, oldest = await store.deliveries.backlog()
        except Exception:  # the scrape still answers with the process's own numbers
            log.warning("metrics: reading the delivery backlog failed", exc_info=True)
            self._backlog.backlog = None
            return
        age = max(0.0, (now_ms - oldest) / 1000) if oldest is not None else 0.0
        self._backlog.backlog = Backlog(depth, retrying, age)

    def render(self) -> bytes:
        """The Prometheus text: every process's numbers in multiprocess mode, else this process's."""
        if not self.multiproc_dir:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiproc_dir)  # type: ignore[no-untyped-call]
        registry.register(self._backlog)
        return generate_latest(registry)

    def process_exited(self) -> None:
        """Multiprocess mode: this process's live gauges leave the directory (its counters stay, so totals
        do not fall when a process stops)."""
        if self.multiproc_dir:
            multiprocess.mark_process_dead(os.getpid(), self.multiproc_dir)  # type: ignore[no-untyped-call]
