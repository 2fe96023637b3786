"""Identity rules (pure): identifiers of a message, phones, emails, external ids, limits."""

from __future__ import annotations

import pytest

from eventstreams.profiles import identity as rules


def test_phone_national_format_becomes_e164_in_the_default_region() -> None:
    assert rules.normalize_phone("(415) 555-2671", "US") == rules.Phone("+14155552671", True)
    assert rules.normalize_phone("020 7946 0958", "GB") == rules.Phone("+442079460958", True)
    assert rules.normalize_phone("+44 20 7946 0958", "US") == rules.Phone("+442079460958", True)


def test_invalid_phone_is_kept_as_given_and_flagged() -> None:
    assert rules.normalize_phone(" 12345 ", "US") == rules.Phone("12345", False)
    assert rules.normalize_phone("not a phone", "US") == rules.Phone("not a phone", False)
    assert rules.normalize_phone("", "US") is None
    assert rules.normalize_phone(True, "US") is None


def test_identify_promotes_user_anonymous_email_phone_and_orders_by_priority() -> None:
    m = {"type": "identify", "userId": 42, "anonymousId": "anon-1", "timestamp": "2026-01-01T00:00:00.000Z",
         "traits": {"email": "Jane@Example.COM", "phone": "415-555-2671", "first_name": "Jane"},
         "context": {"traits": {"plan": "pro"}}}
    ident = rules.identity(m, "US")
    assert ident.ids == [("user_id", "42"), ("email", "jane@example.com"), ("anonymous_id", "anon-1"),
                         ("phone", "+14155552671")]
    assert ident.traits == {"plan": "pro", "email": "Jane@Example.COM", "phone": "415-555-2671", "first_name": "Jane"}
    assert ident.phone == rules.Phone("+14155552671", True)
    assert ident.timestamp == "2026-01-01T00:00:00.000Z"


def test_track_reads_context_traits_for_identifiers_but_sets_no_traits() -> None:
    m = {"type": "track", "anonymousId": "a", "event": "Viewed", "context": {"traits": {"email": "X@Y.io"}},
         "traits": {"email": "ignored@y.io"}}
    ident = rules.identity(m, "US")
    assert ident.ids == [("email", "x@y.io"), ("anonymous_id", "a")]
    assert ident.traits == {}
    assert ident.name == "Viewed"


def test_external_ids_users_collection_lowercased_types_phone_normalised_or_kept_raw() -> None:
    m = {"type": "track", "userId": "u", "event": "E", "context": {"externalIds": [
        {"id": "shop-9", "type": "Shopify_ID", "collection": "users", "encoding": "none"},
        {"id": "acct-1", "type": "account_id", "collection": "accounts", "encoding": "none"},
        {"id": "(415) 555-2671", "type": "phone", "collection": "users", "encoding": "none"},
        {"id": "999", "type": "phone", "collection": "users", "encoding": "none"},
        {"id": "A@B.C", "type": "email", "collection": "users", "encoding": "none"},
        "junk", {"type": "x"},
    ]}}
    ident = rules.identity(m, "US")
    assert ident.ids == [("user_id", "u"), ("email", "a@b.c"), ("phone", "+14155552671"), ("phone", "999"),
                         ("shopify_id", "shop-9")]
    assert ident.phone == rules.Phone("+14155552671", True)


def test_alias_carries_previous_id_and_group_resolves_the_user_only() -> None:
    a = rules.identity({"type": "alias", "userId": "42", "previousId": "anon-1"}, "US")
    assert a.ids == [("user_id", "42")] and a.previous_id == "anon-1"
    g = rules.identity({"type": "group", "userId": "42", "groupId": "acme",
                        "traits": {"email": "billing@acme.io", "phone": "4155552671"}}, "US")
    assert g.ids == [("user_id", "42")] and g.traits == {} and g.phone is None and g.name == "acme"


def test_oversized_and_non_text_ids_are_not_identifiers() -> None:
    ident = rules.identity({"type": "track", "userId": "x" * 600, "anonymousId": {"a": 1}, "event": "E"}, "US")
    assert ident.ids == []


def test_limits_parse_and_default() -> None:
    limits = rules.parse_limits(rules.DEFAULT_LIMITS)
    assert limits("user_id") == 1 and limits("anonymous_id") == 1000 and limits("ios.id") == 5
    assert rules.parse_limits("user_id=2, *=7")("x") == 7
    for bad in ("user_id", "user_id=0", "=3", "email=x"):
        with pytest.raises(ValueError):
            rules.parse_limits(bad)


def test_opted_out_by_trait_or_stop() -> None:
    assert rules.opted_out({}, True)
    assert rules.opted_out({"sms_opt_out": True}, False)
    assert rules.opted_out({"unsubscribed": "TRUE"}, False)
    assert not rules.opted_out({"unsubscribed": False, "sms_opt_out": "no"}, False)
