"""Events and deliveries: publish with fan-out, lease, outcomes (with the
delivery log, dead letters and alerts of a chunk in the same transaction),
expiry, lease upkeep, and replay."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ..db import Database, Tx, conditions
from ..records import (
    AlertRow,
    DeliveryResult,
    ErrorReport,
    Leased,
    LeasedDelivery,
    LogEntry,
    NewEvent,
    PublishOutcome,
    SinkRow,
)
from . import Repository
from .alerts import Alerts
from .sinks import sink_row


class Deliveries(Repository):
    area = "deliveries"

    def __init__(self, db: Database, alerts: Alerts) -> None:
        super().__init__(db)
        self.alerts = alerts

    async def publish(
        self, account_sid: str, events: Sequence[NewEvent], now_ms: int, dedupe_window_ms: int
    ) -> PublishOutcome:
        """Append new events to the log (dropping ids seen within the dedupe window) and wake the
        subscribed sinks, in one transaction."""
        return await self.db.run(lambda tx: self.publish_tx(tx, account_sid, events, now_ms, dedupe_window_ms),
                                 write=True)  # fmt: skip

    def publish_tx(
        self, tx: Tx, account_sid: str, events: Sequence[NewEvent], now_ms: int, dedupe_window_ms: int | None
    ) -> PublishOutcome:
        """:meth:`publish` inside a caller's transaction (the tracking API stores its messages, their
        profiles and their events in one). ``dedupe_window_ms`` None: the caller has already made
        the ids unique (the tracking API's messageId claim), so they are not claimed again.
        Nothing is written per sink: each sink's cursor reads the log."""
        if dedupe_window_ms is None:
            new, dup = list(events), []
        else:
            fresh = self.d.claim_ids(tx, account_sid, [e.id for e in events], now_ms, now_ms - dedupe_window_ms)
            new = [e for e in events if e.id in fresh]
            dup = [e.id for e in events if e.id not in fresh]
        if new:
            types = self.d.list_(sorted({e.type for e in new}))
            rows = tx.all(self.q.fanned_sinks, a=account_sid, types=types, **self.d.fanned_params(account_sid))
            self.d.fanned(tx, account_sid, [r["sink_sid"] for r in rows if r["sink_sid"] is not None])
            # last: on PostgreSQL the append holds the account's log lock until COMMIT, so nothing else waits
            # inside it (a NOTIFY is sent at COMMIT whenever it was queued)
            self.d.append_events(tx, account_sid, new, now_ms)
        return PublishOutcome([e.id for e in new], dup)

    async def enqueue_for_sink(self, account_sid: str, sink_sid: str, events: Sequence[NewEvent], now_ms: int) -> int:
        """Store events for one sink only (sink test events), no dedupe: retry-table rows, due now, and
        marked so that no cursor reads them."""

        def go(tx: Tx) -> int:
            seqs = self.d.insert_events(tx, account_sid, events, now_ms)
            tx.run(self.q.mark_only_sink, s=sink_sid, seqs=self.d.list_(seqs))
            tx.many(self.q.insert_delivery, [{"s": sink_sid, "a": account_sid, "q": q, "now": now_ms} for q in seqs])
            self.d.notify(tx, [sink_sid])
            return len(seqs)

        return await self.db.run(go, write=True)

    async def lease(self, sink_sid: str, now_ms: int, limit: int, lease: str, lease_ms: int) -> Leased:
        """Up to ``limit`` deliveries for the sink under ``lease``: a batch another worker left (its lease
        expired) if there is one, else due retries first and then the next events from the sink's cursor
        (the cursor moves past them in this transaction; their batch holds them until completed). Empty, it
        says when the next retry or batch lease falls due (``Leased.next_due``)."""

        def go(tx: Tx) -> Leased:
            # one statement finds the work (and, on PostgreSQL, makes this COMMIT not wait for the disk: a
            # lease lost in a database crash only means the events are read and sent again)
            st = tx.one(self.q.lease_start, s=sink_sid, now=now_ms)
            assert st is not None
            until = now_ms + lease_ms
            types = {str(t): int(q) for t, q in orjson.loads(st["types"] or "[]")}
            if st["expired"] is not None:  # a batch its worker left: taken over whole, unless another got it
                left = tx.one(self.q.take_expired_batch, id=st["expired"], lease=lease, until=until, now=now_ms)
                if left is not None:
                    rows = self._read_log(tx, left["account_sid"], types, int(left["from_seq"]), int(left["to_seq"]))
                    taken = _from_log(rows, types, sink_sid, left["account_sid"], lease, int(st["expired"]))
                    if taken:
                        return Leased(taken)
                    # nothing of it is the sink's any more (its types went): done with, and on to the rest
                    tx.run(self.q.finish_batch, b=st["expired"], lease=lease)
            retries = st["retry_due"] is not None and int(st["retry_due"]) <= now_ms
            out = Leased(self._lease_retries(tx, sink_sid, now_ms, limit, lease, until) if retries else [])
            raced = False
            if len(out) < limit and st["account_sid"] is not None:
                got = self._lease_log(tx, sink_sid, st, types, limit - len(out), lease, until)
                raced = got is None
                out += got or []
            if not out:
                dues = [int(d) for d in (st["retry_due"], st["batch_due"]) if d is not None]
                # another worker moved the cursor while this one read: what it saw is already behind, and the
                # log may hold more than its look found, so look again at once rather than at the next poll
                out.next_due = now_ms if raced else min(dues, default=None)
            return out

        return await self.db.run(go, write=True)

    def _types(self, tx: Tx, sink_sid: str) -> dict[str, int]:
        """type -> the log position the sink subscribed to it at (it reads only events after it)."""
        return {r["type"]: int(r["from_seq"]) for r in tx.all(self.q.sink_types, s=sink_sid)}

    def _read_log(
        self, tx: Tx, account_sid: str, types: dict[str, int], after: int, upto: int, n: int | None = None
    ) -> list[tuple[Any, ...]]:
        """The log's rows as tuples (Tx.rows), read by the positions below (``r[SEQ]``)."""
        if not types or upto <= after:
            return []
        return list(tx.rows(self.q.log_after, a=account_sid, pos=after, head=upto, types=self.d.list_(sorted(types)),
                            n=n if n is not None else upto - after))  # fmt: skip

    def _next_rows(
        self, tx: Tx, account: str, types: dict[str, int], pos: int, head: int, room: int
    ) -> tuple[list[Any], int]:
        """Up to ``room`` of the sink's events after ``pos`` and the position read to. Events of a type
        published before the sink subscribed to it are passed over (read on, not returned: a window of
        only those must not look like the end of the log)."""
        kept: list[Any] = []
        span = 0
        while True:
            want = room - len(kept)
            # a bounded window of the log per statement: PostgreSQL plans a long range of a table whose
            # statistics lag its growth (a backlog piling up) as a bitmap scan and sort of all of it
            span = max(span * 2, 4 * want, MIN_SPAN)
            upto = min(head, pos + span)
            rows = self._read_log(tx, account, types, pos, upto, want)
            kept += [r for r in rows if r[SEQ] > types[r[TYPE]]]
            if len(rows) < want:
                if upto >= head:
                    return kept, head  # read to the head
                pos = upto  # nothing more of the sink's in this window: the next, wider one
                continue
            pos = rows[-1][SEQ]
            if len(kept) == room:
                return kept, pos

    def _lease_log(
        self, tx: Tx, sink_sid: str, st: Any, types: dict[str, int], room: int, lease: str, until: int
    ) -> list[LeasedDelivery] | None:
        """The next of the log for the sink, or None when another worker moved its cursor meanwhile."""
        account, pos = st["account_sid"], int(st["position"])
        head = int(st["head"] or 0)  # read before the log: see cursor in deliveries.sql
        if head <= pos:
            return []
        rows, to = self._next_rows(tx, account, types, pos, head, room)
        if not tx.run(self.q.move_cursor, s=sink_sid, pos=pos, to=to):
            return None  # another worker read (and took) this part of the log meanwhile
        if not rows:
            return []
        b = tx.one(self.q.insert_batch, s=sink_sid, a=account, lo=pos, hi=to, lease=lease, until=until)
        assert b is not None
        return _from_log(rows, types, sink_sid, account, lease, int(b["id"]))

    def _lease_retries(
        self, tx: Tx, sink_sid: str, now_ms: int, limit: int, lease: str, until: int
    ) -> list[LeasedDelivery]:
        rows = tx.all(self.q.lease, until=until, lease=lease, s=sink_sid, now=now_ms, n=limit)
        if not rows:
            return []
        seqs = self.d.list_([r["event_seq"] for r in rows])
        events = {r["seq"]: r for r in tx.all(self.q.leased_events, seqs=seqs)}
        out = []
        for r in sorted(rows, key=lambda r: int(r["id"])):
            e = events.get(r["event_seq"])
            if e is None:  # event pruned under us: nothing left to deliver
                continue
            out.append(
                LeasedDelivery(
                    id=int(r["id"]),
                    sink_sid=r["sink_sid"],
                    account_sid=r["account_sid"],
                    event_seq=int(r["event_seq"]),
                    attempts=int(r["attempts"]),
                    window_start=int(r["window_start"]),
                    event_id=e["id"],
                    type=e["type"],
                    schema_version=e["schema_version"],
                    payload=e["payload"],
                    lease=lease,
                    packed=e["packed"],  # unpacked by the dispatcher, outside the transaction
                )
            )
        return out

    async def complete(
        self,
        results: Sequence[DeliveryResult],
        logs: Sequence[LogEntry],
        errors: Sequence[ErrorReport],
        now_ms: int,
        alert_every_ms: int,
    ) -> list[AlertRow]:
        """Apply outcomes (only where the lease is still ours), write logs,
        update alert grouping; return alerts raised. A log batch's delivered events leave nothing behind;
        its failures become retry rows or dead letters; then the batch is done."""
        rows = [r for r in results if not r.delivery.batch]
        logged = [r for r in results if r.delivery.batch]
        gone = [r for r in rows if r.kind in ("delivered", "skipped")]
        retry = [r for r in rows if r.kind == "retry"]
        dead = [r for r in rows if r.kind == "dead"]
        batches = {r.delivery.batch: r.delivery.lease for r in logged}

        def go(tx: Tx) -> list[AlertRow]:
            self.d.redoable(tx)  # lost in a database crash: the batch's lease runs out and it is sent again
            by_lease: dict[str, list[int]] = {}
            for r in gone:
                by_lease.setdefault(r.delivery.lease, []).append(r.delivery.id)
            for lease, ids in by_lease.items():  # one statement per lease, not one per row
                tx.run(self.q.delete_leased, lease=lease, ids=self.d.list_(ids))
            if retry:
                tx.many(self.q.retry, [{"due": r.due_at, "c": r.code, "e": r.error, "id": r.delivery.id,
                                        "lease": r.delivery.lease} for r in retry])  # fmt: skip
            if dead:
                params = [{"id": r.delivery.id, "lease": r.delivery.lease, "eid": r.delivery.event_id,
                           "t": r.delivery.type, "c": r.code, "e": r.error, "now": now_ms} for r in dead]  # fmt: skip
                tx.many(self.q.dead, params)
                tx.many(self.q.delete_one_leased, params)
            if logged:
                self._complete_log(tx, logged, batches, now_ms)
            if logs:
                tx.many(self.q.insert_log, [_log_params(g) for g in logs])
            return [a for err in errors if (a := self.alerts.record(tx, err, now_ms, alert_every_ms)) is not None]

        return await self.db.run(go, write=True)

    def _complete_log(self, tx: Tx, logged: list[DeliveryResult], batches: dict[int, str], now_ms: int) -> None:
        def params(r: DeliveryResult) -> dict[str, Any]:
            d = r.delivery
            return {"s": d.sink_sid, "a": d.account_sid, "q": d.event_seq, "ws": d.window_start, "due": r.due_at,
                    "c": r.code, "e": r.error, "b": d.batch, "lease": d.lease, "eid": d.event_id, "t": d.type,
                    "now": now_ms}  # fmt: skip

        retry = [params(r) for r in logged if r.kind == "retry"]
        if retry:
            tx.many(self.q.retry_from_log, [{k: p[k] for k in ("s", "a", "q", "ws", "due", "c", "e", "b", "lease")}
                                            for p in retry])  # fmt: skip
        dead = [params(r) for r in logged if r.kind == "dead"]
        if dead:
            tx.many(self.q.dead_from_log, [{k: p[k] for k in ("a", "s", "q", "eid", "t", "c", "e", "now", "b", "lease")}
                                           for p in dead])  # fmt: skip
        tx.many(self.q.finish_batch, [{"b": b, "lease": lease} for b, lease in batches.items()])

    async def expire(
        self, sink_sid: str, window_start_before: int, now_ms: int, reason: str, code: int | None = None
    ) -> int:
        """Dead-letter what the sink never got to before its retry window passed (a sink paused as down
        never tried them): unleased retry rows, and the events past its cursor received before
        ``window_start_before``. Those never tried get ``code``, the error that kept the sink down."""

        def go(tx: Tx) -> int:
            return self._expire_retries(tx, sink_sid, window_start_before, now_ms, reason, code) + self._expire_log(
                tx, sink_sid, window_start_before, now_ms, reason, code
            )

        return await self.db.run(go, write=True)

    def _expire_retries(self, tx: Tx, sink_sid: str, cut: int, now_ms: int, reason: str, code: int | None) -> int:
        gone = tx.all(self.q.expire, s=sink_sid, cut=cut)
        if not gone:
            return 0
        seqs = self.d.list_([int(g["event_seq"]) for g in gone])
        events = {int(r["seq"]): r for r in tx.all(self.q.expired_events, seqs=seqs)}
        tx.many(
            self.q.insert_dead,
            [
                {
                    "a": g["account_sid"],
                    "s": g["sink_sid"],
                    "q": g["event_seq"],
                    "eid": events[int(g["event_seq"])]["id"],
                    "t": events[int(g["event_seq"])]["type"],
                    "n": g["attempts"],
                    "c": g["last_code"] or code,
                    "e": f"{g['last_error']} ({reason})" if g["last_error"] else reason,
                    "now": now_ms,
                }
                for g in gone
                if int(g["event_seq"]) in events
            ],
        )
        return len(gone)

    def _expire_log(self, tx: Tx, sink_sid: str, cut: int, now_ms: int, reason: str, code: int | None) -> int:
        cur = tx.one(self.q.cursor, s=sink_sid)
        if cur is None:
            return 0
        account, pos, head = cur["account_sid"], int(cur["position"]), int(cur["head"] or 0)
        types = self._types(tx, sink_sid)
        n = 0
        while True:
            rows, to = self._next_rows(tx, account, types, pos, head, EXPIRE_STEP)
            young = next((i for i, r in enumerate(rows) if r[RECEIVED_AT] >= cut), None)
            old = rows if young is None else rows[:young]  # the log is in arrival order
            if old:
                tx.many(self.q.insert_dead, [{"a": account, "s": sink_sid, "q": r[SEQ], "eid": r[ID],
                                              "t": r[TYPE], "n": 0, "c": code, "e": reason, "now": now_ms}
                                             for r in old])  # fmt: skip
                n += len(old)
            # past what expired (and what was never the sink's); up to the first event still in its window
            pos = to if young is None else old[-1][SEQ] if old else pos
            tx.run(self.q.advance_cursor, s=sink_sid, to=pos)
            if young is not None or pos >= head:
                return n

    async def extend_lease(self, ids: Sequence[int], lease: str, until_ms: int) -> int:
        """Push the lease on these deliveries to ``until_ms`` while they are still ``lease``'s
        (a send that outlasts the lease must not let another worker take them); how many were."""
        params = {"until": until_ms, "lease": lease, "ids": self.d.list_(list(ids))}

        def go(tx: Tx) -> int:
            return tx.run(self.q.extend_lease, **params) + tx.run(self.q.extend_batch, until=until_ms, lease=lease)

        return await self.db.run(go, write=True)

    async def release_leases(self, worker: str | None = None) -> int:
        """Make leased deliveries and batches due now: every one (SQLite start-up, before any deliverer runs),
        or those of the worker whose leases start with ``worker`` (a delivery process that died)."""
        if worker is None:
            return await self.db.run(
                lambda tx: tx.run(self.q.release_leases) + tx.run(self.q.release_batches), write=True
            )
        return await self.db.run(
            lambda tx: tx.run(self.q.release_worker_leases, w=worker)
            + tx.run(self.q.release_worker_batches, w=worker),
            write=True,
        )

    async def next_due(self, sink_sid: str) -> int | None:
        """When the sink's next delivery falls due (epoch ms): a retry row's due time, a batch's lease
        expiry, or the arrival of the next event its cursor has to read; None when nothing is left (what
        waits for a sink to be done asks this; the dispatcher's idle worker has its lease's answer)."""

        def go(tx: Tx) -> int | None:
            due = [r["d"] for r in [tx.one(self.q.next_batch_due, s=sink_sid)] if r]
            cur = tx.one(self.q.cursor_position, s=sink_sid)
            if cur is not None:  # the sink's next unread event in the log fell due when it arrived
                types = self._types(tx, sink_sid)
                upto = int(cur["head"] or 0)
                first, _ = self._next_rows(tx, cur["account_sid"], types, int(cur["position"]), upto, 1)
                due += [first[0][RECEIVED_AT]] if first else []
            return min((int(d) for d in due if d is not None), default=None)

        return await self.db.run(go)

    async def backlog(self) -> tuple[int, int, int | None]:
        """(deliveries waiting, of them already tried, the oldest one's creation in epoch ms): metrics.
        What waits in the log is counted from each cursor to its account's head (see log_backlog)."""

        def go(tx: Tx) -> tuple[int, int, int | None]:
            r = tx.one(self.q.backlog)
            assert r is not None
            depth, oldest = int(r["depth"]), r["oldest"]
            for c in tx.all(self.q.log_backlog):
                behind = max(0, int(c["behind"]))
                if behind and behind <= EXACT_BACKLOG:  # counted exactly: the sink's types only
                    types = self._types(tx, c["sink_sid"])
                    pos, head = int(c["position"]), int(c["head"])
                    rows, _ = self._next_rows(tx, c["account_sid"], types, pos, head, behind)
                    behind = len(rows)
                    first = rows[0][RECEIVED_AT] if rows else None
                else:  # a long backlog: the distance to the head stands for it (an upper bound), by index
                    first = c["oldest"]
                depth += behind
                if first is not None and (oldest is None or int(first) < int(oldest)):
                    oldest = first
            return depth, int(r["retrying"]), int(oldest) if oldest is not None else None

        return await self.db.run(go)

    async def sinks(self) -> list[SinkRow]:
        """Sinks with a subscription or with pending deliveries."""
        return [sink_row(r) for r in await self.db.run(lambda tx: tx.all(self.q.delivery_sinks))]

    async def subscribed_versions(self) -> dict[str, dict[str, int]]:
        """sink SID -> (type -> schema_version) of every sink's subscriptions, in one query."""
        out: dict[str, dict[str, int]] = {}
        for r in await self.db.run(lambda tx: tx.all(self.q.subscribed_versions)):
            out.setdefault(r["sink_sid"], {})[r["type"]] = int(r["schema_version"])
        return out

    async def replay_dead_letters(
        self, account_sid: str, sink_sid: str | None, event_ids: Sequence[str] | None, now_ms: int
    ) -> tuple[int, list[str]]:
        """Re-enqueue dead letters (all of a sink's, or those events); returns (count, sinks)."""
        where, params = conditions(("account_sid = :a", "a", account_sid), ("sink_sid = :s", "s", sink_sid))
        if event_ids is not None:
            where.append(self.d.in_("event_id", "ids"))
            params["ids"] = self.d.list_(list(event_ids))
        select = f"{self.q.select_dead_letters} WHERE {' AND '.join(where)}"

        def go(tx: Tx) -> tuple[int, list[str]]:
            rows = tx.all(select, **params)
            tx.many(self.q.insert_delivery, [{"s": r["sink_sid"], "a": r["account_sid"], "q": r["event_seq"],
                                              "now": now_ms} for r in rows])  # fmt: skip
            tx.many(self.q.delete_dead_letter, [{"id": r["id"]} for r in rows])
            sinks = sorted({r["sink_sid"] for r in rows})
            self.d.notify(tx, sinks)
            return len(rows), sinks

        return await self.db.run(go, write=True)

    async def replay_events(
        self,
        account_sid: str,
        sink_sid: str,
        event_ids: Sequence[str] | None,
        since_ms: int | None,
        until_ms: int | None,
        now_ms: int,
    ) -> int:
        """Re-enqueue stored events for a sink: by id, or those received in a
        time range whose type the sink's subscription includes."""
        where = ["e.account_sid = :a"]
        params: dict[str, Any] = {"a": account_sid, "s": sink_sid, "now": now_ms}
        if event_ids is not None:
            where.append(self.d.in_("e.id", "ids"))
            params["ids"] = self.d.list_(list(event_ids))
        else:
            where.append("e.type IN (SELECT se.type FROM subscribed_events se JOIN subscriptions x"
                         " ON x.sid = se.subscription_sid WHERE x.sink_sid = :s)")  # fmt: skip
        more, bounds = conditions(
            ("e.received_at >= :since", "since", since_ms), ("e.received_at < :until", "until", until_ms)
        )
        where += more
        params.update(bounds)
        insert = f"{self.q.replay_events} WHERE {' AND '.join(where)}"

        def go(tx: Tx) -> int:
            n = tx.run(insert, **params)
            self.d.notify(tx, [sink_sid])
            return n

        return await self.db.run(go, write=True)


EXACT_BACKLOG = 10_000  # a cursor this close to its head has its backlog counted exactly (metrics)
EXPIRE_STEP = 5000  # log events dead-lettered per statement batch when a down sink's window passes
MIN_SPAN = 2048  # seqs one read of the log covers at least (see _next_rows)
# a row of the log as deliveries.sql's log_after selects it (Tx.rows: a tuple in the SELECT's order)
SEQ, ID, TYPE, SCHEMA_VERSION, PAYLOAD, PACKED, RECEIVED_AT = range(7)


def _from_log(
    rows: list[tuple[Any, ...]], types: dict[str, int], sink_sid: str, account_sid: str, lease: str, batch: int
) -> list[LeasedDelivery]:
    """A batch's events as leased deliveries (not yet tried; their window started at their arrival)."""
    return [
        LeasedDelivery(0, sink_sid, account_sid, seq, 0, at, eid, etype, version, payload, lease, batch, packed)
        for seq, eid, etype, version, payload, packed, at in rows
        if seq > types[etype]
    ]


def _log_params(g: LogEntry) -> dict[str, Any]:
    return {"a": g.account_sid, "s": g.sink_sid, "at": g.at, "o": g.outcome, "n": len(g.event_ids),
            "ids": orjson.dumps(g.event_ids).decode(), "att": g.attempt, "c": g.code, "h": g.http_status,
            "d": g.detail}  # fmt: skip
