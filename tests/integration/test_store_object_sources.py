"""store.object_sources on both backends: leases (claim_due, take, renew, release) never let two owners
hold one source, due sources are shared between owners up to each one's limit, and a lease that runs out
is taken over. The claims race for real on PostgreSQL (several connections at once)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, own_server

LEASE = 30.0


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """No scheduler here: the test is the only one claiming."""
    with own_server(backend, Path(tmp_path_factory.mktemp(f"leases-{backend}")), source_syncs=False) as srv:
        yield srv


def _sources(server: Server, n: int, tag: str) -> list[str]:
    sid, token = server.new_account(f"Leases {tag}")
    account = server.call(server.services.accounts.principal_of(sid)).account
    rows = [server.call(server.services.object_sources.create(
        account, friendly_name=f"lease {tag} {i}", twilio_account_sid=sid, auth_token=token, schedule="manual",
        base_url=server.url)) for i in range(n)]  # fmt: skip
    for r in rows:  # due now
        server.call(server.services.object_sources.request_sync(r, full=False))
    return [r.sid for r in rows]


def _mine(claimed: list[str], sids: list[str]) -> list[str]:
    return [s for s in claimed if s in sids]  # the session server may hold other tests' sources


def test_claims_are_shared_and_exclusive(server: Server) -> None:
    repo = server.services.store.object_sources
    sids = _sources(server, 4, "shared")
    now = time.time()
    a = _mine(server.call(repo.claim_due("owner-a", now, LEASE, 2)), sids)
    b = _mine(server.call(repo.claim_due("owner-b", now, LEASE, 10)), sids)
    assert len(a) == 2 and sorted(a + b) == sorted(sids)  # a took its limit, b the rest, none twice
    assert _mine(server.call(repo.claim_due("owner-c", now, LEASE, 10)), sids) == []
    assert not server.call(repo.take_lease(a[0], "owner-c", now, LEASE))  # held
    assert not server.call(repo.renew_lease(a[0], "owner-b", now + LEASE))  # only its owner renews
    assert not server.call(repo.release_lease(a[0], "owner-b", None, None, False, now))  # or releases
    assert server.call(repo.renew_lease(a[0], "owner-a", now + LEASE))
    # the lease runs out: another owner takes the source over
    later = now + LEASE + 1
    assert server.call(repo.take_lease(a[1], "owner-c", later, LEASE))
    assert server.call(repo.release_lease(a[1], "owner-c", later + 3600, "boom", False, later))
    row = server.call(repo.by_sid(a[1]))
    assert row.lease_owner is None and row.next_run_at == later + 3600 and row.last_error == "boom"
    # released with a future next run: not due
    assert a[1] not in server.call(repo.claim_due("owner-d", later, LEASE, 10))


def test_racing_claims_never_hand_one_source_to_two_owners(server: Server) -> None:
    repo = server.services.store.object_sources
    sids = _sources(server, 5, "race")
    now = time.time()
    n = 10
    gate = threading.Barrier(n)

    def claim(i: int) -> list[str]:
        gate.wait(10)
        fut: Any = asyncio.run_coroutine_threadsafe(repo.claim_due(f"racer-{i}", now, LEASE, 1), server.app.state.loop)
        return _mine(fut.result(30), sids)

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(claim, range(n)))
    won = [s for r in results for s in r]
    assert sorted(won) == sorted(sids)  # every due source claimed once, by exactly one owner
    assert all(len(r) <= 1 for r in results)
    owners = {server.call(repo.by_sid(s)).lease_owner for s in sids}
    assert len(owners) == len(sids)


def test_what_is_asked_during_a_run_stays_asked(server: Server) -> None:
    repo = server.services.store.object_sources
    (sid,) = _sources(server, 1, "asked")
    started = time.time()
    assert server.call(repo.take_lease(sid, "runner", started, LEASE))
    row = server.call(repo.by_sid(sid))
    # while the (full) run goes on, the user asks for another full sync
    time.sleep(0.01)  # a later clock reading than the run's start, nothing awaited
    server.call(server.services.object_sources.request_sync(row, full=True))
    asked = server.call(repo.by_sid(sid))
    assert server.call(repo.release_lease(sid, "runner", started + 3600, None, True, started))
    after = server.call(repo.by_sid(sid))
    assert after.full_sync_requested is True  # the finished full run does not swallow the new request
    assert after.next_run_at == asked.next_run_at < started + 3600  # and "sync now" still means now


def test_a_deleted_sources_schema_stays_with_its_account(server: Server) -> None:
    from eventstreams.errors import TwilioError

    svc = server.services.object_sources
    owner_sid, owner_token = server.new_account("Schema owner")
    other_sid, other_token = server.new_account("Schema other")
    owner = server.call(server.services.accounts.principal_of(owner_sid)).account
    other = server.call(server.services.accounts.principal_of(other_sid)).account
    kw = {"schedule": "manual", "base_url": server.url, "schema_name": "kept_schema"}
    first = server.call(svc.create(owner, friendly_name="first", twilio_account_sid=owner_sid, auth_token=owner_token,
                                   **kw))  # fmt: skip
    server.call(svc.delete(first))
    with pytest.raises(TwilioError) as taken:  # its tables are still there: another account must not write them
        server.call(svc.create(other, friendly_name="intruder", twilio_account_sid=other_sid, auth_token=other_token,
                               **kw))  # fmt: skip
    assert taken.value.status == 409
    again = server.call(svc.create(owner, friendly_name="second", twilio_account_sid=owner_sid,
                                   auth_token=owner_token, **kw))  # fmt: skip
    assert again.schema_name == "kept_schema"
