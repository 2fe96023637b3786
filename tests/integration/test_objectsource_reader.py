"""The object source's Twilio reader against a real seeded sandbox (SQLite: what is under test is the
reader and the sandbox's HTTP surface, not the store).

Expected values come from the sandbox's own tables (read through the store), converted here
independently of ``objectsource.collections``: ISO text → datetime, price text → float.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from aiohttp import web

from eventstreams.objectsource.client import (
    PAGE_SIZE,
    RetryPolicy,
    TwilioAuthError,
    TwilioReader,
    TwilioReadError,
    first_uri,
)
from eventstreams.objectsource.collections import COLLECTIONS, Collection, cursor_value, filter_params, to_row
from eventstreams.sandbox.seed import seed
from tests.conftest import Server, own_server

NOW = datetime.now(UTC).replace(microsecond=0)
LISTS = ("messages", "calls", "conferences", "transcriptions", "addresses")
TABLES = {name: f"sandbox_{name}" for name in LISTS}
# store column → the record's key, where they differ
RENAMED = {"from": "from_number", "to": "to_number"}


@dataclass
class Seeded:
    sid: str
    token: str
    accounts: list[str]  # main, then its subaccount
    sub_token: str


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with own_server("sqlite", tmp_path_factory.mktemp("reader"), sandbox=True) as server:
        yield server


@pytest.fixture(scope="module")
def seeded(srv: Server) -> Seeded:
    sid, token = srv.new_account("Object source reader")
    # 3,000 messages and 3,200 calls over two accounts: more than one page (1,000) each
    report = srv.call(seed(srv.services, 3000, 3200, 1, 21, time.time(), account_sid=sid))
    return Seeded(sid, token, [a.row.sid for a in report.accounts], report.accounts[1].auth_token)


def rows(srv: Server, table: str, account: str) -> list[dict[str, Any]]:
    sql = f"SELECT * FROM {table} WHERE account_sid = :account"
    return [dict(r) for r in srv.call(srv.services.store.db.run(lambda tx: tx.all(sql, account=account)))]


def reader(srv: Server, seeded: Seeded, **kw: Any) -> TwilioReader:
    return TwilioReader(srv.url, seeded.sid, seeded.token, allow_private=True, **kw)


async def read_all(r: TwilioReader, account: str, c: Collection, params: dict[str, str] | None = None) -> tuple[
        list[dict[str, Any]], int]:  # fmt: skip
    records: list[dict[str, Any]] = []
    uri: str | None = first_uri(account, c, params)
    pages = 0
    while uri is not None:
        page = await r.page(uri, c.list_key)
        records.extend(page.records)
        pages += 1
        uri = page.next_page_uri
    return records, pages


def when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def expected_row(c: Collection, stored: dict[str, Any]) -> dict[str, Any]:
    """What the row of a stored sandbox record must be, by the column's declared type."""
    out: dict[str, Any] = {"id": stored["call_sid"] if c.name == "call_feedback" else stored["sid"]}
    for col in c.columns[1:-2]:
        key = RENAMED.get(col.name, col.name)
        if col.name == "api_version":
            out[col.name] = "2010-04-01"
            continue
        if col.name == "issues":
            out[col.name] = orjson.dumps(orjson.loads(stored["issues"])).decode()
            continue
        value = stored[key]
        if value is None:
            out[col.name] = None
        elif col.type == "timestamp":
            out[col.name] = when(value)
        elif col.type == "float":
            out[col.name] = float(value)
        elif col.type == "boolean":
            out[col.name] = bool(value)
        elif col.type == "integer":
            out[col.name] = int(value)
        else:
            out[col.name] = value
    out["received_at"] = out["uuid_ts"] = NOW
    return out


def switches(srv: Server, seeded: Seeded, account: str, **fields: str) -> None:
    r = requests.post(f"{srv.url}/2010-04-01/Accounts/{account}/Sandbox.json", data=fields,
                      auth=(seeded.sid, seeded.token), timeout=10)  # fmt: skip
    assert r.status_code == 200, r.text


class Sleeps:
    """The reader's sleep: records the delays and yields without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


# -- complete reads


async def test_every_collection_reads_completely_and_types_every_field(srv: Server, seeded: Seeded) -> None:
    async with reader(srv, seeded) as r:
        for name in LISTS:
            c = COLLECTIONS[name]
            for account in seeded.accounts:
                records, pages = await read_all(r, account, c)
                stored = {row["sid"]: row for row in rows(srv, TABLES[name], account)}
                got = Counter(rec["sid"] for rec in records)
                assert got == Counter(stored.keys()), f"{name} {account}: read {got.total()}, stored {len(stored)}"
                assert pages == max(1, -(-len(stored) // PAGE_SIZE)), (name, pages, len(stored))
                for rec in records:
                    assert to_row(c, rec, NOW) == expected_row(c, stored[rec["sid"]]), (name, rec["sid"])
        assert r.retries == 0
    big = [len(rows(srv, TABLES[n], a)) for n in ("messages", "calls") for a in seeded.accounts]
    assert min(big) > PAGE_SIZE, big  # the paging above crossed pages for both
    assert all(rows(srv, TABLES[n], seeded.accounts[1]) for n in LISTS)


async def test_accounts_lists_the_main_account_and_its_subaccounts(srv: Server, seeded: Seeded) -> None:
    async with reader(srv, seeded) as r:
        got = await r.accounts(seeded.sid)
    assert sorted(a["sid"] for a in got) == sorted(seeded.accounts)
    assert {a["sid"]: a["owner_account_sid"] for a in got} == dict.fromkeys(seeded.accounts, seeded.sid)
    async with TwilioReader(srv.url, seeded.accounts[1], seeded.sub_token, allow_private=True) as sub:
        assert [a["sid"] for a in await sub.accounts()] == [seeded.accounts[1]]  # not its parent


# -- incremental filters


@pytest.mark.parametrize("name", ["calls", "conferences"])  # messages: newest first, no filter (collections.py)
async def test_date_filters_select_the_days_of_the_window(srv: Server, seeded: Seeded, name: str) -> None:
    c = COLLECTIONS[name]
    assert c.cursor is not None
    account = seeded.sid
    stored = rows(srv, TABLES[name], account)
    cursors = sorted(when(row[c.cursor]) for row in stored if row[c.cursor] is not None)  # type: ignore[type-var]
    assert len(cursors) > 20
    lower, upper = cursors[len(cursors) // 3], cursors[len(cursors) // 2]
    assert lower is not None and upper is not None
    params = filter_params(c, lower, upper)
    first_day, last_day = (
        date.fromisoformat(params[c.lower_param or ""]),
        date.fromisoformat(params[c.upper_param or ""]),
    )
    async with reader(srv, seeded) as r:
        records, _ = await read_all(r, account, c, params)
    got = Counter(rec["sid"] for rec in records)
    # the sandbox reads bare dates as whole UTC days, both bounds inclusive (docs/sandbox.md)
    expected = Counter(row["sid"] for row in stored if row[c.cursor] is not None
                       and first_day <= when(row[c.cursor]).date() <= last_day)  # type: ignore[union-attr]  # fmt: skip
    assert got == expected
    assert 0 < got.total() < len(stored)
    # nothing inside the asked window is missed, and cursor_value reads what the filter compared
    inside = {row["sid"] for row in stored if row[c.cursor] and lower <= when(row[c.cursor]) <= upper}  # type: ignore[operator]
    assert inside and inside <= set(got)
    assert all(first_day <= cursor_value(c, rec).date() <= last_day for rec in records)  # type: ignore[union-attr]


# -- call feedback


async def test_feedback_concurrently_scores_and_none_for_404(srv: Server, seeded: Seeded) -> None:
    for account in seeded.accounts:
        calls = [row["sid"] for row in rows(srv, "sandbox_calls", account)]
        stored = {row["call_sid"]: row for row in rows(srv, "sandbox_call_feedback", account)}
        assert stored and len(stored) < len(calls)
        async with reader(srv, seeded, max_concurrency=16) as r:
            started = time.monotonic()
            got = await r.feedback(account, calls)
            took = time.monotonic() - started
        assert [sid for sid, _ in got] == calls  # in the order asked
        assert {sid for sid, fb in got if fb is not None} == set(stored)
        c = COLLECTIONS["call_feedback"]
        for sid, fb in got:
            if fb is not None:
                assert fb["sid"] == sid and fb["quality_score"] == stored[sid]["quality_score"]
                assert to_row(c, fb, NOW) == expected_row(c, stored[sid])
        assert r.requests == len(calls) and r.retries == 0
        assert took < 60


async def test_feedback_runs_up_to_max_concurrency_at_once(srv: Server, seeded: Seeded) -> None:
    # Each GET waits on its own response; count how many are open at once by wrapping the sender.
    calls = [row["sid"] for row in rows(srv, "sandbox_calls", seeded.sid)][:200]
    async with reader(srv, seeded, max_concurrency=8) as r:
        inner = r._get
        open_now = peak = 0

        async def counted(uri: str, **kw: Any) -> bytes | None:
            nonlocal open_now, peak
            open_now += 1
            peak = max(peak, open_now)
            try:
                return await inner(uri, **kw)
            finally:
                open_now -= 1

        r._get = counted  # type: ignore[method-assign]
        got = await r.feedback(seeded.sid, calls)
    assert len(got) == 200 and peak == 8


# -- faults


async def test_429_storm_and_5xx_are_survived_with_complete_results(srv: Server, seeded: Seeded) -> None:
    account = seeded.accounts[1]
    c = COLLECTIONS["messages"]
    expected = Counter(row["sid"] for row in rows(srv, TABLES["messages"], account))
    calls = [row["sid"] for row in rows(srv, "sandbox_calls", account)][:300]
    with_feedback = {row["call_sid"] for row in rows(srv, "sandbox_call_feedback", account)} & set(calls)
    try:
        switches(srv, seeded, account, RateLimitRatio="0.7", RetryAfter="3")
        sleeps = Sleeps()
        async with reader(srv, seeded, sleep=sleeps, retry=RetryPolicy(max_attempts=40)) as r:
            records, _ = await read_all(r, account, c)
            got = await r.feedback(account, calls)
        assert Counter(rec["sid"] for rec in records) == expected
        assert {sid for sid, fb in got if fb is not None} == with_feedback
        assert r.retries > 100 and set(sleeps.delays) == {3.0}  # Retry-After honoured, every time

        switches(srv, seeded, account, RateLimitRatio="0", ServerErrorRatio="0.5", ServerErrorStatus="503")
        sleeps = Sleeps()
        policy = RetryPolicy(max_attempts=40, first_delay=0.2, max_delay=1.0)
        async with reader(srv, seeded, sleep=sleeps, retry=policy) as r:
            records, _ = await read_all(r, account, c)
        assert Counter(rec["sid"] for rec in records) == expected
        assert r.retries >= 1 and all(0.1 <= d <= 1.0 for d in sleeps.delays)  # backoff, capped

        switches(srv, seeded, account, ServerErrorRatio="1", ServerErrorStatus="500")
        sleeps = Sleeps()
        async with reader(srv, seeded, sleep=sleeps, retry=RetryPolicy(max_attempts=4, first_delay=1.0)) as r:
            with pytest.raises(TwilioReadError, match="gave up after 4 attempts") as caught:
                await r.page(first_uri(account, c))
        assert caught.value.retryable and caught.value.status == 500 and r.requests == 4
        assert len(sleeps.delays) == 3 and 0.5 <= sleeps.delays[0] <= 1.0 and 1.0 <= sleeps.delays[2] <= 4.0
    finally:
        switches(srv, seeded, account, RateLimitRatio="0", ServerErrorRatio="0")


async def test_401_raises_auth_error_at_once(srv: Server, seeded: Seeded) -> None:
    sleeps = Sleeps()
    async with TwilioReader(srv.url, seeded.sid, "0" * 32, allow_private=True, sleep=sleeps) as r:
        with pytest.raises(TwilioAuthError, match=f"account {seeded.sid}.*check the Account SID") as caught:
            await r.page(first_uri(seeded.sid, COLLECTIONS["messages"]))
        with pytest.raises(TwilioAuthError):
            await r.accounts()
        calls = [row["sid"] for row in rows(srv, "sandbox_calls", seeded.sid)][:50]
        with pytest.raises(TwilioAuthError):  # one error, not a group of the workers' errors
            await r.feedback(seeded.sid, calls)
    assert caught.value.status == 401 and caught.value.code == 20003
    assert 3 <= r.requests <= 2 + r.max_concurrency and sleeps.delays == []


async def test_other_4xx_carry_twilios_code_and_message(srv: Server, seeded: Seeded) -> None:
    async with reader(srv, seeded) as r:
        stranger = "AC" + "f" * 32
        with pytest.raises(TwilioReadError) as caught:
            await r.page(first_uri(stranger, COLLECTIONS["messages"]))
        assert caught.value.status == 404 and caught.value.code == 20404 and not caught.value.retryable
        forged = f"{first_uri(seeded.sid, COLLECTIONS['messages'])}&Page=1&PageToken=PAforged"
        with pytest.raises(TwilioReadError, match="21481") as caught:
            await r.page(forged)
        assert caught.value.status == 400 and r.requests == 2


async def test_ssrf_policy_applies_unless_private_destinations_are_allowed(srv: Server, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        TwilioReader(srv.url, "AC1", "x")  # a private literal: refused at configuration
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        TwilioReader.from_settings(replace(srv.settings, allow_private_destinations=False), srv.url, "AC1", "x")
    async with TwilioReader.from_settings(srv.settings, srv.url, "AC1", "x") as allowed:  # the tests allow private
        assert allowed.base_url == srv.url

    async def to_loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]  # a public-looking name that resolves to a private address

    port = srv.url.rsplit(":", 1)[1]
    sleeps = Sleeps()
    async with TwilioReader(f"http://twilio.example.com:{port}", "AC1", "x", resolver=to_loopback,
                            sleep=sleeps) as r:  # fmt: skip
        with pytest.raises(TwilioReadError, match=r"(?i)private|not public|refused|forbidden"):
            await r.accounts()
    assert r.requests == 1 and sleeps.delays == []  # refused at connect time, not retried


# -- against a scripted server: what the sandbox does not do


@contextlib.asynccontextmanager
async def scripted(answers: dict[str, list[web.Response]]) -> AsyncIterator[tuple[str, list[str]]]:
    """A local server answering each path with its list of responses in turn (the last repeats);
    yields its URL and the raw request targets it saw."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(request.raw_path)
        queue = answers[request.path]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


def listing(records: list[dict[str, Any]], next_uri: str | None) -> web.Response:
    return web.json_response({"messages": records, "next_page_uri": next_uri, "page": 0, "page_size": 1000,
                              "uri": "/x", "start": 0, "end": len(records) - 1})  # fmt: skip


async def test_backoff_without_retry_after_verbatim_next_page_and_bad_answers() -> None:
    token = "/2010-04-01/Accounts/AC1/Messages.json?PageSize=1000&Page=1&PageToken=PA%2Fabc%3D%3D"
    answers = {
        "/2010-04-01/Accounts/AC1/Messages.json": [
            web.Response(status=503, text="busy"),
            web.Response(status=502, text="<html>bad gateway</html>"),
            listing([{"sid": "SM1"}], token),
        ],
        "/problem": [web.json_response({"type": "about:blank", "title": "Bad request", "status": 400, "code": 20001,
                                        "detail": "PageSize too large"}, status=400,
                                       content_type="application/problem+json")],
        "/notjson": [web.Response(status=200, text="<html>hello</html>")],
        "/limited": [web.Response(status=429, headers={"Retry-After": "9999"}),
                     web.Response(status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
                     listing([], None)],
    }  # fmt: skip
    async with scripted(answers) as (url, seen):
        sleeps = Sleeps()
        policy = RetryPolicy(first_delay=0.4, max_delay=10.0, max_retry_after=60.0)
        async with TwilioReader(url, "AC1", "x", allow_private=True, sleep=sleeps, retry=policy) as r:
            page = await r.page(first_uri("AC1", COLLECTIONS["messages"]))
            assert [x["sid"] for x in page.records] == ["SM1"] and page.next_page_uri == token
            assert len(sleeps.delays) == 2 and 0.2 <= sleeps.delays[0] <= 0.4 and 0.4 <= sleeps.delays[1] <= 0.8
            answers["/2010-04-01/Accounts/AC1/Messages.json"] = [listing([{"sid": "SM2"}], None)]
            nxt = await r.page(token)
            assert [x["sid"] for x in nxt.records] == ["SM2"] and nxt.next_page_uri is None
            assert seen[-1] == token  # sent as Twilio wrote it: %2F and %3D were not decoded or re-encoded

            with pytest.raises(TwilioReadError, match="20001: PageSize too large") as caught:
                await r.page("/problem")
            assert caught.value.code == 20001 and caught.value.status == 400
            with pytest.raises(TwilioReadError, match="not JSON"):
                await r.page("/notjson")

            sleeps.delays.clear()
            await r.page("/limited")
            assert sleeps.delays[0] == 60.0  # a huge Retry-After is capped
            assert 0.2 <= sleeps.delays[1] <= 0.8  # the date form: backoff (second retry)


async def test_connection_errors_are_retried_then_reported() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    async with TwilioReader(f"http://127.0.0.1:{port}", "AC1", "x", allow_private=True, sleep=sleeps,
                            retry=RetryPolicy(max_attempts=3)) as r:  # fmt: skip
        with pytest.raises(TwilioReadError, match="gave up after 3 attempts") as caught:
            await r.accounts()
    assert caught.value.retryable and caught.value.status is None and len(sleeps.delays) == 2
