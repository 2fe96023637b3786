"""Sinks (with their test events), subscriptions and subscribed event types."""

from __future__ import annotations

from collections.abc import Sequence

from ..db import Row, Tx, asdict, conditions, keyset
from ..errors import Conflict, LimitReached
from ..records import Page, PageQuery, SinkRow, SubscribedEventRow, SubscriptionRow
from . import Repository


def sink_row(r: Row) -> SinkRow:
    r["in_use"] = bool(r.get("in_use", False))
    return SinkRow(**r)


class Sinks(Repository):
    area = "sinks"

    async def create(self, row: SinkRow, limit: int) -> None:
        def go(tx: Tx) -> None:
            self.d.lock_account(tx, row.account_sid)
            n = tx.one(self.q.count_sinks, a=row.account_sid)
            if n is not None and int(n["n"]) >= limit:
                raise LimitReached(f"Account reached the max sink limit ({limit})")
            d = asdict(row)
            d.pop("in_use")
            tx.run(self.q.insert_sink, **d)

        await self.db.run(go, write=True)

    async def get(self, account_sid: str, sid: str) -> SinkRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.get_sink, sid=sid, a=account_sid))
        return sink_row(r) if r else None

    async def list(self, account_sid: str, in_use: bool | None, status: str | None, q: PageQuery) -> Page:
        where, params = conditions(("s.account_sid = :a", "a", account_sid), ("s.status = :st", "st", status))
        if in_use is not None:
            where.append(("" if in_use else "NOT ") + "EXISTS (SELECT 1 FROM subscriptions x WHERE x.sink_sid = s.sid)")

        def go(tx: Tx) -> Page:
            rows, more = keyset(tx, self.q.select_sinks, where, params, ["s.date_created", "s.sid"], q)
            return Page([sink_row(r) for r in rows], more)

        return await self.db.run(go)

    async def update(self, account_sid: str, sid: str, description: str, now: str) -> SinkRow | None:
        def go(tx: Tx) -> SinkRow | None:
            tx.run(self.q.update_sink, d=description, now=now, sid=sid, a=account_sid)
            r = tx.one(self.q.get_sink, sid=sid, a=account_sid)
            return sink_row(r) if r else None

        return await self.db.run(go, write=True)

    async def delete(self, account_sid: str, sid: str) -> bool:
        """Delete unless a subscription uses it (raises Conflict)."""

        def go(tx: Tx) -> bool:
            self.d.lock_account(tx, account_sid)
            if tx.one(self.q.sink_in_use, sid=sid, a=account_sid):
                raise Conflict("Sink still in use")
            tx.run(self.q.delete_sink_tests, sid=sid)
            gone = tx.run(self.q.delete_sink, sid=sid, a=account_sid) > 0
            if gone:
                tx.run(self.q.delete_cursor, sid=sid)
                tx.run(self.q.delete_batches, sid=sid)
            return gone

        return await self.db.run(go, write=True)

    async def record_test(self, sink_sid: str, test_id: str, now: str) -> None:
        await self.db.run(lambda tx: tx.run(self.q.insert_test, t=test_id, s=sink_sid, now=now), write=True)

    async def test_exists(self, sink_sid: str, test_id: str) -> bool:
        return await self.db.run(lambda tx: tx.one(self.q.test_exists, t=test_id, s=sink_sid)) is not None


class Subscriptions(Repository):
    area = "sinks"

    async def create(
        self, row: SubscriptionRow, types: Sequence[SubscribedEventRow], limit: int, one_per_sink: bool
    ) -> None:
        def go(tx: Tx) -> None:
            self.d.lock_account(tx, row.account_sid)
            n = tx.one(self.q.count_subscriptions, a=row.account_sid)
            if n is not None and int(n["n"]) >= limit:
                raise LimitReached(f"Account reached the max subscription limit ({limit})")
            subscribed = tx.one(self.q.sink_subscribed, s=row.sink_sid) is not None
            if one_per_sink and subscribed:
                raise Conflict(f"Sink with SID {row.sink_sid} is in use")
            tx.run(self.q.insert_subscription, **asdict(row))
            tx.many(self.q.insert_subscribed, [asdict(t) for t in types])
            tx.run(self.q.open_cursor, s=row.sink_sid, a=row.account_sid)
            if not subscribed:
                tx.run(self.q.reset_cursor, s=row.sink_sid)

        await self.db.run(go, write=True)

    async def get(self, account_sid: str, sid: str) -> SubscriptionRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.get_subscription, sid=sid, a=account_sid))
        return SubscriptionRow(**r) if r else None

    async def list(self, account_sid: str, sink_sid: str | None, q: PageQuery) -> Page:
        where, params = conditions(("account_sid = :a", "a", account_sid), ("sink_sid = :s", "s", sink_sid))

        def go(tx: Tx) -> Page:
            rows, more = keyset(tx, self.q.select_subscriptions, where, params, ["date_created", "sid"], q)
            return Page([SubscriptionRow(**r) for r in rows], more)

        return await self.db.run(go)

    async def update(self, account_sid: str, sid: str, description: str | None, now: str) -> SubscriptionRow | None:
        def go(tx: Tx) -> SubscriptionRow | None:
            if description is not None:
                tx.run(self.q.update_subscription, d=description, now=now, sid=sid, a=account_sid)
            r = tx.one(self.q.get_subscription, sid=sid, a=account_sid)
            return SubscriptionRow(**r) if r else None

        return await self.db.run(go, write=True)

    async def delete(self, account_sid: str, sid: str) -> bool:
        def go(tx: Tx) -> bool:
            tx.run(self.q.delete_subscription_types, sid=sid, a=account_sid)
            return tx.run(self.q.delete_subscription, sid=sid, a=account_sid) > 0

        return await self.db.run(go, write=True)

    # -- subscribed event types
    async def list_types(self, subscription_sid: str, q: PageQuery) -> Page:
        def go(tx: Tx) -> Page:
            where = ["subscription_sid = :s"]
            rows, more = keyset(tx, self.q.select_subscribed, where, {"s": subscription_sid}, ["type"], q)
            return Page([SubscribedEventRow(**r) for r in rows], more)

        return await self.db.run(go)

    async def get_type(self, subscription_sid: str, type_: str) -> SubscribedEventRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.get_subscribed, s=subscription_sid, t=type_))
        return SubscribedEventRow(**r) if r else None

    async def add_type(self, row: SubscribedEventRow, now: str) -> None:
        """Raises Conflict when the type is already in the subscription (also when a
        concurrent request adds it first: the primary key's violation is a Conflict too)."""

        def go(tx: Tx) -> None:
            if tx.one(self.q.get_subscribed, s=row.subscription_sid, t=row.type):
                raise Conflict(f"Type {row.type} is already in the subscription")
            tx.run(self.q.insert_subscribed, **asdict(row))
            tx.run(self.q.touch_subscription, now=now, s=row.subscription_sid)

        await self.db.run(go, write=True)

    async def update_type(self, subscription_sid: str, type_: str, version: int, now: str) -> bool:
        def go(tx: Tx) -> bool:
            n = tx.run(self.q.update_subscribed, v=version, s=subscription_sid, t=type_)
            tx.run(self.q.touch_subscription, now=now, s=subscription_sid)
            return n > 0

        return await self.db.run(go, write=True)

    async def delete_type(self, subscription_sid: str, type_: str, now: str) -> bool:
        """Refuses (Conflict) to remove the last type of a subscription."""

        def go(tx: Tx) -> bool:
            n = tx.one(self.q.count_subscribed, s=subscription_sid)
            if not tx.one(self.q.get_subscribed, s=subscription_sid, t=type_):
                return False
            if n is not None and int(n["n"]) <= 1:
                raise Conflict("A subscription keeps at least one event type; delete the subscription instead")
            tx.run(self.q.delete_subscribed, s=subscription_sid, t=type_)
            tx.run(self.q.touch_subscription, now=now, s=subscription_sid)
            return True

        return await self.db.run(go, write=True)
