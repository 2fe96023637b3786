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

    def _fan_out(self, tx: Tx, account_sid: str, seqs: list[int], now_ms: int, types: list[str]) -> list[str]:
        if not seqs:
            return []
        tx.run(self.q.fan_out, now=now_ms, seqs=self.d.list_(seqs))
        rows = tx.all(self.q.fanned_sinks, a=account_sid, types=self.d.list_(types))
        return [r["sink_sid"] for r in rows]

    async def publish(
        self, account_sid: str, events: Sequence[NewEvent], now_ms: int, dedupe_window_ms: int
    ) -> PublishOutcome:
        """Store new events (dropping ids seen within the dedupe window) and one
        delivery per subscribed sink, in one transaction."""
        return await self.db.run(lambda tx: self.publish_tx(tx, account_sid, events, now_ms, dedupe_window_ms),
                                 write=True)  # fmt: skip

    def publish_tx(
        self, tx: Tx, account_sid: str, events: Sequence[NewEvent], now_ms: int, dedupe_window_ms: int | None
    ) -> PublishOutcome:
        """:meth:`publish` inside a caller's transaction (the tracking API stores its messages, their
        profiles and their events in one). ``dedupe_window_ms`` None: the caller has already made
        the ids unique (the tracking API's messageId claim), so they are not claimed again."""
        if dedupe_window_ms is None:
            new, dup = list(events), []
        else:
            fresh = self.d.claim_ids(tx, account_sid, [e.id for e in events], now_ms, now_ms - dedupe_window_ms)
            new = [e for e in events if e.id in fresh]
            dup = [e.id for e in events if e.id not in fresh]
        seqs = self.d.insert_events(tx, account_sid, new, now_ms)
        sinks = self._fan_out(tx, account_sid, seqs, now_ms, sorted({e.type for e in new}))
        self.d.notify(tx, sinks)
        return PublishOutcome([e.id for e in new], dup)

    async def enqueue_for_sink(self, account_sid: str, sink_sid: str, events: Sequence[NewEvent], now_ms: int) -> int:
        """Store events for one sink only (sink test events), no dedupe."""

        def go(tx: Tx) -> int:
            seqs = self.d.insert_events(tx, account_sid, events, now_ms)
            tx.many(self.q.insert_delivery, [{"s": sink_sid, "a": account_sid, "q": q, "now": now_ms} for q in seqs])
            self.d.notify(tx, [sink_sid])
            return len(seqs)

        return await self.db.run(go, write=True)

    async def lease(self, sink_sid: str, now_ms: int, limit: int, lease: str, lease_ms: int) -> list[LeasedDelivery]:
        def go(tx: Tx) -> list[LeasedDelivery]:
            rows = tx.all(self.q.lease, until=now_ms + lease_ms, lease=lease, s=sink_sid, now=now_ms, n=limit)
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
                    )
                )
            return out

        return await self.db.run(go, write=True)

    async def complete(
        self,
        results: Sequence[DeliveryResult],
        logs: Sequence[LogEntry],
        errors: Sequence[ErrorReport],
        now_ms: int,
        alert_every_ms: int,
    ) -> list[AlertRow]:
        """Apply outcomes (only where the lease is still ours), write logs,
        update alert grouping; return alerts raised."""
        gone = [r for r in results if r.kind in ("delivered", "skipped")]
        retry = [r for r in results if r.kind == "retry"]
        dead = [r for r in results if r.kind == "dead"]

        def go(tx: Tx) -> list[AlertRow]:
            by_lease: dict[str, list[int]] = {}
            for r in gone:
                by_lease.setdefault(r.delivery.lease, []).append(r.delivery.id)
            for lease, ids in by_lease.items():  # one statement per lease, not one per row
                tx.run(self.q.delete_leased, lease=lease, ids=self.d.list_(ids))
            if retry:
                tx.many(self.q.retry, [{"due": r.due_at, "c": r.code, "e": r.error, "id": r.delivery.id,
                                        "lease": r.delivery.lease} for r in retry])  # fmt: skip
            if dead:
                rows = [{"id": r.delivery.id, "lease": r.delivery.lease, "eid": r.delivery.event_id,
                         "t": r.delivery.type, "c": r.code, "e": r.error, "now": now_ms} for r in dead]  # fmt: skip
                tx.many(self.q.dead, rows)
                tx.many(self.q.delete_one_leased, rows)
            if logs:
                tx.many(self.q.insert_log, [_log_params(g) for g in logs])
            return [a for err in errors if (a := self.alerts.record(tx, err, now_ms, alert_every_ms)) is not None]

        return await self.db.run(go, write=True)

    async def expire(
        self, sink_sid: str, window_start_before: int, now_ms: int, reason: str, code: int | None = None
    ) -> int:
        """Dead-letter the sink's unleased deliveries whose retry window has
        passed without an attempt (a sink paused as down never tried them);
        those never tried get ``code``, the error that kept the sink down."""

        def go(tx: Tx) -> int:
            gone = tx.all(self.q.expire, s=sink_sid, cut=window_start_before)
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

        return await self.db.run(go, write=True)

    async def extend_lease(self, ids: Sequence[int], lease: str, until_ms: int) -> int:
        """Push the lease on these deliveries to ``until_ms`` while they are still ``lease``'s
        (a send that outlasts the lease must not let another worker take them); how many were."""
        params = {"until": until_ms, "lease": lease, "ids": self.d.list_(list(ids))}
        return await self.db.run(lambda tx: tx.run(self.q.extend_lease, **params), write=True)

    async def release_leases(self) -> int:
        """Make every leased delivery due now (single-process SQLite start-up)."""
        return await self.db.run(lambda tx: tx.run(self.q.release_leases), write=True)

    async def next_due(self, sink_sid: str) -> int | None:
        r = await self.db.run(lambda tx: tx.one(self.q.next_due, s=sink_sid))
        return int(r["d"]) if r and r["d"] is not None else None

    async def backlog(self) -> tuple[int, int, int | None]:
        """(deliveries waiting, of them already tried, the oldest one's creation in epoch ms): metrics."""
        r = await self.db.run(lambda tx: tx.one(self.q.backlog))
        assert r is not None
        return int(r["depth"]), int(r["retrying"]), int(r["oldest"]) if r["oldest"] is not None else None

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


def _log_params(g: LogEntry) -> dict[str, Any]:
    return {"a": g.account_sid, "s": g.sink_sid, "at": g.at, "o": g.outcome, "n": len(g.event_ids),
            "ids": orjson.dumps(g.event_ids).decode(), "att": g.attempt, "c": g.code, "h": g.http_status,
            "d": g.detail}  # fmt: skip
