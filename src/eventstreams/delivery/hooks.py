"""Delivery lifecycle hooks (dramatiq-style middleware).

The dispatcher's loop only leases, sends, decides and commits; everything
that watches deliveries attaches here instead: the delivery log and alert
grouping (whose rows are written in the same transaction as the outcomes),
the alert webhook, metrics. Each hook method is a no-op by default; a hook
overrides what it needs. Hooks run on the event loop and must not block.

Order of calls for one recorded chunk of a sink (a :class:`Round`):
``before_send`` → (send) → ``after_outcomes`` (may add log entries and error
reports to the round) → commit → ``on_dead_letter`` (when the round gave some
up) → ``after_commit`` (with the alerts the commit raised). A sink paused as
down whose retry window passes calls ``on_expired``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..outcome import Outcome
from ..store.records import AlertRow, DeliveryResult, ErrorReport, LeasedDelivery, LogEntry, SinkRow
from .policy import Action, Decision

log = logging.getLogger("eventstreams.delivery")


@dataclass(slots=True)
class Attempt:
    """One event sent in a round, what came back, and what the retry policy made of it."""

    delivery: LeasedDelivery
    event_id: str
    outcome: Outcome
    decision: Decision
    code: int | None = None  # Twilio 913xx code when it failed
    detail: str | None = None  # the response excerpt, plus the policy's reason when it ended the delivery


@dataclass(slots=True)
class Round:
    """One leased chunk of a sink, from send to commit."""

    sink: SinkRow
    destination: str | None
    now_ms: int
    skips: list[tuple[LeasedDelivery, str]] = field(default_factory=list)  # (delivery, reason): nothing sent
    attempts: list[Attempt] = field(default_factory=list)  # every event sent, in order
    failed: list[Attempt] = field(default_factory=list)  # the attempts not delivered (retried or dead)
    dead: list[Attempt] = field(default_factory=list)  # the attempts given up
    delivered: int = 0
    results: list[DeliveryResult] = field(default_factory=list)  # what the commit applies
    logs: list[LogEntry] = field(default_factory=list)  # written in the same transaction
    errors: list[ErrorReport] = field(default_factory=list)  # alert grouping, same transaction
    send_seconds: float = 0.0

    def skip(self, d: LeasedDelivery, reason: str) -> None:
        self.skips.append((d, reason))
        self.results.append(DeliveryResult(d, "skipped", error=reason))


def log_context(sink: SinkRow, event_id: str | None = None) -> dict[str, str]:
    """``extra=`` for a delivery line: the sink, its account, its type, and the event when there is one."""
    out = {"sink_sid": sink.sid, "account_sid": sink.account_sid, "sink_type": sink.sink_type}
    if event_id is not None:
        out["event_id"] = event_id
    return out


class DeliveryHook:
    def before_send(self, sink: SinkRow, deliveries: Sequence[LeasedDelivery]) -> None:
        """A chunk is about to be handed to the sink's sender."""

    def after_outcomes(self, r: Round) -> None:
        """Every outcome is decided; add to ``r.logs``/``r.errors`` to have them committed with it."""

    def on_dead_letter(self, r: Round, attempts: Sequence[Attempt]) -> None:
        """These attempts were given up (not retried, or past the retry window) and committed as dead
        letters (any whose lease another worker had taken meanwhile were left to that worker)."""

    def after_commit(self, r: Round, alerts: Sequence[AlertRow]) -> None:
        """The round is committed; ``alerts`` are the alerts its errors raised."""

    def on_expired(self, sink: SinkRow, count: int) -> None:
        """``count`` deliveries of a sink paused as down were dead-lettered: their window passed."""


class Hooks(DeliveryHook):
    """Many hooks called as one, in order."""

    def __init__(self, hooks: Sequence[DeliveryHook] = ()) -> None:
        self.hooks = list(hooks)

    def before_send(self, sink: SinkRow, deliveries: Sequence[LeasedDelivery]) -> None:
        for h in self.hooks:
            h.before_send(sink, deliveries)

    def after_outcomes(self, r: Round) -> None:
        for h in self.hooks:
            h.after_outcomes(r)

    def on_dead_letter(self, r: Round, attempts: Sequence[Attempt]) -> None:
        for h in self.hooks:
            h.on_dead_letter(r, attempts)

    def after_commit(self, r: Round, alerts: Sequence[AlertRow]) -> None:
        for h in self.hooks:
            h.after_commit(r, alerts)

    def on_expired(self, sink: SinkRow, count: int) -> None:
        for h in self.hooks:
            h.on_expired(sink, count)


class DeliveryLog(DeliveryHook):
    """The per-sink delivery log (the debugger): skips one entry per event, deliveries one entry
    per round (one per event when the sender reports the answer, e.g. a text's SID), failures one
    entry per distinct (outcome, code, status, detail)."""

    def after_outcomes(self, r: Round) -> None:
        sink = r.sink
        for d, reason in r.skips:
            r.logs.append(
                LogEntry(d.account_sid, d.sink_sid, r.now_ms, "skipped", [d.event_id], d.attempts + 1, detail=reason)
            )
        delivered: list[str] = []
        for a in r.attempts:
            if a.decision.action is not Action.DELIVERED:
                continue
            if a.outcome.message:  # the destination's answer (e.g. a text's message SID): one entry per event
                r.logs.append(
                    LogEntry(sink.account_sid, sink.sid, r.now_ms, "delivered", [a.event_id], a.delivery.attempts + 1,
                             None, a.outcome.status, a.outcome.message)
                )  # fmt: skip
            else:
                delivered.append(a.event_id)
        if delivered:
            r.logs.append(LogEntry(sink.account_sid, sink.sid, r.now_ms, "delivered", delivered, 1))
        failed: dict[tuple[str, int | None, int | None, str | None], list[str]] = defaultdict(list)
        for a in r.failed:
            kind = "failed" if a.decision.action is Action.RETRY else "dead"
            failed[(kind, a.code, a.outcome.status, a.detail)].append(a.event_id)
        for (kind, code, status, detail), ids in failed.items():
            r.logs.append(LogEntry(sink.account_sid, sink.sid, r.now_ms, kind, ids, 1, code, status, detail))


class Alerting(DeliveryHook):
    """Reports a round's errors for Twilio-style alert grouping (the cadence is applied where the
    alert state is stored, in the same transaction) and hands each raised alert to ``notify``."""

    def __init__(self, notify: Callable[[AlertRow], Coroutine[Any, Any, None]] | None = None) -> None:
        self.notify = notify
        self._background: set[asyncio.Task[None]] = set()

    def after_outcomes(self, r: Round) -> None:
        failed = r.failed
        if not failed:
            return
        first = failed[0]
        assert first.code is not None
        r.errors.append(
            ErrorReport(
                r.sink.account_sid,
                r.sink.sid,
                len(failed),
                first.code,
                first.outcome.status,
                first.outcome.message or first.detail,
                r.destination,
            )
        )

    def after_commit(self, r: Round, alerts: Sequence[AlertRow]) -> None:
        for alert in alerts:
            ctx = {**log_context(r.sink), "alert_sid": alert.sid, "error_code": alert.error_code}
            log.warning("alert %s: %s", alert.sid, alert.alert_text, extra=ctx)
            if self.notify is not None:
                task = asyncio.create_task(self.notify(alert))
                self._background.add(task)  # keep a reference until it finishes
                task.add_done_callback(self._background.discard)

    def on_expired(self, sink: SinkRow, count: int) -> None:
        log.warning("sink %s: %d deliveries dead-lettered, retry window exhausted while down", sink.sid, count,
                    extra=log_context(sink))  # fmt: skip


class LogLines(DeliveryHook):
    """A log line per event that did not simply get delivered (those are DEBUG): retried at INFO, skipped at
    INFO, dead-lettered at WARNING, each with its event id, sink and account as ``extra=`` keys."""

    def after_commit(self, r: Round, alerts: Sequence[AlertRow]) -> None:
        for d, reason in r.skips:
            log.info("event %s skipped for sink %s: %s", d.event_id, r.sink.sid, reason,
                     extra=log_context(r.sink, d.event_id))  # fmt: skip
        dead = {id(a) for a in r.dead}
        debug = log.isEnabledFor(logging.DEBUG)
        for a in r.attempts if debug else r.failed:  # the hot path (all delivered, INFO) builds nothing
            ctx = {**log_context(r.sink, a.event_id), "attempt": a.delivery.attempts + 1}
            if a.decision.action is Action.DELIVERED:
                log.debug("event %s delivered to sink %s", a.event_id, r.sink.sid, extra=ctx)
            elif id(a) in dead:
                log.warning("event %s dead-lettered for sink %s: %s %s", a.event_id, r.sink.sid, a.code, a.detail,
                            extra={**ctx, "error_code": a.code})  # fmt: skip
            else:
                log.info("event %s to sink %s failed, retried: %s %s", a.event_id, r.sink.sid, a.code, a.detail,
                         extra={**ctx, "error_code": a.code})  # fmt: skip
