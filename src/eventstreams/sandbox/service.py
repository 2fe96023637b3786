"""The sandbox's domain operations: what the HTTP surface, the seeder and the CLI call.

Every operation takes the account already authorised by the caller (see
``Accounts.visible``); nothing here reads credentials.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from .. import clock, netpolicy
from ..config import Settings
from ..errors import BAD_REQUEST, NOT_FOUND, TwilioError, bad_request
from ..ids import new_sid, normalize_sid
from ..sinks.signing import split_userinfo
from ..sinks.webhook import wire_url
from ..store.base import Store
from ..store.records import (
    AccountRow,
    Page,
    PageQuery,
    SandboxAddressRow,
    SandboxCallRow,
    SandboxFeedbackRow,
    SandboxMessageRow,
    SandboxTranscriptionRow,
)
from ..store.repos import sandbox as kinds
from . import lifecycle, phones
from .behaviour import Behaviour, BehaviourError

TOO_MANY_REQUESTS = 20429
INVALID_CALLBACK = 21609
INVALID_SERVICE = 21701
TOO_MANY_MEDIA = 21623
FEEDBACK_ISSUES = ("audio-latency", "digits-not-captured", "dropped-call", "imperfect-audio",
                   "incorrect-caller-id", "one-way-audio", "post-dial-delay", "unsolicited-call")  # fmt: skip
CALL_STATUSES = ("queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled")
CONFERENCE_STATUSES = ("init", "in-progress", "completed")
CALL_EVENTS = ("initiated", "ringing", "answered", "completed")
_HOST = re.compile(r"^[A-Za-z0-9.-]+$")  # Twilio: a valid hostname, no underscores
_BEHAVIOUR_TTL = 1.0  # seconds another process's change to an account's settings may take to apply here

Created = Callable[[str, Any], Awaitable[None]]


def missing(path: str) -> TwilioError:
    return TwilioError(NOT_FOUND, f"The requested resource {path} was not found", 404)


# -- date filters


@dataclass(frozen=True)
class DateFilter:
    """``Name``, ``Name<`` and ``Name>`` as Twilio reads them. A bare date means that whole UTC day:
    ``Name=D`` is the day, ``Name>=D`` on or after its start, ``Name<=D`` on or before its end."""

    on: str | None = None
    before: str | None = None
    after: str | None = None

    def conditions(self, column: str, prefix: str) -> tuple[list[str], dict[str, Any]]:
        where: list[str] = []
        params: dict[str, Any] = {}
        if self.on is not None:
            lo, hi = self._day(self.on)
            if hi is None:
                where.append(f"{column} = :{prefix}_on")
                params[f"{prefix}_on"] = lo
            else:
                where.append(f"{column} >= :{prefix}_on AND {column} < :{prefix}_on_end")
                params[f"{prefix}_on"], params[f"{prefix}_on_end"] = lo, hi
        if self.after is not None:
            lo, _ = self._day(self.after)
            where.append(f"{column} >= :{prefix}_after")
            params[f"{prefix}_after"] = lo
        if self.before is not None:
            lo, hi = self._day(self.before)
            if hi is None:
                where.append(f"{column} <= :{prefix}_before")
                params[f"{prefix}_before"] = lo
            else:
                where.append(f"{column} < :{prefix}_before")
                params[f"{prefix}_before"] = hi
        return where, params

    @staticmethod
    def _day(value: str) -> tuple[str, str | None]:
        """(ISO start, ISO end of the day) for a date; (ISO instant, None) for a date-time."""
        d, date_only = parse_date(value)
        if date_only:
            # 9999-12-31 has no next day to end at: end at the last second a date can name
            end = d + timedelta(days=1) if d < _LAST_DAY else _LAST_DAY.replace(hour=23, minute=59, second=59)
            return clock.iso(d.timestamp()), clock.iso(end.timestamp())
        return clock.iso(d.timestamp()), None


_LAST_DAY = datetime(9999, 12, 31, tzinfo=UTC)


def parse_date(value: str) -> tuple[datetime, bool]:
    """Twilio's date filters accept ``YYYY-MM-DD``, ISO 8601 date-times (with ``T`` or a space,
    ``Z`` or an offset, fractions) and RFC 2822; naive values are UTC. Raises ``ValueError``."""
    v = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        return datetime.strptime(v, "%Y-%m-%d").replace(tzinfo=UTC), True
    try:
        d = datetime.fromisoformat(v.replace("Z", "+00:00") if v.endswith("Z") else v)
    except ValueError:
        try:
            d = parsedate_to_datetime(v)
        except (TypeError, ValueError, IndexError):
            raise ValueError(value) from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    if not 1970 <= d.year <= 9999:
        raise ValueError(value)
    try:
        return d.astimezone(UTC), False
    except OverflowError:  # an offset moving the instant past 9999-12-31 (a 500 before)
        raise ValueError(value) from None


def date_filter(params: Any, name: str) -> DateFilter:
    f = DateFilter(params.get(name), params.get(f"{name}<"), params.get(f"{name}>"))
    for value, label in ((f.on, name), (f.before, f"{name}<"), (f.after, f"{name}>")):
        if value is not None:
            try:
                parse_date(value)
            except ValueError:
                raise bad_request(
                    f"Invalid {label} {value[:40]!r}: use YYYY-MM-DD, an ISO 8601 date-time or an RFC 2822 date"
                ) from None
    return f


def _filters(
    equal: dict[str, Any], dates: dict[str, DateFilter] | None = None
) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions for a list: ``column = value`` for each given value, then each date filter."""
    where = [f"{col} = :{col}" for col, v in equal.items() if v is not None]
    params = {col: v for col, v in equal.items() if v is not None}
    for col, f in (dates or {}).items():
        w, p = f.conditions(col, col)
        where += w
        params.update(p)
    return where, params


def _callback_url(value: str | None, allow_private: bool) -> str | None:
    """A StatusCallback Twilio would take (a valid hostname, no underscores) and that this server may call
    (the SSRF policy; checked again on the resolved address when the callback is sent)."""
    if not value:
        return None
    problem = netpolicy.url_problem(value, allow_private)
    if problem is None:
        host = urlsplit(value).hostname or ""
        if not _HOST.match(host) and not host.startswith("["):
            problem = "must have a valid hostname (no underscores)"
    if problem is None:
        try:
            wire_url(split_userinfo(value)[0])  # what the clock will send and sign
        except ValueError as exc:
            problem = f"cannot be sent ({exc})"
    if problem is not None:
        raise TwilioError(INVALID_CALLBACK, f"The StatusCallback URL {value[:100]} {problem}.", 400)
    return value


def _number_filter(value: str | None) -> str | None:
    """A To/From filter matches the stored E.164 form when the value is a phone number."""
    if value is None:
        return None
    try:
        return phones.check_to(value)
    except TwilioError:
        return value


class Sandbox:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.repo = store.sandbox
        self.defaults = Behaviour.defaults(settings)
        self.allow_private = settings.allow_private_destinations
        self._behaviour: dict[str, tuple[float, Behaviour]] = {}
        self._credit: dict[tuple[str, str], float] = {}
        #: awaited after a message or call is created (the status clock's wake-up and the queued event)
        self.on_created: list[Created] = []

    # -- behaviour and injected faults

    async def behaviour(self, account_sid: str) -> Behaviour:
        hit = self._behaviour.get(account_sid)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        doc = await self.repo.settings(account_sid)
        b = self.defaults.with_overrides(orjson.loads(doc)) if doc else self.defaults
        self._behaviour[account_sid] = (now + _BEHAVIOUR_TTL, b)
        return b

    async def set_behaviour(self, account: AccountRow, changes: dict[str, Any]) -> Behaviour:
        try:
            b = (await self.behaviour(account.sid)).with_overrides(changes)
        except BehaviourError as exc:
            raise bad_request(str(exc)) from None
        await self.repo.put_settings(account.sid, b.dumps(self.defaults), clock.iso(clock.now()))
        self._behaviour.pop(account.sid, None)
        for key in [k for k in self._credit if k[0] == account.sid]:
            del self._credit[key]
        return b

    def fault(self, account_sid: str, b: Behaviour) -> TwilioError | None:
        """The injected failure for this request, if any. Each ratio is met exactly and reproducibly
        (every 1/ratio-th request), not by chance; a request both are due on gets the 429 and the 5xx
        comes on the next one."""
        due: list[str] = []
        for kind, ratio in (("429", b.rate_limit_ratio), ("5xx", b.server_error_ratio)):
            if ratio > 0:
                key = (account_sid, kind)
                credit = self._credit.get(key, 0.0) + ratio
                self._credit[key] = credit
                if credit >= 1.0 - 1e-9:
                    due.append(kind)
        if not due:
            return None
        kind = due[0]
        self._credit[(account_sid, kind)] -= 1.0
        if kind == "429":
            return TwilioError(TOO_MANY_REQUESTS, "Too many requests", 429)
        status = b.server_error_status
        # Twilio's codes for its own 5xx are 20000 + the status (20500, 20503, ...)
        return TwilioError(20000 + status, "Server error injected by the sandbox (Sandbox.json)", status)

    async def _created(self, kind: str, row: Any) -> None:
        for hook in self.on_created:
            await hook(kind, row)

    # -- messages

    async def send_message(
        self,
        account: AccountRow,
        to: str | None,
        from_: str | None,
        service_sid: str | None,
        body: str | None,
        media_urls: list[str],
        status_callback: str | None,
    ) -> SandboxMessageRow:
        to_number = phones.check_to(to)
        if service_sid is not None and normalize_sid("MG", service_sid) is None:
            raise TwilioError(INVALID_SERVICE, f"The Messaging Service Sid {service_sid[:40]} is invalid.", 400)
        if from_:
            from_number = phones.check_from(from_)
        elif service_sid:
            # The service's sender pool is not modelled: a stable number per service stands in.
            digits = int(service_sid[2:], 16) % 10_000_000
            from_number = f"+1555{digits:07d}"
        else:
            raise TwilioError(
                phones.FROM_MISSING, "A 'From' phone number or a MessagingServiceSid is required.", 400
            )
        if len(media_urls) > 10:
            raise TwilioError(TOO_MANY_MEDIA, "Too many media URLs: at most 10 are allowed.", 400)
        text = phones.check_body(body, bool(media_urls))
        callback = _callback_url(status_callback, self.allow_private)
        b = await self.behaviour(account.sid)
        now = clock.now()
        sid = new_sid("SM")
        stamp = clock.iso(now)
        row = SandboxMessageRow(
            sid=sid,
            account_sid=account.sid,
            messaging_service_sid=normalize_sid("MG", service_sid) if service_sid else None,
            direction="outbound-api",
            from_number=from_number,
            to_number=to_number,
            body=text,
            status="queued",
            num_segments=phones.segments(text),
            num_media=len(media_urls),
            price=None,
            price_unit="USD",
            error_code=None,
            error_message=None,
            status_callback=callback,
            outcome=lifecycle.message_outcome(b, to_number, sid),
            next_step_at=now + b.step_seconds,
            date_created=stamp,
            date_updated=stamp,
            date_sent=None,
        )
        await self.repo.insert(kinds.MESSAGE, row)
        await self._created("message", row)
        return row

    async def message(self, account_sid: str, sid: str) -> SandboxMessageRow:
        row: SandboxMessageRow = await self._get(kinds.MESSAGE, account_sid, sid, "Messages")
        return row

    async def messages(
        self, account_sid: str, to: str | None, from_: str | None, sent: DateFilter, q: PageQuery
    ) -> Page:
        where, params = _filters(
            {"to_number": _number_filter(to), "from_number": _number_filter(from_)}, {"date_sent": sent}
        )
        return await self.repo.list(kinds.MESSAGE, account_sid, where, params, q)

    async def update_message(self, row: SandboxMessageRow, body: str | None, status: str | None) -> SandboxMessageRow:
        """Twilio allows two updates: redacting the body (``Body=""``) and canceling a scheduled message."""
        if status is not None:
            if status != "canceled":
                raise bad_request("Status can only be set to canceled")
            raise TwilioError(30409, "Message cannot be canceled: only scheduled messages can be", 400)
        if body is None:
            raise bad_request("Nothing to update: send Body= (empty) to redact the message body")
        if body != "":
            raise bad_request("Body can only be updated to an empty string (redaction)")
        if row.status in ("queued", "accepted", "sending", "scheduled"):
            raise TwilioError(20009, "Cannot redact a message that is still being sent", 400)
        await self.repo.redact_message(row.account_sid, row.sid, clock.iso(clock.now()))
        return await self.message(row.account_sid, row.sid)

    async def delete_message(self, row: SandboxMessageRow) -> None:
        if row.next_step_at is not None:  # Twilio: a message still in flight cannot be deleted
            raise TwilioError(20009, f"Cannot delete message {row.sid}: it is still being sent", 400)
        await self.repo.delete(kinds.MESSAGE, row.account_sid, row.sid)

    # -- calls

    async def create_call(
        self,
        account: AccountRow,
        to: str | None,
        from_: str | None,
        status_callback: str | None,
        events: list[str],
    ) -> SandboxCallRow:
        if not to:
            raise TwilioError(21201, "No 'To' number is specified", 400)
        if not from_:
            raise TwilioError(21213, "No 'From' number is specified", 400)
        try:
            to_number = phones.check_to(to)
        except TwilioError:
            raise TwilioError(21217, f"Phone number {to[:40]} is not a valid phone number", 400) from None
        try:
            from_number = phones.check_from(from_)
        except TwilioError:
            from_number = ""
        # a voice call dials phone numbers: no sender IDs, short codes or messaging channels
        if not from_number.startswith("+"):
            raise TwilioError(21212, f"Invalid 'From' Phone Number: {from_[:40]}", 400) from None
        if not to_number.startswith("+"):
            raise TwilioError(21217, f"Phone number {to[:40]} is not a valid phone number", 400)
        bad = [e for e in events if e not in CALL_EVENTS]
        if bad:
            raise bad_request(f"StatusCallbackEvent {bad[0][:40]!r} must be one of {', '.join(CALL_EVENTS)}")
        callback = _callback_url(status_callback, self.allow_private)
        b = await self.behaviour(account.sid)
        now = clock.now()
        sid = new_sid("CA")
        stamp = clock.iso(now)
        row = SandboxCallRow(
            sid=sid,
            account_sid=account.sid,
            parent_call_sid=None,
            to_number=to_number,
            to_formatted=phones.national(to_number),
            from_number=from_number,
            from_formatted=phones.national(from_number),
            phone_number_sid=None,
            status="queued",
            start_time=None,
            end_time=None,
            duration=None,
            price=None,
            price_unit="USD",
            direction="outbound-api",
            answered_by=None,
            forwarded_from=None,
            group_sid=None,
            caller_name=None,
            queue_time=0,
            trunk_sid=None,
            status_callback=callback,
            status_callback_events=" ".join(dict.fromkeys(events or ["completed"])),
            outcome=lifecycle.call_outcome(b, to_number, sid),
            next_step_at=now + b.step_seconds,
            date_created=stamp,
            date_updated=stamp,
        )
        await self.repo.insert(kinds.CALL, row)
        await self._created("call", row)
        return row

    async def call(self, account_sid: str, sid: str) -> SandboxCallRow:
        row: SandboxCallRow = await self._get(kinds.CALL, account_sid, sid, "Calls")
        return row

    async def calls(
        self,
        account_sid: str,
        to: str | None,
        from_: str | None,
        parent: str | None,
        status: str | None,
        start: DateFilter,
        end: DateFilter,
        q: PageQuery,
    ) -> Page:
        if status is not None and status not in CALL_STATUSES:
            raise bad_request(f"Status must be one of {', '.join(CALL_STATUSES)}")
        where, params = _filters(
            {"to_number": _number_filter(to), "from_number": _number_filter(from_), "parent_call_sid": parent,
             "status": status},
            {"start_time": start, "end_time": end},
        )  # fmt: skip
        return await self.repo.list(kinds.CALL, account_sid, where, params, q)

    async def delete_call(self, row: SandboxCallRow) -> None:
        if row.next_step_at is not None:
            raise TwilioError(20009, f"Cannot delete call {row.sid}: it is still in progress", 400)
        await self.repo.delete(kinds.CALL, row.account_sid, row.sid)

    async def delete(self, row: Any) -> None:
        """Transcriptions and addresses: removed at once."""
        kind = kinds.TRANSCRIPTION if isinstance(row, SandboxTranscriptionRow) else kinds.ADDRESS
        await self.repo.delete(kind, row.account_sid, row.sid)

    async def feedback(self, account_sid: str, call_sid: str) -> SandboxFeedbackRow:
        await self.call(account_sid, call_sid)
        row: SandboxFeedbackRow | None = await self.repo.get(kinds.FEEDBACK, account_sid, call_sid)
        if row is None:
            raise missing(f"/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}/Feedback.json")
        return row

    async def put_feedback(
        self, account_sid: str, call_sid: str, quality_score: int | None, issues: list[str]
    ) -> SandboxFeedbackRow:
        await self.call(account_sid, call_sid)
        if quality_score is None:
            raise bad_request("QualityScore is required (an integer from 1 to 5)")
        bad = [i for i in issues if i not in FEEDBACK_ISSUES]
        if bad:
            raise bad_request(f"Issue {bad[0][:40]!r} must be one of {', '.join(FEEDBACK_ISSUES)}")
        stamp = clock.iso(clock.now())
        row = SandboxFeedbackRow(call_sid, account_sid, quality_score, orjson.dumps(issues).decode(), stamp, stamp)
        return await self.repo.put_feedback(row)

    # -- conferences, transcriptions, addresses

    async def conference(self, account_sid: str, sid: str) -> Any:
        return await self._get(kinds.CONFERENCE, account_sid, sid, "Conferences")

    async def conferences(
        self,
        account_sid: str,
        created: DateFilter,
        updated: DateFilter,
        friendly_name: str | None,
        status: str | None,
        q: PageQuery,
    ) -> Page:
        if status is not None and status not in CONFERENCE_STATUSES:
            raise bad_request(f"Status must be one of {', '.join(CONFERENCE_STATUSES)}")
        where, params = _filters(
            {"friendly_name": friendly_name, "status": status}, {"date_created": created, "date_updated": updated}
        )
        return await self.repo.list(kinds.CONFERENCE, account_sid, where, params, q)

    async def transcription(self, account_sid: str, sid: str) -> Any:
        return await self._get(kinds.TRANSCRIPTION, account_sid, sid, "Transcriptions")

    async def transcriptions(self, account_sid: str, q: PageQuery) -> Page:
        return await self.repo.list(kinds.TRANSCRIPTION, account_sid, [], {}, q)

    async def address(self, account_sid: str, sid: str) -> Any:
        return await self._get(kinds.ADDRESS, account_sid, sid, "Addresses")

    async def addresses(
        self,
        account_sid: str,
        customer_name: str | None,
        friendly_name: str | None,
        emergency_enabled: bool | None,
        iso_country: str | None,
        q: PageQuery,
    ) -> Page:
        where, params = _filters(
            {"customer_name": customer_name, "friendly_name": friendly_name, "emergency_enabled": emergency_enabled,
             "iso_country": iso_country}
        )  # fmt: skip
        return await self.repo.list(kinds.ADDRESS, account_sid, where, params, q)

    async def create_address(self, account: AccountRow, fields: dict[str, str | None], emergency: bool) -> Any:
        required = ("CustomerName", "Street", "City", "Region", "PostalCode", "IsoCountry")
        absent = [n for n in required if not fields.get(n)]
        if absent:
            raise bad_request(f"{absent[0]} is required", BAD_REQUEST)
        iso = str(fields["IsoCountry"])
        if not re.fullmatch(r"[A-Za-z]{2}", iso):
            raise TwilioError(21628, f"IsoCountry {iso[:10]!r} must be an ISO 3166-1 alpha-2 country code", 400)
        stamp = clock.iso(clock.now())
        row = SandboxAddressRow(
            sid=new_sid("AD"),
            account_sid=account.sid,
            customer_name=str(fields["CustomerName"]),
            friendly_name=fields.get("FriendlyName"),
            street=str(fields["Street"]),
            street_secondary=fields.get("StreetSecondary"),
            city=str(fields["City"]),
            region=str(fields["Region"]),
            postal_code=str(fields["PostalCode"]),
            iso_country=iso.upper(),
            emergency_enabled=emergency,
            validated=True,
            verified=False,
            date_created=stamp,
            date_updated=stamp,
        )
        await self.repo.insert(kinds.ADDRESS, row)
        return row

    async def _get(self, kind: kinds.Kind, account_sid: str, sid: str, collection: str) -> Any:
        row = await self.repo.get(kind, account_sid, sid)
        if row is None:
            raise missing(f"/2010-04-01/Accounts/{account_sid}/{collection}/{sid}.json")
        return row
