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
import contextlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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

# The server under test is a thread of this process, and the global `random` is shared: when it
# moves during a draw (psycopg_pool jitters each new PostgreSQL connection's lifetime with it),
# Hypothesis warns as if a strategy had used it, and the warning is an error here. A race, seen
# once in a few runs on PostgreSQL; no strategy of ours uses `random`.
SERVER_THREAD_RANDOM = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:hypothesis.errors.HypothesisDeprecationWarning"
)
pytestmark = SERVER_THREAD_RANDOM

MAX_EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 12}
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)


TWILIO_ERROR = {"code", "message", "more_info", "status"}
# POST /v1/Events answers a 400 with Twilio's error fields plus the publish result (docs/delivery.md)
PUBLISH_RESULT = {"accepted", "duplicates", "rejected"}


def error_extras(path: str, status: int) -> set[str]:
    return PUBLISH_RESULT if path == "/v1/Events" and status == 400 else set()


SEGMENT_PATHS = frozenset({"/v1/alias", "/v1/group", "/v1/identify", "/v1/page", "/v1/screen", "/v1/track",
                           "/v1/batch", "/v1/import"})  # fmt: skip


def segment_error_problem(response: Any) -> str | None:
    """None when ``response`` carries Segment's error JSON (what segment-analytics-python reads)."""
    try:
        body = response.json()
    except ValueError:
        return f"error body is not JSON: {response.text[:200]!r}"
    if not isinstance(body, dict) or set(body) != {"success", "code", "message"} or body["success"] is not False:
        return f"error body is not Segment's shape: {body!r:.300}"
    if not isinstance(body["code"], str) or not isinstance(body["message"], str) or not body["message"]:
        return f"bad code/message: {body!r:.300}"
    return None


def profile_error_problem(response: Any) -> str | None:
    """None when ``response`` carries Segment's Profile API error JSON (``{"error": {code, message}}``)."""
    try:
        body = response.json()
    except ValueError:
        return f"error body is not JSON: {response.text[:200]!r}"
    err = body.get("error") if isinstance(body, dict) and set(body) == {"error"} else None
    if not isinstance(err, dict) or set(err) != {"code", "message"}:
        return f"error body is not the Profile API's shape: {body!r:.300}"
    if not isinstance(err["code"], str) or not isinstance(err["message"], str) or not err["message"]:
        return f"bad code/message: {body!r:.300}"
    return None


def _sent_path(response: Any) -> str:
    """The path the client actually sent (it resolves dot segments), or "/v1/spaces/" when unknown."""
    from urllib.parse import urlsplit

    url = getattr(getattr(response, "request", None), "url", None)
    return urlsplit(str(url)).path if url else "/v1/spaces/"


def error_problem(response: Any, path: str) -> str | None:
    """The error shape of the surface serving ``path``."""
    if path in SEGMENT_PATHS:
        return segment_error_problem(response)
    if path.startswith("/v1/spaces/") and _sent_path(response).startswith("/v1/spaces/"):
        return profile_error_problem(response)  # (a dot segment in {space} leaves the surface: the root answers)
    return twilio_error_problem(response, error_extras(path, response.status_code))


def twilio_error_problem(response: Any, extra: set[str] | frozenset[str] = frozenset()) -> str | None:
    """None when ``response`` (status >= 400) carries Twilio's error JSON,
    alone or with exactly the ``extra`` fields."""
    try:
        body = response.json()
    except ValueError:
        return f"error body is not JSON: {response.text[:200]!r}"
    if not isinstance(body, dict) or set(body) not in (TWILIO_ERROR, TWILIO_ERROR | extra):
        return f"error body is not Twilio's shape: {body!r:.300}"
    if body["status"] != response.status_code:
        return f"error status {body['status']} != HTTP {response.status_code}"
    if not isinstance(body["code"], int) or not isinstance(body["message"], str) or not body["message"]:
        return f"bad code/message: {body!r:.300}"
    if body["more_info"] != f"https://www.twilio.com/docs/errors/{body['code']}":
        return f"bad more_info: {body['more_info']!r}"
    return None

def assert_client_error_shape(r: Any, where: str, template: str) -> None:
    """No 5xx; a 4xx carries Twilio's error JSON (plus the extras ``template``'s path may add)."""
    assert r.status_code < 500, f"{where}\n{r.text[:300]}"
    if r.status_code >= 400:
        problem = error_problem(r, template)
        assert problem is None, f"{where}: {problem}"


@contextlib.contextmanager
def server_tracebacks_flushed() -> Iterator[None]:
    try:
        yield
    except AssertionError:
        time.sleep(1)  # let the server thread finish logging its tracebacks (see test_bad_input.check_error)
        raise



@dataclass
class FuzzRun:
    """What :func:`fuzz_surface` saw: statuses, failed checks, operations reached, seconds."""

    seen: Counter[int]
    failures: list[str]
    fuzzed: set[str]
    elapsed: float

    def report(self, label: str, capsys: Any) -> None:
        """Print the tally, then fail with every failed check (no 5xx, documented responses)."""
        with capsys.disabled():
            print(f"\n{label}: {sum(self.seen.values())} requests in {self.elapsed:.1f}s, statuses {dict(self.seen)}")
        if self.failures:
            time.sleep(1)  # let the server thread finish logging its tracebacks
        assert not self.failures, "\n\n".join(self.failures)


def fuzz_surface(
    url: str,
    paths: set[str],
    mode: GenerationMode,
    request_for: Callable[[Any], tuple[str, dict[str, str] | None]],
    examples: int,
    checks: Sequence[Any],
    callbacks: Any = None,
) -> FuzzRun:
    """Schemathesis over the operations of ``paths`` in the server's /openapi.json; ``request_for(op)``
    gives each operation's Authorization header and pinned parameters (one surface's credentials)."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", timeout=10)
    schema.config.update(base_url=url, request_timeout=15)
    run = FuzzRun(Counter(), [], set(), 0.0)
    started = time.monotonic()
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path not in paths:
            continue
        run.fuzzed.add(op.label)
        auth, pinned = request_for(op)
        try:
            run_operation(op, mode, auth, run.seen, pinned, callbacks, examples, checks)
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, op.label  # nothing left to make invalid
        except AssertionError as exc:
            run.failures.append(f"{op.label}: {exc}")
    run.elapsed = time.monotonic() - started
    return run


def run_operation(
    operation: Any,
    mode: GenerationMode,
    auth: str,
    seen: Counter[int],
    path_parameters: dict[str, str] | None = None,
    prepare: Callable[[Case], None] | None = None,
    max_examples: int | None = None,
    checks: Sequence[Any] = (not_a_server_error,),
) -> None:
    """Fuzz one operation; ``path_parameters`` pins those parameters (the rest are generated),
    ``prepare`` may adjust each case before it is sent, ``checks`` are schemathesis' checks."""
    strategy = operation.as_strategy(
        generation_mode=mode, headers={"Authorization": auth}, path_parameters=path_parameters
    )

    @settings(FUZZ, max_examples=max_examples or MAX_EXAMPLES[mode])
    @given(case=strategy)
    def fuzz(case: Case) -> None:
        if prepare is not None:
            prepare(case)
        response = case.call(headers={"Authorization": auth}, timeout=15)
        seen[response.status_code] += 1
        where = f"{case.method} {case.formatted_path} -> {response.status_code}"
        assert response.status_code < 500, f"{where}\n{case.as_curl_command()}\n{response.text[:500]}"
        case.validate_response(response, checks=list(checks))
        if response.status_code >= 400 and case.method.upper() != "HEAD":
            problem = error_problem(response, operation.path)
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


def routed_operation(routes: list[Any], path: str, method: str) -> tuple[str, str] | None:
    """The (route path, method) the app dispatches ``method path`` to, as Starlette would."""
    from starlette.routing import Match

    scope = {"type": "http", "path": path, "root_path": "", "method": method}
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route.path, method
    return None  # no route, or only routes for other methods (Starlette answers 405)


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``node``, itself included."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _objects(v)
    elif isinstance(node, list):
        for v in node:
            yield from _objects(v)


@pytest.mark.parametrize("which", ["server", "sandbox_server"])
def test_every_route_is_documented(backend: str, which: str, request: pytest.FixtureRequest) -> None:
    """/openapi.json documents every routed operation and nothing that is not routed, with or
    without the sandbox mounted; the list comes from the running app, so a new route without a
    description fails here. Every $ref in the document resolves, and no schema has the empty
    ``required`` list OpenAPI 3.0 rejects."""
    import requests
    from starlette.routing import Route

    from eventstreams.api.app import surfaces as all_surfaces

    server: Server = request.getfixturevalue(which)
    doc = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    surfaces = server.app.state.surfaces
    sandboxed = which == "sandbox_server"
    assert [s.name for s in surfaces] == [s.name for s in all_surfaces(sandbox=sandboxed)]
    assert ("twilio-sandbox" in {s.name for s in surfaces}) is sandboxed
    for node in _objects(doc):
        ref = node.get("$ref")
        if isinstance(ref, str):
            assert ref.startswith("#/components/schemas/"), ref
            assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], f"unresolved {ref}"
        assert node.get("required") != [], node
    # A surface with openapi=None (the HTML console, documented in docs/console.md) serves no API operations.
    routes = [r for s in surfaces if s.openapi is not None for r in s.routes]
    assert routes and all(isinstance(r, Route) for r in routes), routes  # a Mount would hide its routes
    for surface in surfaces:  # each surface's own fragment describes only its own routes
        for path, item in (surface.openapi() if surface.openapi else {}).items():
            concrete = re.sub(r"\{[^}]+\}", "x1", path)
            for method in item:
                if method in ("get", "post", "put", "patch", "delete"):
                    hit = routed_operation(list(surface.routes), concrete, method.upper())
                    assert hit is not None, f"{surface.name} documents {method.upper()} {path} it does not route"
    routed = {(r.path, m) for r in routes for m in (r.methods or ()) if m != "HEAD"}
    documented: set[tuple[str, str]] = set()
    for path, item in doc["paths"].items():
        declared = {p["name"] for op in item.values() if isinstance(op, dict) for p in op.get("parameters", [])}
        for name in re.findall(r"\{([^}]+)\}", path):
            assert name in declared, f"{path}: path parameter {name} is not declared"
        concrete = re.sub(r"\{[^}]+\}", "x1", path)  # any one segment: what each placeholder stands for
        for method in item:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            hit = routed_operation(routes, concrete, method.upper())
            assert hit is not None, f"documented {method.upper()} {path} is not routed"
            documented.add(hit)
    assert routed - documented == set(), f"routed but missing from /openapi.json: {sorted(routed - documented)}"
    assert len(routed) >= 45, len(routed)  # the comparison itself must have found the routes


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
        assert_client_error_shape(r, where, template)

    with session, server_tracebacks_flushed():
        fuzz()
    with capsys.disabled():
        took = time.monotonic() - started
        print(f"\nraw fuzz[{backend}]: {sum(seen.values())} requests in {took:.1f}s, statuses {dict(seen)}")


# -- POST /v1/Events with arbitrary JSON in every CloudEvents attribute: schemathesis keeps to
# the documented types in positive mode and rarely reaches nested values in negative mode.

SENT = "com.twilio.messaging.message.delivered"
ATTRIBUTES = [
    "specversion", "type", "source", "id", "time", "dataschema", "datacontenttype", "subject", "data",
    "data_base64", "traceparent", "Bad-Name",
]  # fmt: skip
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def valid_event() -> dict[str, Any]:
    from eventstreams.catalog import builtin_examples

    examples = builtin_examples()["Messaging.MessageStatus"]
    return {"specversion": "1.0", "type": SENT, "source": "/fuzz", "data": examples[max(examples)]}


def post_events(server: Server, auth: tuple[str, str], body: Any, batch: bool) -> Any:
    import json

    import requests

    ctype = "application/cloudevents-batch+json" if batch else "application/cloudevents+json"
    return requests.post(
        f"{server.url}/v1/Events", data=json.dumps(body), headers={"Content-Type": ctype}, auth=auth, timeout=15
    )


def test_publish_non_string_dataschema_is_rejected(server: Server) -> None:
    """Regression (found fuzzing POST /v1/Events): a dataschema that is a JSON object or array
    was used as a dict key while resolving the schema, and the request failed with a 500."""
    auth = server.new_account("dataschema")
    for bad in ({}, [1], {"a": [2]}, 5, True):
        r = post_events(server, auth, [valid_event(), {**valid_event(), "dataschema": bad}], batch=True)
        assert r.status_code == 207, (bad, r.text[:300])
        (rejected,) = r.json()["rejected"]
        assert rejected["index"] == 1 and "dataschema" in rejected["message"], rejected
        r = post_events(server, auth, {**valid_event(), "dataschema": bad}, batch=False)
        assert r.status_code == 400 and twilio_error_problem(r, PUBLISH_RESULT) is None, (bad, r.text[:300])


@pytest.mark.timeout(300)
def test_publish_json_fuzz_no_server_errors(server: Server, backend: str, capsys: Any) -> None:
    auth = server.new_account("JSON fuzz")
    seen: Counter[int] = Counter()
    started = time.monotonic()
    mutated = st.builds(
        lambda changes: {**valid_event(), **changes},
        st.dictionaries(st.sampled_from(ATTRIBUTES), JSON_VALUES, max_size=3),
    )

    @settings(FUZZ, max_examples=150)
    @given(events=st.lists(st.one_of(mutated, JSON_VALUES), min_size=1, max_size=4), batch=st.booleans())
    def fuzz(events: list[Any], batch: bool) -> None:
        r = post_events(server, auth, events if batch else events[0], batch)
        seen[r.status_code] += 1
        where = f"POST /v1/Events {events!r:.300} -> {r.status_code}"
        assert_client_error_shape(r, where, "/v1/Events")

    with server_tracebacks_flushed():
        fuzz()
    with capsys.disabled():
        took = time.monotonic() - started
        print(f"\nJSON fuzz[{backend}]: {sum(seen.values())} requests in {took:.1f}s, statuses {dict(seen)}")
    assert seen[201] + seen[207] > 0, dict(seen)  # some events must get through validation


# -- the tracking sources API with a real source: the general fuzz above reaches /v1/Sources/{Sid} only
# with made-up SIDs (404s); here the SID is one of the account's, its debugger holds an accepted and a
# rejected message, and every answer must be the documented one.


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_fuzz_sources_with_a_real_source(server: Server, backend: str, mode: GenerationMode, capsys: Any) -> None:
    import requests
    from schemathesis.specs.openapi.checks import response_schema_conformance

    from eventstreams.api.openapi import sources_paths

    sid, token = server.new_account(f"Sources fuzz {mode.value}")
    auth = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
    account = server.call(server.services.store.accounts.get(sid))
    source, key = server.call(server.services.sources.create(account, "fuzzed"))
    for body in ({"userId": "1", "event": "Kept"}, {"event": "No identity"}):
        r = requests.post(f"{server.url}/v1/track", json=body, auth=(key, ""), timeout=10)
        assert r.status_code == 200, r.text
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", timeout=10)
    schema.config.update(base_url=server.url, request_timeout=15)
    mine = set(sources_paths())
    ops = [op for op in (res.ok() for res in schema.get_all_operations()) if op.path in mine]
    ops.sort(key=lambda op: op.method.upper() == "DELETE")  # the source is deleted last
    seen: Counter[int] = Counter()
    failures: list[str] = []
    started = time.monotonic()
    for op in ops:
        pinned = {"Sid": source.sid} if "{Sid}" in op.path else None
        try:
            run_operation(op, mode, auth, seen, pinned, None, 25, (not_a_server_error, response_schema_conformance))
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, op.label
        except AssertionError as exc:
            failures.append(f"{op.label}: {exc}")
    with capsys.disabled():
        print(f"\nsources fuzz[{backend}-{mode.value}]: {sum(seen.values())} requests in "
              f"{time.monotonic() - started:.1f}s, statuses {dict(seen)}")  # fmt: skip
    if failures:
        time.sleep(1)  # let the server thread finish logging its tracebacks
    assert not failures, "\n\n".join(failures)
    assert len(ops) == 7, [op.label for op in ops]
    assert seen[401] == 0 and not any(s >= 500 for s in seen), dict(seen)
    if mode is GenerationMode.POSITIVE:
        assert seen[200] > 0 and seen[201] > 0, dict(seen)  # the fuzz got past parsing to the source itself
