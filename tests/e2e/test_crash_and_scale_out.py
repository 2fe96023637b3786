"""Nothing acknowledged is lost: kill -9 real processes mid-stream; and
several workers share one PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from eventstreams.catalog import builtin_examples
from tests.conftest import Receiver, drop_pg_database, pg_database
from tests.e2e.helpers import free_port, spawn, stop, wait_healthy

SID, TOKEN = "AC" + "5e" * 16, "7a" * 16
DATA = builtin_examples()["Messaging.MessageStatus"][max(builtin_examples()["Messaging.MessageStatus"])]


def _env(db: str, tmp: Path, **extra: str) -> dict[str, str]:
    return {
        "EVENTSTREAMS_DATABASE_URL": db,
        "EVENTSTREAMS_DATA_DIR": str(tmp),
        "EVENTSTREAMS_ACCOUNT_SID": SID,
        "EVENTSTREAMS_AUTH_TOKEN": TOKEN,
        "EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS": "true",
        "EVENTSTREAMS_RETRY_FIRST_DELAY": "0.05",
        "EVENTSTREAMS_RETRY_MAX_DELAY": "0.5",
        "EVENTSTREAMS_POLL_INTERVAL": "0.2",
        "EVENTSTREAMS_LEASE_SECONDS": "3",
        **extra,
    }


def _setup_sink(url: str, receiver: Receiver, batch: bool, path: str = "/hook") -> str:
    r = requests.post(
        f"{url}/v1/Sinks",
        data={
            "Description": "crash",
            "SinkType": "webhook",
            "SinkConfiguration": json.dumps(
                {"destination": receiver.url + path, "method": "POST", "batch_events": batch}
            ),
        },
        auth=(SID, TOKEN),
        timeout=5,
    )
    sink = str(r.json()["sid"])
    requests.post(
        f"{url}/v1/Subscriptions",
        data={
            "Description": "c",
            "SinkSid": sink,
            "Types": json.dumps({"type": "com.twilio.messaging.message.delivered"}),
        },
        auth=(SID, TOKEN),
        timeout=5,
    ).raise_for_status()
    return sink


class Publisher(threading.Thread):
    """Publishes batches until stopped; remembers only acknowledged ids."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__(daemon=True)
        self.url, self.prefix = url, prefix
        self.acked: set[str] = set()
        self.halt = threading.Event()
        self.n = 0

    def run(self) -> None:
        session = requests.Session()
        while not self.halt.is_set():
            batch = [
                {"specversion": "1.0", "type": "com.twilio.messaging.message.delivered", "source": "/crash",
                 "id": f"{self.prefix}-{self.n + i}", "data": DATA}
                for i in range(50)
            ]  # fmt: skip
            self.n += 50
            try:
                r = session.post(
                    f"{self.url}/v1/Events",
                    data=json.dumps(batch),
                    headers={"Content-Type": "application/cloudevents-batch+json"},
                    auth=(SID, TOKEN),
                    timeout=5,
                )
            except requests.RequestException:
                time.sleep(0.05)
                continue
            if r.status_code == 201:
                self.acked |= set(r.json()["accepted"]) | set(r.json()["duplicates"])
            time.sleep(0.01)  # a steady stream (~2-4k events/s), not a flood the test then waits to drain


def _received(receiver: Receiver) -> set[str]:
    return {e["id"] for e in receiver.events("/hook")}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_server_mid_stream_loses_nothing(backend: str, tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.plan["/hook"] = [(200, 0.002)] * 100_000  # slow enough that deliveries are pending at the kill
    name = f"es_crash_{os.getpid()}"
    db = f"sqlite:///{tmp_path}/es.db" if backend == "sqlite" else pg_database(name)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(db, tmp_path)
    proc = spawn(["serve", "--port", str(port)], env, tmp_path / "serve1.log")
    try:
        wait_healthy(url, proc)
        _setup_sink(url, receiver, batch=False)
        pub = Publisher(url, "a")
        pub.start()
        time.sleep(2.0)
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: publishing and delivering
        proc.wait(5)
        acked_before = len(pub.acked)
        assert acked_before > 0
        time.sleep(0.5)
        proc = spawn(["serve", "--port", str(port)], env, tmp_path / "serve2.log")
        wait_healthy(url, proc)
        time.sleep(1.0)
        pub.halt.set()
        pub.join(10)
        assert len(pub.acked) > acked_before  # publishing resumed after the restart
        receiver.wait_for(lambda: pub.acked <= _received(receiver), timeout=90)
    finally:
        stop(proc)
        receiver.close()
        if backend == "postgres":
            drop_pg_database(name)
    missing = pub.acked - _received(receiver)
    assert not missing, f"{len(missing)} acknowledged events never arrived"


def test_workers_share_postgresql_and_take_over_a_killed_one(tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.plan["/hook"] = [(200, 0.001)] * 100_000
    name = f"es_scale_{os.getpid()}"
    db = pg_database(name)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = spawn(["serve", "--port", str(port)], _env(db, tmp_path, EVENTSTREAMS_DELIVERY="false"), tmp_path / "api.log")
    workers: list[Any] = []
    try:
        wait_healthy(url, api)
        _setup_sink(url, receiver, batch=True)
        workers = [spawn(["worker"], _env(db, tmp_path), tmp_path / f"w{i}.log") for i in range(2)]
        # both delivering before the stream starts (a loaded machine takes seconds to start a process)
        receiver.wait_for(lambda: all("delivering" in (tmp_path / f"w{i}.log").read_text() for i in range(2)), 60)
        pub = Publisher(url, "s")
        pub.start()
        receiver.wait_for(lambda: len(receiver.events("/hook")) >= 200, timeout=60)
        before = [e["id"] for e in receiver.events("/hook")]
        # in normal operation the two workers never send the same delivery twice
        assert before and len(before) == len(set(before)), len(before) - len(set(before))
        os.kill(workers[0].pid, signal.SIGKILL)  # its leases expire (3 s) and the other worker takes over
        time.sleep(1.0)
        pub.halt.set()
        pub.join(10)
        receiver.wait_for(lambda: pub.acked <= _received(receiver), timeout=60)
        ids = [e["id"] for e in receiver.events("/hook")]
        duplicates = len(ids) - len(set(ids))
        # duplicates are allowed (at-least-once) but only from the killed worker's leases: at most
        # chunk (500) x pipelines (2) deliveries it may have sent without recording them
        assert duplicates <= 1000, duplicates
        logs = "".join((tmp_path / f"w{i}.log").read_text() for i in range(2))
        assert logs.count("delivering") == 2
    finally:
        for w in workers:
            stop(w)
        stop(api)
        receiver.close()
        drop_pg_database(name)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for whoever adopted it to reap it has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_delivery_process_killed_mid_stream_is_restarted_and_loses_nothing(backend: str, tmp_path: Path) -> None:
    """serve delivers from a child process: kill -9 it mid-delivery, serve starts another, every acknowledged
    event arrives (on SQLite serve releases the dead child's leases; on PostgreSQL they expire, as any dead
    worker's do); kill -9 serve, and its delivery process does not outlive it."""
    receiver = Receiver()
    receiver.plan["/hook"] = [(200, 0.002)] * 100_000
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    name = f"es_child_{os.getpid()}"
    db = f"sqlite:///{tmp_path}/es.db" if backend == "sqlite" else pg_database(name)
    env = _env(db, tmp_path, EVENTSTREAMS_DELIVERY_PROCESS="true")
    proc = spawn(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    try:
        wait_healthy(url, proc)
        [child] = _children(proc.pid)
        _setup_sink(url, receiver, batch=False)
        pub = Publisher(url, "d")
        pub.start()
        receiver.wait_for(lambda: len(_received(receiver)) > 200, timeout=30)
        os.kill(child, signal.SIGKILL)  # mid-delivery: batches leased, some sent, none recorded
        receiver.wait_for(lambda: [c for c in _children(proc.pid) if c != child], timeout=30)
        pub.halt.set()
        pub.join(10)
        receiver.wait_for(lambda: pub.acked <= _received(receiver), timeout=90)
        assert requests.get(f"{url}/readyz", timeout=5).json()["checks"]["dispatcher"]["ok"]
        [second] = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        deadline = time.monotonic() + 10
        while _alive(second) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling /proc: there is no event to await for another process's exit
        assert not _alive(second), "the delivery process outlived serve"
    finally:
        stop(proc)
        receiver.close()
        if backend == "postgres":
            drop_pg_database(name)
    missing = pub.acked - _received(receiver)
    assert not missing, f"{len(missing)} acknowledged events never arrived"


def test_sqlite_delivery_processes_share_the_sinks_and_one_killed_loses_nothing(tmp_path: Path) -> None:
    """Two delivery processes on one SQLite file, each with its share of the sinks: kill -9 one mid-delivery,
    serve releases its leases and starts another in its place, every sink gets every acknowledged event,
    and the other process went on untouched."""
    from eventstreams.store.sqlite import sink_shard

    receiver = Receiver()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(f"sqlite:///{tmp_path}/es.db", tmp_path, EVENTSTREAMS_DELIVERY_PROCESS="true",
               EVENTSTREAMS_DELIVERY_PROCESSES="2", EVENTSTREAMS_LEASE_SECONDS="60")  # fmt: skip
    proc = spawn(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    try:
        wait_healthy(url, proc)
        first, second = _children(proc.pid)
        shares: dict[int, list[str]] = {0: [], 1: []}
        while not all(shares.values()):  # each process gets a sink to deliver
            path = f"/hook{sum(len(v) for v in shares.values())}"
            receiver.plan[path] = [(200, 0.002)] * 100_000
            shares[sink_shard(_setup_sink(url, receiver, batch=False, path=path), 2)].append(path)
        paths = shares[0] + shares[1]
        pub = Publisher(url, "s")
        pub.start()
        receiver.wait_for(lambda: all(len(receiver.events(p)) > 100 for p in paths), timeout=60)
        os.kill(first, signal.SIGKILL)  # mid-delivery; its leases last 60 s, so only their release brings them back
        pub.halt.set()
        pub.join(10)
        receiver.wait_for(lambda: len(_children(proc.pid)) == 2 and first not in _children(proc.pid), timeout=30)
        receiver.wait_for(lambda: all(pub.acked <= {e["id"] for e in receiver.events(p)} for p in paths), timeout=40)
        assert second in _children(proc.pid)  # the other one was not restarted
        assert requests.get(f"{url}/readyz", timeout=5).json()["checks"]["dispatcher"]["ok"]
    finally:
        stop(proc)
        receiver.close()
    for p in paths:
        missing = pub.acked - {e["id"] for e in receiver.events(p)}
        assert not missing, f"{p}: {len(missing)} acknowledged events never arrived"

