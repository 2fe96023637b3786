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

Order of checks: unknown account 404; no bridge credentials, inactive account
or no signature 403; body over 256 KiB 413; wrong signature 403; body not
form-encoded or with a NUL character 400; unknown shape 400; callback
``AccountSid`` not the configured Twilio account 403. Only then is the event
published (a local commit), and 200 is answered.

The signature is checked before anything about the body is judged, so an
unsigned caller learns nothing beyond 403. A body that does not parse as a form
has no parameters to sign, so its signature cannot verify: 403. A non-form
content type is checked as Twilio signs such requests, over the URL alone; only
when that verifies is it answered 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import clock
from ..api.context import Services, auth, services
from ..api.http import JSON, form, query, read_body
from ..errors import FORBIDDEN, TwilioError, bad_request, not_found
from ..ids import normalize_sid
from ..sinks.signing import TWILIO_SIGNATURE_HEADER, validate_twilio_form_signature
from .mapping import (
    CallbackError,
    CallbackParams,
    call_status_event,
    first,
    inbound_message_event,
    message_status_event,
)

MAX_CALLBACK_BYTES = 256 * 1024
MAX_TOKEN_LENGTH = 256
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
TWIML_TYPE = "text/xml"
PLAIN_TYPE = "text/plain"
ENDPOINTS = {
    "messaging_status": "messaging/status",
    "messaging_inbound": "messaging/inbound",
    "voice_status": "voice/status",
}

Mapper = Callable[[str, CallbackParams, str, float], dict[str, Any] | None]


def bridge_urls(base: str, account_sid: str) -> dict[str, str]:
    return {name: f"{base}/bridge/{account_sid}/{path}" for name, path in ENDPOINTS.items()}


def _forbidden(message: str) -> TwilioError:
    return TwilioError(FORBIDDEN, message, 403)


# -- management --------------------------------------------------------------------------------


def _view(svc: Services, account_sid: str, row: dict[str, str] | None) -> dict[str, Any]:
    return {
        "account_sid": account_sid,
        "configured": row is not None,
        "twilio_account_sid": row["twilio_account_sid"] if row else None,
        "date_created": row["date_created"] if row else None,
        "date_updated": row["date_updated"] if row else None,
        "urls": bridge_urls(svc.base, account_sid),
        "url": f"{svc.base}/v1/Bridge/Credentials",
    }


async def credentials(request: Request) -> Response:
    if request.method == "GET":
        return await _get_credentials(request)
    if request.method == "DELETE":
        return await _delete_credentials(request)
    return await _put_credentials(request)


async def _put_credentials(request: Request) -> Response:
    svc, p = await auth(request)
    f = await form(request, {"TwilioAccountSid", "TwilioAuthToken"})
    raw_sid, token = f.get("TwilioAccountSid"), f.get("TwilioAuthToken")
    if raw_sid is None or token is None:
        raise bad_request("TwilioAccountSid and TwilioAuthToken are required")
    twilio_sid = normalize_sid("AC", raw_sid)
    if twilio_sid is None:
        raise bad_request("TwilioAccountSid must be AC followed by 32 hex digits")
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii() or not token.isprintable():
        raise bad_request(f"TwilioAuthToken must be 1..{MAX_TOKEN_LENGTH} printable ASCII characters")
    created = await svc.store.bridge.put(
        p.account.sid, twilio_sid, svc.box.seal(token), clock.iso(clock.now())
    )
    row = await svc.store.bridge.get(p.account.sid)
    return JSON(_view(svc, p.account.sid, row), status_code=201 if created else 200)


async def _get_credentials(request: Request) -> Response:
    svc, p = await auth(request)
    query(request)
    return JSON(_view(svc, p.account.sid, await svc.store.bridge.get(p.account.sid)))


async def _delete_credentials(request: Request) -> Response:
    svc, p = await auth(request)
    query(request)
    if not await svc.store.bridge.delete(p.account.sid):
        raise not_found("No bridge credentials are configured for this account")
    return Response(status_code=204)


# -- callbacks ---------------------------------------------------------------------------------


def _signed_url(svc: Services, request: Request) -> str:
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


async def _callback(request: Request, mapper: Mapper, reply: str, reply_type: str) -> Response:
    svc = services(request)
    raw_sid = request.path_params["account_sid"]
    sid = normalize_sid("AC", raw_sid) if isinstance(raw_sid, str) else None
    account = await svc.store.accounts.get(sid) if sid else None
    if account is None:
        raise not_found(f"The requested resource {request.url.path[:200]} was not found")
    creds = await svc.store.bridge.get(account.sid)
    if creds is None:
        raise _forbidden("The Twilio callback bridge is not configured for this account (POST /v1/Bridge/Credentials)")
    if account.status != "active":
        raise _forbidden(f"Account {account.sid} is {account.status}")
    signature = request.headers.get(TWILIO_SIGNATURE_HEADER)
    if not signature:
        raise _forbidden(f"Missing {TWILIO_SIGNATURE_HEADER}")
    body = await read_body(request, MAX_CALLBACK_BYTES)
    url = _signed_url(svc, request)
    token = svc.box.open(creds["token_sealed"])
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_form = ctype == "application/x-www-form-urlencoded"
    # Twilio signs a request that is not a form over its URL alone.
    params = _parse_form(body) if is_form else {}
    if params is None:
        raise _forbidden(f"Invalid {TWILIO_SIGNATURE_HEADER} for {url} (the body is not valid form encoding)")
    if not validate_twilio_form_signature(url, params, signature, token):
        raise _forbidden(f"Invalid {TWILIO_SIGNATURE_HEADER} for {url}")
    if not is_form:
        raise bad_request(f"A Twilio callback is application/x-www-form-urlencoded (got {ctype or 'no content type'})")
    _check_nul(params)
    now = clock.now()
    try:
        event = mapper(account.sid, params, url, now)
    except CallbackError as exc:
        raise bad_request(str(exc)) from None
    callback_account = normalize_sid("AC", first(params, "AccountSid") or "")
    if callback_account != creds["twilio_account_sid"]:
        raise _forbidden("The callback's AccountSid is not the Twilio account configured for this bridge")
    headers: dict[str, str] = {}
    if event is None:
        headers["X-Eventstreams-Outcome"] = "ignored"
    else:
        result = await svc.publisher.publish(account.sid, account.parent_sid or account.sid, [event])
        if result.rejected:
            raise bad_request(f"The callback maps to an invalid event: {result.rejected[0].message}")
        headers["X-Eventstreams-Event-Id"] = event["id"]
        headers["X-Eventstreams-Outcome"] = "duplicate" if result.duplicates else "published"
    return Response(reply, status_code=200, media_type=reply_type, headers=headers)


async def messaging_status(request: Request) -> Response:
    return await _callback(request, message_status_event, "", PLAIN_TYPE)


async def messaging_inbound(request: Request) -> Response:
    return await _callback(request, inbound_message_event, EMPTY_TWIML, TWIML_TYPE)


async def voice_status(request: Request) -> Response:
    return await _callback(request, call_status_event, "", PLAIN_TYPE)


routes = [
    Route("/v1/Bridge/Credentials", credentials, methods=["GET", "POST", "DELETE"]),
    Route("/bridge/{account_sid}/messaging/status", messaging_status, methods=["POST"]),
    Route("/bridge/{account_sid}/messaging/inbound", messaging_inbound, methods=["POST"]),
    Route("/bridge/{account_sid}/voice/status", voice_status, methods=["POST"]),
]
