"""How AWS answers and failures become Kinesis sink outcomes (error codes: see the package doc)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...netpolicy import DestinationRefused
from ...outcome import Outcome, OutcomeKind

CODE_WRITE_FAILED = 93101
CODE_ASSUME_ROLE_FAILED = 93102
CODE_SHARD_COUNT_FAILED = 93103  # reserved: no shard-count lookup is made (see module doc)
CODE_STREAM_UNUSABLE = 93104
CODE_RECORD_TOO_LARGE = 91303

THROTTLE_CODES = frozenset(
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
STREAM_CODES = frozenset({"ResourceNotFoundException", "InvalidArgumentException", "ValidationException"})
CREDENTIAL_CODES = frozenset(
    {"ExpiredTokenException", "ExpiredToken", "UnrecognizedClientException", "InvalidSignatureException"}
)


def http_status(exc: Any) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) and status >= 100 else None


def error_parts(exc: Any) -> tuple[str, str]:
    error = exc.response.get("Error", {})
    return str(error.get("Code") or "Unknown"), str(error.get("Message") or "")


def failure(kind: OutcomeKind, code: int, message: str, *, status: int | None = None, **kw: Any) -> Outcome:
    if kind is OutcomeKind.HTTP_STATUS and status is None:
        kind = OutcomeKind.INTERNAL
    return Outcome(kind, status=status, message=message, code=code, **kw)


def transport_failure(exc: BaseException, code: int, what: str) -> Outcome | None:
    """Outcome for a connection-level botocore error, or ``None`` if ``exc`` is not one."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ConnectTimeoutError, HTTPClientError, ReadTimeoutError, SSLError

    text = f"{what}: {type(exc).__name__}: {exc}"
    if isinstance(exc, ReadTimeoutError):
        return failure(OutcomeKind.TIMEOUT, code, text, retryable=True)
    if isinstance(exc, SSLError):
        return failure(OutcomeKind.TLS_ERROR, code, text, retryable=True)
    if isinstance(exc, ConnectTimeoutError | BotoConnectionError | HTTPClientError):
        return failure(OutcomeKind.CONNECT_ERROR, code, text, retryable=True)
    return None


def assume_role_failure(exc: BaseException) -> Outcome:
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, DestinationRefused):
        return Outcome.refused(str(exc))
    code = CODE_ASSUME_ROLE_FAILED
    transport = transport_failure(exc, code, "assume role failed")
    if transport is not None:
        return transport
    if isinstance(exc, ClientError):
        err_code, err_message = error_parts(exc)
        message = f"assume role failed: {err_code}: {err_message}"
        return failure(OutcomeKind.HTTP_STATUS, code, message, status=http_status(exc), retryable=True)
    if isinstance(exc, NoCredentialsError):
        return failure(OutcomeKind.INTERNAL, code, "assume role failed: no AWS credentials configured", retryable=True)
    return failure(OutcomeKind.INTERNAL, code, f"assume role failed: {type(exc).__name__}: {exc}", retryable=True)


def put_failure(exc: BaseException) -> Outcome:
    from botocore.exceptions import ClientError, InvalidRegionError, ParamValidationError

    if isinstance(exc, DestinationRefused):
        return Outcome.refused(str(exc))
    code = CODE_WRITE_FAILED
    transport = transport_failure(exc, code, "PutRecords failed")
    if transport is not None:
        return transport
    if isinstance(exc, ClientError):
        err_code, err_message = error_parts(exc)
        message = f"{err_code}: {err_message}" if err_message else err_code
        status = http_status(exc)
        if err_code in STREAM_CODES:
            return failure(OutcomeKind.HTTP_STATUS, CODE_STREAM_UNUSABLE, message, status=status, retryable=False)
        throttle = err_code in THROTTLE_CODES
        return failure(OutcomeKind.HTTP_STATUS, code, message, status=status, retryable=True, throttle=throttle)
    if isinstance(exc, ParamValidationError | InvalidRegionError):
        return failure(OutcomeKind.INTERNAL, CODE_STREAM_UNUSABLE, f"invalid stream: {exc}", retryable=False)
    return failure(OutcomeKind.INTERNAL, code, f"PutRecords failed: {type(exc).__name__}: {exc}", retryable=True)


def worst(outcomes: Sequence[Outcome]) -> Outcome:
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
