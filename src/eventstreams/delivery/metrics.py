"""Delivery metrics as a lifecycle hook, in Prometheus form.

Each runtime has a registry of its own (tests start many servers in one
process; the global registry would refuse the second). Served at
``GET /metrics`` when ``EVENTSTREAMS_METRICS_TOKEN`` is set (api/app.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram

from ..store.records import AlertRow, SinkRow
from .hooks import DeliveryHook, Round


class DeliveryMetrics(DeliveryHook):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "eventstreams_deliveries",
            "Delivery attempts by result (delivered, retried, dead_lettered, skipped, expired)",
            ["result"],
            registry=registry,
        )
        self.send_seconds = Histogram(
            "eventstreams_sink_send_seconds",
            "Time one leased chunk took to send (all its requests)",
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        )
        self.alerts = Counter("eventstreams_alerts", "Alerts raised", registry=registry)
        # children bound once: .labels() takes a lock and checks the label on every call
        self._delivered, self._retried, self._dead, self._skipped, self._expired = (
            self.deliveries.labels(result)
            for result in ("delivered", "retried", "dead_lettered", "skipped", "expired")
        )

    def after_commit(self, r: Round, alerts: Sequence[AlertRow]) -> None:
        if r.skips:
            self._skipped.inc(len(r.skips))
        if r.delivered:
            self._delivered.inc(r.delivered)
        if r.dead:
            self._dead.inc(len(r.dead))
        if len(r.failed) > len(r.dead):
            self._retried.inc(len(r.failed) - len(r.dead))
        if r.attempts:
            self.send_seconds.observe(r.send_seconds)
        if alerts:
            self.alerts.inc(len(alerts))

    def on_expired(self, sink: SinkRow, count: int) -> None:
        self._expired.inc(count)
