"""The twilio-sms sink without a network: templates, conditions, configuration, the checks that stop a
text, the recipient it picks and the ledger that keeps it from being sent twice (the real store on
SQLite in memory). Sending through the sandbox: tests/integration/test_twilio_sms.py."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest

from eventstreams import clock
from eventstreams.bridge.sms import SmsTarget, earlier_statuses, opt_keyword, status_track
from eventstreams.delivery.dispatcher import Dispatcher, DispatcherConfig
from eventstreams.delivery.hooks import Attempt, DeliveryLog, Round
from eventstreams.delivery.policy import Action, Decision, is_retryable
from eventstreams.domain.accounts import Principal
from eventstreams.errors import TwilioError
from eventstreams.outcome import Outcome, OutcomeKind
from eventstreams.profiles.view import ProfileView
from eventstreams.runtime import Runtime
from eventstreams.sinks import registry
from eventstreams.sinks.base import NoPacer, OutgoingEvent, SinkContext
from eventstreams.sinks.spec import MASK, ConfigOptions
from eventstreams.sinks.twilio_sms import TwilioSmsSender
from eventstreams.sinks.twilio_sms.mapping import Condition, normalize_e164, parse_mappings
from eventstreams.sinks.twilio_sms.template import MAX_TEMPLATE_BYTES, TemplateError, compile_template, render
from eventstreams.store.base import migrations
from eventstreams.store.records import LeasedDelivery, SinkRow, SmsRow
from eventstreams.store.repos.retention import sms_ledger_keep_ms
from tests.unit.conftest import new_principal

TWILIO_SID = "AC" + "a" * 32
FROM = "+15005550006"
SINK_SID = "DG" + "b" * 32
OPTIONS = ConfigOptions(allow_private=True)
TRIAL = {"event": "Trial Expired", "body": "Hi {{ traits.first_name | default: 'there' }}, your {{ properties.plan }}"
         " trial ended."}  # fmt: skip


class Profiles:
    """A faithful in-memory ProfileLookup: by userId, then anonymousId; opt-outs by normalised phone."""

    def __init__(self, *profiles: ProfileView) -> None:
        self.profiles = list(profiles)
        self.looked_up: list[dict[str, Any]] = []

    async def for_message(self, account_sid: str, message: dict[str, Any]) -> ProfileView | None:
        self.looked_up.append(message)
        for key, attr in (("userId", "user_id"), ("anonymousId", "anonymous_ids")):
            value = message.get(key)
            for p in self.profiles:
                held = getattr(p, attr)
                if value is not None and (value == held or (isinstance(held, tuple) and value in held)):
                    return p
        return None

    async def set_opted_out(self, account_sid: str, phone: str, opted_out: bool) -> int:
        wanted = normalize_e164(phone, "US")
        n = 0
        for i, p in enumerate(self.profiles):
            if p.phone is not None and p.phone == wanted:
                self.profiles[i] = dataclasses.replace(p, opted_out=opted_out)
                n += 1
        return n


def config(**over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "account_sid": TWILIO_SID,
        "auth_token": "tok",
        "from": "+15005550006",
        "base_url": "http://127.0.0.1:9",  # discard: nothing listens (a send here fails to connect)
        "mappings": [TRIAL],
    }
    cfg.update(over)
    return {k: v for k, v in cfg.items() if v is not None}


_SENDERS: list[TwilioSmsSender] = []


@pytest.fixture(autouse=True)
async def _close_senders() -> Any:
    yield
    while _SENDERS:
        await _SENDERS.pop().close()


def make_sender(rt: Runtime, account_sid: str, profiles: Profiles | None = None, timeout: float = 1.0,
                **over: Any) -> TwilioSmsSender:  # fmt: skip
    cfg = registry.validate("twilio-sms", config(**over), OPTIONS)
    extra = {"store": rt.store, "profiles": profiles, "base_url": "https://es.example"}
    ctx = SinkContext(SINK_SID, account_sid, "twilio-sms", cfg, "acct-token", "whsec_x", allow_private=True,
                      timeout=timeout, extra=extra)  # fmt: skip
    sender = registry.create_sender(ctx)
    assert isinstance(sender, TwilioSmsSender)
    _SENDERS.append(sender)
    return sender


def track(event: str = "Trial Expired", message_id: str = "m-1", **fields: Any) -> OutgoingEvent:
    message: dict[str, Any] = {
        "type": "track",
        "event": event,
        "userId": "42",
        "messageId": message_id,
        "properties": {"plan": "pro"},
        "timestamp": "2026-12-02T10:00:00.000Z",
    }
    message.update(fields)
    doc = {"specversion": "1.0", "id": f"TS1.{message_id}", "type": "com.segment.tracking.track",
           "source": "/v1/Sources/TS1", "data": message}  # fmt: skip
    return OutgoingEvent(doc["id"], doc["type"], json.dumps(doc).encode())


ADA = ProfileView("prf_ada", {"first_name": "Ada"}, "+14155552671", True, False, "42")


def reason(outcome: object) -> str:
    assert isinstance(outcome, Outcome), outcome
    assert outcome.kind is OutcomeKind.DROPPED and not is_retryable(outcome), outcome
    return outcome.message


# -- templates ---------------------------------------------------------------------------------


def test_a_missing_value_renders_empty_and_default_fills_it() -> None:
    t = compile_template("Hi {{ traits.first_name | default: 'there' }}|{{ properties.x }}|{{ a.b.c }}|")
    assert render(t, {"traits": {}, "properties": {}}) == "Hi there|||"
    assert render(t, {"traits": {"first_name": "Ada"}, "properties": {"x": 3}}) == "Hi Ada|3||"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% if %}", "template does not parse: missing expression"),
        ("x" * (MAX_TEMPLATE_BYTES + 1), f"at most {MAX_TEMPLATE_BYTES} are allowed"),
        ("é" * (MAX_TEMPLATE_BYTES // 2 + 1), "bytes; at most"),  # bytes, not characters
    ],
)
def test_templates_that_are_refused_when_parsed(source: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        compile_template(source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ 'x' | no_such_filter }}", "unknown filter"),
        ("{% for i in (1..100000) %}{% endfor %}", "loop iteration limit"),
        ("{% for i in (1..900) %}{{ properties.long }}{% endfor %}", "output stream limit"),
        ("{% include 'other' %}", "template error"),  # no loader: a template reads only its context
    ],
)
def test_render_is_bounded(source: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render(compile_template(source), {"properties": {"long": "y" * 100}})


# -- conditions and mappings -------------------------------------------------------------------

CTX = {"properties": {"plan": "pro", "seats": 5, "beta": True, "none": None}, "traits": {"tier": "gold"}}


@pytest.mark.parametrize(
    ("path", "op", "value", "holds"),
    [
        ("properties.plan", "eq", "pro", True),
        ("properties.plan", "eq", "free", False),
        ("properties.beta", "eq", 1, False),  # JSON equality: true is not 1
        ("properties.plan", "neq", "free", True),
        ("properties.gone", "neq", "free", True),
        ("properties.plan", "in", ["pro", "team"], True),
        ("properties.plan", "in", ["free"], False),
        ("properties.seats", "gt", 4, True),
        ("properties.seats", "lt", 4, False),
        ("properties.plan", "gt", 3, False),  # a string is not compared with a number
        ("properties.beta", "gt", 0, False),
        ("traits.tier", "lt", "silver", True),
        ("properties.plan", "exists", None, True),
        ("properties.none", "exists", None, False),
        ("properties.gone", "exists", False, True),
        ("properties.plan.deeper", "exists", None, False),
    ],
)
def test_conditions(path: str, op: str, value: Any, holds: bool) -> None:
    assert Condition(tuple(path.split(".")), op, value).holds(CTX) is holds


@pytest.mark.parametrize(
    ("mappings", "message"),
    [
        ([], "mappings must hold from 1 to 50 items"),
        ([{"event": "E"}], "mappings[0].body must be a non-empty Liquid template"),
        ([{"event": "", "body": "x"}], "mappings[0].event must be a track event name"),
        ([{"event": "E", "body": "{% if %}"}], "mappings[0].body: template does not parse"),
        ([{"event": "E", "body": "x", "to": "{{ }"}], "mappings[0].to: template does not parse"),
        ([{"event": "E", "body": "x", "tags": []}], "mappings[0] has unknown key(s): tags"),
        ([{"event": "E", "body": "x", "conditions": [{"path": "properties.a", "op": "like", "value": 1}]}],
         "mappings[0].conditions[0].op must be one of eq, neq, exists, in, gt, lt"),
        ([{"event": "E", "body": "x", "conditions": [{"path": "secrets.a", "op": "exists"}]}],
         "conditions[0].path must start with one of"),
        ([{"event": "E", "body": "x", "conditions": [{"path": "properties.a", "op": "in", "value": 1}]}],
         "value must be a list for in"),
        ([{"event": "E", "body": "x", "conditions": [{"path": "properties.a", "op": "eq"}]}],
         "value is required for eq"),
    ],
)  # fmt: skip
def test_bad_mappings_are_a_91000_naming_the_field(mappings: Any, message: str) -> None:
    with pytest.raises(ValueError, match=r"^mappings"):
        parse_mappings(mappings)
    with pytest.raises(TwilioError) as caught:
        registry.validate("twilio-sms", config(mappings=mappings), OPTIONS)
    assert caught.value.code == 91000 and caught.value.status == 400
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"auth_token": None}, "auth_token (or api_key_sid with api_key_secret) is required"),
        ({"api_key_sid": "SK" + "c" * 32}, "not both"),
        ({"auth_token": None, "api_key_sid": "SK" + "c" * 32}, "is required"),
        ({"messaging_service_sid": "MG" + "d" * 32}, "exactly one of from and messaging_service_sid"),
        ({"from": None}, "exactly one of from and messaging_service_sid"),
        ({"from": "4155550100"}, "from must be an E.164 number"),
        ({"account_sid": "AC123"}, "account_sid must be AC followed by 32 hex digits"),
        ({"mappings": {"event": "E"}}, "mappings must be a JSON array"),
        ({"per_profile_per_hour": -1}, "per_profile_per_hour must be an integer from 0 to 1000"),
        ({"base_url": "ftp://x.example"}, "base_url must be an http or https URL"),
    ],
)
def test_configuration_rules(over: dict[str, Any], message: str) -> None:
    with pytest.raises(TwilioError) as caught:
        registry.validate("twilio-sms", config(**over), OPTIONS)
    assert message in caught.value.message


def test_defaults_and_secrets_masked() -> None:
    cfg = registry.validate("twilio-sms", config(auth_token=None, api_key_sid="SK" + "C" * 32,
                                                 api_key_secret="shh"), OPTIONS)  # fmt: skip
    assert cfg["api_key_sid"] == "SK" + "c" * 32  # SIDs canonical
    assert (cfg["truncate"], cfg["per_profile_per_hour"], cfg["default_region"]) == (False, 5, "US")
    shown = registry.redact("twilio-sms", {**cfg, "auth_token": "tok"})
    assert shown["api_key_secret"] == MASK and shown["auth_token"] == MASK and shown["account_sid"] == TWILIO_SID
    assert registry.destination_of("twilio-sms", cfg, {}) == (
        f"http://127.0.0.1:9/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    )


# -- the checks: nothing is sent, with a reason ------------------------------------------------


async def test_no_mapping_or_not_a_track_message_is_a_visible_skip(runtime: Runtime, principal: Principal) -> None:
    sender = make_sender(runtime, principal.account.sid)
    test_event = OutgoingEvent("e1", "com.twilio.eventstreams.test-sink",
                               json.dumps({"id": "e1", "data": {"test_id": "x"}}).encode())  # fmt: skip
    other, page, test = await sender.send([track("Signed Up"), track(type="page"), test_event], NoPacer())
    assert other.kind is OutcomeKind.SKIPPED and other.message == "no mapping matched: track event 'Signed Up'"
    assert page.kind is OutcomeKind.SKIPPED and "not a Segment track message (type 'page')" in page.message
    assert test.kind is OutcomeKind.SKIPPED and "(type None)" in test.message


async def test_conditions_choose_the_first_matching_mapping(runtime: Runtime, principal: Principal) -> None:
    mappings = [
        {"event": "Trial Expired", "body": "team", "conditions": [{"path": "properties.plan", "op": "eq",
                                                                   "value": "team"}]},
        {"event": "Trial Expired", "body": "any {{ properties.plan }}"},
    ]  # fmt: skip
    sender = make_sender(runtime, principal.account.sid, Profiles(ADA), mappings=mappings)
    prepared = await sender.prepare(track())
    assert not isinstance(prepared, Outcome) and prepared[1] == "any pro"
    prepared = await sender.prepare(track(properties={"plan": "team"}))
    assert not isinstance(prepared, Outcome) and prepared[1] == "team"


async def test_body_and_recipient_from_the_profile(runtime: Runtime, principal: Principal) -> None:
    profiles = Profiles(ADA)
    sender = make_sender(runtime, principal.account.sid, profiles)
    prepared = await sender.prepare(track(properties={"plan": "pro", "phone": "+14155550100"}))
    assert not isinstance(prepared, Outcome)
    row, body = prepared
    assert body == "Hi Ada, your pro trial ended."
    assert (row.recipient, row.profile_id, row.user_id, row.message_id, row.rate_key) == (
        "+14155552671", "prf_ada", "42", "m-1", "prf_ada"
    )
    assert profiles.looked_up[0]["userId"] == "42"


@pytest.mark.parametrize(
    ("profile_phone", "fields", "want"),
    [
        # no profile phone: properties.phone, then context.traits.phone; national formats in the region
        (None, {"properties": {"phone": "(415) 555-0100"}}, "+14155550100"),
        (None, {"context": {"traits": {"phone": "415.555.0101"}}}, "+14155550101"),
        (None, {"properties": {"phone": "+14155550100"}, "context": {"traits": {"phone": "+14155550101"}}},
         "+14155550100"),
        # a profile phone that did not parse is tried again with the sink's region
        ("(415) 555-0102", {"properties": {"phone": "+14155550100"}}, "+14155550102"),
    ],
)  # fmt: skip
async def test_recipient_order(
    runtime: Runtime, principal: Principal, profile_phone: str | None, fields: dict[str, Any], want: str
) -> None:
    profile = ProfileView("prf_x", {}, profile_phone, False, False, "42")
    sender = make_sender(runtime, principal.account.sid, Profiles(profile))
    prepared = await sender.prepare(track(**fields))
    assert not isinstance(prepared, Outcome) and prepared[0].recipient == want


async def test_explicit_to_and_the_region(runtime: Runtime, principal: Principal) -> None:
    mappings = [{**TRIAL, "to": "{{ properties.mobile }}"}]
    sender = make_sender(runtime, principal.account.sid, Profiles(ADA), mappings=mappings, default_region="GB")
    prepared = await sender.prepare(track(properties={"mobile": "020 7946 0018"}))
    assert not isinstance(prepared, Outcome) and prepared[0].recipient == "+442079460018"
    assert "no phone: the mapping's to rendered empty" in reason(await sender.prepare(track()))


async def test_checks_that_stop_a_text(runtime: Runtime, principal: Principal) -> None:
    account = principal.account.sid
    no_profile = make_sender(runtime, account)
    assert "no phone" in reason(await no_profile.prepare(track()))
    bad = await no_profile.prepare(track(properties={"phone": "12"}))
    assert "properties.phone is not a valid phone number ('12', region US)" in reason(bad)
    opted = make_sender(runtime, account, Profiles(dataclasses.replace(ADA, opted_out=True)))
    assert "profile prf_ada has opted out" in reason(await opted.prepare(track()))
    long_body = [{"event": "Trial Expired", "body": "{{ properties.text }}"}]
    text = "x" * 1601
    strict = make_sender(runtime, account, Profiles(ADA), mappings=long_body)
    assert "1601 characters; Twilio accepts at most 1600" in reason(
        await strict.prepare(track(properties={"text": text}))
    )
    cut = make_sender(runtime, account, Profiles(ADA), mappings=long_body, truncate=True)
    prepared = await cut.prepare(track(properties={"text": text}))
    assert not isinstance(prepared, Outcome) and prepared[1] == "x" * 1600
    broken = make_sender(runtime, account, Profiles(ADA), mappings=[{**TRIAL, "body": "{{ 'x' | nope }}"}])
    assert "body template error: unknown filter" in reason(await broken.prepare(track()))
    empty = make_sender(runtime, account, Profiles(ADA), mappings=[{**TRIAL, "body": "{{ properties.none }}"}])
    assert "the rendered body is empty" in reason(await empty.prepare(track()))
    # and through send(): no claim is left behind by a check
    [outcome] = await opted.send([track()], NoPacer())
    assert "opted out" in reason(outcome)
    assert await runtime.store.sms.get(account, SINK_SID, "m-1", "+14155552671") is None


async def test_a_profile_lookup_failure_is_retried(runtime: Runtime, principal: Principal) -> None:
    class Broken(Profiles):
        async def for_message(self, account_sid: str, message: dict[str, Any]) -> ProfileView | None:
            raise RuntimeError("profiles store down")

    [outcome] = await make_sender(runtime, principal.account.sid, Broken()).send([track()], NoPacer())
    assert outcome.kind is OutcomeKind.INTERNAL and is_retryable(outcome) and "profiles store down" in outcome.message


# -- the ledger: never twice -------------------------------------------------------------------


def ledger_row(account: str, recipient: str = "+14155552671", message_id: str = "m-1", at: float | None = None,
               rate_key: str = "prf_ada") -> SmsRow:  # fmt: skip
    now = clock.now() if at is None else at
    return SmsRow(account, SINK_SID, message_id, recipient, "ev", "prf_ada", "42", None, rate_key, None, "claimed",
                  None, int(now * 1000), clock.iso(now), clock.iso(now))  # fmt: skip


async def test_a_text_already_sent_is_a_success_without_a_request(runtime: Runtime, principal: Principal) -> None:
    account = principal.account.sid
    row = ledger_row(account)
    assert (await runtime.store.sms.claim(row, 30_000, 0, 5)).state == "claimed"
    await runtime.store.sms.sent(row, "SM" + "e" * 32, "queued", clock.iso(clock.now()))
    # the sink's base URL accepts no connection: any request would be a connect error
    [outcome] = await make_sender(runtime, account, Profiles(ADA)).send([track()], NoPacer())
    assert outcome.kind is OutcomeKind.SUCCESS
    assert outcome.message == f"already sent as SM{'e' * 32} (status queued) to +14155552671: not sent again"


async def test_a_claim_without_an_answer_is_never_sent_again(runtime: Runtime, principal: Principal) -> None:
    account = principal.account.sid
    sender = make_sender(runtime, account, Profiles(ADA))
    fresh = ledger_row(account)
    assert (await runtime.store.sms.claim(fresh, 30_000, 0, 5)).state == "claimed"
    [outcome] = await sender.send([track()], NoPacer())  # another attempt in flight: retried later
    assert outcome.kind is OutcomeKind.INTERNAL and is_retryable(outcome) and "in flight" in outcome.message
    stale = ledger_row(account, message_id="m-2", at=clock.now() - 120)  # a crash mid-request
    assert (await runtime.store.sms.claim(stale, 30_000, 0, 5)).state == "claimed"
    [outcome] = await sender.send([track(message_id="m-2")], NoPacer())
    assert "unknown outcome of an earlier attempt" in reason(outcome)


async def test_a_failed_connection_releases_the_claim(runtime: Runtime, principal: Principal) -> None:
    account = principal.account.sid
    [outcome] = await make_sender(runtime, account, Profiles(ADA)).send([track()], NoPacer())
    assert outcome.kind is OutcomeKind.CONNECT_ERROR and is_retryable(outcome)
    assert await runtime.store.sms.get(account, SINK_SID, "m-1", "+14155552671") is None


async def test_no_answer_may_have_sent_the_text_so_it_is_never_retried(
    runtime: Runtime, principal: Principal
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # the request arrives, and no answer ever leaves
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        account = principal.account.sid
        sender = make_sender(runtime, account, Profiles(ADA), timeout=0.3, base_url=f"http://127.0.0.1:{port}")
        [outcome] = await sender.send([track()], NoPacer())
        assert "no answer from Twilio (timeout" in reason(outcome) and "not retried (never twice)" in outcome.message
        row = await runtime.store.sms.get(account, SINK_SID, "m-1", "+14155552671")
        assert row is not None and row.status == "claimed" and row.message_sid is None  # the claim stays
        [again] = await sender.send([track()], NoPacer())  # a replay: no second request
        assert again.kind is OutcomeKind.INTERNAL and "in flight" in again.message
    finally:
        server.close()


async def test_per_profile_rate(runtime: Runtime, principal: Principal) -> None:
    account = principal.account.sid
    for i in range(2):
        row = ledger_row(account, message_id=f"old-{i}")
        assert (await runtime.store.sms.claim(row, 30_000, 0, 0)).state == "claimed"
        await runtime.store.sms.sent(row, f"SM{i:032x}", "delivered", clock.iso(clock.now()))
    an_hour_ago = ledger_row(account, message_id="older", at=clock.now() - 3700)
    assert (await runtime.store.sms.claim(an_hour_ago, 30_000, 0, 0)).state == "claimed"
    limited = make_sender(runtime, account, Profiles(ADA), per_profile_per_hour=2)
    [outcome] = await limited.send([track()], NoPacer())
    assert "per-profile rate: 2 texts in the last hour" in reason(outcome)
    assert await runtime.store.sms.get(account, SINK_SID, "m-1", "+14155552671") is None
    # 3 in the hour lets it through (to the connect error: the base URL accepts nothing)
    [outcome] = await make_sender(runtime, account, Profiles(ADA), per_profile_per_hour=3).send([track()], NoPacer())
    assert outcome.kind is OutcomeKind.CONNECT_ERROR


async def test_a_rejected_text_may_be_claimed_again(runtime: Runtime, principal: Principal) -> None:
    account = principal.account.sid
    row = ledger_row(account)
    assert (await runtime.store.sms.claim(row, 30_000, 0, 5)).state == "claimed"
    await runtime.store.sms.rejected(row, 21211, clock.iso(clock.now()))
    assert (await runtime.store.sms.claim(row, 30_000, 0, 5)).state == "claimed"
    got = await runtime.store.sms.get(account, SINK_SID, "m-1", "+14155552671")
    assert got is not None and got.status == "claimed" and got.error_code is None


# -- the delivery log keeps Twilio's answer; the bridge's pure parts ---------------------------


def test_the_delivery_log_keeps_each_answer_of_a_sender_that_reports_one() -> None:
    sink = SinkRow("DG1", "AC1", "d", "twilio-sms", "", "active", "", "", "")
    lease = [LeasedDelivery(i, "DG1", "AC1", i, 0, 0, f"e{i}", "t", None, "{}", "l") for i in range(3)]
    r = Round(sink, None, 1000)
    answers = [Outcome(OutcomeKind.SUCCESS, status=201, message=f"Twilio SM{i} queued to +1") for i in range(2)]
    for d, outcome in zip(lease, [*answers, Outcome.success(200)], strict=True):
        r.attempts.append(Attempt(d, d.event_id, outcome, Decision(Action.DELIVERED)))
    DeliveryLog().after_outcomes(r)
    assert [(e.event_ids, e.detail, e.http_status) for e in r.logs] == [
        (["e0"], "Twilio SM0 queued to +1", 201),
        (["e1"], "Twilio SM1 queued to +1", 201),
        (["e2"], None, None),
    ]


@pytest.mark.parametrize(
    ("body", "want"),
    [("STOP", True), (" stop ", True), ("Unsubscribe", True), ("quit", True), ("START", False), ("yes", False),
     ("unstop", False), ("stop please", None), ("", None), (None, None)],
)  # fmt: skip
def test_opt_keywords(body: str | None, want: bool | None) -> None:
    assert opt_keyword(body) is want


def test_status_callbacks_become_track_messages_of_the_profile() -> None:
    params = {"MessageSid": ["SM1"], "MessageStatus": ["undelivered"], "ErrorCode": ["30003"], "To": ["+1415"],
              "From": ["+1500"]}  # fmt: skip
    message = status_track(params, "42", None, 1_700_000_000.0)
    assert message is not None
    assert {k: message[k] for k in ("type", "event", "userId", "properties")} == {
        "type": "track",
        "event": "SMS Undelivered",
        "userId": "42",
        "properties": {"messageSid": "SM1", "errorCode": 30003, "to": "+1415", "from": "+1500",
                       "status": "undelivered"},
    }  # fmt: skip
    assert "anonymousId" not in message
    assert status_track(params, "42", None, 1.0)["messageId"] == message["messageId"]  # type: ignore[index]
    assert status_track({**params, "MessageStatus": ["queued"]}, "42", None, 1.0) is None
    assert status_track(params, None, None, 1.0) is None  # nobody to record it on


# -- wiring: the dispatcher hands the sender the store, the profiles and its rate ----------------


async def test_the_dispatcher_gives_the_sender_store_profiles_base_url_and_rate(
    runtime: Runtime, principal: Principal
) -> None:
    profiles = Profiles(ADA)
    cfg = config(max_per_second=2, status_callback_base_url=None)
    sink = await runtime.control.create_sink(principal, "texts", "twilio-sms", json.dumps(cfg))
    await runtime.control.create_subscription(principal, "tracks", sink.row.sid,
                                              [json.dumps({"type": "com.segment.tracking.track"})])  # fmt: skip
    d = Dispatcher(runtime.store, runtime.box, runtime.catalog, DispatcherConfig(allow_private=True),
                   "https://es.example", run_workers=False, profiles=profiles)  # fmt: skip
    await d.sync()
    worker = d.workers[sink.row.sid]
    try:
        sender = worker.sender
        assert isinstance(sender, TwilioSmsSender)
        assert sender.max_rate == 2.0 and worker.throttle.max_rate == 2.0
        # no status_callback_base_url: the server's public base URL
        assert sender.status_callback == f"https://es.example/bridge/{principal.account.sid}/sms/{sink.row.sid}/status"
        prepared = await sender.prepare(track())
        assert not isinstance(prepared, Outcome) and prepared[0].profile_id == "prf_ada"  # through the double
    finally:
        await d.stop()


async def test_the_ledger_is_pruned_with_the_events_and_never_inside_the_rate_window(
    runtime: Runtime, principal: Principal
) -> None:
    account = principal.account.sid
    now = clock.now()
    for message_id, age in (("old", 7200), ("recent", 1800)):
        assert (await runtime.store.sms.claim(ledger_row(account, message_id=message_id, at=now - age),
                                              30_000, 0, 0)).state == "claimed"  # fmt: skip
    counts = await runtime.store.retention.prune(int(now * 1000), {"log": 0, "errors": 0, "dedupe": 0, "events": 0})
    assert counts["sms_messages"] == 1
    assert await runtime.store.sms.get(account, SINK_SID, "old", "+14155552671") is None
    assert await runtime.store.sms.get(account, SINK_SID, "recent", "+14155552671") is not None


class Ingest:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, list[dict[str, Any]]]] = []

    async def record(self, account_sid: str, messages: Any) -> list[Any]:
        self.recorded.append((account_sid, list(messages)))
        return []


async def test_a_callback_that_overtakes_twilios_answer_finds_its_claim(runtime: Runtime, principal: Principal) -> None:
    account = principal.account.sid
    row = ledger_row(account)
    assert (await runtime.store.sms.claim(row, 30_000, 0, 5)).state == "claimed"
    ingest = Ingest()
    runtime.sms.ingest = ingest
    target = SmsTarget(principal.account, SINK_SID, TWILIO_SID, "tok")
    sid = "SM" + "1" * 32
    params = {"MessageSid": [sid], "MessageStatus": ["sent"], "To": ["+14155552671"], "From": [FROM]}
    assert await runtime.sms.status(target, params, clock.now()) is not None
    [(where, [message])] = ingest.recorded
    assert where == account and message["event"] == "SMS Sent" and message["userId"] == "42"
    # then the sender records Twilio's answer ("queued"): the later status stays
    await runtime.store.sms.sent(row, sid, "queued", clock.iso(clock.now()))
    got = await runtime.store.sms.by_message_sid(account, sid)
    assert got is not None and got.status == "sent"
    # two claims to one number awaiting answers: which text a callback is about is unknowable
    for message_id in ("m-2", "m-3"):
        assert (await runtime.store.sms.claim(ledger_row(account, message_id=message_id), 30_000, 0, 0)).state == (
            "claimed"
        )
    other = {**params, "MessageSid": ["SM" + "2" * 32]}
    assert await runtime.sms.status(target, other, clock.now()) is None and len(ingest.recorded) == 1
    # a failing ingest does not fail the callback
    class Failing(Ingest):
        async def record(self, account_sid: str, messages: Any) -> list[Any]:
            raise RuntimeError("tracking store down")

    runtime.sms.ingest = Failing()
    delivered = {**params, "MessageStatus": ["delivered"]}
    assert await runtime.sms.status(target, delivered, clock.now()) is None
    got = await runtime.store.sms.by_message_sid(account, sid)
    assert got is not None and got.status == "delivered"


async def test_whose_key_verifies_a_status_callback(runtime: Runtime, principal: Principal) -> None:
    account = principal.account.sid
    with_token = await runtime.control.create_sink(principal, "t", "twilio-sms", json.dumps(config()))
    with_key = await runtime.control.create_sink(principal, "k", "twilio-sms", json.dumps(
        config(auth_token=None, api_key_sid="SK" + "c" * 32, api_key_secret="shh")))  # fmt: skip
    hook = await runtime.control.create_sink(principal, "w", "webhook", json.dumps(
        {"destination": "https://h.example/", "method": "POST"}))  # fmt: skip
    target = await runtime.sms.target("AC" + account[2:].upper(), "DG" + with_token.row.sid[2:].upper())  # any case
    assert target is not None and (target.token, target.twilio_account_sid) == ("tok", TWILIO_SID)
    assert await runtime.sms.target(account, hook.row.sid) is None  # not a twilio-sms sink
    assert await runtime.sms.target("AC" + "0" * 32, with_token.row.sid) is None  # another account's path
    assert await runtime.sms.target(account, "nonsense") is None
    # an API key cannot sign: the account's bridge credentials must be for the sink's Twilio account
    assert await runtime.sms.target(account, with_key.row.sid) is None
    await runtime.bridge.put(account, "AC" + "9" * 32, "other-token")
    assert await runtime.sms.target(account, with_key.row.sid) is None
    await runtime.bridge.put(account, TWILIO_SID, "bridge-token")
    target = await runtime.sms.target(account, with_key.row.sid)
    assert target is not None and target.token == "bridge-token"


# -- opt-outs bind the number, wherever the recipient came from ----------------------------------

STOPPED = "+14155550100"  # user Y's number: Y replied STOP; no profile needs to hold it


def inbound(body: str, phone: str = "(415) 555-0100") -> dict[str, list[str]]:
    return {"Body": [body], "From": [phone], "To": [FROM]}


async def test_a_stop_binds_the_number_whatever_names_it_as_recipient(runtime: Runtime, principal: Principal) -> None:
    account = principal.account.sid
    # a STOP from a number no profile holds is kept (the real profiles change none)
    assert await runtime.sms.inbound(account, inbound("STOP")) == 0
    stored = await runtime.store.sms.opted_out(account, STOPPED)
    assert stored is not None and stored.source == "inbound"
    user_x = ProfileView("prf_x", {}, None, False, False, "42")  # not opted out, no phone of its own
    sender = make_sender(runtime, account, Profiles(user_x))
    to_mapping = make_sender(runtime, account, Profiles(user_x), mappings=[{**TRIAL, "to": "{{ properties.mobile }}"}])
    for s, fields in (
        (sender, {"properties": {"plan": "pro", "phone": "+1 415 555 0100"}}),
        (sender, {"context": {"traits": {"phone": "415-555-0100"}}}),
        (sender, {"properties": {"plan": "pro", "phone": 4155550100}}),
        (to_mapping, {"properties": {"mobile": "(415) 555-0100"}}),
    ):
        assert f"{STOPPED} has opted out of texts (STOP received" in reason(await s.prepare(track(**fields))), fields
    # the profile's own phone too, when the profile's flag is not set (e.g. it got the number after the STOP)
    holder = ProfileView("prf_y", {}, STOPPED, True, False, "42")
    assert "has opted out of texts" in reason(await make_sender(runtime, account, Profiles(holder)).prepare(track()))
    # through send(): nothing claimed, nothing requested (the base URL accepts no connection)
    [outcome] = await sender.send([track(properties={"phone": STOPPED})], NoPacer())
    assert "has opted out of texts" in reason(outcome)
    assert await runtime.store.sms.get(account, SINK_SID, "m-1", STOPPED) is None
    # another account's STOP is not this account's
    other = await new_principal(runtime, "other")
    assert not isinstance(await make_sender(runtime, other.account.sid, Profiles(user_x)).prepare(
        track(properties={"phone": STOPPED})), Outcome)  # fmt: skip
    # START opts the number back in
    assert await runtime.sms.inbound(account, inbound("start", STOPPED)) == 0
    assert await runtime.store.sms.opted_out(account, STOPPED) is None
    prepared = await sender.prepare(track(properties={"phone": STOPPED}))
    assert not isinstance(prepared, Outcome) and prepared[0].recipient == STOPPED
    # no keyword, or a sender that is no number: nothing recorded
    assert await runtime.sms.inbound(account, inbound("hello")) is None
    assert await runtime.sms.inbound(account, inbound("STOP", "MyBrand")) == 0
    assert await runtime.store.sms.opted_out(account, STOPPED) is None


async def test_a_stop_still_updates_the_profiles_holding_the_number(runtime: Runtime, principal: Principal) -> None:
    profiles = Profiles(dataclasses.replace(ADA, phone=STOPPED))
    runtime.sms.profiles = profiles
    assert await runtime.sms.inbound(principal.account.sid, inbound("STOP")) == 1
    assert profiles.profiles[0].opted_out


# -- Twilio's answers through a local HTTP double -------------------------------------------------


class TwilioDouble:
    """A local HTTP server answering every request with one status and JSON body; counts requests."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body, self.requests = status, body, 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
        await reader.readexactly(length)
        self.requests += 1
        payload = json.dumps(self.body).encode()
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (self.status, len(payload), payload))  # fmt: skip
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


@pytest.mark.parametrize(
    ("status", "retried"),
    [(408, True), (423, True), (429, True), (500, True), (503, True), (501, False), (400, False), (404, False)],
)
async def test_which_answers_are_retried(runtime: Runtime, principal: Principal, status: int, retried: bool) -> None:
    account = principal.account.sid
    double = TwilioDouble(status, {"code": 20000 + status, "message": "no", "status": status})
    async with double as url:
        sender = make_sender(runtime, account, Profiles(ADA), base_url=url)
        [outcome] = await sender.send([track()], NoPacer())
    assert double.requests == 1
    assert outcome.kind is OutcomeKind.HTTP_STATUS and outcome.status == status
    assert is_retryable(outcome) is retried and outcome.message == f"Twilio error {20000 + status}: no"
    row = await runtime.store.sms.get(account, SINK_SID, "m-1", "+14155552671")
    if retried:  # the claim is released, so the retry may send
        assert row is None
    else:  # terminal: the answer is kept (a replay may try again)
        assert row is not None and (row.status, row.error_code) == ("rejected", 20000 + status)


async def test_twilios_21610_records_the_numbers_opt_out(runtime: Runtime, principal: Principal) -> None:
    account = principal.account.sid
    double = TwilioDouble(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400})
    async with double as url:
        sender = make_sender(runtime, account, Profiles(ADA), base_url=url)
        [outcome] = await sender.send([track()], NoPacer())
        assert not is_retryable(outcome) and "Twilio error 21610" in outcome.message
        stored = await runtime.store.sms.opted_out(account, "+14155552671")
        assert stored is not None and stored.source == "twilio"
        # the next text to that number is not even tried
        [again] = await sender.send([track(message_id="m-2")], NoPacer())
        assert "+14155552671 has opted out of texts (Twilio answered 21610" in reason(again)
        assert double.requests == 1
    # an inbound START clears it
    await runtime.sms.inbound(account, inbound("START", "+14155552671"))
    assert await runtime.store.sms.opted_out(account, "+14155552671") is None


# -- a phone given as a JSON number ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "want"),
    [
        ({"properties": {"phone": 4155550100}}, "+14155550100"),
        ({"context": {"traits": {"phone": 4155550101}}}, "+14155550101"),
        ({"properties": {"phone": True}, "context": {"traits": {"phone": 4155550101}}}, "+14155550101"),
    ],
)
async def test_a_phone_given_as_a_json_integer(
    runtime: Runtime, principal: Principal, fields: dict[str, Any], want: str
) -> None:
    sender = make_sender(runtime, principal.account.sid)
    prepared = await sender.prepare(track(**fields))
    assert not isinstance(prepared, Outcome) and prepared[0].recipient == want
    assert "no phone" in reason(await sender.prepare(track(properties={"phone": True})))  # true is no phone


# -- status callbacks only move the ledger forward ------------------------------------------------


async def test_status_callbacks_out_of_order_never_move_the_ledger_back(
    runtime: Runtime, principal: Principal
) -> None:
    account = principal.account.sid
    runtime.sms.ingest = Ingest()
    target = SmsTarget(principal.account, SINK_SID, TWILIO_SID, "tok")
    sid = "SM" + "3" * 32
    row = ledger_row(account)
    assert (await runtime.store.sms.claim(row, 30_000, 0, 5)).state == "claimed"
    await runtime.store.sms.sent(row, sid, "queued", clock.iso(clock.now()))

    async def callback(status: str, code: str | None = None) -> str | None:
        params = {"MessageSid": [sid], "MessageStatus": [status], "To": ["+14155552671"], "From": [FROM]}
        if code is not None:
            params["ErrorCode"] = [code]
        await runtime.sms.status(target, params, clock.now())
        got = await runtime.store.sms.by_message_sid(account, sid)
        assert got is not None
        return f"{got.status}/{got.error_code}"

    assert await callback("sent") == "sent/None"
    assert await callback("sending") == "sent/None"  # late
    assert await callback("delivered") == "delivered/None"
    assert await callback("sent") == "delivered/None"  # late
    assert await callback("queued") == "delivered/None"
    assert await callback("failed", "30003") == "delivered/None"  # terminal stays
    other = "SM" + "4" * 32
    row2 = ledger_row(account, message_id="m-2")
    assert (await runtime.store.sms.claim(row2, 30_000, 0, 5)).state == "claimed"
    await runtime.store.sms.sent(row2, other, "queued", clock.iso(clock.now()))
    sid = other
    assert await callback("undelivered", "30005") == "undelivered/30005"
    assert await callback("delivered") == "undelivered/30005"


def test_earlier_statuses() -> None:
    assert earlier_statuses("queued") == ["claimed"]
    assert earlier_statuses("sent") == ["claimed", "accepted", "scheduled", "queued", "sending"]
    assert set(earlier_statuses("delivered")) == {"claimed", "accepted", "scheduled", "queued", "sending", "sent"}
    assert earlier_statuses("claimed") == []
    assert earlier_statuses("read") == ["claimed"]  # a status not ranked (yet) only replaces the claim


# -- retention: the ledger outlives what could replay its event -----------------------------------


async def test_the_ledger_outlives_dead_letters_and_stored_events(runtime: Runtime, principal: Principal) -> None:
    account = principal.account.sid
    day = 86400.0
    now = clock.now()
    keep = {"log": int(7 * day * 1000), "errors": int(23 * day * 1000), "dedupe": 0, "events": int(7 * day * 1000)}
    for message_id, age in (("day-10", 10 * day), ("day-30", 30 * day), ("day-40-event-stored", 40 * day)):
        row = dataclasses.replace(ledger_row(account, message_id=message_id, at=now - age), event_id=message_id)
        assert (await runtime.store.sms.claim(row, 30_000, 0, 0)).state == "claimed"
    # the last one's event is still stored (e.g. a dead letter holds it): received a minute ago, a fresh dead letter
    await runtime.store.db.run(lambda tx: tx.run(
        "INSERT INTO events (account_sid, id, type, schema_version, received_at, time, payload)"
        " VALUES (:a, 'day-40-event-stored', 't', 1, :at, '', '{}')", a=account, at=int(now * 1000)), write=True)  # fmt: skip
    counts = await runtime.store.retention.prune(int(now * 1000), keep)
    assert counts["sms_messages"] == 1
    # day 10: past the event retention (7 days) but inside the dead letters' (23 days): a replay finds it
    assert await runtime.store.sms.get(account, SINK_SID, "day-10", "+14155552671") is not None
    assert await runtime.store.sms.get(account, SINK_SID, "day-30", "+14155552671") is None
    assert await runtime.store.sms.get(account, SINK_SID, "day-40-event-stored", "+14155552671") is not None
    assert sms_ledger_keep_ms(keep) == keep["errors"]
    assert sms_ledger_keep_ms({"events": 0, "errors": 0}) == 3600 * 1000


async def test_the_migration_carries_stops_recorded_on_profiles_over(runtime: Runtime, principal: Principal) -> None:
    """STOPs recorded before the opt-out table existed live only as a profile's flag: 010 copies every
    phone such a profile holds (the statement the migration runs, on this store)."""
    account = principal.account.sid
    await runtime.ingest.record(account, [
        {"type": "identify", "userId": "y", "messageId": "i-y", "traits": {"phone": "(415) 555-0100"}},
        {"type": "identify", "userId": "z", "messageId": "i-z", "traits": {"phone": "(415) 555-0199"}},
    ])  # fmt: skip
    assert await runtime.profiles.set_opted_out(account, STOPPED, True) == 1
    await runtime.store.db.run(lambda tx: tx.run("DELETE FROM sms_opt_outs"), write=True)
    [(_, sql)] = [m for m in migrations(runtime.store.dialect) if m[0] == "010_sms_opt_outs"]
    backfill = sql[sql.index("INSERT INTO sms_opt_outs"):]
    await runtime.store.db.run(lambda tx: tx.script(backfill), write=True)
    stored = await runtime.store.sms.opted_out(account, STOPPED)
    assert stored is not None and stored.source == "inbound"
    assert await runtime.store.sms.opted_out(account, "+14155550199") is None
