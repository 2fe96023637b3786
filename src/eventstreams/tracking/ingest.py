"""Ingest: what happens to tracking messages once they are checked, in one transaction.

The tracking API (and eventstreams' own producers, such as the SMS destination's status
callbacks) hand over checked messages; one transaction then stores them (rejected ones with their
reason, for the source's debugger), resolves each accepted one into its profile, and publishes it
as an Event Streams event of type ``com.segment.tracking.<type>`` (data: the stored message), so
Event Streams sinks and destinations subscribe to Segment traffic like any other. Nothing is
answered before that commit; a message is never stored without its profile and its event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from .. import clock
from ..catalog import schema_url
from ..catalog.runtime import Catalog
from ..config import Settings
from ..ids import new_sid
from ..store.base import Store
from ..store.db import Tx
from ..store.errors import Conflict
from ..store.packing import Packer
from ..store.records import NewEvent, TrackingMessageRow, TrackingSourceRow
from . import rules

#: ``resolve_tx(tx, account_sid, [(seq, message), ...])``: the profiles hook, inside the transaction
Resolver = Callable[[Tx, str, Sequence[tuple[int, dict[str, Any]]]], None]

EVENT_TYPE_PREFIX = "com.segment.tracking."
SCHEMA_IDS = {kind: f"Segment.{kind.capitalize()}" for kind in rules.TYPES}
#: the source eventstreams' own messages are stored under, one per account, created on first use
INTERNAL_SOURCE = "eventstreams"


def event_type(kind: str) -> str:
    return EVENT_TYPE_PREFIX + kind


class Ingest:
    def __init__(self, store: Store, catalog: Catalog, settings: Settings, resolver: Resolver | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.settings = settings
        self.resolver = resolver
        self.packer = Packer(settings.pack_events)
        self._versions: dict[str, int] = {}
        self.on_accepted: Callable[[int], None] | None = None  # told how many messages each receive stored

    async def receive(
        self, source: TrackingSourceRow, checked: Sequence[rules.Checked], received: datetime
    ) -> tuple[list[TrackingMessageRow], list[TrackingMessageRow]]:
        """Store ``checked`` (one request's messages) for ``source``: (all rows, the ones stored —
        an accepted message whose messageId was seen within the dedupe window is dropped)."""
        stamp = rules.iso(received)
        rows = [
            TrackingMessageRow(source.account_sid, source.sid, _text(c.message_id), _opt_text(c.type),
                               "accepted" if c.reason is None else "rejected", c.reason, stamp,
                               orjson.dumps(c.message).decode().replace("\\u0000", "\\ufffd"))
            for c in checked
        ]  # fmt: skip
        accepted: dict[str, dict[str, Any]] = {}
        for c in checked:
            if c.reason is None:  # the first of a repeated messageId is the one stored
                accepted.setdefault(c.message_id, c.message)
        versions = {k: await self._version(k) for k in {c.type for c in checked if c.reason is None and c.type}}
        now = received.timestamp()

        def then(tx: Tx, stored: list[TrackingMessageRow]) -> None:
            fresh = [(r.seq, accepted[r.message_id]) for r in stored if r.status == "accepted" and r.seq is not None]
            if not fresh:
                return
            if self.resolver is not None:
                self.resolver(tx, source.account_sid, fresh)
            events = [self._event(source.sid, m, versions[m["type"]]) for _, m in fresh]
            # the messageId claim above already dedupes them: no second claim per event
            self.store.deliveries.publish_tx(tx, source.account_sid, events, int(now * 1000), None)

        stored = await self.store.tracking.receive(rows, now, self.settings.tracking_dedupe_s, then)
        if self.on_accepted is not None:
            self.on_accepted(sum(1 for r in stored if r.status == "accepted"))
        return rows, stored

    async def record(self, account_sid: str, messages: Sequence[dict[str, Any]]) -> list[TrackingMessageRow]:
        """Messages eventstreams itself produces (e.g. "SMS Delivered" from a status callback),
        through Segment's rules and the same transaction, under the account's internal source.
        Returns the rows stored (a rejected one too, with its reason)."""
        received = datetime.fromtimestamp(time.time(), UTC)
        source = await self.internal_source(account_sid)
        checked = [rules.check(m, received) for m in messages]
        _, stored = await self.receive(source, checked, received)
        return stored

    async def internal_source(self, account_sid: str) -> TrackingSourceRow:
        """The account's ``eventstreams`` source (no usable write key: its key hash matches no key)."""
        row = await self.store.tracking.source_by_name(account_sid, INTERNAL_SOURCE)
        if row is not None:
            return row
        stamp = clock.iso(clock.now())
        row = TrackingSourceRow(new_sid("TS"), account_sid, INTERNAL_SOURCE, f"internal:{new_sid('TS')}", "", True,
                                1, stamp, stamp)  # fmt: skip
        try:
            await self.store.tracking.create_source(row)
        except Conflict:  # created by a racing request (or a user named a source so): use that one
            found = await self.store.tracking.source_by_name(account_sid, INTERNAL_SOURCE)
            assert found is not None
            return found
        return row

    async def _version(self, kind: str) -> int:
        version = self._versions.get(kind)
        if version is None:
            version = await self.catalog.latest_version("", SCHEMA_IDS[kind]) or 1
            self._versions[kind] = version
        return version

    def _event(self, source_sid: str, message: dict[str, Any], version: int) -> NewEvent:
        kind = message["type"]
        subject = message.get("userId")
        if subject is None or subject == "":
            subject = message.get("anonymousId")
        event: dict[str, Any] = {
            "specversion": "1.0",
            # messageIds are unique per account for the dedupe window; the source keeps two
            # sources' ids apart, and the prefix keeps them apart from events published directly
            "id": f"{source_sid}.{message['messageId']}",
            "type": event_type(kind),
            "source": f"/v1/Sources/{source_sid}",
            "time": message["timestamp"],
            "datacontenttype": "application/json",
            "dataschema": schema_url(self.settings.public_base_url(), True, SCHEMA_IDS[kind], version),
            "data": message,
        }
        if subject is not None:
            event["subject"] = str(subject)
        payload = orjson.dumps(event).replace(b"\\u0000", b"\\ufffd")
        return self.packer.event(event["id"], event["type"], version, message["timestamp"], payload)


def _text(value: str) -> str:
    """What a message carried, storable: NUL (which PostgreSQL text refuses) becomes U+FFFD."""
    return value.replace("\x00", "\ufffd")


def _opt_text(value: str | None) -> str | None:
    return None if value is None else _text(value)
