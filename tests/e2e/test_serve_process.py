"""``eventstreams serve`` as a real process: first-account bootstrap,
environment credentials, migrations, and several processes on one PostgreSQL."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import requests
from twilio.rest import Client

from tests.conftest import drop_pg_database, pg_database
from tests.e2e.helpers import free_port, spawn, stop, wait_healthy


def test_first_account_created_once_and_printed_once(tmp_path: Path, database: str) -> None:
    env = {"EVENTSTREAMS_DATABASE_URL": database, "EVENTSTREAMS_DATA_DIR": str(tmp_path)}
    port = free_port()
    log = tmp_path / "first.log"
    proc = spawn(["serve", "--port", str(port)], env, log)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
    finally:
        stop(proc)
    text = log.read_text()
    sid = re.search(r"EVENTSTREAMS_ACCOUNT_SID=(AC[0-9a-f]{32})", text)
    token = re.search(r"EVENTSTREAMS_AUTH_TOKEN=([0-9a-f]{32})", text)
    assert sid and token
    # second start: nothing new created, nothing printed, the credentials still work
    log2 = tmp_path / "second.log"
    proc = spawn(["serve", "--port", str(port)], env, log2)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        assert "EVENTSTREAMS_AUTH_TOKEN" not in log2.read_text()
        client = Client(sid.group(1), token.group(1))
        client.events.base_url = url
        assert len(client.events.v1.event_types.list(limit=3)) == 3
    finally:
        stop(proc)
    assert (tmp_path / "secret.key").exists()


def test_env_credentials_and_migrate_command(tmp_path: Path, database: str) -> None:
    sid, token = "AC" + "ab" * 16, "cd" * 16
    env = {
        "EVENTSTREAMS_DATABASE_URL": database,
        "EVENTSTREAMS_DATA_DIR": str(tmp_path),
        "EVENTSTREAMS_ACCOUNT_SID": sid,
        "EVENTSTREAMS_AUTH_TOKEN": token,
    }
    import os

    out = subprocess.run(
        [sys.executable, "-m", "eventstreams.cli.main", "migrate"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "001_control_plane" in out.stdout
    again = subprocess.run(
        [sys.executable, "-m", "eventstreams.cli.main", "migrate"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "up to date" in again.stdout
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = spawn(
        ["serve", "--port", str(port)], {**env, "EVENTSTREAMS_BASE_URL": "https://events.example.org"}, tmp_path / "log"
    )
    try:
        wait_healthy(url, proc)
        client = Client(sid, token)
        client.events.base_url = url
        sink = client.events.v1.sinks.create(
            description="d", sink_type="segment", sink_configuration={"write_key": "k"}
        )
        assert sink.url == f"https://events.example.org/v1/Sinks/{sink.sid}"
        assert requests.get(f"{url}/v1/Sinks", auth=(sid, "wrong"), timeout=5).status_code == 401
    finally:
        stop(proc)


def test_two_processes_share_one_postgresql(tmp_path: Path) -> None:
    name = f"es_e2e_{tmp_path.name[-8:]}".replace("-", "_")
    db = pg_database(name)
    sid, token = "AC" + "12" * 16, "34" * 16
    env = {
        "EVENTSTREAMS_DATABASE_URL": db,
        "EVENTSTREAMS_DATA_DIR": str(tmp_path),
        "EVENTSTREAMS_ACCOUNT_SID": sid,
        "EVENTSTREAMS_AUTH_TOKEN": token,
    }
    ports = [free_port(), free_port()]
    # started together: migrations must run exactly once (advisory lock)
    procs = [spawn(["serve", "--port", str(p)], env, tmp_path / f"{p}.log") for p in ports]
    try:
        for p, proc in zip(ports, procs, strict=True):
            wait_healthy(f"http://127.0.0.1:{p}", proc)
        clients = []
        for p in ports:
            c = Client(sid, token)
            c.events.base_url = f"http://127.0.0.1:{p}"
            clients.append(c)
        made = [
            c.events.v1.sinks.create(description=f"via {i}", sink_type="segment", sink_configuration={"write_key": "k"})
            for i, c in enumerate(clients)
        ]
        for c in clients:
            assert {s.sid for s in c.events.v1.sinks.list()} == {m.sid for m in made}
    finally:
        for proc in procs:
            stop(proc)
        drop_pg_database(name)
