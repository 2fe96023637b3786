"""Schemathesis over the tracking API's part of /openapi.json with a valid write key, on SQLite and
PostgreSQL: no 5xx, Segment's error shape on every 4xx (test_fuzz_openapi.error_problem), responses
as documented. The general fuzz only reaches these paths with Twilio credentials (401s)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from eventstreams.api.openapi import tracking_paths
from tests.conftest import Server
from tests.integration.test_fuzz_openapi import SERVER_THREAD_RANDOM, fuzz_surface

pytestmark = SERVER_THREAD_RANDOM
EXAMPLES = {GenerationMode.POSITIVE: 60, GenerationMode.NEGATIVE: 40}
CHECKS = (not_a_server_error, response_schema_conformance)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_fuzz_tracking_no_server_errors(server: Server, backend: str, mode: GenerationMode, capsys: Any) -> None:
    sid, _ = server.new_account(f"Tracking fuzz {mode.value}")
    account = server.call(server.services.store.accounts.get(sid))
    _, key = server.call(server.services.sources.create(account, "fuzz", 100_000))
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    run = fuzz_surface(server.url, set(tracking_paths()), mode, lambda op: (auth, None), EXAMPLES[mode], CHECKS)
    run.report(f"tracking fuzz[{backend}-{mode.value}]", capsys)
    seen, fuzzed = run.seen, run.fuzzed
    assert len(fuzzed) == 8, sorted(fuzzed)
    assert seen[401] == 0 and not any(s >= 500 for s in seen), dict(seen)  # the key always authenticates
    if mode is GenerationMode.POSITIVE:
        assert seen[200] >= 100, dict(seen)
    else:
        assert seen[400] + seen[200] >= 50, dict(seen)
