"""The object sources API (/v1/ObjectSources, Twilio-style JSON), on both backends: configuration checked
with errors naming the problem, the credential sealed and never echoed, schema names owned by one source
across accounts, accounts isolated, "sync now" queued, and the CLI's commands over the same domain."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
import requests

from tests.clihelp import cli_env
from tests.conftest import Server
from tests.integration.test_fuzz_openapi import twilio_error_problem

Auth = tuple[str, str]
TOKEN = "f" * 32
TWILIO_AC = "AC" + "1" * 32


def _post(srv: Server, auth: Auth, path: str, data: dict[str, Any] | None = None) -> requests.Response:
    return requests.post(srv.url + path, data=data or {}, auth=auth, timeout=10)


def _get(srv: Server, auth: Auth, path: str) -> requests.Response:
    return requests.get(srv.url + path if path.startswith("/") else path, auth=auth, timeout=10)


def _error(r: requests.Response, status: int) -> str:
    assert r.status_code == status, r.text
    assert twilio_error_problem(r) is None, r.text
    message: str = r.json()["message"]
    return message


def _create(srv: Server, auth: Auth, name: str, **extra: str) -> dict[str, Any]:
    data = {"FriendlyName": name, "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "Schedule": "manual",
            "BaseUrl": srv.url, **extra}  # fmt: skip
    r = _post(srv, auth, "/v1/ObjectSources", data)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture
def auth(server: Server) -> Auth:
    return server.new_account()


def test_create_fetch_list_update_delete(server: Server, auth: Auth) -> None:
    src = _create(server, auth, "Twilio Prod", StartDate="2024-01-31", Collections="messages,calls,call_feedback",
                  LookbackWindow="12h", IncludeSubaccounts="true")  # fmt: skip
    assert src["sid"].startswith("OS") and src["schema_name"] == "twilio_prod"
    assert src["collections"] == ["calls", "messages", "call_feedback"]
    assert src["start_date"] == "2024-01-31T00:00:00Z" and src["lookback_window"] == 43200
    assert src["include_subaccounts"] is True and src["credential_type"] == "auth_token"
    assert src["next_sync_at"] is None  # manual: nothing runs until asked
    assert TOKEN not in str(src)

    fetched = _get(server, auth, f"/v1/ObjectSources/{src['sid']}").json()
    assert fetched["state"] == [] and fetched["friendly_name"] == "Twilio Prod"
    assert _get(server, auth, "/v1/ObjectSources/Twilio Prod").json()["sid"] == src["sid"]  # by name too
    listed = _get(server, auth, "/v1/ObjectSources").json()
    assert [s["sid"] for s in listed["object_sources"]] == [src["sid"]]
    assert listed["meta"]["key"] == "object_sources"

    r = _post(server, auth, f"/v1/ObjectSources/{src['sid']}", {"Schedule": "0 */6 * * *", "Collections": "messages"})
    assert r.status_code == 200, r.text
    assert r.json()["schedule"] == "0 */6 * * *" and r.json()["collections"] == ["messages"]
    assert r.json()["start_date"] == "2024-01-31T00:00:00Z"  # untouched: only what is given changes

    assert requests.delete(f"{server.url}/v1/ObjectSources/{src['sid']}", auth=auth, timeout=10).status_code == 204
    assert "was not found" in _error(_get(server, auth, f"/v1/ObjectSources/{src['sid']}"), 404)
    # the schema name is free again
    assert _create(server, auth, "Again", SchemaName="twilio_prod")["schema_name"] == "twilio_prod"


def test_secret_is_sealed_at_rest_and_never_returned(server: Server, auth: Auth) -> None:
    src = _create(server, auth, "Sealed", ApiKeySid="SK" + "2" * 32, ApiKeySecret="s3cr3t-value", AuthToken="")
    assert src["credential_type"] == "api_key" and src["api_key_sid"] == "SK" + "2" * 32
    row = server.call(server.services.store.db.run(
        lambda tx: tx.one("SELECT * FROM object_sources WHERE sid = :s", s=src["sid"])))  # fmt: skip
    assert row is not None and "s3cr3t-value" not in str(dict(row))
    assert server.services.box.open(row["secret_sealed"]) == "s3cr3t-value"
    for body in (_get(server, auth, f"/v1/ObjectSources/{src['sid']}").text, _get(server, auth, "/v1/ObjectSources").text):
        assert "s3cr3t-value" not in body


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN}, "FriendlyName"),
        ({"FriendlyName": "x"}, "TwilioAccountSid"),
        ({"FriendlyName": "x", "TwilioAccountSid": "AC123", "AuthToken": TOKEN}, "not an Account SID"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC}, "Missing credentials"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "ApiKeySid": "SK" + "1" * 32},
         "not both"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "ApiKeySid": "SK" + "1" * 32}, "ApiKeySecret"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "SchemaName": "Bad-Name"},
         "SchemaName"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "SchemaName": "pg_catalog"},
         "system schema"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "Collections": "messages,faxes"},
         "faxes"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "Collections": "call_feedback"},
         "needs calls"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "StartDate": "2024-02-30"},
         "not a real date"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "StartDate": "yesterday"},
         "StartDate"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "StartDate": "0001-01-01T00:00+01:00"},
         "StartDate"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "StartDate": "0999-01-01"},
         "between the years"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "Schedule": "0 0 30 2 *"},
         "never runs"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "Schedule": "10s"},
         "shorter than a minute"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "Schedule": "61 * * * *"},
         "cron"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "LookbackWindow": "forever"},
         "LookbackWindow"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "BaseUrl": "ftp://x"},
         "BaseUrl"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "IncludeSubaccounts": "yes"},
         "IncludeSubaccounts"),
        ({"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "Colour": "red"}, "Colour"),
    ],
)
def test_bad_configuration_is_a_400_naming_the_problem(server: Server, auth: Auth, data: dict[str, str],
                                                       needle: str) -> None:  # fmt: skip
    message = _error(_post(server, auth, "/v1/ObjectSources", data), 400)
    assert needle in message
    assert _get(server, auth, "/v1/ObjectSources").json()["object_sources"] == []  # nothing half-written


def test_internal_base_url_refused_unless_allowed(tmp_path: Any, backend: str) -> None:
    from tests.conftest import own_server

    with own_server(backend, tmp_path, allow_private_destinations=False, source_syncs=False) as srv:
        auth = srv.new_account()
        for url in ("http://127.0.0.1:8090", "http://169.254.169.254", "http://[::1]:80"):
            data = {"FriendlyName": "x", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "BaseUrl": url}
            assert "BaseUrl" in _error(_post(srv, auth, "/v1/ObjectSources", data), 400)


def test_schema_names_and_names_conflict(server: Server, auth: Auth) -> None:
    _create(server, auth, "One", SchemaName="shared_schema")
    other = server.new_account("Other")
    # another account cannot write into a schema this source owns: the warehouse is shared
    assert "already used" in _error(_post(server, other, "/v1/ObjectSources", {
        "FriendlyName": "Two", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "SchemaName": "shared_schema"}),
        409)  # fmt: skip
    assert "already exists" in _error(_post(server, auth, "/v1/ObjectSources", {
        "FriendlyName": "One", "TwilioAccountSid": TWILIO_AC, "AuthToken": TOKEN, "SchemaName": "elsewhere"}), 409)
    two = _create(server, auth, "Two")
    assert "already used" in _error(
        _post(server, auth, f"/v1/ObjectSources/{two['sid']}", {"SchemaName": "shared_schema"}), 409)
    assert _get(server, auth, f"/v1/ObjectSources/{two['sid']}").json()["schema_name"] == "two"


def test_accounts_are_isolated_and_auth_is_required(server: Server, auth: Auth) -> None:
    src = _create(server, auth, "Mine")
    other = server.new_account("Stranger")
    for path in (f"/v1/ObjectSources/{src['sid']}", f"/v1/ObjectSources/{src['sid']}/Runs", "/v1/ObjectSources/Mine"):
        _error(_get(server, other, path), 404)
    _error(_post(server, other, f"/v1/ObjectSources/{src['sid']}/Syncs"), 404)
    _error(_post(server, other, f"/v1/ObjectSources/{src['sid']}", {"Enabled": "false"}), 404)
    assert _get(server, other, "/v1/ObjectSources").json()["object_sources"] == []
    r = requests.get(f"{server.url}/v1/ObjectSources", timeout=10)
    assert r.status_code == 401 and twilio_error_problem(r) is None
    _error(_get(server, (auth[0], "wrong" * 6), "/v1/ObjectSources"), 401)


def test_sync_now_queues_a_run_and_full_is_remembered(server: Server, auth: Auth) -> None:
    src = _create(server, auth, "Queued", Enabled="false")
    assert "is disabled" in _error(_post(server, auth, f"/v1/ObjectSources/{src['sid']}/Syncs"), 400)
    assert _post(server, auth, f"/v1/ObjectSources/{src['sid']}", {"Enabled": "true"}).status_code == 200
    r = _post(server, auth, f"/v1/ObjectSources/{src['sid']}/Syncs", {"Full": "true"})
    assert r.status_code == 202, r.text
    assert r.json()["full_sync_requested"] is True and r.json()["next_sync_at"] is not None
    assert "Full" in _error(_post(server, auth, f"/v1/ObjectSources/{src['sid']}/Syncs", {"Full": "maybe"}), 400)
    runs = _get(server, auth, f"/v1/ObjectSources/{src['sid']}/Runs").json()
    assert runs["meta"]["key"] == "runs"
    _error(_get(server, auth, f"/v1/ObjectSources/{src['sid']}/Runs/OR" + "0" * 32), 404)
    _error(_get(server, auth, f"/v1/ObjectSources/{src['sid']}/Runs/nope"), 404)


def test_cli_adds_configures_lists_and_deletes(server: Server, auth: Auth, tmp_path: Any) -> None:
    env = cli_env(server.url, *auth, TWILIO_ACCOUNT_SID=TWILIO_AC, TWILIO_AUTH_TOKEN=TOKEN)
    cli = [os.path.join(os.path.dirname(sys.executable), "eventstreams")]

    def run(*args: str, ok: int = 0) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == ok, p.stderr + p.stdout
        return p

    import json

    added = json.loads(run("sources", "add-twilio", "From CLI", "--schedule", "manual", "--base-url", server.url,
                           "-o", "json").stdout)  # fmt: skip
    assert added["schema_name"] == "from_cli" and TOKEN not in json.dumps(added)
    changed = json.loads(run("sources", "configure", "From CLI", "--collections", "messages", "--lookback", "1d",
                             "-o", "json").stdout)  # fmt: skip
    assert changed["collections"] == ["messages"] and changed["lookback_window"] == 86400
    listed = json.loads(run("sources", "list", "--account", auth[0], "-o", "json").stdout)
    assert {"sid": added["sid"], "type": "twilio", "name": "From CLI", "enabled": True, "schema_name": "from_cli",
            "schedule": "manual"} in listed  # fmt: skip
    bad = run("sources", "configure", "From CLI", "--schedule", "every now and then", ok=1)
    assert "Schedule" in bad.stderr
    run("sources", "delete", "--account", auth[0], added["sid"])
    assert _get(server, auth, "/v1/ObjectSources").json()["object_sources"] == []


def test_a_new_schedule_reschedules(server: Server, auth: Auth) -> None:
    src = _create(server, auth, "Rescheduled", Enabled="false")
    assert src["next_sync_at"] is None
    r = _post(server, auth, f"/v1/ObjectSources/{src['sid']}", {"Schedule": "manual", "Enabled": "true"})
    assert r.json()["next_sync_at"] is None  # manual: only when asked
    r = _post(server, auth, f"/v1/ObjectSources/{src['sid']}", {"Enabled": "false"})
    r = _post(server, auth, f"/v1/ObjectSources/{src['sid']}", {"Schedule": "6h"})
    row = server.call(server.services.store.object_sources.by_sid(src["sid"]))
    assert row.next_run_at is not None  # it had never run: the new plan starts at once (when enabled)
