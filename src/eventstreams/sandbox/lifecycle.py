"""The status clock: moves sandbox messages and calls through their statuses, POSTs signed
status callbacks as Twilio does and publishes the matching Event Streams events.

Messages: queued → sending → sent → delivered | undelivered, or queued → sending → failed.
Calls: queued → ringing → in-progress → completed, queued → ringing → busy | no-answer | canceled,
or queued → failed. The end is the row's ``outcome``, planned at creation (:func:`message_outcome`,
:func:`call_outcome`); one step per ``step_seconds`` of the account's Behaviour, counted from the end of
the previous step's callbacks. A call's ``initiated`` and ``ringing`` callbacks go out in the same step
(leaving ``queued``); its ``duration`` is the whole seconds it spent ``in-progress`` (at least 1), so
``end_time - start_time`` and ``duration`` agree as they do on Twilio.

A step, for one row:

1. claim: in one transaction the due row moves to its next status (``date_updated``, ``date_sent``,
   price … set) and ``next_step_at`` becomes a lease (now + :data:`LEASE_SECONDS`), so a reader sees
   the new status by the time its callback arrives, and no other process takes the row meanwhile
   (PostgreSQL: ``SKIP LOCKED``);
2. the status callback(s), in order, each within :data:`CALLBACK_TIMEOUT` (a failure is logged and
   not retried: Twilio does not retry status callbacks), and the Event Streams event(s);
3. release: ``next_step_at`` = when that finished + ``step_seconds`` (NULL once final), so the next
   callback of the same row can only follow the previous one.

A process killed between 1 and 3 leaves the row leased: when the lease ends any clock moves it on
(the callback of the interrupted step is lost, as one Twilio fails to deliver would be).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from yarl import URL

from .. import clock
from ..bridge.mapping import call_status_event, message_status_event
from ..netpolicy import AsyncResolver
from ..sinks.http import HttpClient, outcome_for_exception, read_excerpt
from ..sinks.signing import TWILIO_SIGNATURE_HEADER, split_userinfo, twilio_form_signature
from ..sinks.webhook import wire_url
from ..store.records import AccountRow, SandboxCallRow, SandboxMessageRow
from ..store.repos import sandbox as kinds
from .behaviour import Behaviour

if TYPE_CHECKING:
    from ..delivery.publish import Publisher
    from ..domain.accounts import Accounts
    from ..store.base import Store
    from .service import Sandbox

log = logging.getLogger("eventstreams.sandbox")

API_VERSION = "2010-04-01"
LEASE_SECONDS = 60.0  # longer than a step's callbacks (15 s each) and its publish
CALLBACK_TIMEOUT = 15.0  # Twilio's limit for a status callback
USER_AGENT = "TwilioProxy/1.1"  # what Twilio's callbacks carry
MESSAGE_PRICE = Decimal("0.00790")  # per segment, US SMS
CALL_PRICE = Decimal("0.01400")  # per started minute, US outbound
ERROR_MESSAGES = {
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}
CALL_EVENT_STATUS = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress"}

_UNDELIVERED_CODES = (30003, 30005, 30006, 30007)


def message_outcome(b: Behaviour, to: str, sid: str) -> str:
    """The final status a new message will reach: ``delivered``, ``undelivered:30003``, ``failed:30008``…
    Reproducible from the SID, so a rerun with the same data ends the same way."""
    rule = b.rule_for(to)
    if rule is not None and rule.status in ("delivered", "undelivered", "failed"):
        default = {"undelivered": 30003, "failed": 30008}.get(rule.status)
        code = rule.error_code or default
        return rule.status + (f":{code}" if code else "")
    draw = (zlib.crc32(sid.encode()) % 10_000) / 10_000
    if draw < b.failure_ratio:
        return f"undelivered:{_UNDELIVERED_CODES[zlib.crc32(sid[::-1].encode()) % len(_UNDELIVERED_CODES)]}"
    return "delivered"


def call_outcome(b: Behaviour, to: str, sid: str) -> str:
    """The final status a new call will reach: ``completed``, ``busy``, ``no-answer``, ``failed``, ``canceled``."""
    rule = b.rule_for(to)
    if rule is not None and rule.status in ("completed", "busy", "no-answer", "failed", "canceled"):
        return rule.status
    draw = (zlib.crc32(sid.encode()) % 10_000) / 10_000
    return "no-answer" if draw < b.failure_ratio else "completed"


# -- the paths (pure)


def _split_outcome(outcome: str | None) -> tuple[str, int | None]:
    final, _, code = (outcome or "").partition(":")
    return final, int(code) if code.isdigit() else None


def message_path(outcome: str | None) -> tuple[str, ...]:
    final, _ = _split_outcome(outcome)
    if final == "failed":
        return ("queued", "sending", "failed")
    return ("queued", "sending", "sent", final if final == "undelivered" else "delivered")


def call_path(outcome: str | None) -> tuple[str, ...]:
    final, _ = _split_outcome(outcome)
    if final == "failed":
        return ("queued", "failed")
    if final in ("busy", "no-answer", "canceled"):
        return ("queued", "ringing", final)
    return ("queued", "ringing", "in-progress", "completed")


def _after(path: tuple[str, ...], status: str) -> str | None:
    """The status after ``status`` on ``path``; None when final or not on the path (a seeded or
    hand-edited row: it stops rather than jump)."""
    if status not in path:
        return None
    i = path.index(status)
    return path[i + 1] if i + 1 < len(path) else None


def call_duration(start_time: str | None, at: float) -> int:
    """Whole seconds from the stored ``start_time`` to ``at``; at least 1 (a completed call was answered)."""
    if start_time is None:
        return 1
    started = datetime.strptime(start_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    return max(1, int(at - started))


def _price(amount: Decimal) -> str:
    return f"-{amount:.5f}"


def next_message(row: SandboxMessageRow, at: float, lease_until: float) -> SandboxMessageRow:
    """``row`` after one step at ``at`` (``next_step_at`` = the lease), or unchanged but final."""
    status = _after(message_path(row.outcome), row.status)
    if status is None:
        return replace(row, next_step_at=None)
    stamp = clock.iso(at)
    new = replace(row, status=status, date_updated=stamp, next_step_at=lease_until)
    if status == "sent":
        new = replace(new, date_sent=stamp, price=_price(MESSAGE_PRICE * max(1, row.num_segments)))
    elif status in ("undelivered", "failed"):
        _, code = _split_outcome(row.outcome)
        code = code or 30008
        new = replace(new, error_code=code, error_message=ERROR_MESSAGES.get(code, "Unknown error"))
    return new


def next_call(row: SandboxCallRow, at: float, lease_until: float) -> SandboxCallRow:
    status = _after(call_path(row.outcome), row.status)
    if status is None:
        return replace(row, next_step_at=None)
    stamp = clock.iso(at)
    new = replace(row, status=status, date_updated=stamp, next_step_at=lease_until)
    if status == "in-progress":
        new = replace(new, start_time=stamp)
    elif status == "completed":
        duration = call_duration(row.start_time, at)
        new = replace(new, end_time=stamp, duration=duration, price=_price(CALL_PRICE * -(-duration // 60)))
    elif status in ("busy", "no-answer", "canceled", "failed"):
        new = replace(new, start_time=row.start_time or stamp, end_time=stamp, duration=0)
    return new


def call_events(old: str, new: str) -> list[str]:
    """The StatusCallbackEvent names a call's move from ``old`` to ``new`` fires, in order."""
    if new == "ringing":
        return ["initiated", "ringing"]
    if new == "in-progress":
        return ["answered"]
    return ["completed"]  # every final status, as Twilio's "completed" event (a failed call: never dialled)


def _call_event_order(outcome: str | None) -> list[str]:
    path = call_path(outcome)
    out: list[str] = []
    for old, new in itertools.pairwise(path):
        out += call_events(old, new)
    return out


# -- callback parameters (what Twilio posts; the same params give the Event Streams event)


def message_params(row: SandboxMessageRow) -> dict[str, str]:
    params = {
        "MessageSid": row.sid,
        "MessageStatus": row.status,
        "SmsSid": row.sid,
        "SmsStatus": row.status,
        "AccountSid": row.account_sid,
        "From": row.from_number,
        "To": row.to_number,
        "ApiVersion": API_VERSION,
    }
    if row.error_code is not None:
        params["ErrorCode"] = str(row.error_code)
    if row.messaging_service_sid:
        params["MessagingServiceSid"] = row.messaging_service_sid
    return params


def _rfc2822(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def call_params(row: SandboxCallRow, event: str, at: float) -> dict[str, str]:
    """The callback of ``event`` (initiated, ringing, answered, completed) for the call as ``row`` is now.
    ``SequenceNumber`` counts the callbacks this call sends (those in its StatusCallbackEvent list)."""
    wanted = (row.status_callback_events or "completed").split()
    before = _call_event_order(row.outcome)
    before = before[: before.index(event)] if event in before else before
    params = {
        "CallSid": row.sid,
        "CallStatus": CALL_EVENT_STATUS.get(event, row.status),
        "AccountSid": row.account_sid,
        "From": row.from_number,
        "To": row.to_number,
        "Caller": row.from_number,
        "Called": row.to_number,
        "Direction": row.direction,
        "ApiVersion": API_VERSION,
        "Timestamp": _rfc2822(at),
        "SequenceNumber": str(sum(1 for e in before if e in wanted)),
        "CallbackSource": "call-progress-events",
    }
    if event == "completed":
        params["CallDuration"] = str(row.duration or 0)
    return params


# -- the clock


@dataclass
class _Step:
    kind: kinds.Kind
    old: Any
    new: Any
    at: float
    lease: float
    callbacks: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (event, params)


class StatusClock:
    """Runs the steps (see the module doc). ``now``/``sleep`` are injectable so unit tests step it
    with a fake clock through :meth:`tick`; :meth:`start` runs it in the background."""

    def __init__(
        self,
        store: Store,
        sandbox: Sandbox,
        accounts: Accounts,
        publisher: Publisher,
        *,
        allow_private: bool,
        now: Callable[[], float] = clock.now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        batch: int = 200,
        max_in_flight: int = 256,
        poll_interval: float = 5.0,
        lease: float = LEASE_SECONDS,
        callback_timeout: float = CALLBACK_TIMEOUT,
        resolver: AsyncResolver | None = None,
        stop_grace: float = 2.0,
    ) -> None:
        self.store = store
        self.sandbox = sandbox
        self.accounts = accounts
        self.publisher = publisher
        self.now = now
        self.sleep = sleep
        self.batch = batch
        self.max_in_flight = max_in_flight
        self.poll_interval = poll_interval  # rows created by other processes are seen at least this often
        self.lease = lease
        self.stop_grace = stop_grace
        self.http = HttpClient(
            allow_private=allow_private, timeout=callback_timeout, max_in_flight=64, resolver=resolver
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._accounts: dict[str, tuple[float, AccountRow | None]] = {}

    # -- lifetime

    async def start(self) -> None:
        if self._task is not None:
            return
        self.sandbox.on_created.append(self.on_created)
        self._task = asyncio.create_task(self._loop(), name="sandbox-status-clock")

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.sandbox.on_created.remove(self.on_created)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        if self._running:  # a step cut short stays leased for a minute: let the quick ones finish
            await asyncio.wait(set(self._running), timeout=self.stop_grace)
        tasks = [t for t in (task, *self._running) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
        await self.http.close()

    def wake(self) -> None:
        self._wake.set()

    async def on_created(self, kind: str, row: Any) -> None:
        """Awaited by the Sandbox after a message or call is stored: publish ``queued`` and wake up.
        Never raises: the resource exists and its creation must answer 201."""
        try:
            if kind == "message" and (await self.sandbox.behaviour(row.account_sid)).publish_events:
                account = await self._account(row.account_sid)
                if account is not None:
                    await self._publish(account, "message", message_params(row), row.status_callback, self.now())
        except Exception:  # logged; the message still moves on
            log.exception("sandbox: publishing the queued event of %s failed", getattr(row, "sid", "?"))
        self.wake()

    # -- stepping

    async def tick(self, limit: int = 1000) -> int:
        """Claim what is due now and run those steps to the end; the number of steps (tests)."""
        steps, _ = await self._claim(limit)
        await asyncio.gather(*(self._finish(s) for s in steps))
        return len(steps)

    async def _claim(self, limit: int) -> tuple[list[_Step], bool]:
        """Claim up to ``limit`` due rows (messages first, up to half unless calls leave room, so
        neither starves the other); (steps, whether more may be due)."""
        at = self.now()
        until = at + self.lease
        m_room = max(1, limit - limit // 2)
        msgs = await self.store.sandbox.claim_due(
            kinds.MESSAGE, at, until, m_room, lambda r: next_message(r, at, until)
        )
        c_room = max(1, limit - len(msgs))
        calls = await self.store.sandbox.claim_due(kinds.CALL, at, until, c_room, lambda r: next_call(r, at, until))
        steps = [self._step(kinds.MESSAGE, o, n, at, until) for o, n in msgs]
        steps += [self._step(kinds.CALL, o, n, at, until) for o, n in calls]
        return steps, len(msgs) == m_room or len(calls) == c_room

    def _step(self, kind: kinds.Kind, old: Any, new: Any, at: float, until: float) -> _Step:
        step = _Step(kind, old, new, at, until)
        if new.status == old.status:  # already final (or off its path): nothing to tell
            return step
        if kind is kinds.MESSAGE:
            step.callbacks.append(("message", message_params(new)))
        else:
            step.callbacks += [(e, call_params(new, e, at)) for e in call_events(old.status, new.status)]
        return step

    async def _finish(self, step: _Step) -> None:
        """Callbacks and events of a claimed step, then the release. Errors are logged: the lease
        then runs out and the row moves on."""
        row = step.new
        try:
            if step.callbacks:
                account = await self._account(row.account_sid)
                b = await self.sandbox.behaviour(row.account_sid)
                if account is not None and account.status == "active":  # a closed account hears nothing
                    await self._tell(step, account, b)
                step_seconds = b.step_seconds
            else:
                step_seconds = 0.0
            final = row.next_step_at is None
            nxt = None if final or _is_final(step) else self.now() + step_seconds
            if not final and not await self.store.sandbox.release(step.kind, row.sid, step.lease, nxt):
                log.warning("sandbox: %s %s: lease lost before its step finished", step.kind.name, row.sid)
        except asyncio.CancelledError:
            raise
        except Exception:  # the lease expires and the row is taken again
            log.exception("sandbox: step of %s %s failed", step.kind.name, row.sid)

    async def _tell(self, step: _Step, account: AccountRow, b: Behaviour) -> None:
        row = step.new
        wanted = None if step.kind is kinds.MESSAGE else set((row.status_callback_events or "completed").split())
        token: str | None = None
        for event, params in step.callbacks:
            if row.status_callback and (wanted is None or event in wanted):
                token = token or self.accounts.token_of(account)
                await self._post(row.status_callback, params, token)
            if b.publish_events:
                kind = "message" if step.kind is kinds.MESSAGE else "call"
                await self._publish(account, kind, params, row.status_callback, step.at)

    async def _post(self, url: str, params: Mapping[str, str], token: str) -> None:
        what = params.get("MessageSid") or params.get("CallSid")
        status = params.get("MessageStatus") or params.get("CallStatus")
        try:
            clean, authorization = split_userinfo(url.partition("#")[0])
            wire = wire_url(clean)  # the exact text requested and signed
        except ValueError as exc:  # stored before the create-time check existed: lose this callback only
            log.warning("sandbox: StatusCallback of %s (%s) has an unusable URL: %s", what, status, exc)
            return
        headers = {
            TWILIO_SIGNATURE_HEADER: twilio_form_signature(wire, params, token),
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": USER_AGENT,
            "I-Twilio-Idempotency-Token": _idempotency_token(params),
        }
        if authorization:
            headers["Authorization"] = authorization
        try:
            async with self.http.request(
                "POST", URL(wire, encoded=True), data=urlencode(params).encode(), headers=headers
            ) as resp:
                await read_excerpt(resp)
                if resp.status >= 400:
                    log.warning("sandbox: StatusCallback of %s (%s) to %s answered %d", what, status, wire,
                                resp.status)  # fmt: skip
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - not retried, as Twilio does not retry status callbacks
            outcome = outcome_for_exception(exc, self.http.timeout, "StatusCallback")
            log.warning("sandbox: StatusCallback of %s (%s) to %s failed: %s", what, status, wire, outcome.message)

    async def _publish(
        self, account: AccountRow, kind: str, params: Mapping[str, str], url: str | None, at: float
    ) -> None:
        """The Event Streams event the bridge would publish for this callback (bridge/mapping.py)."""
        multi = {k: [v] for k, v in params.items()}
        url = split_userinfo(url)[0] if url else url  # a callback's user:password never goes into an event
        if kind == "message":
            event = message_status_event(account.sid, multi, url or "", at)
            if event is not None and not url:
                event["data"].pop("statusCallBackUrl", None)
        else:
            event = call_status_event(account.sid, multi, url or "", at)
        if event is None:
            return
        result = await self.publisher.publish(account.sid, account.parent_sid or account.sid, [event])
        for r in result.rejected:
            log.warning("sandbox: event %s of %s rejected: %s", event["type"], account.sid, r.message)

    async def _account(self, sid: str) -> AccountRow | None:
        """The account row, cached for a second (its token signs every callback of a step)."""
        hit = self._accounts.get(sid)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        row = await self.store.accounts.get(sid)
        self._accounts[sid] = (now + 1.0, row)
        return row

    # -- the background loop

    async def _loop(self) -> None:
        while True:
            try:
                free = self.max_in_flight - len(self._running)
                more = False
                if free > 0:
                    steps, more = await self._claim(min(free, self.batch))
                    for s in steps:
                        self._spawn(s)
                    more = more or free <= len(steps)
                await self._idle(busy=free <= 0 or more)
            except asyncio.CancelledError:
                raise
            except Exception:  # a store hiccup must not stop the clock; leases expire and rows move on
                log.exception("sandbox: status clock round failed")
                await self.sleep(self.poll_interval)

    def _spawn(self, step: _Step) -> None:
        task = asyncio.create_task(self._finish(step))
        self._running.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._running.discard(t)
            self._wake.set()  # its row may be due again at once (step 0), and a slot is free

        task.add_done_callback(done)

    async def _idle(self, busy: bool) -> None:
        """Sleep until the next row is due, a wake-up (a new row, a finished step) or the poll interval.
        ``busy``: more may be due already; wait only for room (a finished step) unless there is room."""
        self._wake.clear()  # cleared before reading the next due time, so a later wake is never lost
        if busy:
            if self.max_in_flight - len(self._running) > 0:
                return
            wait = self.poll_interval
        else:
            due = await self.store.sandbox.next_due()
            wait = self.poll_interval if due is None else min(self.poll_interval, due - self.now())
            if wait <= 0:
                return
        sleeper = asyncio.ensure_future(self.sleep(wait))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (sleeper, waker):
                t.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)


def _is_final(step: _Step) -> bool:
    row = step.new
    if step.kind is kinds.MESSAGE:
        return _after(message_path(row.outcome), row.status) is None
    return _after(call_path(row.outcome), row.status) is None


def _idempotency_token(params: Mapping[str, str]) -> str:
    """Stable for the same callback (Twilio sends one on every webhook)."""
    parts = "\x1f".join(f"{k}={params[k]}" for k in sorted(params) if k != "Timestamp")
    return hashlib.sha256(parts.encode()).hexdigest()[:32]
