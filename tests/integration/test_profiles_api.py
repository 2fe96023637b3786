"""Profiles through the real tracking API (segment-analytics-python) and Segment's Profile API
paths, on SQLite and PostgreSQL: identity resolution, traits, events from every id, paging,
isolation between accounts, bad input."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
from segment.analytics import Client as SegmentClient

from tests.conftest import Server


def _setup(srv: Server, name: str) -> tuple[str, str, SegmentClient]:
    sid, token = srv.new_account(name)
    account = srv.call(srv.services.store.accounts.get(sid))
    _, key = srv.call(srv.services.sources.create(account, "web"))
    errors: list[Any] = []
    seg = SegmentClient(key, host=srv.url, sync_mode=True, on_error=lambda e, b: errors.append(e))
    return sid, token, seg


def _get(srv: Server, auth: tuple[str, str] | None, space: str, ident: str, what: str,
         **params: Any) -> requests.Response:  # fmt: skip
    url = f"{srv.url}/v1/spaces/{space}/collections/users/profiles/{quote(ident, safe=':@+')}/{what}"
    return requests.get(url, params=params, auth=auth, timeout=10)


def _at(second: int) -> datetime:
    return datetime(2026, 3, 1, 10, 0, second, tzinfo=UTC)


def test_anonymous_then_identify_then_alias_is_one_profile(server: Server) -> None:
    sid, token, seg = _setup(server, "Profiles journey")
    auth = (sid, token)
    seg.page(anonymous_id="anon-1", name="Pricing", timestamp=_at(1))
    seg.track(anonymous_id="anon-1", event="Plan Viewed", properties={"plan": "pro"}, timestamp=_at(2))
    seg.identify("42", {"first_name": "Ada", "phone": "(415) 555-2671", "email": "Ada@Example.com"},
                 anonymous_id="anon-1", timestamp=_at(5))
    seg.identify("42", {"first_name": "Old"}, timestamp=_at(3))  # older, arrives later: loses
    seg.track(anonymous_id="anon-2", event="Cart Viewed", timestamp=_at(6))  # another device
    assert _get(server, auth, sid, "anonymous_id:anon-2", "traits").json()["traits"] == {}
    seg.alias("anon-2", "42", timestamp=_at(7))
    seg.track("42", "Trial Expired", {"plan": "pro"}, timestamp=_at(8))

    traits = _get(server, auth, sid, "user_id:42", "traits").json()
    assert traits["traits"] == {"first_name": "Ada", "phone": "(415) 555-2671", "email": "Ada@Example.com"}
    assert traits["cursor"]["has_more"] is False
    for ident in ("anonymous_id:anon-1", "anonymous_id:anon-2", "email:ada@example.com", "phone:+14155552671"):
        assert _get(server, auth, sid, ident, "traits").json()["traits"]["first_name"] == "Ada", ident

    ids = _get(server, auth, sid, "user_id:42", "external_ids").json()["data"]
    assert {(i["type"], i["id"]) for i in ids} == {("user_id", "42"), ("anonymous_id", "anon-1"),
                                                   ("anonymous_id", "anon-2"), ("email", "ada@example.com"),
                                                   ("phone", "+14155552671")}  # fmt: skip
    assert all(i["collection"] == "users" and i["encoding"] == "none" for i in ids)

    events = _get(server, auth, sid, "user_id:42", "events", limit=100).json()["data"]
    assert [e["type"] for e in events] == ["track", "alias", "track", "identify", "identify", "track", "page"]
    assert events[0]["event"] == "Trial Expired" and events[0]["properties"] == {"plan": "pro"}
    assert events[2]["event"] == "Cart Viewed"  # sent under the other device's anonymousId
    assert events[-1]["name"] == "Pricing" and {"type": "anonymous_id", "id": "anon-1", "collection": "users",
                                                 "encoding": "none"} in events[-1]["external_ids"]  # fmt: skip
    assert len({e["related"]["users"] for e in events}) == 1

    links = _get(server, auth, sid, "user_id:42", "links").json()["data"]
    merges = [link["merge"] for link in links if link["to_collection"] == "users"]
    assert [(m["status"], m["winner"] != m["loser"]) for m in merges] == [("merged", True)]
    assert links[0]["external_ids"][0] == {"id": "anon-2", "type": "anonymous_id", "collection": "users",
                                           "encoding": "none"}  # fmt: skip


def test_refused_merge_is_visible_in_links(server: Server) -> None:
    sid, token, seg = _setup(server, "Profiles refusal")
    seg.identify("1", {"email": "shared@example.com"})
    seg.identify("2", {"email": "shared@example.com"})  # would give one profile two user_ids
    one = _get(server, (sid, token), sid, "user_id:1", "links").json()["data"]
    two = _get(server, (sid, token), sid, "user_id:2", "links").json()["data"]
    assert [link["merge"]["status"] for link in one] == [link["merge"]["status"] for link in two] == ["refused"]
    assert two[0]["merge"]["reason"] == "user_id limit 1 exceeded"
    owner = _get(server, (sid, token), sid, "email:shared@example.com", "external_ids").json()["data"]
    assert ("user_id", "1") in {(i["type"], i["id"]) for i in owner}


def test_events_paging_with_cursor_and_groups_in_links(server: Server) -> None:
    sid, token, seg = _setup(server, "Profiles paging")
    for i in range(7):
        seg.track("p", f"E{i}", timestamp=_at(i))
    seg.group("p", "acme", {"name": "Acme"}, timestamp=_at(30))
    names: list[str] = []
    nxt: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"next": nxt} if nxt else {})}
        body = _get(server, (sid, token), sid, "user_id:p", "events", **params).json()
        names += [e.get("event") or e.get("group_id") for e in body["data"]]
        pages += 1
        assert body["cursor"]["limit"] == 3
        if not body["cursor"]["has_more"]:
            assert body["cursor"]["next"] == ""
            break
        nxt = body["cursor"]["next"]
        assert f"next={nxt}" in body["cursor"]["url"]
    assert names == ["acme", "E6", "E5", "E4", "E3", "E2", "E1", "E0"] and pages == 3
    asc = _get(server, (sid, token), sid, "user_id:p", "events", sort="asc", limit=2, cursor=None).json()
    assert [e.get("event") for e in asc["data"]] == ["E0", "E1"]
    links = _get(server, (sid, token), sid, "user_id:p", "links").json()["data"]
    assert links[0]["to_collection"] == "accounts" and links[0]["external_ids"][0]["id"] == "acme"


def test_traits_paging_include_and_verbose(server: Server) -> None:
    sid, token, seg = _setup(server, "Profiles traits")
    seg.identify("t", {f"k{i:02d}": i for i in range(12)})
    first = _get(server, (sid, token), sid, "user_id:t", "traits").json()
    assert list(first["traits"]) == [f"k{i:02d}" for i in range(10)] and first["cursor"]["has_more"]
    rest = _get(server, (sid, token), sid, "user_id:t", "traits", next=first["cursor"]["next"]).json()
    assert rest["traits"] == {"k10": 10, "k11": 11} and not rest["cursor"]["has_more"]
    only = _get(server, (sid, token), sid, "user_id:t", "traits", include="k03,k05", verbose="true").json()
    assert set(only["traits"]) == {"k03", "k05"} and only["traits"]["k03"]["value"] == 3


def test_an_account_never_sees_another_accounts_profiles(server: Server) -> None:
    sid, token, seg = _setup(server, "Profiles owner")
    other_sid, other_token, _ = _setup(server, "Profiles other")
    seg.identify("secret-user", {"first_name": "Eve"})
    assert _get(server, (sid, token), sid, "user_id:secret-user", "traits").status_code == 200
    for space in (sid, other_sid):  # their space, or the owner's: nothing
        r = _get(server, (other_sid, other_token), space, "user_id:secret-user", "traits")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    # an API key reads its own account's profiles
    account = server.call(server.services.store.accounts.get(sid))
    key, secret = server.call(server.services.accounts.create_key(account, "profiles"))
    assert _get(server, (key.sid, secret), sid, "user_id:secret-user", "traits").json()["traits"] == {
        "first_name": "Eve"}  # fmt: skip


def test_bad_input_is_a_clear_4xx_in_the_profile_api_shape(server: Server) -> None:
    sid, token, seg = _setup(server, "Profiles bad input")
    seg.identify("42", {"a": 1})
    auth = (sid, token)
    cases = [
        (_get(server, None, sid, "user_id:42", "traits"), 401, "authentication_error"),
        (_get(server, (sid, "wrong"), sid, "user_id:42", "traits"), 401, "authentication_error"),
        (_get(server, auth, sid, "no-colon", "traits"), 400, "validation_error"),
        (_get(server, auth, sid, "user_id:", "events"), 400, "validation_error"),
        (_get(server, auth, sid, "user_id:42", "events", limit=0), 400, "invalid_request_error"),
        (_get(server, auth, sid, "user_id:42", "events", limit="ten"), 400, "invalid_request_error"),
        (_get(server, auth, sid, "user_id:42", "traits", limit=201), 400, "invalid_request_error"),
        (_get(server, auth, sid, "user_id:42", "events", next="not-a-cursor"), 400, "invalid_request_error"),
        (_get(server, auth, sid, "user_id:42", "external_ids", cursor="WzFd"), 400, "invalid_request_error"),
        (_get(server, auth, sid, "user_id:42", "events", sort="sideways"), 400, "invalid_request_error"),
        (_get(server, auth, sid, "user_id:nobody", "links"), 404, "not_found"),
        (requests.post(f"{server.url}/v1/spaces/{sid}/collections/users/profiles/user_id:42/traits", auth=auth,
                       timeout=10), 405, "invalid_request_error"),
        (requests.get(f"{server.url}/v1/spaces/{sid}/collections/users/profiles/user_id%0A42/traits", auth=auth,
                      timeout=10), 400, "invalid_request_error"),
    ]  # fmt: skip
    for r, status, code in cases:
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (r.request.url, r.text)
        assert r.json()["error"]["message"]


def _cursor(json_text: str) -> str:
    return base64.urlsafe_b64encode(json_text.encode()).decode().rstrip("=")


#: Query parameters a client can send that PostgreSQL cannot compare or hold: cursors whose key has another
#: list's types (the events key is a seq, external_ids' three texts, links' two), NUL, digits int() refuses.
BAD_QUERIES: list[tuple[str, dict[str, str]]] = [
    ("events", {"cursor": "WyJhIl0"}),  # ["a"]
    ("events", {"next": _cursor("[true]")}),
    ("events", {"next": _cursor("[9223372036854775808]")}),
    ("events", {"next": _cursor("[-9223372036854775809]")}),
    ("events", {"next": _cursor("[1.5]")}),
    ("events", {"next": _cursor('[["a"]]')}),
    ("external_ids", {"cursor": "WzEsMiwzXQ"}),  # [1,2,3]
    ("external_ids", {"next": _cursor('["a","b",null]')}),
    ("external_ids", {"next": _cursor('["a","b","c\\u0000"]')}),
    ("external_ids", {"include": "\x00"}),
    ("external_ids", {"include": "user_id,\x00x"}),
    ("links", {"next": _cursor("[1,2]")}),
    ("links", {"next": _cursor('["a",{"b":1}]')}),
    ("traits", {"next": _cursor("[1]")}),
    ("traits", {"include": "a\x00"}),
    ("traits", {"verbose": "\x00"}),
    ("events", {"sort": "asc\x00"}),
    ("events", {"x\x00": "1"}),
    ("links", {"limit": "\x00"}),
    ("links", {"limit": "²"}),
    ("events", {"limit": "9" * 5000}),
    ("events", {"limit": "-1"}),
    ("external_ids", {"limit": "1e2"}),
    ("traits", {"cursor": "x" * 2001}),
]


def test_bad_query_parameters_are_a_400_never_a_500(server: Server) -> None:
    sid, token, seg = _setup(server, "Profiles bad queries")
    seg.identify("42", {"a": 1}, anonymous_id="an-1")
    seg.group("42", "acme")
    for what, params in BAD_QUERIES:
        r = _get(server, (sid, token), sid, "user_id:42", what, **params)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request_error", (what, params, r.text)
    # large but harmless values are answered
    assert _get(server, (sid, token), sid, "user_id:42", "external_ids", include="x" * 8000).json()["data"] == []
    only = _get(server, (sid, token), sid, "user_id:42", "external_ids", include=",".join(["user_id"] * 1000))
    assert [i["id"] for i in only.json()["data"]] == ["42"]
    assert _get(server, (sid, token), sid, "user_id:42", "events", cursor=_cursor(f"[{2**63 - 1}]")).json()["data"]


def test_a_parent_reads_its_subaccounts_profiles_never_the_reverse(server: Server) -> None:
    parent, parent_token, parent_seg = _setup(server, "Profiles parent")
    sub, sub_token = server.new_account("Profiles sub", parent=parent)
    sibling, sibling_token = server.new_account("Profiles sibling", parent=parent)
    sub_account = server.call(server.services.store.accounts.get(sub))
    _, key = server.call(server.services.sources.create(sub_account, "web"))
    SegmentClient(key, host=server.url, sync_mode=True).identify("s-1", {"name": "Sub user"})
    parent_seg.identify("p-1", {"name": "Parent user"})

    def traits(auth: tuple[str, str], space: str, ident: str, **headers: str) -> requests.Response:
        url = f"{server.url}/v1/spaces/{space}/collections/users/profiles/{ident}/traits"
        return requests.get(url, auth=auth, headers=headers, timeout=10)

    # the parent's token addresses the subaccount by its space, by the subaccount SID as username, or by
    # the X-Eventstreams-Account header, as on every other surface
    for auth, headers in (((parent, parent_token), {}), ((sub, parent_token), {}),
                          ((parent, parent_token), {"X-Eventstreams-Account": sub})):  # fmt: skip
        r = traits(auth, sub, "user_id:s-1", **headers)
        assert r.status_code == 200 and r.json()["traits"] == {"name": "Sub user"}, (auth, headers, r.text)
    assert traits((sub, sub_token), sub, "user_id:s-1").json()["traits"] == {"name": "Sub user"}
    assert traits((parent, parent_token), parent, "user_id:p-1").json()["traits"] == {"name": "Parent user"}
    # the space decides whose profiles: the parent's space does not hold the subaccount's users
    assert traits((parent, parent_token), parent, "user_id:s-1").status_code == 404
    # a subaccount never reads its parent's or its sibling's space
    for space in (parent, sibling):
        r = traits((sub, sub_token), space, "user_id:p-1")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (space, r.text)
    r = traits((sibling, sibling_token), sub, "user_id:s-1")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    # a suspended subaccount is not read through its parent either
    server.call(server.services.store.accounts.update(sub, None, "suspended", "2026-03-01T10:00:00Z"))
    r = traits((parent, parent_token), sub, "user_id:s-1")
    assert r.status_code == 401 and r.json()["error"]["code"] == "authentication_error", r.text


def test_concurrent_calls_for_one_new_user_make_one_profile(server: Server) -> None:
    """Racing requests carrying the same new identifiers (real races on PostgreSQL's connections):
    every call is accepted, one profile holds them all, no merge was needed."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    sid, token, _ = _setup(server, "Profiles race")
    account = server.call(server.services.store.accounts.get(sid))
    _, key = server.call(server.services.sources.create(account, "race"))
    n = 12
    for round_ in range(3):
        gate = threading.Barrier(n)

        def one(i: int, round_: int = round_) -> requests.Response:
            body = {"userId": f"racer-{round_}", "anonymousId": f"anon-{round_}-{i % 3}", "event": "Raced",
                    "context": {"traits": {"email": f"racer{round_}@example.com"}}}  # fmt: skip
            gate.wait(10)
            return requests.post(f"{server.url}/v1/track", json=body, auth=(key, ""), timeout=30)

        with ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(one, range(n)))
        assert all(r.status_code == 200 and r.json()["accepted"] == 1 for r in answers), [r.text for r in answers]
        events = _get(server, (sid, token), sid, f"user_id:racer-{round_}", "events", limit=100).json()["data"]
        assert len(events) == n
        for i in range(3):
            other = _get(server, (sid, token), sid, f"anonymous_id:anon-{round_}-{i}", "events", limit=100).json()
            assert [e["message_id"] for e in other["data"]] == [e["message_id"] for e in events]
        links = _get(server, (sid, token), sid, f"user_id:racer-{round_}", "links").json()["data"]
        assert links == []
