"""eventstreams inside an application: publish (and optionally deliver)
without an HTTP hop, against the same store a server uses."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .config import Settings
from .delivery.publish import PublishResult

if TYPE_CHECKING:
    from .runtime import Runtime


class EventStreams:
    """An open store plus the publisher (and, with ``deliver=True``, the dispatcher)."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    @classmethod
    async def open(cls, settings: Settings | None = None, deliver: bool = False) -> EventStreams:
        from .runtime import build_runtime

        rt = await build_runtime(settings or Settings.from_env())
        if deliver:
            await rt.start_delivery()
        return cls(rt)

    async def publish(self, account_sid: str, events: Sequence[dict[str, Any]]) -> PublishResult:
        """Validate and store CloudEvents for ``account_sid``; same rules as POST /v1/Events."""
        from .errors import TwilioError

        try:
            p = await self._rt.accounts.principal_of(account_sid)
        except TwilioError:
            raise LookupError(f"no account {account_sid}") from None
        result: PublishResult = await self._rt.publisher.publish(p.account.sid, p.catalog_owner, list(events))
        return result

    async def close(self) -> None:
        await self._rt.close()

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
