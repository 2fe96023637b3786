"""Amazon Kinesis sink: write CloudEvents to a Kinesis data stream (reference §11.2, §12).

One :class:`KinesisSender` per sink. Like Twilio, it calls STS ``AssumeRole`` on
``role_arn`` with ``external_id`` and writes with ``PutRecords`` to the stream
``arn``, using the temporary credentials.

Configuration (``sink_configuration``): ``arn`` (stream ARN), ``role_arn``,
``external_id`` (Twilio's keys) and the eventstreams extensions
``endpoint_url``, ``partition_key`` and ``data_as_string``.

Choices where Twilio documents nothing (keep ``docs/`` in sync):

* **Region and endpoint.** The region comes from the stream ARN
  (``arn:aws:kinesis:<region>:<account>:stream/<name>``); STS is called in the
  same region. The endpoint is the sink's ``endpoint_url``, else the operator's
  ``EVENTSTREAMS_AWS_ENDPOINT_URL`` (``ctx.extra["aws_endpoint_url"]``), else
  AWS's regular endpoint. An override applies to **both** STS and Kinesis (a
  local stand-in such as LocalStack or moto serves every service on one URL).
  The STS call is signed with the *operator's* credentials, so a per-sink
  ``endpoint_url`` is accepted only when the operator sets
  ``EVENTSTREAMS_ALLOW_SINK_ENDPOINT_URL`` (``ctx.extra["allow_sink_endpoint_url"]``);
  otherwise every send fails at once, not retried, without any AWS call. Even
  then the endpoint passes the SSRF policy with its address resolved, checked
  and pinned before every call (:mod:`.aws`); the operator's global override is
  trusted. Without an override the ARN's region must be one
  botocore lists for Kinesis in the ARN's partition (:func:`region_problem`):
  otherwise AWS's endpoint for it does not exist and every call would fail as a
  retried connection error for the whole 4-hour window. This is checked in the
  sender, not at sink creation, because the global override is a server setting
  that can change after the sink exists. With an override any region is used
  as given (Kinesis-compatible servers accept their own names).
* **Credentials.** ``AssumeRole(RoleArn=role_arn, ExternalId=external_id,
  RoleSessionName="eventstreams-<sink sid>")`` signed with the process's
  default AWS credentials (environment, config files, instance/container
  role). The temporary credentials are cached per sender until 5 minutes before
  their ``Expiration``; an ``ExpiredToken``/``UnrecognizedClient``/
  ``InvalidSignature`` answer drops them at once. Without ``role_arn`` (not
  accepted by the API, but tolerated) the default credentials are used directly.
* **Record data.** The CloudEvent JSON bytes exactly as delivered to webhooks
  (``data`` is a JSON object). With ``data_as_string: true`` the envelope is
  re-encoded (compact JSON, attribute order kept) with ``data`` replaced by its
  JSON text, Twilio's older Kinesis form; a payload that is not a JSON object,
  has no ``data`` or whose ``data`` already is a string is sent unchanged.
* **Partition key.** The event ``id`` by default (spreads load evenly over the
  shards). ``partition_key`` is a dotted path into the event, e.g. ``source``
  or ``data.to`` (list items by index: ``data.items.0.sid``); strings are used
  as-is, numbers/booleans as their JSON text; a missing, empty, null, object or
  array value falls back to the id. Keys are cut to 256 characters (Kinesis's
  limit). One record per event, no aggregation (KPL) format.
* **Batching.** Records go out in ``PutRecords`` calls of at most 500 records
  and 5 MiB (data + partition keys, UTF-8 bytes), in event order, up to
  :data:`MAX_CONCURRENT_CALLS` calls (bounded by ``max_in_flight``) at once per
  sink. ``pacer.wait(n)`` precedes each call and ``pacer.observe`` follows it
  once, with the call's worst outcome.
* **Threads.** boto3 is synchronous; calls run on a per-sender thread pool of
  that same size, so a hung AWS endpoint only holds this sink's threads and
  never the event loop's shared executor. Clients are created lazily under
  :mod:`.aws`'s client policy (one shared session, no botocore retries,
  timeouts).

Error codes (reference §12; ``Outcome.code`` overrides the generic mapping):

* **93101** "write to stream failed", retried: a ``PutRecords`` call that
  fails as a whole (throttling ``ProvisionedThroughputExceeded``/
  ``LimitExceeded``/``Throttling``/``KMSThrottling``, 5xx, ``InternalFailure``,
  ``AccessDenied`` and the other KMS/permission errors, which a customer can fix
  within the 4-hour window), connection errors and timeouts; and each record
  that a successful call reports with an ``ErrorCode``. Only those records
  fail: the others of the call are delivered and never resent. Throughput and
  throttling errors (call or record) set ``throttle`` so the sink slows down;
  so do 5xx answers and timeouts, as for webhooks.
* **93102** "assume-role failed", retried: STS errors, unreachable STS, or no
  usable default credentials. Every event of the ``send`` gets it.
* **93103** "get shard count failed" is *not used*: Kinesis hashes partition
  keys to shards itself, so no ``DescribeStream`` call is made (it would also
  need an extra IAM permission on the customer's role).
* **93104** "get stream name and region failed", **not retried**: an ARN that
  does not parse, a region botocore does not know for the partition (no
  endpoint override), ``ResourceNotFoundException`` (no such stream in that
  account/region), ``InvalidArgumentException``/``ValidationException`` and
  client-side parameter validation of the stream ARN, and an invalid region.
* **91303** (dropped, not retried) for a record over Kinesis's 1 MiB limit
  (data + partition key): it can never be written, so it is dead-lettered at
  once with the message ``record of N bytes exceeds Kinesis's 1 MB limit``.

Outcome kinds: AWS error answers are ``HTTP_STATUS`` with the API's HTTP status
(so the delivery log shows it), connection failures ``CONNECT_ERROR``/
``TLS_ERROR``, read timeouts ``TIMEOUT``, per-record failures and everything
else ``INTERNAL``, all with the codes above.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from ..netpolicy import DestinationRefused, Resolver
from ..outcome import Outcome, OutcomeKind
from . import aws
from .base import OutgoingEvent, Pacer, SinkContext, SinkSender
from .spec import Field, SinkType

__all__ = [
    "CODE_ASSUME_ROLE_FAILED",
    "CODE_RECORD_TOO_LARGE",
    "CODE_SHARD_COUNT_FAILED",
    "CODE_STREAM_UNUSABLE",
    "CODE_WRITE_FAILED",
    "CREDENTIAL_REFRESH_MARGIN",
    "MAX_CONCURRENT_CALLS",
    "MAX_PARTITION_KEY_CHARS",
    "MAX_RECORDS_PER_CALL",
    "MAX_RECORD_BYTES",
    "MAX_REQUEST_BYTES",
    "SINK_TYPE",
    "KinesisSender",
    "StreamRef",
    "parse_stream_arn",
    "region_problem",
]

CODE_WRITE_FAILED = 93101
CODE_ASSUME_ROLE_FAILED = 93102
CODE_SHARD_COUNT_FAILED = 93103  # reserved: no shard-count lookup is made (see module doc)
CODE_STREAM_UNUSABLE = 93104
CODE_RECORD_TOO_LARGE = 91303

MAX_RECORDS_PER_CALL = 500
MAX_REQUEST_BYTES = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
MAX_PARTITION_KEY_CHARS = 256
#: temporary credentials are replaced this many seconds before they expire
CREDENTIAL_REFRESH_MARGIN = 300.0
#: most concurrent PutRecords calls (and threads) per sink
MAX_CONCURRENT_CALLS = 8

_ARN = re.compile(r"^arn:(aws[a-z-]*):kinesis:([a-z0-9-]+):(\d{12}):stream/([A-Za-z0-9_.-]{1,128})$")
_THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "Throttling",
        "KMSThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
    }
)
_STREAM_CODES = frozenset({"ResourceNotFoundException", "InvalidArgumentException", "ValidationException"})
_CREDENTIAL_CODES = frozenset(
    {"ExpiredTokenException", "ExpiredToken", "UnrecognizedClientException", "InvalidSignatureException"}
)
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
    match = _ARN.match(arn.strip()) if isinstance(arn, str) else None
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
        " for a Kinesis-compatible server set the sink's endpoint_url"
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


def _status(exc: Any) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) and status >= 100 else None


def _error_parts(exc: Any) -> tuple[str, str]:
    error = exc.response.get("Error", {})
    return str(error.get("Code") or "Unknown"), str(error.get("Message") or "")


def _failure(kind: OutcomeKind, code: int, message: str, *, status: int | None = None, **kw: Any) -> Outcome:
    if kind is OutcomeKind.HTTP_STATUS and status is None:
        kind = OutcomeKind.INTERNAL
    return Outcome(kind, status=status, message=message, code=code, **kw)


def _transport_failure(exc: BaseException, code: int, what: str) -> Outcome | None:
    """Outcome for a connection-level botocore error, or ``None`` if ``exc`` is not one."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ConnectTimeoutError, HTTPClientError, ReadTimeoutError, SSLError

    text = f"{what}: {type(exc).__name__}: {exc}"
    if isinstance(exc, ReadTimeoutError):
        return _failure(OutcomeKind.TIMEOUT, code, text, retryable=True)
    if isinstance(exc, SSLError):
        return _failure(OutcomeKind.TLS_ERROR, code, text, retryable=True)
    if isinstance(exc, ConnectTimeoutError | BotoConnectionError | HTTPClientError):
        return _failure(OutcomeKind.CONNECT_ERROR, code, text, retryable=True)
    return None


def _assume_role_failure(exc: BaseException) -> Outcome:
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, DestinationRefused):
        return Outcome.refused(str(exc))
    code = CODE_ASSUME_ROLE_FAILED
    transport = _transport_failure(exc, code, "assume role failed")
    if transport is not None:
        return transport
    if isinstance(exc, ClientError):
        err_code, err_message = _error_parts(exc)
        message = f"assume role failed: {err_code}: {err_message}"
        return _failure(OutcomeKind.HTTP_STATUS, code, message, status=_status(exc), retryable=True)
    if isinstance(exc, NoCredentialsError):
        return _failure(OutcomeKind.INTERNAL, code, "assume role failed: no AWS credentials configured", retryable=True)
    return _failure(OutcomeKind.INTERNAL, code, f"assume role failed: {type(exc).__name__}: {exc}", retryable=True)


def _put_failure(exc: BaseException) -> Outcome:
    from botocore.exceptions import ClientError, InvalidRegionError, ParamValidationError

    if isinstance(exc, DestinationRefused):
        return Outcome.refused(str(exc))
    code = CODE_WRITE_FAILED
    transport = _transport_failure(exc, code, "PutRecords failed")
    if transport is not None:
        return transport
    if isinstance(exc, ClientError):
        err_code, err_message = _error_parts(exc)
        message = f"{err_code}: {err_message}" if err_message else err_code
        status = _status(exc)
        if err_code in _STREAM_CODES:
            return _failure(OutcomeKind.HTTP_STATUS, CODE_STREAM_UNUSABLE, message, status=status, retryable=False)
        throttle = err_code in _THROTTLE_CODES
        return _failure(OutcomeKind.HTTP_STATUS, code, message, status=status, retryable=True, throttle=throttle)
    if isinstance(exc, ParamValidationError | InvalidRegionError):
        return _failure(OutcomeKind.INTERNAL, CODE_STREAM_UNUSABLE, f"invalid stream: {exc}", retryable=False)
    return _failure(OutcomeKind.INTERNAL, code, f"PutRecords failed: {type(exc).__name__}: {exc}", retryable=True)


def _worst(outcomes: Sequence[Outcome]) -> Outcome:
    """The outcome a call reports to the pacer: a throttle signal, else a failure, else success."""
    first_failure: Outcome | None = None
    for outcome in outcomes:
        if outcome.kind is OutcomeKind.SUCCESS:
            continue
        if outcome.throttle or outcome.kind is OutcomeKind.TIMEOUT:
            return outcome
        if first_failure is None:
            first_failure = outcome
    return first_failure or Outcome.success()


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
            self._unusable = _failure(OutcomeKind.INTERNAL, CODE_STREAM_UNUSABLE, str(exc), retryable=False)

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
        as_string = config.get("data_as_string", False)
        if isinstance(as_string, str):
            as_string = as_string.strip().lower() == "true"
        self.data_as_string = bool(as_string)

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
            self._unusable = _failure(OutcomeKind.INTERNAL, CODE_STREAM_UNUSABLE, problem, retryable=False)
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
                return _assume_role_failure(exc)
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
                outcome = _put_failure(exc)
                if isinstance(getattr(exc, "response", None), dict) and _error_parts(exc)[0] in _CREDENTIAL_CODES:
                    self._forget(creds)
                pacer.observe(outcome)
                return [outcome] * len(batch)
            outcomes = self._record_outcomes(answer, len(batch))
            pacer.observe(_worst(outcomes))
            return outcomes

    @staticmethod
    def _record_outcomes(answer: Any, n: int) -> list[Outcome]:
        rows = answer.get("Records") if isinstance(answer, dict) else None
        if not isinstance(rows, list) or len(rows) != n:
            got = len(rows) if isinstance(rows, list) else "no"
            bad = _failure(
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
            throttle = str(err_code) in _THROTTLE_CODES
            outcomes.append(
                _failure(OutcomeKind.INTERNAL, CODE_WRITE_FAILED, message, retryable=True, throttle=throttle)
            )
        return outcomes


# -- the sink type -----------------------------------------------------------------------------


def _destination(cfg: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    return str(cfg.get("arn", ""))


SINK_TYPE = SinkType(
    name="kinesis",
    description="Records in an Amazon Kinesis data stream, written with a role the server assumes.",
    fields=(
        Field(
            "arn",
            "string",
            "The Kinesis stream's ARN.",
            required=True,
            pattern=_ARN.pattern,
            pattern_hint="a Kinesis stream ARN (arn:aws:kinesis:<region>:<account>:stream/<name>)",
        ),
        Field(
            "role_arn",
            "string",
            "The IAM role the server assumes to write to the stream.",
            required=True,
            pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$",
            pattern_hint="an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
        ),
        Field("external_id", "string", "The external ID the role's trust policy requires.", required=True),
        Field(
            "endpoint_url",
            "url",
            "A Kinesis-compatible endpoint for STS and Kinesis (LocalStack, moto). Accepted only when the"
            " operator sets EVENTSTREAMS_ALLOW_SINK_ENDPOINT_URL=true.",
            extension=True,
            operator_gate="allow_sink_endpoint_url",
            gate_setting="EVENTSTREAMS_ALLOW_SINK_ENDPOINT_URL",
        ),
        Field(
            "partition_key",
            "string",
            "Dotted path into the event whose value is the record's partition key (default: the event id).",
            extension=True,
        ),
        Field(
            "data_as_string",
            "boolean",
            "Write `data` as its JSON text (Twilio's older Kinesis form).",
            default=False,
            extension=True,
        ),
    ),
    sender=KinesisSender,
    destination=_destination,
)
