"""The Events v1 control plane: event types, schemas, sinks, subscriptions.

Rules and Twilio error codes live here; HTTP parsing lives in api/ and
SQL in store/.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .. import clock
from ..catalog.schemas import SchemaRejected, check_custom, compile_custom
from ..config import Settings
from ..crypto import Box, new_standard_webhook_secret
from ..errors import (
    BAD_PARAMETER,
    LIMIT_REACHED,
    SINK_CREATE_FAILED,
    SINK_IN_USE,
    SINK_NOT_FOUND,
    SINK_SID_INVALID,
    SUBSCRIPTION_CREATE_FAILED,
    SUBSCRIPTION_NOT_FOUND,
    SUBSCRIPTION_SINK_NOT_ACTIVE,
    TEST_ID_INVALID,
    TEST_NOT_FOUND,
    TYPE_LIST_EMPTY,
    TYPE_NOT_FOUND,
    TwilioError,
    bad_request,
    limit_reached,
    not_found,
)
from ..ids import new_sid, normalize_sid
from ..sinks import registry as sink_types
from ..sinks.spec import ConfigOptions
from ..store.base import Store
from ..store.errors import Conflict, LimitReached, NotFound
from ..store.records import (
    EventTypeRow,
    Page,
    PageQuery,
    SchemaVersionRow,
    SinkRow,
    SubscribedEventRow,
    SubscriptionRow,
)
from .accounts import Principal

MAX_SINKS = 100
MAX_SUBSCRIPTIONS = 100
MAX_DESCRIPTION = 1024
# Per-account catalogue limits (docs/api.md): keep one tenant from growing the store and caches without end.
MAX_TYPES = 1000
MAX_SCHEMAS = 1000
MAX_SCHEMA_VERSIONS = 100
COMPILE_TIMEOUT = 10.0  # seconds
SINK_STATUSES = ("initialized", "validating", "active", "failed")
TYPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
SCHEMA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _check_schema(document: Any) -> None:
    check_custom(document)
    compile_custom(document)


@dataclass(slots=True)
class Sink:
    row: SinkRow
    configuration: dict[str, Any]


def _description(value: str | None, code: int, what: str) -> str:
    if value is None or not value.strip():
        raise TwilioError(code, f"{what} could not be created: Description is required and cannot be empty", 400)
    if len(value) > MAX_DESCRIPTION:
        raise TwilioError(code, f"{what}: Description is longer than {MAX_DESCRIPTION} characters", 400)
    return value


class ControlPlane:
    def __init__(self, store: Store, box: Box, settings: Settings) -> None:
        self.store = store
        self.box = box
        self.settings = settings

    # -- event types and schemas
    async def list_types(self, p: Principal, schema_id: str | None, q: PageQuery) -> Page:
        return await self.store.catalogue.list_types(p.catalog_owner, schema_id, q)

    async def get_type(self, p: Principal, type_: str) -> EventTypeRow:
        row = await self.store.catalogue.get_type(p.catalog_owner, type_)
        if row is None:
            raise not_found(f"Event type {type_} was not found", TYPE_NOT_FOUND)
        return row

    async def get_schema(self, p: Principal, schema_id: str) -> SchemaVersionRow:
        latest = await self.store.catalogue.get_version(p.catalog_owner, schema_id, None)
        if latest is None:
            raise not_found(f"Schema {schema_id} was not found")
        return latest

    async def list_schema_versions(self, p: Principal, schema_id: str, q: PageQuery) -> Page:
        await self.get_schema(p, schema_id)
        return await self.store.catalogue.list_versions(p.catalog_owner, schema_id, q)

    async def get_schema_version(self, p: Principal, schema_id: str, version: int) -> SchemaVersionRow:
        row = await self.store.catalogue.get_version(p.catalog_owner, schema_id, version)
        if row is None:
            raise not_found(f"Schema {schema_id} has no version {version}")
        return row

    async def register_schema_version(self, p: Principal, schema_id: str, document: Any) -> SchemaVersionRow:
        """Operators add versions of their own schemas (never Twilio's)."""
        p.require_catalog_writer()
        if not SCHEMA_ID.match(schema_id):
            raise bad_request("Id must be 1-128 letters, digits, '.', '_' or '-'", BAD_PARAMETER)
        try:
            # Checked and compiled now, so a schema that fetches, stalls or cannot compile is refused here.
            # Off the loop for the pure-Python metaschema check; the caps bound the whole.
            await asyncio.wait_for(asyncio.to_thread(_check_schema, document), COMPILE_TIMEOUT)
        except SchemaRejected as exc:
            raise bad_request(str(exc), BAD_PARAMETER) from None
        except TimeoutError:
            raise bad_request("Schema took too long to compile; simplify it", BAD_PARAMETER) from None
        row = SchemaVersionRow(
            schema_id=schema_id,
            version=0,
            owner_sid=p.catalog_owner,
            document=json.dumps(document, separators=(",", ":")),
            date_created=clock.iso(clock.now()),
        )
        try:
            return await self.store.catalogue.add_version(row, MAX_SCHEMA_VERSIONS, MAX_SCHEMAS)
        except LimitReached as exc:
            if str(exc) == "versions":
                message = f"Schema {schema_id} reached the max number of versions ({MAX_SCHEMA_VERSIONS})"
            else:
                message = f"Account reached the max number of schemas ({MAX_SCHEMAS})"
            raise limit_reached(message) from None
        except Conflict:
            raise TwilioError(BAD_PARAMETER, f"Schema {schema_id} exists and is not yours to version", 409) from None

    async def register_type(
        self, p: Principal, type_: str, schema_id: str, description: str, status: str | None
    ) -> EventTypeRow:
        p.require_catalog_writer()
        if not TYPE_NAME.match(type_):
            raise bad_request("Type must be 1-255 letters, digits, '.', '_' or '-'", BAD_PARAMETER)
        if type_.lower().startswith("com.twilio."):
            raise bad_request("Types under com.twilio. are reserved for Twilio's catalogue", BAD_PARAMETER)
        status = status or "available"
        if status not in ("available", "deprecated", "restricted", "discontinued"):
            raise bad_request("Status must be available, deprecated, restricted or discontinued", BAD_PARAMETER)
        if not description.strip():
            raise bad_request("Description is required", BAD_PARAMETER)
        if await self.store.catalogue.get_version(p.catalog_owner, schema_id, None) is None:
            raise bad_request(f"Schema {schema_id} does not exist; register a version first", BAD_PARAMETER)
        now = clock.iso(clock.now())
        existing = await self.store.catalogue.get_type(p.catalog_owner, type_)
        row = EventTypeRow(
            type=type_,
            schema_id=schema_id,
            owner_sid=p.catalog_owner,
            description=description,
            status=status,
            documentation_url=None,
            segment_compatible=False,
            date_created=existing.date_created if existing else now,
            date_updated=now,
        )
        try:
            await self.store.catalogue.put_type(row, MAX_TYPES)
        except LimitReached:
            raise limit_reached(f"Account reached the max number of event types ({MAX_TYPES})") from None
        except Conflict:
            raise TwilioError(BAD_PARAMETER, f"Event type {type_} already exists and is not yours", 409) from None
        return row

    # -- sinks
    def _sink(self, row: SinkRow) -> Sink:
        return Sink(row, json.loads(self.box.open(row.configuration_sealed)))

    @staticmethod
    def sink_sid(sid: str) -> str:
        canon = normalize_sid("DG", sid)
        if canon is None:
            raise TwilioError(
                SINK_SID_INVALID, f"The sink sid is in an invalid format: {sid!r} (expected DG + 32 hex)", 400
            )
        return canon

    async def create_sink(
        self, p: Principal, description: str | None, sink_type: str | None, configuration: str | None
    ) -> Sink:
        desc = _description(description, SINK_CREATE_FAILED, "Sink")
        if not sink_type:
            raise TwilioError(SINK_CREATE_FAILED, "Sink could not be created: SinkType is required", 400)
        if configuration is None or configuration == "":
            raise TwilioError(SINK_CREATE_FAILED, "Sink could not be created: SinkConfiguration is required", 400)
        try:
            # orjson: refuses lone surrogates and nesting deeper than 1024 (json.loads would recurse)
            raw = orjson.loads(configuration)
        except orjson.JSONDecodeError as exc:
            raise TwilioError(
                SINK_CREATE_FAILED, f"Sink could not be created: SinkConfiguration is not valid JSON ({exc})", 400
            ) from None
        options = ConfigOptions(
            allow_private=self.settings.allow_private_destinations,
            allow_sink_endpoint_url=self.settings.allow_sink_endpoint_url,
        )
        cfg = sink_types.validate(sink_type, raw, options)
        now = clock.iso(clock.now())
        row = SinkRow(
            sid=new_sid("DG"),
            account_sid=p.account.sid,
            description=desc,
            sink_type=sink_type,
            configuration_sealed=self.box.seal(json.dumps(cfg)),
            status="active",  # Twilio's current behaviour: no validation step needed
            signing_secret_sealed=self.box.seal(new_standard_webhook_secret()),
            date_created=now,
            date_updated=now,
        )
        try:
            await self.store.sinks.create(row, MAX_SINKS)
        except LimitReached:
            raise limit_reached(f"Account reached the max sink limit ({MAX_SINKS})") from None
        return Sink(row, cfg)

    async def get_sink(self, p: Principal, sid: str) -> Sink:
        canon = self.sink_sid(sid)
        row = await self.store.sinks.get(p.account.sid, canon)
        if row is None:
            raise not_found(f"Sink could not be found: {sid}", SINK_NOT_FOUND)
        return self._sink(row)

    async def list_sinks(
        self, p: Principal, in_use: bool | None, status: str | None, q: PageQuery
    ) -> tuple[Page, list[Sink]]:
        if status is not None and status not in SINK_STATUSES:
            raise bad_request(f"Status must be one of {', '.join(SINK_STATUSES)}")
        page = await self.store.sinks.list(p.account.sid, in_use, status, q)
        return page, [self._sink(r) for r in page.items]

    async def update_sink(self, p: Principal, sid: str, description: str | None) -> Sink:
        canon = self.sink_sid(sid)
        if description is None or not description.strip():
            raise bad_request("Missing required parameter Description")
        if len(description) > MAX_DESCRIPTION:
            raise bad_request(f"Description is longer than {MAX_DESCRIPTION} characters")
        row = await self.store.sinks.update(p.account.sid, canon, description, clock.iso(clock.now()))
        if row is None:
            raise not_found(f"Sink could not be found: {sid}", SINK_NOT_FOUND)
        return self._sink(row)

    async def delete_sink(self, p: Principal, sid: str) -> None:
        canon = self.sink_sid(sid)
        try:
            deleted = await self.store.sinks.delete(p.account.sid, canon)
        except Conflict:
            raise TwilioError(
                SINK_IN_USE, f"Sink still in use: delete the subscriptions of {canon} first", 409
            ) from None
        if not deleted:
            raise not_found(f"Sink could not be found: {sid}", SINK_NOT_FOUND)

    async def test_sink(self, p: Principal, sid: str) -> tuple[Sink, str]:
        sink = await self.get_sink(p, sid)
        test_id = str(uuid.uuid4())
        await self.store.sinks.record_test(sink.row.sid, test_id, clock.iso(clock.now()))
        return sink, test_id

    async def validate_sink(self, p: Principal, sid: str, test_id: str | None) -> None:
        sink = await self.get_sink(p, sid)
        if test_id is None or test_id == "":
            raise bad_request("Missing required parameter TestId")
        try:
            uuid.UUID(test_id)
        except ValueError:
            raise TwilioError(TEST_ID_INVALID, f"Test ID is invalid: {test_id!r}", 400) from None
        if not await self.store.sinks.test_exists(sink.row.sid, test_id.lower()):
            raise TwilioError(
                TEST_NOT_FOUND, "Test event cannot be found: send the test event (POST .../Test) first", 400
            )

    # -- subscriptions
    @staticmethod
    def subscription_sid(sid: str) -> str:
        canon = normalize_sid("DF", sid)
        if canon is None:
            raise not_found(f"Subscription could not be found: {sid!r} is not DF + 32 hex", SUBSCRIPTION_NOT_FOUND)
        return canon

    async def _resolve_type(self, p: Principal, type_: Any, version: Any, where: str) -> tuple[str, int]:
        if not isinstance(type_, str) or not type_:
            raise bad_request(f"Missing required input parameter {where}.type")
        if "\x00" in type_ or len(type_) > 255:
            raise TwilioError(TYPE_NOT_FOUND, f"Event type not found: {where}.type is not a valid type name", 400)
        row = await self.store.catalogue.get_type(p.catalog_owner, type_)
        if row is None:
            raise TwilioError(TYPE_NOT_FOUND, f"Event type not found: {type_} (Type not found in the system)", 400)
        if row.status == "discontinued":
            raise TwilioError(TYPE_NOT_FOUND, f"Event type not found: {type_} (Type is discontinued)", 400)
        if row.status == "restricted":
            raise TwilioError(TYPE_NOT_FOUND, f"Event type {type_} is restricted and cannot be subscribed to", 400)
        if version is None:
            latest = await self.store.catalogue.get_version(p.catalog_owner, row.schema_id, None)
            if latest is None:
                raise TwilioError(TYPE_NOT_FOUND, f"Event type {type_} has no schema", 400)
            return type_, latest.version
        if isinstance(version, bool) or not isinstance(version, int):
            raise bad_request(f"{where}.schema_version must be an integer", BAD_PARAMETER)
        if await self.store.catalogue.get_version(p.catalog_owner, row.schema_id, version) is None:
            raise bad_request(f"Schema {row.schema_id} has no version {version} (for {type_})", BAD_PARAMETER)
        return type_, version

    async def create_subscription(
        self, p: Principal, description: str | None, sink_sid: str | None, types: Sequence[str]
    ) -> SubscriptionRow:
        desc = _description(description, SUBSCRIPTION_CREATE_FAILED, "Subscription")
        if not sink_sid:
            raise TwilioError(SUBSCRIPTION_CREATE_FAILED, "Subscription could not be created: SinkSid is required", 400)
        sink = await self.get_sink(p, sink_sid)
        if sink.row.status != "active":
            raise TwilioError(
                SUBSCRIPTION_SINK_NOT_ACTIVE, "Subscription could not be created: Sink is not in an active state", 400
            )
        if not types:
            raise TwilioError(TYPE_LIST_EMPTY, "Event type list is empty", 400)
        sub_sid = new_sid("DF")
        rows: list[SubscribedEventRow] = []
        seen: set[str] = set()
        for i, raw in enumerate(types):
            where = f"event_types[{i}]"
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise bad_request(f"Types[{i}] is not a JSON object: {raw[:80]!r}") from None
            if not isinstance(obj, dict):
                raise bad_request(
                    f"Missing required input parameter {where}.type (each Types value is one JSON object)"
                )
            extra = set(obj) - {"type", "schema_version"}
            if extra:
                raise bad_request(f"Unknown field(s) in Types[{i}]: {', '.join(sorted(extra))}")
            type_, version = await self._resolve_type(p, obj.get("type"), obj.get("schema_version"), where)
            if type_ in seen:
                raise TwilioError(
                    SUBSCRIPTION_CREATE_FAILED, f"Subscription could not be created: duplicate event type {type_}", 400
                )
            seen.add(type_)
            rows.append(SubscribedEventRow(sub_sid, type_, version, p.account.sid))
        now = clock.iso(clock.now())
        row = SubscriptionRow(sub_sid, p.account.sid, sink.row.sid, desc, now, now)
        try:
            await self.store.subscriptions.create(row, rows, MAX_SUBSCRIPTIONS, self.settings.one_subscription_per_sink)
        except LimitReached:
            raise TwilioError(
                LIMIT_REACHED, f"Account reached the max subscription limit ({MAX_SUBSCRIPTIONS})", 400
            ) from None
        except Conflict as exc:
            raise TwilioError(SUBSCRIPTION_SINK_NOT_ACTIVE, f"Subscription could not be created: {exc}", 409) from None
        except NotFound:  # the sink was deleted by a request racing this one
            raise not_found(f"Sink could not be found: {row.sink_sid}", SINK_NOT_FOUND) from None
        return row

    async def get_subscription(self, p: Principal, sid: str) -> SubscriptionRow:
        row = await self.store.subscriptions.get(p.account.sid, self.subscription_sid(sid))
        if row is None:
            raise not_found(f"Subscription could not be found: {sid}", SUBSCRIPTION_NOT_FOUND)
        return row

    async def list_subscriptions(self, p: Principal, sink_sid: str | None, q: PageQuery) -> Page:
        canon = self.sink_sid(sink_sid) if sink_sid is not None else None
        return await self.store.subscriptions.list(p.account.sid, canon, q)

    async def update_subscription(self, p: Principal, sid: str, description: str | None) -> SubscriptionRow:
        if description is not None:
            if not description.strip():
                raise bad_request("Description cannot be empty")
            if len(description) > MAX_DESCRIPTION:
                raise bad_request(f"Description is longer than {MAX_DESCRIPTION} characters")
        row = await self.store.subscriptions.update(
            p.account.sid, self.subscription_sid(sid), description, clock.iso(clock.now())
        )
        if row is None:
            raise not_found(f"Subscription could not be found: {sid}", SUBSCRIPTION_NOT_FOUND)
        return row

    async def delete_subscription(self, p: Principal, sid: str) -> None:
        if not await self.store.subscriptions.delete(p.account.sid, self.subscription_sid(sid)):
            raise not_found(f"Subscription could not be found: {sid}", SUBSCRIPTION_NOT_FOUND)

    async def list_subscribed_events(self, p: Principal, sid: str, q: PageQuery) -> Page:
        sub = await self.get_subscription(p, sid)
        return await self.store.subscriptions.list_types(sub.sid, q)

    async def get_subscribed_event(self, p: Principal, sid: str, type_: str) -> SubscribedEventRow:
        sub = await self.get_subscription(p, sid)
        row = await self.store.subscriptions.get_type(sub.sid, type_)
        if row is None:
            raise not_found(f"Subscription {sub.sid} does not include event type {type_}")
        return row

    async def add_subscribed_event(
        self, p: Principal, sid: str, type_: str | None, version: int | None
    ) -> SubscribedEventRow:
        sub = await self.get_subscription(p, sid)
        if not type_:
            raise bad_request("Missing required parameter Type")
        t, v = await self._resolve_type(p, type_, version, "Type")
        row = SubscribedEventRow(sub.sid, t, v, p.account.sid)
        try:
            await self.store.subscriptions.add_type(row, clock.iso(clock.now()))
        except NotFound:  # the subscription was deleted by a request racing this one
            raise not_found(f"Subscription could not be found: {sub.sid}", SUBSCRIPTION_NOT_FOUND) from None
        except Conflict:
            raise TwilioError(
                SUBSCRIPTION_CREATE_FAILED, f"Event type {t} is already in subscription {sub.sid}", 409
            ) from None
        return row

    async def update_subscribed_event(
        self, p: Principal, sid: str, type_: str, version: int | None
    ) -> SubscribedEventRow:
        current = await self.get_subscribed_event(p, sid, type_)
        _, v = await self._resolve_type(p, type_, version, "Type")
        await self.store.subscriptions.update_type(current.subscription_sid, type_, v, clock.iso(clock.now()))
        current.schema_version = v
        return current

    async def delete_subscribed_event(self, p: Principal, sid: str, type_: str) -> None:
        sub = await self.get_subscription(p, sid)
        try:
            ok = await self.store.subscriptions.delete_type(sub.sid, type_, clock.iso(clock.now()))
        except Conflict as exc:
            raise TwilioError(TYPE_LIST_EMPTY, f"Event type list would be empty: {exc}", 400) from None
        if not ok:
            raise not_found(f"Subscription {sub.sid} does not include event type {type_}")
