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
  and pinned before every call (:mod:`eventstreams.sinks.aws`); the operator's global override is
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

from collections.abc import Mapping
from typing import Any

from ..spec import Field, SinkType
from .outcomes import (
    CODE_ASSUME_ROLE_FAILED,
    CODE_RECORD_TOO_LARGE,
    CODE_SHARD_COUNT_FAILED,
    CODE_STREAM_UNUSABLE,
    CODE_WRITE_FAILED,
)
from .sender import (
    CREDENTIAL_REFRESH_MARGIN,
    MAX_CONCURRENT_CALLS,
    MAX_PARTITION_KEY_CHARS,
    MAX_RECORD_BYTES,
    MAX_RECORDS_PER_CALL,
    MAX_REQUEST_BYTES,
    STREAM_ARN,
    KinesisSender,
    StreamRef,
    parse_stream_arn,
    region_problem,
)

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
            pattern=STREAM_ARN.pattern,
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
