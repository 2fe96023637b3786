"""Webhook signing, cross-checked against the official Twilio and Standard Webhooks libraries."""

from __future__ import annotations

import base64
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from twilio.request_validator import RequestValidator

from eventstreams.sinks.signing import (
    new_standard_webhook_secret,
    split_userinfo,
    standard_webhook_headers,
    twilio_form_signature,
    twilio_json_signature,
    validate_twilio_form_signature,
    validate_twilio_json_signature,
)

TOKEN = "12345"
BASE_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"

# -- Twilio JSON (Event Streams) ---------------------------------------------------------------

JSON_BODY = b'{"property": "value", "boolean": true}'
JSON_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
JSON_SIGNATURE = "a9nBmqA0ju/hNViExpshrM61xv4="


def test_json_signature_matches_reference_vector() -> None:
    signed_url, signature = twilio_json_signature(BASE_URL, JSON_BODY, TOKEN)
    assert signed_url == f"{BASE_URL}&bodySHA256={JSON_HASH}"
    assert signature == JSON_SIGNATURE


def test_official_validator_accepts_our_json_signature() -> None:
    signed_url, signature = twilio_json_signature(BASE_URL, JSON_BODY, TOKEN)
    validator = RequestValidator(TOKEN)
    assert validator.validate(signed_url, JSON_BODY.decode(), signature)
    # the validator also accepts the explicit-port form of the same URL
    port_url = signed_url.replace("mycompany.com", "mycompany.com:443")
    assert validator.validate(port_url, JSON_BODY.decode(), signature)


def test_official_validator_rejects_tampering() -> None:
    signed_url, signature = twilio_json_signature(BASE_URL, JSON_BODY, TOKEN)
    validator = RequestValidator(TOKEN)
    assert not validator.validate(signed_url, '{"property": "value", "boolean": false}', signature)
    assert not validator.validate(signed_url.replace("foo=1", "foo=2"), JSON_BODY.decode(), signature)
    assert not RequestValidator("54321").validate(signed_url, JSON_BODY.decode(), signature)


@pytest.mark.parametrize(
    ("url", "expected_prefix"),
    [
        ("https://h.example/hook", "https://h.example/hook?bodySHA256="),
        ("https://h.example/hook?", "https://h.example/hook?bodySHA256="),
        ("https://h.example/hook?a=1&", "https://h.example/hook?a=1&bodySHA256="),
        ("https://h.example/hook?a=%20b", "https://h.example/hook?a=%20b&bodySHA256="),
        ("https://h.example/hook#frag", "https://h.example/hook?bodySHA256="),
        ("http://h.example:8080/p?x=1#f", "http://h.example:8080/p?x=1&bodySHA256="),
    ],
)
def test_json_signature_url_forms(url: str, expected_prefix: str) -> None:
    signed_url, signature = twilio_json_signature(url, b"[]", TOKEN)
    assert signed_url.startswith(expected_prefix)
    empty_array_sha = "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
    assert signed_url.endswith("bodySHA256=" + empty_array_sha)
    assert RequestValidator(TOKEN).validate(signed_url, "[]", signature)
    assert validate_twilio_json_signature(signed_url, b"[]", signature, TOKEN)


def test_json_signature_refuses_userinfo() -> None:
    with pytest.raises(ValueError, match="split_userinfo"):
        twilio_json_signature("https://u:p@h.example/hook", b"[]", TOKEN)


def test_own_json_validator() -> None:
    signed_url, signature = twilio_json_signature(BASE_URL, JSON_BODY, TOKEN)
    assert validate_twilio_json_signature(signed_url, JSON_BODY, signature, TOKEN)
    assert validate_twilio_json_signature(signed_url.replace(".com/", ".com:443/"), JSON_BODY, signature, TOKEN)
    assert not validate_twilio_json_signature(signed_url, JSON_BODY + b" ", signature, TOKEN)
    assert not validate_twilio_json_signature(signed_url, JSON_BODY, signature, "wrong")
    assert not validate_twilio_json_signature(BASE_URL, JSON_BODY, signature, TOKEN)  # no bodySHA256
    assert not validate_twilio_json_signature(signed_url, JSON_BODY, "sïgnature", TOKEN)


@given(body=st.binary(max_size=300), query=st.sampled_from(["", "?a=1", "?a=1&b=%2F"]))
def test_json_signature_agrees_with_official_validator(body: bytes, query: str) -> None:
    text = body.decode("utf-8", errors="replace")
    raw = text.encode()  # the validator hashes body.encode("utf-8")
    signed_url, signature = twilio_json_signature(f"https://example.com/h{query}", raw, TOKEN)
    assert RequestValidator(TOKEN).validate(signed_url, text, signature)


# -- Twilio form callbacks ---------------------------------------------------------------------

FORM_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://mycompany.com/myapp.php?foo=1&bar=2", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("https://mycompany.com:443/myapp.php?foo=1&bar=2", "kvajT1Ptam85bY51eRf/AJRuM3w="),
        ("http://mycompany.com:80/myapp.php?foo=1&bar=2", "0ZXoZLH/DfblKGATFgpif+LLRf4="),
        ("http://mycompany.com:1234/myapp.php?foo=1&bar=2", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
    ],
)
def test_form_signature_vectors(url: str, expected: str) -> None:
    assert twilio_form_signature(url, FORM_PARAMS, TOKEN) == expected
    assert RequestValidator(TOKEN).compute_signature(url, FORM_PARAMS) == expected
    assert validate_twilio_form_signature(url, FORM_PARAMS, expected, TOKEN)


def test_form_validation_tries_with_and_without_default_port() -> None:
    no_port = "https://mycompany.com/myapp.php?foo=1&bar=2"
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    # signed with the port, request seen without it (and vice versa)
    assert validate_twilio_form_signature(no_port, FORM_PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=", TOKEN)
    assert validate_twilio_form_signature(with_port, FORM_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", TOKEN)
    assert RequestValidator(TOKEN).validate(no_port, FORM_PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=")


def test_form_validation_rejects_tampering() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    sig = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert not validate_twilio_form_signature(url, {**FORM_PARAMS, "Digits": "9999"}, sig, TOKEN)
    assert not validate_twilio_form_signature(url, {**FORM_PARAMS, "Extra": "x"}, sig, TOKEN)
    assert not validate_twilio_form_signature(url.replace("foo=1", "foo=3"), FORM_PARAMS, sig, TOKEN)
    assert not validate_twilio_form_signature(url, FORM_PARAMS, sig, "wrong-token")
    assert not validate_twilio_form_signature(url, FORM_PARAMS, "", TOKEN)
    assert not validate_twilio_form_signature(url, FORM_PARAMS, "ñ" * 28, TOKEN)


class _MultiDict(dict[str, list[str]]):
    """Minimal Django-QueryDict lookalike so the official validator sees every value."""

    def getlist(self, key: str) -> list[str]:
        return self[key]


def test_form_signature_repeated_keys_vector() -> None:
    params = {"Sid": "CA123", "SidAccount": "AC123", "Digits": ["5678", "1234", "1234"]}
    expected = "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    assert twilio_form_signature(BASE_URL, params, TOKEN) == expected
    official = _MultiDict(Sid=["CA123"], SidAccount=["AC123"], Digits=["5678", "1234", "1234"])
    assert RequestValidator(TOKEN).compute_signature(BASE_URL, official) == expected
    # a tuple of values works the same as a list
    assert twilio_form_signature(BASE_URL, {**params, "Digits": ("1234", "5678")}, TOKEN) == expected


def test_form_signature_ipv6_port_variants() -> None:
    params = {"A": "1"}
    sig_with_port = twilio_form_signature("https://[2001:db8::1]:443/x", params, TOKEN)
    assert validate_twilio_form_signature("https://[2001:db8::1]/x", params, sig_with_port, TOKEN)


@given(
    params=st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(st.text(max_size=8), st.lists(st.text(max_size=8), min_size=1, max_size=3)),
        max_size=5,
    ),
    path=st.text(alphabet="abcxyz/", max_size=10),
)
def test_form_signature_agrees_with_official(params: dict[str, str | list[str]], path: str) -> None:
    url = f"https://example.com/{path}"
    multi = _MultiDict({k: [v] if isinstance(v, str) else v for k, v in params.items()})
    assert twilio_form_signature(url, params, TOKEN) == RequestValidator(TOKEN).compute_signature(url, multi)


# -- Standard Webhooks -------------------------------------------------------------------------

SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"


def test_standard_webhooks_vector() -> None:
    headers = standard_webhook_headers(SW_ID, 1614265330, b'{"test": 2432232314}', SW_SECRET)
    assert headers == {
        "webhook-id": SW_ID,
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }


def test_standard_webhooks_official_verify() -> None:
    body = b'[{"id": "EZ1", "type": "com.twilio.messaging.message.delivered"}]'
    now = int(time.time())  # the official verifier checks the timestamp against the real clock
    headers = standard_webhook_headers(SW_ID, now, body, SW_SECRET)
    wh = Webhook(SW_SECRET)
    assert wh.verify(body, headers) == [{"id": "EZ1", "type": "com.twilio.messaging.message.delivered"}]
    with pytest.raises(WebhookVerificationError):
        wh.verify(body.replace(b"EZ1", b"EZ2"), headers)
    with pytest.raises(WebhookVerificationError):
        wh.verify(body, {**headers, "webhook-id": "msg_other"})
    with pytest.raises(WebhookVerificationError):
        Webhook(new_standard_webhook_secret()).verify(body, headers)


def test_standard_webhooks_rotation_signs_with_every_secret() -> None:
    old, new = SW_SECRET, new_standard_webhook_secret()
    body = b"{}"
    headers = standard_webhook_headers("msg_1", int(time.time()), body, [new, old])
    assert headers["webhook-signature"].count("v1,") == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)


def test_new_secret_format() -> None:
    secret = new_standard_webhook_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret != new_standard_webhook_secret()
    assert len(base64.b64decode(new_standard_webhook_secret(64)[6:])) == 64
    with pytest.raises(ValueError):
        new_standard_webhook_secret(16)


def test_unpadded_secret_accepted() -> None:
    padded = "whsec_" + base64.b64encode(b"k" * 25).decode()
    assert padded.endswith("=")
    body = b"x"
    assert standard_webhook_headers("m", 1, body, padded) == standard_webhook_headers("m", 1, body, padded.rstrip("="))


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "secret"),
    [
        ("msg.1", 1, SW_SECRET),  # '.' would make the signed string ambiguous
        ("", 1, SW_SECRET),
        ("msg 1", 1, SW_SECRET),
        ("msg_1", -1, SW_SECRET),
        ("msg_1", 1, "whsec_not base64!"),
        ("msg_1", 1, "whsec_"),
        ("msg_1", 1, []),
    ],
)
def test_standard_webhooks_rejects_bad_input(msg_id: str, timestamp: int, secret: str | list[str]) -> None:
    with pytest.raises(ValueError):
        standard_webhook_headers(msg_id, timestamp, b"{}", secret)


# -- userinfo ----------------------------------------------------------------------------------


def _basic(user_pass: str) -> str:
    return "Basic " + base64.b64encode(user_pass.encode()).decode()


@pytest.mark.parametrize(
    ("url", "clean", "auth"),
    [
        ("https://h.example/hook", "https://h.example/hook", None),
        ("https://user:pass@h.example/hook", "https://h.example/hook", _basic("user:pass")),
        ("https://user@h.example:8443/x?a=1", "https://h.example:8443/x?a=1", _basic("user:")),
        ("https://us%40er:p%3Ass%2F@h.example/", "https://h.example/", _basic("us@er:p:ss/")),
        ("https://u:p%20w@[2001:db8::1]:8443/", "https://[2001:db8::1]:8443/", _basic("u:p w")),
        ("https://%C3%BC:%E2%82%AC@h.example/", "https://h.example/", _basic("ü:€")),
        ("https://:secret@h.example/", "https://h.example/", _basic(":secret")),
        ("https://@h.example/x", "https://h.example/x", None),
        ("https://u:p@h.example/x?", "https://h.example/x?", _basic("u:p")),  # keeps the bare '?'
    ],
)
def test_split_userinfo(url: str, clean: str, auth: str | None) -> None:
    assert split_userinfo(url) == (clean, auth)


def test_split_userinfo_then_sign_round_trip() -> None:
    clean, auth = split_userinfo("https://acme:s3cret@hooks.example/events")
    signed_url, signature = twilio_json_signature(clean, JSON_BODY, TOKEN)
    assert "acme" not in signed_url
    assert auth == _basic("acme:s3cret")
    assert RequestValidator(TOKEN).validate(signed_url, JSON_BODY.decode(), signature)
