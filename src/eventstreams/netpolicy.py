"""The one SSRF policy: which hosts a sink may make this server connect to.

A sink lets an API user make the server send requests to a URL of their
choosing, so by default nothing on *our* side of the network is reachable:
loopback, RFC 1918, IPv6 unique-local (fc00::/7), link-local (169.254/16,
fe80::/10), CGNAT (100.64/10), unspecified, multicast, documentation,
benchmarking and reserved ranges, the cloud metadata services (AWS/GCP/Azure
169.254.169.254, AWS fd00:ec2::254, Alibaba 100.100.100.200,
``metadata.google.internal``), ``localhost`` and every IPv6 form that embeds
one of those IPv4 addresses (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible
``::a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``). Hosts written as
legacy IPv4 literals (``2130706433``, ``0x7f000001``, ``0177.0.0.1``,
``127.1``) are judged as the address a resolver makes of them, and every host
is judged as the HTTP client will send it (:func:`canonical_host`: IDNA / UTS 46
mapping, so full-width digits or ideographic full stops spelling 127.0.0.1 are
judged as ``127.0.0.1``).
``EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS`` (``allow_private``) is the one
switch that turns the address checks off.

The policy runs twice:

1. :func:`url_problem` when a sink is created, on every URL field of every
   sink type (no DNS: the answer may change, and a slow resolver must not
   stall the API);
2. :func:`resolve_checked` / :func:`resolve_checked_sync` at **connect time**,
   on the addresses the name resolves to. The client connects to those
   addresses (pinned), never resolving the name again behind the check's back
   (DNS rebinding), and follows no redirects. The HTTP client also judges the
   literal host of every request's URL with :func:`host_refusal` (no resolver
   runs for an IP literal).

Refusal messages are plain ("not a public address"): they never say what a
name resolved to, so the delivery log is not an oracle for internal DNS.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeAlias
from urllib.parse import urlsplit

from yarl import URL

__all__ = [
    "NOT_PUBLIC",
    "AsyncResolver",
    "DestinationRefused",
    "Resolver",
    "canonical_host",
    "forbidden_reason",
    "host_literal",
    "host_refusal",
    "refusal_message",
    "resolve_checked",
    "resolve_checked_sync",
    "url_problem",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``resolver(host, port) -> IP strings``; raise ``OSError`` on failure.
Resolver: TypeAlias = Callable[[str, int], Iterable[str]]
AsyncResolver: TypeAlias = Callable[[str, int], Awaitable[Iterable[str]]]

NOT_PUBLIC = "is not a public address"
_SWITCH = "private destinations are not allowed (EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS)"


class DestinationRefused(ConnectionError):
    """A destination the SSRF policy refuses (a ``ConnectionError``, so connection-failure
    handling sees it; senders turn it into a non-retried outcome)."""


def refusal_message(host: str) -> str:
    """The plain refusal text for ``host`` (the user's own input, never a resolved address)."""
    return f"destination refused: host {host!r} {NOT_PUBLIC}; {_SWITCH}"


def _nets(*pairs: tuple[str, str]) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]:
    return tuple((ipaddress.ip_network(net), label) for net, label in pairs)


# Explicit tables so behaviour does not drift with the Python patch release
# (ipaddress.is_private changed in 3.11.10/3.12.4); stdlib flags are a backstop.
_FORBIDDEN_V4 = _nets(
    ("169.254.169.254/32", "cloud metadata"),
    ("100.100.100.200/32", "cloud metadata (Alibaba)"),
    ("0.0.0.0/8", "unspecified ('this network')"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),  # includes broadcast 255.255.255.255
)
_FORBIDDEN_V6 = _nets(
    ("fd00:ec2::254/128", "cloud metadata (AWS)"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("::ffff:0:0:0/96", "IPv4-translated (SIIT)"),
    ("64:ff9b:1::/48", "NAT64 local-use"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignment (includes Teredo)"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("fc00::/7", "unique local (ULA)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Names that always mean this machine or the cloud metadata service, whatever DNS says.
_SPECIAL_NAMES = frozenset({"localhost", "metadata.google.internal", "metadata"})


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip in _NAT64:
        # DNS64 networks legitimately map public IPv4 hosts here: judge the embedded address.
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    return None


def forbidden_reason(ip: str | IPAddress) -> str | None:
    """Why ``ip`` is not a public destination, or ``None`` if it is. Unparsable input is
    refused (fails closed); IPv6 scope ids (``fe80::1%eth0``) are accepted in the input."""
    addr = host_literal(ip) if isinstance(ip, str) else ip
    if addr is None:
        return "unparsable"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.scope_id is not None:
            addr = ipaddress.IPv6Address(str(addr).split("%", 1)[0])
        embedded = _embedded_v4(addr)
        if embedded is not None:
            form, v4 = embedded
            inner = forbidden_reason(v4)
            return None if inner is None else f"{form} {inner}"
        table: Iterable[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = _FORBIDDEN_V6
    else:
        table = _FORBIDDEN_V4
    for net, label in table:
        if addr in net:
            return label
    # Backstop for anything the tables miss (e.g. newly reserved ranges).
    if addr.is_loopback or addr.is_link_local or addr.is_multicast or addr.is_unspecified:
        return "non-public"
    if addr.is_private or addr.is_reserved or not addr.is_global:
        return "non-public"
    return None


_LEGACY_V4 = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}")


def canonical_host(host: str) -> str | None:
    """``host`` as the HTTP client sends and connects to it, or ``None`` if it cannot be encoded.

    yarl (aiohttp's URL type) IDNA-encodes hosts with the UTS 46 mapping, which
    turns full-width digits, ideographic full stops and circled digits into
    ASCII (full-width ``127.0.0.1`` -> ``127.0.0.1``); judging the host as typed would
    let such a spelling of a forbidden address through. IPv6 brackets are removed."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text.isascii():
        return text.lower()
    try:
        return URL.build(scheme="http", host=text).raw_host
    except (ValueError, UnicodeError):
        return None


def host_literal(host: str) -> IPAddress | None:
    """The address ``host`` denotes when it is an IP literal in any form a resolver accepts
    (``[v6]``, ``v6%zone``, dotted IPv4 and the inet_aton forms ``2130706433``,
    ``0x7f.1``, ``0177.0.0.1``, ``127.1``, in any spelling :func:`canonical_host`
    maps to one of those), or ``None`` for a name."""
    text = canonical_host(host)
    if text is None:
        return None
    text = text.removesuffix(".") if ":" not in text else text
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _LEGACY_V4.fullmatch(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def host_refusal(host: str, allow_private: bool) -> str | None:
    """The refusal message for a host judged **without DNS** (a literal address or a name that
    always means this machine or the metadata service), or ``None``."""
    if allow_private:
        return None
    canonical = canonical_host(host)
    if canonical is None:
        return refusal_message(host)  # the client cannot encode it either: fail closed
    literal = host_literal(canonical)
    if literal is not None:
        return None if forbidden_reason(literal) is None else refusal_message(host)
    name = canonical.removesuffix(".")
    if name in _SPECIAL_NAMES or name.endswith(".localhost") or _LEGACY_V4.fullmatch(name):
        # a legacy-looking literal inet_aton rejects (e.g. 256.1.1.1) is no name either: fail closed
        return refusal_message(host)
    return None


_BAD_CHARS = re.compile(r"[\x00-\x20\x7f]")
# One DNS label (the old check_destination's rule: "_" allowed, as some real host names use it).
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def _host_name_problem(host: str) -> str | None:
    """Why ``host`` (from ``urlsplit``) is neither an IP literal nor a valid host name, or ``None``."""
    canonical = canonical_host(host)
    if canonical is None:
        return f"has an invalid host name ({host!r})"
    if host_literal(canonical) is not None:
        return None
    if ":" in canonical:
        return f"has an invalid IPv6 address ({host!r})"
    name = canonical.removesuffix(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return f"has an invalid host name ({host!r})"
    return None


def url_problem(url: str, allow_private: bool) -> str | None:
    """What is wrong with an outbound ``http(s)`` URL at configuration time, or ``None``.

    Shape (scheme, a valid host name or IP literal, port, no ``#fragment``, no whitespace
    or control characters) and, unless
    ``allow_private``, the host without DNS (:func:`host_refusal`); names are
    checked again on their resolved addresses at connect time."""
    if _BAD_CHARS.search(url):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return "must be an http or https URL"
    host = parts.hostname
    if not host:
        return "has no host"
    if "#" in url:
        return "must not contain a #fragment (connection overrides are not supported)"
    if parts.port == 0:
        return "has an invalid port (0)"
    problem = _host_name_problem(host)
    if problem is not None:
        return problem
    refused = host_refusal(host, allow_private)
    return None if refused is None else NOT_PUBLIC


# -- connect time ------------------------------------------------------------------------------


def _checked(host: str, addresses: Iterable[str], allow_private: bool) -> list[str]:
    unique = list(dict.fromkeys(addresses))  # de-duplicate, keep resolver order
    if not unique:
        raise socket.gaierror(f"no addresses found for {host!r}")
    # Any forbidden address refuses the whole name: an attacker controls the full answer set.
    if not allow_private and any(forbidden_reason(a) is not None for a in unique):
        raise DestinationRefused(refusal_message(host))
    return unique


def _literal_or_special(host: str, allow_private: bool) -> list[str] | None:
    refused = host_refusal(host, allow_private)
    if refused is not None:
        raise DestinationRefused(refused)
    literal = host_literal(host)
    return None if literal is None else [str(literal)]


async def _system_async(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _system_sync(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


async def resolve_checked(
    host: str, port: int, allow_private: bool, *, resolver: AsyncResolver | None = None
) -> list[str]:
    """Resolve ``host`` and return the addresses the client may connect to (pinned).

    Raises :class:`DestinationRefused` when the host or any address is forbidden,
    ``OSError`` (``socket.gaierror``) when it does not resolve."""
    literal = _literal_or_special(host, allow_private)
    if literal is not None:
        return literal
    bare = canonical_host(host) or host.strip("[]")
    return _checked(host, await (resolver or _system_async)(bare, port), allow_private)


def resolve_checked_sync(host: str, port: int, allow_private: bool, *, resolver: Resolver | None = None) -> list[str]:
    """Blocking :func:`resolve_checked`, for clients that run in worker threads (boto3)."""
    literal = _literal_or_special(host, allow_private)
    if literal is not None:
        return literal
    bare = canonical_host(host) or host.strip("[]")
    return _checked(host, (resolver or _system_sync)(bare, port), allow_private)
