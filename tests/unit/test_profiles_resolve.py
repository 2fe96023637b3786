"""Identity resolution inside the ingest transaction (Profiles.resolve_tx) on the real store."""

from __future__ import annotations

import base64
import itertools
from typing import Any

from eventstreams.domain.accounts import Principal
from eventstreams.profiles import identity as rules
from eventstreams.runtime import Runtime

_seq = itertools.count(1)


def ts(second: int) -> str:
    return f"2026-03-01T10:00:{second:02d}.000Z"


async def resolve(rt: Runtime, account: str, *messages: dict[str, Any]) -> None:
    batch = [(next(_seq), {"messageId": f"m-{i}-{id(m)}", **m}) for i, m in enumerate(messages)]
    await rt.store.db.run(lambda tx: rt.profiles.resolve_tx(tx, account, batch), write=True)


async def traits_of(rt: Runtime, account: str, ident: str) -> dict[str, Any]:
    p = await rt.profiles.find(account, ident)
    assert p is not None
    return rt.profiles.traits(p)


async def test_anonymous_browsing_then_identify_then_alias_is_one_profile(runtime: Runtime,
                                                                          principal: Principal) -> None:
    a = principal.account.sid
    await resolve(runtime, a, {"type": "page", "anonymousId": "anon-1", "name": "Home", "timestamp": ts(1)})
    await resolve(runtime, a, {"type": "track", "anonymousId": "anon-1", "event": "Viewed", "timestamp": ts(2)})
    await resolve(runtime, a, {"type": "identify", "userId": "42", "anonymousId": "anon-1", "timestamp": ts(3),
                               "traits": {"first_name": "Jane", "phone": "(415) 555-2671"}})
    # another device browsed anonymously, then the user aliased it
    await resolve(runtime, a, {"type": "track", "anonymousId": "anon-2", "event": "Cart Viewed", "timestamp": ts(4)})
    other = await runtime.profiles.find(a, "anonymous_id:anon-2")
    await resolve(runtime, a, {"type": "alias", "userId": "42", "previousId": "anon-2", "timestamp": ts(5)})

    p = await runtime.profiles.find(a, "user_id:42")
    assert p is not None and other is not None and other.id != p.id
    for ident in ("anonymous_id:anon-1", "anonymous_id:anon-2", "phone:+14155552671", "phone:4155552671"):
        found = await runtime.profiles.find(a, ident)
        assert found is not None and found.id == p.id, ident
    assert p.phone == "+14155552671" and p.phone_valid
    events, _ = await runtime.profiles.events(a, p.id, 10, None)
    assert [e["name"] for e in events] == [None, "Cart Viewed", None, "Viewed", "Home"]  # newest first
    merges, _ = await runtime.profiles.merges(a, p.id, 10, None)
    assert [(m["winner"], m["loser"], m["id_type"], m["id_value"], m["status"]) for m in merges] == [
        (p.id, other.id, "anonymous_id", "anon-2", "merged")]
    loser = await runtime.store.profiles.get(a, other.id)
    assert loser is not None and loser.merged_into == p.id


async def test_traits_latest_wins_by_timestamp_even_out_of_order(runtime: Runtime, principal: Principal) -> None:
    a = principal.account.sid
    await resolve(runtime, a, {"type": "identify", "userId": "7", "timestamp": ts(20),
                               "traits": {"plan": "pro", "city": "Paris"}})
    await resolve(runtime, a, {"type": "identify", "userId": "7", "timestamp": ts(10),  # older, arrives later
                               "traits": {"plan": "free", "age": 30}, "context": {"traits": {"city": "Oslo"}}})
    assert await traits_of(runtime, a, "user_id:7") == {"plan": "pro", "city": "Paris", "age": 30}
    await resolve(runtime, a, {"type": "identify", "userId": "7", "timestamp": ts(30), "traits": {"plan": "team"}})
    assert (await traits_of(runtime, a, "user_id:7"))["plan"] == "team"


async def test_merge_keeps_the_latest_trait_from_either_side(runtime: Runtime, principal: Principal) -> None:
    a = principal.account.sid
    await resolve(runtime, a,
                  {"type": "identify", "anonymousId": "x", "timestamp": ts(40), "traits": {"color": "red"}},
                  {"type": "identify", "userId": "8", "timestamp": ts(30), "traits": {"color": "blue", "n": 1}},
                  {"type": "track", "userId": "8", "anonymousId": "x", "event": "Joined", "timestamp": ts(50)})
    assert await traits_of(runtime, a, "anonymous_id:x") == {"color": "red", "n": 1}


async def test_merge_over_the_user_id_limit_is_refused_and_recorded(runtime: Runtime,
                                                                    principal: Principal) -> None:
    a = principal.account.sid
    await resolve(runtime, a, {"type": "identify", "userId": "1", "timestamp": ts(1),
                               "traits": {"email": "Jane@example.com"}})
    await resolve(runtime, a, {"type": "identify", "userId": "2", "timestamp": ts(2)})
    # user 2 claims user 1's email: merging would give one profile two user_ids (limit 1)
    await resolve(runtime, a, {"type": "identify", "userId": "2", "timestamp": ts(3),
                               "traits": {"email": "jane@EXAMPLE.com"}})
    one, two = await runtime.profiles.find(a, "user_id:1"), await runtime.profiles.find(a, "user_id:2")
    assert one is not None and two is not None and one.id != two.id
    by_email = await runtime.profiles.find(a, "email:JANE@example.com")
    assert by_email is not None and by_email.id == one.id  # the identifier stayed where it was
    merges, _ = await runtime.profiles.merges(a, two.id, 10, None)
    assert [(m["winner"], m["loser"], m["id_type"], m["status"], m["reason"]) for m in merges] == [
        (two.id, one.id, "email", "refused", "user_id limit 1 exceeded")]
    # the identify still landed on user 2's profile
    events, _ = await runtime.profiles.events(a, two.id, 10, None)
    assert len(events) == 2


async def test_new_identifier_over_its_limit_is_not_attached(runtime: Runtime, principal: Principal) -> None:
    a = principal.account.sid
    runtime.profiles.limits = rules.parse_limits("user_id=1,email=1")
    await resolve(runtime, a, {"type": "identify", "userId": "9", "timestamp": ts(1), "traits": {"email": "a@x.io"}})
    await resolve(runtime, a, {"type": "identify", "userId": "9", "timestamp": ts(2), "traits": {"email": "b@x.io"}})
    assert await runtime.profiles.find(a, "email:b@x.io") is None
    p = await runtime.profiles.find(a, "user_id:9")
    assert p is not None
    merges, _ = await runtime.profiles.merges(a, p.id, 10, None)
    assert [(m["loser"], m["id_value"], m["status"]) for m in merges] == [(None, "b@x.io", "refused")]


async def test_alias_of_a_previous_user_id_is_refused_by_the_user_id_limit(runtime: Runtime,
                                                                           principal: Principal) -> None:
    a = principal.account.sid
    await resolve(runtime, a, {"type": "identify", "userId": "old", "timestamp": ts(1)},
                  {"type": "identify", "userId": "new", "timestamp": ts(2)},
                  {"type": "alias", "userId": "new", "previousId": "old", "timestamp": ts(3)})
    old, new = await runtime.profiles.find(a, "user_id:old"), await runtime.profiles.find(a, "user_id:new")
    assert old is not None and new is not None and old.id != new.id
    runtime.profiles.limits = rules.parse_limits("user_id=2")
    await resolve(runtime, a, {"type": "alias", "userId": "new", "previousId": "old", "timestamp": ts(4)})
    old, new = await runtime.profiles.find(a, "user_id:old"), await runtime.profiles.find(a, "user_id:new")
    assert old is not None and new is not None and old.id == new.id


async def test_profile_lookup_and_stop(runtime: Runtime, principal: Principal) -> None:
    a = principal.account.sid
    await resolve(runtime, a, {"type": "identify", "userId": "42", "anonymousId": "an", "timestamp": ts(1),
                               "traits": {"phone": "415 555 2671", "first_name": "Jo"}},
                  {"type": "identify", "userId": "43", "timestamp": ts(1), "traits": {"phone": "12"}})
    view = await runtime.profiles.for_message(a, {"type": "track", "userId": "42", "event": "E"})
    assert view is not None and view.phone == "+14155552671" and view.phone_valid and not view.opted_out
    assert view.user_id == "42" and view.anonymous_ids == ("an",) and view.traits["first_name"] == "Jo"
    bad = await runtime.profiles.for_message(a, {"type": "track", "userId": "43", "event": "E"})
    assert bad is not None and bad.phone == "12" and not bad.phone_valid
    assert await runtime.profiles.for_message(a, {"type": "track", "userId": "nobody", "event": "E"}) is None
    assert await runtime.profiles.set_opted_out(a, "+1 415-555-2671", True) == 1
    view = await runtime.profiles.for_message(a, {"type": "track", "anonymousId": "an", "event": "E"})
    assert view is not None and view.opted_out
    assert await runtime.profiles.set_opted_out(a, "(415) 555-2671", False) == 1
    view = await runtime.profiles.for_message(a, {"type": "track", "userId": "42", "event": "E"})
    assert view is not None and not view.opted_out


async def test_accounts_do_not_share_profiles(runtime: Runtime, principal: Principal) -> None:
    from .conftest import new_principal

    other = await new_principal(runtime, "other")
    await resolve(runtime, principal.account.sid, {"type": "identify", "userId": "42", "timestamp": ts(1)})
    assert await runtime.profiles.find(other.account.sid, "user_id:42") is None
    await resolve(runtime, other.account.sid, {"type": "identify", "userId": "42", "timestamp": ts(1)})
    mine, theirs = (await runtime.profiles.find(principal.account.sid, "user_id:42"),
                    await runtime.profiles.find(other.account.sid, "user_id:42"))
    assert mine is not None and theirs is not None and mine.id != theirs.id


async def test_events_page_with_cursor(runtime: Runtime, principal: Principal) -> None:
    a = principal.account.sid
    await resolve(runtime, a, *({"type": "track", "userId": "p", "event": f"E{i}", "timestamp": ts(i)}
                                for i in range(5)))
    p = await runtime.profiles.find(a, "user_id:p")
    assert p is not None
    names, cursor = [], None
    while True:
        events, cursor = await runtime.profiles.events(a, p.id, 2, cursor)
        names += [e["name"] for e in events]
        if cursor is None:
            break
    assert names == ["E4", "E3", "E2", "E1", "E0"]


async def test_events_never_show_another_accounts_message_through_a_reused_seq(runtime: Runtime,
                                                                             principal: Principal) -> None:
    from .conftest import new_principal

    other = await new_principal(runtime, "other")
    [theirs] = await runtime.ingest.record(other.account.sid, [
        {"type": "track", "userId": "them", "event": "Their Secret", "properties": {"secret": "s3"},
         "messageId": "their-1", "timestamp": ts(1)}])  # fmt: skip
    assert theirs.seq is not None and theirs.status == "accepted"
    # a profile event of this account pointing at that seq, as if seqs had collided
    a = principal.account.sid
    batch = [(theirs.seq, {"type": "track", "userId": "me", "event": "Mine", "messageId": "mine-1",
                           "timestamp": ts(2)})]  # fmt: skip
    await runtime.store.db.run(lambda tx: runtime.profiles.resolve_tx(tx, a, batch), write=True)
    p = await runtime.profiles.find(a, "user_id:me")
    assert p is not None
    [event], _ = await runtime.profiles.events(a, p.id, 10, None)
    assert (event["seq"], event["name"]) == (theirs.seq, "Mine")
    assert event["payload"] is None and event["source_sid"] is None
    # the owner still reads its own message
    q = await runtime.profiles.find(other.account.sid, "user_id:them")
    assert q is not None
    [own], _ = await runtime.profiles.events(other.account.sid, q.id, 10, None)
    assert own["payload"] is not None and "Their Secret" in own["payload"]


async def test_a_cursor_must_carry_the_key_of_the_list_it_pages(runtime: Runtime, principal: Principal) -> None:
    import pytest

    from eventstreams.profiles.service import BadCursor, encode_cursor

    def forged(json_text: str) -> str:  # what encode_cursor cannot write
        return base64.urlsafe_b64encode(json_text.encode()).decode().rstrip("=")

    a = principal.account.sid
    await resolve(runtime, a, *({"type": "identify", "userId": "c", "anonymousId": f"an-{i}", "timestamp": ts(i)}
                                for i in range(3)))
    p = await runtime.profiles.find(a, "user_id:c")
    assert p is not None
    bad = {
        "events": [["a"], [True], [1.5], [2**63], forged(f"[{-(2**63) - 1}]"), forged(f"[{10**30}]"), [None],
                   [1, 2], [], forged('["\\ud800"]'), forged("[1"), "*", {"a": 1}],
        "external_ids": [[1, 2, 3], ["a", "b"], ["a", "b", "c\x00"], ["a", "b", "x" * 2001], ["a", "b", True]],
        "links": [[1, 2], ["a"], ["a", ["b"]], ["a", {"b": 1}]],
    }
    for kind, keys in bad.items():
        for key in keys:
            cursor = key if isinstance(key, str) else encode_cursor(key)
            with pytest.raises(BadCursor):
                if kind == "events":
                    await runtime.profiles.events(a, p.id, 2, cursor)
                elif kind == "external_ids":
                    await runtime.profiles.external_ids(a, p.id, None, 2, cursor)
                else:
                    await runtime.profiles.merges(a, p.id, 2, cursor)
    # the cursors the lists hand out are accepted, at the edges of BIGINT too
    older = [len((await runtime.profiles.events(a, p.id, 2, encode_cursor([s])))[0]) for s in (2**63 - 1, -(2**63))]
    assert older == [2, 0]  # newest first: everything is older than the largest seq, nothing than the smallest
    _, nxt = await runtime.profiles.external_ids(a, p.id, None, 2, None)
    assert nxt is not None
    rest, _ = await runtime.profiles.external_ids(a, p.id, None, 2, nxt)
    assert len(rest) == 2
