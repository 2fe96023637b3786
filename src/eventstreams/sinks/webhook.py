"""Webhook sink: deliver CloudEvents over HTTP(S) (reference §11.1, §12).

One :class:`WebhookSender` per sink, with its own connection pool (limit
``ctx.max_in_flight``, keep-alive) so a slow endpoint only ties up its own
connections.

Wire format (choices where Twilio documents nothing; keep ``docs/`` in sync):

* **POST, ``batch_events: true``**: events are split into requests of at most
  ``batch_max_events`` (default 100); the body is a JSON array of the events,
  built from their stored bytes without re-serialising.
* **POST, ``batch_events: false``**: one request per event; the body is the
  bare CloudEvent object (not a one-element array).
* ``Content-Type: application/json`` for POST bodies.
* **GET**: one request per event, ``batch_events`` is ignored (a batch does
  not fit in a URL). The event's top-level scalar attributes (``specversion``,
  ``type``, ``source``, ``id``, ``time``, ``dataschema``, ``datacontenttype``
  and scalar extension attributes) become query parameters, plus ``data`` =
  the compact JSON text of ``data``. They are percent-encoded (RFC 3986
  unreserved characters only are left as-is), sorted by name and appended to
  the destination's own query string. Very large events can exceed receivers'
  URL limits (they then typically answer 414, which is not retried).

Headers on every request:

* ``User-Agent: eventstreams/<version>``.
* ``X-Twilio-Signature``: POST signs the URL with ``bodySHA256=<sha256(body)>``
  appended, and the request goes to that URL (Twilio's JSON scheme); GET signs
  the final URL with Twilio's classic algorithm and no POST parameters.
* ``I-Twilio-Idempotency-Token``: the event id for single-event requests; for a
  batch, ``batch-`` + the first 32 hex digits of SHA-256 over the newline-joined
  ids (stable for a retry of the same batch; the dispatcher may regroup events
  on retry, and receivers should dedupe on each event's ``id`` anyway).
* Standard Webhooks ``webhook-id`` / ``webhook-timestamp`` /
  ``webhook-signature`` unless ``standard_webhooks: false``; the id is the
  idempotency token (GET signs the empty body). The timestamp is taken right
  before sending, after any throttle wait, so receivers' freshness checks pass.
* ``Authorization: Basic`` from the destination's userinfo, which never appears
  in the request line or the signed URL.

Requests go through :mod:`eventstreams.sinks.lean_http` (keep-alive HTTP/1.1 with httptools; measured
against aiohttp, httpx and urllib3 in docs/benchmarks.md) under :mod:`eventstreams.sinks.http`'s client
policy (SSRF check on every connection and on literal hosts, no redirects, no proxies, no cookies).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from yarl import URL

from ..netpolicy import AsyncResolver
from ..outcome import Outcome, classify_http
from .base import OutgoingEvent, Pacer, SinkContext, SinkSender
from .http import USER_AGENT, outcome_for_exception
from .lean_http import LeanClient
from .signing import (
    split_userinfo,
    standard_webhook_headers,
    twilio_form_signature,
    twilio_json_signature,
    webhook_id_ok,
)
from .spec import ConfigOptions, Field, SinkType, fail

__all__ = ["DEFAULT_BATCH_MAX_EVENTS", "SINK_TYPE", "WebhookSender"]

#: Events per request when ``batch_events`` is on and ``batch_max_events`` is unset.
DEFAULT_BATCH_MAX_EVENTS = 100
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"

# RFC 3986 reserved + unreserved characters, plus "%" so existing escapes survive.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


# -- configuration -----------------------------------------------------------------------------


def wire_url(url: str) -> str:
    """``url`` (no userinfo) as the exact ASCII text to send and sign.

    Sent with ``URL(..., encoded=True)`` so yarl does not re-normalise it
    (it would e.g. decode ``%41``), which would break signatures. Existing
    escapes are kept; only characters illegal in a URL are percent-encoded;
    the host is IDNA-encoded; an empty path becomes ``/`` (what the request
    line carries); the fragment is dropped (never sent).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()  # http or https, with a host: the registry validated it (url_problem)
    parsed = URL(url)
    host = parsed.raw_host or ""
    netloc = f"[{host}]" if ":" in host else host
    if parsed.explicit_port is not None:
        netloc += f":{parsed.explicit_port}"
    path = quote(parts.path, safe=_PATH_SAFE) or "/"
    query = quote(parts.query, safe=_QUERY_SAFE)
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")


def _append_query(url: str, query: str) -> str:
    # Same separator rules as twilio_json_signature, so both methods behave alike.
    if "?" not in url:
        return f"{url}?{query}"
    if url.endswith(("?", "&")):
        return url + query
    return f"{url}&{query}"


# -- request building --------------------------------------------------------------------------


def _batch_token(ids: Iterable[str]) -> str:
    return "batch-" + hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()[:32]


def _webhook_id(token: str) -> str:
    # Standard Webhooks ids must not contain "." or whitespace; hash any that do.
    if webhook_id_ok(token):
        return token
    return "msg-" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]


def _query_value(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)  # true/false, numbers as JSON text
    return None  # null, objects and arrays are not CloudEvent attribute values


def get_query(payload: bytes) -> str:
    """Encode one CloudEvent as the query string of a GET delivery (see module doc)."""
    event = json.loads(payload)
    if not isinstance(event, dict):
        raise ValueError("event payload is not a JSON object")
    params: dict[str, str] = {}
    for name, value in event.items():
        if name == "data" or not isinstance(name, str):
            continue
        text = _query_value(value)
        if text is not None:
            params[name] = text
    if "data" in event:
        params["data"] = json.dumps(event["data"], separators=(",", ":"), ensure_ascii=False)
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in sorted(params.items()))


@dataclass(frozen=True, slots=True)
class _Request:
    """One HTTP request to make, before signing."""

    n_events: int
    token: str  # idempotency token, also the Standard Webhooks id
    url: str  # wire URL without bodySHA256 (POST) / with the event query (GET)
    body: bytes | None  # None for GET


# -- the sender --------------------------------------------------------------------------------

_NOT_SENT = Outcome.internal("not sent")  # a placeholder every lane overwrites before send() returns


class WebhookSender(SinkSender):
    """Delivers events to a ``webhook`` sink (see the module doc for the wire format).

    Configuration keys: ``destination`` (URL, may carry ``user:pass@``),
    ``method`` (``POST`` or ``GET``), ``batch_events`` (bool), optional
    ``batch_max_events`` (int, default 100) and ``standard_webhooks`` (bool,
    default true). The configuration is the registry's validated form
    (:data:`SINK_TYPE`; sinks are stored only after validation), so it is not checked again here.

    ``resolver`` replaces system DNS for connect-time lookups (tests).
    """

    def __init__(self, ctx: SinkContext, *, resolver: AsyncResolver | None = None) -> None:
        config = ctx.configuration
        self._http = LeanClient(
            allow_private=ctx.allow_private, timeout=ctx.timeout, max_in_flight=ctx.max_in_flight, resolver=resolver
        )
        self._ctx = ctx
        self.method: str = config["method"]
        self.batch_events: bool = config.get("batch_events", False)
        self.batch_max_events: int = config.get("batch_max_events", DEFAULT_BATCH_MAX_EVENTS)
        self.standard_webhooks: bool = config.get("standard_webhooks", True)
        clean, self._authorization = split_userinfo(config["destination"])
        self.url = wire_url(clean)  # what is requested and signed: no userinfo
        parsed = URL(self.url, encoded=True)
        self._scheme, self._host = parsed.scheme, parsed.raw_host or ""
        self._host = f"[{self._host}]" if ":" in self._host else self._host
        self._port = parsed.port or (443 if self._scheme == "https" else 80)
        self._origin = f"{parsed.scheme}://{parsed.raw_authority}"  # every URL sent starts with it
        self._slots = asyncio.Semaphore(ctx.max_in_flight)

    # -- public API ------------------------------------------------------------------------

    async def send(self, events: Sequence[OutgoingEvent], pacer: Pacer) -> list[Outcome]:
        """Deliver ``events`` (requests run concurrently up to ``max_in_flight``).

        Returns one outcome per event, in order; every event of a request gets
        that request's outcome. Delivery failures never raise.
        """
        if not events:
            return []
        groups = self._group(events)
        outcomes: list[Outcome] = [_NOT_SENT] * len(groups)
        todo = iter(range(len(groups)))

        async def lane() -> None:
            # A lane holds one of the sink's slots for its life and takes requests in turn: a task and a
            # semaphore wait per request were a fifth of the sender's CPU (docs/benchmarks.md, issue 13).
            async with self._slots:
                for i in todo:
                    outcomes[i] = await self._deliver(groups[i], pacer)

        lanes = min(self._ctx.max_in_flight, len(groups))
        if lanes == 1:
            await lane()
        else:
            await asyncio.gather(*(lane() for _ in range(lanes)))
        result: list[Outcome] = []
        for group, outcome in zip(groups, outcomes, strict=True):
            result.extend([outcome] * len(group))
        return result

    async def close(self) -> None:
        """Close the connection pool (a later ``send`` opens a new one)."""
        await self._http.close()

    # -- internals -------------------------------------------------------------------------

    def _group(self, events: Sequence[OutgoingEvent]) -> list[Sequence[OutgoingEvent]]:
        if self.method == "POST" and self.batch_events:
            size = self.batch_max_events
            return [events[i : i + size] for i in range(0, len(events), size)]
        return [events[i : i + 1] for i in range(len(events))]

    def _build(self, group: Sequence[OutgoingEvent]) -> _Request:
        if self.method == "GET":
            event = group[0]
            return _Request(1, event.id, _append_query(self.url, get_query(event.payload)), None)
        if self.batch_events:
            body = b"[" + b",".join(event.payload for event in group) + b"]"
            return _Request(len(group), _batch_token(event.id for event in group), self.url, body)
        event = group[0]
        return _Request(1, event.id, self.url, event.payload)

    async def _deliver(self, group: Sequence[OutgoingEvent], pacer: Pacer) -> Outcome:
        try:
            request = self._build(group)
        except (ValueError, UnicodeError) as exc:
            # A payload that is not a JSON object can never be delivered as GET.
            return Outcome.dropped(f"cannot encode event for GET: {exc}")
        except Exception as exc:  # noqa: BLE001 - e.g. RecursionError on deeply nested JSON; send() must not raise
            return Outcome.internal(f"cannot build request: {type(exc).__name__}: {exc}")
        await pacer.wait(request.n_events)
        outcome = await self._attempt(request)
        pacer.observe(outcome)
        return outcome

    def _signed(self, request: _Request) -> tuple[str, dict[str, str]]:
        ctx = self._ctx
        headers = {"User-Agent": USER_AGENT, IDEMPOTENCY_HEADER: request.token}
        if request.body is None:
            url = request.url
            headers["X-Twilio-Signature"] = twilio_form_signature(url, {}, ctx.auth_token)
        else:
            url, headers["X-Twilio-Signature"] = twilio_json_signature(request.url, request.body, ctx.auth_token)
            headers["Content-Type"] = "application/json"
        if self.standard_webhooks:
            headers.update(
                standard_webhook_headers(
                    _webhook_id(request.token), int(time.time()), request.body or b"", ctx.signing_secret
                )
            )
        if self._authorization is not None:
            headers["Authorization"] = self._authorization
        return url, headers

    async def _attempt(self, request: _Request) -> Outcome:
        try:
            url, headers = self._signed(request)
            target = url[len(self._origin) :]
            resp = await self._http.request(
                self.method, self._scheme, self._host, self._port, target, headers, request.body
            )
            return classify_http(resp.status, resp.headers, resp.body)
        except Exception as exc:  # noqa: BLE001 - send() must not raise for one bad request
            return outcome_for_exception(exc, self._ctx.timeout, "destination")


# -- the sink type -----------------------------------------------------------------------------


def _check(cfg: dict[str, Any], options: ConfigOptions) -> None:
    method = str(cfg["method"]).upper()
    if method not in ("POST", "GET"):
        raise fail("sink_configuration.method must be POST or GET")
    cfg["method"] = method
    cfg["batch_events"] = cfg.get("batch_events", False)


def _destination(cfg: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    return split_userinfo(str(cfg.get("destination", "")))[0]


def _request_method(cfg: Mapping[str, Any]) -> str:
    return str(cfg.get("method") or "POST").upper()


SINK_TYPE = SinkType(
    name="webhook",
    description="HTTP(S) requests to a URL of yours, signed with X-Twilio-Signature and Standard Webhooks.",
    fields=(
        Field(
            "destination",
            "url",
            "The URL events are sent to. Basic auth as `https://user:password@host/...`; the password is"
            " masked in responses.",
            required=True,
            secret=True,
        ),
        Field("method", "string", "POST or GET.", required=True),
        Field(
            "batch_events",
            "boolean",
            "POST a JSON array of events per request instead of one event per request.",
            default=False,
            text_bool=True,
        ),
        Field(
            "batch_max_events",
            "integer",
            "Most events per batched request.",
            default=DEFAULT_BATCH_MAX_EVENTS,
            minimum=1,
            maximum=1000,
            extension=True,
        ),
        Field(
            "standard_webhooks",
            "boolean",
            "Send the Standard Webhooks signature headers.",
            default=True,
            extension=True,
        ),
    ),
    sender=WebhookSender,
    destination=_destination,
    request_method=_request_method,
    check=_check,
)
