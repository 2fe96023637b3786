"""SSRF guard for sink destinations.

A webhook sink lets an API user make this server send HTTP requests to any
URL, so by default we refuse destinations that reach *our* side of the
network: loopback, RFC 1918 private ranges, IPv6 unique-local (fc00::/7),
link-local (169.254/16 and fe80::/10, which includes the cloud metadata
service 169.254.169.254), CGNAT (100.64/10), unspecified, multicast,
documentation/benchmark/reserved ranges, and IPv6 forms that embed one of
those IPv4 addresses (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``,
6to4 ``2002::/16``). ``allow_private=True`` (an operator setting, for
self-hosted setups that deliver inside their own network) disables the
address checks.

Two checks are needed, and this module provides both:

1. :func:`check_destination` when a sink is created or updated, to give the
   user a clear error early. A name that does not resolve *yet* is accepted
   (DNS may be set up later; delivery then fails with 91307).
2. :func:`resolve_and_check` at **connect time**, because DNS can change
   between the two (DNS rebinding: a name that resolved to a public address at
   creation can later resolve to 127.0.0.1). The delivery client must connect
   to one of the addresses it returns, not resolve the name again, while still
   sending the original host name in ``Host`` and TLS SNI. It must also not
   follow redirects and not honour proxy environment variables, or the check
   can be bypassed.

Only :func:`check_destination`'s default resolver and
:func:`resolve_and_check` do I/O (DNS); both take an injectable resolver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeAlias
from urllib.parse import urlsplit

__all__ = [
    "AsyncResolver",
    "DestinationForbiddenError",
    "Resolver",
    "check_destination",
    "forbidden_reason",
    "is_forbidden_address",
    "resolve_and_check",
    "system_resolver",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

#: ``resolver(host, port) -> addresses`` (IP strings); raise ``OSError`` on failure.
Resolver: TypeAlias = Callable[[str, int], Iterable[str]]
#: Async variant used at connect time.
AsyncResolver: TypeAlias = Callable[[str, int], Awaitable[Iterable[str]]]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class DestinationForbiddenError(ConnectionError):
    """A destination resolved to an address the SSRF policy refuses.

    Subclasses ``ConnectionError`` so delivery code that maps connection
    failures to error 91307 handles it without a special case.
    """


def _nets(*pairs: tuple[str, str]) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]:
    return tuple((ipaddress.ip_network(net), label) for net, label in pairs)


# Explicit tables so behaviour does not drift with the Python patch release
# (ipaddress.is_private changed in 3.11.10/3.12.4); stdlib flags are a backstop.
_FORBIDDEN_V4 = _nets(
    ("0.0.0.0/8", "unspecified ('this network')"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (includes cloud metadata 169.254.169.254)"),
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


def _parse_ip(ip: str | IPAddress) -> IPAddress | None:
    if not isinstance(ip, str):
        return ip
    try:
        return ipaddress.ip_address(ip.strip().strip("[]"))
    except ValueError:
        return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip in _NAT64:
        # DNS64 networks legitimately map public IPv4 hosts here, so judge
        # by the embedded address instead of refusing the prefix.
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    return None


def forbidden_reason(ip: str | IPAddress) -> str | None:
    """Why ``ip`` is not an acceptable public destination, or ``None`` if it is.

    Unparsable input is refused (fails closed). IPv6 scope ids
    (``fe80::1%eth0``) are accepted in the input.
    """
    addr = _parse_ip(ip)
    if addr is None:
        return "unparsable"
    if isinstance(addr, ipaddress.IPv6Address):
        addr = addr if addr.scope_id is None else ipaddress.IPv6Address(str(addr).split("%", 1)[0])
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


def is_forbidden_address(ip: str | IPAddress) -> bool:
    """True if connecting to ``ip`` must be refused when private destinations are off."""
    return forbidden_reason(ip) is not None


# -- URL checks --------------------------------------------------------------------------------

_BAD_CHARS = re.compile(r"[\x00-\x20\x7f]")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_LEGACY_V4 = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}")


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Decode inet_aton forms such as ``2130706433``, ``0x7f.1`` or ``0177.0.0.1``.

    Resolvers accept these as IPv4 literals, so they must be judged as
    addresses, not as names.
    """
    host = host.lower()
    if not _LEGACY_V4.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _hostname_problem(host: str) -> str | None:
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return f"destination host {host!r} is not a valid host name"
    name = ascii_host.removesuffix(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return f"destination host {host!r} is not a valid host name"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with ``socket.getaddrinfo`` (blocking); returns IP strings."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _refusal(host: str, addr: str, reason: str) -> str:
    tail = "private destinations are not allowed"
    if addr == host.strip("[]"):
        return f"destination host {host} is a non-public address ({reason}); {tail}"
    return f"destination host {host!r} resolves to {addr} ({reason}); {tail}"


def check_destination(url: str, allow_private: bool, *, resolver: Resolver | None = None) -> str | None:
    """Validate a sink destination URL; return an error message or ``None`` if acceptable.

    Requires an absolute ``http``/``https`` URL with a host, a valid port, no
    ``#fragment`` (Twilio's connection overrides are not supported) and no
    whitespace or control characters. Unless ``allow_private``, the host (a
    literal address, or every address it resolves to via ``resolver``,
    default :func:`system_resolver`) must be public. A name that fails to
    resolve is accepted; :func:`resolve_and_check` re-checks at connect time.
    """
    if not url:
        return "destination is empty"
    if _BAD_CHARS.search(url):
        return "destination contains whitespace or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"destination is not a valid URL: {exc}"
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return f"destination scheme must be http or https, not {parts.scheme or 'missing'!r}"
    host = parts.hostname
    if not host:
        return "destination has no host"
    if "#" in url:
        return "destination must not contain a #fragment (connection overrides are not supported)"
    if port == 0:
        return "destination port must be between 1 and 65535"

    literal: IPAddress | None = _parse_ip(host) if ":" in host or host[-1:].isdigit() else None
    if literal is None and ":" in host:
        return f"destination host {host!r} is not a valid IPv6 address"
    if literal is None:
        literal = _legacy_ipv4(host)
        if literal is None and _LEGACY_V4.fullmatch(host):
            return f"destination host {host!r} is not a valid IPv4 address"
    if literal is None and (problem := _hostname_problem(host)):
        return problem
    if allow_private:
        return None

    if literal is not None:
        reason = forbidden_reason(literal)
        return None if reason is None else _refusal(host, str(literal), reason)
    name = host.removesuffix(".")
    if name == "localhost" or name.endswith(".localhost"):
        # RFC 6761: always loopback, whatever a resolver says.
        return _refusal(host, host, "loopback")
    try:
        addresses = list((resolver or system_resolver)(host, port or _DEFAULT_PORTS[scheme]))
    except (OSError, UnicodeError):
        return None  # not an SSRF risk now; connect-time check is authoritative
    for addr in addresses:
        reason = forbidden_reason(addr)
        if reason is not None:
            return _refusal(host, addr, reason)
    return None


# -- connect time ------------------------------------------------------------------------------


async def _system_resolver_async(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve_and_check(
    host: str, port: int, allow_private: bool, *, resolver: AsyncResolver | None = None
) -> list[str]:
    """Resolve ``host`` and return the addresses the client may connect to.

    Call this for every new connection and connect to a returned address
    (keeping ``host`` for ``Host``/SNI), so a DNS answer that changed since
    :func:`check_destination` cannot redirect us inward. If *any* address is
    forbidden the whole name is refused with :class:`DestinationForbiddenError`
    (an attacker controls the full answer set). Resolution failures propagate
    as ``OSError`` (``socket.gaierror``); both map to delivery error 91307.
    """
    bare = host.strip("[]")
    literal = _parse_ip(bare) if ":" in bare or bare[-1:].isdigit() else None
    if literal is None:
        literal = _legacy_ipv4(bare)
    if literal is not None:
        addresses = [str(literal)]
    else:
        name = bare.lower().removesuffix(".")
        if not allow_private and (name == "localhost" or name.endswith(".localhost")):
            raise DestinationForbiddenError(_refusal(host, host, "loopback"))
        resolved = await (resolver or _system_resolver_async)(bare, port)
        addresses = list(dict.fromkeys(resolved))  # de-duplicate, keep resolver order
        if not addresses:
            raise socket.gaierror(f"no addresses found for {host!r}")
    if not allow_private:
        for addr in addresses:
            reason = forbidden_reason(addr)
            if reason is not None:
                raise DestinationForbiddenError(_refusal(host, addr, reason))
    return addresses
