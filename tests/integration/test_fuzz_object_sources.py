"""Schemathesis over the object sources API (/v1/ObjectSources) with valid credentials, a real source
and a real run, on SQLite and PostgreSQL: no 5xx, Twilio's error shape on every 4xx, responses as
documented. Scheduled syncs are off in this server: what the fuzz creates must not go and sync."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from eventstreams.api.openapi import object_sources_paths
from tests.conftest import Server, own_server
from tests.integration.test_fuzz_openapi import SERVER_THREAD_RANDOM, fuzz_surface, twilio_error_problem

pytestmark = SERVER_THREAD_RANDOM
EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 25}


def twilio_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code >= 400:
        problem = twilio_error_problem(response)
        assert problem is None, problem
    return None


CHECKS = (not_a_server_error, response_schema_conformance, twilio_errors)


@pytest.fixture(scope="module")
def quiet_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with own_server(backend, Path(tmp_path_factory.mktemp(f"osfuzz-{backend}")), source_syncs=False) as srv:
        yield srv


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_fuzz_object_sources(quiet_server: Server, backend: str, mode: GenerationMode, capsys: Any) -> None:
    srv = quiet_server
    sid, token = srv.new_account(f"Object sources fuzz {mode.value}")
    account = srv.call(srv.services.accounts.principal_of(sid)).account
    row = srv.call(srv.services.object_sources.create(
        account, friendly_name=f"fuzzed {mode.value}", twilio_account_sid=sid, auth_token=token, schedule="manual",
        base_url=srv.url, collections="addresses"))  # fmt: skip
    # a real run (it fails: this server has no sandbox mounted, so Twilio's paths are 404s)
    report = asyncio.run_coroutine_threadsafe(srv.services.syncer().sync_now(row), srv.app.state.loop).result(60)
    assert report.run.status == "failed"
    auth = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
    victim = srv.call(srv.services.object_sources.create(
        account, friendly_name=f"deleted {mode.value}", twilio_account_sid=sid, auth_token=token, schedule="manual",
        base_url=srv.url))  # fmt: skip

    def request_for(op: Any) -> tuple[str, dict[str, str] | None]:
        pinned = {}
        if "{Sid}" in op.path:  # DELETE gets a source of its own: the others' must stay
            pinned["Sid"] = victim.sid if op.method.upper() == "DELETE" else row.sid
        if "{RunSid}" in op.path:
            pinned["RunSid"] = report.run.sid
        return auth, pinned or None

    run = fuzz_surface(srv.url, set(object_sources_paths()), mode, request_for, EXAMPLES[mode], CHECKS)
    run.report(f"object sources fuzz[{backend}-{mode.value}]", capsys)
    assert len(run.fuzzed) == 8, run.fuzzed
    assert not any(s >= 500 for s in run.seen) and run.seen[401] == 0, dict(run.seen)
    if mode is GenerationMode.POSITIVE:
        assert run.seen[200] > 0 and run.seen[202] > 0, dict(run.seen)  # past parsing, to the source itself
