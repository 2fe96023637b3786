"""Kinesis sink against a real moto server (subprocess) behind a recording,
fault-injecting proxy (tests/kinesis_server.py): the sender on its own, then
end to end through the API and the dispatcher on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import requests

from eventstreams.catalog import builtin_examples
from eventstreams.delivery.policy import Action, RetryPolicy, is_retryable, is_throttle_signal
from eventstreams.outcome import Outcome, OutcomeKind
from eventstreams.sinks import create_sender
from eventstreams.sinks.base import OutgoingEvent, SinkContext
from eventstreams.sinks.kinesis import (
    CODE_ASSUME_ROLE_FAILED,
    CODE_RECORD_TOO_LARGE,
    CODE_STREAM_UNUSABLE,
    CODE_WRITE_FAILED,
    MAX_RECORD_BYTES,
    MAX_REQUEST_BYTES,
    KinesisSender,
    parse_stream_arn,
    region_problem,
)
from tests.conftest import Server, own_server
from tests.kinesis_server import (
    ACCOUNT,
    CallFault,
    FaultProxy,
    MotoServer,
    RecordFaults,
    aws_client,
    aws_test_environment,
    create_stream,
    free_port,
    read_stream,
)
from tests.pacing import RecordingPacer

ROLE = f"arn:aws:iam::{ACCOUNT}:role/twilio-events-kinesis-write"
DELIVERED = "com.twilio.messaging.message.delivered"
EXAMPLES = builtin_examples()["Messaging.MessageStatus"]
LATEST = max(EXAMPLES)


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with aws_test_environment():
        server = MotoServer().start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """This module's server lets sinks name their own endpoint_url (each test has its own proxy)."""
    with own_server(backend, tmp_path_factory.mktemp(f"kinesis-{backend}"), allow_sink_endpoint_url=True) as srv:
        yield srv


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[FaultProxy]:
    p = FaultProxy(moto.url)
    yield p
    p.close()


@pytest.fixture
def kinesis(moto: MotoServer) -> Any:
    return aws_client("kinesis", moto.url)


@pytest.fixture
def stream(kinesis: Any) -> str:
    return create_stream(kinesis, shards=3)


def eid(i: int) -> str:
    return f"EZ{i:032x}"


def cloudevent(i: int, **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "type": DELIVERED,
        "source": f"/2010-04-01/Accounts/AC{'0' * 32}/Messages/SM{i:032x}",
        "id": eid(i),
        "time": "2025-01-01T00:00:00.000Z",
        "datacontenttype": "application/json",
        "data": {**EXAMPLES[LATEST], **data},
    }


def outgoing(i: int, **data: Any) -> OutgoingEvent:
    return OutgoingEvent(eid(i), DELIVERED, orjson.dumps(cloudevent(i, **data)))


def raw(i: int, payload: bytes) -> OutgoingEvent:
    return OutgoingEvent(eid(i), DELIVERED, payload)


def context(
    arn: str,
    endpoint: str | None,
    *,
    allow_private: bool = True,
    max_in_flight: int = 32,
    allow_endpoint: bool = True,
    **cfg: Any,
) -> SinkContext:
    configuration: dict[str, Any] = {"arn": arn, "role_arn": ROLE, "external_id": "ext-123"}
    if endpoint is not None:
        configuration["endpoint_url"] = endpoint
    configuration.update(cfg)
    return SinkContext(
        sid="DG" + uuid.uuid4().hex,
        account_sid="AC" + uuid.uuid4().hex,
        sink_type="kinesis",
        configuration=configuration,
        auth_token="token",
        signing_secret="whsec_c2VjcmV0",
        allow_private=allow_private,
        timeout=5.0,
        max_in_flight=max_in_flight,
        # EVENTSTREAMS_ALLOW_SINK_ENDPOINT_URL, so that the per-sink endpoint_url (the test proxy) is used
        extra={"aws_endpoint_url": None, "allow_sink_endpoint_url": allow_endpoint},
    )


def send(sender: KinesisSender, events: list[OutgoingEvent], pacer: RecordingPacer | None = None) -> list[Outcome]:
    async def go() -> list[Outcome]:
        try:
            return await sender.send(events, pacer or RecordingPacer())
        finally:
            await sender.close()

    return asyncio.run(go())


def sends(sender: KinesisSender, *batches: list[OutgoingEvent]) -> list[list[Outcome]]:
    """Several sends on one event loop, keeping the sender's cached credentials between them."""

    async def go() -> list[list[Outcome]]:
        try:
            return [await sender.send(b, RecordingPacer()) for b in batches]
        finally:
            await sender.close()

    return asyncio.run(go())


def ok(outcomes: list[Outcome]) -> bool:
    return all(o.kind is OutcomeKind.SUCCESS for o in outcomes)


def decide(outcome: Outcome) -> Any:
    return RetryPolicy().decide(outcome, attempt=1, first_attempt_at=1000.0, now=1000.0)


# -- the sender on its own ---------------------------------------------------------------------


def test_arn_parsing() -> None:
    ref = parse_stream_arn("arn:aws:kinesis:eu-west-1:123456789012:stream/my.stream-1")
    assert (ref.partition, ref.region, ref.account, ref.name) == ("aws", "eu-west-1", "123456789012", "my.stream-1")
    assert parse_stream_arn("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s").partition == "aws-cn"
    for bad in ("", "arn:aws:sqs:us-east-1:123456789012:queue", "arn:aws:kinesis:us-east-1:123:stream/s"):
        with pytest.raises(ValueError):
            parse_stream_arn(bad)


def test_records_round_trip_with_assumed_role(moto: MotoServer, proxy: FaultProxy) -> None:
    # a stream in another region than AWS_DEFAULT_REGION: the region comes from the ARN
    kinesis = aws_client("kinesis", moto.url, region="eu-west-1")
    arn = create_stream(kinesis, shards=3)
    ctx = context(arn, proxy.url)
    sender = create_sender(ctx)
    assert isinstance(sender, KinesisSender)
    events = [outgoing(i) for i in range(25)]
    pacer = RecordingPacer()
    outcomes = send(sender, events, pacer)
    assert ok(outcomes) and len(outcomes) == 25
    assert pacer.waits == [25] and [o.kind for o in pacer.observed] == [OutcomeKind.SUCCESS]

    records = read_stream(kinesis, arn)
    assert len({r["shard"] for r in records}) > 1  # keys spread over the shards
    got = {r["PartitionKey"]: r["Data"] for r in records}
    assert got == {e.id: e.payload for e in events}  # data = the CloudEvent bytes as given, key = id

    (assume,) = proxy.of("AssumeRole")
    assert assume.params["RoleArn"] == ROLE and assume.params["ExternalId"] == "ext-123"
    assert assume.params["RoleSessionName"] == f"eventstreams-{ctx.sid}"
    assert assume.access_key == "testing" and assume.region == "eu-west-1"  # the process's default credentials
    (put,) = proxy.of("PutRecords")
    assert put.params["StreamARN"] == arn and put.region == "eu-west-1"
    assert put.access_key is not None and put.access_key.startswith("ASIA")  # temporary credentials from STS
    assert put.access_key != "testing"


def test_cross_account_role(moto: MotoServer, proxy: FaultProxy) -> None:
    # the stream lives in the role's account: only the assumed credentials can reach it
    other = "111122223333"
    role = f"arn:aws:iam::{other}:role/writer"
    sts = aws_client("sts", moto.url)
    creds = sts.assume_role(RoleArn=role, RoleSessionName="setup")["Credentials"]
    kinesis = aws_client(
        "kinesis",
        moto.url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    arn = create_stream(kinesis, shards=1)
    assert f":{other}:" in arn
    outcomes = send(KinesisSender(context(arn, proxy.url, role_arn=role)), [outgoing(1), outgoing(2)])
    assert ok(outcomes)
    assert sorted(r["PartitionKey"] for r in read_stream(kinesis, arn)) == [eid(1), eid(2)]


def test_credentials_cached_until_five_minutes_before_expiry(proxy: FaultProxy, stream: str) -> None:
    now = [time.time()]
    sender = KinesisSender(context(stream, proxy.url), clock=lambda: now[0])

    async def go() -> None:
        try:
            assert ok(await sender.send([outgoing(1)], RecordingPacer()))
            assert ok(await sender.send([outgoing(2)], RecordingPacer()))
            assert len(proxy.of("AssumeRole")) == 1  # cached
            now[0] += 3600 - 301  # moto's credentials last 1 h: still more than 5 minutes left
            assert ok(await sender.send([outgoing(3)], RecordingPacer()))
            assert len(proxy.of("AssumeRole")) == 1
            now[0] += 2  # within 5 minutes of the expiry: assume the role again
            assert ok(await sender.send([outgoing(4)], RecordingPacer()))
            assert len(proxy.of("AssumeRole")) == 2
        finally:
            await sender.close()

    asyncio.run(go())
    keys = [c.access_key for c in proxy.of("PutRecords")]
    assert keys[0] == keys[1] == keys[2] != keys[3]


def test_batches_respect_record_count(kinesis: Any, proxy: FaultProxy, stream: str) -> None:
    events = [raw(i, b'{"id":"%s","n":%d}' % (eid(i).encode(), i)) for i in range(1200)]
    pacer = RecordingPacer()
    outcomes = send(KinesisSender(context(stream, proxy.url)), events, pacer)
    assert ok(outcomes) and len(outcomes) == 1200
    calls = proxy.of("PutRecords")
    assert sorted(len(c.records) for c in calls) == [200, 500, 500]
    assert sorted(pacer.waits) == [200, 500, 500] and len(pacer.observed) == 3
    # in order: each call carries a contiguous run of the events
    firsts = sorted(int(c.records[0]["PartitionKey"][2:], 16) for c in calls)
    assert firsts == [0, 500, 1000]
    records = read_stream(kinesis, stream)
    assert sorted(r["PartitionKey"] for r in records) == sorted(e.id for e in events)
    assert {r["PartitionKey"]: r["Data"] for r in records} == {e.id: e.payload for e in events}


def test_batches_respect_request_bytes(kinesis: Any, proxy: FaultProxy, stream: str) -> None:
    size = 1_000_000
    events = [raw(i, b"x" * size) for i in range(12)]
    outcomes = send(KinesisSender(context(stream, proxy.url)), events)
    assert ok(outcomes)
    calls = proxy.of("PutRecords")
    assert sorted(len(c.records) for c in calls) == [2, 5, 5]  # 6 x (1 MB + key) would pass 5 MiB
    assert all(c.record_bytes <= MAX_REQUEST_BYTES for c in calls)
    assert len(read_stream(kinesis, stream)) == 12


def test_oversize_record_is_dead_lettered_others_delivered(kinesis: Any, proxy: FaultProxy, stream: str) -> None:
    key_len = len(eid(0))
    exact = raw(1, b"y" * (MAX_RECORD_BYTES - key_len))  # data + key = exactly 1 MiB: allowed
    over = raw(2, b"z" * (MAX_RECORD_BYTES - key_len + 1))
    outcomes = send(KinesisSender(context(stream, proxy.url)), [outgoing(0), exact, over, outgoing(3)])
    assert [o.kind for o in outcomes] == [
        OutcomeKind.SUCCESS,
        OutcomeKind.SUCCESS,
        OutcomeKind.DROPPED,
        OutcomeKind.SUCCESS,
    ]
    dropped = outcomes[2]
    assert dropped.code == CODE_RECORD_TOO_LARGE == 91303 and dropped.retryable is False
    assert dropped.message == f"record of {MAX_RECORD_BYTES + 1} bytes exceeds Kinesis's 1 MB limit"
    decision = decide(dropped)
    assert decision.action is Action.DEAD_LETTER and decision.error_code == 91303
    assert "1 MB limit" in (decision.reason or "")
    assert sorted(r["PartitionKey"] for r in read_stream(kinesis, stream)) == [eid(0), eid(1), eid(3)]


def test_stream_not_found_is_93104_not_retried(proxy: FaultProxy) -> None:
    arn = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/no-such-{uuid.uuid4().hex[:8]}"
    outcomes = send(KinesisSender(context(arn, proxy.url)), [outgoing(1), outgoing(2)])
    assert {o.code for o in outcomes} == {CODE_STREAM_UNUSABLE} and all(o.retryable is False for o in outcomes)
    assert outcomes[0].kind is OutcomeKind.HTTP_STATUS and outcomes[0].status == 400
    assert "ResourceNotFoundException" in outcomes[0].message
    decision = decide(outcomes[0])
    assert decision.action is Action.DEAD_LETTER and decision.error_code == 93104


def test_unparsable_arn_is_93104_without_any_call(proxy: FaultProxy) -> None:
    outcomes = send(KinesisSender(context("arn:aws:kinesis:nowhere", proxy.url)), [outgoing(1)])
    assert outcomes[0].code == CODE_STREAM_UNUSABLE and outcomes[0].retryable is False
    assert proxy.calls == []


def test_region_problem(moto: MotoServer) -> None:
    def problem(partition: str, region: str) -> str | None:
        return region_problem(parse_stream_arn(f"arn:{partition}:kinesis:{region}:{ACCOUNT}:stream/s"))

    for partition, region in [("aws", "us-east-1"), ("aws", "eu-west-3"), ("aws", "ap-southeast-2"),
                              ("aws-cn", "cn-north-1"), ("aws-us-gov", "us-gov-west-1")]:  # fmt: skip
        assert problem(partition, region) is None, (partition, region)
    fake = problem("aws", "xx-fake-1")
    assert fake is not None and fake.startswith(
        "invalid stream ARN: region 'xx-fake-1' is not a Kinesis region of AWS partition 'aws' (botocore "
    )
    assert fake.endswith("for a Kinesis-compatible server set EVENTSTREAMS_AWS_ENDPOINT_URL")
    assert "region 'us-east-1' is not a Kinesis region of AWS partition 'aws-cn'" in (
        problem("aws-cn", "us-east-1") or ""
    )
    assert "'aws-nope' is not an AWS partition with Kinesis" in (problem("aws-nope", "us-east-1") or "")


def test_unknown_region_without_override_is_93104_not_retried(moto: MotoServer) -> None:
    arn = f"arn:aws:kinesis:xx-fake-1:{ACCOUNT}:stream/s"
    sender = KinesisSender(context(arn, None))  # no per-sink nor global endpoint override: AWS itself
    pacer = RecordingPacer()
    key_len = len(eid(0))
    too_big = raw(3, b"z" * (MAX_RECORD_BYTES - key_len + 1))

    async def go() -> tuple[list[Outcome], list[Outcome]]:
        try:
            return await sender.send([outgoing(1), outgoing(2), too_big], pacer), await sender.send(
                [outgoing(4)], pacer
            )
        finally:
            await sender.close()

    first, later = asyncio.run(go())
    # Had any AWS call been tried, the unresolvable endpoint would have answered a retried 93102.
    for o in [*first[:2], *later]:
        assert o.code == CODE_STREAM_UNUSABLE and o.retryable is False, o
        assert "region 'xx-fake-1' is not a Kinesis region" in o.message
        decision = decide(o)
        assert decision.action is Action.DEAD_LETTER and decision.error_code == 93104
    assert first[2].code == CODE_RECORD_TOO_LARGE  # the oversize record keeps its own reason
    assert pacer.waits == []


@pytest.mark.parametrize("where", ["sink", "global"])
def test_any_region_with_an_endpoint_override(proxy: FaultProxy, where: str) -> None:
    arn = f"arn:aws:kinesis:xx-fake-1:{ACCOUNT}:stream/s"
    ctx = context(arn, proxy.url if where == "sink" else None)
    if where == "global":
        ctx.extra["aws_endpoint_url"] = proxy.url  # EVENTSTREAMS_AWS_ENDPOINT_URL
    # moto itself has no such region: a deterministic STS answer shows the call was made
    proxy.inject("AssumeRole", CallFault("AccessDenied", 403, "not authorized"))
    (outcome,) = send(KinesisSender(ctx), [outgoing(1)])
    assert outcome.code == CODE_ASSUME_ROLE_FAILED and outcome.retryable is True
    (assume,) = proxy.of("AssumeRole")
    assert assume.region == "xx-fake-1"


def test_invalid_argument_is_93104(proxy: FaultProxy, stream: str) -> None:
    proxy.inject("PutRecords", CallFault("InvalidArgumentException", 400, "StreamARN has an invalid format"))
    outcomes = send(KinesisSender(context(stream, proxy.url)), [outgoing(1)])
    assert outcomes[0].code == CODE_STREAM_UNUSABLE and decide(outcomes[0]).action is Action.DEAD_LETTER


def test_data_as_string(kinesis: Any, proxy: FaultProxy, stream: str) -> None:
    sender = KinesisSender(context(stream, proxy.url, data_as_string=True))
    events = [outgoing(1), raw(2, b'{"id":"x","data":"already a string"}'), raw(3, b"not json")]
    assert ok(send(sender, events))
    got = {r["PartitionKey"]: r["Data"] for r in read_stream(kinesis, stream)}
    record = json.loads(got[eid(1)])
    original = cloudevent(1)
    assert isinstance(record["data"], str) and json.loads(record["data"]) == original["data"]
    assert list(record) == list(original)  # attribute order kept
    assert {k: v for k, v in record.items() if k != "data"} == {k: v for k, v in original.items() if k != "data"}
    assert got[eid(2)] == events[1].payload and got[eid(3)] == b"not json"  # sent unchanged


def test_partition_key_path(kinesis: Any, proxy: FaultProxy, stream: str) -> None:
    sender = KinesisSender(context(stream, proxy.url, partition_key="data.to"))
    long_to = "+1" + "5" * 300
    events = [
        outgoing(1, to="+15550001111"),
        outgoing(2, to="+15550001111"),
        outgoing(3, to=""),  # empty: falls back to the id
        raw(4, orjson.dumps({"id": eid(4), "data": {}})),  # missing
        outgoing(5, to=long_to),
        outgoing(6, to=12345),  # a number: its JSON text
        raw(7, b"[1,2]"),  # not an object
    ]
    assert ok(send(sender, events))
    keys = {
        json.loads(r["Data"])["id"] if r["Data"][:1] == b"{" else eid(7): r["PartitionKey"]
        for r in read_stream(kinesis, stream)
    }
    assert keys == {
        eid(1): "+15550001111",
        eid(2): "+15550001111",
        eid(3): eid(3),
        eid(4): eid(4),
        eid(5): long_to[:256],
        eid(6): "12345",
        eid(7): eid(7),
    }
    # same key, same shard
    shards = {
        json.loads(r["Data"]).get("id"): r["shard"] for r in read_stream(kinesis, stream) if r["Data"][:1] == b"{"
    }
    assert shards[eid(1)] == shards[eid(2)]

    by_source = KinesisSender(context(stream, proxy.url, partition_key="source"))
    assert ok(send(by_source, [outgoing(10)]))
    (last,) = [
        r for r in read_stream(kinesis, stream) if r["Data"][:1] == b"{" and json.loads(r["Data"])["id"] == eid(10)
    ]
    assert last["PartitionKey"] == cloudevent(10)["source"]


def test_per_record_throttling_fails_only_those_records(kinesis: Any, proxy: FaultProxy, stream: str) -> None:
    proxy.inject("PutRecords", RecordFaults(lambda i, key: i in (1, 3)))
    proxy.inject(
        "PutRecords", RecordFaults(lambda i, key: i == 0, code="InternalFailure", message="Internal service failure.")
    )
    # the second call (the retry of 1 and 3) fails the first of them again, with InternalFailure
    sender = KinesisSender(context(stream, proxy.url))
    events = [outgoing(i) for i in range(6)]
    pacer = RecordingPacer()

    async def go() -> tuple[list[Outcome], list[Outcome], list[Outcome]]:
        try:
            first = await sender.send(events, pacer)
            retry = [events[i] for i, o in enumerate(first) if o.kind is not OutcomeKind.SUCCESS]
            second = await sender.send(retry, pacer)
            third = await sender.send(
                [e for e, o in zip(retry, second, strict=True) if o.kind is not OutcomeKind.SUCCESS], pacer
            )
            return first, second, third
        finally:
            await sender.close()

    first, second, third = asyncio.run(go())
    assert [o.kind is OutcomeKind.SUCCESS for o in first] == [True, False, True, False, True, True]
    for o in (first[1], first[3]):
        assert o.code == CODE_WRITE_FAILED and o.retryable is True and o.throttle is True
        assert o.message.startswith("ProvisionedThroughputExceededException: Rate exceeded")
        assert is_throttle_signal(o) and decide(o).action is Action.RETRY and decide(o).error_code == 93101
    assert pacer.observed[0].throttle  # the call reports its worst outcome
    assert second[0].code == CODE_WRITE_FAILED and second[0].retryable is True and second[0].throttle is False
    assert second[1].kind is OutcomeKind.SUCCESS and ok(third)
    # the batch was never resent as a whole: every id is in the stream exactly once
    calls = proxy.of("PutRecords")
    assert [len(c.records) for c in calls] == [6, 2, 1]
    ids = sorted(r["PartitionKey"] for r in read_stream(kinesis, stream))
    assert ids == [e.id for e in events]


def test_whole_call_throttling_is_retried_and_throttles(proxy: FaultProxy, stream: str) -> None:
    proxy.inject("PutRecords", CallFault("ProvisionedThroughputExceededException", 400, "Rate exceeded for stream"))
    pacer = RecordingPacer()
    outcomes = send(KinesisSender(context(stream, proxy.url)), [outgoing(1), outgoing(2)], pacer)
    for o in outcomes:
        assert o.kind is OutcomeKind.HTTP_STATUS and o.status == 400 and o.code == CODE_WRITE_FAILED
        assert o.retryable is True and o.throttle is True and is_throttle_signal(o)
    assert len(pacer.observed) == 1 and pacer.observed[0].throttle
    assert decide(outcomes[0]).action is Action.RETRY


@pytest.mark.parametrize(
    ("code", "status", "throttle"),
    [
        ("LimitExceededException", 400, True),
        ("KMSThrottlingException", 400, True),
        ("AccessDeniedException", 400, False),
        ("KMSAccessDeniedException", 400, False),
        ("InternalFailure", 500, True),  # a 5xx tightens the throttle, like a webhook's
        ("ServiceUnavailable", 503, True),
    ],
)
def test_call_errors_are_retried_93101(proxy: FaultProxy, stream: str, code: str, status: int, throttle: bool) -> None:
    proxy.inject("PutRecords", CallFault(code, status))
    (outcome,) = send(KinesisSender(context(stream, proxy.url)), [outgoing(1)])
    assert outcome.code == CODE_WRITE_FAILED and outcome.retryable is True and outcome.status == status
    assert code in outcome.message and is_throttle_signal(outcome) is throttle
    assert decide(outcome).action is Action.RETRY


def test_expired_credentials_are_dropped(proxy: FaultProxy, stream: str) -> None:
    proxy.inject(
        "PutRecords", CallFault("ExpiredTokenException", 400, "The security token included in the request is expired")
    )
    sender = KinesisSender(context(stream, proxy.url))
    first, second = sends(sender, [outgoing(1)], [outgoing(1)])
    assert first[0].code == CODE_WRITE_FAILED and first[0].retryable is True
    assert ok(second) and len(proxy.of("AssumeRole")) == 2


def test_assume_role_failure_is_93102_retried(proxy: FaultProxy, stream: str) -> None:
    proxy.inject("AssumeRole", CallFault("AccessDenied", 403, "not authorized to perform sts:AssumeRole"))
    pacer = RecordingPacer()
    sender = KinesisSender(context(stream, proxy.url))

    async def go() -> tuple[list[Outcome], list[Outcome]]:
        try:
            return await sender.send([outgoing(1), outgoing(2)], pacer), await sender.send([outgoing(1)], pacer)
        finally:
            await sender.close()

    failed, later = asyncio.run(go())
    for o in failed:
        assert o.code == CODE_ASSUME_ROLE_FAILED and o.retryable is True and o.status == 403
        assert "AccessDenied" in o.message
    assert decide(failed[0]).action is Action.RETRY and decide(failed[0]).error_code == 93102
    assert proxy.of("PutRecords")[0].records[0]["PartitionKey"] == eid(1) and ok(later)
    assert len(proxy.of("AssumeRole")) == 2 and len(pacer.observed) == 2


def test_sts_unreachable_is_93102_connect_error(stream: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    outcomes = send(KinesisSender(context(stream, dead)), [outgoing(1)])
    assert outcomes[0].kind is OutcomeKind.CONNECT_ERROR and outcomes[0].code == CODE_ASSUME_ROLE_FAILED
    assert outcomes[0].retryable is True


def test_kinesis_unreachable_is_93101_connect_error(moto: MotoServer, stream: str) -> None:
    own = FaultProxy(moto.url)
    sender = KinesisSender(context(stream, own.url))

    async def go() -> tuple[list[Outcome], list[Outcome]]:
        try:
            first = await sender.send([outgoing(1)], RecordingPacer())
            own.close()  # credentials are cached; now the endpoint refuses connections
            return first, await sender.send([outgoing(2)], RecordingPacer())
        finally:
            await sender.close()

    first, second = asyncio.run(go())
    assert ok(first)
    assert second[0].kind is OutcomeKind.CONNECT_ERROR and second[0].code == CODE_WRITE_FAILED
    assert second[0].retryable is True and decide(second[0]).action is Action.RETRY


def test_private_endpoint_refused_unless_allowed(proxy: FaultProxy, stream: str) -> None:
    outcomes = send(KinesisSender(context(stream, proxy.url, allow_private=False)), [outgoing(1)])
    assert outcomes[0].kind is OutcomeKind.CONNECT_ERROR and "private" in outcomes[0].message
    assert proxy.calls == []


@pytest.mark.parametrize("host", ["\uff11\uff12\uff17.\uff10.\uff10.\uff11", "127\u30020\u30020\u30021"])
def test_unicode_spelling_of_a_private_endpoint_is_refused(proxy: FaultProxy, stream: str, host: str) -> None:
    # judged as the client maps it (IDNA/UTS 46: 127.0.0.1, where the proxy listens), no DNS asked
    def dns(name: str, port: int) -> list[str]:
        raise AssertionError(f"a literal must not be resolved ({name})")

    endpoint = proxy.url.replace("127.0.0.1", host)
    outcomes = send(KinesisSender(context(stream, endpoint, allow_private=False), resolver=dns), [outgoing(1)])
    assert outcomes[0].kind is OutcomeKind.CONNECT_ERROR and not is_retryable(outcomes[0])
    assert "not a public address" in outcomes[0].message
    assert proxy.calls == []


def test_sink_endpoint_url_refused_unless_the_operator_allows_it(proxy: FaultProxy, stream: str) -> None:
    """Security finding 3: the STS call is signed with the operator's credentials, so a tenant's
    endpoint_url must not receive it unless EVENTSTREAMS_ALLOW_SINK_ENDPOINT_URL is set."""
    outcomes = send(KinesisSender(context(stream, proxy.url, allow_endpoint=False)), [outgoing(1), outgoing(2)])
    assert [o.kind for o in outcomes] == [OutcomeKind.CONNECT_ERROR] * 2
    assert "EVENTSTREAMS_ALLOW_SINK_ENDPOINT_URL" in outcomes[0].message and not is_retryable(outcomes[0])
    assert proxy.calls == []  # no AssumeRole (nor anything else) reached the tenant's host


def test_sink_endpoint_name_resolving_inward_is_refused(proxy: FaultProxy, stream: str) -> None:
    port = proxy.url.rsplit(":", 1)[1]
    lookups: list[str] = []

    def dns(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    ctx = context(stream, f"http://kinesis.tenant.test:{port}", allow_private=False)
    outcomes = send(KinesisSender(ctx, resolver=dns), [outgoing(1)])
    assert outcomes[0].kind is OutcomeKind.CONNECT_ERROR and not is_retryable(outcomes[0])
    assert "not a public address" in outcomes[0].message and "127.0.0.1" not in outcomes[0].message
    assert lookups == ["kinesis.tenant.test"] and proxy.calls == []


def test_sink_endpoint_is_pinned_to_the_checked_address(kinesis: Any, proxy: FaultProxy, stream: str) -> None:
    """The name exists only in the injected resolver: delivery works only if every connection
    goes to the address that was resolved and checked, never through a second DNS lookup."""
    port = proxy.url.rsplit(":", 1)[1]
    lookups: list[str] = []

    def dns(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    ctx = context(stream, f"http://kinesis.pinned.invalid:{port}")
    assert ok(send(KinesisSender(ctx, resolver=dns), [outgoing(1)]))
    assert proxy.of("AssumeRole") and proxy.of("PutRecords")
    assert len(lookups) == 2  # checked again before each call (AssumeRole, PutRecords)
    assert read_stream(kinesis, stream)[0]["PartitionKey"] == eid(1)


def test_global_endpoint_override(kinesis: Any, proxy: FaultProxy, stream: str) -> None:
    ctx = context(stream, None)
    ctx.extra["aws_endpoint_url"] = proxy.url  # EVENTSTREAMS_AWS_ENDPOINT_URL
    assert ok(send(KinesisSender(ctx), [outgoing(1)]))
    assert len(proxy.of("PutRecords")) == 1 and read_stream(kinesis, stream)[0]["PartitionKey"] == eid(1)


def test_concurrency_is_bounded(proxy: FaultProxy, stream: str) -> None:
    proxy.delay = 0.3
    events = [raw(i, b'{"n":%d}' % i) for i in range(3000)]
    outcomes = send(KinesisSender(context(stream, proxy.url, max_in_flight=3)), events)
    assert ok(outcomes) and len(proxy.of("PutRecords")) == 6
    assert 2 <= proxy.max_in_flight <= 3


def test_empty_send_and_reuse_after_close(proxy: FaultProxy, stream: str) -> None:
    sender = KinesisSender(context(stream, proxy.url))

    async def go() -> None:
        assert await sender.send([], RecordingPacer()) == []
        assert ok(await sender.send([outgoing(1)], RecordingPacer()))
        await sender.close()
        assert ok(await sender.send([outgoing(2)], RecordingPacer()))  # new clients and threads
        await sender.close()
        await sender.close()  # idempotent

    asyncio.run(go())
    assert len(proxy.of("PutRecords")) == 2


# -- end to end: API -> dispatcher -> Kinesis (sqlite and postgres) ----------------------------


def publish(server: Server, auth: tuple[str, str], events: list[dict[str, Any]]) -> list[str]:
    r = requests.post(
        f"{server.url}/v1/Events",
        data=json.dumps(events),
        headers={"Content-Type": "application/cloudevents-batch+json"},
        auth=auth,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return list(r.json()["accepted"])


def api_event(i: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "type": DELIVERED,
        "source": f"/test/{i}",
        "id": f"EZ{i:032x}",
        "data": EXAMPLES[LATEST],
    }


def kinesis_sink(server: Server, account: tuple[str, str], arn: str, endpoint: str, **extra: Any) -> str:
    client = server.client(*account)
    sink = client.events.v1.sinks.create(
        description="kinesis",
        sink_type="kinesis",
        sink_configuration={"arn": arn, "role_arn": ROLE, "external_id": "ext-e2e", "endpoint_url": endpoint, **extra},
    )
    assert sink.status == "active"
    client.events.v1.subscriptions.create(description="to kinesis", sink_sid=sink.sid, types=[{"type": DELIVERED}])
    return str(sink.sid)


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def stream_ids(kinesis: Any, arn: str) -> list[str]:
    return [json.loads(r["Data"])["id"] for r in read_stream(kinesis, arn)]


def get(server: Server, account: tuple[str, str], path: str) -> Any:
    r = requests.get(f"{server.url}{path}", auth=account, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def alerts_of(server: Server, account: tuple[str, str], sink: str) -> list[dict[str, Any]]:
    """The sink's alerts in the debugger (``/v1/Alerts``)."""
    return [a for a in get(server, account, "/v1/Alerts")["alerts"] if a["resource_sid"] == sink]


def test_e2e_events_reach_the_stream(
    server: Server, account: tuple[str, str], kinesis: Any, proxy: FaultProxy, stream: str
) -> None:
    sink = kinesis_sink(server, account, stream, proxy.url)
    ids: list[str] = []
    for start in range(0, 600, 200):
        ids += publish(server, account, [api_event(i) for i in range(start, start + 200)])
    wait_for(lambda: sorted(stream_ids(kinesis, stream)) == sorted(ids))
    records = read_stream(kinesis, stream)
    assert len(records) == 600
    for r in records[:5]:
        doc = json.loads(r["Data"])
        assert r["PartitionKey"] == doc["id"] and doc["type"] == DELIVERED and doc["data"] == EXAMPLES[LATEST]
        assert doc["specversion"] == "1.0" and doc["time"].endswith("Z")
    assume = proxy.of("AssumeRole")
    assert assume and assume[0].params["ExternalId"] == "ext-e2e"
    assert assume[0].params["RoleSessionName"] == f"eventstreams-{sink}"
    assert all(c.access_key != "testing" for c in proxy.of("PutRecords"))
    log = get(server, account, f"/v1/Sinks/{sink}/Deliveries")["deliveries"]
    assert {x["outcome"] for x in log} == {"delivered"} and sum(x["event_count"] for x in log) == 600


def test_e2e_data_as_string_and_partition_key(
    server: Server, account: tuple[str, str], kinesis: Any, proxy: FaultProxy, stream: str
) -> None:
    kinesis_sink(server, account, stream, proxy.url, data_as_string=True, partition_key="source")
    ids = publish(server, account, [api_event(i) for i in range(5)])
    wait_for(lambda: sorted(stream_ids(kinesis, stream)) == sorted(ids))
    for r in read_stream(kinesis, stream):
        doc = json.loads(r["Data"])
        assert json.loads(doc["data"]) == EXAMPLES[LATEST] and r["PartitionKey"] == doc["source"]


def test_e2e_partial_throttling_retries_only_failed_records(
    server: Server, account: tuple[str, str], kinesis: Any, proxy: FaultProxy, stream: str
) -> None:
    proxy.inject("PutRecords", RecordFaults(lambda i, key: i % 3 == 0))
    sink = kinesis_sink(server, account, stream, proxy.url)
    ids = publish(server, account, [api_event(i) for i in range(60)])
    wait_for(lambda: sorted(stream_ids(kinesis, stream)) == sorted(ids))
    first = proxy.of("PutRecords")[0]
    failed = {r["PartitionKey"] for i, r in enumerate(first.records) if i % 3 == 0}
    assert first.response["FailedRecordCount"] == len(failed) > 0
    # only the failed records were sent again, so each event is in the stream exactly once
    assert sorted(stream_ids(kinesis, stream)) == sorted(ids)
    resent = [r["PartitionKey"] for c in proxy.of("PutRecords")[1:] for r in c.records]
    assert not failed - set(resent) and not (set(resent) & {r["PartitionKey"] for r in first.records} - failed)

    def logged() -> list[dict[str, Any]]:
        return list(get(server, account, f"/v1/Sinks/{sink}/Deliveries")["deliveries"])

    wait_for(lambda: sum(x["event_count"] for x in logged() if x["outcome"] == "delivered") == 60)
    failures = [x for x in logged() if x["outcome"] == "failed"]
    assert failures and {x["error_code"] for x in failures} == {93101}
    assert set(failures[0]["event_ids"]) == failed and "ProvisionedThroughputExceeded" in failures[0]["detail"]
    assert not get(server, account, f"/v1/Sinks/{sink}/DeadLetters")["dead_letters"]
    # the throttling shows in the debugger
    (alert,) = alerts_of(server, account, sink)
    assert alert["error_code"] == "93101" and "ProvisionedThroughputExceeded" in alert["alert_text"]


def test_e2e_missing_stream_is_dead_lettered(server: Server, account: tuple[str, str], proxy: FaultProxy) -> None:
    arn = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/missing-{uuid.uuid4().hex[:8]}"
    sink = kinesis_sink(server, account, arn, proxy.url)
    ids = publish(server, account, [api_event(1), api_event(2)])
    path = f"/v1/Sinks/{sink}/DeadLetters"
    wait_for(lambda: len(get(server, account, path)["dead_letters"]) == 2)
    dead = get(server, account, path)["dead_letters"]
    assert sorted(d["event_id"] for d in dead) == sorted(ids)
    assert {d["error_code"] for d in dead} == {93104} and all(d["attempts"] == 1 for d in dead)
    assert "ResourceNotFoundException" in dead[0]["error"]
    (alert,) = alerts_of(server, account, sink)
    assert alert["error_code"] == "93104" and "ResourceNotFoundException" in alert["alert_text"]


def test_e2e_unknown_region_is_dead_lettered(server: Server, account: tuple[str, str]) -> None:
    # no endpoint_url and no EVENTSTREAMS_AWS_ENDPOINT_URL on the test server: the ARN names AWS itself
    assert server.settings.aws_endpoint_url is None
    client = server.client(*account)
    sink = client.events.v1.sinks.create(
        description="kinesis",
        sink_type="kinesis",
        sink_configuration={"arn": f"arn:aws:kinesis:xx-fake-1:{ACCOUNT}:stream/s", "role_arn": ROLE,
                            "external_id": "ext-e2e"},
    )  # fmt: skip
    client.events.v1.subscriptions.create(description="to kinesis", sink_sid=sink.sid, types=[{"type": DELIVERED}])
    ids = publish(server, account, [api_event(1)])
    path = f"/v1/Sinks/{sink.sid}/DeadLetters"
    wait_for(lambda: len(get(server, account, path)["dead_letters"]) == 1)
    (dead,) = get(server, account, path)["dead_letters"]
    assert dead["event_id"] == ids[0] and dead["error_code"] == 93104 and dead["attempts"] == 1
    assert "region 'xx-fake-1' is not a Kinesis region" in dead["error"]
    (alert,) = alerts_of(server, account, str(sink.sid))
    assert alert["error_code"] == "93104" and "xx-fake-1" in alert["alert_text"]
