"""The `eventstreams` CLI over HTTP: login and its profile file, precedence of the environment, table and JSON
output (removes, login and config use included: never a secret), the exit codes docs/cli.md promises, paging,
completion, acting on a subaccount with --account, and a sync followed over HTTP. That every command takes
-o json is tests/unit/test_cli_json.py."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventstreams.catalog import builtin_examples
from eventstreams.cli.client import Client, Credentials
from eventstreams.sandbox import seed as seeding
from tests.clihelp import cli_env, run_cli
from tests.conftest import Receiver, Server, own_server

EVENT = {"specversion": "1.0", "type": "com.twilio.messaging.message.sent", "source": "/cli", "id": "cli-table",
         "data": builtin_examples()["Messaging.MessageStatus"][1]}  # fmt: skip


@pytest.fixture()
def acct(server: Server) -> tuple[str, str]:
    return server.new_account("cli")


def _bare_env(tmp_path: Path) -> dict[str, str]:
    """No credentials in the environment: only what `login` stored under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTSTREAMS_")}
    return {**env, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "COLUMNS": "200"}


def test_login_stores_a_private_profile_and_the_environment_wins(server: Server, acct: tuple[str, str],
                                                                 tmp_path: Path) -> None:  # fmt: skip
    sid, token = acct
    env = _bare_env(tmp_path)
    path = tmp_path / "cfg" / "eventstreams" / "config.json"
    wrong = run_cli(["login", "--url", server.url, "--account-sid", sid, "--auth-token", "nope"], env)
    assert wrong.returncode == 3 and "eventstreams login" in wrong.stderr and not path.exists()
    ok = run_cli(["login", "--url", server.url, "--account-sid", sid, "--auth-token", token], env)
    assert ok.returncode == 0, ok.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["profiles"]["default"] == {"url": server.url, "account_sid": sid,
                                                                   "auth_token": token}  # fmt: skip
    assert run_cli(["sinks", "list"], env).returncode == 0  # the stored profile, nothing in the environment

    # a second profile with an API key; --profile and EVENTSTREAMS_PROFILE choose
    other_sid, other_token = server.new_account("other")
    key = run_cli(["keys", "create", "--friendly-name", "cli", "-o", "json"],
                  {**env, "EVENTSTREAMS_ACCOUNT_SID": other_sid, "EVENTSTREAMS_AUTH_TOKEN": other_token})  # fmt: skip
    assert key.returncode == 0, key.stderr
    k = json.loads(key.stdout)
    assert run_cli(["--profile", "key", "login", "--url", server.url, "--account-sid", other_sid, "--api-key",
                    k["sid"], "--api-secret", k["secret"]], env).returncode == 0  # fmt: skip
    listed = json.loads(run_cli(["config", "list", "-o", "json"], env).stdout)
    assert [(p["profile"], p["active"], p["credential"]) for p in listed] == [
        ("default", "", "auth_token"), ("key", "*", "api_key")]  # fmt: skip
    assert k["secret"] not in run_cli(["config", "list"], env).stdout

    def account_of(extra: dict[str, str], *args: str) -> str:
        r = run_cli([*args, "accounts", "list", "-o", "json"], {**env, **extra})
        assert r.returncode == 0, r.stderr
        return str(json.loads(r.stdout)[0]["sid"])

    assert account_of({}, "--profile", "default") == sid
    assert account_of({"EVENTSTREAMS_PROFILE": "default"}) == sid
    # the environment overrides the profile: account and token from it, URL still the profile's
    assert account_of({"EVENTSTREAMS_PROFILE": "default", "EVENTSTREAMS_ACCOUNT_SID": other_sid,
                       "EVENTSTREAMS_AUTH_TOKEN": other_token}) == other_sid  # fmt: skip
    broken = run_cli(["sinks", "list"], {**env, "EVENTSTREAMS_URL": "http://127.0.0.1:1"})
    assert broken.returncode == 4 and "cannot reach http://127.0.0.1:1" in broken.stderr
    missing = run_cli(["--profile", "nobody", "sinks", "list"], env)
    assert missing.returncode == 3 and "eventstreams login --profile nobody" in missing.stderr


def test_sinks_and_subscriptions_as_tables_and_json(server: Server, acct: tuple[str, str],
                                                    receiver: Receiver) -> None:  # fmt: skip
    env = cli_env(server.url, *acct)
    conf = json.dumps({"destination": f"{receiver.url}/cli-table", "method": "POST"})
    made = run_cli(["sinks", "create", "--sink-type", "webhook", "--sink-configuration", conf, "--description",
                    "cli sink", "-o", "json"], env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    sink = json.loads(made.stdout)["sid"]
    table = run_cli(["sinks", "list"], env)
    assert table.returncode == 0 and sink in table.stdout and "cli sink" in table.stdout and "1 row" in table.stdout
    assert "┃" in table.stdout or "|" in table.stdout  # a rich table, not JSON
    assert json.loads(run_cli(["sinks", "fetch", sink, "-o", "json"], env).stdout)["description"] == "cli sink"
    upd = run_cli(["sinks", "update", sink, "--description", "renamed", "-o", "json"], env)
    assert json.loads(upd.stdout)["description"] == "renamed"
    sub = run_cli(["subscriptions", "create", "--sink-sid", sink, "--description", "all sent", "--types",
                   "com.twilio.messaging.message.sent", "-o", "json"], env)  # fmt: skip
    assert sub.returncode == 0, sub.stderr
    sub_sid = json.loads(sub.stdout)["sid"]
    fetched = json.loads(run_cli(["subscriptions", "fetch", sub_sid, "-o", "json"], env).stdout)
    assert [t["type"] for t in fetched["types"]] == ["com.twilio.messaging.message.sent"]
    assert sub_sid in run_cli(["subscriptions", "list", "--sink-sid", sink], env).stdout

    published = run_cli(["publish"], env, input=json.dumps(EVENT))
    assert published.returncode == 0 and "accepted" in published.stdout and "cli-table" in published.stdout
    receiver.wait_for(lambda: [e["id"] for e in receiver.events("/cli-table")] == ["cli-table"])
    assert run_cli(["sinks", "test", sink], env).returncode == 0
    log = json.loads(run_cli(["deliveries", "--sink", sink, "-o", "json"], env).stdout)
    assert any("cli-table" in d["event_ids"] for d in log)

    types = json.loads(run_cli(["types", "list", "--limit", "3", "-o", "json"], env).stdout)
    assert len(types) == 3
    schema = types[0]["schema_id"]
    assert json.loads(run_cli(["schemas", "fetch", schema, "-o", "json"], env).stdout)["id"] == schema
    assert "schema_version" in run_cli(["schemas", "versions", schema], env).stdout

    assert run_cli(["subscriptions", "remove", sub_sid], env).returncode == 0
    assert run_cli(["sinks", "remove", sink], env).returncode == 0
    gone = run_cli(["sinks", "fetch", sink], env)
    assert gone.returncode == 1 and "HTTP 404" in gone.stderr and "→" in gone.stderr  # says what to do


def test_exit_codes(server: Server, acct: tuple[str, str]) -> None:
    env = cli_env(server.url, *acct)
    assert run_cli(["sinks", "list"], {**env, "EVENTSTREAMS_AUTH_TOKEN": "wrong"}).returncode == 3
    assert run_cli(["sinks", "create", "--sink-type", "webhook"], env).returncode == 1  # usage: a missing option
    bad_json = run_cli(["sinks", "create", "--sink-type", "webhook", "--sink-configuration", "{", "--description",
                        "x"], env)  # fmt: skip
    assert bad_json.returncode == 1 and "not valid JSON" in bad_json.stderr
    assert run_cli(["sources", "create", "--name", "dup"], env).returncode == 0
    dup = run_cli(["sources", "create", "--name", "dup"], env)
    assert dup.returncode == 2 and "HTTP 409" in dup.stderr
    rejected = run_cli(["publish", "-o", "json"], env, input=json.dumps({**EVENT, "type": "no.such.type"}))
    assert rejected.returncode == 1 and json.loads(rejected.stdout)["rejected"]


def test_paging_follows_next_page_url(server: Server, acct: tuple[str, str]) -> None:
    sid, token = acct
    for i in range(5):
        server.call(server.services.sources.create(server.call(server.services.accounts.principal_of(sid)).account,
                                                   f"paged-{i}", None))  # fmt: skip
    seen: list[str] = []
    with Client(Credentials(server.url, sid, token)) as c:
        c.http.event_hooks["request"].append(lambda r: seen.append(str(r.url)))
        names = [s["name"] for s in c.paginate("/v1/Sources", "sources", {"PageSize": 2})]
    assert sorted(names) == [f"paged-{i}" for i in range(5)] and len(seen) == 3
    assert "PageToken" in seen[1] and "PageToken" in seen[2]
    listed = run_cli(["sources", "messages", "nope"], cli_env(server.url, sid, token))
    assert listed.returncode == 1 and "was not found" in listed.stderr


def test_keys(server: Server, acct: tuple[str, str]) -> None:
    env = cli_env(server.url, *acct)
    made = json.loads(run_cli(["keys", "create", "--friendly-name", "ci", "-o", "json"], env).stdout)
    assert made["secret"] and made["sid"].startswith("SK")
    listed = run_cli(["keys", "list"], env)
    assert made["sid"] in listed.stdout and made["secret"] not in listed.stdout
    assert run_cli(["keys", "remove", made["sid"]], env).returncode == 0
    assert made["sid"] not in run_cli(["keys", "list"], env).stdout
    sid = acct[0]
    old = json.loads(run_cli(["accounts", "create-key", sid, "-o", "json"], env).stdout)  # the earlier form
    assert old["sid"].startswith("SK") and old["sid"] in run_cli(["keys", "list"], env).stdout
    assert [a["sid"] for a in json.loads(run_cli(["accounts", "list", sid, "-o", "json"], env).stdout)] == [sid]


def test_removes_print_json_and_a_line_for_people(server: Server, acct: tuple[str, str],
                                                   receiver: Receiver) -> None:  # fmt: skip
    env = cli_env(server.url, *acct)

    def made(*args: str) -> str:
        r = run_cli([*args, "-o", "json"], env)
        assert r.returncode == 0, r.stderr
        return str(json.loads(r.stdout)["sid"])

    conf = json.dumps({"destination": f"{receiver.url}/removed", "method": "POST"})
    sinks = [made("sinks", "create", "--sink-type", "webhook", "--sink-configuration", conf, "--description", d)
             for d in ("json", "table")]  # fmt: skip
    subs = [made("subscriptions", "create", "--sink-sid", s, "--description", "d", "--types",
                 "com.twilio.messaging.message.sent") for s in sinks]  # fmt: skip
    key = json.loads(run_cli(["keys", "create", "--friendly-name", "gone", "-o", "json"], env).stdout)
    other_key = made("keys", "create")
    source = made("sources", "create", "--name", "removed")

    for args in (["subscriptions", "remove", subs[0]], ["sinks", "remove", sinks[0]], ["keys", "remove", key["sid"]],
                 ["sources", "remove", source]):  # fmt: skip
        r = run_cli([*args, "-o", "json"], env)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"sid": args[-1], "deleted": True}
    assert key["secret"] not in r.stdout + r.stderr
    for args in (["subscriptions", "remove", subs[1]], ["sinks", "remove", sinks[1]], ["keys", "remove", other_key]):
        r = run_cli(args, env)  # the default: nothing on stdout, a line for people on stderr (as `twilio` does)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", f"removed {args[-1]}\n")
    assert json.loads(run_cli(["sinks", "list", "-o", "json"], env).stdout) == []
    assert json.loads(run_cli(["keys", "list", "-o", "json"], env).stdout) == []
    again = run_cli(["sinks", "remove", sinks[0], "-o", "json"], env)  # gone already: an error, no JSON
    assert again.returncode == 1 and again.stdout == "" and "HTTP 404" in again.stderr


def test_login_and_config_use_print_the_profile_never_the_secret(server: Server, acct: tuple[str, str],
                                                                 tmp_path: Path) -> None:  # fmt: skip
    sid, token = acct
    env = _bare_env(tmp_path)
    first = run_cli(["login", "--url", server.url, "--account-sid", sid, "--auth-token", token, "-o", "json"], env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"active": "*", "profile": "default", "url": server.url, "account_sid": sid,
                                        "credential": "auth_token"}  # fmt: skip
    key = json.loads(run_cli(["keys", "create", "-o", "json"], env).stdout)
    # prompted for the secret (on stderr: stdout holds only the JSON)
    second = run_cli(["--profile", "key", "login", "--url", server.url, "--account-sid", sid, "--api-key",
                      key["sid"], "-o", "json"], env, input=key["secret"] + "\n")  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == {"active": "*", "profile": "key", "url": server.url, "account_sid": sid,
                                         "credential": "api_key"}  # fmt: skip
    assert "API key secret" in second.stderr
    used = run_cli(["config", "use", "default", "-o", "json"], env)
    assert used.returncode == 0, used.stderr
    assert json.loads(used.stdout) == json.loads(first.stdout)
    assert [p["profile"] for p in json.loads(run_cli(["config", "list", "-o", "json"], env).stdout)
            if p["active"]] == ["default"]  # fmt: skip
    for r in (first, second, used):
        assert token not in r.stdout + r.stderr and key["secret"] not in r.stdout + r.stderr
    plain = run_cli(["config", "use", "key"], env)
    assert (plain.returncode, plain.stdout, plain.stderr) == (0, "", "active profile: key\n")
    missing = run_cli(["config", "use", "nobody", "-o", "json"], env)
    assert missing.returncode == 3 and missing.stdout == "" and "eventstreams login --profile nobody" in missing.stderr


def test_types_fetch(server: Server, acct: tuple[str, str]) -> None:
    env = cli_env(server.url, *acct)
    listed = json.loads(run_cli(["types", "list", "--limit", "1", "-o", "json"], env).stdout)[0]
    r = run_cli(["types", "fetch", listed["type"], "-o", "json"], env)
    assert r.returncode == 0, r.stderr
    fetched = json.loads(r.stdout)
    assert {k: fetched[k] for k in ("type", "schema_id", "description")} == {
        k: listed[k] for k in ("type", "schema_id", "description")}  # fmt: skip
    table = run_cli(["types", "fetch", "com.twilio.messaging.message.sent"], env)
    assert table.returncode == 0 and "com.twilio.messaging.message.sent" in table.stdout
    assert "schema_id" in table.stdout and "Messaging.MessageStatus" in table.stdout  # field/value rows
    missing = run_cli(["types", "fetch", "no.such.type"], env)
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr and "→" in missing.stderr


def test_subscriptions_update(server: Server, acct: tuple[str, str], receiver: Receiver) -> None:
    env = cli_env(server.url, *acct)
    conf = json.dumps({"destination": f"{receiver.url}/update", "method": "POST"})
    sink = json.loads(run_cli(["sinks", "create", "--sink-type", "webhook", "--sink-configuration", conf,
                               "--description", "upd", "-o", "json"], env).stdout)["sid"]  # fmt: skip
    sub = json.loads(run_cli(["subscriptions", "create", "--sink-sid", sink, "--description", "before", "--types",
                              "com.twilio.messaging.message.sent", "-o", "json"], env).stdout)["sid"]  # fmt: skip
    r = run_cli(["subscriptions", "update", sub, "--description", "after", "-o", "json"], env)
    assert r.returncode == 0, r.stderr
    updated = json.loads(r.stdout)
    assert (updated["sid"], updated["sink_sid"], updated["description"]) == (sub, sink, "after")
    fetched = json.loads(run_cli(["subscriptions", "fetch", sub, "-o", "json"], env).stdout)
    assert fetched["description"] == "after"
    assert [t["type"] for t in fetched["types"]] == ["com.twilio.messaging.message.sent"]  # the types stay
    table = run_cli(["subscriptions", "update", sub, "--description", "again"], env)
    assert table.returncode == 0 and "again" in table.stdout and sub in table.stdout
    usage = run_cli(["subscriptions", "update", sub], env)
    assert usage.returncode == 1 and "--description" in usage.stderr
    missing = run_cli(["subscriptions", "update", "DF" + "0" * 32, "--description", "x"], env)
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr


def test_publish_to_a_subaccount_with_the_parents_credentials(server: Server, acct: tuple[str, str],
                                                              receiver: Receiver) -> None:  # fmt: skip
    parent, _ = acct
    sub, _ = server.new_account("cli sub", parent=parent)
    env = cli_env(server.url, *acct)  # the parent's credentials, and no database URL: only the HTTP API
    assert not any(k in env for k in ("EVENTSTREAMS_DATABASE_URL", "EVENTSTREAMS_CONFIG"))

    def sink_of(path: str, *account: str) -> str:
        conf = json.dumps({"destination": f"{receiver.url}{path}", "method": "POST"})
        r = run_cli(["sinks", "create", "--sink-type", "webhook", "--sink-configuration", conf, "--description", path,
                     *account, "-o", "json"], env)  # fmt: skip
        assert r.returncode == 0, r.stderr
        sid = json.loads(r.stdout)["sid"]
        assert run_cli(["subscriptions", "create", "--sink-sid", sid, "--description", path, "--types",
                        EVENT["type"], *account], env).returncode == 0  # fmt: skip
        return str(sid)

    in_sub, in_parent = sink_of("/in-sub", "--account", sub), sink_of("/in-parent")
    event = {**EVENT, "id": "cli-sub-publish"}
    r = run_cli(["publish", "--account", sub, "-o", "json"], env, input=json.dumps(event))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accepted"] == ["cli-sub-publish"]
    receiver.wait_for(lambda: [e["id"] for e in receiver.events("/in-sub")] == ["cli-sub-publish"])
    server.settled(in_parent)  # nothing left to deliver to the parent's sink: the event was the subaccount's
    assert receiver.events("/in-parent") == []
    log = json.loads(run_cli(["deliveries", "--sink", in_sub, "--account", sub, "-o", "json"], env).stdout)
    assert any("cli-sub-publish" in d["event_ids"] for d in log)
    stranger, _ = server.new_account("not a sub")
    denied = run_cli(["publish", "--account", stranger], env, input=json.dumps({**event, "id": "cli-denied"}))
    assert denied.returncode == 3 and "not a subaccount of the caller" in denied.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_and_completion(shell: str, tmp_path: Path) -> None:
    env = _bare_env(tmp_path)
    script = run_cli(["completion", shell], env)
    assert script.returncode == 0 and "_EVENTSTREAMS_COMPLETE" in script.stdout
    if shell == "bash":
        done = run_cli([], {**env, "_EVENTSTREAMS_COMPLETE": "bash_complete", "COMP_WORDS": "eventstreams si",
                            "COMP_CWORD": "1"})  # fmt: skip
        assert "sinks" in done.stdout


def test_sync_follows_the_run_over_http(tmp_path: Path, backend: str) -> None:
    with own_server(backend, tmp_path, sandbox=True, sandbox_step_seconds=0.05, source_syncs=True) as srv:
        sid, token = srv.new_account("sync over http")
        srv.call(seeding.seed(srv.services, 600, 40, 0, 5, seeding.parse_now("2026-06-01"), account_sid=sid))
        env = cli_env(srv.url, sid, token, TWILIO_ACCOUNT_SID=sid, TWILIO_AUTH_TOKEN=token)
        added = run_cli(["sources", "add-twilio", "Over HTTP", "--schedule", "manual", "--base-url", srv.url,
                         "--collections", "messages,conferences", "--no-subaccounts"], env)  # fmt: skip
        assert added.returncode == 0, added.stderr
        done = run_cli(["sources", "sync", "Over HTTP"], env, timeout=120)
        assert done.returncode == 0, done.stderr + done.stdout
        assert "messages" in done.stderr and "rows" in done.stderr  # the progress bars
        assert "succeeded" in done.stdout and "rows upserted (full sync)" in done.stdout
        runs: list[dict[str, Any]] = json.loads(run_cli(["sources", "runs", "Over HTTP", "-o", "json"], env).stdout)
        assert [r["status"] for r in runs] == ["succeeded"]
        assert {c["collection"] for c in runs[0]["collections"]} == {"messages", "conferences"}
        assert runs[0]["rows_upserted"] > 0
        missing = run_cli(["sources", "sync", "No Such Source"], env)
        assert missing.returncode == 1 and "was not found" in missing.stderr


def test_client_errors_are_twilio_shaped() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"code": 20429, "message": "Too Many Requests", "more_info": "https://x/20429",
                                         "status": 429})  # fmt: skip

    c = Client(Credentials("http://es.invalid", "AC" + "0" * 32, "t"))
    c.http = httpx.Client(base_url="http://es.invalid", transport=httpx.MockTransport(answer))
    with pytest.raises(Exception) as err:
        c.request("GET", "/v1/Sinks")
    assert err.value.exit_code == 2  # type: ignore[attr-defined]
    assert "Too Many Requests (HTTP 429, code 20429, https://x/20429)" in str(err.value)
