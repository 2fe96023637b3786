"""Schemathesis over the sandbox's part of the served /openapi.json (issue 9: bad input never
gives a 500), against a real server with the sandbox mounted, on SQLite and PostgreSQL.

Every request carries valid credentials and the caller's own account SID in the path, so the
fuzz reaches parsing and the domain instead of bouncing off authentication; in positive mode
the instance SIDs are those of seeded, settled resources (deletes get resources of their own),
in negative mode schemathesis generates them. ``Sandbox.json`` is fuzzed too, but as another,
unrelated account: a fuzzed ``ServerErrorRatio`` there makes that account's requests fail with
a 5xx on purpose, and no other operation runs as that account (Sandbox.json itself is never
faulted, so its own requests still must not give a 5xx).
"""

from __future__ import annotations

import base64
import re
import time
from collections import Counter
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
import requests
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from eventstreams import clock
from eventstreams.api.openapi import sandbox_paths
from eventstreams.store.records import (
    SandboxAddressRow,
    SandboxCallRow,
    SandboxConferenceRow,
    SandboxFeedbackRow,
    SandboxMessageRow,
    SandboxTranscriptionRow,
)
from eventstreams.store.repos import sandbox as kinds
from tests.conftest import Receiver, Server
from tests.integration.test_fuzz_openapi import (
    FUZZ,
    SERVER_THREAD_RANDOM,
    _operations,
    _pairs,
    _segment,
    assert_client_error_shape,
    fuzz_surface,
    server_tracebacks_flushed,
)

pytestmark = SERVER_THREAD_RANDOM

BASE = "/2010-04-01/Accounts/{AccountSid}"
SWITCHES = f"{BASE}/Sandbox.json"
# per operation: with the raw fuzz, about 20 s per backend on a loaded 2-core machine (budget: 30 s)
EXAMPLES = {GenerationMode.POSITIVE: 60, GenerationMode.NEGATIVE: 30}

# a success must also match Twilio's schema for it: the views render Twilio's wire types
CHECKS = (not_a_server_error, response_schema_conformance)

# Twilio's own string formats, unknown to the generator: without them positive mode sends
# random text as To/From and never gets a message or call created.
PHONE = st.one_of(
    st.from_regex(r"\A\+1[2-9][0-9]{9}\Z"),
    st.from_regex(r"\A\+44[0-9]{10}\Z"),
    st.sampled_from(["+15005550006", "+15005550001", "+15005550009", "+447700900123"]),  # Twilio's magic numbers
)
schemathesis.openapi.format("phone-number", PHONE)
schemathesis.openapi.format("endpoint", PHONE)
schemathesis.openapi.format("iso-country-code", st.sampled_from(["US", "GB", "DE", "FR", "JP", "BR"]))


def _basic(sid: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()


def _seed(srv: Server, account: str, n: int) -> dict[str, str]:
    """One settled resource of each kind (``n`` tells two seeds apart), inserted as the seeder
    does: final statuses, so nothing is "still being sent" and the status clock leaves them alone."""
    ts = clock.iso(1_700_000_000 + n)
    sids = {
        k: f"{p}{n:02x}{account[4:]}"
        for k, p in (("msg", "SM"), ("call", "CA"), ("conf", "CF"), ("tr", "TR"), ("addr", "AD"))
    }
    store = srv.services.store.sandbox
    rows: list[tuple[kinds.Kind, Any]] = [
        (kinds.MESSAGE, SandboxMessageRow(sids["msg"], account, None, "outbound-api", "+15005550006", "+14155552671",
                                          "hello", "delivered", 1, 0, "-0.00790", "USD", None, None, None, None, None,
                                          ts, ts, ts)),
        (kinds.CALL, SandboxCallRow(sids["call"], account, None, "+14155552671", "(415) 555-2671", "+15005550006",
                                    "(500) 555-0006", None, "completed", ts, ts, 4, "-0.0130", "USD", "outbound-api",
                                    None, None, None, None, 0, None, None, None, None, None, ts, ts)),
        (kinds.FEEDBACK, SandboxFeedbackRow(sids["call"], account, 4, '["audio-latency"]', ts, ts)),
        (kinds.CONFERENCE, SandboxConferenceRow(sids["conf"], account, "room", "us1", "completed",
                                                "last-participant-left", None, ts, ts)),
        (kinds.TRANSCRIPTION, SandboxTranscriptionRow(sids["tr"], account, f"RE{n:02x}{account[4:]}", "completed", "hi", "fast",
                                                      3, "0.05", "USD", ts, ts)),
        (kinds.ADDRESS, SandboxAddressRow(sids["addr"], account, "Ada", None, "1 Main St", None, "Springfield", "IL",
                                          "62701", "US", False, False, False, ts, ts)),
    ]  # fmt: skip
    for kind, row in rows:
        srv.call(store.insert(kind, row))
    return sids


def _instance(path: str, sids: dict[str, str]) -> dict[str, str]:
    """The seeded SID for ``path``'s instance placeholder, if it has one."""
    for segment, key in (("Messages", "msg"), ("Calls", "call"), ("Conferences", "conf"),
                         ("Transcriptions", "tr"), ("Addresses", "addr")):  # fmt: skip
        if path.startswith(f"{BASE}/{segment}/{{"):
            return {"CallSid" if path.endswith("/Feedback.json") else "Sid": sids[key]}
    return {}


def test_sandbox_paths_are_served_only_with_the_sandbox(server: Server, sandbox_server: Server) -> None:
    """The sandbox's fragment is in /openapi.json exactly when the sandbox is mounted, with every
    component schema it references (Twilio's 2010-04-01 ones join only then)."""
    mine = set(sandbox_paths())
    assert {f"{BASE}/Calls/{{CallSid}}/Feedback.json", SWITCHES} <= mine and len(mine) == 12, sorted(mine)
    off = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    on = requests.get(f"{sandbox_server.url}/openapi.json", timeout=10).json()
    assert mine & set(off["paths"]) == set()
    assert not any(name.startswith("api.v2010.") for name in off["components"]["schemas"])
    assert mine <= set(on["paths"])
    call = on["paths"][f"{BASE}/Calls/{{Sid}}.json"]
    assert set(call) & {"get", "post", "delete"} == {"get", "delete"}  # Twilio's POST (update) is not served
    assert "deprecated" in on["paths"][f"{BASE}/Calls/{{CallSid}}/Feedback.json"]["post"]
    assert "eventstreams' own" in on["paths"][SWITCHES]["description"]
    schema = schemathesis.openapi.from_dict(on)
    for result in schema.get_all_operations():
        result.ok()  # every operation parses, its $refs resolved


def _callbacks_to(receiver: Receiver) -> Any:
    """A usable StatusCallback goes to ``receiver``: the status clock must never call out to
    the hosts the generator makes up."""

    def prepare(case: Case) -> None:
        if isinstance(case.body, dict) and isinstance(case.body.get("StatusCallback"), str):
            if urlsplit(case.body["StatusCallback"]).scheme in ("http", "https"):
                case.body["StatusCallback"] = f"{receiver.url}/status"

    return prepare


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_fuzz_sandbox_no_server_errors(
    sandbox_server: Server, backend: str, mode: GenerationMode, receiver: Receiver, capsys: Any
) -> None:
    srv = sandbox_server
    sid, token = srv.new_account(f"Sandbox fuzz {mode.value}")
    switches_sid, switches_token = srv.new_account(f"Sandbox switches fuzz {mode.value}")
    kept, deleted = _seed(srv, sid, 1), _seed(srv, sid, 2)

    def request_for(op: Any) -> tuple[str, dict[str, str] | None]:
        if op.path == SWITCHES:
            return _basic(switches_sid, switches_token), {"AccountSid": switches_sid}
        params = {"AccountSid": sid}
        if mode is GenerationMode.POSITIVE:
            params |= _instance(op.path, deleted if op.method.upper() == "DELETE" else kept)
        return _basic(sid, token), params

    run = fuzz_surface(srv.url, set(sandbox_paths()), mode, request_for, EXAMPLES[mode], CHECKS,
                       _callbacks_to(receiver))  # fmt: skip
    run.report(f"sandbox fuzz[{backend}-{mode.value}]", capsys)
    seen, fuzzed = run.seen, run.fuzzed
    assert len(fuzzed) == 22, sorted(fuzzed)  # every documented sandbox operation
    assert not any(s >= 500 for s in seen)
    # valid credentials for the path's own account: nothing bounces off authentication ...
    assert seen[401] == seen[403] == 0, dict(seen)
    # ... and the fuzz reaches the domain, creating and changing resources
    if mode is GenerationMode.POSITIVE:
        assert seen[201] >= 10 and seen[200] >= 50 and seen[204] >= 4, dict(seen)
        receiver.wait_for(lambda: len(receiver.requests) > 0)  # the status clock called back
    else:
        assert seen[400] >= 100 and seen[200] >= 1, dict(seen)


@pytest.mark.timeout(300)
def test_raw_fuzz_sandbox_no_server_errors(sandbox_server: Server, backend: str, capsys: Any) -> None:
    """What schemathesis does not send (see test_fuzz_openapi's raw fuzz), as the path's own account:
    NUL, dot segments, percent signs and non-ASCII as instance SIDs next to real ones, unknown and
    repeated parameters, raw bodies. Sandbox.json as an unrelated account, as above."""
    srv = sandbox_server
    me, switches = srv.new_account("Sandbox raw fuzz"), srv.new_account("Sandbox raw switches fuzz")
    kept = _seed(srv, me[0], 4)
    doc = requests.get(f"{srv.url}/openapi.json", timeout=10).json()
    ops = [op for op in _operations(doc) if op[1] in set(sandbox_paths())]
    assert len(ops) == 22, ops
    seen: Counter[int] = Counter()
    session = requests.Session()
    started = time.monotonic()

    @settings(FUZZ, max_examples=300)
    @given(
        op=st.sampled_from(ops),
        instance=st.one_of(st.sampled_from(sorted(kept.values())), _segment()),
        params=st.data(),
        raw_body=st.one_of(st.none(), st.binary(max_size=200)),
    )
    def fuzz(
        op: tuple[str, str, list[str], list[str]], instance: str, params: st.DataObject, raw_body: bytes | None
    ) -> None:
        method, template, qnames, fnames = op
        sid, token = switches if template == SWITCHES else me
        path = re.sub(r"\{[^}]+\}", quote(instance, safe=""), template.replace("{AccountSid}", sid))
        qs = urlencode(params.draw(_pairs(qnames)))
        body = raw_body if raw_body is not None else urlencode(params.draw(_pairs(fnames))).encode()
        r = session.request(
            method,
            f"{srv.url}{path}" + (f"?{qs}" if qs else ""),
            data=body if method == "POST" else None,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=(sid, token),
            timeout=15,
        )
        seen[r.status_code] += 1
        assert_client_error_shape(
            r, f"{method} {path[:200]}?{qs[:200]} body={body[:200]!r} -> {r.status_code}", template
        )

    with session, server_tracebacks_flushed():
        fuzz()
    with capsys.disabled():
        took = time.monotonic() - started
        print(f"\nsandbox raw fuzz[{backend}]: {sum(seen.values())} requests in {took:.1f}s, statuses {dict(seen)}")
    assert seen[401] == seen[403] == 0 and seen[200] >= 5, dict(seen)


@pytest.mark.parametrize(
    ("path", "name"),
    [("Messages.json", "DateSent"), ("Calls.json", "StartTime"), ("Calls.json", "EndTime"),
     ("Conferences.json", "DateCreated"), ("Conferences.json", "DateUpdated")],
)  # fmt: skip
def test_date_filters_at_the_end_of_time(sandbox_server: Server, path: str, name: str) -> None:
    """Regression: a date filter whose instant falls past 9999-12-31 in UTC (an offset behind UTC on
    the last day), or a bare 9999-12-31 (whose day has no next day to end at), overflowed Python's
    datetime and answered 500. Now the first is a 400 and the second names the last day there is."""
    sid, token = sandbox_server.new_account("Dates at the end of time")
    _seed(sandbox_server, sid, 3)  # one resource of each kind, dated 2023
    url = f"{sandbox_server.url}/2010-04-01/Accounts/{sid}/{path}"
    key = path.removesuffix(".json").lower()
    for value in ("9999-12-31T23:00:00-05:00", "Fri, 31 Dec 9999 23:00:00 -0500", "9999-12-31T23:59:59.999999-23:59"):
        for suffix in ("", "<", ">"):
            r = requests.get(url, params={name + suffix: value}, auth=(sid, token), timeout=10)
            assert r.status_code == 400, (name + suffix, value, r.status_code, r.text[:200])
            assert r.json()["code"] == 20001 and r.json()["status"] == 400, r.text
    for suffix, listed in (("", 0), ("<", 1), (">", 0)):
        r = requests.get(url, params={name + suffix: "9999-12-31"}, auth=(sid, token), timeout=10)
        assert r.status_code == 200, (name + suffix, r.status_code, r.text[:200])
        assert len(r.json()[key]) == listed, (name + suffix, r.json()[key])
