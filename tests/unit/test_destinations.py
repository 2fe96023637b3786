"""SSRF guard for sink destinations. Resolvers are faked: no network."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstreams.sinks.destinations import (
    DestinationForbiddenError,
    check_destination,
    forbidden_reason,
    is_forbidden_address,
    resolve_and_check,
    system_resolver,
)

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"

FORBIDDEN = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # AWS/GCP/Azure metadata
    "169.254.0.1",
    "100.64.0.1",  # CGNAT
    "100.127.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.10",  # documentation
    "198.18.0.1",  # benchmarking
    "::",
    "::1",
    "fc00::1",  # ULA
    "fd12:3456:789a::1",
    "fe80::1",  # link-local
    "fe80::1%eth0",
    "febf::1",
    "ff02::1",  # multicast
    "2001:db8::1",  # documentation
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "::ffff:10.1.2.3",
    "::ffff:7f00:1",
    "64:ff9b::127.0.0.1",  # NAT64 of loopback
    "64:ff9b::10.0.0.1",
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "::127.0.0.1",  # deprecated IPv4-compatible
    "2001::1",  # Teredo
    "not-an-ip",  # fail closed
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    PUBLIC_V4,
    "35.90.102.130",  # Twilio's own egress range
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above CGNAT
    "172.15.255.255",
    "172.32.0.0",
    "169.253.255.255",
    "2001:4860:4860::8888",
    PUBLIC_V6,
    "::ffff:8.8.8.8",  # mapped public is fine
    "64:ff9b::8.8.8.8",  # DNS64 synthesised public address
]


@pytest.mark.parametrize("ip", FORBIDDEN)
def test_forbidden_addresses(ip: str) -> None:
    assert is_forbidden_address(ip)
    assert forbidden_reason(ip)


@pytest.mark.parametrize("ip", ALLOWED)
def test_allowed_addresses(ip: str) -> None:
    assert not is_forbidden_address(ip), forbidden_reason(ip)


def test_accepts_ipaddress_objects() -> None:
    assert is_forbidden_address(ipaddress.ip_address("127.0.0.1"))
    assert not is_forbidden_address(ipaddress.ip_address("8.8.8.8"))


def test_reasons_name_the_problem() -> None:
    assert forbidden_reason("127.0.0.1") == "loopback"
    assert "metadata" in (forbidden_reason("169.254.169.254") or "")
    assert forbidden_reason("::ffff:127.0.0.1") == "IPv4-mapped loopback"
    assert "ULA" in (forbidden_reason("fd00::1") or "")


@given(st.ip_addresses(v=4))
def test_mapped_and_nat64_forms_judged_like_ipv4(v4: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{v4}")
    nat64 = ipaddress.IPv6Address(f"64:ff9b::{v4}")
    assert is_forbidden_address(mapped) == is_forbidden_address(v4)
    assert is_forbidden_address(nat64) == is_forbidden_address(v4)


# -- check_destination -------------------------------------------------------------------------


class FakeResolver:
    """Records calls and returns a fixed answer (or raises)."""

    def __init__(self, answer: Iterable[str] | Exception) -> None:
        self.answer = answer
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if isinstance(self.answer, Exception):
            raise self.answer
        return list(self.answer)


def test_public_destination_accepted() -> None:
    resolver = FakeResolver([PUBLIC_V4, PUBLIC_V6])
    assert check_destination("https://hooks.example.com/twilio", False, resolver=resolver) is None
    assert resolver.calls == [("hooks.example.com", 443)]


def test_resolver_gets_explicit_or_default_port() -> None:
    resolver = FakeResolver([PUBLIC_V4])
    check_destination("http://hooks.example.com/x", False, resolver=resolver)
    check_destination("https://hooks.example.com:8443/x", False, resolver=resolver)
    assert resolver.calls == [("hooks.example.com", 80), ("hooks.example.com", 8443)]


def test_name_resolving_to_metadata_refused() -> None:
    resolver = FakeResolver(["169.254.169.254"])
    error = check_destination("http://evil.example/latest/meta-data", False, resolver=resolver)
    assert error is not None
    assert "169.254.169.254" in error
    assert "link-local" in error


def test_any_private_answer_refuses_the_name() -> None:
    resolver = FakeResolver([PUBLIC_V4, "10.0.0.5"])
    error = check_destination("https://mixed.example/", False, resolver=resolver)
    assert error is not None
    assert "10.0.0.5" in error


def test_allow_private_skips_address_checks() -> None:
    resolver = FakeResolver(["127.0.0.1"])
    assert check_destination("http://internal.corp/hook", True, resolver=resolver) is None
    assert check_destination("http://127.0.0.1:8080/hook", True, resolver=resolver) is None
    assert check_destination("http://localhost:8080/hook", True, resolver=resolver) is None
    assert resolver.calls == []
    # shape errors still apply
    assert check_destination("ftp://internal.corp/", True) is not None


def test_unresolvable_name_is_accepted_for_now() -> None:
    resolver = FakeResolver(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    assert check_destination("https://not-yet.example/", False, resolver=resolver) is None


def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"literal address {host} must not be resolved")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://127.0.0.1:9000/admin", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fd00::1]/", "ULA"),
        ("http://10.0.0.1/", "RFC 1918"),
        ("http://2130706433/", "127.0.0.1"),  # decimal form of 127.0.0.1
        ("http://0x7f.1/", "127.0.0.1"),
        ("http://0177.0.0.1/", "127.0.0.1"),
        ("http://0/", "unspecified"),
        ("http://localhost/", "loopback"),
        ("http://LOCALHOST./", "loopback"),
        ("http://api.localhost/", "loopback"),
    ],
)
def test_private_literals_and_names_refused(url: str, fragment: str) -> None:
    error = check_destination(url, False, resolver=_no_dns)
    assert error is not None
    assert fragment in error


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("", "empty"),
        ("ftp://files.example/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("hooks.example.com/path", "scheme"),
        ("//hooks.example.com/path", "scheme"),
        ("https:///path-only", "no host"),
        ("https://", "no host"),
        ("https://user:pass@/x", "no host"),
        ("https://hooks.example.com/x#rc=5", "fragment"),
        ("https://hooks.example.com/#", "fragment"),
        ("https://hooks.example.com/a b", "whitespace"),
        ("https://hooks.example.com/\r\nHost: evil", "control"),
        ("https://hooks.example.com:0/", "port"),
        ("https://hooks.example.com:70000/", "port"),
        ("https://hooks.example.com:abc/", "port"),
        ("https://[::1/", "valid URL"),
        ("https://bad..name/", "host name"),
        ("https://-bad.example/", "host name"),
        ("https://256.1.1.1/", "IPv4"),
    ],
)
def test_malformed_destinations(url: str, fragment: str) -> None:
    error = check_destination(url, False, resolver=FakeResolver([PUBLIC_V4]))
    assert error is not None
    assert fragment in error.lower() or fragment in error


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/twilio?x=1",
        "HTTPS://Hooks.Example.COM/path",
        "https://user:p%40ss@hooks.example.com/events",
        "http://hooks.example.com:8080",
        "https://_dmarc-like.example.com/",
        "https://bücher.example/",
        "https://hooks.example.com./",
        "https://8.8.8.8/",
        f"https://[{PUBLIC_V6}]:8443/",
    ],
)
def test_valid_public_destinations(url: str) -> None:
    assert check_destination(url, False, resolver=FakeResolver([PUBLIC_V4])) is None


def test_system_resolver_handles_numeric_host_without_network() -> None:
    assert system_resolver("127.0.0.1", 80) == ["127.0.0.1"]


# -- connect time ------------------------------------------------------------------------------


class FakeAsyncResolver:
    def __init__(self, *answers: list[str] | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_resolve_and_check_returns_vetted_addresses() -> None:
    resolver = FakeAsyncResolver([PUBLIC_V4, PUBLIC_V6, PUBLIC_V4])
    got = await resolve_and_check("hooks.example.com", 443, False, resolver=resolver)
    assert got == [PUBLIC_V4, PUBLIC_V6]


async def test_resolve_and_check_refuses_private_answer() -> None:
    resolver = FakeAsyncResolver([PUBLIC_V4, "192.168.0.10"])
    with pytest.raises(DestinationForbiddenError, match=r"192\.168\.0\.10"):
        await resolve_and_check("hooks.example.com", 443, False, resolver=resolver)


async def test_forbidden_error_is_a_connection_error() -> None:
    with pytest.raises(ConnectionError):
        await resolve_and_check("127.0.0.1", 80, False)


async def test_resolve_and_check_allow_private() -> None:
    resolver = FakeAsyncResolver(["10.0.0.7"])
    assert await resolve_and_check("svc.internal", 80, True, resolver=resolver) == ["10.0.0.7"]
    assert await resolve_and_check("localhost", 80, True, resolver=FakeAsyncResolver(["127.0.0.1"])) == ["127.0.0.1"]


async def test_resolve_and_check_literals_skip_dns() -> None:
    resolver = FakeAsyncResolver(AssertionError("must not resolve"))
    assert await resolve_and_check("8.8.8.8", 443, False, resolver=resolver) == ["8.8.8.8"]
    assert await resolve_and_check(f"[{PUBLIC_V6}]", 443, False, resolver=resolver) == [PUBLIC_V6]
    with pytest.raises(DestinationForbiddenError):
        await resolve_and_check("[::1]", 443, False, resolver=resolver)
    with pytest.raises(DestinationForbiddenError):
        await resolve_and_check("0x7F000001", 443, False, resolver=resolver)
    with pytest.raises(DestinationForbiddenError):
        await resolve_and_check("localhost", 443, False, resolver=resolver)
    assert resolver.calls == 0


async def test_resolve_and_check_propagates_dns_failure() -> None:
    resolver = FakeAsyncResolver(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    with pytest.raises(OSError):
        await resolve_and_check("nope.example", 443, False, resolver=resolver)
    with pytest.raises(socket.gaierror):
        await resolve_and_check("empty.example", 443, False, resolver=FakeAsyncResolver([]))


async def test_dns_rebinding_caught_at_connect_time() -> None:
    """The name was public when the sink was created, then rebinds to loopback."""
    answers = iter([[PUBLIC_V4], ["127.0.0.1"]])

    def sync_resolver(host: str, port: int) -> list[str]:
        return next(answers)

    assert check_destination("https://rebind.example/hook", False, resolver=sync_resolver) is None

    async def async_resolver(host: str, port: int) -> list[str]:
        return next(answers)

    with pytest.raises(DestinationForbiddenError, match="loopback"):
        await resolve_and_check("rebind.example", 443, False, resolver=async_resolver)
