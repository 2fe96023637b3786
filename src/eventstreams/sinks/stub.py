"""The ``stub`` sink type, for fast deterministic tests of the dispatcher, publisher and retry policy.

Not registered in a running server: tests add it for a ``with`` block::

    with registry.registered(stub.SINK_TYPE):
        sender = stub.prepare("s1", Outcome.success(), Outcome.connect_error("down"))
        ...create a sink of type "stub" with configuration {"name": "s1"}...

:class:`StubSender` records every chunk it was sent (``sent``) and answers
with scripted outcomes, one per event in order (then ``default``, success
unless changed). Senders are found by the configuration's ``name``:
:func:`prepare` scripts one before the dispatcher creates it, :data:`SENDERS`
holds every one created.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..outcome import Outcome
from .base import OutgoingEvent, Pacer, SinkContext, SinkSender
from .spec import Field, SinkType

__all__ = ["SENDERS", "SINK_TYPE", "StubSender", "prepare"]


class StubSender(SinkSender):
    """Records what it is sent and returns scripted outcomes."""

    def __init__(self, ctx: SinkContext | None = None, *outcomes: Outcome) -> None:
        self.ctx = ctx
        self.script: deque[Outcome | Callable[[OutgoingEvent], Outcome]] = deque(outcomes)
        self.default: Outcome | Callable[[OutgoingEvent], Outcome] = Outcome.success(200)
        self.sent: list[list[OutgoingEvent]] = []
        self.closed = False
        self._sent_changed = threading.Condition()

    def then(self, *outcomes: Outcome | Callable[[OutgoingEvent], Outcome]) -> StubSender:
        """Append outcomes (or ``event -> Outcome`` functions) to the script."""
        self.script.extend(outcomes)
        return self

    @property
    def events(self) -> list[OutgoingEvent]:
        """Every event sent, in order."""
        return [e for chunk in self.sent for e in chunk]

    def wait_for(self, n_events: int, timeout: float = 30.0) -> bool:
        """Block until at least ``n_events`` were sent in all (no polling sleeps in tests; from
        async code: ``await asyncio.to_thread(sender.wait_for, n)``). False on timeout."""
        with self._sent_changed:
            return self._sent_changed.wait_for(lambda: len(self.events) >= n_events, timeout)

    async def send(self, events: Sequence[OutgoingEvent], pacer: Pacer) -> list[Outcome]:
        if not events:
            return []
        await pacer.wait(len(events))
        with self._sent_changed:
            self.sent.append(list(events))
            self._sent_changed.notify_all()
        outcomes: list[Outcome] = []
        for event in events:
            step = self.script.popleft() if self.script else self.default
            outcomes.append(step(event) if callable(step) else step)
        for outcome in outcomes:
            pacer.observe(outcome)
        self.closed = False
        return outcomes

    async def close(self) -> None:
        self.closed = True


#: senders by configuration ``name`` (prepared or created); tests clear it when they like
SENDERS: dict[str, StubSender] = {}


def prepare(name: str, *outcomes: Outcome) -> StubSender:
    """The sender a stub sink named ``name`` will use, scripted with ``outcomes``."""
    sender = SENDERS.setdefault(name, StubSender())
    sender.then(*outcomes)
    return sender


def _sender(ctx: SinkContext) -> StubSender:
    name = str(ctx.configuration.get("name"))
    sender = SENDERS.get(name)
    if sender is None:
        sender = SENDERS[name] = StubSender(ctx)
    sender.ctx = ctx
    return sender


def _destination(cfg: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    return f"stub:{cfg.get('name', '')}"


SINK_TYPE = SinkType(
    name="stub",
    description="Test sink: records what it is sent and answers with scripted outcomes.",
    fields=(Field("name", "string", "Which stub sender (see eventstreams.sinks.stub.prepare).", required=True),),
    sender=_sender,
    destination=_destination,
)
