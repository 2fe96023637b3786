"""The sandbox's pure rules: To/From checks with Twilio's codes, segment counting, outcome rules,
date filters and the deterministic fault ratios."""

from __future__ import annotations

import pytest

from eventstreams.config import Settings
from eventstreams.errors import TwilioError
from eventstreams.sandbox import phones
from eventstreams.sandbox.behaviour import Behaviour, BehaviourError, parse_rules
from eventstreams.sandbox.service import DateFilter, Sandbox, parse_date


@pytest.mark.parametrize(
    ("value", "expected"),
    [("+14155552671", "+14155552671"), ("whatsapp:+14155552671", "whatsapp:+14155552671"),
     ("+44 7700 900123", "+447700900123")],
)  # fmt: skip
def test_to_accepted_in_e164(value: str, expected: str) -> None:
    assert phones.check_to(value) == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [(None, 21604), ("", 21604), ("4155552671", 21211), ("+1415", 21211), ("+15005550002", 21612),
     ("+15005550003", 21408), ("+15005550004", 21610), ("+15005550009", 21614)],
)  # fmt: skip
def test_to_rejected_with_twilio_codes(value: str | None, code: int) -> None:
    with pytest.raises(TwilioError) as exc:
        phones.check_to(value)
    assert exc.value.code == code and exc.value.status == 400


def test_from_forms() -> None:
    assert phones.check_from("12345") == "12345"  # short code
    assert phones.check_from("ACME Inc") == "ACME Inc"  # alphanumeric sender id
    for bad, code in (("ACME Incorporated", 21212), ("+15005550007", 21606), ("+15005550008", 21611), ("1", 21212)):
        with pytest.raises(TwilioError) as exc:
            phones.check_from(bad)
        assert exc.value.code == code


@pytest.mark.parametrize(
    ("body", "n"),
    [("", 1), ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3), ("€" * 80, 1), ("€" * 81, 2),
     ("é" * 160, 1), ("ç" * 70, 1), ("ç" * 71, 2), ("😀" * 35, 1), ("😀" * 36, 2)],
)  # fmt: skip
def test_segments(body: str, n: int) -> None:
    # é is GSM-7; ç is not (UCS-2); € is in the extension table (two septets); an emoji is two UTF-16 units
    assert phones.segments(body) == n


def test_body_limits() -> None:
    assert phones.check_body("", has_media=True) == ""
    for body, code in ((None, 21602), ("", 21602), ("x" * 1601, 21617)):
        with pytest.raises(TwilioError) as exc:
            phones.check_body(body, has_media=False)
        assert exc.value.code == code


def test_outcome_rules_longest_prefix_wins() -> None:
    b = Behaviour(outcomes=parse_rules("+44=failed:30008, +4477=undelivered:30003,+1212=busy"))
    rule = b.rule_for("+447700900123")
    assert rule is not None and (rule.status, rule.error_code) == ("undelivered", 30003)
    assert b.rule_for("+4420") is not None and b.rule_for("+33") is None
    with pytest.raises(BehaviourError):
        parse_rules("+44=exploded")
    with pytest.raises(BehaviourError):
        parse_rules("nonsense")


def test_behaviour_overrides_round_trip() -> None:
    base = Behaviour.defaults(Settings(sandbox_step_seconds=2.0, sandbox_outcomes="+1=failed"))
    changed = base.with_overrides({"step_seconds": "0", "rate_limit_ratio": "0.25", "outcomes": "+44=busy"})
    assert changed.overrides(base) == {"step_seconds": 0.0, "rate_limit_ratio": 0.25, "outcomes": "+44=busy"}
    import orjson

    assert base.with_overrides(orjson.loads(changed.dumps(base))) == changed
    for bad in ({"step_seconds": "-1"}, {"rate_limit_ratio": "1.5"}, {"server_error_status": "404"}, {"x": 1}):
        with pytest.raises(BehaviourError):
            base.with_overrides(bad)


def test_fault_ratio_is_exact() -> None:
    sb = Sandbox.__new__(Sandbox)  # only the fault counters are exercised
    sb._credit = {}
    b = Behaviour(rate_limit_ratio=0.25, server_error_ratio=0.5, server_error_status=503)
    got = [sb.fault("AC1", b) for _ in range(80)]
    statuses = [e.status if e else 200 for e in got]
    assert statuses[:4] == [200, 503, 200, 429] and statuses[4] == 503  # a clash defers the 5xx by one request
    assert statuses.count(429) == 20 and statuses.count(503) == 39 and statuses.count(200) == 21
    deferred = sb.fault("AC1", b)  # the 40th 5xx, deferred from the 80th request
    assert deferred is not None and deferred.status == 503
    assert got[3] is not None and got[3].code == 20429


def test_date_parsing_and_day_semantics() -> None:
    assert parse_date("2024-03-01")[1] is True
    for v in ("2024-03-01T10:00:00Z", "2024-03-01 10:00:00.000", "2024-03-01 10:00:00Z",
              "Fri, 01 Mar 2024 10:00:00 +0000", "2024-03-01T12:00:00+02:00"):  # fmt: skip
        d, date_only = parse_date(v)
        assert (d.hour, d.minute, date_only) == (10, 0, False), v
    for bad in ("yesterday", "2024-13-01", "0000-01-01"):
        with pytest.raises(ValueError):
            parse_date(bad)
    where, params = DateFilter(on="2024-03-01", before="2024-03-05", after="2024-03-02").conditions("c", "p")
    assert params == {"p_on": "2024-03-01T00:00:00Z", "p_on_end": "2024-03-02T00:00:00Z",
                      "p_after": "2024-03-02T00:00:00Z", "p_before": "2024-03-06T00:00:00Z"}  # fmt: skip
    assert where == ["c >= :p_on AND c < :p_on_end", "c >= :p_after", "c < :p_before"]


def test_seed_now_must_leave_room_for_a_year() -> None:
    from eventstreams.sandbox.seed import parse_now

    assert parse_now("2026-12-01") == 1_796_083_200.0
    for bad in ("999999999999999", "1970-06-01", "9999-12-31", "soon"):
        with pytest.raises(ValueError):
            parse_now(bad)
