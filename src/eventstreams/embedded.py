"""eventstreams inside an application: publish (and optionally deliver)
without an HTTP hop, against the same store a server uses."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from .config import Settings
from .delivery.publish import PublishResult


class EventStreams:
    """An open store plus the publisher (and, with ``deliver=True``, the dispatcher)."""

    def __init__(self, services: Any) -> None:
        self._svc = services

    @classmethod
    async def open(cls, settings: Settings | None = None, deliver: bool = False) -> EventStreams:
        from .api.app import build_services, start_delivery

        svc = await build_services(settings or Settings.from_env())
        if deliver:
            await start_delivery(svc)
        return cls(svc)

    async def publish(self, account_sid: str, events: Sequence[dict[str, Any]]) -> PublishResult:
        """Validate and store CloudEvents for ``account_sid``; same rules as POST /v1/Events."""
        account = await self._svc.store.accounts.get(account_sid)
        if account is None:
            raise LookupError(f"no account {account_sid}")
        owner = account.parent_sid or account.sid
        result: PublishResult = await self._svc.publisher.publish(account.sid, owner, list(events))
        return result

    async def close(self) -> None:
        if self._svc.delivery is not None:
            await self._svc.delivery.stop()
        await self._svc.store.close()

    async def __aenter__(self) -> EventStreams:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def publish(
    events: dict[str, Any] | Sequence[dict[str, Any]], *, account_sid: str, settings: Settings | None = None
) -> PublishResult:
    """Publish one event or a batch, synchronously (opens and closes the store).

    Delivery happens in the running ``eventstreams serve``/``worker`` processes.
    """
    batch = [events] if isinstance(events, dict) else list(events)

    async def go() -> PublishResult:
        es = await EventStreams.open(settings)
        try:
            return await es.publish(account_sid, batch)
        finally:
            await es.close()

    return asyncio.run(go())
