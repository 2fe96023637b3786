"""Multiprocess metrics with real processes: two `serve`s (API only) and a `worker` share one PostgreSQL
and one PROMETHEUS_MULTIPROC_DIR; a scrape of either serve shows every process's counters."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Receiver, drop_pg_database, pg_database
from tests.e2e.helpers import free_port, spawn, stop, wait_healthy
from tests.e2e.test_crash_and_scale_out import DATA, SID, TOKEN, _env, _setup_sink


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = requests.get(f"{url}/metrics", headers={"Authorization": "Bearer m"}, timeout=10)
    r.raise_for_status()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(r.text)
        for s in f.samples
    }


def test_one_scrape_adds_up_two_servers_and_a_worker(tmp_path: Path) -> None:
    name = f"es_e2e_{uuid.uuid4().hex[:8]}"
    db = pg_database(name)
    receiver = Receiver()
    shared = tmp_path / "prom"
    shared.mkdir()  # wiped before the processes start, as docs/operations.md says
    extra = {"PROMETHEUS_MULTIPROC_DIR": str(shared), "EVENTSTREAMS_METRICS_TOKEN": "m"}
    procs = []
    try:
        urls = []
        for i in range(2):
            port = free_port()
            env = _env(db, tmp_path, EVENTSTREAMS_DELIVERY="false", EVENTSTREAMS_SOURCE_SYNCS="false", **extra)
            procs.append(spawn(["serve", "--port", str(port)], env, tmp_path / f"api{i}.log"))
            urls.append(f"http://127.0.0.1:{port}")
            wait_healthy(urls[-1], procs[-1])
        procs.append(spawn(["worker"], _env(db, tmp_path, EVENTSTREAMS_SOURCE_SYNCS="false", **extra),
                           tmp_path / "worker.log"))  # fmt: skip
        _setup_sink(urls[0], receiver, batch=False)
        for url, n in zip(urls, (2, 3), strict=True):
            batch = [{"specversion": "1.0", "type": "com.twilio.messaging.message.delivered", "source": "/e2e",
                      "id": f"{url[-5:]}-{i}", "data": DATA} for i in range(n)]  # fmt: skip
            r = requests.post(f"{url}/v1/Events", data=json.dumps(batch), auth=(SID, TOKEN), timeout=10,
                              headers={"Content-Type": "application/cloudevents-batch+json"})  # fmt: skip
            assert r.status_code == 201, r.text
        receiver.wait_for(lambda: len(receiver.events("/hook")) == 5, timeout=30)
        deadline = time.monotonic() + 20
        while True:  # the worker counts after its commit, a moment after the receiver saw the request
            s = _scrape(urls[1])
            delivered = s.get(("eventstreams_deliveries_total", (("outcome", "delivered"), ("sink_type", "webhook"))))
            if delivered == 5 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert delivered == 5, "the worker's deliveries, read by a serve"
        assert s[("eventstreams_events_accepted_total", (("source", "publish"),))] == 5, "both serves' events"
        posts = {k: v for k, v in s.items() if k[0] == "eventstreams_http_requests_total" and ("route", "/v1/Events") in k[1]}
        assert sum(posts.values()) == 2
        assert ("eventstreams_delivery_queue_depth", ()) in s  # the store's, read by the scraped process
    finally:
        for p in procs:
            stop(p)
        receiver.close()
        drop_pg_database(name)
