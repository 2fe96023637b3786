"""Delivery metrics as a lifecycle hook: the runtime's :class:`~eventstreams.metrics.Metrics`, counted
after each commit (docs/operations.md)."""

from __future__ import annotations

from collections.abc import Sequence

from ..metrics import Metrics, observe_many
from ..store.records import AlertRow, SinkRow
from .hooks import DeliveryHook, Round
from .policy import Action


class DeliveryMetrics(DeliveryHook):
    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def after_commit(self, r: Round, alerts: Sequence[AlertRow]) -> None:
        kind = r.sink.sink_type
        count = self.m.deliveries
        if r.skips:
            count.labels(kind, "skipped").inc(len(r.skips))
        if r.delivered:
            count.labels(kind, "delivered").inc(r.delivered)
            now_ms = r.now_ms
            observe_many(self.m.delivery_latency.labels(kind), [
                max(0.0, (now_ms - a.delivery.window_start) / 1000)
                for a in r.attempts if a.decision.action is Action.DELIVERED
            ])  # fmt: skip
        if r.dead:
            count.labels(kind, "dead_lettered").inc(len(r.dead))
        if len(r.failed) > len(r.dead):
            count.labels(kind, "retried").inc(len(r.failed) - len(r.dead))
        if r.attempts:
            self.m.send_seconds.labels(kind).observe(r.send_seconds)
        if alerts:
            self.m.alerts.inc(len(alerts))

    def on_expired(self, sink: SinkRow, count: int) -> None:
        self.m.deliveries.labels(sink.sink_type, "expired").inc(count)
