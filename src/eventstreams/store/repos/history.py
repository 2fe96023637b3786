"""What became of deliveries: dead letters and the delivery log (written by
``Deliveries.complete``/``expire``; read here, a page at a time)."""

from __future__ import annotations

from typing import Any

from ..db import Tx, conditions, keyset
from ..records import DeadLetterRow, LogRow, Page, PageQuery
from . import Repository


class _BySink(Repository):
    area = "history"
    select = ""
    row: Any = None

    async def list(self, account_sid: str, sink_sid: str | None, q: PageQuery) -> Page:
        where, params = conditions(("account_sid = :a", "a", account_sid), ("sink_sid = :s", "s", sink_sid))

        def go(tx: Tx) -> Page:
            rows, more = keyset(tx, self.q[self.select], where, params, ["id"], q)
            return Page([self.row(**r) for r in rows], more)

        return await self.db.run(go)


class DeadLetters(_BySink):
    select = "select_dead_letters"
    row = DeadLetterRow


class DeliveryLog(_BySink):
    select = "select_log"
    row = LogRow
