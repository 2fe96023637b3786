"""Test doubles for the delivery engine: a scripted sink sender and a fake clock.

The dispatcher takes ``now``/``sleep`` and a sender factory, so its unit tests
step it one round at a time in simulated time, with no server and no sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eventstreams.delivery.policy import Outcome
from eventstreams.sinks.base import OutgoingEvent, Pacer, SinkContext, SinkSender


class FakeClock:
    """Epoch seconds that move only when told to (or when the code under test sleeps)."""

    def __init__(self, start: float) -> None:
        self.t = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.t += seconds


class StubSender(SinkSender):
    """Records every ``send`` and answers from a script: ``outcome(event)`` per event
    (default: success)."""

    def __init__(self, outcome: Callable[[OutgoingEvent], Outcome] | None = None, max_chunk: int = 500) -> None:
        self.outcome = outcome or (lambda e: Outcome.success(200))
        self.max_chunk = max_chunk
        self.calls: list[list[str]] = []  # event ids per send
        self.closed = False

    async def send(self, events: Sequence[OutgoingEvent], pacer: Pacer) -> list[Outcome]:
        self.calls.append([e.id for e in events])
        return [self.outcome(e) for e in events]

    async def close(self) -> None:
        self.closed = True

    @property
    def sent(self) -> list[str]:
        return [i for call in self.calls for i in call]


def factory(sender: StubSender) -> Callable[[SinkContext], SinkSender]:
    return lambda ctx: sender
