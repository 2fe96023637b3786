"""The object source as real processes: the `eventstreams serve` running a sync (asked for by `eventstreams
sources sync`) killed with SIGKILL in the middle of a pass resumes from its last committed page (no row lost,
none twice, the pages before the kill not read again), on both stores and into both warehouse targets; and
on PostgreSQL, several `eventstreams worker` processes share scheduled sources without ever syncing one twice at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from eventstreams.warehouse.targets import open_target
from tests.conftest import database_url, drop_pg_database
from tests.e2e.helpers import free_port, spawn, stop, wait_healthy

CLI = [sys.executable, "-m", "eventstreams.cli.main"]


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)


def _sandbox(tmp: Path, messages: int, calls: int) -> tuple[subprocess.Popen[bytes], str, dict[str, Any]]:
    """A sandbox process on its own database, seeded; returns it, its URL and the seed report."""
    env = {"EVENTSTREAMS_SANDBOX_DATABASE_URL": f"sqlite:///{tmp}/sandbox.db", "EVENTSTREAMS_DATA_DIR": str(tmp)}
    seeded = _run(["sandbox", "seed", "--messages", str(messages), "--calls", str(calls), "--subaccounts", "0",
                   "--seed", "3", "--json"], env)  # fmt: skip
    assert seeded.returncode == 0, seeded.stderr
    port = free_port()
    proc = spawn(["sandbox", "--port", str(port)], env, tmp / "sandbox.log")
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    return proc, url, json.loads(seeded.stdout)


def _serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """An `eventstreams serve` the CLI talks to; its first account is the environment's."""
    port = free_port()
    proc = spawn(["serve", "--port", str(port)], env, log)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    return proc, url


def _credentials(env: dict[str, str]) -> None:
    import secrets

    env["EVENTSTREAMS_ACCOUNT_SID"] = "AC" + secrets.token_hex(16)
    env["EVENTSTREAMS_AUTH_TOKEN"] = secrets.token_hex(16)


def _sandbox_messages(tmp: Path) -> set[str]:
    import sqlite3

    with sqlite3.connect(tmp / "sandbox.db") as db:
        return {r[0] for r in db.execute("SELECT sid FROM sandbox_messages")}


def _store_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return list(db.execute(sql))
    import psycopg

    with psycopg.connect(url) as conn:
        return list(conn.execute(sql))


@pytest.mark.parametrize(("backend", "warehouse"), [("sqlite", "duckdb"), ("postgres", "duckdb"),
                                                     ("postgres", "postgres")])  # fmt: skip
def test_killed_sync_resumes_from_its_last_committed_page(backend: str, warehouse: str, tmp_path: Path) -> None:
    sandbox, sandbox_url, report = _sandbox(tmp_path, 12_000, 100)
    db_url, pg_name = database_url(backend, tmp_path)
    main = report["accounts"][0]
    # a PostgreSQL warehouse: the store's own database, as the workers' test below has it
    warehouse_url = db_url if warehouse == "postgres" else f"duckdb:///{tmp_path}/warehouse.duckdb"
    env = {"EVENTSTREAMS_DATABASE_URL": db_url, "EVENTSTREAMS_DATA_DIR": str(tmp_path),
           "EVENTSTREAMS_WAREHOUSE_URL": warehouse_url,
           "EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS": "true", "EVENTSTREAMS_LEASE_SECONDS": "10",
           "TWILIO_ACCOUNT_SID": main["sid"], "TWILIO_AUTH_TOKEN": main["auth_token"]}  # fmt: skip
    _credentials(env)
    serve: subprocess.Popen[bytes] | None = None
    try:
        serve, env["EVENTSTREAMS_URL"] = _serve(env, tmp_path / "serve1.log")
        added = _run(["sources", "add-twilio", "Killed", "--schedule", "manual", "--base-url", sandbox_url,
                      "--collections", "messages", "-o", "json"], env)  # fmt: skip
        assert added.returncode == 0, added.stderr
        source_sid = json.loads(added.stdout)["sid"]
        # slow the sandbox down (5xx, retried with backoff) so that the kill lands in the middle of the pass
        r = requests.post(f"{sandbox_url}/2010-04-01/Accounts/{main['sid']}/Sandbox.json",
                          auth=(main["sid"], main["auth_token"]), data={"ServerErrorRatio": "0.5"}, timeout=10)
        assert r.status_code == 200, r.text

        # the CLI asks the server for a sync and follows it; the server runs it
        first = subprocess.Popen([*CLI, "sources", "sync", "Killed", "-o", "json"], env={**os.environ, **env},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 90
        committed: list[tuple[Any, ...]] = []
        while not committed:  # the pass has committed at least two pages and has more to go
            assert first.poll() is None, "the sync ended before it could be killed"
            assert time.monotonic() < deadline
            committed = _store_rows(db_url, "SELECT resume_uri FROM object_source_state WHERE resume_uri LIKE "
                                            "'%PageToken%' AND resume_uri NOT LIKE '%Page=1&%'")  # fmt: skip
            time.sleep(0.02)
        serve.send_signal(signal.SIGKILL)
        serve.wait(10)
        assert first.wait(30) == 4  # the follower: the server cannot be reached
        assert first.stderr is not None and "cannot reach" in first.stderr.read().decode()
        requests.post(f"{sandbox_url}/2010-04-01/Accounts/{main['sid']}/Sandbox.json",
                      auth=(main["sid"], main["auth_token"]), data={"ServerErrorRatio": "0"}, timeout=10)  # fmt: skip
        # what the killed process had loaded, and the page it would have read next
        t = open_target(env["EVENTSTREAMS_WAREHOUSE_URL"], read_only=True)
        try:
            loaded_before = t.query("SELECT count(*) FROM killed.messages")[1][0][0]
        finally:
            t.close()
        assert 0 < loaded_before < 12_000

        serve, env["EVENTSTREAMS_URL"] = _serve(env, tmp_path / "serve2.log")
        while True:  # the dead process's lease runs out (10 s), then the sync goes on
            again = _run(["sources", "sync", "Killed", "-o", "json"], env)
            if again.returncode != 2:
                break
            assert "is syncing" in again.stderr
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert again.returncode == 0, again.stderr + again.stdout
        run = json.loads(again.stdout)
        assert run["status"] == "succeeded" and run["kind"] == "full"  # still the first, full pass
        # resumed: the pages committed before the kill were not read again
        assert run["rows_read"] <= 12_000 - loaded_before + 1000

        t = open_target(env["EVENTSTREAMS_WAREHOUSE_URL"], read_only=True)
        try:
            ids = [r[0] for r in t.query("SELECT id FROM killed.messages")[1]]
        finally:
            t.close()
        assert len(ids) == len(set(ids)), "duplicates"
        assert set(ids) == _sandbox_messages(tmp_path)
        statuses = [r[0] for r in _store_rows(db_url, f"SELECT status FROM object_source_runs WHERE source_sid = "
                                                      f"'{source_sid}' ORDER BY date_started")]  # fmt: skip
        assert statuses == ["interrupted", "succeeded"]
    finally:
        if serve is not None:
            stop(serve)
        stop(sandbox)
        if pg_name:
            drop_pg_database(pg_name)


def test_workers_share_scheduled_sources_and_never_sync_one_twice(tmp_path: Path) -> None:
    sandbox, sandbox_url, report = _sandbox(tmp_path, 1500, 100)
    db_url, pg_name = database_url("postgres", tmp_path)
    main = report["accounts"][0]
    env = {"EVENTSTREAMS_DATABASE_URL": db_url, "EVENTSTREAMS_DATA_DIR": str(tmp_path),
           "EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS": "true", "EVENTSTREAMS_WAREHOUSE_URL": db_url,
           "TWILIO_ACCOUNT_SID": main["sid"], "TWILIO_AUTH_TOKEN": main["auth_token"]}  # fmt: skip
    workers: list[subprocess.Popen[bytes]] = []
    _credentials(env)
    api: subprocess.Popen[bytes] | None = None
    try:
        # the API the CLI talks to; it syncs nothing itself, so every run is a worker's
        api, env["EVENTSTREAMS_URL"] = _serve({**env, "EVENTSTREAMS_SOURCE_SYNCS": "false"}, tmp_path / "api.log")
        names = [f"Shared {i}" for i in range(4)]
        for name in names:  # disabled while the workers start, then all enabled at once
            added = _run(["sources", "add-twilio", name, "--schedule", "1h", "--base-url", sandbox_url, "--disable",
                          "--collections", "messages,addresses"], env)  # fmt: skip
            assert added.returncode == 0, added.stderr
        workers = [spawn(["worker"], env, tmp_path / f"worker{i}.log") for i in range(3)]
        for name in names:
            assert _run(["sources", "configure", name, "--enable"], env).returncode == 0
        deadline = time.monotonic() + 90
        while True:
            done = _store_rows(db_url, "SELECT count(*) FROM object_source_runs WHERE status <> 'running'")[0][0]
            if done >= len(names):
                break
            assert all(w.poll() is None for w in workers), "a worker died"
            assert time.monotonic() < deadline, "the scheduled runs did not finish"
            time.sleep(0.1)
        runs = _store_rows(db_url, "SELECT source_sid, status, trigger FROM object_source_runs")
        assert sorted(r[1] for r in runs) == ["succeeded"] * len(names)  # each source once, none twice
        assert len({r[0] for r in runs}) == len(names) and {r[2] for r in runs} == {"scheduled"}
        logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(3)]
        assert sum(log.count(" synced: succeeded") for log in logs) == len(names)
        t = open_target(db_url)
        try:
            for name in names:
                schema = name.lower().replace(" ", "_")
                n = t.query(f"SELECT count(*) FROM {schema}.messages")[1][0][0]
                assert n == len(_sandbox_messages(tmp_path))
        finally:
            t.close()
    finally:
        for w in workers:
            stop(w)
        if api is not None:
            stop(api)
        stop(sandbox)
        if pg_name:
            drop_pg_database(pg_name)
