"""Request-signing helpers for outgoing webhooks (pure, no I/O).

* Twilio ``X-Twilio-Signature`` for JSON bodies (Event Streams webhooks): the
  body's SHA-256 goes into the URL as ``bodySHA256`` and the full URL is signed
  with HMAC-SHA1 keyed by the account Auth Token (reference §11.1).
* Twilio's classic form-callback signature: URL + sorted ``name value`` pairs.
* Standard Webhooks v1 (``webhook-id`` / ``webhook-timestamp`` /
  ``webhook-signature``, HMAC-SHA256, ``whsec_`` secrets).
* HTTP Basic credentials taken from the destination URL's userinfo.

Userinfo policy (Twilio leaves it undocumented): credentials travel only in
the ``Authorization`` header; the request line and the signed URL are the URL
*without* userinfo. Callers therefore run :func:`split_userinfo` first and
sign its result; :func:`twilio_json_signature` refuses URLs with userinfo so a
mistake cannot leak credentials into the request line or a receiver's logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from urllib.parse import unquote, urlsplit, urlunsplit

from ..crypto import new_standard_webhook_secret  # re-exported: made low for the control plane

__all__ = [
    "TWILIO_SIGNATURE_HEADER",
    "new_standard_webhook_secret",
    "split_userinfo",
    "standard_webhook_headers",
    "twilio_form_signature",
    "twilio_json_signature",
    "validate_twilio_form_signature",
    "validate_twilio_json_signature",
]

TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
_WHSEC_PREFIX = "whsec_"
_DEFAULT_PORTS = {"http": 80, "https": 443}

FormParams = Mapping[str, str | Sequence[str]]


@lru_cache(maxsize=1024)
def _keyed(key: bytes, digest: str) -> hmac.HMAC:
    """An HMAC with its key already absorbed, copied per message: a sink signs every request with the
    same key, and the key's setup was about a fifth of signing a request (cached in memory only, beside
    the sender that holds the same secret)."""
    return hmac.new(key, digestmod=digest)


def _hmac(key: bytes, message: bytes, digest: str) -> bytes:
    mac = _keyed(key, digest).copy()
    mac.update(message)
    return mac.digest()


def _hmac_sha1_b64(key: str, message: str) -> str:
    digest = _hmac(key.encode("utf-8"), message.encode("utf-8"), "sha1")
    return base64.b64encode(digest).decode("ascii")


def _safe_equal(a: str, b: str) -> bool:
    # compare_digest rejects non-ASCII str; bytes work for any header content.
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _split_netloc(netloc: str) -> tuple[str, str, str | None]:
    """Split ``netloc`` into (userinfo-with-@ or "", host as written, port text or None)."""
    userinfo, at, hostport = netloc.rpartition("@")
    prefix = userinfo + at
    if hostport.startswith("["):  # IPv6 literal: the port follows "]"
        end = hostport.find("]")
        if end != -1:
            host, rest = hostport[: end + 1], hostport[end + 1 :]
            return prefix, host, rest[1:] if rest.startswith(":") else None
        return prefix, hostport, None
    host, colon, port = hostport.partition(":")
    return prefix, host, port if colon else None


# -- Twilio JSON-body signature ----------------------------------------------------------------


def twilio_json_signature(url: str, body: bytes, auth_token: str) -> tuple[str, str]:
    """Sign a JSON webhook the way Twilio Event Streams does.

    Returns ``(signed_url, signature)``: ``signed_url`` is ``url`` with
    ``bodySHA256=<lowercase hex sha256(body)>`` appended (``?`` or ``&``) and
    is the URL the request must be sent to; ``signature`` is
    ``base64(HMAC-SHA1(auth_token, signed_url))`` for ``X-Twilio-Signature``.
    ``body`` must be the exact bytes sent. Any ``#fragment`` is dropped (it is
    never sent on the wire, so a receiver could not reproduce it).

    Raises ``ValueError`` if ``url`` carries userinfo (see module doc).
    """
    base = url.partition("#")[0]
    if _has_userinfo(base):
        raise ValueError("strip userinfo with split_userinfo() before signing")
    digest = hashlib.sha256(body).hexdigest()
    if "?" not in base:
        sep = "?"
    elif base.endswith(("?", "&")):
        sep = ""
    else:
        sep = "&"
    # Append textually: re-encoding the user's query string would change the
    # bytes the receiver sees and break their signature check.
    signed_url = f"{base}{sep}bodySHA256={digest}"
    return signed_url, _hmac_sha1_b64(auth_token, signed_url)


# -- Twilio form-callback signature ------------------------------------------------------------


def _values(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def twilio_form_signature(url: str, params: FormParams, auth_token: str) -> str:
    """Twilio's classic ``X-Twilio-Signature`` for a form-encoded request.

    The signed string is ``url`` followed, for each parameter name in sorted
    order, by ``name + value`` for each of its values sorted and de-duplicated
    (exactly what ``twilio.request_validator`` does); the signature is
    ``base64(HMAC-SHA1(auth_token, string))``.
    """
    parts = [url]
    for name in sorted(params):
        for value in sorted(set(_values(params[name]))):
            parts.append(name + value)
    return _hmac_sha1_b64(auth_token, "".join(parts))


def _port_variants(url: str) -> list[str]:
    """``url`` as given plus with/without its port, like Twilio's validator.

    The official validator tries the URL with the port removed (whatever it
    was) and with the scheme's default port added when none is present.
    """
    parts = urlsplit(url)
    prefix, host, port = _split_netloc(parts.netloc)
    variants = [url]
    if port is not None:
        variants.append(urlunsplit(parts._replace(netloc=prefix + host)))
    else:
        default = _DEFAULT_PORTS.get(parts.scheme.lower())
        if default is not None:
            variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default}")))
    return variants


def validate_twilio_form_signature(url: str, params: FormParams, signature: str, auth_token: str) -> bool:
    """Check an ``X-Twilio-Signature`` for a form-encoded request.

    Tries ``url`` with and without the port (Twilio signs inconsistently) and
    compares in constant time.
    """
    ok = False
    for candidate in _port_variants(url):
        # No early exit: keep timing independent of which variant matched.
        ok |= _safe_equal(twilio_form_signature(candidate, params, auth_token), signature)
    return ok


def validate_twilio_json_signature(url: str, body: bytes, signature: str, auth_token: str) -> bool:
    """Check a Twilio-signed JSON request (URL carries ``bodySHA256``).

    The first ``bodySHA256`` query value must equal ``sha256(body)`` and the
    URL (with and without port) must sign to ``signature`` with no params.
    Returns ``False`` when ``bodySHA256`` is missing.
    """
    query = urlsplit(url).query
    claimed: str | None = None
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        if eq and unquote(name) == "bodySHA256":
            claimed = unquote(value)
            break
    if claimed is None:
        return False
    body_ok = _safe_equal(hashlib.sha256(body).hexdigest(), claimed)
    return validate_twilio_form_signature(url, {}, signature, auth_token) and body_ok


# -- Standard Webhooks -------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _has_userinfo(url: str) -> bool:
    return "@" in urlsplit(url).netloc  # a sink's URL, checked once rather than parsed per request


@lru_cache(maxsize=1024)
def _decode_whsec(secret: str) -> bytes:
    raw = secret.removeprefix(_WHSEC_PREFIX)
    try:
        # Tolerate missing padding, as the reference library does.
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("Standard Webhooks secret must be 'whsec_' + base64") from exc
    if not key:
        raise ValueError("Standard Webhooks secret is empty")
    return key


_ID_UNSAFE = re.compile(r"[.\s]")  # \s is str.isspace's set; one C scan instead of a generator per request


def webhook_id_ok(msg_id: str) -> bool:
    """A Standard Webhooks id: non-empty, without "." or whitespace."""
    return bool(msg_id) and _ID_UNSAFE.search(msg_id) is None


def standard_webhook_headers(msg_id: str, timestamp: int, body: bytes, secret: str | Sequence[str]) -> dict[str, str]:
    """Headers for a Standard Webhooks v1 (HMAC-SHA256) request.

    Signs ``f"{msg_id}.{timestamp}.".encode() + body``. ``secret`` is a
    ``whsec_<base64>`` string, or several during key rotation: one
    ``v1,<sig>`` per secret, space-separated. ``msg_id`` must stay the same on
    every retry (it is the receiver's idempotency key) and must not contain
    ``.``; ``timestamp`` is this attempt's Unix time in seconds.
    """
    if not webhook_id_ok(msg_id):
        raise ValueError("webhook id must be non-empty and contain no '.' or whitespace")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("timestamp must be a non-negative int (Unix seconds)")
    secret_list = [secret] if isinstance(secret, str) else list(secret)
    if not secret_list:
        raise ValueError("at least one secret is required")
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    signatures = []
    for item in secret_list:
        mac = _hmac(_decode_whsec(item), to_sign, "sha256")
        signatures.append("v1," + base64.b64encode(mac).decode("ascii"))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }


# -- Basic auth from URL userinfo --------------------------------------------------------------


def split_userinfo(url: str) -> tuple[str, str | None]:
    """Remove ``user:pass@`` from ``url`` and turn it into a Basic header.

    Returns ``(url_without_userinfo, "Basic <base64(user:pass)>" or None)``.
    User and password are percent-decoded (``%40`` → ``@``) and encoded as
    UTF-8; a missing password becomes empty (``user:``). An empty userinfo
    (``https://@host``) is stripped and gives no header.
    """
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return url, None
    start = len(parts.scheme) + 3
    if url[start - 3 : start] == "://" and url[start : start + len(parts.netloc)] == parts.netloc:
        # Splice textually so the rest of the URL keeps its exact bytes
        # (urlunsplit would e.g. drop an empty "?"), which matters for signing.
        clean = url[:start] + hostport + url[start + len(parts.netloc) :]
    else:
        clean = urlunsplit(parts._replace(netloc=hostport))
    if not userinfo:
        return clean, None
    user, _, password = userinfo.partition(":")
    credentials = f"{unquote(user)}:{unquote(password)}".encode()
    return clean, "Basic " + base64.b64encode(credentials).decode("ascii")
