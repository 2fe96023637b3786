"""The twilio-sms sink's side of the bridge (domain, no HTTP): status callbacks of the texts it sent, and
the opt-out keywords of incoming messages.

A status callback (``/bridge/{AccountSid}/sms/{SinkSid}/status``) is verified with the sink's auth token,
or, when the sink authenticates with an API key (whose secret Twilio never signs with), with the account's
bridge credentials. It is then (a) published as the Twilio messaging event, as ``/messaging/status`` does,
and (b) recorded as a Segment track event on the text's profile ("SMS Sent", "SMS Delivered", "SMS
Undelivered", "SMS Failed"; the ledger row gives ``userId``/``anonymousId``) through the tracking ingest,
so the loop closes: those events can trigger further destinations. The ledger row's status follows.

The ledger row's status only moves forward (:func:`earlier_statuses`): Twilio does not promise callbacks in
order, and a late "sent" must not overwrite "delivered".

Incoming messages whose body is one of Twilio's opt-out keywords (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END,
QUIT) record the sender's number as opted out for the account (``store.sms`` opt-outs, which the sink checks
against every recipient, whether a profile holds the number or not) and mark it on every profile holding it;
START, YES, UNSTOP opt back in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from .. import clock
from ..crypto import Box
from ..ids import normalize_sid
from ..profiles.view import ProfileLookup
from ..sinks.twilio_sms.mapping import normalize_e164
from ..store.base import Store
from ..store.records import AccountRow, SmsRow, TrackingMessageRow
from ..store.repos.sms import OPT_OUT_INBOUND
from .mapping import CallbackParams, first

log = logging.getLogger("eventstreams.bridge")

SINK_TYPE = "twilio-sms"
#: MessageStatus → the track event recorded on the profile; other statuses are not recorded
TRACK_EVENTS = {
    "sent": "SMS Sent",
    "delivered": "SMS Delivered",
    "undelivered": "SMS Undelivered",
    "failed": "SMS Failed",
}
#: how long a claim may wait for Twilio's answer and still be matched to an early callback (the sink timeout
#: is far shorter; a crash leaves the claim unanswered for good)
PENDING_S = 120.0
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
#: the ledger's statuses in the order a text goes through them; the last rank is terminal
#: ("claimed": the sink's claim before Twilio answered)
STATUS_RANK = {
    "claimed": 0,
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
}


class TrackingIngest(Protocol):
    """The tracking domain's entry for messages this server makes itself (the lead's ``runtime.ingest``)."""

    async def record(self, account_sid: str, messages: Sequence[dict[str, Any]]) -> list[TrackingMessageRow]: ...


@dataclass(frozen=True, slots=True)
class SmsTarget:
    """Whose callback it is: the eventstreams account, the sink, the Twilio account it sends as, the key."""

    account: AccountRow
    sink_sid: str
    twilio_account_sid: str
    token: str


def opt_keyword(body: str | None) -> bool | None:
    """``True`` for an opt-out keyword, ``False`` for an opt-in one, else ``None`` (Twilio matches the
    whole body, trimmed, any case)."""
    word = (body or "").strip().upper()
    if word in OPT_OUT:
        return True
    if word in OPT_IN:
        return False
    return None


def earlier_statuses(status: str) -> list[str]:
    """The ledger statuses a callback's ``status`` may replace: those ranked before it. A terminal status
    (delivered, undelivered, failed, canceled) is replaced by nothing; a status Twilio may add later
    (unranked) only replaces the claim."""
    rank = STATUS_RANK.get(status)
    if rank is None:
        return ["claimed"]
    return [s for s, r in STATUS_RANK.items() if r < rank]


def status_track(
    params: CallbackParams, user_id: str | None, anonymous_id: str | None, now: float
) -> dict[str, Any] | None:
    """The Segment track message a status callback becomes, or ``None`` for a status not recorded. Its
    ``messageId`` comes from the SID and status, so a repeated callback is deduplicated by the ingest."""
    sid = first(params, "MessageSid") or first(params, "SmsSid")
    status = (first(params, "MessageStatus") or first(params, "SmsStatus") or "").lower()
    event = TRACK_EVENTS.get(status)
    if sid is None or event is None or (user_id is None and anonymous_id is None):
        return None
    code = first(params, "ErrorCode")
    properties: dict[str, Any] = {
        "messageSid": sid,
        "errorCode": int(code) if code is not None and code.isdigit() else code,
        "to": first(params, "To"),
        "from": first(params, "From"),
        "status": status,
    }
    message: dict[str, Any] = {
        "type": "track",
        "event": event,
        "messageId": "sms-" + hashlib.sha256(f"{sid}\x1f{status}".encode()).hexdigest()[:32],
        "properties": properties,
        "timestamp": clock.iso_ms(now),
        "context": {"library": {"name": "eventstreams-twilio-sms"}},
    }
    if user_id is not None:
        message["userId"] = user_id
    if anonymous_id is not None:
        message["anonymousId"] = anonymous_id
    return message


class SmsCallbacks:
    """The domain service the bridge's SMS routes call. ``ingest`` and ``profiles`` are wired by the
    runtime when it has them; without them, status callbacks are published and update the ledger but no
    track event is recorded, and opt-out keywords change nothing."""

    def __init__(self, store: Store, box: Box, region: str = "US") -> None:
        self.store = store
        self.box = box
        self.region = region  # an inbound From in national format (Twilio sends E.164) is read here
        self.ingest: TrackingIngest | None = None
        self.profiles: ProfileLookup | None = None

    async def target(self, raw_account: str, raw_sink: str) -> SmsTarget | None:
        """The callback's target when ``raw_account`` is an active account holding ``raw_sink``, a
        twilio-sms sink with a key to verify against; ``None`` otherwise (answered alike: 403)."""
        sid = normalize_sid("AC", raw_account)
        sink_sid = normalize_sid("DG", raw_sink)
        account = await self.store.accounts.get(sid) if sid else None
        if account is None or account.status != "active" or sink_sid is None:
            return None
        row = await self.store.sinks.get(account.sid, sink_sid)
        if row is None or row.sink_type != SINK_TYPE:
            return None
        cfg = orjson.loads(self.box.open(row.configuration_sealed))
        twilio_sid = str(cfg.get("account_sid") or "")
        token = cfg.get("auth_token")
        if not token:  # an API key: Twilio signs with the account's auth token, which the bridge may hold
            bridge = await self.store.bridge.get(account.sid)
            if bridge is None or bridge["twilio_account_sid"] != twilio_sid:
                return None
            token = self.box.open(bridge["token_sealed"])
        return SmsTarget(account, sink_sid, twilio_sid, str(token))

    async def status(self, target: SmsTarget, params: Mapping[str, Sequence[str]], now: float) -> str | None:
        """Update the ledger and record the track event; the track message's id, or ``None`` when nothing
        was recorded (an unknown message SID, a status not recorded, no ingest)."""
        sid = first(params, "MessageSid") or first(params, "SmsSid")
        status = (first(params, "MessageStatus") or first(params, "SmsStatus") or "").lower()
        if sid is None or not status:
            return None
        account_sid = target.account.sid
        row = await self.store.sms.by_message_sid(account_sid, sid)
        if row is None:
            row = await self._overtaken(target, sid, first(params, "To"), now)
        if row is None or row.sink_sid != target.sink_sid:
            return None
        code = first(params, "ErrorCode")
        await self.store.sms.set_status(
            account_sid, sid, status, int(code) if code is not None and code.isdigit() else None, clock.iso(now),
            earlier_statuses(status),
        )
        message = status_track(params, row.user_id, row.anonymous_id, now)
        if message is None:
            return None
        if self.ingest is None:
            log.info("sms %s: %s not recorded as a track event (no tracking ingest in this runtime)", sid, status)
            return None
        try:
            await self.ingest.record(account_sid, [message])
        except Exception:  # the callback is published and the ledger updated; Twilio would not retry it anyway
            log.exception("sms %s: could not record %s as a track event", sid, message["event"])
            return None
        return str(message["messageId"])

    async def _overtaken(self, target: SmsTarget, sid: str, to: str | None, now: float) -> SmsRow | None:
        """A callback that arrived before the sender recorded Twilio's answer: the one claim to ``To`` still
        awaiting an answer is this text (with two, which one is unknowable: nothing is recorded)."""
        if to is None:
            return None
        since = int((now - PENDING_S) * 1000)
        pending = await self.store.sms.pending_for(target.account.sid, target.sink_sid, to, since)
        if len(pending) != 1:
            return None
        row = pending[0]
        await self.store.sms.sent(row, sid, "queued", clock.iso(now))
        return dataclasses.replace(row, message_sid=sid)

    async def inbound(self, account_sid: str, params: Mapping[str, Sequence[str]]) -> int | None:
        """Apply an opt-out/opt-in keyword of an incoming message: the account's opt-out of the number (what
        the sink checks every recipient against), and the flag of the profiles holding it. The number of
        profiles changed, or ``None`` when the body is no keyword."""
        wanted = opt_keyword(first(params, "Body"))
        raw = first(params, "From")
        if wanted is None or raw is None:
            return None
        phone = normalize_e164(raw, self.region)
        if phone is not None:  # a short code or a sender name is no number the sink could text
            if wanted:
                await self.store.sms.opt_out(account_sid, phone, OPT_OUT_INBOUND, clock.iso(clock.now()))
            else:
                await self.store.sms.opt_in(account_sid, phone)
        if self.profiles is None:
            return 0
        return await self.profiles.set_opted_out(account_sid, raw, wanted)
