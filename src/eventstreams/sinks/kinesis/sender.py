"""The Kinesis sender: STS AssumeRole, then PutRecords (every choice: see the package doc)."""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from ...netpolicy import Resolver
from ...outcome import Outcome, OutcomeKind
from .. import aws
from ..base import OutgoingEvent, Pacer, SinkContext, SinkSender
from .outcomes import (
    CODE_RECORD_TOO_LARGE,
    CODE_STREAM_UNUSABLE,
    CODE_WRITE_FAILED,
    CREDENTIAL_CODES,
    THROTTLE_CODES,
    assume_role_failure,
    error_parts,
    failure,
    put_failure,
    worst,
)

MAX_RECORDS_PER_CALL = 500
MAX_REQUEST_BYTES = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
MAX_PARTITION_KEY_CHARS = 256
#: temporary credentials are replaced this many seconds before they expire
CREDENTIAL_REFRESH_MARGIN = 300.0
#: most concurrent PutRecords calls (and threads) per sink
MAX_CONCURRENT_CALLS = 8

STREAM_ARN = re.compile(r"^arn:(aws[a-z-]*):kinesis:([a-z0-9-]+):(\d{12}):stream/([A-Za-z0-9_.-]{1,128})$")
_SESSION_NAME = re.compile(r"[^\w+=,.@-]")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StreamRef:
    """The parts of a Kinesis stream ARN."""

    arn: str
    partition: str
    region: str
    account: str
    name: str


def parse_stream_arn(arn: str) -> StreamRef:
    """Split ``arn:aws:kinesis:<region>:<account>:stream/<name>``; ``ValueError`` if it is not one."""
    match = STREAM_ARN.fullmatch(arn.strip()) if isinstance(arn, str) else None
    if match is None:
        raise ValueError(f"not a Kinesis stream ARN: {arn!r}")
    partition, region, account, name = match.groups()
    return StreamRef(arn.strip(), partition, region, account, name)


def region_problem(stream: StreamRef) -> str | None:
    """Why ``stream``'s region has no AWS Kinesis endpoint, or ``None`` if botocore knows it.

    Blocking (loads botocore's endpoint data on first use per partition)."""
    known = aws.available_regions("kinesis", stream.partition)
    if stream.region in known:
        return None
    import botocore

    what = (
        f"region {stream.region!r} is not a Kinesis region of AWS partition {stream.partition!r}"
        if known
        else f"{stream.partition!r} is not an AWS partition with Kinesis"
    )
    # The botocore version matters: a region launched after it was released is not listed.
    return (
        f"invalid stream ARN: {what} (botocore {botocore.__version__});"
        " for a Kinesis-compatible server set EVENTSTREAMS_AWS_ENDPOINT_URL"
    )


@dataclass(frozen=True, slots=True)
class _Record:
    index: int  # position in the send() call
    data: bytes
    key: str
    size: int  # data + UTF-8 partition key, as Kinesis counts against its limits


@dataclass
class _Credentials:
    client: Any  # a boto3 Kinesis client signed with these credentials
    expires_at: float | None  # epoch seconds; None = the process's own (self-refreshing) credentials
    access_key_id: str | None


# -- record encoding ---------------------------------------------------------------------------


def _lookup(event: Any, path: Sequence[str]) -> str | None:
    node = event
    for part in path:
        if isinstance(node, dict):
            if part not in node:
                return None
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    if isinstance(node, str):
        return node or None
    if isinstance(node, bool | int | float):
        return orjson.dumps(node).decode()
    return None


def _data_as_string(event: dict[str, Any]) -> bytes | None:
    """The envelope with ``data`` as its JSON text, or ``None`` to send the payload unchanged."""
    if "data" not in event or isinstance(event["data"], str):
        return None
    out = dict(event)
    out["data"] = orjson.dumps(event["data"]).decode()
    return orjson.dumps(out)


# -- the sender --------------------------------------------------------------------------------


class KinesisSender(SinkSender):
    """Delivers events to a ``kinesis`` sink (see the module doc for every choice).

    Never raises for configuration problems: an unusable stream ARN makes every
    ``send`` answer 93104 (dead letter). ``clock`` (epoch seconds) is for tests
    of the credential cache.
    """

    max_chunk = MAX_RECORDS_PER_CALL

    def __init__(
        self, ctx: SinkContext, *, clock: Callable[[], float] = time.time, resolver: Resolver | None = None
    ) -> None:
        config = ctx.configuration
        self._ctx = ctx
        self._clock = clock
        self._stream: StreamRef | None = None
        self._unusable: Outcome | None = None
        try:
            self._stream = parse_stream_arn(str(config.get("arn") or ""))
        except ValueError as exc:
            self._unusable = failure(OutcomeKind.INTERNAL, CODE_STREAM_UNUSABLE, str(exc), retryable=False)

        role_arn = config.get("role_arn")
        self.role_arn: str | None = role_arn if isinstance(role_arn, str) and role_arn else None
        external_id = config.get("external_id")
        self.external_id: str | None = external_id if isinstance(external_id, str) and external_id else None
        session_name = _SESSION_NAME.sub("-", f"eventstreams-{ctx.sid}")[:64]
        self.session_name = session_name

        own = config.get("endpoint_url")
        self._refusal: Outcome | None = None
        self._pin: aws.Pin | None = None
        if isinstance(own, str) and own:
            self.endpoint_url: str | None = own
            if ctx.extra.get("allow_sink_endpoint_url") is True:
                self._pin = aws.Pin(own, ctx.allow_private, resolver)
            else:
                # never sign with the operator's credentials towards a tenant-chosen host
                self._refusal = Outcome.refused(
                    "endpoint refused: this server does not allow a per-sink endpoint_url"
                    " (EVENTSTREAMS_ALLOW_SINK_ENDPOINT_URL)"
                )
        else:
            glob = ctx.extra.get("aws_endpoint_url")
            self.endpoint_url = glob if isinstance(glob, str) and glob else None

        path = config.get("partition_key")
        self.partition_key_path: tuple[str, ...] | None = (
            tuple(path.split(".")) if isinstance(path, str) and path.strip(".") else None
        )
        self.data_as_string: bool = config.get("data_as_string", False)  # a boolean: the registry validated it

        # An override accepts any region; otherwise it is checked once, off the event loop.
        self._region_checked = self.endpoint_url is not None

        self.concurrency = max(1, min(ctx.max_in_flight, MAX_CONCURRENT_CALLS))
        self._slots = asyncio.Semaphore(self.concurrency)
        self._cred_lock = asyncio.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._sts: Any = None
        self._creds: _Credentials | None = None

    @property
    def stream(self) -> StreamRef | None:
        """The parsed stream ARN (``None`` when it does not parse)."""
        return self._stream

    # -- public API ------------------------------------------------------------------------

    async def send(self, events: Sequence[OutgoingEvent], pacer: Pacer) -> list[Outcome]:
        """Write ``events`` as one record each; one outcome per event, in order. Never raises."""
        if not events:
            return []
        if self._unusable is not None:
            return [self._unusable] * len(events)
        if self._refusal is not None:
            return [self._refusal] * len(events)

        outcomes: list[Outcome | None] = [None] * len(events)
        records: list[_Record] = []
        for index, event in enumerate(events):
            try:
                record = self._encode(index, event)
            except Exception as exc:  # noqa: BLE001 - e.g. RecursionError on absurd nesting; send() must not raise
                outcomes[index] = Outcome.internal(f"cannot encode record: {type(exc).__name__}: {exc}")
                continue
            if record.size > MAX_RECORD_BYTES:
                outcomes[index] = Outcome(
                    OutcomeKind.DROPPED,
                    code=CODE_RECORD_TOO_LARGE,
                    retryable=False,
                    message=f"record of {record.size} bytes exceeds Kinesis's 1 MB limit",
                )
                continue
            records.append(record)

        if records and not self._region_checked:
            unusable = await self._check_region()
            if unusable is not None:
                for record in records:
                    outcomes[record.index] = unusable
                records = []
        if records:
            creds = await self._credentials()
            if isinstance(creds, Outcome):
                pacer.observe(creds)
                for record in records:
                    outcomes[record.index] = creds
            else:
                batches = self._batches(records)
                results = await asyncio.gather(*(self._put(creds, batch, pacer) for batch in batches))
                for batch, batch_outcomes in zip(batches, results, strict=True):
                    for record, outcome in zip(batch, batch_outcomes, strict=True):
                        outcomes[record.index] = outcome
        return [o if o is not None else Outcome.internal("no outcome (bug)") for o in outcomes]

    async def close(self) -> None:
        """Release clients and threads (a later ``send`` creates new ones)."""
        creds, self._creds = self._creds, None
        sts, self._sts = self._sts, None
        for client in (creds.client if creds else None, sts):
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001,S110 - closing is best effort
                    pass
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # -- encoding and batching -------------------------------------------------------------

    def partition_key(self, event: OutgoingEvent, parsed: Any = None) -> str:
        """The record's partition key (see the module doc)."""
        key: str | None = None
        if self.partition_key_path is not None and isinstance(parsed, dict):
            key = _lookup(parsed, self.partition_key_path)
        key = key or event.id or event.type or "-"
        return key[:MAX_PARTITION_KEY_CHARS]

    def record_data(self, event: OutgoingEvent, parsed: Any = None) -> bytes:
        """The record's data bytes (see the module doc)."""
        if self.data_as_string and isinstance(parsed, dict):
            encoded = _data_as_string(parsed)
            if encoded is not None:
                return encoded
        return event.payload

    def _encode(self, index: int, event: OutgoingEvent) -> _Record:
        parsed: Any = None
        if self.data_as_string or self.partition_key_path is not None:
            try:
                parsed = orjson.loads(event.payload)
            except orjson.JSONDecodeError:
                parsed = None
        data = self.record_data(event, parsed)
        key = self.partition_key(event, parsed)
        return _Record(index, data, key, len(data) + len(key.encode("utf-8")))

    @staticmethod
    def _batches(records: Sequence[_Record]) -> list[list[_Record]]:
        batches: list[list[_Record]] = []
        current: list[_Record] = []
        size = 0
        for record in records:
            if current and (len(current) >= MAX_RECORDS_PER_CALL or size + record.size > MAX_REQUEST_BYTES):
                batches.append(current)
                current, size = [], 0
            current.append(record)
            size += record.size
        if current:
            batches.append(current)
        return batches

    # -- AWS calls -------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix=f"kinesis-{self._ctx.sid[:10]}"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self._pinned, fn, *args, **kwargs))

    def _pinned(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # A tenant-chosen endpoint is resolved and checked right before every call (DNS rebinding).
        if self._pin is not None:
            self._pin.refresh()
        return fn(*args, **kwargs)

    def _client(self, service: str, **credentials: Any) -> Any:
        """Create a boto3 client (in a worker thread: session setup reads files)."""
        assert self._stream is not None
        return aws.make_client(
            service,
            region=self._stream.region,
            endpoint_url=self.endpoint_url,
            timeout=self._ctx.timeout,
            pool=self.concurrency,
            pin=self._pin,
            **credentials,
        )

    def _assume_role(self) -> _Credentials:
        """STS AssumeRole and a Kinesis client signed with the result (blocking)."""
        if self.role_arn is None:
            return _Credentials(self._client("kinesis"), None, None)
        if self._sts is None:
            self._sts = self._client("sts")
        params: dict[str, Any] = {"RoleArn": self.role_arn, "RoleSessionName": self.session_name}
        if self.external_id is not None:
            params["ExternalId"] = self.external_id
        answer = self._sts.assume_role(**params)
        creds = answer["Credentials"]
        expiration = creds.get("Expiration")
        expires_at = expiration.timestamp() if hasattr(expiration, "timestamp") else self._clock() + 900.0
        client = self._client(
            "kinesis",
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        return _Credentials(client, expires_at, creds["AccessKeyId"])

    async def _check_region(self) -> Outcome | None:
        """The 93104 outcome when the ARN's region has no AWS endpoint (then kept for every send)."""
        assert self._stream is not None
        try:
            problem = await self._run(region_problem, self._stream)
        except Exception:  # noqa: BLE001 - botocore's data unreadable: let AWS answer for the region
            problem = None
        self._region_checked = True
        if problem is not None:
            self._unusable = failure(OutcomeKind.INTERNAL, CODE_STREAM_UNUSABLE, problem, retryable=False)
        return self._unusable

    def _fresh(self, creds: _Credentials | None) -> bool:
        if creds is None:
            return False
        return creds.expires_at is None or self._clock() < creds.expires_at - CREDENTIAL_REFRESH_MARGIN

    async def _credentials(self) -> _Credentials | Outcome:
        """Cached credentials (and their client), or the 93102 outcome of a failed AssumeRole."""
        if self._fresh(self._creds):
            assert self._creds is not None
            return self._creds
        async with self._cred_lock:
            if self._fresh(self._creds):
                assert self._creds is not None
                return self._creds
            try:
                fresh = await self._run(self._assume_role)
            except Exception as exc:  # noqa: BLE001 - every failure is an outcome
                return assume_role_failure(exc)
            old, self._creds = self._creds, fresh
            if old is not None:
                try:
                    old.client.close()
                except Exception:  # noqa: BLE001,S110 - closing is best effort
                    pass
            return fresh

    def _forget(self, creds: _Credentials) -> None:
        """Drop rejected credentials so the next send assumes the role again."""
        if self._creds is creds:
            self._creds = None

    async def _put(self, creds: _Credentials, batch: list[_Record], pacer: Pacer) -> list[Outcome]:
        assert self._stream is not None
        request = [{"Data": r.data, "PartitionKey": r.key} for r in batch]
        async with self._slots:
            await pacer.wait(len(batch))
            try:
                answer = await self._run(creds.client.put_records, StreamARN=self._stream.arn, Records=request)
            except Exception as exc:  # noqa: BLE001 - every failure is an outcome
                outcome = put_failure(exc)
                if isinstance(getattr(exc, "response", None), dict) and error_parts(exc)[0] in CREDENTIAL_CODES:
                    self._forget(creds)
                pacer.observe(outcome)
                return [outcome] * len(batch)
            outcomes = self._record_outcomes(answer, len(batch))
            pacer.observe(worst(outcomes))
            return outcomes

    @staticmethod
    def _record_outcomes(answer: Any, n: int) -> list[Outcome]:
        rows = answer.get("Records") if isinstance(answer, dict) else None
        if not isinstance(rows, list) or len(rows) != n:
            got = len(rows) if isinstance(rows, list) else "no"
            bad = failure(
                OutcomeKind.INTERNAL, CODE_WRITE_FAILED, f"PutRecords answered {got} results for {n} records",
                retryable=True,
            )  # fmt: skip
            return [bad] * n
        outcomes: list[Outcome] = []
        for row in rows:
            err_code = row.get("ErrorCode") if isinstance(row, dict) else None
            if not err_code:
                outcomes.append(Outcome.success())
                continue
            err_message = str(row.get("ErrorMessage") or "")
            message = f"{err_code}: {err_message}" if err_message else str(err_code)
            throttle = str(err_code) in THROTTLE_CODES
            outcomes.append(
                failure(OutcomeKind.INTERNAL, CODE_WRITE_FAILED, message, retryable=True, throttle=throttle)
            )
        return outcomes
