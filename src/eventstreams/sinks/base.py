"""The sink interface: what the dispatcher hands a sink and gets back.

A sender is created per sink (its own connection pool, so a hung endpoint
only holds its own slots) and receives leased events in chunks; it decides
how to split them into requests (one per event, or batches) and returns one
``Outcome`` per event, in order.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..outcome import Outcome


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    id: str
    type: str
    payload: bytes  # the CloudEvent as JSON, exactly as it is delivered


@dataclass(frozen=True, slots=True)
class SinkContext:
    sid: str
    account_sid: str
    sink_type: str
    configuration: dict[str, Any]
    auth_token: str  # the account's auth token: key of X-Twilio-Signature
    signing_secret: str  # per-sink Standard Webhooks secret (whsec_...)
    allow_private: bool = False
    timeout: float = 5.0
    max_in_flight: int = 32
    extra: dict[str, Any] = field(default_factory=dict)


class Pacer(Protocol):
    """The dispatcher's per-sink throttle, seen from a sender."""

    async def wait(self, n_events: int) -> None:
        """Block until ``n_events`` may be sent."""

    def observe(self, outcome: Outcome) -> None:
        """Report each request's outcome (429/5xx tighten the throttle)."""


class NoPacer:
    async def wait(self, n_events: int) -> None:
        return None

    def observe(self, outcome: Outcome) -> None:
        return None


class SinkSender(abc.ABC):
    #: most events the dispatcher should hand over per ``send`` call
    max_chunk: int = 500
    #: a sink's own cap in events/s (its configuration's), applied by the dispatcher's throttle
    max_rate: float | None = None

    @abc.abstractmethod
    async def send(self, events: Sequence[OutgoingEvent], pacer: Pacer) -> list[Outcome]:
        """Deliver ``events``; return one outcome per event, same order. Never raises
        for delivery failures (they are outcomes); may raise only on bugs."""

    async def close(self) -> None:
        return None
