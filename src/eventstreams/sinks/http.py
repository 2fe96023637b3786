"""The one HTTP client policy of the HTTP sinks (webhook, segment, twilio-sms).

Each sender owns an :class:`HttpClient` (its own connection pool, so a slow
endpoint only ties up its own connections). The policy:

* a total timeout per request (the sink timeout), connection reuse (keep-alive,
  at most ``max_in_flight`` connections);
* the SSRF policy (:mod:`eventstreams.netpolicy`) on every new connection:
  :class:`GuardedResolver` resolves the name, refuses it if any address is
  forbidden and hands aiohttp the checked addresses to connect to (pinned; no
  DNS cache, so a rebinding answer is always re-checked). aiohttp calls no
  resolver for IP literals, so :meth:`HttpClient.request` checks the host of the
  URL it is about to send;
* redirects are never followed (a 3xx is the answer), proxy environment
  variables and ``.netrc`` are ignored (``trust_env=False``: a proxy would
  bypass the address check) and no cookies are kept;
* at most :data:`EXCERPT_BYTES` of a response body are read, for the outcome's
  (escaped, bounded) excerpt; exceptions map to outcomes
  (:func:`outcome_for_exception`), a refused destination to a non-retried one.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from .. import __version__
from ..netpolicy import AsyncResolver, DestinationRefused, host_refusal, resolve_checked
from ..outcome import EXCERPT_BYTES, Outcome
from .lean_http import ClientPolicy, InvalidResponse

__all__ = [
    "EXCERPT_BYTES",
    "USER_AGENT",
    "GuardedResolver",
    "HttpClient",
    "outcome_for_exception",
    "read_excerpt",
]

USER_AGENT = f"eventstreams/{__version__}"

_NUMERIC_FLAGS = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that applies the SSRF policy to every lookup.

    ``lookup`` (``(host, port) -> IP strings``) replaces system DNS, for tests
    and custom setups. aiohttp connects to the addresses returned here, so the
    name is never resolved again behind the check's back.
    """

    def __init__(self, allow_private: bool, lookup: AsyncResolver | None = None) -> None:
        self._allow_private = allow_private
        self._lookup = lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host``; raise :class:`DestinationRefused` if any address is forbidden."""
        found: list[ResolveResult] = []

        async def lookup(name: str, lookup_port: int) -> list[str]:
            if self._lookup is not None:
                ips = list(await self._lookup(name, lookup_port))
                found.extend(_result(host, ip, lookup_port) for ip in ips if _family_ok(ip, family))
            else:
                found.extend(await _system_lookup(host, name, lookup_port, family))
            return [item["host"] for item in found]

        allowed = await resolve_checked(host, port, self._allow_private, resolver=lookup)
        if not found:  # a literal (e.g. legacy "0x7f.1"): no lookup was made
            return [_result(host, ip, port) for ip in allowed]
        return found  # every address passed the check, or resolve_checked raised

    async def close(self) -> None:
        """Nothing to release (lookups use the event loop's executor)."""
        return None


def _result(hostname: str, ip: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return ResolveResult(hostname=hostname, host=ip, port=port, family=family, proto=0, flags=_NUMERIC_FLAGS)


def _family_ok(ip: str, family: int) -> bool:
    if family == socket.AF_UNSPEC:
        return True
    return (":" in ip) == (family == socket.AF_INET6)


async def _system_lookup(hostname: str, name: str, port: int, family: int) -> list[ResolveResult]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM, family=family)
    results: list[ResolveResult] = []
    for fam, _, proto, _, address in infos:
        if fam == socket.AF_INET6 and len(address) >= 4 and address[3]:
            # link-local with a scope id: keep "%scope" so the socket can use it
            ip, _ = await loop.getnameinfo(address[:4], socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
        else:
            ip = str(address[0])
        results.append(
            ResolveResult(hostname=hostname, host=ip, port=port, family=fam, proto=proto, flags=_NUMERIC_FLAGS)
        )
    return results


class HttpClient(ClientPolicy):
    """One sender's HTTP client under the policy above. The session is created lazily
    (aiohttp sessions belong to the running event loop) and reopened after :meth:`close`."""

    def __init__(
        self, *, allow_private: bool, timeout: float, max_in_flight: int, resolver: AsyncResolver | None = None
    ) -> None:
        super().__init__(allow_private=allow_private, timeout=timeout, max_in_flight=max_in_flight, resolver=resolver)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_in_flight,
                resolver=GuardedResolver(self.allow_private, self._resolver),
                # No DNS cache: every new connection re-resolves and re-checks (DNS rebinding).
                use_dns_cache=False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                trust_env=False,  # proxies would bypass the address check
                cookie_jar=aiohttp.DummyCookieJar(),  # endpoints get no state between deliveries
                raise_for_status=False,
            )
        return self._session

    def request(self, method: str, url: URL, **kwargs: Any) -> Any:
        """``session.request`` with redirects off (the policy's one way to send).

        The host of ``url`` itself, the very object sent, is judged first: aiohttp
        calls no resolver for an IP literal. Raises :class:`DestinationRefused`
        (mapped by :func:`outcome_for_exception` to a non-retried outcome)."""
        refused = host_refusal(url.raw_host or "", self.allow_private)
        if refused is not None:
            raise DestinationRefused(refused)
        return self.session().request(method, url, allow_redirects=False, **kwargs)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _refusal_in(exc: BaseException) -> DestinationRefused | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DestinationRefused):
            return current
        nxt = getattr(current, "os_error", None)
        current = nxt if isinstance(nxt, BaseException) and id(nxt) not in seen else current.__cause__
    return None


def outcome_for_exception(exc: BaseException, timeout: float, what: str) -> Outcome:
    """The outcome of a request that raised instead of answering."""
    if isinstance(exc, TimeoutError):  # includes aiohttp's ServerTimeoutError
        return Outcome.timeout(f"no response within {timeout:g}s" + (f": {exc}" if str(exc) else ""))
    if isinstance(exc, (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch, ssl.SSLError)):
        return Outcome.tls_error(f"{type(exc).__name__}: {exc}")
    refused = _refusal_in(exc)
    if refused is not None:
        return Outcome.refused(str(refused))
    if isinstance(exc, (aiohttp.ClientConnectionError, OSError)):
        return Outcome.connect_error(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, aiohttp.InvalidURL):
        # e.g. aiohttp refuses some numeric hosts; fixing needs a sink update
        return Outcome.connect_error(f"{what} URL not usable: {exc}")
    if isinstance(exc, InvalidResponse):
        return Outcome.connect_error(f"invalid HTTP response: {exc}")
    if isinstance(exc, aiohttp.ClientResponseError):
        # Unparsable HTTP from the endpoint: its fault and worth retrying, like a dropped connection.
        return Outcome.connect_error(f"invalid HTTP response: {exc.message}")
    return Outcome.internal(f"{type(exc).__name__}: {exc}")


async def read_excerpt(resp: aiohttp.ClientResponse) -> bytes:
    """Up to :data:`EXCERPT_BYTES` of the body; a failure mid-body keeps what was read."""
    chunks: list[bytes] = []
    remaining = EXCERPT_BYTES
    try:
        while remaining > 0:
            chunk = await resp.content.read(remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except (aiohttp.ClientError, TimeoutError, OSError):
        # The status line already decides the outcome; the body is only a note.
        pass
    return b"".join(chunks)
