"""``eventstreams sandbox`` as a real process: its own database under ./data, the first
account's credentials printed once, state kept across restarts, the sandbox not mounted in
a plain ``serve``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import requests
from twilio.rest import Client

from eventstreams.cli.main import sandbox_settings
from tests.e2e.helpers import free_port, spawn, stop, wait_healthy


def _client(sid: str, token: str, url: str) -> Client:
    c = Client(sid, token)
    c.api.base_url = url
    return c


def test_sandbox_process_keeps_state_across_restarts(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "first.log"
    proc = spawn(["sandbox", "--port", str(port)], {}, log, cwd=tmp_path)
    try:
        wait_healthy(url, proc)
        text = log.read_text()
        assert f"a local Twilio at {url}" in text
        sid = re.search(r"EVENTSTREAMS_ACCOUNT_SID=(AC[0-9a-f]{32})", text)
        token = re.search(r"EVENTSTREAMS_AUTH_TOKEN=([0-9a-f]{32})", text)
        assert sid and token
        sent = _client(sid.group(1), token.group(1), url).messages.create(
            to="+14155552671", from_="+15005550006", body="kept"
        )
    finally:
        stop(proc)
    assert (tmp_path / "data" / "sandbox.db").exists()  # its own database, in ./data by default
    assert not (tmp_path / "data" / "eventstreams.db").exists()
    log2 = tmp_path / "second.log"
    proc = spawn(["sandbox", "--port", str(port)], {}, log2, cwd=tmp_path)
    try:
        wait_healthy(url, proc)
        assert "EVENTSTREAMS_AUTH_TOKEN" not in log2.read_text()
        again = _client(sid.group(1), token.group(1), url).messages(sent.sid).fetch()
        assert again.body == "kept"
    finally:
        stop(proc)


def test_serve_does_not_mount_the_sandbox_unless_configured(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = {"EVENTSTREAMS_DATA_DIR": str(tmp_path), "EVENTSTREAMS_DATABASE_URL": f"sqlite:///{tmp_path}/es.db"}
    proc = spawn(["serve", "--port", str(port)], env, log)
    try:
        wait_healthy(url, proc)
        text = log.read_text()
        sid = re.search(r"EVENTSTREAMS_ACCOUNT_SID=(AC[0-9a-f]{32})", text)
        token = re.search(r"EVENTSTREAMS_AUTH_TOKEN=([0-9a-f]{32})", text)
        assert sid and token
        path = f"{url}/2010-04-01/Accounts/{sid.group(1)}/Messages.json"
        off = requests.get(path, auth=(sid.group(1), token.group(1)), timeout=5)
        assert off.status_code == 404 and off.json()["code"] == 20404
    finally:
        stop(proc)
    proc = spawn(["serve", "--port", str(port)], {**env, "EVENTSTREAMS_SANDBOX": "true"}, log)
    try:
        wait_healthy(url, proc)
        on = requests.get(path, auth=(sid.group(1), token.group(1)), timeout=5)
        assert on.status_code == 200 and on.json()["messages"] == []
    finally:
        stop(proc)


def test_sandbox_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("EVENTSTREAMS_")]:
        monkeypatch.delenv(name)
    s = sandbox_settings()
    assert (s.port, s.database_url, s.sandbox, s.allow_private_destinations) == (
        8090, "sqlite:///./data/sandbox.db", True, True)  # fmt: skip
    assert sandbox_settings(host="0.0.0.0").allow_private_destinations is False  # reachable by others: no
    monkeypatch.setenv("EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS", "false")
    assert sandbox_settings(port=9999).allow_private_destinations is False
    assert sandbox_settings(port=9999).port == 9999
