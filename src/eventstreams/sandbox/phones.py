"""Checking ``To``/``From`` the way Twilio does, with Twilio's error codes, and counting segments.

Twilio's test credentials answer a handful of magic numbers with fixed errors
(https://www.twilio.com/docs/iam/test-credentials); the sandbox honours the same
numbers so code written against them behaves the same here.
"""

from __future__ import annotations

import re

import phonenumbers

from ..errors import TwilioError

TO_MISSING = 21604
TO_INVALID = 21211
FROM_MISSING = 21603
FROM_INVALID = 21212
FROM_NOT_OWNED = 21606
BODY_MISSING = 21602
BODY_TOO_LONG = 21617
MAX_BODY = 1600

# Twilio's test numbers: To → (code, message), From → (code, message).
_MAGIC_TO = {
    "+15005550001": (TO_INVALID, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number: +15005550002, is not currently reachable using the 'From' "
                            "phone number via SMS."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region indicated by the "
                            "'To' number: +15005550003."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number +15005550009 is not a valid mobile number"),
}  # fmt: skip
_MAGIC_FROM = {
    "+15005550001": (FROM_INVALID, "The 'From' number +15005550001 is not a valid phone number, shortcode, "
                                   "or alphanumeric sender ID."),
    "+15005550007": (FROM_NOT_OWNED, "The 'From' phone number provided (+15005550007) is not a valid "
                                     "message-capable Twilio phone number for this destination."),
    "+15005550008": (21611, "This 'From' number has exceeded the maximum number of queued messages"),
}  # fmt: skip

_CHANNEL = re.compile(r"^(whatsapp|messenger|rcs):(.+)$")
_SHORT_CODE = re.compile(r"^[0-9]{5,6}$")
_ALPHA_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
# GSM 03.38 basic set; the extension table's characters cost two septets.
_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = set("^{}\\[~]|€\f")


def _e164(value: str) -> str | None:
    """The E.164 form of ``value`` when it is a possible phone number, else None."""
    if not value.startswith("+"):
        return None
    try:
        n = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(n):
        return None
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)


def check_to(value: str | None) -> str:
    if not value:
        raise TwilioError(TO_MISSING, "A 'To' phone number is required.", 400)
    channel = _CHANNEL.match(value)
    number = channel.group(2) if channel else value
    if number in _MAGIC_TO:
        code, msg = _MAGIC_TO[number]
        raise TwilioError(code, msg, 400)
    e164 = _e164(number.strip())
    if e164 is None:
        raise TwilioError(TO_INVALID, f"The 'To' number {value[:40]} is not a valid phone number.", 400)
    return f"{channel.group(1)}:{e164}" if channel else e164


def check_from(value: str) -> str:
    """A phone number (E.164), short code, alphanumeric sender ID or channel address."""
    channel = _CHANNEL.match(value)
    number = channel.group(2) if channel else value
    if number in _MAGIC_FROM:
        code, msg = _MAGIC_FROM[number]
        raise TwilioError(code, msg, 400)
    if not channel and (_SHORT_CODE.match(value) or _ALPHA_SENDER.match(value)):
        return value
    e164 = _e164(number.strip())
    if e164 is None:
        raise TwilioError(
            FROM_INVALID,
            f"The 'From' number {value[:40]} is not a valid phone number, shortcode, or alphanumeric sender ID.",
            400,
        )
    return f"{channel.group(1)}:{e164}" if channel else e164


def check_body(body: str | None, has_media: bool) -> str:
    if not body:
        if has_media:
            return ""
        raise TwilioError(BODY_MISSING, "Message body is required.", 400)
    if len(body) > MAX_BODY:
        raise TwilioError(
            BODY_TOO_LONG, f"The concatenated message body exceeds the {MAX_BODY} character limit.", 400
        )
    return body


def segments(body: str) -> int:
    """SMS segments: 160 GSM-7 septets (153 per part when split), or 70 UCS-2 units (67 per part)."""
    if not body:
        return 1
    if all(c in _GSM or c in _GSM_EXT for c in body):
        septets = sum(2 if c in _GSM_EXT else 1 for c in body)
        return 1 if septets <= 160 else -(-septets // 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


def national(value: str) -> str:
    """``to_formatted``/``from_formatted`` on calls: the national format, or the value itself."""
    try:
        n = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.NATIONAL)
