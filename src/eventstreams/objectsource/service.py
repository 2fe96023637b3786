"""Twilio object sources, the domain: configuration (validated, the credential sealed), runs, "sync now".
The HTTP API (objectsource/api.py) and the CLI both call this; the sync itself is objectsource/sync.py.

A source reads one Twilio account (optionally with its subaccounts) into one schema of the warehouse.
Its credential is the account's auth token or an API key (SID + secret); the secret is Fernet-sealed at
rest and never shown again.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from .. import clock, netpolicy
from ..config import Settings
from ..crypto import Box
from ..errors import TwilioError, bad_request, not_found
from ..ids import new_sid, normalize_sid
from ..store.base import Store
from ..store.errors import Conflict
from ..store.records import (
    AccountRow,
    ObjectSourceRow,
    ObjectSourceRunRow,
    ObjectSourceStateRow,
    Page,
    PageQuery,
    RunCollectionRow,
)
from . import schedule as schedules
from .collections import COLLECTIONS

SID_PREFIX = "OS"
RUN_PREFIX = "OR"
TWILIO_API = "https://api.twilio.com"
DEFAULT_LOOKBACK = 3 * 86400  # late delivery receipts: carriers send most within minutes, stragglers within days
MAX_LOOKBACK = 400 * 86400  # what Airbyte's connector allows back for messages
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}")
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?", re.ASCII)
# Names a schema may not take: the warehouse's own (PostgreSQL/DuckDB system schemas) and dlt's.
_RESERVED_SCHEMAS = frozenset({"public", "main", "information_schema", "pg_catalog", "pg_toast", "temp", "system"})


@dataclass(frozen=True)
class Credential:
    """What the reader authenticates with: (account SID, auth token) or (API key SID, secret)."""

    username: str
    password: str


@dataclass(frozen=True)
class RunView:
    run: ObjectSourceRunRow
    collections: list[RunCollectionRow]


def check_name(name: str | None) -> str:
    if name is None:
        raise bad_request("Missing required parameter FriendlyName")
    if not _NAME.fullmatch(name):
        raise bad_request(
            "FriendlyName must be 1-64 letters, digits, spaces, '.', '_' or '-', not starting with a symbol"
        )
    return name


def schema_from_name(name: str) -> str:
    """Segment fills the schema name from the source's name: ``Twilio Prod`` → ``twilio_prod``."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "twilio"
    return slug if slug[0].isalpha() or slug[0] == "_" else f"s_{slug}"


def check_schema(schema: str) -> str:
    if not _SCHEMA.fullmatch(schema) or schema.startswith(("pg_", "_dlt")) or schema in _RESERVED_SCHEMAS:
        raise bad_request(
            f"SchemaName {schema[:70]!r} must be 1-63 lowercase letters, digits or '_', start with a letter or '_', "
            "and not be a system schema"
        )
    return schema


def check_collections(text: str | None) -> str:
    if text is None or not text.strip():
        return ",".join(COLLECTIONS)
    names = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in names if c not in COLLECTIONS]
    if unknown or not names:
        raise bad_request(f"Collections must be a comma-separated subset of {', '.join(COLLECTIONS)} "
                          f"(unknown: {', '.join(n[:30] for n in unknown[:3])})")  # fmt: skip
    if "call_feedback" in names and "calls" not in names:
        raise bad_request("Collections: call_feedback is read call by call, so it needs calls selected too")
    return ",".join(c for c in COLLECTIONS if c in names)  # canonical order: calls before call_feedback


def check_start_date(text: str | None) -> str | None:
    """ISO date or date-time (UTC when no offset); blank means everything."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if not _DATE.fullmatch(text):
        raise bad_request(f"StartDate {text[:40]!r} must be an ISO date (2024-01-31) or date-time, or blank for all")
    try:
        value = datetime.fromisoformat(text.replace(" ", "T"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad_request(f"StartDate {text[:40]!r} is not a real date") from None
    if not 2000 <= value.year <= 9000:  # Twilio began in 2008; far ends would overflow date arithmetic
        raise bad_request(f"StartDate {text[:40]!r} must be between the years 2000 and 9000")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_lookback(text: str | None) -> int:
    if text is None or not text.strip():
        return DEFAULT_LOOKBACK
    seconds = schedules.duration(text)
    if seconds is None or seconds > MAX_LOOKBACK:
        raise bad_request(f"LookbackWindow {text[:40]!r} must be a duration such as '3d' or '12h' (at most 400 days)")
    return seconds


def check_schedule(text: str | None) -> str:
    try:
        plan = schedules.parse(text)
        if plan.text != "manual" and plan.next_after(clock.now()) is None:
            raise schedules.ScheduleError(f"Schedule {plan.text!r} never runs")
    except schedules.ScheduleError as exc:
        raise bad_request(str(exc)) from None
    return plan.text


def _account_sid(value: str | None, field: str = "TwilioAccountSid") -> str:
    if value is None:
        raise bad_request(f"Missing required parameter {field}")
    canon = normalize_sid("AC", value)
    if canon is None:
        raise bad_request(f"{field} {value[:40]!r} is not an Account SID (AC followed by 32 hex digits)")
    return canon


class ObjectSources:
    def __init__(self, store: Store, box: Box, settings: Settings) -> None:
        self.repo = store.object_sources
        self.box = box
        self.settings = settings
        self.wake: list[asyncio.Event] = []  # a process's scheduler registers here: "sync now" starts at once

    # -- configuration

    def _check_base_url(self, url: str | None) -> str:
        url = (url or TWILIO_API).strip().rstrip("/")
        problem = netpolicy.url_problem(url, self.settings.allow_private_destinations)
        if problem:
            raise bad_request(f"BaseUrl {url[:100]!r} is not usable: {problem}")
        return url

    def _credential(
        self, auth_token: str | None, key_sid: str | None, key_secret: str | None
    ) -> tuple[str | None, str]:
        if auth_token and (key_sid or key_secret):
            raise bad_request("Give either AuthToken or ApiKeySid with ApiKeySecret, not both")
        if auth_token:
            if len(auth_token) > 256:
                raise bad_request("AuthToken is longer than 256 characters")
            return None, self.box.seal(auth_token)
        if key_sid or key_secret:
            canon = normalize_sid("SK", key_sid or "")
            if canon is None:
                raise bad_request("ApiKeySid must be an API key SID (SK followed by 32 hex digits)")
            if not key_secret or len(key_secret) > 256:
                raise bad_request("ApiKeySecret is required with ApiKeySid (at most 256 characters)")
            return canon, self.box.seal(key_secret)
        raise bad_request("Missing credentials: give AuthToken, or ApiKeySid and ApiKeySecret")

    async def create(
        self,
        account: AccountRow,
        *,
        friendly_name: str | None,
        twilio_account_sid: str | None,
        auth_token: str | None = None,
        api_key_sid: str | None = None,
        api_key_secret: str | None = None,
        schema_name: str | None = None,
        start_date: str | None = None,
        collections: str | None = None,
        schedule: str | None = None,
        lookback: str | None = None,
        include_subaccounts: bool | None = None,
        enabled: bool | None = None,
        base_url: str | None = None,
    ) -> ObjectSourceRow:
        name = check_name(friendly_name)
        twilio_sid = _account_sid(twilio_account_sid)
        key_sid, sealed = self._credential(auth_token, api_key_sid, api_key_secret)
        now = clock.now()
        stamp = clock.iso(now)
        on = True if enabled is None else enabled
        plan = check_schedule(schedule)
        row = ObjectSourceRow(
            sid=new_sid(SID_PREFIX),
            account_sid=account.sid,
            friendly_name=name,
            schema_name=check_schema(schema_name if schema_name is not None else schema_from_name(name)),
            twilio_account_sid=twilio_sid,
            key_sid=key_sid,
            secret_sealed=sealed,
            base_url=self._check_base_url(base_url),
            start_date=check_start_date(start_date),
            collections=check_collections(collections),
            schedule=plan,
            lookback_seconds=check_lookback(lookback),
            include_subaccounts=bool(include_subaccounts),
            enabled=on,
            full_sync_requested=False,
            full_requested_at=None,
            # the first sync begins once the source exists, as Segment's does (unless it is synced by hand only)
            next_run_at=now if on and plan != "manual" else None,
            lease_owner=None,
            lease_until=None,
            last_error=None,
            date_created=stamp,
            date_updated=stamp,
        )
        try:
            await self.repo.create(row)
        except Conflict:
            raise self._conflict(row) from None
        self._wake()
        return row

    def _conflict(self, row: ObjectSourceRow) -> TwilioError:
        return TwilioError(
            20409,
            f"A source named {row.friendly_name!r} already exists in this account, or schema {row.schema_name!r} "
            "is already used by another source or events warehouse",
            409,
        )

    async def get(self, account: AccountRow, ref: str) -> ObjectSourceRow:
        """By SID, or by FriendlyName (what the CLI's ``sources sync NAME`` passes)."""
        canon = normalize_sid(SID_PREFIX, ref)
        row = await (self.repo.get(account.sid, canon) if canon else self.repo.by_name(account.sid, ref))
        if row is None:
            raise not_found(f"Source {ref[:64]} was not found")
        return row

    async def list_sources(self, account: AccountRow, q: PageQuery) -> Page:
        return await self.repo.sources(account.sid, q)

    async def update(
        self,
        row: ObjectSourceRow,
        *,
        friendly_name: str | None = None,
        twilio_account_sid: str | None = None,
        auth_token: str | None = None,
        api_key_sid: str | None = None,
        api_key_secret: str | None = None,
        schema_name: str | None = None,
        start_date: str | None = None,
        collections: str | None = None,
        schedule: str | None = None,
        lookback: str | None = None,
        include_subaccounts: bool | None = None,
        enabled: bool | None = None,
        base_url: str | None = None,
    ) -> ObjectSourceRow:
        """Only what is given changes. A new start date takes effect with the next full sync (Segment's rule);
        a collection taken out keeps its table and rows; a new schema starts from scratch (a full sync)."""
        now = clock.now()
        changes: dict[str, object] = {"date_updated": clock.iso(now)}
        if friendly_name is not None:
            changes["friendly_name"] = check_name(friendly_name)
        if twilio_account_sid is not None:
            changes["twilio_account_sid"] = _account_sid(twilio_account_sid)
        if auth_token is not None or api_key_sid is not None or api_key_secret is not None:
            changes["key_sid"], changes["secret_sealed"] = self._credential(auth_token, api_key_sid, api_key_secret)
        if schema_name is not None:
            changes["schema_name"] = check_schema(schema_name)
        if start_date is not None:
            changes["start_date"] = check_start_date(start_date)
        if collections is not None:
            changes["collections"] = check_collections(collections)
        if schedule is not None:
            changes["schedule"] = check_schedule(schedule)
        if lookback is not None:
            changes["lookback_seconds"] = check_lookback(lookback)
        if include_subaccounts is not None:
            changes["include_subaccounts"] = include_subaccounts
        if base_url is not None:
            changes["base_url"] = self._check_base_url(base_url)
        if enabled is not None:
            changes["enabled"] = enabled
        new = replace(row, **changes)  # type: ignore[arg-type]
        reschedule = False
        if new.schedule != row.schedule or (new.enabled and not row.enabled):
            reschedule = True
            plan = schedules.parse(new.schedule)
            if plan.text == "manual":
                new.next_run_at = None
            elif row.next_run_at is None or (new.enabled and not row.enabled):
                new.next_run_at = now  # first sync, or back on: at once
            else:  # a new plan: its next run, unless the old one came sooner
                new.next_run_at = min(row.next_run_at, plan.next_after(now) or now)
        moved = new.schema_name != row.schema_name or new.twilio_account_sid != row.twilio_account_sid
        # another schema or account: its cursors mean nothing there, start over with a full sync; another start
        # date: unfinished passes (read for the old one) start over, the rest waits for a full sync (Segment)
        reset = "state" if moved else "passes" if new.start_date != row.start_date else None
        try:
            ok = await self.repo.update(new, row.schema_name, now=now, full=moved, reschedule=reschedule, reset=reset)
        except Conflict:
            raise self._conflict(new) from None
        if not ok:
            raise not_found(f"Source {row.sid} was not found")
        self._wake()
        return new

    async def delete(self, row: ObjectSourceRow) -> None:
        """The source, its state and its runs go; its tables stay in the warehouse (they are the user's data)."""
        if not await self.repo.delete(row.account_sid, row.sid):
            raise not_found(f"Source {row.sid} was not found")

    def credential(self, row: ObjectSourceRow) -> Credential:
        return Credential(row.key_sid or row.twilio_account_sid, self.box.open(row.secret_sealed))

    # -- runs

    async def request_sync(self, row: ObjectSourceRow, full: bool) -> ObjectSourceRow:
        """Sync now (the scheduler in serve/worker picks it up); ``full`` re-reads everything from the start
        date, which is how a changed start date takes effect."""
        if not row.enabled:
            raise bad_request(f"Source {row.friendly_name!r} is disabled: enable it first (Enabled=true), or run "
                              f"`eventstreams sources sync` to sync it once by hand")  # fmt: skip
        if not await self.repo.request_run(row.account_sid, row.sid, clock.now(), full):
            raise not_found(f"Source {row.sid} was not found")
        self._wake()
        fresh = await self.repo.get(row.account_sid, row.sid)
        if fresh is None:
            raise not_found(f"Source {row.sid} was not found")
        return fresh

    async def runs(self, row: ObjectSourceRow, q: PageQuery) -> tuple[Page, dict[str, list[RunCollectionRow]]]:
        page = await self.repo.runs(row.sid, q)
        parts = await self.repo.run_collections([r.sid for r in page.items])
        by_run: dict[str, list[RunCollectionRow]] = {}
        for c in parts:
            by_run.setdefault(c.run_sid, []).append(c)
        return page, by_run

    async def run(self, row: ObjectSourceRow, run_sid: str) -> RunView:
        canon = normalize_sid(RUN_PREFIX, run_sid)
        run = await self.repo.run(row.sid, canon) if canon else None
        if run is None:
            raise not_found(f"Run {run_sid[:40]} was not found")
        return RunView(run, await self.repo.run_collections([run.sid]))

    async def states(self, row: ObjectSourceRow) -> list[ObjectSourceStateRow]:
        return await self.repo.states(row.sid)

    def _wake(self) -> None:
        for event in self.wake:
            event.set()
