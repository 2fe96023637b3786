"""The twilio-sms sender: one tracking message → at most one text, claimed in the ledger first.

Per event: parse the CloudEvent (``data`` is the Segment message) → the profile (``ctx.extra["profiles"]``,
a :class:`~eventstreams.profiles.view.ProfileLookup`; none: no profile) → the first matching mapping (none:
``SKIPPED`` "no mapping matched") → the checks (profile opted out, recipient, the recipient's number opted
out in this account, body) → the ledger claim
(``ctx.extra["store"]``'s ``sms`` area; the per-profile rate is counted there) → ``POST Messages.json`` →
the answer recorded in the ledger and in the outcome's message (the delivery log's response text).

Every check that fails is a non-retried ``DROPPED`` outcome (91303, message ``not sent: <reason>``):
dead-lettered, logged, replayable once the cause is fixed. Twilio's answers: 2xx delivered (message SID
and status logged); 408, 423, 429 (``Retry-After`` honoured by the retry policy) and 5xx except 501
retried, the claim released; every other answer terminal (21211 and 21610 among them; 21610, an
unsubscribed recipient, also records the number's opt-out, so it is not tried again). A request that
could not connect is retried; one that got no answer (timeout, dropped connection) may have reached
Twilio, so it keeps its claim and is not retried: never twice beats at-least-once for texts.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from yarl import URL

from ... import clock
from ...netpolicy import AsyncResolver, DestinationRefused
from ...outcome import Outcome, OutcomeKind, classify_http
from ...profiles.view import ProfileLookup, ProfileView
from ...store.base import Store
from ...store.records import SmsRow
from ...store.repos.sms import OPT_OUT_TWILIO
from ..base import OutgoingEvent, Pacer, SinkContext, SinkSender
from ..http import USER_AGENT, HttpClient, outcome_for_exception, read_excerpt
from .mapping import SmsMapping, choose, normalize_e164, parse_mappings, recipient_candidates, template_context
from .template import TemplateError, render

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_BODY",
    "TwilioSmsSender",
    "callback_path",
    "not_sent",
]

log = logging.getLogger("eventstreams.delivery")

DEFAULT_BASE_URL = "https://api.twilio.com"
#: Twilio's limit on a message body (characters)
MAX_BODY = 1600
RATE_WINDOW_MS = 3600 * 1000
RETRIED_4XX = frozenset({408, 423, 429})
#: Twilio's error for a recipient who unsubscribed (replied STOP to the sending number)
UNSUBSCRIBED = 21610


def callback_path(account_sid: str, sink_sid: str) -> str:
    """Where this server receives a twilio-sms sink's status callbacks (bridge/api.py)."""
    return f"/bridge/{account_sid}/sms/{sink_sid}/status"


def not_sent(reason: str) -> Outcome:
    """A check that failed: nothing sent, not retried (dead letter, replayable)."""
    return Outcome(OutcomeKind.DROPPED, message=f"not sent: {reason}", retryable=False)


def _skipped(reason: str) -> Outcome:
    return Outcome(OutcomeKind.SKIPPED, message=reason)


class TwilioSmsSender(SinkSender):
    """Delivers tracking messages of a ``twilio-sms`` sink as texts (see the module doc)."""

    max_chunk = 50  # every event is its own request and ledger claim

    def __init__(self, ctx: SinkContext, *, resolver: AsyncResolver | None = None) -> None:
        cfg = ctx.configuration
        store = ctx.extra.get("store")
        if not isinstance(store, Store):
            raise ValueError("the twilio-sms sink needs the store (ctx.extra['store']) for its ledger")
        self._store = store
        self._profiles: ProfileLookup | None = ctx.extra.get("profiles")
        self._ctx = ctx
        self.mappings: list[SmsMapping] = parse_mappings(cfg["mappings"])
        twilio_sid = str(cfg["account_sid"])
        if cfg.get("api_key_sid"):
            user, secret = str(cfg["api_key_sid"]), str(cfg["api_key_secret"])
        else:
            user, secret = twilio_sid, str(cfg["auth_token"])
        self._authorization = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")
        base = str(cfg.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.url = f"{base}/2010-04-01/Accounts/{twilio_sid}/Messages.json"
        sender = cfg.get("from")
        self._sender = {"From": sender} if sender else {"MessagingServiceSid": cfg["messaging_service_sid"]}
        callback_base = cfg.get("status_callback_base_url") or ctx.extra.get("base_url")
        self.status_callback = (
            str(callback_base).rstrip("/") + callback_path(ctx.account_sid, ctx.sid) if callback_base else None
        )
        self.region = str(cfg.get("default_region") or "US")
        self.truncate = bool(cfg.get("truncate", False))
        self.per_hour = int(cfg.get("per_profile_per_hour", 5))
        rate = cfg.get("max_per_second")
        self.max_rate = float(rate) if rate else None
        # a claim older than this with no answer was left by a crash mid-request (never re-sent)
        self.claim_lease_ms = int(max(30.0, 3 * ctx.timeout) * 1000)
        self._http = HttpClient(
            allow_private=ctx.allow_private, timeout=ctx.timeout, max_in_flight=ctx.max_in_flight, resolver=resolver
        )
        self._slots = asyncio.Semaphore(ctx.max_in_flight)

    async def send(self, events: Sequence[OutgoingEvent], pacer: Pacer) -> list[Outcome]:
        return list(await asyncio.gather(*(self._one(event, pacer) for event in events)))

    async def close(self) -> None:
        await self._http.close()

    # -- one event ---------------------------------------------------------------------------

    async def _one(self, event: OutgoingEvent, pacer: Pacer) -> Outcome:
        try:
            prepared = await self.prepare(event)
        except Exception as exc:  # noqa: BLE001 - a profile/store hiccup: retried; send() never raises
            return Outcome.internal(f"{type(exc).__name__}: {exc}")
        if isinstance(prepared, Outcome):
            return prepared
        row, body = prepared
        async with self._slots:
            # the throttle first: a claim is taken only right before its request, so a crash while waiting
            # leaves no claim that would later read as "unknown outcome"
            await pacer.wait(1)
            now = clock.now()
            row = dataclasses.replace(row, claimed_ms=int(now * 1000), date_created=clock.iso(now),
                                      date_updated=clock.iso(now))  # fmt: skip
            outcome = await self._claimed(row, body)
            pacer.observe(outcome)
        return outcome

    async def _claimed(self, row: SmsRow, body: str) -> Outcome:
        try:
            claim = await self._store.sms.claim(
                row, self.claim_lease_ms, row.claimed_ms - RATE_WINDOW_MS, self.per_hour
            )
        except Exception as exc:  # noqa: BLE001
            return Outcome.internal(f"ledger claim failed: {type(exc).__name__}: {exc}")
        if claim.state == "sent":
            assert claim.row is not None
            return Outcome(
                OutcomeKind.SUCCESS,
                message=f"already sent as {claim.row.message_sid} (status {claim.row.status}) to {row.recipient}:"
                " not sent again",
            )
        if claim.state == "in_flight":
            return Outcome.internal(f"an earlier attempt to text {row.recipient} for this message is in flight")
        if claim.state == "unknown":
            return not_sent(
                "unknown outcome of an earlier attempt (claimed, no answer from Twilio recorded): not sent again,"
                " so the text is never sent twice"
            )
        if claim.state == "rate_limited":
            return not_sent(f"per-profile rate: {self.per_hour} texts in the last hour to this profile")
        return await self._post(row, body)

    async def prepare(self, event: OutgoingEvent) -> tuple[SmsRow, str] | Outcome:
        """The ledger row to claim and the body to send, or the outcome that ends the event here (a
        skip or a failed check); nothing is written. Raises only for a profile or opt-out lookup failure."""
        try:
            doc = orjson.loads(event.payload)
        except orjson.JSONDecodeError:
            return not_sent("the event is not valid JSON")
        message = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(message, dict):
            return not_sent("the event's data is not a Segment message")
        kind = message.get("type")
        if kind != "track":  # e.g. an identify, or Event Streams' sink test event: nothing to map
            shown = repr(kind[:40]) if isinstance(kind, str) else "None" if kind is None else type(kind).__name__
            return _skipped(f"not a Segment track message (type {shown}): no mapping applies")
        profile: ProfileView | None = None
        if self._profiles is not None:
            profile = await self._profiles.for_message(self._ctx.account_sid, message)
        ctx = template_context(message, profile)
        mapping = choose(self.mappings, message, ctx)
        if mapping is None:
            return _skipped(f"no mapping matched: track event {str(message.get('event'))[:100]!r}")
        if profile is not None and profile.opted_out:
            return not_sent(f"profile {profile.id} has opted out of texts")
        recipient = self._recipient(mapping, message, profile, ctx)
        if isinstance(recipient, Outcome):
            return recipient
        # the number itself, wherever it came from: a STOP binds the number, not only a profile holding it
        opt_out = await self._store.sms.opted_out(self._ctx.account_sid, recipient)
        if opt_out is not None:
            how = "Twilio answered 21610" if opt_out.source == OPT_OUT_TWILIO else "STOP received"
            return not_sent(f"{recipient} has opted out of texts ({how} {opt_out.date_created})")
        try:
            body = render(mapping.body, ctx).strip()
        except TemplateError as exc:
            return not_sent(f"body {exc}")
        if not body:
            return not_sent("the rendered body is empty")
        if len(body) > MAX_BODY:
            if not self.truncate:
                return not_sent(f"the rendered body is {len(body)} characters; Twilio accepts at most {MAX_BODY}")
            body = body[:MAX_BODY]
        now = clock.now()
        message_id = message.get("messageId")
        user_id, anonymous_id = message.get("userId"), message.get("anonymousId")
        row = SmsRow(
            account_sid=self._ctx.account_sid,
            sink_sid=self._ctx.sid,
            message_id=str(message_id) if isinstance(message_id, str) and message_id else event.id,
            recipient=recipient,
            event_id=event.id,
            profile_id=profile.id if profile is not None else None,
            user_id=str(user_id) if user_id is not None else (profile.user_id if profile is not None else None),
            anonymous_id=str(anonymous_id) if anonymous_id is not None else None,
            rate_key=profile.id if profile is not None else recipient,
            message_sid=None,
            status="claimed",
            error_code=None,
            claimed_ms=int(now * 1000),
            date_created=clock.iso(now),
            date_updated=clock.iso(now),
        )
        return row, body

    def _recipient(
        self, mapping: SmsMapping, message: dict[str, Any], profile: ProfileView | None, ctx: dict[str, Any]
    ) -> str | Outcome:
        if mapping.to is not None:
            try:
                value: Any = render(mapping.to, ctx).strip()
            except TemplateError as exc:
                return not_sent(f"to {exc}")
            where = "the mapping's to"
            if not value:
                return not_sent("no phone: the mapping's to rendered empty")
        else:
            found = [(w, v) for w, v in recipient_candidates(message, profile) if _phone_value(v)]
            if not found:
                return not_sent(
                    "no phone: the profile has none, and neither properties.phone nor context.traits.phone is set"
                )
            where, value = found[0]
            if where == "the profile's phone" and profile is not None and profile.phone_valid:
                return str(value)
        phone = normalize_e164(str(value), self.region)
        if phone is None:
            return not_sent(f"{where} is not a valid phone number ({str(value)[:40]!r}, region {self.region})")
        return phone

    # -- Twilio ------------------------------------------------------------------------------

    async def _post(self, row: SmsRow, body: str) -> Outcome:
        form = {"To": row.recipient, **self._sender, "Body": body}
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        headers = {
            "Authorization": self._authorization,
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            async with self._http.request("POST", URL(self.url), data=urlencode(form), headers=headers) as resp:
                excerpt = await read_excerpt(resp)
                status, resp_headers = resp.status, resp.headers
        except Exception as exc:  # noqa: BLE001 - send() must not raise for one bad request
            outcome = outcome_for_exception(exc, self._ctx.timeout, "Twilio")
            if _certainly_unsent(exc, outcome):
                await self._release(row)
                return outcome
            # the request may have reached Twilio: keep the claim, do not retry
            return not_sent(f"no answer from Twilio ({outcome.describe()}); it may have sent the text, so it is not"
                            " retried (never twice)")  # fmt: skip
        answer = _json(excerpt)
        if 200 <= status <= 299:
            sid = str(answer.get("sid") or "")
            state = str(answer.get("status") or "queued")
            text = f"Twilio {sid or '(no sid)'} {state} to {row.recipient}"
            try:
                if sid:
                    await self._store.sms.sent(row, sid, state, clock.iso(clock.now()))
            except Exception:  # the text is sent; the claim (no answer recorded) still stops a re-send
                log.warning("sink %s: could not record message %s in the ledger", row.sink_sid, sid, exc_info=True)
            return Outcome(OutcomeKind.SUCCESS, status=status, message=text)
        outcome = classify_http(status, resp_headers, excerpt)
        code = answer.get("code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        text = f"Twilio error {code}: {answer.get('message')}" if code is not None else outcome.message
        retryable = status in RETRIED_4XX or (500 <= status <= 599 and status != 501)
        outcome = Outcome(
            OutcomeKind.HTTP_STATUS, status=status, retry_after=outcome.retry_after, message=text, retryable=retryable
        )
        try:
            if retryable:
                await self._store.sms.release(row)
            else:
                await self._store.sms.rejected(row, code, clock.iso(clock.now()))
                if code == UNSUBSCRIBED:
                    await self._store.sms.opt_out(row.account_sid, row.recipient, OPT_OUT_TWILIO,
                                                  clock.iso(clock.now()))  # fmt: skip
        except Exception:  # a stale claim stops a retry from sending: it ends "unknown", never twice
            log.warning("sink %s: could not update the ledger", row.sink_sid, exc_info=True)
        return outcome

    async def _release(self, row: SmsRow) -> None:
        try:
            await self._store.sms.release(row)
        except Exception:  # see above: a stale claim only costs this text, never doubles it
            log.warning("sink %s: could not release a claim", row.sink_sid, exc_info=True)


def _phone_value(value: Any) -> bool:
    """A value that may be a phone: non-blank text, or a JSON integer (``4155550100``; profiles accept
    them too); ``true`` is no phone."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and bool(value.strip()))


def _certainly_unsent(exc: BaseException, outcome: Outcome) -> bool:
    """The request never reached Twilio: refused by the SSRF policy, or no connection was made."""
    refused = outcome.kind is OutcomeKind.CONNECT_ERROR and outcome.retryable is False
    return refused or isinstance(exc, DestinationRefused | aiohttp.ClientConnectorError | aiohttp.InvalidURL)


def _json(excerpt: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(excerpt)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}
