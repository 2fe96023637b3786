"""A pacer that records what a sink sender asked of it (shared by the sender tests)."""

from __future__ import annotations

from eventstreams.delivery.policy import Outcome


class RecordingPacer:
    def __init__(self) -> None:
        self.waits: list[int] = []
        self.observed: list[Outcome] = []

    async def wait(self, n_events: int) -> None:
        self.waits.append(n_events)

    def observe(self, outcome: Outcome) -> None:
        self.observed.append(outcome)
