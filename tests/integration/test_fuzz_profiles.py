"""Schemathesis over the Profiles API's part of /openapi.json with valid credentials, the caller's
own space and (in the positive run) a profile that exists, on SQLite and PostgreSQL: no 5xx, the
Profile API's error shape on every 4xx, responses as documented."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from segment.analytics import Client as SegmentClient

from eventstreams.api.openapi import profiles
from tests.conftest import Server
from tests.integration.test_fuzz_openapi import SERVER_THREAD_RANDOM, fuzz_surface, profile_error_problem
from tests.integration.test_profiles_api import BAD_QUERIES

pytestmark = SERVER_THREAD_RANDOM
EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 30}
CHECKS = (not_a_server_error, response_schema_conformance)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_fuzz_profiles_no_server_errors(server: Server, backend: str, mode: GenerationMode, capsys: Any) -> None:
    sid, token = server.new_account(f"Profiles fuzz {mode.value}")
    account = server.call(server.services.store.accounts.get(sid))
    _, key = server.call(server.services.sources.create(account, "fuzz", 100_000))
    seg = SegmentClient(key, host=server.url, sync_mode=True)
    seg.identify("42", {"first_name": "Ada", "phone": "(415) 555-2671"}, anonymous_id="a-1")
    seg.track("42", "Trial Expired", {"plan": "pro"})
    seg.group("42", "acme", {"name": "Acme"})
    auth = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
    pinned = {"space": sid, "identifier": "user_id:42"} if mode is GenerationMode.POSITIVE else {"space": sid}
    run = fuzz_surface(server.url, set(profiles.paths()), mode, lambda op: (auth, pinned), EXAMPLES[mode], CHECKS)
    run.report(f"profiles fuzz[{backend}-{mode.value}]", capsys)
    seen, fuzzed = run.seen, run.fuzzed
    assert len(fuzzed) == 4, sorted(fuzzed)
    assert seen[401] == 0 and not any(s >= 500 for s in seen), dict(seen)
    if mode is GenerationMode.POSITIVE:
        assert seen[200] >= 40, dict(seen)
    else:
        assert seen[400] + seen[404] >= 20, dict(seen)


def test_every_lists_cursor_on_every_list_and_explicit_bad_queries(server: Server) -> None:
    """What schemathesis cannot know: the cursor format. A real cursor of each list pages its own list
    and is a 400 on every other (their keys differ in arity or types); forged keys, NUL and odd limits
    (tests/integration/test_profiles_api.BAD_QUERIES) are a 400 in the Profile API's shape, never a 5xx."""
    sid, token = server.new_account("Profiles cursors")
    account = server.call(server.services.store.accounts.get(sid))
    _, key = server.call(server.services.sources.create(account, "cursors", 100_000))
    seg = SegmentClient(key, host=server.url, sync_mode=True)
    for anon in ("x1", "x2", "x3"):
        seg.track(anonymous_id=anon, event=f"Seen {anon}")
    seg.identify("u", {"a": 1, "b": 2}, anonymous_id="x1")
    seg.alias("x2", "u")  # two merges: links has a second page
    seg.alias("x3", "u")
    base = f"{server.url}/v1/spaces/{sid}/collections/users/profiles/user_id:u"
    auth = (sid, token)
    lists = ("traits", "external_ids", "events", "links")
    cursors: dict[str, str] = {}
    for what in lists:
        body = requests.get(f"{base}/{what}", params={"limit": 1}, auth=auth, timeout=10).json()
        assert body["cursor"]["has_more"], (what, body)
        cursors[what] = body["cursor"]["next"]
    for what in lists:
        for minted_by, cursor in cursors.items():
            r = requests.get(f"{base}/{what}", params={"limit": 1, "next": cursor}, auth=auth, timeout=10)
            expected = 200 if minted_by == what else 400
            assert r.status_code == expected, (what, minted_by, r.text)
            if expected == 400:
                assert profile_error_problem(r) is None and r.json()["error"]["code"] == "invalid_request_error"
    for what, params in BAD_QUERIES:
        r = requests.get(f"{base}/{what}", params=params, auth=auth, timeout=10)
        assert r.status_code == 400 and profile_error_problem(r) is None, (what, params, r.text)
