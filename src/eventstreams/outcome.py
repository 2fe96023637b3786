"""Delivery vocabulary shared by the senders (``sinks``) and the retry policy (``delivery``).

A low module on purpose: sinks produce :class:`Outcome` values and the delivery
side judges them, so both import from here and neither imports the other.

Everything an outcome carries from outside (a response body, a remote error
message) goes through :func:`escape_controls` before it is stored or logged: a
body with a newline must not forge a second log line (security finding 8).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CODE_CONNECT",
    "CODE_DROPPED",
    "CODE_GENERIC",
    "CODE_INTERNAL_RETRIED",
    "CODE_REJECTED_4XX",
    "CODE_SERVER_ERROR",
    "CODE_THROTTLED",
    "CODE_TIMEOUT",
    "EXCERPT_BYTES",
    "EXCERPT_LIMIT",
    "Outcome",
    "OutcomeKind",
    "bound",
    "classify_http",
    "escape_controls",
]

#: Longest message/body excerpt kept on an :class:`Outcome` (characters).
EXCERPT_LIMIT = 512
#: Bytes of a response body worth reading for that excerpt (UTF-8: at most 4 bytes a character).
EXCERPT_BYTES = EXCERPT_LIMIT * 4

# Twilio delivery error codes (reference §8.2).
CODE_GENERIC = 91300
CODE_THROTTLED = 91302
CODE_DROPPED = 91303
CODE_INTERNAL_RETRIED = 91304
CODE_REJECTED_4XX = 91305
CODE_SERVER_ERROR = 91306
CODE_CONNECT = 91307
CODE_TIMEOUT = 91308

# C0 controls, DEL, C1 controls (NEL \x85 is a line break too) and the Unicode line/paragraph
# separators: anything a log viewer or terminal may treat as the end of a line or an escape.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with control characters and line separators written as escapes (``\\n``,
    ``\\x00``, ``\\u2028``), so remote text stays on one line wherever it is logged or shown."""
    return _CONTROLS.sub(_escape, text)


def bound(text: str) -> str:
    """``text`` escaped (see :func:`escape_controls`) and cut to :data:`EXCERPT_LIMIT` characters."""
    text = escape_controls(text)
    return text if len(text) <= EXCERPT_LIMIT else text[: EXCERPT_LIMIT - 1] + "…"


class OutcomeKind(enum.Enum):
    """What happened on one delivery attempt."""

    SUCCESS = "success"
    HTTP_STATUS = "http_status"  # a non-2xx response was received
    TIMEOUT = "timeout"  # no (complete) response within the sink timeout
    CONNECT_ERROR = "connect_error"  # DNS, TCP, refused destination
    TLS_ERROR = "tls_error"  # handshake / certificate failure
    INTERNAL = "internal"  # our fault, worth retrying
    DROPPED = "dropped"  # our fault, event discarded
    SKIPPED = "skipped"  # deliberately not sent (e.g. Segment needs an identity): logged, no alert, no dead letter


@dataclass(frozen=True, slots=True)
class Outcome:
    """Result of one delivery attempt.

    ``retry_after`` keeps the raw ``Retry-After`` header value; it is resolved
    against ``now`` only when a decision is made (an HTTP-date needs a clock).
    ``message`` is a human-readable note or response-body excerpt; it is
    escaped and truncated to :data:`EXCERPT_LIMIT` characters (:func:`bound`).
    """

    kind: OutcomeKind
    status: int | None = None
    retry_after: str | None = None
    message: str = ""
    #: a sink-specific error code (e.g. Kinesis 93101-93104) replacing the generic mapping
    code: int | None = None
    #: overrides the retry rule of ``kind`` (e.g. Kinesis "stream not found" is never retried)
    retryable: bool | None = None
    #: this failure should tighten the sink's throttle (e.g. Kinesis throughput exceeded)
    throttle: bool = False

    def __post_init__(self) -> None:
        if self.kind is OutcomeKind.HTTP_STATUS and self.status is None:
            raise ValueError("HTTP_STATUS outcome needs a status code")
        if self.message:  # the one place a message is bounded; most successes have none
            safe = bound(self.message)
            if safe != self.message:
                # frozen dataclass: bypass __setattr__ once, during construction
                object.__setattr__(self, "message", safe)
        if self.retry_after is not None and _CONTROLS.search(self.retry_after):
            object.__setattr__(self, "retry_after", escape_controls(self.retry_after))

    @classmethod
    def success(cls, status: int | None = None) -> Outcome:
        """A delivered attempt (``status`` is the 2xx code, if HTTP)."""
        return cls(OutcomeKind.SUCCESS, status=status)

    @classmethod
    def timeout(cls, message: str = "") -> Outcome:
        """The endpoint did not answer within the timeout (91308)."""
        return cls(OutcomeKind.TIMEOUT, message=message)

    @classmethod
    def connect_error(cls, message: str = "") -> Outcome:
        """DNS, TCP or connection failure (91307), retried."""
        return cls(OutcomeKind.CONNECT_ERROR, message=message)

    @classmethod
    def refused(cls, message: str) -> Outcome:
        """The destination is refused by the SSRF policy (91307), **not** retried: the address
        will not become public by waiting, so the event is dead-lettered at once."""
        return cls(OutcomeKind.CONNECT_ERROR, message=message, code=CODE_CONNECT, retryable=False)

    @classmethod
    def tls_error(cls, message: str = "") -> Outcome:
        """TLS handshake or certificate failure (91307)."""
        return cls(OutcomeKind.TLS_ERROR, message=message)

    @classmethod
    def internal(cls, message: str = "") -> Outcome:
        """Internal error; the delivery is retried (91304)."""
        return cls(OutcomeKind.INTERNAL, message=message)

    @classmethod
    def dropped(cls, message: str = "") -> Outcome:
        """Internal error; the event is discarded (91303)."""
        return cls(OutcomeKind.DROPPED, message=message)

    def describe(self) -> str:
        """Short one-line description for logs and dead-letter reasons."""
        head = f"HTTP {self.status}" if self.kind is OutcomeKind.HTTP_STATUS else self.kind.value
        return f"{head}: {self.message}" if self.message else head


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Plain dicts are case-sensitive; HTTP header names are not.
    value = headers.get(name)
    if value is not None:
        return value
    lname = name.lower()
    for key, val in headers.items():
        if key.lower() == lname:
            return val
    return None


def classify_http(status: int, headers: Mapping[str, str] | None = None, body: bytes | str | None = None) -> Outcome:
    """Turn an HTTP response into an :class:`Outcome`.

    Any 2xx is success. Everything else is ``HTTP_STATUS``; whether it is
    retried is the retry policy's decision. ``body`` (optional) becomes a
    bounded, escaped excerpt for error reports.
    """
    if 200 <= status <= 299:
        return Outcome.success(status)
    retry_after = _header(headers, "Retry-After") if headers else None
    if isinstance(body, bytes):
        # decode only what we keep: a 10 MB error page must not cost 10 MB of str
        body = body[:EXCERPT_BYTES].decode("utf-8", errors="replace")
    # Outcome bounds (escapes and cuts) the message itself
    message = body.strip() if body else ""
    return Outcome(OutcomeKind.HTTP_STATUS, status=status, retry_after=retry_after, message=message)
