"""Per-sink delivery throttle (Twilio's "throttled sink" rule, reference §12).

Twilio's behaviour, as published in its delivery FAQ:

* a healthy sink is not rate-limited (here: unlimited, or an operator-set
  ``max_rate``);
* on a 429 or 5xx the sink becomes *throttled* and delivery is capped at
  **100 events/s**;
* each further 429/5xx multiplies the cap by **0.99**;
* after **5 minutes** without such an error the cap is lifted.

Choices where Twilio is vague (documented in the project docs):

* The floor is ``min_rate`` (default 1 event/s), not Twilio's 0: a cap of 0
  would stall the sink for good, while 1/s still lets retries probe recovery.
* After the quiet period the cap is lifted in one step (Twilio says "slowly
  grow"; the growth curve is undocumented). A fresh error starts again at
  100/s.
* Enforcement is a token bucket holding at most ``burst_seconds`` worth of
  tokens. :meth:`Throttle.acquire` *reserves* tokens and may drive the balance
  negative, so concurrent callers queue up behind each other instead of all
  waking at once. When throttling starts the bucket is emptied: the sink has
  just said it is overloaded, so no burst.

The object does no I/O and never reads a clock: every method takes ``now``
(seconds on any monotonic-ish scale; going backwards is treated as no time
passing). It is not thread-safe; use one per sink per event loop.
"""

from __future__ import annotations

__all__ = ["Throttle"]


class Throttle:
    """Token-bucket rate limiter for one sink, tightened by 429/5xx errors."""

    __slots__ = (
        "_cap",
        "_error_count",
        "_last_error",
        "_stamp",
        "_tokens",
        "burst_seconds",
        "decrease_factor",
        "max_rate",
        "min_rate",
        "quiet_period",
        "throttled_rate",
    )

    def __init__(
        self,
        *,
        max_rate: float | None = None,
        throttled_rate: float = 100.0,
        decrease_factor: float = 0.99,
        min_rate: float = 1.0,
        quiet_period: float = 300.0,
        burst_seconds: float = 1.0,
    ) -> None:
        """Configure the throttle.

        ``max_rate`` is the normal cap in events/s (``None`` = unlimited);
        ``throttled_rate`` is the cap after the first error, multiplied by
        ``decrease_factor`` on each further error but never below ``min_rate``;
        the cap lifts ``quiet_period`` seconds after the last error.
        """
        if max_rate is not None and max_rate <= 0:
            raise ValueError("max_rate must be > 0 or None")
        if throttled_rate <= 0 or min_rate <= 0:
            raise ValueError("rates must be > 0")
        if not 0 < decrease_factor <= 1:
            raise ValueError("decrease_factor must be in (0, 1]")
        if quiet_period < 0 or burst_seconds <= 0:
            raise ValueError("quiet_period must be >= 0 and burst_seconds > 0")
        self.max_rate = max_rate
        self.throttled_rate = throttled_rate
        self.decrease_factor = decrease_factor
        self.min_rate = min_rate
        self.quiet_period = quiet_period
        self.burst_seconds = burst_seconds
        self._cap: float | None = None  # error-driven cap; None = not throttled
        self._last_error: float | None = None
        self._error_count = 0  # errors since throttling (re)started
        self._tokens = 0.0
        self._stamp: float | None = None  # time of last refill; None = bucket idle

    # -- state -------------------------------------------------------------

    def is_throttled(self, now: float) -> bool:
        """True while an error-driven cap is in force."""
        return self._cap is not None and self._last_error is not None and now - self._last_error < self.quiet_period

    @property
    def error_count(self) -> int:
        """Number of throttling errors since the current throttled spell began."""
        return self._error_count

    def current_rate(self, now: float) -> float | None:
        """Allowed events/s at ``now``; ``None`` means unlimited."""
        if not self.is_throttled(now):
            return self.max_rate
        assert self._cap is not None
        return self._cap if self.max_rate is None else min(self._cap, self.max_rate)

    # -- feedback ----------------------------------------------------------

    def record_error(self, now: float) -> None:
        """Record a 429/5xx (or timeout) from the sink at ``now``.

        Starts throttling at ``throttled_rate`` or, if already throttled,
        lowers the cap by ``decrease_factor`` (floored at ``min_rate``).
        """
        if self.is_throttled(now):
            assert self._cap is not None
            self._cap = max(self.min_rate, self._cap * self.decrease_factor)
            self._error_count += 1
        else:
            self._refill(now)  # settle the old balance at the old rate first
            self._cap = max(self.min_rate, self.throttled_rate)
            self._error_count = 1
            # No burst right after an overload signal; keep any debt so callers
            # that already reserved slots stay ahead of new ones.
            self._tokens = min(self._tokens, 0.0)
            self._stamp = now
        # max(): an out-of-order (older) report must not shorten the quiet period.
        self._last_error = now if self._last_error is None else max(self._last_error, now)

    def record_success(self, now: float) -> None:
        """Record a successful delivery at ``now``.

        Successes do not shorten the quiet period (only time without errors
        does); this just drops the cap eagerly once the quiet period is over.
        """
        if self._cap is not None and not self.is_throttled(now):
            self._cap = None
            self._error_count = 0

    # -- enforcement -------------------------------------------------------

    def _capacity(self, rate: float) -> float:
        return max(1.0, rate * self.burst_seconds)

    def _refill(self, now: float) -> None:
        rate = self.current_rate(now)
        if rate is None:
            self._tokens = 0.0
            self._stamp = None
            return
        if self._stamp is None:
            # Bucket (re)starting under a configured max_rate: allow one burst.
            self._tokens = self._capacity(rate)
        else:
            elapsed = max(0.0, now - self._stamp)
            self._tokens = min(self._capacity(rate), self._tokens + elapsed * rate)
        self._stamp = now if self._stamp is None else max(self._stamp, now)

    def acquire(self, n_events: int, now: float) -> float:
        """Reserve ``n_events`` send slots; return seconds to wait before sending.

        ``0.0`` means send now. The reservation is made immediately, so the
        caller must send after the returned delay (not call again to re-check).
        """
        if n_events < 0:
            raise ValueError("n_events must be >= 0")
        self._refill(now)
        rate = self.current_rate(now)
        if rate is None or n_events == 0:
            return 0.0
        assert self._stamp is not None
        self._tokens -= n_events
        if self._tokens >= 0:
            return 0.0
        # Debt is paid back at `rate`; measured from the refill stamp, which
        # may be slightly ahead of `now` if the clock stepped backwards.
        return max(0.0, self._stamp - now) + (-self._tokens / rate)
