"""`eventstreams sandbox seed`: reproducible, consistent data, seeded into a real store, and the
command's printed credentials work."""

from __future__ import annotations

import asyncio
import base64
import calendar
import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import phonenumbers
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from eventstreams.cli.main import main
from eventstreams.config import Settings
from eventstreams.ids import new_sid, normalize_sid
from eventstreams.runtime import Runtime, build_runtime
from eventstreams.sandbox import phones, views
from eventstreams.sandbox import seed as seeding
from eventstreams.sandbox.service import FEEDBACK_ISSUES
from eventstreams.store.db import count
from eventstreams.store.repos import sandbox as kinds
from tests.unit.conftest import memory_settings

NOW = 1_780_000_000  # 2026-05-28T20:26:40Z
ACCOUNTS = ["AC" + "a" * 32, "AC" + "b" * 32, "AC" + "c" * 32]


def epoch(value: str) -> int:
    return calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))


@pytest.fixture(scope="module")
def data() -> seeding.Dataset:
    return seeding.generate(ACCOUNTS, 6000, 3000, 11, NOW)


# -- reproducibility


def test_the_same_seed_and_now_give_the_same_rows(data: seeding.Dataset) -> None:
    again = seeding.generate(ACCOUNTS, 6000, 3000, 11, NOW)
    assert again == data
    assert repr(again) == repr(data)  # byte for byte, field by field


def test_another_seed_or_now_gives_other_rows(data: seeding.Dataset) -> None:
    other = seeding.generate(ACCOUNTS, 6000, 3000, 12, NOW)
    assert not {m.sid for m in other.messages} & {m.sid for m in data.messages}
    assert [m.body for m in other.messages] != [m.body for m in data.messages]
    later = seeding.generate(ACCOUNTS, 6000, 3000, 11, NOW + 86_400)
    assert not {c.sid for c in later.calls} & {c.sid for c in data.calls}
    assert max(m.date_created for m in later.messages) > max(m.date_created for m in data.messages)


def test_each_collection_has_its_own_stream() -> None:
    """Changing the number of calls leaves the messages as they were."""
    a = seeding.generate(ACCOUNTS[:1], 500, 100, 3, NOW)
    b = seeding.generate(ACCOUNTS[:1], 500, 400, 3, NOW)
    assert a.messages == b.messages
    assert a.addresses == b.addresses
    assert a.calls != b.calls


# -- counts and spread


def test_counts_follow_the_options(data: seeding.Dataset) -> None:
    assert len(data.messages) == 6000
    assert len(data.calls) == 3000
    assert len(data.conferences) == 3000 // 20
    assert len(data.transcriptions) == 3000 // 10
    completed = [c for c in data.calls if c.status == "completed"]
    assert 0.10 * len(completed) < len(data.feedback) < 0.20 * len(completed)
    per_account = Counter(a.account_sid for a in data.addresses)
    assert set(per_account) == set(ACCOUNTS)
    assert all(24 <= n <= 48 for n in per_account.values())
    counts = data.counts()
    assert set(counts) == set(ACCOUNTS)
    for kind in seeding.COLLECTIONS:  # every account has some of everything, the main one the most
        assert all(counts[a].get(kind.name, 0) > 0 for a in ACCOUNTS), kind.name
    assert counts[ACCOUNTS[0]]["message"] == max(c["message"] for c in counts.values())
    assert sum(c["message"] for c in counts.values()) == 6000


def test_no_rows_for_zero_counts() -> None:
    d = seeding.generate(ACCOUNTS[:1], 0, 0, 1, NOW)
    assert (d.messages, d.calls, d.feedback, d.conferences, d.transcriptions) == ([], [], [], [], [])
    assert d.addresses


# -- SIDs and dates


def test_sids_are_valid_unique_and_not_api_sids(data: seeding.Dataset) -> None:
    prefixes = {"message": "SM", "call": "CA", "conference": "CF", "transcription": "TR", "address": "AD"}
    seen: set[str] = set()
    for kind, rows in data.collections():
        if kind is kinds.FEEDBACK:
            continue
        for r in rows:
            assert normalize_sid(prefixes[kind.name], r.sid) == r.sid
            assert r.sid[2] == seeding.SEEDED_SIDS  # never ids.new_sid's first digit (0 until 2527)
            # the time field is the row's creation time: (date_created, sid) order is creation order
            assert (int(r.sid[2:14], 16) & ~seeding.SEEDED_MARK) // 1000 == epoch(r.date_created)
            seen.add(r.sid)
    assert len(seen) == data.rows() - len(data.feedback)
    assert new_sid("SM")[2] != seeding.SEEDED_SIDS
    for t in data.transcriptions:
        assert normalize_sid("RE", t.recording_sid) == t.recording_sid


def test_dates_lie_in_the_year_before_now(data: seeding.Dataset) -> None:
    for _, rows in data.collections():
        for r in rows:
            assert NOW - 366 * 86_400 <= epoch(r.date_created) <= epoch(r.date_updated) <= NOW
    months = Counter(m.date_created[:7] for m in data.messages)
    assert len(months) >= 12  # spread over the year, not bunched


# -- messages


def test_message_statuses_match_directions_and_errors(data: seeding.Dataset) -> None:
    directions = Counter(m.direction for m in data.messages)
    assert directions.most_common(1)[0][0] == "outbound-api"
    assert set(directions) == {"outbound-api", "inbound", "outbound-reply", "outbound-call"}
    statuses = Counter(m.status for m in data.messages)
    assert set(statuses) == {"delivered", "sent", "undelivered", "failed", "received"}
    codes = set()
    for m in data.messages:
        assert m.next_step_at is None and m.price_unit == "USD"
        if m.direction == "inbound":
            assert m.status == "received"
        else:
            assert m.status in ("delivered", "sent", "undelivered", "failed")
        if m.status in ("undelivered", "failed"):
            assert m.error_code in seeding.MESSAGE_ERRORS and m.error_message == seeding.MESSAGE_ERRORS[m.error_code]
            assert (m.error_code == 30008) == (m.status == "failed")
            codes.add(m.error_code)
        else:
            assert m.error_code is None and m.error_message is None
        assert m.messaging_service_sid is None or (
            m.direction == "outbound-api" and normalize_sid("MG", m.messaging_service_sid)
        )
    assert codes == {30003, 30005, 30006, 30007, 30008}


def test_message_segments_prices_and_bodies(data: seeding.Dataset) -> None:
    ucs2 = multi = media = 0
    for m in data.messages:
        assert 0 < len(m.body) <= phones.MAX_BODY
        assert m.num_segments == phones.segments(m.body)
        if m.status == "failed":
            assert m.price is None
        elif m.num_media:
            assert m.price == "-0.02000"
        else:
            assert m.price == f"{-0.0079 * m.num_segments:.5f}"
        ucs2 += not m.body.isascii() and len(m.body.encode("utf-16-le")) // 2 <= 70 < m.num_segments * 160
        multi += m.num_segments > 1
        media += m.num_media > 0
    assert ucs2 and multi > 50 and media > 50
    assert any(m.price == "-0.00790" for m in data.messages)
    assert len({m.body for m in data.messages}) > 500


def test_message_dates_are_consistent_and_some_change_late(data: seeding.Dataset) -> None:
    late = 0
    for m in data.messages:
        created, updated = epoch(m.date_created), epoch(m.date_updated)
        if m.status == "failed":
            assert m.date_sent is None
        else:
            assert m.date_sent is not None
            assert created <= epoch(m.date_sent) <= updated
            late += updated - epoch(m.date_sent) > 86_400 / 2
    assert late > 50  # late status changes, what an incremental sync must pick up


def test_phone_numbers_are_valid_e164_from_several_countries(data: seeding.Dataset) -> None:
    numbers = {m.to_number for m in data.messages} | {m.from_number for m in data.messages}
    numbers |= {c.to_number for c in data.calls} | {c.from_number for c in data.calls}
    regions = Counter()
    for n in numbers:
        assert phones.check_to(n) == n
        parsed = phonenumbers.parse(n)
        assert phonenumbers.is_valid_number(parsed), n
        regions[phonenumbers.region_code_for_number(parsed)] += 1
    assert {"US", "CA", "GB", "DE", "FR", "BR", "IN", "AU", "MX"} <= set(regions)
    assert regions.most_common(1)[0][0] == "US"


# -- calls and what hangs on them


def test_calls_are_consistent(data: seeding.Dataset) -> None:
    by_sid = {c.sid: c for c in data.calls}
    statuses = Counter(c.status for c in data.calls)
    assert set(statuses) == {"completed", "busy", "no-answer", "failed", "canceled"}
    assert set(Counter(c.direction for c in data.calls)) == {"inbound", "outbound-api", "outbound-dial"}
    for c in data.calls:
        assert c.next_step_at is None and c.outcome == c.status and c.price_unit == "USD"
        assert c.to_formatted == phones.national(c.to_number) and c.from_formatted == phones.national(c.from_number)
        assert c.start_time is not None and c.end_time is not None and c.duration is not None
        start, end = epoch(c.start_time), epoch(c.end_time)
        assert epoch(c.date_created) <= start <= end <= epoch(c.date_updated) <= NOW
        if c.status == "completed":
            assert c.duration == end - start > 0
            assert c.price is not None and re.fullmatch(r"-0\.\d{5}|-\d+\.\d{5}", c.price) and float(c.price) < 0
        else:
            assert c.duration == 0 and c.price is None and c.answered_by is None
        assert c.answered_by is None or (c.direction == "outbound-api" and c.status == "completed")
        assert c.caller_name is None or c.direction == "inbound"
        if c.direction == "outbound-dial":
            parent = by_sid[c.parent_call_sid or ""]
            assert parent.account_sid == c.account_sid and parent.status == "completed"
            assert parent.direction in ("inbound", "outbound-api")
            assert parent.start_time is not None and parent.end_time is not None
            assert epoch(parent.start_time) <= epoch(c.date_created) and end <= epoch(parent.end_time)
        else:
            assert c.parent_call_sid is None
    assert sum(c.direction == "outbound-dial" for c in data.calls) == int(3000 * 0.15)
    assert any(c.answered_by for c in data.calls) and any(c.caller_name for c in data.calls)


def test_feedback_only_on_completed_calls(data: seeding.Dataset) -> None:
    by_sid = {c.sid: c for c in data.calls}
    assert len({f.call_sid for f in data.feedback}) == len(data.feedback)
    scores = Counter()
    for f in data.feedback:
        call = by_sid[f.call_sid]
        assert call.status == "completed" and call.account_sid == f.account_sid
        assert call.end_time is not None and epoch(f.date_created) >= epoch(call.end_time)
        issues = orjson.loads(f.issues)
        assert isinstance(issues, list) and len(set(issues)) == len(issues) and set(issues) <= set(FEEDBACK_ISSUES)
        assert 1 <= f.quality_score <= 5
        scores[f.quality_score] += 1
        assert views.feedback(f)["issues"] == issues
    assert set(scores) == {1, 2, 3, 4, 5}


def test_conferences_and_transcriptions_hang_on_completed_calls(data: seeding.Dataset) -> None:
    by_sid = {c.sid: c for c in data.calls}
    reasons = Counter()
    for cf in data.conferences:
        assert cf.status in ("completed", "in-progress") and cf.region
        if cf.status == "completed":
            assert cf.reason_conference_ended is not None
            reasons[cf.reason_conference_ended] += 1
            if cf.reason_conference_ended == "conference-ended-via-api":
                assert cf.call_sid_ending_conference is None
            else:
                ender = by_sid[cf.call_sid_ending_conference or ""]
                assert ender.account_sid == cf.account_sid and ender.status == "completed"
                assert ender.end_time is not None and epoch(ender.end_time) <= epoch(cf.date_updated)
        else:
            assert cf.reason_conference_ended is None and cf.call_sid_ending_conference is None
    assert len(reasons) >= 4
    statuses = Counter(t.status for t in data.transcriptions)
    assert set(statuses) == {"completed", "failed"}
    for t in data.transcriptions:
        assert t.type == "fulltext" and t.duration is not None and 1 <= t.duration <= 120
        if t.status == "completed":
            assert t.transcription_text and t.price is not None and float(t.price) < 0
        else:
            assert t.transcription_text is None and t.price is None
        assert views.transcription(t)["duration"] == str(t.duration)


def test_addresses_are_plausible(data: seeding.Dataset) -> None:
    countries = Counter(a.iso_country for a in data.addresses)
    assert len(countries) >= 8
    for a in data.addresses:
        assert re.fullmatch(r"[A-Z]{2}", a.iso_country) and a.street and a.city and a.postal_code
        assert "#" not in a.postal_code
        assert not a.emergency_enabled or a.iso_country in ("US", "CA")
        assert not a.verified or a.validated
    assert any(a.emergency_enabled for a in data.addresses) and any(not a.validated for a in data.addresses)


def test_national_templates_match_libphonenumber() -> None:
    """The template cache must format exactly as phones.national does, for every country we draw."""
    import random

    rng = random.Random(5)
    national = seeding._National()
    for _ in range(20_000):
        n = seeding._number(rng)
        assert national(n) == phones.national(n), n


# -- seeding a store


async def _all(rt: Runtime, table: str) -> list[dict[str, Any]]:
    key = "call_sid" if table == "sandbox_call_feedback" else "sid"
    return await rt.store.db.run(lambda tx: tx.all(f"SELECT * FROM {table} ORDER BY {key}"))


async def test_seed_inserts_everything_and_refuses_to_repeat_itself(runtime: Runtime) -> None:
    report = await seeding.seed(runtime, 800, 300, 2, seed=5, now=NOW)
    main_row, *subs = report.accounts
    assert main_row.created and main_row.role == "main" and main_row.row.parent_sid is None
    assert [s.row.parent_sid for s in subs] == [main_row.row.sid] * 2
    for kind in seeding.COLLECTIONS:
        stored = await runtime.store.db.run(lambda tx, k=kind: count(tx, f"SELECT COUNT(*) AS n FROM {k.table}"))
        assert stored == sum(c.get(kind.name, 0) for c in report.counts.values()) > 0
    assert sum(c["message"] for c in report.counts.values()) == 800
    # the rows read back are what was generated (booleans and NULLs included) and render as Twilio JSON
    msg = (await _all(runtime, "sandbox_messages"))[0]
    stored_msg = await runtime.sandbox.message(msg["account_sid"], msg["sid"])
    assert views.message(stored_msg)["num_segments"] == str(stored_msg.num_segments)
    page = await runtime.sandbox.addresses(main_row.row.sid, None, None, None, None, _page())
    assert page.items and all(isinstance(a.emergency_enabled, bool) for a in page.items)

    accounts_before = await runtime.store.accounts.count()
    with pytest.raises(seeding.SeedError, match="already seeded"):
        await seeding.seed(runtime, 800, 300, 2, seed=5, now=NOW)
    assert await runtime.store.accounts.count() == accounts_before  # refused before creating anything

    more = await seeding.seed(runtime, 100, 40, 0, seed=6, now=NOW)  # another seed adds data
    assert [a.row.sid for a in more.accounts] == [main_row.row.sid] and not more.accounts[0].created
    assert more.accounts[0].auth_token == main_row.auth_token
    stored = await runtime.store.db.run(lambda tx: count(tx, "SELECT COUNT(*) AS n FROM sandbox_messages"))
    assert stored == 900


async def test_seeding_two_fresh_stores_gives_the_same_rows(runtime: Runtime, tmp_path: Path) -> None:
    other = await build_runtime(memory_settings(tmp_path))
    try:
        reports = [await seeding.seed(rt, 300, 100, 2, seed=9, now=NOW) for rt in (runtime, other)]
        # account SIDs are new in each store; everything else is the same
        same = {b.row.sid: a.row.sid for a, b in zip(reports[0].accounts, reports[1].accounts, strict=True)}
        for table in ("sandbox_messages", "sandbox_calls", "sandbox_call_feedback", "sandbox_addresses"):
            first, second = await _all(runtime, table), await _all(other, table)
            assert first == [{**r, "account_sid": same[r["account_sid"]]} for r in second]
    finally:
        await other.close()


async def test_seed_into_a_named_account(runtime: Runtime) -> None:
    row, token = await runtime.accounts.create("Mine")
    report = await seeding.seed(runtime, 50, 20, 0, seed=1, now=NOW, account_sid=row.sid)
    assert report.accounts[0].row.sid == row.sid and report.accounts[0].auth_token == token
    assert set(report.counts) == {row.sid}
    sub, _ = await runtime.accounts.create("Sub", parent_sid=row.sid)
    with pytest.raises(seeding.SeedError, match="subaccount"):
        await seeding.seed(runtime, 50, 20, 1, seed=2, now=NOW, account_sid=sub.sid)


async def test_seed_fills_the_configured_first_account(tmp_path: Path) -> None:
    """With EVENTSTREAMS_ACCOUNT_SID/AUTH_TOKEN set, that account is the main one, as in `serve`."""
    sid, token = "AC" + "d" * 32, "e" * 32
    # given in upper case: Twilio's SIDs are matched case-insensitively, stored in lower case
    rt = await build_runtime(memory_settings(tmp_path, account_sid="AC" + "D" * 32, auth_token=token))
    try:
        await rt.accounts.create("Older, but not the configured one")
        report = await seeding.seed(rt, 20, 10, 1, seed=1, now=NOW)
        assert (report.accounts[0].row.sid, report.accounts[0].auth_token) == (sid, token)
        assert report.accounts[1].row.parent_sid == sid
    finally:
        await rt.close()


def test_parse_now() -> None:
    assert seeding.parse_now("1780000000") == NOW
    assert seeding.parse_now("2026-05-28T20:26:40Z") == NOW
    assert seeding.parse_now("2026-05-28") == NOW - (20 * 3600 + 26 * 60 + 40)
    with pytest.raises(ValueError, match="not a date"):
        seeding.parse_now("yesterday")


def _page() -> Any:
    from eventstreams.store.records import PageQuery

    return PageQuery(size=1000)


# -- the command


def _env(tmp: Path) -> dict[str, str | None]:
    return {
        "EVENTSTREAMS_SANDBOX_DATABASE_URL": f"sqlite:///{tmp}/sandbox.db",
        "EVENTSTREAMS_DATABASE_URL": f"sqlite:///{tmp}/main.db",
        "EVENTSTREAMS_DATA_DIR": str(tmp),
        "EVENTSTREAMS_SECRET_KEY": Fernet.generate_key().decode(),
        "EVENTSTREAMS_ACCOUNT_SID": None,
        "EVENTSTREAMS_AUTH_TOKEN": None,
    }


def _authenticate(tmp: Path, env: dict[str, str | None], sid: str, token: str) -> str:
    settings = Settings(database_url=f"sqlite:///{tmp}/sandbox.db", data_dir=tmp, delivery=False,
                        secret_key=env["EVENTSTREAMS_SECRET_KEY"])  # fmt: skip

    async def go() -> str:
        rt = await build_runtime(settings)
        try:
            header = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
            return (await rt.accounts.authenticate(header)).account.sid
        finally:
            await rt.close()

    return asyncio.run(go())


def test_command_prints_working_credentials(tmp_path: Path) -> None:
    env = _env(tmp_path)
    args = ["sandbox", "seed", "--messages", "300", "--calls", "60", "--subaccounts", "2", "--seed", "4",
            "--now", "2026-05-28T20:26:40Z"]  # fmt: skip
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    creds = re.findall(r"^\s+(main|subaccount)\s+(AC[0-9a-f]{32})\s+auth token ([0-9a-f]{32})", result.output, re.M)
    assert [c[0] for c in creds] == ["main", "subaccount", "subaccount"]
    for _, sid, token in creds:
        assert _authenticate(tmp_path, env, sid, token) == sid
    assert re.search(r"^\s+total\s+300\s+60\s", result.output, re.M), result.output
    assert "--seed 4 --now 1780000000" in result.output
    assert not (tmp_path / "main.db").exists()  # the sandbox's own database, not eventstreams'

    # again, with another seed, as JSON: the same main account (token still printed), two more subaccounts
    again = CliRunner().invoke(main, [*args[:-4], "--seed", "5", "-o", "json"], env=env, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    doc = json.loads(again.output)
    assert doc["seed"] == 5 and doc["rows"] > 360
    main_acct = doc["accounts"][0]
    assert (main_acct["sid"], main_acct["auth_token"], main_acct["created"]) == (creds[0][1], creds[0][2], False)
    assert len({a["sid"] for a in doc["accounts"]} | {c[1] for c in creds}) == 5
    for a in doc["accounts"]:
        assert _authenticate(tmp_path, env, a["sid"], a["auth_token"]) == a["sid"]
        assert a["rows"]["message"] > 0

    repeat = CliRunner().invoke(main, args, env=env)
    assert repeat.exit_code == 1 and "already seeded" in repeat.output
    bad = CliRunner().invoke(main, [*args, "--now", "soon"], env=env)
    assert bad.exit_code == 1 and "--now" in bad.output  # a usage error: 1 (2 means busy; docs/cli.md)
