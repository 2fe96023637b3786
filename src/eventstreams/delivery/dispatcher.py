"""The dispatcher: one worker per sink leases due deliveries, sends them
through the sink's sender, and records what happened.

Isolation: every sink has its own task(s), sender (connection pool) and
throttle, so a hung or failing endpoint only ever holds its own slots.
Wake-ups: the store's wake channel calls ``wake()`` once a transaction that
created deliveries commits (this process's directly, other processes' through
PostgreSQL NOTIFY); polling is only the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .. import clock
from ..catalog import schema_url
from ..catalog.runtime import Catalog, CompiledSchema
from ..crypto import Box
from ..profiles.view import ProfileLookup
from ..sinks import UnsupportedSink, create_sender
from ..sinks import registry as sink_types
from ..sinks.base import OutgoingEvent, SinkContext, SinkSender
from ..store.base import Store
from ..store.packing import Bodies, UnreadableEvent
from ..store.records import DeliveryResult, LeasedDelivery, SinkRow
from .hooks import Attempt, DeliveryHook, Hooks, Round, log_context
from .policy import Action, Outcome, OutcomeKind, RetryPolicy, error_code, is_retryable, is_throttle_signal
from .throttle import Throttle

log = logging.getLogger("eventstreams.delivery")
IDLE_FLOOR_S = 0.005
Projections = dict[tuple[str, int], tuple[CompiledSchema, bool]]


@dataclass
class DispatcherConfig:
    chunk: int = 500  # deliveries leased per round trip
    probe: int = 20  # deliveries tried when a paused (down) sink is probed
    pipelines: int = 2  # concurrent lease→send→record loops per sink
    lease_ms: int = 60_000  # must exceed the longest send of a chunk
    poll_interval: float = 1.0  # fallback when no wake-up arrives
    refresh_interval: float = 2.0  # how often the set of sinks is re-read
    timeout: float = 5.0
    max_in_flight: int = 32
    alert_every_ms: int = 20 * 60 * 1000
    allow_private: bool = False
    allow_sink_endpoint_url: bool = False
    aws_endpoint_url: str | None = None
    segment_endpoint: str = "https://api.segment.io"
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class _ThrottlePacer:
    def __init__(self, throttle: Throttle) -> None:
        self.throttle = throttle

    async def wait(self, n_events: int) -> None:
        delay = self.throttle.acquire(n_events, time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)

    def observe(self, outcome: Outcome) -> None:
        now = time.monotonic()
        if is_throttle_signal(outcome):
            self.throttle.record_error(now)
        elif outcome.kind is OutcomeKind.SUCCESS:
            self.throttle.record_success(now)


def destination_of(sink_type: str, configuration: dict[str, Any], segment_default: str) -> str:
    """Where a sink sends, for error reports and alerts (credentials removed)."""
    return sink_types.destination_of(sink_type, configuration, {"segment_endpoint": segment_default})


class SinkWorker:
    def __init__(
        self,
        dispatcher: Dispatcher,
        row: SinkRow,
        sender: SinkSender,
        versions: dict[str, int],
        owner: str,
        destination: str | None = None,
    ):
        self.d = dispatcher
        self.row = row
        self.destination = destination
        self.sender = sender
        self.versions = versions
        self.owner = owner
        self.throttle = Throttle(max_rate=sender.max_rate)
        self.pacer = _ThrottlePacer(self.throttle)
        self.lanes = [asyncio.Event() for _ in range(dispatcher.config.pipelines)]  # one wake-up per lane
        self.waiting: set[int] = set()  # lanes in _idle
        self.raced: set[int] = set()  # lanes whose last lease found work due that another worker was taking
        self.due_hint: float | None = None  # when the next delivery falls due, as lane 0 last read it
        self.tasks: list[asyncio.Task[None]] = []
        self._n = 0
        # Circuit breaker: after a chunk in which nothing was delivered and attempts failed in a way that
        # is retried (down, timing out, 5xx, 429), the sink is treated as down: workers pause (backing off
        # like a retry) and then send a small probe instead of retrying its whole backlog row by row. The
        # first success closes the breaker.
        self.paused_until = 0.0
        self.pause_level = 0
        self.down_code: int | None = None  # the error that paused the sink, for what its window expires

    @property
    def context(self) -> dict[str, str]:
        return log_context(self.row)

    def start(self) -> None:
        for i in range(self.d.config.pipelines):
            self.tasks.append(asyncio.create_task(self._loop(i), name=f"sink-{self.row.sid}-{i}"))

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.sender.close()

    def wake(self) -> None:
        """New work: one waiting lane looks (every lane woken by every publish doubled the leases at low rates,
        the second finding nothing, and on PostgreSQL queueing behind the first's cursor). With none waiting,
        every lane is told, so one whose round read the log just before the publish committed looks again."""
        if self.waiting:
            self.lanes[min(self.waiting)].set()
        else:
            for e in self.lanes:
                e.set()

    def _bring_another(self, lane: int) -> None:
        others = self.waiting - {lane}
        if others:
            self.lanes[min(others)].set()

    async def _loop(self, lane: int) -> None:
        while True:
            try:
                self.lanes[lane].clear()  # before the lease: a wake-up that comes during the round is kept
                if not await self.round(lane):
                    await self._idle(lane)
            except asyncio.CancelledError:
                raise
            except Exception:  # a store hiccup must not kill the sink's worker; leases expire and retry
                log.exception("sink %s: delivery round failed", self.row.sid, extra=self.context)
                await self.d.sleep(self.d.config.poll_interval)

    async def round(self, lane: int = 0) -> bool:
        """Lease one chunk, send it, record it; False when nothing was due. The loop calls this;
        unit tests call it directly, one step at a time, with a fake clock."""
        cfg = self.d.config
        limit = min(cfg.chunk, self.sender.max_chunk)
        if self.paused_until > self.d.now():
            await self._paused()
            limit = min(limit, cfg.probe)
        self._n += 1
        lease = f"{self.d.worker_id}:{self.row.sid}:{lane}:{self._n}"
        now_ms = int(self.d.now() * 1000)
        batch = await self.d.store.deliveries.lease(self.row.sid, now_ms, limit, lease, cfg.lease_ms)
        if not batch:
            if batch.next_due is not None and batch.next_due <= now_ms:
                self.raced.add(lane)  # due, yet another worker had it this instant: _idle looks again shortly
            elif lane == 0:  # the empty lease said when the next retry or lease falls due: _idle waits for it
                self.due_hint = batch.next_due / 1000 if batch.next_due is not None else None
            return False
        if len(batch) == limit:
            self._bring_another(lane)  # more is due: bring another lane in to pipeline
        self._breaker(*await self._deliver(batch))
        return True

    async def _paused(self) -> None:
        """Sleep out the pause (publishes do not cut it short), then expire what the window lost."""
        await self.d.sleep(max(0.0, self.paused_until - self.d.now()))
        retry = self.d.config.retry
        now_ms = int(self.d.now() * 1000)
        n = await self.d.store.deliveries.expire(
            self.row.sid,
            now_ms - int(retry.max_age * 1000),
            now_ms,
            "retry window exhausted while the sink was down",
            self.down_code,
        )
        if n:
            self.d.hooks.on_expired(self.row, n)

    def _breaker(self, delivered: int, failing: int, asked_until: float) -> None:
        """``asked_until``: the latest retry time a sink asked for with Retry-After in this chunk; the
        pause lasts at least that long, so new deliveries wait too rather than meet the same 429/503."""
        if delivered:
            self.pause_level, self.paused_until = 0, 0.0
        elif failing:  # also when the window ended those retries: the sink is still down
            self.pause_level += 1
            backoff = self.d.now() + self.d.config.retry.nominal_delay(self.pause_level)
            self.paused_until = max(backoff, asked_until)

    async def _idle(self, lane: int) -> None:
        """Wait for work. Lane 0 watches the clock (the next due retry or lease expiry) and polls as a
        fallback; the other lanes wait for a wake-up, so an idle sink costs one query per poll interval
        rather than one per lane (hundreds of idle sinks must not crowd a shared PostgreSQL)."""
        now = self.d.now()
        if lane:
            wait = self.d.config.poll_interval * 10
            if self.due_hint is not None and self.due_hint > now:  # lane 0's last look: a retry due
                wait = min(wait, self.due_hint - now)  # while lane 0 is busy sending is not left waiting
        else:
            wait = self.d.config.poll_interval
            if self.due_hint is not None:
                wait = min(wait, max(0.0, self.due_hint - now))
        if lane in self.raced:
            self.raced.discard(lane)
            wait = 0.0
        if wait <= 0:
            # due, yet this round found nothing to lease: another worker holds it (its lease, or the cursor
            # on PostgreSQL) for a moment; look again shortly rather than spin
            wait = IDLE_FLOOR_S
        self.waiting.add(lane)
        try:
            await asyncio.wait_for(self.lanes[lane].wait(), wait)
        except TimeoutError:
            pass
        finally:
            self.waiting.discard(lane)

    def _outgoing(self, d: LeasedDelivery, projections: Projections) -> OutgoingEvent | str:
        """The event as this sink subscribed to it, or the reason it is skipped."""
        wanted = self.versions.get(d.type)
        body = self.d.bodies.get(d.event_seq, d.payload, d.packed)
        if wanted is None or d.schema_version is None or wanted == d.schema_version:
            return OutgoingEvent(d.event_id, d.type, body)
        target = projections.get((d.type, wanted))
        if target is None:
            return f"schema version {wanted} of {d.type} is unavailable"
        compiled, builtin = target
        event = orjson.loads(body)
        data = compiled.project(event.get("data") or {})
        problem = compiled.first_error(data)
        if problem is not None:
            return (
                f"published as {compiled.schema_id} v{d.schema_version}, subscribed to v{wanted};"
                f" not valid against v{wanted} after projection: {problem}"
            )
        event["data"] = data
        event["dataschema"] = schema_url(self.d.base_url, builtin, compiled.schema_id, wanted)
        return OutgoingEvent(d.event_id, d.type, orjson.dumps(event))

    @contextlib.asynccontextmanager
    async def _lease_kept(self, chunk: list[LeasedDelivery]) -> AsyncIterator[None]:
        renewer = asyncio.create_task(self._keep_leased(chunk))
        try:
            yield
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)

    async def _keep_leased(self, chunk: list[LeasedDelivery]) -> None:
        """Renew the chunk's lease every third of its length for as long as its send runs: a slow or
        throttled sink may take longer than one lease, and another worker must not send it again."""
        lease_ms = self.d.config.lease_ms
        ids = [d.id for d in chunk]
        while True:
            await asyncio.sleep(lease_ms / 3000)
            try:
                await self.d.store.deliveries.extend_lease(ids, chunk[0].lease, int(self.d.now() * 1000) + lease_ms)
            except asyncio.CancelledError:
                raise
            except Exception:  # the next beat tries again; at worst another worker re-sends (at-least-once)
                log.warning("sink %s: lease renewal failed", self.row.sid, exc_info=True, extra=self.context)

    async def _deliver(self, batch: list[LeasedDelivery]) -> tuple[int, int, float]:
        """Send one leased chunk and record it; returns (delivered, failures of a retried kind, the
        latest retry time a Retry-After header asked for, or 0)."""
        projections = await self.d.projections(self.owner, self.versions, batch)
        sendable: list[tuple[LeasedDelivery, OutgoingEvent]] = []
        unreadable: list[tuple[LeasedDelivery, str]] = []
        r = Round(self.row, self.destination, 0)
        for d in batch:
            try:
                out = self._outgoing(d, projections)
            except UnreadableEvent as exc:  # e.g. packed by a newer build: retried (another process may read
                unreadable.append((d, str(exc)))  # it), dead-lettered when its window ends, never lost
                continue
            if isinstance(out, str):
                r.skip(d, out)
            else:
                sendable.append((d, out))
        outcomes: list[Outcome] = []
        if sendable:
            self.d.hooks.before_send(self.row, [d for d, _ in sendable])
            started = time.perf_counter()
            async with self._lease_kept([d for d, _ in sendable]):
                try:
                    outcomes = await self.sender.send([e for _, e in sendable], self.pacer)
                except Exception as exc:  # a sender bug: retry like Twilio's 91304 rather than lose events
                    log.exception("sink %s: sender raised", self.row.sid, extra=self.context)
                    outcomes = [Outcome.internal(f"{type(exc).__name__}: {exc}")] * len(sendable)
            r.send_seconds = time.perf_counter() - started
        if unreadable:
            log.error("sink %s: %d stored events cannot be read: %s", self.row.sid, len(unreadable),
                      unreadable[0][1], extra=self.context)  # fmt: skip
            sendable += [(d, OutgoingEvent(d.event_id, d.type, b"")) for d, _ in unreadable]
            outcomes += [Outcome.internal(message) for _, message in unreadable]
        now = self.d.now()
        r.now_ms = int(now * 1000)
        failing = 0  # failures of a kind that is retried, whatever the window decided
        asked_until = 0.0
        for (d, ev), outcome in zip(sendable, outcomes, strict=True):
            if outcome.kind is OutcomeKind.SKIPPED:
                r.skip(d, outcome.message or "skipped by the sink")
                continue
            # the retry window runs from when the delivery was created, attempted or not
            decision = self.d.config.retry.decide(outcome, d.attempts + 1, d.window_start / 1000, now)
            if decision.action is Action.DELIVERED:
                r.attempts.append(Attempt(d, ev.id, outcome, decision))
                r.results.append(DeliveryResult(d, "delivered"))
                r.delivered += 1
                continue
            code = decision.error_code or error_code(outcome)
            # the response excerpt always; the policy's reason when it ended the delivery
            detail = outcome.describe()
            if decision.reason and detail not in decision.reason:
                detail = f"{detail} ({decision.reason})"
            attempt = Attempt(d, ev.id, outcome, decision, code, detail)
            r.attempts.append(attempt)
            r.failed.append(attempt)
            if is_retryable(outcome):
                if not failing:
                    self.down_code = code  # what a paused sink's expired deliveries are dead-lettered with
                failing += 1
            if decision.action is Action.RETRY:
                if outcome.retry_after is not None and decision.retry_at is not None:
                    asked_until = max(asked_until, decision.retry_at)
                due = int((decision.retry_at or now) * 1000)
                r.results.append(DeliveryResult(d, "retry", due_at=due, code=code, error=detail))
            else:
                r.results.append(DeliveryResult(d, "dead", code=code, error=detail))
                r.dead.append(attempt)
        hooks = self.d.hooks
        hooks.after_outcomes(r)
        alerts = await self.d.store.deliveries.complete(
            r.results, r.logs, r.errors, r.now_ms, self.d.config.alert_every_ms
        )
        if r.dead:
            hooks.on_dead_letter(r, r.dead)
        hooks.after_commit(r, alerts)
        return r.delivered, failing, asked_until


class Dispatcher:
    def __init__(
        self,
        store: Store,
        box: Box,
        catalog: Catalog,
        config: DispatcherConfig,
        base_url: str = "",
        hooks: DeliveryHook | None = None,
        *,
        now: Callable[[], float] = clock.now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        sender_factory: Callable[[SinkContext], SinkSender] = create_sender,
        run_workers: bool = True,
        profiles: ProfileLookup | None = None,
        owns: Callable[[str], bool] | None = None,
    ) -> None:
        self.store = store
        # the sinks this dispatcher delivers, when several processes share a SQLite file (None: all of them)
        self.owns = owns
        self.profiles = profiles  # what senders read profiles through (the SMS sink); None: no profiles
        self.box = box
        self.catalog = catalog
        self.config = config
        self.base_url = base_url
        self.hooks = hooks or Hooks()
        self.now = now  # epoch seconds; a fake clock in unit tests
        self.sleep = sleep
        self.sender_factory = sender_factory
        self.run_workers = run_workers  # False: workers are built but only stepped by hand (unit tests)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.workers: dict[str, SinkWorker] = {}
        self._refresh = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fingerprints: dict[str, tuple[str, ...]] = {}
        self.bodies = Bodies()  # the events' bytes, shared by the sinks: unpacked once however many read them

    async def start(self, release_leases: bool) -> None:
        if release_leases:
            n = await self.store.deliveries.release_leases()
            if n:
                log.info("released %d leases left by a previous run", n)
        await self._sync()
        self._task = asyncio.create_task(self._refresh_loop(), name="dispatcher-refresh")

    @property
    def running(self) -> bool:
        """Its refresh loop is alive (readiness: /readyz)."""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*(w.stop() for w in self.workers.values()), return_exceptions=True)
        self.workers.clear()

    def wake(self, sinks: Iterable[str]) -> None:
        unknown = False
        for sid in sinks:
            w = self.workers.get(sid)
            if w is None:
                if self.owns is None or self.owns(sid):  # another process's sink is not news
                    unknown = True
            else:
                w.wake()
        if unknown:
            self._refresh.set()

    async def _refresh_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._refresh.wait(), self.config.refresh_interval)
            except TimeoutError:
                pass
            self._refresh.clear()
            try:
                await self._sync()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep refreshing: a transient store error must not stop delivery
                log.exception("dispatcher refresh failed")

    async def sync(self) -> None:
        """Bring the set of sink workers in line with the store (public for tests stepping by hand)."""
        await self._sync()

    async def _sync(self) -> None:
        rows = [r for r in await self.store.deliveries.sinks() if self.owns is None or self.owns(r.sid)]
        versions = await self.store.deliveries.subscribed_versions()  # one query, not one per sink every refresh
        seen = set()
        for row in rows:
            seen.add(row.sid)
            try:
                await self._sync_one(row, versions.get(row.sid, {}))
            except asyncio.CancelledError:
                raise
            except Exception:  # one broken sink must not keep the others from delivering
                log.exception("sink %s: cannot start its worker", row.sid, extra=log_context(row))
        for sid in list(self.workers):
            if sid not in seen:
                await self.workers.pop(sid).stop()
                self._fingerprints.pop(sid, None)

    async def _sync_one(self, row: SinkRow, versions: dict[str, int]) -> None:
        fp = (row.configuration_sealed, row.status, *sorted(f"{t}={v}" for t, v in versions.items()))
        current = self.workers.get(row.sid)
        if current is not None and self._fingerprints.get(row.sid) == fp:
            return
        if current is not None:
            if current.row.configuration_sealed == row.configuration_sealed:
                current.versions = versions  # subscription change only: keep the sender and throttle
                self._fingerprints[row.sid] = fp
                return
            await current.stop()
            del self.workers[row.sid]
        worker = await self._make_worker(row, versions)
        if worker is not None:
            self.workers[row.sid] = worker
            self._fingerprints[row.sid] = fp
            if self.run_workers:
                worker.start()

    async def _make_worker(self, row: SinkRow, versions: dict[str, int]) -> SinkWorker | None:
        account = await self.store.accounts.get(row.account_sid)
        if account is None:
            return None
        ctx = SinkContext(
            sid=row.sid,
            account_sid=row.account_sid,
            sink_type=row.sink_type,
            configuration=orjson.loads(self.box.open(row.configuration_sealed)),
            auth_token=self.box.open(account.token_sealed),
            signing_secret=self.box.open(row.signing_secret_sealed),
            allow_private=self.config.allow_private,
            timeout=self.config.timeout,
            max_in_flight=self.config.max_in_flight,
            extra={
                "aws_endpoint_url": self.config.aws_endpoint_url,
                "allow_sink_endpoint_url": self.config.allow_sink_endpoint_url,
                "segment_endpoint": self.config.segment_endpoint,
                "schema_lookup": self._schema_lookup(account.parent_sid or account.sid),
                "store": self.store,
                "profiles": self.profiles,
                "base_url": self.base_url,
            },
        )
        try:
            sender = self.sender_factory(ctx)
        except UnsupportedSink as exc:
            log.info("sink %s: %s; its deliveries wait", row.sid, exc, extra=log_context(row))
            return None
        dest = destination_of(row.sink_type, ctx.configuration, self.config.segment_endpoint)
        return SinkWorker(self, row, sender, versions, account.parent_sid or account.sid, dest)

    def _schema_lookup(self, owner: str) -> Any:
        """``await lookup(schema_id, version)`` -> the JSON Schema document, for
        senders that read schema annotations (Segment's ``identityType``)."""

        async def lookup(schema_id: str, version: int) -> dict[str, Any] | None:
            compiled = await self.catalog.schema(owner, schema_id, version)
            return compiled.document if compiled is not None else None

        return lookup

    async def projections(self, owner: str, versions: dict[str, int], batch: list[LeasedDelivery]) -> Projections:
        """(type, subscribed version) -> (compiled schema, built-in?) for the events of ``batch`` published
        at another version. Per chunk, from the catalogue's own bounded caches: nothing here can evict
        what the chunk is about to use."""
        out: Projections = {}
        for d in batch:
            wanted = versions.get(d.type)
            if wanted is None or d.schema_version is None or wanted == d.schema_version or (d.type, wanted) in out:
                continue
            etype = await self.catalog.event_type(owner, d.type)
            compiled = await self.catalog.schema(owner, etype.schema_id, wanted) if etype else None
            if compiled is not None and etype is not None:
                out[(d.type, wanted)] = (compiled, etype.owner_sid is None)
        return out
