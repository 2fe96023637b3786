"""The sandbox's HTTP surface: Twilio REST 2010-04-01 Messages, Calls (+ Feedback),
Conferences, Transcriptions and Addresses under ``/2010-04-01/Accounts/{Sid}/``, JSON
form only, in Twilio's shapes and errors; plus ``Sandbox.json``, our switches for
the status clock and injected faults. Accounts and Keys are the accounts surface's.

Each handler: authenticate (account SID + token, or API key + secret), resolve the
path's account among those the caller may see, apply any injected fault, parse,
call ``runtime.sandbox``, render.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..api import openapi
from ..api.accounts import INVALID_PAGE_TOKEN
from ..api.context import auth
from ..api.http import JSON, PAGING, TIME_SID, Paging, Params, form, legacy_meta, paging, query
from ..api.surface import Surface
from ..api.twilio_errors import TWILIO_ERRORS
from ..errors import AUTH_FAILED, TwilioError, not_found
from ..runtime import Runtime
from ..store.records import AccountRow, Page
from . import views
from .service import date_filter

_BASE = "/2010-04-01/Accounts/{account}"
_MESSAGE_CREATE = {
    "To", "From", "MessagingServiceSid", "Body", "MediaUrl", "StatusCallback", "ApplicationSid", "MaxPrice",
    "ProvideFeedback", "Attempt", "ValidityPeriod", "ForceDelivery", "ContentRetention", "AddressRetention",
    "SmartEncoded", "PersistentAction", "TrafficType", "ShortenUrls", "ScheduleType", "SendAt", "SendAsMms",
    "ContentVariables", "RiskCheck", "FallbackFrom", "ContentSid",
}  # fmt: skip
_CALL_CREATE = {
    "To", "From", "Url", "Twiml", "ApplicationSid", "Method", "FallbackUrl", "FallbackMethod", "StatusCallback",
    "StatusCallbackEvent", "StatusCallbackMethod", "SendDigits", "Timeout", "Record", "RecordingChannels",
    "RecordingStatusCallback", "RecordingStatusCallbackMethod", "SipAuthUsername", "SipAuthPassword",
    "MachineDetection", "MachineDetectionTimeout", "RecordingStatusCallbackEvent", "Trim", "CallerId",
    "MachineDetectionSpeechThreshold", "MachineDetectionSpeechEndThreshold", "MachineDetectionSilenceTimeout",
    "AsyncAmd", "AsyncAmdStatusCallback", "AsyncAmdStatusCallbackMethod", "Byoc", "CallReason", "CallToken",
    "RecordingTrack", "TimeLimit", "ClientNotificationUrl",
}  # fmt: skip
_ADDRESS_FIELDS = ("CustomerName", "Street", "City", "Region", "PostalCode", "IsoCountry", "FriendlyName",
                   "StreetSecondary")  # fmt: skip
# Sandbox.json form fields → Behaviour keys
_SWITCHES = {
    "StepSeconds": "step_seconds",
    "FailureRatio": "failure_ratio",
    "Outcomes": "outcomes",
    "PublishEvents": "publish_events",
    "RateLimitRatio": "rate_limit_ratio",
    "RetryAfter": "retry_after",
    "ServerErrorRatio": "server_error_ratio",
    "ServerErrorStatus": "server_error_status",
}


class RateLimited(TwilioError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(20429, "Too many requests", 429)
        self.retry_after = retry_after


async def _on_rate_limited(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RateLimited)
    return JSON(exc.body(), status_code=429, headers={"Retry-After": str(exc.retry_after)})


async def _account(request: Request, faults: bool = True) -> tuple[Runtime, AccountRow]:
    """The runtime and the path's account, which the credentials must reach (the caller itself or one
    of its subaccounts); then the account's injected faults, if any."""
    svc, p = await auth(request)
    account = await svc.accounts.visible(p, request.path_params["account"])
    if p.key_sid is not None and account.sid != p.caller.sid:
        # Twilio: a main account's API keys reach main-account resources only, never a subaccount's
        raise not_found(f"The requested resource {request.url.path[:200]} was not found")
    if account.status != "active":
        raise TwilioError(AUTH_FAILED, f"Account {account.sid} is {account.status}", 401)
    if faults:
        b = await svc.sandbox.behaviour(account.sid)
        err = svc.sandbox.fault(account.sid, b)
        if err is not None:
            raise RateLimited(b.retry_after) if err.status == 429 else err
    return svc, account


def _sid(request: Request) -> str:
    return str(request.path_params["sid"])


def _list(
    svc: Runtime,
    path: str,
    filters: list[tuple[str, str]],
    pg: Paging,
    page: Page,
    key: str,
    view: Callable[[Any], dict[str, Any]],
) -> JSON:
    meta = legacy_meta(path, filters, pg, page, key, lambda r: (r.date_created, r.sid), svc.box.mac)
    meta[key] = [view(r) for r in page.items]
    return JSON(meta)


def _listing(
    svc: Runtime, request: Request, names: Sequence[str]
) -> tuple[Params, Paging, list[tuple[str, str]]]:
    """The list's filters and page; its PageToken must be one this server minted for this very list."""
    params = query(request, {*names, *PAGING})
    pg = paging(params, TIME_SID, INVALID_PAGE_TOKEN, svc.box.mac, request.url.path)
    return params, pg, [(n, v) for n in names if (v := params.get(n)) is not None]


# -- messages


async def messages(request: Request) -> Response:
    svc, account = await _account(request)
    if request.method == "POST":
        f = await form(
            request, _MESSAGE_CREATE, repeatable={"MediaUrl", "PersistentAction"}, limit=svc.settings.max_body_bytes
        )
        row = await svc.sandbox.send_message(
            account,
            f.get("To"),
            f.get("From"),
            f.get("MessagingServiceSid"),
            f.get("Body"),
            f.all("MediaUrl"),
            f.get("StatusCallback"),
        )
        return JSON(views.message(row), status_code=201)
    params, pg, filters = _listing(svc, request, ("To", "From", "DateSent", "DateSent<", "DateSent>"))
    page = await svc.sandbox.messages(
        account.sid, params.get("To"), params.get("From"), date_filter(params, "DateSent"), pg.q
    )
    return _list(svc, request.url.path, filters, pg, page, "messages", views.message)


async def message(request: Request) -> Response:
    svc, account = await _account(request)
    row = await svc.sandbox.message(account.sid, _sid(request))
    if request.method == "DELETE":
        query(request)
        await svc.sandbox.delete_message(row)
        return Response(status_code=204)
    if request.method == "POST":
        f = await form(request, {"Body", "Status"}, limit=svc.settings.max_body_bytes)
        row = await svc.sandbox.update_message(row, f.get("Body"), f.get("Status"))
        return JSON(views.message(row))
    query(request)
    return JSON(views.message(row))


# -- calls and their feedback


async def calls(request: Request) -> Response:
    svc, account = await _account(request)
    if request.method == "POST":
        f = await form(request, _CALL_CREATE, repeatable={"StatusCallbackEvent", "RecordingStatusCallbackEvent"},
                       limit=svc.settings.max_body_bytes)  # fmt: skip
        if not (f.get("Url") or f.get("Twiml") or f.get("ApplicationSid")):
            raise TwilioError(21205, "Url, Twiml or ApplicationSid is required to place a call", 400)
        events = [e for v in f.all("StatusCallbackEvent") for e in v.split()]
        row = await svc.sandbox.create_call(account, f.get("To"), f.get("From"), f.get("StatusCallback"), events)
        return JSON(views.call(row), status_code=201)
    names = ("To", "From", "ParentCallSid", "Status", "StartTime", "StartTime<", "StartTime>", "EndTime",
             "EndTime<", "EndTime>")  # fmt: skip
    params, pg, filters = _listing(svc, request, names)
    page = await svc.sandbox.calls(
        account.sid,
        params.get("To"),
        params.get("From"),
        params.get("ParentCallSid"),
        params.get("Status"),
        date_filter(params, "StartTime"),
        date_filter(params, "EndTime"),
        pg.q,
    )
    return _list(svc, request.url.path, filters, pg, page, "calls", views.call)


async def call(request: Request) -> Response:
    svc, account = await _account(request)
    row = await svc.sandbox.call(account.sid, _sid(request))
    if request.method == "DELETE":
        query(request)
        await svc.sandbox.delete_call(row)
        return Response(status_code=204)
    query(request)
    return JSON(views.call(row))


async def feedback(request: Request) -> Response:
    svc, account = await _account(request)
    if request.method == "POST":
        f = await form(request, {"QualityScore", "Issue"}, repeatable={"Issue"}, limit=svc.settings.max_body_bytes)
        row = await svc.sandbox.put_feedback(account.sid, _sid(request), f.int("QualityScore", 1, 5), f.all("Issue"))
        return JSON(views.feedback(row), status_code=201)
    query(request)
    return JSON(views.feedback(await svc.sandbox.feedback(account.sid, _sid(request))))


# -- conferences, transcriptions, addresses


async def conferences(request: Request) -> Response:
    svc, account = await _account(request)
    names = ("DateCreated", "DateCreated<", "DateCreated>", "DateUpdated", "DateUpdated<", "DateUpdated>",
             "FriendlyName", "Status")  # fmt: skip
    params, pg, filters = _listing(svc, request, names)
    page = await svc.sandbox.conferences(
        account.sid,
        date_filter(params, "DateCreated"),
        date_filter(params, "DateUpdated"),
        params.get("FriendlyName"),
        params.get("Status"),
        pg.q,
    )
    return _list(svc, request.url.path, filters, pg, page, "conferences", views.conference)


async def conference(request: Request) -> Response:
    svc, account = await _account(request)
    query(request)
    return JSON(views.conference(await svc.sandbox.conference(account.sid, _sid(request))))


async def transcriptions(request: Request) -> Response:
    svc, account = await _account(request)
    _, pg, filters = _listing(svc, request, ())
    page = await svc.sandbox.transcriptions(account.sid, pg.q)
    return _list(svc, request.url.path, filters, pg, page, "transcriptions", views.transcription)


async def addresses(request: Request) -> Response:
    svc, account = await _account(request)
    if request.method == "POST":
        f = await form(request, {*_ADDRESS_FIELDS, "EmergencyEnabled", "AutoCorrectAddress"},
                       limit=svc.settings.max_body_bytes)  # fmt: skip
        f.bool("AutoCorrectAddress")
        row = await svc.sandbox.create_address(
            account, {n: f.get(n) for n in _ADDRESS_FIELDS}, bool(f.bool("EmergencyEnabled"))
        )
        return JSON(views.address(row), status_code=201)
    params, pg, filters = _listing(svc, request, ("CustomerName", "FriendlyName", "EmergencyEnabled", "IsoCountry"))
    page = await svc.sandbox.addresses(
        account.sid,
        params.get("CustomerName"),
        params.get("FriendlyName"),
        params.bool("EmergencyEnabled"),
        params.get("IsoCountry"),
        pg.q,
    )
    return _list(svc, request.url.path, filters, pg, page, "addresses", views.address)


def _fetch_or_delete(kind: str, view: Callable[[Any], dict[str, Any]]) -> Callable[[Request], Any]:
    """GET renders the record, DELETE removes it (transcriptions, addresses: no state to wait for)."""

    async def endpoint(request: Request) -> Response:
        svc, account = await _account(request)
        row = await getattr(svc.sandbox, kind)(account.sid, _sid(request))
        query(request)
        if request.method == "DELETE":
            await svc.sandbox.delete(row)
            return Response(status_code=204)
        return JSON(view(row))

    endpoint.__name__ = kind
    return endpoint


transcription = _fetch_or_delete("transcription", views.transcription)
address = _fetch_or_delete("address", views.address)


# -- the sandbox's own switches


async def switches(request: Request) -> Response:
    """``GET``/``POST /2010-04-01/Accounts/{Sid}/Sandbox.json``: this account's status clock, outcome
    rules and injected faults (docs/sandbox.md). Never faulted itself, so a test can always turn faults off."""
    svc, account = await _account(request, faults=False)
    if request.method == "POST":
        f = await form(request, set(_SWITCHES), limit=svc.settings.max_body_bytes)
        changes: dict[str, Any] = {key: f.get(name) for name, key in _SWITCHES.items() if f.has(name)}
        if "publish_events" in changes:
            changes["publish_events"] = f.bool("PublishEvents")
        b = await svc.sandbox.set_behaviour(account, changes)
    else:
        query(request)
        b = await svc.sandbox.behaviour(account.sid)
    wire = b.wire()
    out = {name: wire[key] for name, key in _SWITCHES.items()}
    return JSON({"account_sid": account.sid, **out, "uri": f"{views.account_path(account.sid)}/Sandbox.json"})


def _route(path: str, endpoint: Callable[[Request], Any], methods: list[str]) -> Route:
    return Route(_BASE + path, endpoint, methods=methods)


routes = [
    _route("/Messages.json", messages, ["GET", "POST"]),
    _route("/Messages/{sid}.json", message, ["GET", "POST", "DELETE"]),
    _route("/Calls.json", calls, ["GET", "POST"]),
    _route("/Calls/{sid}/Feedback.json", feedback, ["GET", "POST"]),
    _route("/Calls/{sid}.json", call, ["GET", "DELETE"]),
    _route("/Conferences.json", conferences, ["GET"]),
    _route("/Conferences/{sid}.json", conference, ["GET"]),
    _route("/Transcriptions.json", transcriptions, ["GET"]),
    _route("/Transcriptions/{sid}.json", transcription, ["GET", "DELETE"]),
    _route("/Addresses.json", addresses, ["GET", "POST"]),
    _route("/Addresses/{sid}.json", address, ["GET", "DELETE"]),
    _route("/Sandbox.json", switches, ["GET", "POST"]),
]

surface = Surface("twilio-sandbox", routes, {RateLimited: _on_rate_limited, **TWILIO_ERRORS}, openapi.sandbox_paths)
