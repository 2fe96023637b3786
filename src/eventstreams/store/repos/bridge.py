"""Twilio callback bridge credentials (rows: account_sid, twilio_account_sid,
token_sealed, date_created, date_updated)."""

from __future__ import annotations

from ..db import Tx
from . import Repository


class BridgeCredentials(Repository):
    area = "bridge"

    async def put(self, account_sid: str, twilio_account_sid: str, token_sealed: str, now: str) -> bool:
        """Create or replace; True when created."""
        params = {"a": account_sid, "t": twilio_account_sid, "s": token_sealed, "now": now}

        def go(tx: Tx) -> bool:
            if tx.run(self.q.update, **params):
                return False
            tx.run(self.q.insert, **params)
            return True

        return await self.db.run(go, write=True)

    async def get(self, account_sid: str) -> dict[str, str] | None:
        r = await self.db.run(lambda tx: tx.one(self.q.get, a=account_sid))
        return {k: str(v) for k, v in r.items()} if r else None

    async def delete(self, account_sid: str) -> bool:
        return await self.db.run(lambda tx: tx.run(self.q.delete, a=account_sid), write=True) > 0
