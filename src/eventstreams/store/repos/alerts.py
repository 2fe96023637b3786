"""Alerts and the per-sink state their cadence is computed from (delivery/alerts.py)."""

from __future__ import annotations

from ...ids import new_sid
from ..db import Database, Tx, asdict, conditions, keyset
from ..records import AlertRow, ErrorReport, Page, PageQuery
from . import Repository


class Alerts(Repository):
    area = "alerts"

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        # The cadence is a domain rule (delivery/alerts.py), which imports the store's records: taken
        # here, when a store is built, not when this module is imported.
        from ...delivery import alerts as rule

        self.rule = rule

    def record(self, tx: Tx, err: ErrorReport, now_ms: int, every_ms: int) -> AlertRow | None:
        """Within the caller's transaction: count ``err`` against its sink; the alert it raises, if any."""
        # Create the row if missing, then lock it: two pipelines of one sink (or two workers) may
        # record their first errors at the same moment; they must not both insert (PostgreSQL).
        tx.run(self.q.ensure_state, s=err.sink_sid, a=err.account_sid)
        st = tx.one(self.q.get_state, s=err.sink_sid)
        assert st is not None
        before = self.rule.AlertState(**{k: int(v) for k, v in st.items()})
        after, fire = self.rule.next_alert_state(before, err.count, now_ms, every_ms)
        tx.run(self.q.put_state, s=err.sink_sid, t=after.total_errors, e=after.errors_since_alert,
               l=after.last_alert_at, n=after.next_threshold)  # fmt: skip
        if not fire:
            return None
        row = self.rule.alert_for(err, before.errors_since_alert + err.count, after.total_errors, now_ms, new_sid("NO"))
        tx.run(self.q.insert_alert, **asdict(row))
        return row

    async def list(
        self,
        account_sid: str,
        q: PageQuery,
        log_level: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> Page:
        """Alerts in creation order; ``start_ms`` inclusive, ``end_ms`` exclusive."""
        where, params = conditions(
            ("account_sid = :a", "a", account_sid),
            ("log_level = :lvl", "lvl", log_level),
            ("created_at >= :t0", "t0", start_ms),
            ("created_at < :t1", "t1", end_ms),
        )

        def go(tx: Tx) -> Page:
            rows, more = keyset(tx, self.q.select_alerts, where, params, ["created_at", "sid"], q)
            return Page([AlertRow(**r) for r in rows], more)

        return await self.db.run(go)

    async def get(self, account_sid: str, sid: str) -> AlertRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.get_alert, s=sid, a=account_sid))
        return AlertRow(**r) if r else None
