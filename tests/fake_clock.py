"""A fake clock for the delivery engine's unit tests.

The dispatcher takes ``now``/``sleep``, so its unit tests step it one round at
a time in simulated time, with no server and no sleeps (the scripted sender
is the registry's stub sink, eventstreams.sinks.stub).
"""

from __future__ import annotations


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
