"""airbyte-source-twilio from PyPI, unchanged, against a seeded sandbox: check, discover and read.

The connector runs in its own virtual environment (.venv-airbyte, built by ``make test`` from
scripts/airbyte-requirements.txt: airbyte-cdk would downgrade packages of ours) through
tests/airbyte/run_source_twilio.py, which loads the connector's manifest with only
``https://api.twilio.com`` replaced by the sandbox's URL. The data comes from the real
``eventstreams sandbox seed`` command; what the connector emits is compared, SID by SID, with the
sandbox's rows read through the store.

Call feedback: no version of the connector has a call feedback stream (Twilio removed the
resource from its OpenAPI; see docs/sandbox.md). What it does emit is each call's
``subresource_uris.feedback``; the test follows those links, as a consumer of the Airbyte output
would have to, and checks they reach every seeded feedback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.conftest import Server, own_server

ROOT = Path(__file__).resolve().parents[2]
AIRBYTE_PYTHON = ROOT / ".venv-airbyte" / "bin" / "python"
RUNNER = ROOT / "tests" / "airbyte" / "run_source_twilio.py"
STREAMS = ("accounts", "addresses", "calls", "conferences", "messages", "transcriptions")
# Which rows of each table the connector can see. Messages: it reads with DateSent>/DateSent<, and a
# message that was never sent (failed before reaching a carrier) has no date_sent, on Twilio as
# here. Everything the seeder makes lies within the year before now, inside the 400 days the
# connector reads messages back and after the start_date below.
TABLES = {
    "addresses": ("sandbox_addresses", ""),
    "calls": ("sandbox_calls", ""),
    "conferences": ("sandbox_conferences", ""),
    "messages": ("sandbox_messages", " AND date_sent IS NOT NULL"),
    "transcriptions": ("sandbox_transcriptions", ""),
}
START_DATE = "2020-01-01T00:00:00Z"


@dataclass
class Seeded:
    sid: str
    token: str
    accounts: list[str]  # the main account and its subaccounts


@dataclass
class Run:
    messages: list[dict[str, Any]]
    stderr: str

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def records(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for m in self.of("RECORD"):
            out.setdefault(m["record"]["stream"], []).append(m["record"]["data"])
        return out

    def errors(self) -> list[str]:
        return [m["trace"]["error"]["message"] for m in self.of("TRACE") if m["trace"]["type"] == "ERROR"]

    def logs(self, text: str) -> list[str]:
        return [m["log"]["message"] for m in self.of("LOG") if text in m["log"]["message"]]


def connector(
    srv: Server, tmp: Path, command: str, config: dict[str, Any], catalog: dict[str, Any] | None = None
) -> Run:
    """Run the connector once (spec/check/discover/read) and parse the Airbyte messages it prints."""
    assert AIRBYTE_PYTHON.exists(), f"{AIRBYTE_PYTHON} is missing: run `make .venv-airbyte/.done`"
    (tmp / "config.json").write_text(json.dumps(config))
    args = [str(AIRBYTE_PYTHON), str(RUNNER), "--base-url", srv.url, command, "--config", str(tmp / "config.json")]
    if catalog is not None:
        (tmp / "catalog.json").write_text(json.dumps(catalog))
        args += ["--catalog", str(tmp / "catalog.json")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTSTREAMS_", "VIRTUAL_ENV"))}
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return Run([json.loads(line) for line in lines], done.stderr)


def seed(srv: Server, tmp: Path, seed_value: int) -> Seeded:
    """`eventstreams sandbox seed` into the server's own database: a fresh main account, one subaccount."""
    sid, token = srv.new_account("Airbyte source")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTSTREAMS_")}
    env |= {"EVENTSTREAMS_SANDBOX_DATABASE_URL": srv.settings.database_url,
            "EVENTSTREAMS_DATA_DIR": str(srv.settings.data_dir)}  # fmt: skip
    args = [sys.executable, "-m", "eventstreams.cli.main", "sandbox", "seed", "--messages", "500", "--calls", "200",
            "--subaccounts", "1", "--seed", str(seed_value), "--account", sid, "--json"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    accounts = [a["sid"] for a in report["accounts"]]
    assert accounts[0] == sid and len(accounts) == 2
    return Seeded(sid, token, accounts)


def sandbox_rows(srv: Server, seeded: Seeded) -> dict[str, Counter[str]]:
    """SIDs per stream, straight from the sandbox's tables (a SID counted twice would show)."""
    out: dict[str, Counter[str]] = {"accounts": Counter(seeded.accounts)}
    for stream, (table, extra) in TABLES.items():
        rows: Counter[str] = Counter()
        for account in seeded.accounts:
            sql = f"SELECT sid FROM {table} WHERE account_sid = :account{extra}"
            got = srv.call(srv.services.store.db.run(lambda tx, q=sql, a=account: tx.all(q, account=a)))
            rows.update(r["sid"] for r in got)
        out[stream] = rows
    return out


def config(seeded: Seeded, token: str | None = None) -> dict[str, Any]:
    return {"account_sid": seeded.sid, "auth_token": token or seeded.token, "start_date": START_DATE}


def catalog(discovered: Run) -> dict[str, Any]:
    """The six streams, full refresh, as the discover output describes them."""
    streams = [s for s in discovered.of("CATALOG")[0]["catalog"]["streams"] if s["name"] in STREAMS]
    return {"streams": [{"stream": s, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}
                        for s in streams]}  # fmt: skip


def emitted(run: Run) -> dict[str, Counter[str]]:
    return {stream: Counter(r["sid"] for r in records) for stream, records in run.records().items()}


def same_rows(got: dict[str, Counter[str]], expected: dict[str, Counter[str]]) -> None:
    for stream in STREAMS:
        mine, theirs = got.get(stream, Counter()), expected[stream]
        missing, extra = sorted((theirs - mine).elements()), sorted((mine - theirs).elements())
        assert mine == theirs, (
            f"{stream}: emitted {mine.total()} records, the sandbox has {theirs.total()}; "
            f"missing {len(missing)} {missing[:3]}, extra or repeated {len(extra)} {extra[:3]}"
        )


def test_check_discover_read_match_the_sandbox(sandbox_server: Server, tmp_path: Path) -> None:
    seeded = seed(sandbox_server, tmp_path, 11)
    expected = sandbox_rows(sandbox_server, seeded)
    assert len(expected["messages"]) > 300 and len(expected["calls"]) >= 200

    check = connector(sandbox_server, tmp_path, "check", config(seeded))
    assert [m["connectionStatus"]["status"] for m in check.of("CONNECTION_STATUS")] == ["SUCCEEDED"], check.messages
    refused = connector(sandbox_server, tmp_path, "check", config(seeded, token="0" * 32))
    assert [m["connectionStatus"]["status"] for m in refused.of("CONNECTION_STATUS")] == ["FAILED"]

    discovered = connector(sandbox_server, tmp_path, "discover", config(seeded))
    names = {s["name"] for s in discovered.of("CATALOG")[0]["catalog"]["streams"]}
    assert set(STREAMS) <= names
    assert not [n for n in names if "feedback" in n]  # the gap: see the module docstring

    read = connector(sandbox_server, tmp_path, "read", config(seeded), catalog(discovered))
    assert read.errors() == [], read.errors()
    same_rows(emitted(read), expected)
    # every stream finished, as the protocol reports it
    statuses = {(t["trace"]["stream_status"]["stream_descriptor"]["name"], t["trace"]["stream_status"]["status"])
                for t in read.of("TRACE") if t["trace"]["type"] == "STREAM_STATUS"}  # fmt: skip
    assert {s for s, status in statuses if status == "COMPLETE"} == set(STREAMS)
    assert not {s for s, status in statuses if status == "INCOMPLETE"}

    records = read.records()
    for stream in TABLES:  # the connector walked the subaccount's subresource_uris as well as the main one's
        assert {r["account_sid"] for r in records[stream]} == set(seeded.accounts), stream
    # dates normalised by the connector from the sandbox's RFC 2822 to ISO 8601
    assert all(c["end_time"].endswith("Z") and c["date_created"].endswith("Z") for c in records["calls"])

    # call feedback: through the links in the emitted call records, one GET per call (N+1)
    with_feedback = set()
    with requests.Session() as http:
        http.auth = (seeded.sid, seeded.token)
        for c in records["calls"]:
            r = http.get(sandbox_server.url + c["subresource_uris"]["feedback"], timeout=10)
            assert r.status_code in (200, 404), r.text
            if r.status_code == 200:
                with_feedback.add(r.json()["sid"])
    stored = set()
    for account in seeded.accounts:
        sql = "SELECT call_sid FROM sandbox_call_feedback WHERE account_sid = :account"
        rows = sandbox_server.call(
            sandbox_server.services.store.db.run(lambda tx, a=account, q=sql: tx.all(q, account=a))
        )
        stored |= {row["call_sid"] for row in rows}
    assert with_feedback == stored and stored


def test_read_is_complete_through_injected_429s(tmp_path: Path) -> None:
    # One backend is enough here: what is under test is the connector's retry path.
    with own_server("sqlite", tmp_path, sandbox=True) as srv:
        read_through_429s(srv, tmp_path)


def read_through_429s(sandbox_server: Server, tmp_path: Path) -> None:
    seeded = seed(sandbox_server, tmp_path, 12)
    expected = sandbox_rows(sandbox_server, seeded)
    for account in seeded.accounts:  # every fifth request to each account's resources: 429, Retry-After 1
        r = requests.post(f"{sandbox_server.url}/2010-04-01/Accounts/{account}/Sandbox.json",
                          data={"RateLimitRatio": "0.2"}, auth=(seeded.sid, seeded.token), timeout=10)  # fmt: skip
        assert r.status_code == 200 and r.json()["RateLimitRatio"] == 0.2, r.text
    discovered = connector(sandbox_server, tmp_path, "discover", config(seeded))

    read = connector(sandbox_server, tmp_path, "read", config(seeded), catalog(discovered))

    assert read.errors() == [], read.errors()
    assert read.logs("rate limit reached (429)"), "the connector saw no 429: the test proved nothing"
    same_rows(emitted(read), expected)
