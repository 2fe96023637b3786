"""Schemathesis fuzz over the served /openapi.json, against the real uvicorn
server on SQLite and PostgreSQL: positive and negative cases for every
operation, authenticated as a fresh test account. No response may be a 5xx,
and every error response is Twilio's error JSON.

Deterministic: Hypothesis is derandomized and has no example database, so CI
sends the same requests on every run.

Each operation gets its own Hypothesis run built from ``operation.as_strategy``
rather than ``schemathesis.pytest.from_fixture(...).parametrize()``: the lazy
pytest integration of schemathesis 4.32 touches ``Function._nodeid``, which
pytest 9.2 no longer has.
"""

from __future__ import annotations

import base64
import re
import time
from collections import Counter
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error

from tests.conftest import Server

MAX_EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 12}
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)


def twilio_error_problem(response: Any) -> str | None:
    """None when ``response`` (status >= 400) carries Twilio's error JSON."""
    try:
        body = response.json()
    except ValueError:
        return f"error body is not JSON: {response.text[:200]!r}"
    if not isinstance(body, dict) or set(body) != {"code", "message", "more_info", "status"}:
        return f"error body is not Twilio's shape: {body!r:.300}"
    if body["status"] != response.status_code:
        return f"error status {body['status']} != HTTP {response.status_code}"
    if not isinstance(body["code"], int) or not isinstance(body["message"], str) or not body["message"]:
        return f"bad code/message: {body!r:.300}"
    if body["more_info"] != f"https://www.twilio.com/docs/errors/{body['code']}":
        return f"bad more_info: {body['more_info']!r}"
    return None


def run_operation(operation: Any, mode: GenerationMode, auth: str, seen: Counter[int]) -> None:
    strategy = operation.as_strategy(generation_mode=mode, headers={"Authorization": auth})

    @settings(FUZZ, max_examples=MAX_EXAMPLES[mode])
    @given(case=strategy)
    def fuzz(case: Case) -> None:
        response = case.call(headers={"Authorization": auth}, timeout=15)
        seen[response.status_code] += 1
        where = f"{case.method} {case.formatted_path} -> {response.status_code}"
        assert response.status_code < 500, f"{where}\n{case.as_curl_command()}\n{response.text[:500]}"
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code >= 400 and case.method.upper() != "HEAD":
            problem = twilio_error_problem(response)
            assert problem is None, f"{where}: {problem}\n{case.as_curl_command()}"

    fuzz()


def fuzz_all(server: Server, mode: GenerationMode) -> tuple[Counter[int], list[str]]:
    sid, token = server.new_account(f"Fuzz {mode.value}")
    auth = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", timeout=10)
    schema.config.update(base_url=server.url, request_timeout=15)
    seen: Counter[int] = Counter()
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # raises if the served document has an invalid operation
        operations += 1
        try:
            run_operation(operation, mode, auth, seen)
        except Unsatisfiable:
            # nothing to make invalid (e.g. no parameters, or only free-form strings)
            assert mode is GenerationMode.NEGATIVE, operation.label
        except AssertionError as exc:
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 20, operations
    return seen, failures


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_fuzz_no_server_errors(server: Server, backend: str, mode: GenerationMode, capsys: Any) -> None:
    started = time.monotonic()
    seen, failures = fuzz_all(server, mode)
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\nfuzz[{backend}-{mode.value}]: {sum(seen.values())} requests in {elapsed:.1f}s, statuses {dict(seen)}")
    if failures:
        time.sleep(1)  # let the server thread finish logging its tracebacks (see test_bad_input.check_error)
    assert not failures, "\n\n".join(failures)
    assert not any(s >= 500 for s in seen)
    # the fuzz must get past authentication and parsing, not just bounce off them
    assert sum(n for s, n in seen.items() if s < 300) >= 10, dict(seen)


# -- a raw Hypothesis fuzz next to schemathesis: schemathesis keeps path
# parameters URL-safe, so NUL, control characters, dot segments, percent signs
# and non-ASCII in path segments come from here, together with unknown or
# repeated parameters in query strings and form bodies.

HEX = "0123456789abcdef"


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, list[str], list[str]]]:
    """(method, path template, query names, form names) for every operation."""
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "delete"):
                continue
            query = [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]
            body = op.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded", {})
            form = list(body.get("schema", {}).get("properties", {}))
            out.append((method.upper(), path, query, form))
    return sorted(out)


def _segment() -> st.SearchStrategy[str]:
    sid = st.builds(
        lambda p, h: p + h,
        st.sampled_from(["DG", "DF", "AC", "SK", "dg", "XX"]),
        st.text(HEX, min_size=31, max_size=33),
    )
    known = st.sampled_from(
        ["com.twilio.messaging.message.sent", "Messaging.MessageStatus", "1", "0", "-1", "..", ".", "%", "a/b"]
    )
    return st.one_of(
        sid, known, st.text(st.characters(codec="utf-8"), max_size=30), st.text(max_size=3000).map(lambda s: s * 3)
    )


def _pairs(names: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    name = (
        st.one_of(st.sampled_from(names), st.text(st.characters(codec="utf-8"), max_size=12))
        if names
        else st.text(max_size=12)
    )
    value = st.one_of(
        st.sampled_from(["true", "maybe", "", "1", "abc", "{}", "[]", '{"type": 1}', "null", "%", "%ZZ", "\x00"]),
        st.text(st.characters(codec="utf-8"), max_size=60),
    )
    return st.lists(st.tuples(name, value), max_size=6)


@pytest.mark.timeout(300)
def test_raw_fuzz_no_server_errors(server: Server, backend: str, capsys: Any) -> None:
    import requests

    sid, token = server.new_account("Raw fuzz")
    doc = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    ops = _operations(doc)
    assert len(ops) >= 20
    seen: Counter[int] = Counter()
    session = requests.Session()
    session.auth = (sid, token)
    started = time.monotonic()

    @settings(FUZZ, max_examples=200)
    @given(
        op=st.sampled_from(ops),
        segments=st.lists(_segment(), min_size=3, max_size=3),
        query=st.data(),
        raw_body=st.one_of(st.none(), st.binary(max_size=200)),
    )
    def fuzz(
        op: tuple[str, str, list[str], list[str]], segments: list[str], query: st.DataObject, raw_body: bytes | None
    ) -> None:
        method, template, qnames, fnames = op
        path = template
        for i, name in enumerate(re.findall(r"\{[^}]+\}", template)):
            path = path.replace(name, quote(segments[i % 3], safe=""), 1)
        qs = urlencode(query.draw(_pairs(qnames)))
        url = f"{server.url}{path}" + (f"?{qs}" if qs else "")
        body: bytes = raw_body if raw_body is not None else urlencode(query.draw(_pairs(fnames))).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        r = session.request(method, url, data=body if method == "POST" else None, headers=headers, timeout=15)
        seen[r.status_code] += 1
        where = f"{method} {url[len(server.url) :][:300]} body={body[:200]!r} -> {r.status_code}"
        assert r.status_code < 500, f"{where}\n{r.text[:300]}"
        if r.status_code >= 400:
            problem = twilio_error_problem(r)
            assert problem is None, f"{where}: {problem}"

    try:
        fuzz()
    except AssertionError:
        time.sleep(1)  # let the server thread finish logging its tracebacks (see test_bad_input.check_error)
        raise
    finally:
        session.close()
    with capsys.disabled():
        took = time.monotonic() - started
        print(f"\nraw fuzz[{backend}]: {sum(seen.values())} requests in {took:.1f}s, statuses {dict(seen)}")
