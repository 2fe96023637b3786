"""Retry policy: what follows a delivery outcome (outcomes themselves: :mod:`eventstreams.outcome`).

Pure code: no I/O, no clock reads. Callers pass ``now`` (epoch seconds) and an
optional ``random.Random`` so that 4-hour retry windows are testable in
milliseconds.

Twilio's public contract (reference §8.2 and §12):

* at-least-once, "exponential backoff with jitter", no fixed attempt count,
  give up once the event has been retried for **4 hours**;
* HTTP 429 → 91302, retried and throttled; other 4xx → 91305, **not** retried;
  5xx → 91306, retried; DNS/TCP/TLS failure → 91307, retried; timeout → 91308,
  retried; internal error → 91304 retried or 91303 dropped.

Choices where Twilio documents nothing (keep ``docs/`` in sync):

* 1xx/3xx final responses are failures that are not retried and are reported as
  91300 (generic delivery failure); redirects are never followed.
* Backoff is ``first_delay * factor**(attempt-1)`` capped at ``max_delay``
  (1 s, 2 s, 4 s, ... 256 s, 300 s, 300 s, ...), then multiplied by a uniform
  factor in ``[1 - jitter, 1 + jitter]`` (±20 %, as Svix does). Jitter is applied
  *after* the cap and the result is not re-clamped: clamping would pile every
  long-failing delivery onto exactly ``max_delay`` and re-synchronise the herd
  we are trying to spread out.
* ``Retry-After`` (delta-seconds or HTTP-date) replaces the computed delay when
  it asks for longer, but is capped at ``max_retry_after`` (default
  ``4 * max_delay`` = 20 min) so a hostile or buggy endpoint cannot park events
  for hours.
* A retry is never scheduled later than ``first_attempt_at + max_age``; if the
  next attempt would land past that deadline the delivery is dead-lettered with
  reason ``"retry window (4h) exhausted"``.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime

# Outcome and its vocabulary live in the low module both delivery and sinks import; the names
# below stay importable from here (the dispatcher and older tests use them) via __all__.
from ..outcome import (
    CODE_CONNECT,
    CODE_DROPPED,
    CODE_GENERIC,
    CODE_INTERNAL_RETRIED,
    CODE_REJECTED_4XX,
    CODE_SERVER_ERROR,
    CODE_THROTTLED,
    CODE_TIMEOUT,
    EXCERPT_LIMIT,
    Outcome,
    OutcomeKind,
    classify_http,
)

__all__ = [
    "EXCERPT_LIMIT",
    "Action",
    "Decision",
    "Outcome",
    "OutcomeKind",
    "RetryPolicy",
    "classify_http",
    "error_code",
    "is_retryable",
    "is_throttle_signal",
    "parse_retry_after",
]

# Jitter draws from a generator of our own: the global one belongs to the embedding application
# (and property-based test tools check that nothing else moves it).
_JITTER = random.Random()


def error_code(outcome: Outcome) -> int:
    """Twilio delivery error code (913xx) for a failed outcome.

    Raises ``ValueError`` for a success, which has no error code.
    """
    kind = outcome.kind
    if kind in (OutcomeKind.SUCCESS, OutcomeKind.SKIPPED):
        raise ValueError("a successful or skipped delivery has no error code")
    if outcome.code is not None:
        return outcome.code
    if kind is OutcomeKind.HTTP_STATUS:
        status = outcome.status
        assert status is not None  # enforced in Outcome.__post_init__
        if status == 429:
            return CODE_THROTTLED
        if 400 <= status <= 499:
            return CODE_REJECTED_4XX
        if 500 <= status <= 599:
            return CODE_SERVER_ERROR
        return CODE_GENERIC  # 1xx/3xx/nonsense: documented choice, see module doc
    if kind is OutcomeKind.TIMEOUT:
        return CODE_TIMEOUT
    if kind in (OutcomeKind.CONNECT_ERROR, OutcomeKind.TLS_ERROR):
        return CODE_CONNECT
    if kind is OutcomeKind.INTERNAL:
        return CODE_INTERNAL_RETRIED
    return CODE_DROPPED


def is_retryable(outcome: Outcome) -> bool:
    """True if Twilio's rules say a failed attempt should be tried again.

    429, 5xx, timeouts, connection/DNS/TLS failures and retried internal
    errors are retried; other 4xx, 1xx/3xx, dropped events and successes are not.
    """
    kind = outcome.kind
    if kind in (OutcomeKind.SUCCESS, OutcomeKind.SKIPPED):
        return False
    if outcome.retryable is not None:
        return outcome.retryable
    if kind is OutcomeKind.HTTP_STATUS:
        status = outcome.status
        assert status is not None
        return status == 429 or 500 <= status <= 599
    return kind in (
        OutcomeKind.TIMEOUT,
        OutcomeKind.CONNECT_ERROR,
        OutcomeKind.TLS_ERROR,
        OutcomeKind.INTERNAL,
    )


def is_throttle_signal(outcome: Outcome) -> bool:
    """True if the outcome should tighten the sink's :class:`~eventstreams.delivery.throttle.Throttle`.

    Twilio throttles on 429 and 5xx; 91302 also mentions slow sinks, so a
    timeout counts too (our choice).
    """
    if outcome.kind is OutcomeKind.TIMEOUT or outcome.throttle:
        return True
    if outcome.kind is OutcomeKind.HTTP_STATUS:
        status = outcome.status
        assert status is not None
        return status == 429 or 500 <= status <= 599
    return False


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from ``now`` according to a ``Retry-After`` value.

    Accepts delta-seconds (``"120"``) or an HTTP-date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``). Dates in the past give ``0.0``.
    Anything unparsable (negative numbers, garbage) gives ``None`` so the
    computed backoff applies.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():  # RFC 9110: delta-seconds = 1*DIGIT (ASCII only)
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # "-0000" zone means UTC with unknown local offset; HTTP-dates are GMT.
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


class Action(enum.Enum):
    """What the dispatcher should do with a delivery after an attempt."""

    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome of :meth:`RetryPolicy.decide`.

    * ``DELIVERED``: nothing more to do.
    * ``RETRY``: attempt again at ``retry_at`` (epoch seconds, ``now + delay``).
    * ``DEAD_LETTER``: give up; ``reason`` says why.

    ``error_code`` is the Twilio 913xx code of the failed attempt (``None`` on
    success) so the caller can record it alongside the decision.
    """

    action: Action
    retry_at: float | None = None
    delay: float | None = None
    reason: str | None = None
    error_code: int | None = None

    @property
    def is_retry(self) -> bool:
        """True when another attempt is scheduled."""
        return self.action is Action.RETRY

    @property
    def is_dead_letter(self) -> bool:
        """True when the delivery has been given up."""
        return self.action is Action.DEAD_LETTER


_DELIVERED = Decision(Action.DELIVERED)


def _duration_label(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with ±jitter and a hard age limit.

    All durations are seconds. ``attempt`` numbers are 1-based: ``attempt=1``
    is the first delivery attempt, so ``next_delay(1)`` is the wait before the
    first *retry*.
    """

    first_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    max_age: float = 4 * 3600.0
    jitter: float = 0.2
    #: Upper bound for an honoured ``Retry-After``; ``None`` means ``4 * max_delay``.
    max_retry_after: float | None = None
    _window_reason: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.first_delay <= 0:
            raise ValueError("first_delay must be > 0")
        if self.factor < 1:
            raise ValueError("factor must be >= 1")
        if self.max_delay < self.first_delay:
            raise ValueError("max_delay must be >= first_delay")
        if self.max_age <= 0:
            raise ValueError("max_age must be > 0")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.max_retry_after is not None and self.max_retry_after < 0:
            raise ValueError("max_retry_after must be >= 0")
        object.__setattr__(self, "_window_reason", f"retry window ({_duration_label(self.max_age)}) exhausted")

    @property
    def retry_after_cap(self) -> float:
        """Largest ``Retry-After`` delay that is honoured."""
        return self.max_delay * 4 if self.max_retry_after is None else self.max_retry_after

    def nominal_delay(self, attempt: int) -> float:
        """Backoff before the retry that follows ``attempt``, without jitter."""
        if attempt < 1:
            raise ValueError("attempt numbers start at 1")
        try:
            raw = self.first_delay * self.factor ** (attempt - 1)
        except OverflowError:  # attempt in the thousands: we are long past the cap
            raw = math.inf
        return min(raw, self.max_delay)

    def next_delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Jittered backoff before the retry that follows ``attempt``.

        The result lies in ``nominal * [1 - jitter, 1 + jitter]``. ``rng``
        defaults to this module's own generator (never the global one, whose
        state belongs to the embedding application); pass a seeded
        ``random.Random`` for reproducible tests.
        """
        nominal = self.nominal_delay(attempt)
        if self.jitter == 0:
            return nominal
        spread = (rng or _JITTER).uniform(1 - self.jitter, 1 + self.jitter)
        return nominal * spread

    def deadline(self, first_attempt_at: float) -> float:
        """Epoch seconds after which no attempt may be scheduled."""
        return first_attempt_at + self.max_age

    def decide(
        self,
        outcome: Outcome,
        attempt: int,
        first_attempt_at: float,
        now: float,
        rng: random.Random | None = None,
    ) -> Decision:
        """Decide what follows ``attempt`` (1-based) that ended with ``outcome`` at ``now``.

        Successes are ``DELIVERED``; non-retryable failures are dead-lettered
        at once; retryable ones get ``retry_at = now + delay`` unless that is
        past ``first_attempt_at + max_age``, in which case they are
        dead-lettered with reason ``"retry window (4h) exhausted"``.
        """
        if outcome.kind is OutcomeKind.SUCCESS:
            return _DELIVERED  # frozen: one for every success (decided per event)
        code = error_code(outcome)
        if not is_retryable(outcome):
            return Decision(Action.DEAD_LETTER, reason=f"not retried: {outcome.describe()}", error_code=code)

        delay = self.next_delay(attempt, rng)
        server_wait = parse_retry_after(outcome.retry_after, now)
        if server_wait is not None and server_wait > delay:
            delay = min(server_wait, max(delay, self.retry_after_cap))

        retry_at = now + delay
        if retry_at > self.deadline(first_attempt_at):
            return Decision(Action.DEAD_LETTER, reason=self._window_reason, error_code=code)
        return Decision(Action.RETRY, retry_at=retry_at, delay=delay, error_code=code)
