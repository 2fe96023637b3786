"""An async reader of Twilio's REST API 2010-04-01 (reference §3): lists, pages, call feedback.

It reads; the sync engine decides what to read. One :class:`TwilioReader` is one connection pool
(:class:`~eventstreams.sinks.http.HttpClient`: keep-alive, at most ``max_concurrency`` connections,
the SSRF policy of :mod:`eventstreams.netpolicy` on every connection unless private destinations
are allowed, no redirects, no proxies from the environment): the base URL is configured by users.

Errors: 401 is :class:`TwilioAuthError` at once (retrying bad credentials only delays the message
that matters); 429, 5xx, timeouts and connection errors are retried, honouring ``Retry-After``
(seconds), else with capped exponential backoff and jitter, within :class:`RetryPolicy`'s attempts and
time; any other answer is :class:`TwilioReadError` with Twilio's code and message (both error shapes
of reference §3.6).

Default concurrency, 20: Twilio limits the concurrent REST requests of an account (error 20429) and
does not publish the number (commonly quoted at ~100). The account's own traffic (sending messages,
making calls) shares that limit, so a background reader takes a fifth of it; 429s are retried anyway.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from yarl import URL

from ..config import Settings
from ..netpolicy import AsyncResolver, url_problem
from ..sinks.http import USER_AGENT, HttpClient, outcome_for_exception
from .collections import Collection

__all__ = [
    "API",
    "DEFAULT_CONCURRENCY",
    "PAGE_SIZE",
    "Page",
    "RetryPolicy",
    "TwilioAuthError",
    "TwilioReadError",
    "TwilioReader",
    "first_uri",
]

API = "/2010-04-01"
PAGE_SIZE = 1000  # Twilio's maximum
DEFAULT_CONCURRENCY = 20
# twilio-python's list of envelope keys (reference §3.2): the records are under the one other key
_META = frozenset(("end", "first_page_uri", "next_page_uri", "last_page_uri", "page", "page_size",
                   "previous_page_uri", "total", "num_pages", "start", "uri"))  # fmt: skip

Sleep = Callable[[float], Awaitable[Any]]


class TwilioReadError(Exception):
    """Twilio answered something other than the data, or could not be reached in the retry budget.

    ``status`` is the HTTP status (None: no answer), ``code`` Twilio's error code when it sent one,
    ``retryable`` whether a later run may succeed (the budget ran out on 429/5xx/connection errors)."""

    def __init__(
        self, message: str, *, status: int | None = None, code: int | None = None, uri: str = "",
        retryable: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.code = code
        self.uri = uri
        self.retryable = retryable


class TwilioAuthError(TwilioReadError):
    """401: the credentials are wrong (or the account is closed or suspended)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long one request keeps trying on 429, 5xx, timeouts and connection errors."""

    max_attempts: int = 8  # including the first
    max_elapsed: float = 300.0  # seconds from the first attempt; no retry would sleep past it
    first_delay: float = 0.5  # backoff without Retry-After: first_delay * 2**(n-1), jittered
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # a Retry-After above this is capped (a misbehaving server)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.max_elapsed, self.first_delay, self.max_delay, self.max_retry_after) < 0:
            raise ValueError("retry delays must not be negative")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The delay before retry number ``retry`` (1-based) when the server named none: full
        exponential, capped, with "equal jitter" (half fixed, half random) so a fleet of readers
        retrying the same 429 storm spreads out."""
        ceiling = min(self.max_delay, self.first_delay * 2.0 ** (retry - 1))
        return ceiling / 2 + rng.random() * ceiling / 2


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    next_page_uri: str | None
    uri: str


def first_uri(account_sid: str, collection: Collection, params: Mapping[str, str] | None = None) -> str:
    """The URI (path and query) of a collection's first page, ``PageSize=1000``. ``call_feedback``
    has no list: read it with :meth:`TwilioReader.feedback`."""
    if collection.list_key is None:
        raise ValueError(f"{collection.name} has no list endpoint")
    query = urlencode({**(params or {}), "PageSize": str(PAGE_SIZE)})  # "DateSent>" → DateSent%3E
    return f"{API}/Accounts/{account_sid}/{collection.path}?{query}"


def _error(status: int, body: bytes, uri: str) -> tuple[int | None, str]:
    """(code, message) of an error answer, from either of Twilio's shapes (reference §3.6)."""
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        text = body[:200].decode("utf-8", "replace").strip()
        return None, f"HTTP {status}" + (f": {text}" if text else "")
    code = doc.get("code")
    message = doc.get("message") or doc.get("detail") or doc.get("title") or f"HTTP {status}"
    return (code if isinstance(code, int) else None), str(message)


def _json(body: bytes, uri: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise TwilioReadError(f"GET {uri}: the answer is not JSON ({exc})", status=200, uri=uri) from exc


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # the HTTP-date form: fall back to backoff
    return seconds if seconds >= 0 else None


class TwilioReader:
    """``async with TwilioReader(base_url, sid, secret) as r:`` … reads; one session throughout.

    ``username``/``password``: an Account SID and auth token, or an API key SID (``SK…``) and its
    secret (the account then only in the URL's path). ``sleep`` is what waits between retries
    (tests pass one that does not wait)."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        allow_private: bool = False,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        resolver: AsyncResolver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        problem = url_problem(base_url, allow_private)
        if problem is not None:
            raise ValueError(f"Twilio base URL {base_url!r} {problem}")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.max_concurrency = max_concurrency
        self.retry = retry or RetryPolicy()
        self.requests = 0  # HTTP requests sent, retries included (for tests and metrics)
        self.retries = 0
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._timeout = timeout
        self._http = HttpClient(
            allow_private=allow_private, timeout=timeout, max_in_flight=max_concurrency, resolver=resolver
        )
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Accept": "application/json", "User-Agent": USER_AGENT}

    @classmethod
    def from_settings(cls, settings: Settings, base_url: str, username: str, password: str, **kw: Any) -> TwilioReader:
        """A reader under the operator's SSRF setting (``allow_private_destinations``)."""
        return cls(base_url, username, password, allow_private=settings.allow_private_destinations, **kw)

    async def __aenter__(self) -> TwilioReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.close()

    # -- reads

    async def accounts(self, account_sid: str | None = None) -> list[dict[str, Any]]:
        """``GET /2010-04-01/Accounts.json``: the authenticated account and its subaccounts, every page."""
        out: list[dict[str, Any]] = []
        uri: str | None = f"{API}/Accounts.json?PageSize={PAGE_SIZE}"
        while uri is not None:
            page = await self.page(uri, "accounts", account_sid=account_sid)
            out.extend(page.records)
            uri = page.next_page_uri
        return out

    async def page(self, uri: str, list_key: str | None = None, *, account_sid: str | None = None) -> Page:
        """One page of a list: ``uri`` is :func:`first_uri`'s or a ``next_page_uri``, used verbatim.
        The records are under ``list_key`` (default: the envelope's one non-meta key)."""
        body = await self._get(uri, account_sid=account_sid)
        assert body is not None
        doc = _json(body, uri)
        if not isinstance(doc, dict):
            raise TwilioReadError(f"GET {uri}: not a Twilio list", status=200, uri=uri)
        key = list_key or next((k for k in doc if k not in _META), None)
        records = doc.get(key) if key else None
        if not isinstance(records, list):
            raise TwilioReadError(f"GET {uri}: no {list_key or 'records'} array in the answer", status=200, uri=uri)
        nxt = doc.get("next_page_uri")
        return Page(records, nxt if isinstance(nxt, str) and nxt else None, uri)

    async def feedback(self, account_sid: str, call_sids: Iterable[str]) -> list[tuple[str, dict[str, Any] | None]]:
        """Each call's feedback (``GET …/Calls/{sid}/Feedback.json``), ``max_concurrency`` at a time,
        in the order given; None where the call has none (404). The first failure (after retries)
        cancels the rest and is raised."""
        sids = list(call_sids)
        results: list[tuple[str, dict[str, Any] | None]] = [(sid, None) for sid in sids]
        cursor = iter(range(len(sids)))  # shared by the workers: each takes the next index

        async def worker() -> None:
            for i in cursor:
                uri = f"{API}/Accounts/{account_sid}/Calls/{sids[i]}/Feedback.json"
                body = await self._get(uri, account_sid=account_sid, missing_ok=True)
                results[i] = (sids[i], None if body is None else _json(body, uri))

        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(min(self.max_concurrency, len(sids))):
                    tg.create_task(worker())
        except* TwilioReadError as group:
            # the callers handle one TwilioReadError (e.g. TwilioAuthError), not a group of them
            raise group.exceptions[0] from None
        return results

    # -- one request, with retries

    async def _get(self, uri: str, *, account_sid: str | None = None, missing_ok: bool = False) -> bytes | None:
        if not uri.startswith("/"):
            raise TwilioReadError(f"not a Twilio URI (must start with /): {uri!r}", uri=uri)
        url = URL(self.base_url + uri, encoded=True)  # verbatim: PageToken is Twilio's, already encoded
        policy = self.retry
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self.requests += 1
            retry_after: float | None = None
            try:
                async with self._http.request("GET", url, headers=self._headers) as resp:
                    body = await resp.read()
                    status = resp.status
                    if status == 200:
                        return bytes(body)
                    if status == 404 and missing_ok:
                        return None
                    if status == 401:
                        code, message = _error(status, body, uri)
                        who = account_sid or _account_in(uri) or self.username
                        raise TwilioAuthError(
                            f"Twilio refused the credentials for account {who} (HTTP 401"
                            + (f", code {code}" if code else "") + f": {message}); check the Account SID and "
                            "auth token (or API key SID and secret), and that the account is active",
                            status=401, code=code, uri=uri,
                        )  # fmt: skip
                    if status != 429 and status < 500:
                        code, message = _error(status, body, uri)
                        raise TwilioReadError(
                            f"GET {uri}: HTTP {status}" + (f", Twilio error {code}" if code else "") + f": {message}",
                            status=status, code=code, uri=uri,
                        )  # fmt: skip
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
                    code, message = _error(status, body, uri)
                    last = f"HTTP {status}" + (f" (Twilio error {code})" if code else "") + f": {message}"
                    last_status: int | None = status
            except TwilioReadError:
                raise
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                outcome = outcome_for_exception(exc, self._timeout, "Twilio")
                if outcome.retryable is False:  # the SSRF policy refused the address: waiting won't help
                    raise TwilioReadError(f"GET {uri}: {outcome.message}", uri=uri) from exc
                last, last_status, code = outcome.message, None, None
            elapsed = time.monotonic() - started
            if retry_after is not None:
                delay = min(retry_after, policy.max_retry_after)
            else:
                delay = policy.backoff(attempt, self._rng)
            if attempt >= policy.max_attempts or elapsed + delay > policy.max_elapsed:
                raise TwilioReadError(
                    f"GET {uri}: gave up after {attempt} attempts in {elapsed:.1f}s; last: {last}",
                    status=last_status, code=code, uri=uri, retryable=True,
                )  # fmt: skip
            self.retries += 1
            await self._sleep(delay)


def _account_in(uri: str) -> str | None:
    parts = uri.split("?", 1)[0].split("/")
    if len(parts) > 3 and parts[2] == "Accounts":
        return parts[3].removesuffix(".json") or None
    return None
