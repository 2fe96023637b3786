"""HTTP side of the Twilio callback bridge.

Management (HTTP Basic with eventstreams credentials, like every /v1 path):
``POST|GET|DELETE /v1/Bridge/Credentials`` stores the Twilio account and its
auth token (sealed) whose callbacks an eventstreams account accepts.

Callbacks (no Basic auth: authenticated by ``X-Twilio-Signature`` computed
with that stored Twilio auth token over ``EVENTSTREAMS_BASE_URL`` + path +
query and every form parameter):

* ``POST /bridge/{AccountSid}/messaging/status``  Messaging StatusCallback
* ``POST /bridge/{AccountSid}/messaging/inbound`` "A message comes in" (answers empty TwiML)
* ``POST /bridge/{AccountSid}/voice/status``      Voice call StatusCallback
* ``POST /bridge/{AccountSid}/sms/{SinkSid}/status`` a twilio-sms sink's StatusCallback, verified with the
  sink's auth token (bridge/sms.py); the inbound route also applies STOP/START keywords: the account's
  opt-out of the number (store.sms) and the profiles holding it

Order of checks: body over 256 KiB 413 (before anything else, so it says
nothing about the account); then one uniform 403 for an unknown account, no
bridge credentials, an inactive account, a missing or wrong signature, or a
form body that does not parse (same status and body for all: an unsigned
caller cannot learn who exists); a signed request that is not form-encoded,
has a NUL character or an unknown shape 400; callback ``AccountSid`` not the
configured Twilio account 403. Only then is the event published (a local
commit), and 200 is answered.

A body that does not parse as a form has no parameters to sign, so its
signature cannot verify. A non-form content type is checked as Twilio signs
such requests, over the URL alone; only when that verifies is it answered 400.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import clock
from ..api import openapi
from ..api.context import auth, services
from ..api.http import JSON, form, query, read_body
from ..api.surface import Surface
from ..api.twilio_errors import TWILIO_ERRORS
from ..errors import FORBIDDEN, TwilioError, bad_request
from ..ids import normalize_sid
from ..runtime import Runtime
from ..sinks.signing import TWILIO_SIGNATURE_HEADER, validate_twilio_form_signature
from ..store.records import AccountRow
from .credentials import BridgeConfig
from .mapping import (
    CallbackError,
    CallbackParams,
    call_status_event,
    first,
    inbound_message_event,
    message_status_event,
)
from .sms import SmsTarget

MAX_CALLBACK_BYTES = 256 * 1024
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
TWIML_TYPE = "text/xml"
PLAIN_TYPE = "text/plain"
ENDPOINTS = {
    "messaging_status": "messaging/status",
    "messaging_inbound": "messaging/inbound",
    "voice_status": "voice/status",
}

T = TypeVar("T")
Mapper = Callable[[str, CallbackParams, str, float], dict[str, Any] | None]


def bridge_urls(base: str, account_sid: str) -> dict[str, str]:
    return {name: f"{base}/bridge/{account_sid}/{path}" for name, path in ENDPOINTS.items()}


def _forbidden(message: str) -> TwilioError:
    return TwilioError(FORBIDDEN, message, 403)


# -- management --------------------------------------------------------------------------------


def _view(svc: Runtime, account_sid: str, config: BridgeConfig | None) -> dict[str, Any]:
    return {
        "account_sid": account_sid,
        "configured": config is not None,
        "twilio_account_sid": config.twilio_account_sid if config else None,
        "date_created": config.date_created if config else None,
        "date_updated": config.date_updated if config else None,
        "urls": bridge_urls(svc.base, account_sid),
        "url": f"{svc.base}/v1/Bridge/Credentials",
    }


async def credentials(request: Request) -> Response:
    svc, p = await auth(request)
    if request.method == "GET":
        query(request)
        return JSON(_view(svc, p.account.sid, await svc.bridge.get(p.account.sid)))
    if request.method == "DELETE":
        query(request)
        await svc.bridge.delete(p.account.sid)
        return Response(status_code=204)
    f = await form(request, {"TwilioAccountSid", "TwilioAuthToken"})
    config, created = await svc.bridge.put(p.account.sid, f.get("TwilioAccountSid"), f.get("TwilioAuthToken"))
    return JSON(_view(svc, p.account.sid, config), status_code=201 if created else 200)


# -- callbacks ---------------------------------------------------------------------------------


def _signed_url(svc: Runtime, request: Request) -> str:
    """The URL Twilio requested, as it signed it: public base URL + raw path + raw query."""
    path = request.scope.get("raw_path") or request.scope["path"].encode()
    url = svc.base + path.decode("latin-1")
    qs: bytes = request.scope.get("query_string", b"")
    return f"{url}?{qs.decode('latin-1')}" if qs else url


def _parse_form(body: bytes) -> dict[str, list[str]] | None:
    """Lenient: every parameter is kept, names in arrival order, repeated values in order.
    ``None`` when the body is not form encoding (bad UTF-8 or percent-encoding, too many fields)."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=2000)
    except (UnicodeDecodeError, ValueError):
        return None
    params: dict[str, list[str]] = {}
    for k, v in pairs:
        params.setdefault(k, []).append(v)
    return params


def _check_nul(params: dict[str, list[str]]) -> None:
    for k, values in params.items():
        if "\x00" in k or any("\x00" in v for v in values):
            raise bad_request(f"Callback parameter {k[:40]!r} contains a NUL character")


def _unauthenticated(url: str) -> TwilioError:
    """The one answer for an unknown account, no bridge credentials, an inactive account, a missing or
    wrong signature: an unsigned caller cannot tell which, so cannot learn who exists. (The URL comes from
    the request alone; it helps an operator compare it with the one configured in Twilio.)"""
    return _forbidden(
        f"Invalid {TWILIO_SIGNATURE_HEADER} for {url}: the callback could not be authenticated (check this URL,"
        " the Twilio auth token, that the bridge is configured and the account active: GET /v1/Bridge/Credentials)"
    )


async def _signed_form(
    request: Request, svc: Runtime, lookup: Callable[[], Awaitable[T | None]], token_of: Callable[[T], str]
) -> tuple[T, dict[str, list[str]], str]:
    """The target, form parameters and signed URL of a callback whose X-Twilio-Signature verifies with
    ``token_of(target)``; else the uniform 403 (or 413 for a body too large, before anything else)."""
    body = await read_body(request, MAX_CALLBACK_BYTES)  # first: a 413 must not depend on who exists
    target = await lookup()
    signature = request.headers.get(TWILIO_SIGNATURE_HEADER)
    url = _signed_url(svc, request)
    # Without credentials the signature is still computed (with a random token) so every refusal costs alike.
    token = token_of(target) if target is not None else secrets.token_hex(16)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_form = ctype == "application/x-www-form-urlencoded"
    # Twilio signs a request that is not a form over its URL alone.
    params = _parse_form(body) if is_form else {}
    signed = False
    if signature is not None and params is not None:
        signed = validate_twilio_form_signature(url, params, signature, token)
    if not signed or target is None or params is None:
        raise _unauthenticated(url)
    if not is_form:
        raise bad_request(f"A Twilio callback is application/x-www-form-urlencoded (got {ctype or 'no content type'})")
    _check_nul(params)
    return target, params, url


async def _publish(svc: Runtime, account: AccountRow, event: dict[str, Any] | None, headers: dict[str, str]) -> None:
    if event is None:
        headers["X-Eventstreams-Outcome"] = "ignored"
        return
    result = await svc.publisher.publish(account.sid, account.parent_sid or account.sid, [event])
    if result.rejected:
        raise bad_request(f"The callback maps to an invalid event: {result.rejected[0].message}")
    headers["X-Eventstreams-Event-Id"] = event["id"]
    headers["X-Eventstreams-Outcome"] = "duplicate" if result.duplicates else "published"


def _same_twilio_account(params: dict[str, list[str]], twilio_account_sid: str) -> None:
    callback_account = normalize_sid("AC", first(params, "AccountSid") or "")
    if callback_account != twilio_account_sid:
        raise _forbidden("The callback's AccountSid is not the Twilio account configured for this bridge")


After = Callable[[Runtime, AccountRow, dict[str, list[str]], dict[str, str]], Awaitable[None]]


async def _callback(
    request: Request, mapper: Mapper, reply: str, reply_type: str, after: After | None = None
) -> Response:
    svc = services(request)
    raw_sid = request.path_params["account_sid"]

    async def lookup() -> tuple[AccountRow, str, str] | None:
        return await svc.bridge.callback_target(raw_sid) if isinstance(raw_sid, str) else None

    target, params, url = await _signed_form(request, svc, lookup, lambda t: t[2])
    account, twilio_account_sid, _ = target
    now = clock.now()
    try:
        event = mapper(account.sid, params, url, now)
    except CallbackError as exc:
        raise bad_request(str(exc)) from None
    _same_twilio_account(params, twilio_account_sid)
    headers: dict[str, str] = {}
    await _publish(svc, account, event, headers)
    if after is not None:
        await after(svc, account, params, headers)
    return Response(reply, status_code=200, media_type=reply_type, headers=headers)


async def sms_status(request: Request) -> Response:
    """``POST /bridge/{AccountSid}/sms/{SinkSid}/status``: a twilio-sms sink's StatusCallback, verified with
    the sink's auth token (or the bridge credentials when the sink uses an API key); published as
    ``/messaging/status`` does, then recorded as a track event on the text's profile (bridge/sms.py)."""
    svc = services(request)
    raw_sid, raw_sink = request.path_params["account_sid"], request.path_params["sink_sid"]

    async def lookup() -> SmsTarget | None:
        if not isinstance(raw_sid, str) or not isinstance(raw_sink, str):
            return None
        return await svc.sms.target(raw_sid, raw_sink)

    target, params, url = await _signed_form(request, svc, lookup, lambda t: t.token)
    now = clock.now()
    try:
        event = message_status_event(target.account.sid, params, url, now)
    except CallbackError as exc:
        raise bad_request(str(exc)) from None
    _same_twilio_account(params, target.twilio_account_sid)
    headers: dict[str, str] = {}
    await _publish(svc, target.account, event, headers)
    tracked = await svc.sms.status(target, params, now)
    if tracked is not None:
        headers["X-Eventstreams-Track-Message-Id"] = tracked
    return Response("", status_code=200, media_type=PLAIN_TYPE, headers=headers)


async def messaging_status(request: Request) -> Response:
    return await _callback(request, message_status_event, "", PLAIN_TYPE)


async def _opt_out(svc: Runtime, account: AccountRow, params: dict[str, list[str]], headers: dict[str, str]) -> None:
    """STOP/START keywords: the SMS destination's opt-out, recorded on the sender's profiles."""
    changed = await svc.sms.inbound(account.sid, params)
    if changed is not None:
        headers["X-Eventstreams-Opt-Out-Profiles"] = str(changed)


async def messaging_inbound(request: Request) -> Response:
    return await _callback(request, inbound_message_event, EMPTY_TWIML, TWIML_TYPE, _opt_out)


async def voice_status(request: Request) -> Response:
    return await _callback(request, call_status_event, "", PLAIN_TYPE)


routes = [
    Route("/v1/Bridge/Credentials", credentials, methods=["GET", "POST", "DELETE"]),
    Route("/bridge/{account_sid}/messaging/status", messaging_status, methods=["POST"]),
    Route("/bridge/{account_sid}/messaging/inbound", messaging_inbound, methods=["POST"]),
    Route("/bridge/{account_sid}/voice/status", voice_status, methods=["POST"]),
    Route("/bridge/{account_sid}/sms/{sink_sid}/status", sms_status, methods=["POST"]),
]

surface = Surface("bridge", routes, TWILIO_ERRORS, openapi.bridge_paths)
