"""metrics.py: what the recording methods count, the backlog gauges, and multiprocess mode across real
processes (each writes its own files under PROMETHEUS_MULTIPROC_DIR; one scrape reads them all)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventstreams.metrics import Backlog, Metrics
from eventstreams.objectsource.sync import CollectionProgress, RunReport
from eventstreams.runtime import Runtime
from eventstreams.store.records import ObjectSourceRunRow
from eventstreams.warehouse.events import LoadReport


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_syncs_and_loads_are_counted() -> None:
    m = Metrics()
    run = ObjectSourceRunRow("OR1", "AC1", "OS1", "full", "scheduled", "failed", "x", "t", "t")
    parts = [CollectionProgress("AC1", "messages", 10, 9), CollectionProgress("AC2", "messages", 5, 5),
             CollectionProgress("AC1", "calls")]  # fmt: skip
    m.record_sync(RunReport(run, parts))
    m.record_load(LoadReport("AC1", "events", rows=42))
    m.record_load(None)
    s = _samples(m.render().decode())
    assert s[("eventstreams_source_sync_rows_total", (("collection", "messages"), ("stage", "read")))] == 15
    assert s[("eventstreams_source_sync_rows_total", (("collection", "messages"), ("stage", "upserted")))] == 14
    assert ("eventstreams_source_sync_rows_total", (("collection", "calls"), ("stage", "read"))) not in s
    assert s[("eventstreams_source_sync_runs_total", (("status", "failed"),))] == 1
    assert s[("eventstreams_events_warehouse_rows_total", ())] == 42
    assert s[("eventstreams_events_warehouse_loads_total", (("status", "succeeded"),))] == 1
    assert s[("eventstreams_events_warehouse_loads_total", (("status", "failed"),))] == 1


async def test_backlog_gauges_come_from_the_store_and_are_cached(runtime: Runtime) -> None:
    m = Metrics()
    assert "eventstreams_delivery_queue_depth" not in m.render().decode()  # not read yet: no false zero
    await m.refresh(runtime.store)
    s = _samples(m.render().decode())
    assert s[("eventstreams_delivery_queue_depth", ())] == 0
    assert s[("eventstreams_delivery_oldest_pending_age_seconds", ())] == 0
    await runtime.store.close()
    await m.refresh(runtime.store)  # within the cache: the store is not asked
    assert ("eventstreams_delivery_queue_depth", ()) in _samples(m.render().decode())
    await m.refresh(runtime.store, force=True)  # asked, and failing: the gauges go rather than lie
    assert "eventstreams_delivery_queue_depth" not in m.render().decode()


CHILD = textwrap.dedent(
    """
    import sys
    from eventstreams.metrics import Metrics

    m = Metrics.from_env()
    m.accepted_published(int(sys.argv[1]))
    m.deliveries.labels("webhook", "delivered").inc(int(sys.argv[1]))
    m.delivery_latency.labels("webhook").observe(0.2)
    if sys.argv[2] == "render":
        sys.stdout.write(m.render().decode())
    m.process_exited()
    """
)


def test_multiprocess_mode_adds_up_every_process(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def run(n: int, mode: str) -> str:
        done = subprocess.run([sys.executable, "-c", CHILD, str(n), mode], env=env, capture_output=True, text=True,
                              timeout=60, check=True)  # fmt: skip
        return done.stdout

    run(2, "quiet")
    run(3, "quiet")
    s = _samples(run(4, "render"))  # the third process scrapes: its own numbers and the two exited ones'
    assert s[("eventstreams_events_accepted_total", (("source", "publish"),))] == 9
    assert s[("eventstreams_deliveries_total", (("outcome", "delivered"), ("sink_type", "webhook")))] == 9
    assert s[("eventstreams_delivery_latency_seconds_count", (("sink_type", "webhook"),))] == 3
    assert len(list(tmp_path.glob("counter_*.db"))) == 3  # one file per process


def test_the_grafana_dashboard_uses_only_metrics_that_exist() -> None:
    import json
    import re

    doc = json.loads((Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    used = {name for e in exprs for name in re.findall(r"\beventstreams_[a-z_]+", e)}
    m = Metrics()
    m._backlog.backlog = Backlog()  # the gauges exist once read
    exposed = {s.name for family in m.registry.collect() for s in family.samples}
    # histograms' buckets and counters' totals appear once observed: list what each family would expose
    for family in m.registry.collect():
        if family.type == "histogram":
            exposed |= {f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum"}
        elif family.type == "counter":
            exposed.add(f"{family.name}_total")
    assert used and used <= exposed, used - exposed


def test_observe_many_counts_what_observing_one_by_one_counts() -> None:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from eventstreams.metrics import observe_many

    amounts = [0.0, 0.004, 0.005, 0.0051, 0.3, 2.5, 2.5, 9.99, 10.0, 1e6]
    texts = []
    for many in (False, True):
        registry = CollectorRegistry()
        h = Histogram("lat_seconds", "l", ["k"], registry=registry)
        child = h.labels("webhook")
        if many:
            observe_many(child, amounts[:4])
            observe_many(child, amounts[4:])
            observe_many(child, [])
        else:
            for a in amounts:
                child.observe(a)
        texts.append(_samples(generate_latest(registry).decode()))
    plain, batched = ({k: v for k, v in t.items() if not k[0].endswith("_created")} for t in texts)
    total = ("lat_seconds_sum", (("k", "webhook"),))
    assert batched.pop(total) == pytest.approx(plain.pop(total))  # summed in another order
    assert batched == plain
    assert plain[("lat_seconds_count", (("k", "webhook"),))] == len(amounts)
