"""Schemathesis over the tracking API's part of /openapi.json with a valid write key, on SQLite and
PostgreSQL: no 5xx, Segment's error shape on every 4xx (test_fuzz_openapi.error_problem), responses
as documented. The general fuzz only reaches these paths with Twilio credentials (401s)."""

from __future__ import annotations

import base64
import time
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from eventstreams.api.openapi import tracking_paths
from tests.conftest import Server
from tests.integration.test_fuzz_openapi import SERVER_THREAD_RANDOM, run_operation

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
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", timeout=10)
    schema.config.update(base_url=server.url, request_timeout=15)
    mine = set(tracking_paths())
    seen: Counter[int] = Counter()
    failures: list[str] = []
    fuzzed: set[str] = set()
    started = time.monotonic()
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path not in mine:
            continue
        fuzzed.add(op.label)
        try:
            run_operation(op, mode, auth, seen, None, None, EXAMPLES[mode], CHECKS)
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, op.label
        except AssertionError as exc:
            failures.append(f"{op.label}: {exc}")
    with capsys.disabled():
        print(f"\ntracking fuzz[{backend}-{mode.value}]: {sum(seen.values())} requests in "
              f"{time.monotonic() - started:.1f}s, statuses {dict(seen)}")  # fmt: skip
    if failures:
        time.sleep(1)  # let the server thread finish logging its tracebacks
    assert not failures, "\n\n".join(failures)
    assert len(fuzzed) == 8, sorted(fuzzed)
    assert seen[401] == 0 and not any(s >= 500 for s in seen), dict(seen)  # the key always authenticates
    if mode is GenerationMode.POSITIVE:
        assert seen[200] >= 100, dict(seen)
    else:
        assert seen[400] + seen[200] >= 50, dict(seen)
