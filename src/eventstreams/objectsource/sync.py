"""One sync of a Twilio object source: for each Twilio account and selected collection, page through
Twilio (objectsource/client.py), type the records (collections.py) and upsert them into the warehouse
(warehouse/targets.py), committing page by page.

Exactly-once in effect, at-least-once underneath: a page's rows are upserted first (on ``id``, the SID,
so a repeat changes nothing), then the collection's state records the page that comes next. A process
killed anywhere re-reads at most the page it was loading, from the ``next_page_uri`` it saved: Twilio's
page tokens are keyset positions, so the rest of the pass neither skips nor repeats rows.

Incremental passes: collections with a date filter read from (the newest cursor value loaded minus the
lookback window), so rows whose status changed after they were first loaded (late delivery receipts,
calls that ended) are read again; transcriptions and addresses have no filter and are scanned whole.
Call feedback is fetched per call (there is no list), only for calls whose ``date_updated`` is newer than
the newest one an earlier pass loaded: new or changed calls.

Cursors are Twilio's own times (``date_sent``, ``date_updated``), never this machine's clock, so a skewed
clock cannot make a pass miss rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from .. import clock
from ..config import Settings
from ..ids import new_sid
from ..store.base import Store
from ..store.records import ObjectSourceRow, ObjectSourceRunRow, ObjectSourceStateRow, RunCollectionRow
from ..warehouse.targets import Target, WarehouseBusy, open_target
from . import schedule as schedules
from .client import Page, RetryPolicy, TwilioAuthError, TwilioReader, first_uri
from .collections import COLLECTIONS, Collection, cursor_value, filter_params, to_row
from .service import RUN_PREFIX, ObjectSources

log = logging.getLogger("eventstreams.objectsource")
T = TypeVar("T")
FEEDBACK = "call_feedback"
FEEDBACK_MARGIN = timedelta(minutes=5)  # a call updated in the same second as the mark is read again
RETRY_CRASHED_S = 300.0  # a sync that crashed (the warehouse down) is tried again in 5 minutes, not hammered
RETRY_BUSY_S = 60.0  # the DuckDB file was held by another process (a load, a query): try again soon


class LeaseHeld(Exception):
    """Another process is syncing this source."""


class LeaseLost(Exception):
    """This process's lease ran out and another may have taken the source: stop writing state."""


@dataclass
class CollectionProgress:
    account_sid: str
    collection: str
    rows_read: int = 0
    rows_upserted: int = 0
    started: float = field(default_factory=time.perf_counter)
    status: str = "running"
    error: str | None = None
    cursor: str | None = None
    ended: float | None = None  # set when the collection is recorded done or failed

    @property
    def duration(self) -> float:
        return (self.ended or time.perf_counter()) - self.started


Progress = Callable[[CollectionProgress], None]


@dataclass
class RunReport:
    run: ObjectSourceRunRow
    collections: list[CollectionProgress]
    busy: bool = False  # the warehouse was held by another process

    @property
    def rows_read(self) -> int:
        return sum(c.rows_read for c in self.collections)

    @property
    def rows_upserted(self) -> int:
        return sum(c.rows_upserted for c in self.collections)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


class Syncer:
    """Runs syncs. ``owner`` names this process in leases; the scheduler and the CLI both come here."""

    def __init__(self, store: Store, sources: ObjectSources, settings: Settings, owner: str) -> None:
        self.store = store
        self.repo = store.object_sources
        self.sources = sources
        self.settings = settings
        self.owner = owner
        self.lease_s = max(settings.lease_s, 10.0)
        self.open_target: Callable[[], Target] = lambda: open_target(settings.warehouse_url)
        self.retry: RetryPolicy | None = None  # the reader's default (client.RetryPolicy) unless set
        self.on_report: Callable[[RunReport], None] | None = None  # each finished run (metrics.py counts it)

    # -- leases

    async def sync_now(self, row: ObjectSourceRow, *, full: bool = False, trigger: str = "manual",
                       progress: Progress | None = None) -> RunReport:  # fmt: skip
        """Take the source's lease (LeaseHeld when another process holds it), sync, release."""
        if not await self.repo.take_lease(row.sid, self.owner, clock.now(), self.lease_s):
            raise LeaseHeld(f"Source {row.friendly_name!r} is being synced by another process; try again when it ends")
        return await self.leased(row, full=full, trigger=trigger, progress=progress)

    async def leased(self, row: ObjectSourceRow, *, full: bool = False, trigger: str = "scheduled",
                     progress: Progress | None = None) -> RunReport:  # fmt: skip
        """Sync a source whose lease this process holds, renewing it meanwhile, and release it after: with
        the next run time from the schedule (counted from this run's start) when the sync ran to its end;
        due at once when it was cut short (this process stopping: another one, or this one restarted, goes
        on from the last committed page); in five minutes when it crashed, so a broken warehouse is not
        hammered."""
        started = clock.now()
        stop, lost = asyncio.Event(), asyncio.Event()
        renewer = asyncio.create_task(self._renew(row.sid, stop, lost))
        report: RunReport | None = None
        error: str | None = None
        nxt: float | None = started  # unless the sync runs to its end
        full_done = False
        task: asyncio.Task[RunReport] | None = None
        try:
            fresh = await self.repo.by_sid(row.sid) or row
            full = full or fresh.full_sync_requested
            task = asyncio.create_task(self.sync(fresh, full=full, trigger=trigger, progress=progress))
            lost_wait = asyncio.create_task(lost.wait())
            done, _ = await asyncio.wait({task, lost_wait}, return_when=asyncio.FIRST_COMPLETED)
            lost_wait.cancel()
            if task not in done:
                raise LeaseLost(f"Lost the lease on source {row.sid} while syncing")
            report = task.result()
            if self.on_report is not None:
                self.on_report(report)
            error = report.run.error
            nxt = RETRY_BUSY_S + started if report.busy else schedules.parse(fresh.schedule).next_after(started)
            full_done = full and report.run.status == "succeeded"
        except Exception as exc:
            if not isinstance(exc, LeaseLost):
                error, nxt = f"{type(exc).__name__}: {exc}"[:500], started + RETRY_CRASHED_S
            raise
        finally:
            if task is not None and not task.done():  # cancelled (shutdown) or lease lost: the sync stops too
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            stop.set()
            await renewer
            if not lost.is_set():
                await asyncio.shield(self.repo.release_lease(row.sid, self.owner, nxt, error, full_done, started))
        return report

    async def _renew(self, sid: str, stop: asyncio.Event, lost: asyncio.Event) -> None:
        """Renew every third of the lease. A failed renewal (the store unreachable for a moment) is tried
        again; once the lease may have run out, or another process holds it, the sync must stop."""
        held_until = clock.now() + self.lease_s
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.lease_s / 3)
            if stop.is_set():
                return
            until = clock.now() + self.lease_s
            try:
                if not await self.repo.renew_lease(sid, self.owner, until):
                    lost.set()
                    return
                held_until = until
            except Exception:  # a blip: the next try may get through before the lease ends
                log.warning("source %s: renewing the lease failed", sid, exc_info=True)
                if clock.now() + self.lease_s / 3 >= held_until:
                    lost.set()
                    return

    # -- the sync

    async def sync(self, row: ObjectSourceRow, *, full: bool, trigger: str,
                   progress: Progress | None = None) -> RunReport:  # fmt: skip
        states = {(s.twilio_account_sid, s.collection): s for s in await self.repo.states(row.sid)}
        # the first sync of a source reads everything: there is no cursor to go on from
        first = not any(s.cursor for s in states.values())
        run = ObjectSourceRunRow(new_sid(RUN_PREFIX), row.account_sid, row.sid,
                                 "full" if full or first else "incremental", trigger, "running", None,
                                 clock.iso(clock.now()), None)  # fmt: skip
        await self.repo.start_run(run)
        parts: list[CollectionProgress] = []
        pool = ThreadPoolExecutor(1, thread_name_prefix="warehouse")  # one connection, used by one thread
        target: Target | None = None
        busy = False
        try:
            cred = self.sources.credential(row)  # a secret sealed under another key fails here, recorded
            target = await self._in(pool, self.open_target)
            reader = TwilioReader.from_settings(self.settings, row.base_url, cred.username, cred.password,
                                                retry=self.retry)  # fmt: skip
            async with reader:
                accounts = await self._accounts(reader, row)
                selected = [COLLECTIONS[c] for c in row.collections.split(",") if c in COLLECTIONS]
                for account_sid in accounts:
                    for coll in selected:
                        if coll.name == FEEDBACK and any(c.name == "calls" for c in selected):
                            continue  # fetched with the calls they belong to
                        part = CollectionProgress(account_sid, coll.name)
                        parts.append(part)
                        try:
                            await self._collection(reader, target, pool, row, run, coll, account_sid, full,
                                                   states, selected, part, progress)  # fmt: skip
                            part.status = "succeeded"
                        except TwilioAuthError as exc:
                            part.status, part.error = "failed", str(exc)[:500]
                            await self._record(run, part, progress)
                            break  # 401: this account's sync stops; the others go on
                        except (LeaseLost, asyncio.CancelledError):
                            raise
                        except Exception as exc:  # noqa: BLE001  (one collection's failure: the others go on)
                            log.warning("source %s: %s of %s failed: %s", row.sid, coll.name, account_sid, exc)
                            part.status, part.error = "failed", str(exc)[:500]
                        await self._record(run, part, progress)
            failed = [p for p in parts if p.status == "failed"]
            status = "failed" if failed else "succeeded"
            error = "; ".join(f"{p.collection} ({p.account_sid}): {p.error}" for p in failed)[:1000] or None
        except (LeaseLost, asyncio.CancelledError):
            await asyncio.shield(self.repo.finish_run(run.sid, "interrupted", None, clock.iso(clock.now())))
            raise
        except Exception as exc:  # noqa: BLE001  (the warehouse or Twilio unreachable: the run is recorded failed)
            status, error = "failed", f"{type(exc).__name__}: {exc}"[:1000]
            busy = isinstance(exc, WarehouseBusy)
        finally:
            if target is not None:
                await self._in(pool, target.close)
            pool.shutdown(wait=False)
        await self.repo.finish_run(run.sid, status, error, clock.iso(clock.now()))
        run.status, run.error = status, error
        return RunReport(run, parts, busy)

    async def _accounts(self, reader: TwilioReader, row: ObjectSourceRow) -> list[str]:
        if not row.include_subaccounts:
            return [row.twilio_account_sid]
        found = await reader.accounts(row.twilio_account_sid)
        # the account's own subaccounts: a subaccount's credentials list its siblings too
        subs = sorted(a["sid"] for a in found if a.get("sid") != row.twilio_account_sid
                      and a.get("owner_account_sid") == row.twilio_account_sid
                      and a.get("status", "active") == "active")  # fmt: skip
        return [row.twilio_account_sid, *subs]

    async def _collection(
        self,
        reader: TwilioReader,
        target: Target,
        pool: ThreadPoolExecutor,
        row: ObjectSourceRow,
        run: ObjectSourceRunRow,
        coll: Collection,
        account_sid: str,
        full: bool,
        states: dict[tuple[str, str], ObjectSourceStateRow],
        selected: Sequence[Collection],
        part: CollectionProgress,
        progress: Progress | None,
    ) -> None:
        schema = row.schema_name
        state = states.get((account_sid, coll.name))
        # full: asked for, never completed for this account and collection, or no date filter to go on with
        fresh = state is None or state.cursor is None
        kind = "full" if full or fresh or coll.cursor is None else "incremental"
        with_feedback = coll.name == "calls" and any(c.name == FEEDBACK for c in selected)
        fb_coll = COLLECTIONS[FEEDBACK]
        fb_state = states.get((account_sid, FEEDBACK))
        # calls updated after this mark get their feedback fetched (a full pass fetches every call's)
        fb_mark = None if full or fb_state is None else _parse(fb_state.cursor)
        await self._in(pool, lambda: target.ensure_table(schema, coll.name, coll.columns))
        if with_feedback:
            await self._in(pool, lambda: target.ensure_table(schema, FEEDBACK, fb_coll.columns))
        if state and state.resume_uri and state.pass_kind == kind:
            uri = state.resume_uri  # a pass a killed process left: go on from its last committed page
            pass_cursor = _parse(state.pass_cursor)
            lower = _parse(state.pass_lower)
        else:
            lower = _parse(row.start_date)
            if kind == "incremental" and state is not None and state.cursor:
                since = _parse(state.cursor)
                assert since is not None
                lower = _later(lower, since - timedelta(seconds=row.lookback_seconds))
            uri = first_uri(account_sid, coll, filter_params(coll, lower, None))
            pass_cursor = None
        fb_high = fb_mark
        nxt: asyncio.Task[Page] | None = asyncio.create_task(reader.page(uri, coll.list_key, account_sid=account_sid))
        try:
            while nxt is not None:
                page = await nxt
                # read the next page while this one is typed and loaded
                nxt = (asyncio.create_task(reader.page(page.next_page_uri, coll.list_key, account_sid=account_sid))
                       if page.next_page_uri else None)  # fmt: skip
                received = datetime.now(UTC)
                rows = [to_row(coll, r, received) for r in page.records]  # uuid_ts: received, set by to_row
                if coll.newest_first and lower is not None:
                    kept = [r for r in rows if (r[coll.newest_first] or received) >= lower]
                    if len(kept) < len(rows):  # the rest of the list is older still: this pass is done
                        rows, page = kept, Page(page.records[: len(kept)], None, page.uri)
                        if nxt is not None:
                            nxt.cancel()
                            with contextlib.suppress(BaseException):
                                await nxt
                            nxt = None
                feedback_rows: list[dict[str, Any]] = []
                if with_feedback and rows:
                    changed = [r["id"] for r in rows
                               if fb_mark is None or (r.get("date_updated") or received) >= fb_mark - FEEDBACK_MARGIN]
                    for _sid, doc in await reader.feedback(account_sid, changed):
                        if doc is not None:
                            feedback_rows.append(to_row(fb_coll, doc, received))
                    fb_high = _later(fb_high, max((r["date_updated"] for r in rows if r.get("date_updated")),
                                                  default=None))  # fmt: skip
                if rows:
                    await self._in(pool, partial(target.upsert, schema, coll.name, coll.columns, rows))
                if feedback_rows:
                    await self._in(pool, partial(target.upsert, schema, FEEDBACK, fb_coll.columns, feedback_rows))
                for rec in page.records:
                    pass_cursor = _later(pass_cursor, cursor_value(coll, rec))
                part.rows_read += len(rows) + len(feedback_rows)
                part.rows_upserted += len(rows) + len(feedback_rows)
                part.cursor = _iso(pass_cursor)
                # where the pass goes on, and the run's counts so far (the API and CLI show them live)
                checkpoint = ObjectSourceStateRow(
                    row.sid, account_sid, coll.name, state.cursor if state else None, page.next_page_uri, kind,
                    _iso(pass_cursor), _iso(lower), clock.iso(clock.now())) if page.next_page_uri else None  # fmt: skip
                await self.repo.checkpoint(checkpoint, self._progress_row(run, part))
                if progress is not None:
                    progress(part)
        finally:
            if nxt is not None and not nxt.done():
                nxt.cancel()
                with contextlib.suppress(BaseException):
                    await nxt
        # the pass is complete: its newest cursor is where the next incremental pass starts (minus lookback)
        old = _parse(state.cursor) if state else None
        final = _later(old, pass_cursor) if kind == "incremental" else (pass_cursor or old)
        done = ObjectSourceStateRow(row.sid, account_sid, coll.name, _iso(final), None, None, None, None,
                                    clock.iso(clock.now()))  # fmt: skip
        await self.repo.put_state(done)
        states[(account_sid, coll.name)] = done
        if with_feedback:
            fb_done = ObjectSourceStateRow(row.sid, account_sid, FEEDBACK, _iso(fb_high), None, None, None, None,
                                           clock.iso(clock.now()))  # fmt: skip
            await self.repo.put_state(fb_done)
            states[(account_sid, FEEDBACK)] = fb_done

    @staticmethod
    def _progress_row(run: ObjectSourceRunRow, part: CollectionProgress) -> RunCollectionRow:
        return RunCollectionRow(run.sid, part.account_sid, part.collection, part.status, part.rows_read,
                                part.rows_upserted, round(part.duration, 3), part.cursor, part.error)  # fmt: skip

    async def _record(self, run: ObjectSourceRunRow, part: CollectionProgress, progress: Progress | None) -> None:
        part.ended = time.perf_counter()
        await self.repo.put_run_collection(self._progress_row(run, part))
        if progress is not None:
            progress(part)

    @staticmethod
    async def _in(pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn)
