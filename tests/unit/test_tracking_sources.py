"""The sources domain (tracking/sources.py) on the real store in memory: its checks, what a concurrent
delete leaves the others (404s, never an assertion or a 500), and the debugger's filter."""

from __future__ import annotations

import hashlib

import pytest

from eventstreams.domain.accounts import Principal
from eventstreams.errors import TwilioError
from eventstreams.runtime import Runtime
from eventstreams.store.records import PageQuery, TrackingMessageRow
from eventstreams.tracking import sources


@pytest.mark.parametrize("name", ["web", "Web 2", "a.b_c-d", "x" * 64, "9"])
def test_names_accepted(name: str) -> None:
    assert sources.check_name(name) == name


@pytest.mark.parametrize("name", ["", " web", "-web", "x" * 65, "a/b", "naïve", "tab\there", "web\n"])
def test_names_refused(name: str) -> None:
    with pytest.raises(TwilioError) as exc:
        sources.check_name(name)
    assert (exc.value.code, exc.value.status) == (20001, 400) and "Name must be" in exc.value.message


def test_a_missing_name_says_so() -> None:
    with pytest.raises(TwilioError, match="Missing required parameter Name"):
        sources.check_name(None)


@pytest.mark.parametrize(("limit", "ok"), [(0, False), (1, True), (1000, True), (100_000, True), (100_001, False),
                                           (-5, False), (10**40, False)])  # fmt: skip
def test_rate_limit_range(limit: int, ok: bool) -> None:
    if ok:
        assert sources.check_rate_limit(limit) == limit
        return
    with pytest.raises(TwilioError) as exc:
        sources.check_rate_limit(limit)
    assert exc.value.status == 400 and "between 1 and 100000" in exc.value.message


def test_status_filter() -> None:
    assert [sources.check_status(s) for s in (None, "accepted", "rejected")] == [None, "accepted", "rejected"]
    with pytest.raises(TwilioError, match="Status must be one of accepted, rejected"):
        sources.check_status("Rejected")


async def test_key_is_kept_only_hashed_and_sealed(runtime: Runtime, principal: Principal) -> None:
    row, key = await runtime.sources.create(principal.account, "web")
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest() and key not in row.key_sealed
    assert await runtime.sources.by_write_key(key) == row
    assert not hasattr(runtime.sources, "write_key")  # shown once: nothing reads it back


async def test_concurrent_delete_is_a_404_for_the_others(runtime: Runtime, principal: Principal) -> None:
    row, _ = await runtime.sources.create(principal.account, "web")
    await runtime.sources.delete(row)
    for late in (runtime.sources.update(row, "again", None, None), runtime.sources.rotate(row),
                 runtime.sources.delete(row)):  # fmt: skip
        with pytest.raises(TwilioError) as exc:
            await late
        assert (exc.value.status, exc.value.code) == (404, 20404)
    assert (await runtime.sources.list(principal.account, PageQuery(size=10))).items == []


async def test_update_keeps_what_is_not_given(runtime: Runtime, principal: Principal) -> None:
    row, _ = await runtime.sources.create(principal.account, "web", 10)
    row = await runtime.sources.update(row, None, False, None)
    assert (row.name, row.enabled, row.rate_limit) == ("web", False, 10)
    fetched = await runtime.sources.get(principal.account, row.sid)
    assert (fetched.name, fetched.enabled, fetched.rate_limit) == ("web", False, 10)
    await runtime.sources.create(principal.account, "other")
    with pytest.raises(TwilioError) as exc:
        await runtime.sources.update(row, "other", None, None)
    assert (exc.value.status, exc.value.code) == (409, 20409) and "'other'" in exc.value.message


async def test_messages_filter_by_status_newest_first(runtime: Runtime, principal: Principal) -> None:
    row, _ = await runtime.sources.create(principal.account, "web")
    stamp = "2026-01-01T00:00:00.000Z"
    rows = [
        TrackingMessageRow(row.account_sid, row.sid, f"m{i}", "track", status, reason, stamp, "{}")
        for i, (status, reason) in enumerate([("accepted", None), ("rejected", "no_event"), ("accepted", None)])
    ]
    await runtime.store.tracking.receive(rows, 0.0, 86400.0)
    page = await runtime.sources.messages(row, None, PageQuery(size=10))
    assert [m.message_id for m in page.items] == ["m2", "m1", "m0"]
    page = await runtime.sources.messages(row, "rejected", PageQuery(size=10))
    assert [(m.message_id, m.reason) for m in page.items] == [("m1", "no_event")]
    with pytest.raises(TwilioError):
        await runtime.sources.messages(row, "all", PageQuery(size=10))


async def test_the_internal_sources_name_is_reserved(runtime: Runtime, principal: Principal) -> None:
    for name in ("eventstreams", "EventStreams"):
        with pytest.raises(TwilioError, match="reserved for eventstreams' own messages"):
            await runtime.sources.create(principal.account, name)
    row, _ = await runtime.sources.create(principal.account, "web")
    with pytest.raises(TwilioError, match="reserved"):
        await runtime.sources.update(row, "eventstreams", None, None)
    # the internal source itself (made by the ingest) is listed, but takes no key and no change
    internal = await runtime.ingest.internal_source(principal.account.sid)
    for change in (lambda: runtime.sources.update(internal, None, False, None), lambda: runtime.sources.rotate(internal)):
        with pytest.raises(TwilioError, match="eventstreams' own messages: it has no write key"):
            await change()
    page = await runtime.sources.list(principal.account, PageQuery(size=10))
    assert sorted(s.name for s in page.items) == ["eventstreams", "web"]
