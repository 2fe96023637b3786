"""The Twilio object source against a seeded sandbox, on both stores and both warehouse targets (SQLite
with DuckDB, PostgreSQL with a PostgreSQL warehouse): a full sync equals the sandbox row for row and
field for field; an incremental sync after status changes updates exactly the changed rows (one inside
the lookback window, one new message; one outside the window waits for a full sync; the same for calls, whose
feedback is fetched only for calls new or changed since the last sync); no duplicates; subaccounts land as
configured; 429 storms and 5xx are survived; a 401 stops with a clear error, on one subaccount that
account only; runs are recorded per collection, a failed one with its error (run, API, CLI); a scheduled
source is synced by the server's scheduler, and many due sources are shared between schedulers."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from eventstreams import clock
from eventstreams.objectsource.client import RetryPolicy, TwilioReader
from eventstreams.objectsource.scheduler import Scheduler
from eventstreams.objectsource.sync import FEEDBACK_MARGIN, Syncer
from eventstreams.sandbox import seed as seeding
from eventstreams.warehouse.targets import Target, open_target
from tests.clihelp import cli_env, run_cli
from tests.conftest import Server, drop_pg_database, own_server, pg_database

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()
MESSAGES, CALLS = 2500, 700  # more than two pages of 1000 each for the main account


def _epoch(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())


def _money(value: Any) -> float | None:
    return None if value is None or value == "" else round(float(value), 5)


@pytest.fixture(scope="module")
def world(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with the sandbox mounted and seeded (main account + 1 subaccount), and a warehouse URL."""
    tmp = tmp_path_factory.mktemp(f"objsrc-{backend}")
    pg_name = None
    if backend == "sqlite":
        warehouse = f"duckdb:///{tmp}/warehouse.duckdb"
    else:
        pg_name = f"es_wh_{uuid.uuid4().hex[:8]}"
        warehouse = pg_database(pg_name)
    with own_server(backend, tmp, sandbox=True, sandbox_step_seconds=0.05, warehouse_url=warehouse,
                    source_syncs=False) as srv:  # fmt: skip
        sid, token = srv.new_account("Object source")
        report = srv.call(seeding.seed(srv.services, MESSAGES, CALLS, 1, 5, NOW, account_sid=sid))
        accounts = [a.row.sid for a in report.accounts]
        yield {"srv": srv, "sid": sid, "token": token, "accounts": accounts, "warehouse": warehouse}
    if pg_name:
        drop_pg_database(pg_name)


def _source(w: dict[str, Any], name: str, **extra: Any) -> Any:
    srv: Server = w["srv"]
    account = srv.call(srv.services.accounts.principal_of(w["sid"])).account
    kwargs = {"friendly_name": name, "twilio_account_sid": w["sid"], "auth_token": w["token"], "schedule": "manual",
              "base_url": srv.url, "include_subaccounts": True, "start_date": "2020-01-01", **extra}  # fmt: skip
    return srv.call(srv.services.object_sources.create(account, **kwargs))


def _sync(w: dict[str, Any], row: Any, full: bool = False, retry: RetryPolicy | None = None) -> Any:
    srv: Server = w["srv"]
    syncer = srv.services.syncer()
    # the storms below retry in milliseconds, and often: 40 attempts make a give-up a 1-in-10^15 event
    syncer.retry = retry or RetryPolicy(max_attempts=40, first_delay=0.005, max_delay=0.05)
    return asyncio.run_coroutine_threadsafe(syncer.sync_now(row, full=full), srv.app.state.loop).result(180)


def _target(w: dict[str, Any]) -> Target:
    return open_target(w["warehouse"])


def _query(w: dict[str, Any], sql: str) -> list[dict[str, Any]]:
    t = _target(w)
    try:
        cols, rows = t.query(sql)
    finally:
        t.close()
    return [dict(zip(cols, r, strict=True)) for r in rows]


def _sandbox(w: dict[str, Any], table: str, accounts: list[str]) -> list[dict[str, Any]]:
    srv: Server = w["srv"]
    out: list[dict[str, Any]] = []
    for a in accounts:
        rows = srv.call(srv.services.store.db.run(
            lambda tx, a=a: tx.all(f"SELECT * FROM {table} WHERE account_sid = :a", a=a)))  # fmt: skip
        out += [dict(r) for r in rows]
    return out


# what each collection's warehouse row must say, from the sandbox's own row
EXPECT = {
    "messages": ("sandbox_messages", lambda r: (r["sid"], {
        "account_sid": r["account_sid"], "status": r["status"], "from": r["from_number"], "to": r["to_number"],
        "body": r["body"], "direction": r["direction"], "num_segments": r["num_segments"],
        "num_media": r["num_media"], "price": _money(r["price"]), "error_code": r["error_code"],
        "date_sent": _epoch(r["date_sent"]), "date_updated": _epoch(r["date_updated"]),
        "date_created": _epoch(r["date_created"])})),
    "calls": ("sandbox_calls", lambda r: (r["sid"], {
        "account_sid": r["account_sid"], "status": r["status"], "from": r["from_number"], "to": r["to_number"],
        "direction": r["direction"], "duration": r["duration"], "price": _money(r["price"]),
        "start_time": _epoch(r["start_time"]), "end_time": _epoch(r["end_time"]),
        "parent_call_sid": r["parent_call_sid"], "date_updated": _epoch(r["date_updated"])})),
    "call_feedback": ("sandbox_call_feedback", lambda r: (r["call_sid"], {"quality_score": r["quality_score"]})),
    "conferences": ("sandbox_conferences", lambda r: (r["sid"], {
        "account_sid": r["account_sid"], "status": r["status"], "friendly_name": r["friendly_name"],
        "region": r["region"], "date_updated": _epoch(r["date_updated"])})),
    "transcriptions": ("sandbox_transcriptions", lambda r: (r["sid"], {
        "account_sid": r["account_sid"], "status": r["status"], "recording_sid": r["recording_sid"],
        "duration": r["duration"], "transcription_text": r["transcription_text"], "price": _money(r["price"])})),
    "addresses": ("sandbox_addresses", lambda r: (r["sid"], {
        "account_sid": r["account_sid"], "city": r["city"], "customer_name": r["customer_name"],
        "postal_code": r["postal_code"], "iso_country": r["iso_country"], "street": r["street"],
        "validated": bool(r["validated"]), "emergency_enabled": bool(r["emergency_enabled"])})),
}  # fmt: skip


def _normal(col: str, value: Any) -> Any:
    if isinstance(value, datetime) or col.startswith("date_") or col.endswith("_time"):
        return _epoch(value)
    if col == "price":
        return _money(value)
    return value


def _warehouse(w: dict[str, Any], schema: str, collection: str) -> dict[str, dict[str, Any]]:
    rows = _query(w, f'SELECT * FROM {schema}.{collection}')
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), f"{collection}: duplicate ids"
    return {r["id"]: r for r in rows}


def _expected(w: dict[str, Any], collection: str, accounts: list[str]) -> dict[str, dict[str, Any]]:
    table, fn = EXPECT[collection]
    return dict(fn(r) for r in _sandbox(w, table, accounts))


def _assert_equal(w: dict[str, Any], schema: str, collection: str, accounts: list[str],
                  skip: set[str] = frozenset()) -> dict[str, dict[str, Any]]:  # type: ignore[assignment]  # fmt: skip
    got = {k: v for k, v in _warehouse(w, schema, collection).items() if k not in skip}
    want = {k: v for k, v in _expected(w, collection, accounts).items() if k not in skip}
    assert set(got) == set(want), (f"{collection}: {len(got)} rows in the warehouse, {len(want)} in the sandbox; "
                                   f"missing {sorted(set(want) - set(got))[:3]}, extra {sorted(set(got) - set(want))[:3]}")  # fmt: skip
    for sid, fields in want.items():
        row = got[sid]
        mine = {c: _normal(c, row[c]) for c in fields}
        assert mine == fields, f"{collection} {sid}: {mine} != {fields}"
        assert isinstance(row["received_at"], datetime) and isinstance(row["uuid_ts"], datetime)
    return got


def test_full_sync_equals_the_sandbox(world: dict[str, Any]) -> None:
    row = _source(world, "First Full")
    report = _sync(world, row)
    assert report.run.status == "succeeded", report.run.error
    assert report.run.kind == "full"  # the first sync reads everything: there is no cursor yet
    for collection in EXPECT:
        _assert_equal(world, "first_full", collection, world["accounts"])
    # typed columns: numbers and dates, not Twilio's strings
    sample = _query(world, "SELECT num_segments, price, date_sent FROM first_full.messages WHERE price IS NOT NULL LIMIT 1")[0]
    assert isinstance(sample["num_segments"], int) and isinstance(sample["price"], float)
    assert isinstance(sample["date_sent"], datetime) and sample["date_sent"].utcoffset().total_seconds() == 0

    # runs recorded per collection and account: rows read and upserted, cursor reached
    srv: Server = world["srv"]
    view = srv.call(srv.services.object_sources.run(row, report.run.sid))
    assert view.run.status == "succeeded" and view.run.date_finished
    parts = {(c.twilio_account_sid, c.collection): c for c in view.collections}
    main_messages = parts[(world["sid"], "messages")]
    expected_main = len(_expected(world, "messages", [world["sid"]]))
    assert main_messages.rows_read == expected_main == main_messages.rows_upserted
    assert main_messages.cursor and main_messages.duration > 0
    assert (world["accounts"][1], "calls") in parts

    # a second sync with nothing changed re-reads only the lookback window and changes nothing
    before = _warehouse(world, "first_full", "messages")
    again = _sync(world, row)
    assert again.run.status == "succeeded" and again.run.kind == "incremental"
    assert again.rows_read < report.rows_read / 2
    after = _warehouse(world, "first_full", "messages")
    strip = lambda rows: {k: {c: v for c, v in r.items() if c not in ("uuid_ts", "received_at")}  # noqa: E731
                          for k, r in rows.items()}  # fmt: skip
    assert strip(before) == strip(after)


def test_incremental_sync_updates_exactly_the_changed_rows(world: dict[str, Any]) -> None:
    srv: Server = world["srv"]
    row = _source(world, "Incremental", lookback="3d", include_subaccounts=False)
    assert _sync(world, row).run.status == "succeeded"
    before = _warehouse(world, "incremental", "messages")
    main = world["sid"]

    # the sandbox changes: a delivered message of the last day turns undelivered (a late receipt inside
    # the lookback window), one from months ago changes too (outside it), and a new message is sent
    sent = sorted((r for r in _sandbox(world, "sandbox_messages", [main]) if r["date_sent"] and r["status"] == "delivered"),
                  key=lambda r: r["date_sent"])  # fmt: skip
    recent, old = sent[-3], sent[len(sent) // 4]
    assert _epoch(old["date_sent"]) < NOW - 30 * 86400 and _epoch(recent["date_sent"]) > NOW - 86400  # type: ignore[operator]
    stamp = datetime.fromtimestamp(NOW + 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for m in (recent, old):
        srv.call(srv.services.store.db.run(lambda tx, s=m["sid"]: tx.run(
            "UPDATE sandbox_messages SET status = 'undelivered', error_code = 30003, "
            "error_message = 'Unreachable destination handset', date_updated = :d WHERE sid = :s", d=stamp, s=s),
            write=True))  # fmt: skip
    r = requests.post(f"{srv.url}/2010-04-01/Accounts/{main}/Messages.json", auth=(main, world["token"]),
                      data={"To": "+14155550100", "From": "+14155550199", "Body": "new one"}, timeout=10)  # fmt: skip
    assert r.status_code == 201, r.text
    new_sid = r.json()["sid"]
    deadline = time.monotonic() + 20  # the status clock takes it to a final status in a few 50 ms steps
    while srv.call(srv.services.store.sandbox.get(seeding.kinds.MESSAGE, main, new_sid)).next_step_at is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    report = _sync(world, row)
    assert report.run.status == "succeeded" and report.run.kind == "incremental"
    after = _warehouse(world, "incremental", "messages")
    changed = {k for k in set(before) | set(after)
               if {c: v for c, v in before.get(k, {}).items() if c not in ("uuid_ts", "received_at")}
               != {c: v for c, v in after.get(k, {}).items() if c not in ("uuid_ts", "received_at")}}  # fmt: skip
    assert changed == {recent["sid"], new_sid}
    assert after[recent["sid"]]["status"] == "undelivered" and after[recent["sid"]]["error_code"] == 30003
    assert after[old["sid"]]["status"] == "delivered"  # outside the lookback window: not seen yet
    # everything else equals the sandbox
    _assert_equal(world, "incremental", "messages", [main], skip={old["sid"]})

    # a full sync (how a changed start date or a change older than the window is taken in) catches it
    full = _sync(world, row, full=True)
    assert full.run.kind == "full" and full.run.status == "succeeded"
    _assert_equal(world, "incremental", "messages", [main])
    fetched = srv.call(srv.services.object_sources.get(
        srv.call(srv.services.accounts.principal_of(main)).account, row.sid))  # fmt: skip
    assert fetched.full_sync_requested is False


def test_incremental_sync_updates_exactly_the_changed_calls_and_fetches_only_their_feedback(
        world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    srv: Server = world["srv"]
    main = world["sid"]
    feedback_gets: list[str] = []  # the call SIDs whose feedback the source asks Twilio for, one GET each
    get = TwilioReader._get

    async def counting(self: TwilioReader, uri: str, **kw: Any) -> bytes | None:
        if uri.endswith("/Feedback.json"):
            feedback_gets.append(uri.split("/Calls/")[1].split("/")[0])
        return await get(self, uri, **kw)

    monkeypatch.setattr(TwilioReader, "_get", counting)
    row = _source(world, "Calls Incremental", lookback="20d", include_subaccounts=False,
                  collections="calls,call_feedback")  # fmt: skip
    assert _sync(world, row).run.status == "succeeded"
    before = _warehouse(world, "calls_incremental", "calls")
    assert sorted(feedback_gets) == sorted(before)  # the first, full pass asks for every call's feedback
    mark = max(r["date_updated"] for r in before.values())  # the newest change the first pass loaded

    # the sandbox changes: a completed call of the last day (inside the 20-day lookback window) turns failed
    # and gets feedback; one from months ago changes too (outside the window)
    with_feedback = {r["call_sid"] for r in _sandbox(world, "sandbox_call_feedback", [main])}
    ended = sorted((r for r in _sandbox(world, "sandbox_calls", [main])
                    if r["end_time"] and r["status"] == "completed" and r["sid"] not in with_feedback),
                   key=lambda r: r["end_time"])  # fmt: skip
    recent, old = ended[-3], ended[len(ended) // 4]
    assert _epoch(old["end_time"]) < NOW - 30 * 86400 and _epoch(recent["end_time"]) > NOW - 86400  # type: ignore[operator]
    stamp = datetime.fromtimestamp(NOW + 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for c in (recent, old):
        srv.call(srv.services.store.db.run(lambda tx, s=c["sid"]: tx.run(
            "UPDATE sandbox_calls SET status = 'failed', price = '-0.01700', date_updated = :d WHERE sid = :s",
            d=stamp, s=s), write=True))  # fmt: skip
    srv.call(srv.services.store.db.run(lambda tx: tx.run(
        "INSERT INTO sandbox_call_feedback (call_sid, account_sid, quality_score, issues, date_created, "
        "date_updated) VALUES (:s, :a, 1, '[\"dropped-call\"]', :d, :d)", s=recent["sid"], a=main, d=stamp),
        write=True))  # fmt: skip

    feedback_gets.clear()
    report = _sync(world, row)
    assert report.run.status == "succeeded" and report.run.kind == "incremental"
    after = _warehouse(world, "calls_incremental", "calls")
    strip = lambda r: {c: v for c, v in r.items() if c not in ("uuid_ts", "received_at")}  # noqa: E731
    changed = {k for k in set(before) | set(after) if strip(before.get(k, {})) != strip(after.get(k, {}))}
    assert changed == {recent["sid"]}
    assert after[recent["sid"]]["status"] == "failed" and after[recent["sid"]]["price"] == -0.017
    assert after[old["sid"]]["status"] == "completed"  # outside the lookback window: not seen yet
    _assert_equal(world, "calls_incremental", "calls", [main], skip={old["sid"]})
    # feedback only for calls new or changed since the last sync (and those updated within the margin of
    # the newest change it had seen), not for every call the lookback window read again
    (calls,) = [p for p in report.collections if p.collection == "calls"]
    read_again = calls.rows_read - 1  # the feedback row is counted with the calls
    assert sorted(feedback_gets) == sorted(
        {recent["sid"]} | {k for k, r in before.items() if r["date_updated"] >= mark - FEEDBACK_MARGIN})
    assert len(feedback_gets) < read_again / 10, (len(feedback_gets), read_again)
    feedback = _warehouse(world, "calls_incremental", "call_feedback")
    assert feedback[recent["sid"]]["quality_score"] == 1
    _assert_equal(world, "calls_incremental", "call_feedback", [main])


def test_subaccounts_land_as_configured(world: dict[str, Any]) -> None:
    only_main = _source(world, "Only Main", include_subaccounts=False, collections="messages,addresses")
    assert _sync(world, only_main).run.status == "succeeded"
    assert {r["account_sid"] for r in _query(world, "SELECT DISTINCT account_sid FROM only_main.messages")} == {
        world["sid"]}
    sub = world["accounts"][1]
    # one source per subaccount, as Segment does: the subaccount's SID with the parent's credentials
    one_sub = _source(world, "One Sub", twilio_account_sid=sub, include_subaccounts=False, collections="messages")
    assert _sync(world, one_sub).run.status == "succeeded"
    _assert_equal(world, "one_sub", "messages", [sub])
    # a subaccount's own source with --subaccounts: it has none; its siblings are not its to sync
    sub_only = _source(world, "Sub Only", twilio_account_sid=sub, include_subaccounts=True, collections="addresses")
    assert _sync(world, sub_only).run.status == "succeeded"
    assert {r["account_sid"] for r in _query(world, "SELECT DISTINCT account_sid FROM sub_only.addresses")} == {sub}
    tables = {r["table_name"] for r in _query(
        world, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'one_sub'")}  # fmt: skip
    assert tables == {"messages"}  # only the selected collections


def test_429_storms_and_5xx_are_survived(world: dict[str, Any]) -> None:
    srv: Server = world["srv"]
    for a in world["accounts"]:
        token = world["token"] if a == world["sid"] else None
        r = requests.post(f"{srv.url}/2010-04-01/Accounts/{a}/Sandbox.json", auth=(world["sid"], world["token"]),
                          data={"RateLimitRatio": "0.4", "RetryAfter": "0", "ServerErrorRatio": "0.15"}, timeout=10)
        assert r.status_code == 200, (token, r.text)
    try:
        row = _source(world, "Stormy", collections="messages,calls,call_feedback")
        report = _sync(world, row)
        assert report.run.status == "succeeded", report.run.error
        for collection in ("messages", "calls", "call_feedback"):
            _assert_equal(world, "stormy", collection, world["accounts"])
    finally:
        for a in world["accounts"]:
            requests.post(f"{srv.url}/2010-04-01/Accounts/{a}/Sandbox.json", auth=(world["sid"], world["token"]),
                          data={"RateLimitRatio": "0", "ServerErrorRatio": "0"}, timeout=10)  # fmt: skip


def test_401_stops_with_a_clear_error(world: dict[str, Any]) -> None:
    srv: Server = world["srv"]
    row = _source(world, "Wrong Token", auth_token="0" * 32, include_subaccounts=False, collections="messages")
    report = _sync(world, row)
    assert report.run.status == "failed"
    assert "401" in (report.run.error or "") or "credential" in (report.run.error or "").lower()
    assert srv.call(srv.services.store.object_sources.states(row.sid)) == []  # nothing advanced
    fresh = srv.call(srv.services.store.object_sources.by_sid(row.sid))
    assert fresh.lease_owner is None and fresh.last_error  # released, and the error is shown on the source


def test_a_401_on_one_account_stops_only_that_accounts_sync(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:  # fmt: skip
    """A subaccount suspended after discovery answers 401: its remaining collections are not tried, the
    accounts before and after it sync in full, and the run records the error per collection, shown by the
    API and the CLI."""
    srv: Server = world["srv"]
    parent, token = srv.new_account("Three accounts")
    seeded = srv.call(seeding.seed(srv.services, 60, 20, 2, 11, NOW, account_sid=parent))
    doomed, good = sorted(a.row.sid for a in seeded.accounts[1:])  # synced in this order, after the parent
    discover = Syncer._accounts

    async def then_suspend(self: Syncer, reader: TwilioReader, row: Any) -> list[str]:
        found = await discover(self, reader, row)
        if row.twilio_account_sid == parent:
            await self.store.accounts.update(doomed, None, "suspended", clock.iso(clock.now()))
        return found

    monkeypatch.setattr(Syncer, "_accounts", then_suspend)
    account = srv.call(srv.services.accounts.principal_of(parent)).account
    row = srv.call(srv.services.object_sources.create(
        account, friendly_name="Partly Suspended", twilio_account_sid=parent, auth_token=token, schedule="manual",
        base_url=srv.url, include_subaccounts=True, start_date="2020-01-01", collections="messages,addresses"))  # fmt: skip
    first, second = row.collections.split(",")  # the order each account's collections are synced in
    report = _sync(world, row)

    assert report.run.status == "failed"
    parts = {(p.account_sid, p.collection): p for p in report.collections}
    assert {k: p.status for k, p in parts.items()} == {
        (parent, first): "succeeded", (parent, second): "succeeded",
        (doomed, first): "failed",  # its second collection is not tried: the credentials do not reach it
        (good, first): "succeeded", (good, second): "succeeded"}  # fmt: skip
    error = parts[(doomed, first)].error or ""
    assert f"Twilio refused the credentials for account {doomed} (HTTP 401" in error, error
    assert report.run.error == f"{first} ({doomed}): {error}"
    for collection in ("messages", "addresses"):
        _assert_equal(world, "partly_suspended", collection, [parent, good])
    assert srv.call(srv.services.store.object_sources.states(row.sid)) and not [
        s for s in srv.call(srv.services.store.object_sources.states(row.sid)) if s.twilio_account_sid == doomed]

    # the run as the API shows it: the failed collection's error, word for word
    r = requests.get(f"{srv.url}/v1/ObjectSources/{row.sid}/Runs/{report.run.sid}", auth=(parent, token), timeout=10)
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["status"] == "failed" and run["error"] == report.run.error
    shown = {(c["twilio_account_sid"], c["collection"]): (c["status"], c["error"]) for c in run["collections"]}
    assert shown[(doomed, first)] == ("failed", error)
    assert shown[(good, second)] == ("succeeded", None) and (doomed, second) not in shown
    # and as the CLI shows it
    out = run_cli(["sources", "runs", "Partly Suspended", "-o", "json"], cli_env(srv.url, parent, token))
    assert out.returncode == 0, out.stderr
    (listed,) = json.loads(out.stdout)
    assert [c["error"] for c in listed["collections"] if c["status"] == "failed"] == [error]
    table = run_cli(["sources", "runs", "Partly Suspended"], cli_env(srv.url, parent, token))
    assert table.returncode == 0, table.stderr
    assert "failed" in table.stdout and doomed in table.stdout and "HTTP 401" in table.stdout, table.stdout


def test_a_failed_collection_is_recorded_with_its_error_and_the_others_go_on(world: dict[str, Any]) -> None:
    """One subaccount answers nothing but 500s: each of its collections fails after its retries, with the
    error recorded on that collection of the run; its other collections, and the other accounts, load."""
    srv: Server = world["srv"]
    parent, token = srv.new_account("Broken sub")
    seeded = srv.call(seeding.seed(srv.services, 60, 20, 2, 12, NOW, account_sid=parent))
    broken, good = (a.row.sid for a in seeded.accounts[1:])
    r = requests.post(f"{srv.url}/2010-04-01/Accounts/{broken}/Sandbox.json", auth=(parent, token),
                      data={"ServerErrorRatio": "1", "ServerErrorStatus": "500"}, timeout=10)  # fmt: skip
    assert r.status_code == 200, r.text
    account = srv.call(srv.services.accounts.principal_of(parent)).account
    row = srv.call(srv.services.object_sources.create(
        account, friendly_name="Half Broken", twilio_account_sid=parent, auth_token=token, schedule="manual",
        base_url=srv.url, include_subaccounts=True, start_date="2020-01-01", collections="messages,addresses"))  # fmt: skip
    report = _sync(world, row, retry=RetryPolicy(max_attempts=3, first_delay=0.005, max_delay=0.01))

    assert report.run.status == "failed"
    statuses = {(p.account_sid, p.collection): p.status for p in report.collections}
    assert statuses == {(a, c): "failed" if a == broken else "succeeded"
                        for a in (parent, broken, good) for c in ("messages", "addresses")}  # fmt: skip
    errors = {p.collection: p.error or "" for p in report.collections if p.account_sid == broken}
    for collection, error in errors.items():
        assert error.startswith(f"GET /2010-04-01/Accounts/{broken}/"), error
        assert "gave up after 3 attempts" in error and "last: HTTP 500" in error, error
    for collection in ("messages", "addresses"):
        _assert_equal(world, "half_broken", collection, [parent, good])

    r = requests.get(f"{srv.url}/v1/ObjectSources/{row.sid}/Runs/{report.run.sid}", auth=(parent, token), timeout=10)
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["status"] == "failed"
    assert {c["collection"]: c["error"] for c in run["collections"] if c["twilio_account_sid"] == broken} == errors
    assert all(c["error"] is None for c in run["collections"] if c["twilio_account_sid"] != broken)
    for collection, error in errors.items():
        assert f"{collection} ({broken}): {error}" in run["error"]


def test_a_scheduled_source_is_synced_by_the_scheduler(backend: str, tmp_path: Path) -> None:
    warehouse = f"duckdb:///{tmp_path}/wh.duckdb"
    with own_server(backend, tmp_path, sandbox=True, warehouse_url=warehouse, source_syncs=True) as srv:
        sid, token = srv.new_account("Scheduled")
        srv.call(seeding.seed(srv.services, 300, 50, 0, 9, NOW, account_sid=sid))
        account = srv.call(srv.services.accounts.principal_of(sid)).account
        row = srv.call(srv.services.object_sources.create(
            account, friendly_name="Every Hour", twilio_account_sid=sid, auth_token=token, schedule="1h",
            base_url=srv.url))  # fmt: skip
        deadline = time.monotonic() + 60
        while True:  # the first sync starts once the source exists
            fresh = srv.call(srv.services.store.object_sources.by_sid(row.sid))
            runs = srv.call(srv.services.object_sources.runs(row, seeding_page()))[0].items
            if runs and runs[0].status != "running" and fresh.lease_owner is None:
                break
            assert time.monotonic() < deadline, "no scheduled run finished"
            time.sleep(0.1)
        assert [r.status for r in runs] == ["succeeded"] and runs[0].trigger == "scheduled"
        assert fresh.next_run_at is not None and fresh.next_run_at > time.time() + 3000  # an hour on
        # the run is counted (metrics.py, through Syncer.on_report): per collection, by status
        metrics = srv.services.metrics.registry
        assert metrics.get_sample_value("eventstreams_source_sync_runs_total", {"status": "succeeded"}) == 1
        upserted = metrics.get_sample_value("eventstreams_source_sync_rows_total",
                                            {"collection": "messages", "stage": "upserted"})  # fmt: skip
        assert upserted is not None and upserted >= 300


def test_schedulers_share_many_due_sources_each_up_to_its_concurrency(backend: str, tmp_path: Path) -> None:
    """Three processes' schedulers (as in `worker`) on one store, two syncs at a time each, and five due
    sources: the first takes two, the second two, the third the last one; none is taken twice. The syncs
    are held open here so that which scheduler ran what does not depend on timing."""
    with own_server(backend, tmp_path, source_syncs=False) as srv:
        sid, token = srv.new_account("Shared")
        account = srv.call(srv.services.accounts.principal_of(sid)).account
        sids = set()
        for i in range(5):
            row = srv.call(srv.services.object_sources.create(
                account, friendly_name=f"Shared {i}", twilio_account_sid=sid, auth_token=token, schedule="manual",
                base_url=srv.url))  # fmt: skip
            srv.call(srv.services.object_sources.request_sync(row, full=False))  # due now
            sids.add(row.sid)

        async def share() -> tuple[list[int], dict[str, list[str]]]:
            gate = asyncio.Event()
            ran: dict[str, list[str]] = {}
            schedulers = []
            for owner in ("worker-a", "worker-b", "worker-c"):
                syncer = srv.services.syncer()
                syncer.owner = owner
                scheduler = Scheduler(srv.services.store, syncer, concurrency=2)

                async def held(key: str, owner: str = owner) -> None:  # a sync that lasts until the gate opens
                    ran.setdefault(owner, []).append(key)
                    await gate.wait()

                scheduler.jobs = [("source", scheduler._claim_sources, held)]
                schedulers.append(scheduler)
            started = [await s.tick() for s in schedulers]
            running = [t for s in schedulers for t in s._running.values()]
            gate.set()
            await asyncio.gather(*running)
            for s in schedulers:
                await s.stop()
            return started, ran

        started, ran = srv.call(share())
        assert started == [2, 2, 1]
        assert {o: len(keys) for o, keys in ran.items()} == {"worker-a": 2, "worker-b": 2, "worker-c": 1}
        assert sorted(k for keys in ran.values() for k in keys) == sorted(sids)  # each source once


def seeding_page() -> Any:
    from eventstreams.store.records import PageQuery

    return PageQuery(size=10)


def test_a_new_start_date_takes_effect_with_a_full_sync(world: dict[str, Any]) -> None:
    srv: Server = world["srv"]
    main = world["sid"]
    start = datetime.fromtimestamp(NOW - 30 * 86400, UTC).replace(hour=0)  # NOW is noon: a whole day
    row = _source(world, "Dated", start_date=start.strftime("%Y-%m-%d"), include_subaccounts=False,
                  collections="messages")  # fmt: skip
    assert _sync(world, row).run.status == "succeeded"
    every = _expected(world, "messages", [main])
    recent = {k for k, v in every.items() if v["date_created"] >= int(start.timestamp())}
    assert set(_warehouse(world, "dated", "messages")) == recent and len(recent) < len(every)

    account = srv.call(srv.services.accounts.principal_of(main)).account
    row = srv.call(srv.services.object_sources.update(row, start_date="2020-01-01"))
    assert _sync(world, row).run.kind == "incremental"
    assert set(_warehouse(world, "dated", "messages")) == recent  # Segment's rule: not until a full sync
    row = srv.call(srv.services.object_sources.request_sync(row, full=True))
    assert _sync(world, row).run.kind == "full"
    assert set(_warehouse(world, "dated", "messages")) == set(every)
    assert srv.call(srv.services.object_sources.get(account, row.sid)).full_sync_requested is False


def test_an_unselected_collection_keeps_its_data(world: dict[str, Any]) -> None:
    srv: Server = world["srv"]
    row = _source(world, "Narrowed", include_subaccounts=False, collections="messages,addresses")
    assert _sync(world, row).run.status == "succeeded"
    addresses = _warehouse(world, "narrowed", "addresses")
    assert addresses
    row = srv.call(srv.services.object_sources.update(row, collections="messages"))
    report = _sync(world, row)
    assert [p.collection for p in report.collections] == ["messages"]
    assert _warehouse(world, "narrowed", "addresses") == addresses  # kept as it was, not synced


def test_an_api_key_credential_syncs(world: dict[str, Any]) -> None:
    srv: Server = world["srv"]
    account = srv.call(srv.services.accounts.principal_of(world["sid"])).account
    key, secret = srv.call(srv.services.accounts.create_key(account, "object source"))
    row = _source(world, "Keyed", auth_token=None, api_key_sid=key.sid, api_key_secret=secret,
                  include_subaccounts=False, collections="addresses,conferences")  # fmt: skip
    report = _sync(world, row)
    assert report.run.status == "succeeded", report.run.error
    _assert_equal(world, "keyed", "conferences", [world["sid"]])
    _assert_equal(world, "keyed", "addresses", [world["sid"]])
