"""The events warehouse over HTTP (/v1/EventsWarehouse) and the CLI on it, on both backends: created,
changed and deleted with Twilio's JSON and errors, schema names owned across accounts, accounts isolated,
and "load now" queued for the server's scheduler, which loads it."""

from __future__ import annotations

import json
from pathlib import Path

import requests
from segment.analytics import Client as SegmentClient

from eventstreams.warehouse.targets import open_target
from tests.clihelp import cli_env, run_cli
from tests.conftest import Server, own_server
from tests.integration.test_fuzz_openapi import twilio_error_problem

PATH = "/v1/EventsWarehouse"


def _call(srv: Server, auth: tuple[str, str], method: str, path: str = PATH, **data: str) -> requests.Response:
    return requests.request(method, srv.url + path, auth=auth, data=data or None, timeout=10)


def _error(r: requests.Response, status: int) -> str:
    assert r.status_code == status, r.text
    assert twilio_error_problem(r) is None, r.text
    return str(r.json()["message"])


def test_configure_fetch_delete_and_errors(server: Server) -> None:
    auth = server.new_account("EW api")
    assert "no events warehouse" in _error(_call(server, auth, "GET"), 404)
    assert "SchemaName" in _error(_call(server, auth, "POST", Enabled="true"), 400)  # the first needs a schema
    assert "SchemaName" in _error(_call(server, auth, "POST", SchemaName="Not-Valid"), 400)
    assert "Interval" in _error(_call(server, auth, "POST", SchemaName="ew_api", Interval="5"), 400)
    made = _call(server, auth, "POST", SchemaName="ew_api", Interval="600")
    assert made.status_code == 201, made.text
    assert made.json()["schema_name"] == "ew_api" and made.json()["interval"] == 600 and made.json()["enabled"]
    changed = _call(server, auth, "POST", Enabled="false")
    assert changed.status_code == 200 and changed.json()["enabled"] is False and changed.json()["interval"] == 600
    assert "disabled" in _error(_call(server, auth, "POST", PATH + "/Loads"), 400)
    other = server.new_account("EW other")
    assert "already used" in _error(_call(server, other, "POST", SchemaName="ew_api"), 409)  # not another's schema
    assert "no events warehouse" in _error(_call(server, other, "GET"), 404)  # nor its warehouse
    assert _call(server, auth, "DELETE").status_code == 204
    _error(_call(server, auth, "DELETE"), 404)
    r = requests.get(server.url + PATH, timeout=10)
    assert r.status_code == 401 and twilio_error_problem(r) is None


def test_cli_configures_and_loads_through_the_scheduler(backend: str, tmp_path: Path) -> None:
    warehouse = f"duckdb:///{tmp_path}/wh.duckdb"
    with own_server(backend, tmp_path, source_syncs=True, warehouse_url=warehouse) as srv:
        sid, token = srv.new_account("EW cli")
        account = srv.call(srv.services.store.accounts.get(sid))
        _, key = srv.call(srv.services.sources.create(account, "app"))
        SegmentClient(key, host=srv.url, sync_mode=True).track("9", "Order Placed", {"total": 12}, message_id="ew-1")
        srv.services.events_warehouse.settle_s = 0.0  # PostgreSQL's settle window would hold the row a minute
        env = cli_env(srv.url, sid, token)
        made = run_cli(["warehouse", "events", "--schema", "ew_cli", "--interval", "3600", "-o", "json"], env)
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["schema_name"] == "ew_cli"
        loaded = run_cli(["warehouse", "load-events", "-o", "json"], env, timeout=120)
        assert loaded.returncode == 0, loaded.stderr
        assert json.loads(loaded.stdout)["rows_loaded"] >= 2  # tracks + order_placed
        t = open_target(warehouse, read_only=True)
        try:
            assert t.query("SELECT id, total FROM ew_cli.order_placed")[1] == [("ew-1", 12)]
        finally:
            t.close()
        shown = run_cli(["warehouse", "events"], env)
        assert shown.returncode == 0 and "ew_cli" in shown.stdout
