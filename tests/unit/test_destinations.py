"""The one SSRF policy (eventstreams.netpolicy), at configuration time and at connect time.
Resolvers are faked: no network."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstreams.errors import TwilioError
from eventstreams.netpolicy import (
    DestinationRefused,
    canonical_host,
    forbidden_reason,
    host_literal,
    host_refusal,
    resolve_checked,
    resolve_checked_sync,
    url_problem,
)
from eventstreams.sinks import registry
from eventstreams.sinks.spec import ConfigOptions

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"

FORBIDDEN = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # AWS/GCP/Azure metadata
    "169.254.0.1",
    "100.100.100.200",  # Alibaba metadata
    "100.64.0.1",  # CGNAT
    "0.0.0.0",
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.10",  # documentation
    "198.18.0.1",  # benchmarking
    "::",
    "::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "fc00::1",  # ULA
    "fe80::1",  # link-local
    "fe80::1%eth0",
    "ff02::1",  # multicast
    "2001:db8::1",  # documentation
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "64:ff9b::127.0.0.1",  # NAT64 of loopback
    "64:ff9b::7f00:1",
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "::127.0.0.1",  # deprecated IPv4-compatible
    "2001::1",  # Teredo
    "not-an-ip",  # fail closed
]

ALLOWED = [
    "8.8.8.8",
    PUBLIC_V4,
    "100.63.255.255",  # just below CGNAT
    "172.32.0.0",
    "2001:4860:4860::8888",
    PUBLIC_V6,
    "::ffff:8.8.8.8",  # mapped public is fine
    "64:ff9b::8.8.8.8",  # DNS64 synthesised public address
]


@pytest.mark.parametrize("ip", FORBIDDEN)
def test_forbidden_addresses(ip: str) -> None:
    assert forbidden_reason(ip)


@pytest.mark.parametrize("ip", ALLOWED)
def test_allowed_addresses(ip: str) -> None:
    assert forbidden_reason(ip) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::127.0.0.1]", "::7f00:1"),
        ("[64:ff9b::7f00:1]", "64:ff9b::7f00:1"),
        ("hooks.example.com", None),
        ("1.2.3.4.5", None),
    ],
)
def test_host_literal_forms(host: str, address: str | None) -> None:
    got = host_literal(host)
    assert (None if got is None else str(got)) == address


# -- configuration time: every URL field of every sink type ------------------------------------

URL_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("webhook", {"method": "POST"}, "destination"),
    ("segment", {"write_key": "wk"}, "endpoint"),
    (
        "kinesis",
        {
            "arn": "arn:aws:kinesis:us-east-1:111111111111:stream/s",
            "role_arn": "arn:aws:iam::111111111111:role/r",
            "external_id": "x",
        },
        "endpoint_url",
    ),
]
# the operator allows per-sink endpoint_url here, so that only the SSRF policy decides
OPTIONS = ConfigOptions(allow_private=False, allow_sink_endpoint_url=True)


def created(url: str, options: ConfigOptions = OPTIONS) -> list[str | None]:
    """For each sink type's URL field: None if a sink with ``url`` there is accepted, else the error."""
    out: list[str | None] = []
    for sink_type, base, key in URL_FIELDS:
        try:
            registry.validate(sink_type, {**base, key: url}, options)
            out.append(None)
        except TwilioError as exc:
            assert exc.code == 91000 and key in exc.message
            out.append(exc.message)
    return out


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://localhost/",
        "http://localhost./",
        "http://LOCALHOST.:8080/",
        "http://api.localhost/",
        "http://[::127.0.0.1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://metadata.google.internal./",
        "http://256.1.1.1/",  # not an address inet_aton takes, not a name either: fail closed
    ],
)
def test_creation_refuses_internal_hosts_in_every_url_field(url: str) -> None:
    errors = created(url)
    assert all(e is not None and "not a public address" in e for e in errors), errors
    # with the operator's one switch on, the same URLs are accepted
    assert created(url, ConfigOptions(allow_private=True, allow_sink_endpoint_url=True)) == [None] * 3


@pytest.mark.parametrize("url", ["https://hooks.example.com/x", f"https://[{PUBLIC_V6}]:8443/", "http://8.8.8.8/"])
def test_creation_accepts_public_hosts(url: str) -> None:
    assert created(url) == [None] * 3


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://files.example/", "http or https"),
        ("https:///path-only", "no host"),
        ("https://hooks.example.com/a b", "whitespace"),
        ("https://hooks.example.com/\r\nHost: evil", "control"),
        ("https://hooks.example.com:70000/", "valid URL"),
        ("https://hooks.example.com:0/", "port"),
        # restored from the old check_destination: host labels and fragments
        ("https://-bad-.example/", "invalid host name"),
        ("https://a..b/", "invalid host name"),
        ("https://bad-.example/", "invalid host name"),
        (f"https://{'a' * 64}.example/", "invalid host name"),
        ("https://exa$mple.com/", "invalid host name"),
        ("https://hooks.example.com/x#frag", "#fragment"),
        ("https://hooks.example.com/#", "#fragment"),
    ],
)
def test_malformed_urls(url: str, fragment: str) -> None:
    assert fragment in (url_problem(url, allow_private=True) or "")


# Spellings the client's IDNA (UTS 46) mapping turns into a forbidden ASCII address or name.
UNICODE_INTERNAL = [
    "\uff11\uff12\uff17.\uff10.\uff10.\uff11",  # full-width digits and dots
    "127\u30020\u30020\u30021",  # ideographic full stop
    "\u2460\u2461\u2466.0.0.1",  # circled digits
    "\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14",  # metadata service
    "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54",
    "\uff10\uff58\uff17\uff46.1",  # full-width legacy literal
]


@pytest.mark.parametrize("host", UNICODE_INTERNAL)
async def test_unicode_spellings_of_internal_hosts_are_refused(host: str) -> None:
    assert canonical_host(host) in ("127.0.0.1", "169.254.169.254", "localhost", "0x7f.1")
    errors = created(f"http://{host}:8080/x")
    assert all(e is not None and "not a public address" in e for e in errors), errors
    assert host_refusal(host, allow_private=False) is not None
    with pytest.raises(DestinationRefused):
        await resolve_checked(host, 80, False, resolver=_no_dns)
    with pytest.raises(DestinationRefused):
        resolve_checked_sync(host, 80, False, resolver=lambda h, p: [PUBLIC_V4])


_FULL_WIDTH = str.maketrans("0123456789.", "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff0e")


@given(st.ip_addresses(v=4).filter(lambda a: forbidden_reason(a) is not None))
def test_full_width_spelling_of_any_forbidden_ipv4_is_refused(v4: ipaddress.IPv4Address) -> None:
    for host in (str(v4).translate(_FULL_WIDTH), str(v4).replace(".", "\u3002")):
        assert None not in created(f"https://{host}/"), host


def test_a_name_is_resolved_in_its_canonical_form() -> None:
    asked: list[str] = []
    resolve_checked_sync(
        "\uff48\uff4f\uff4f\uff4b\uff53.example.com", 443, False, resolver=lambda h, p: asked.append(h) or [PUBLIC_V4]
    )
    assert asked == ["hooks.example.com"]


@pytest.mark.parametrize(
    "url", ["https://exa_mple.com/", "https://b\u00fccher.example/x", "https://xn--bcher-kva.example/", "http://a.b./"]
)
def test_valid_host_names_are_accepted(url: str) -> None:
    # "_" stays allowed (the old label rule); Unicode names are judged in their IDNA form
    assert url_problem(url, allow_private=False) is None
    assert created(url) == [None] * 3


def test_bad_host_name_is_a_91000_at_creation() -> None:
    errors = created("https://-bad-.example/hook")
    assert all(e is not None and "invalid host name" in e for e in errors), errors


def test_refusal_is_plain() -> None:
    message = host_refusal("0x7f000001", allow_private=False) or ""
    assert "not a public address" in message and "127.0.0.1" not in message and "loopback" not in message


# -- property-based: every encoding of a forbidden IPv4 ----------------------------------------

forbidden_v4 = st.ip_addresses(v=4).filter(lambda a: forbidden_reason(a) is not None)
public_v4 = st.ip_addresses(v=4).filter(lambda a: forbidden_reason(a) is None)


def encodings(v4: ipaddress.IPv4Address) -> list[str]:
    """Host spellings a resolver or URL parser turns into ``v4`` (or an IPv6 address embedding it)."""
    n = int(v4)
    a, b, c, d = v4.packed
    return [
        str(v4),
        str(n),  # decimal
        f"0x{n:08x}",  # hex
        f"0{a:o}.0{b:o}.0{c:o}.0{d:o}",  # octal
        f"{a}.{b}.{(c << 8) | d}",  # short form a.b.c (16-bit tail)
        f"{a}.{(b << 16) | (c << 8) | d}",  # short form a.b (24-bit tail)
        f"0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}",
        f"[::ffff:{v4}]",  # IPv4-mapped
        f"[64:ff9b::{v4}]",  # NAT64
        f"[2002:{a:02x}{b:02x}:{c:02x}{d:02x}::1]",  # 6to4
    ]


async def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"literal {host} must not be resolved")


@given(forbidden_v4)
async def test_every_encoding_of_a_forbidden_ipv4_is_refused(v4: ipaddress.IPv4Address) -> None:
    for host in encodings(v4):
        assert None not in created(f"http://{host}:8080/x"), host
        with pytest.raises(DestinationRefused):
            await resolve_checked(host, 80, False, resolver=_no_dns)
        with pytest.raises(DestinationRefused):
            resolve_checked_sync(host, 80, False)
    # IPv4-compatible ::a.b.c.d is deprecated: refused whatever it embeds
    with pytest.raises(DestinationRefused):
        await resolve_checked(f"[::{v4}]", 80, False, resolver=_no_dns)


@given(public_v4)
async def test_every_encoding_of_a_public_ipv4_passes(v4: ipaddress.IPv4Address) -> None:
    for host in encodings(v4):
        assert created(f"http://{host}/x") == [None] * 3, host
        (address,) = await resolve_checked(host, 80, False, resolver=_no_dns)
        assert forbidden_reason(address) is None


@given(forbidden_v4)
async def test_a_name_resolving_to_a_forbidden_address_is_refused_at_connect(v4: ipaddress.IPv4Address) -> None:
    async def dns(host: str, port: int) -> list[str]:
        return [PUBLIC_V4, str(v4)]  # one bad answer refuses the name

    with pytest.raises(DestinationRefused) as caught:
        await resolve_checked("hooks.example.com", 443, False, resolver=dns)
    assert str(v4) not in str(caught.value)  # no DNS oracle
    with pytest.raises(DestinationRefused):
        resolve_checked_sync("hooks.example.com", 443, False, resolver=lambda h, p: [str(v4)])


# -- connect time ------------------------------------------------------------------------------


async def test_resolve_checked_returns_pinned_addresses() -> None:
    async def dns(host: str, port: int) -> list[str]:
        return [PUBLIC_V4, PUBLIC_V6, PUBLIC_V4]

    assert await resolve_checked("hooks.example.com", 443, False, resolver=dns) == [PUBLIC_V4, PUBLIC_V6]


async def test_special_names_are_refused_without_dns() -> None:
    for host in ("localhost", "LOCALHOST.", "api.localhost", "metadata.google.internal"):
        with pytest.raises(DestinationRefused):
            await resolve_checked(host, 80, False, resolver=_no_dns)


async def test_allow_private_is_the_one_switch() -> None:
    async def dns(host: str, port: int) -> list[str]:
        return ["10.0.0.7"]

    assert await resolve_checked("svc.internal", 80, True, resolver=dns) == ["10.0.0.7"]
    assert await resolve_checked("2130706433", 80, True, resolver=_no_dns) == ["127.0.0.1"]
    assert host_refusal("localhost", allow_private=True) is None


async def test_dns_failure_propagates_as_oserror() -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def empty(host: str, port: int) -> list[str]:
        return []

    with pytest.raises(OSError):
        await resolve_checked("nope.example", 443, False, resolver=nxdomain)
    with pytest.raises(socket.gaierror):
        await resolve_checked("empty.example", 443, False, resolver=empty)


def test_refused_is_a_connection_error() -> None:
    with pytest.raises(ConnectionError):
        resolve_checked_sync("127.0.0.1", 80, False)
