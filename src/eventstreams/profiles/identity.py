"""Identity rules (pure): which identifiers a tracking message carries, its traits, its phone, and the
per-type limits and priority Segment's identity resolution applies (docs/segment.md, Profiles).

Segment promotes ``userId`` → ``user_id``, ``anonymousId`` → ``anonymous_id``, ``traits.email`` /
``context.traits.email`` → ``email``, and every ``context.externalIds`` item of collection ``users`` to
its own type; we also promote ``traits.phone`` / ``context.traits.phone`` → ``phone`` (Segment does when
configured). An alias's ``previousId`` is a claim that it and ``userId`` are one person."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import phonenumbers

USER_ID, ANONYMOUS_ID, EMAIL, PHONE = "user_id", "anonymous_id", "email", "phone"
#: Longer values are not promoted to identifiers (an index key must stay small; no real id is this long).
MAX_VALUE = 512
MAX_TYPE = 100
#: Segment's defaults: user_id 1, every other identifier 5 (anonymous_id with a weekly window there; we
#: have no windows, so a lifetime allowance stands in for it).
DEFAULT_LIMITS = "user_id=1,email=5,phone=5,anonymous_id=1000"
DEFAULT_LIMIT = 5


@dataclass(frozen=True, slots=True)
class Phone:
    value: str  # E.164 when valid, else as given (stripped)
    valid: bool


@dataclass(frozen=True, slots=True)
class Identity:
    """What one message says about who sent it."""

    ids: list[tuple[str, str]]  # (type, value), highest priority first, no duplicates
    previous_id: str | None  # alias only: user_id or anonymous_id, whichever is already known
    traits: dict[str, Any]  # identify only: context.traits under traits
    phone: Phone | None
    timestamp: str  # the message's (skew-corrected) timestamp, ISO 8601 UTC with ms: orders traits
    name: str | None  # the event (track), page/screen name, or groupId (group)


@dataclass(frozen=True)
class Limits:
    """The most values of each identifier type one profile may hold."""

    per_type: dict[str, int] = field(default_factory=dict)
    default: int = DEFAULT_LIMIT

    def __call__(self, id_type: str) -> int:
        return self.per_type.get(id_type, self.default)


def parse_limits(text: str) -> Limits:
    """``"user_id=1,email=5,*=5"`` (``*``: every other type). Raises ValueError when malformed."""
    per: dict[str, int] = {}
    default = DEFAULT_LIMIT
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, n = part.partition("=")
        name = name.strip().lower()
        if not sep or not name or not n.strip().isdigit() or int(n) < 1:
            raise ValueError(f"EVENTSTREAMS_PROFILES_LIMITS: {part!r} is not type=N with N >= 1")
        if name == "*":
            default = int(n)
        else:
            per[name] = int(n)
    return Limits(per, default)


def priority(id_type: str) -> tuple[int, str]:
    """Segment's default order: user_id, email, then every other type alphabetically."""
    return ({USER_ID: 0, EMAIL: 1}.get(id_type, 2), id_type)


def normalize_phone(raw: Any, region: str) -> Phone | None:
    """E.164 when ``phonenumbers`` finds a valid number (national formats read in ``region``);
    otherwise the value as given, flagged invalid."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None
    text = str(raw).strip()
    if not text:
        return None
    try:
        n = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return Phone(text, False)
    if not phonenumbers.is_valid_number(n):
        return Phone(text, False)
    return Phone(phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164), True)


def _id(value: Any) -> str | None:
    """A userId / anonymousId / externalId as text (numbers are allowed, as Segment allows)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if value and len(value) <= MAX_VALUE else None


def _email(value: Any) -> str | None:
    v = _id(value)
    return v.lower() if v is not None and "@" in v else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def identity(message: dict[str, Any], region: str) -> Identity:
    """The identifiers, traits and phone of one accepted message."""
    kind = message.get("type")
    context = _dict(message.get("context"))
    ctx_traits = _dict(context.get("traits"))
    own_traits = _dict(message.get("traits")) if kind == "identify" else {}
    found: list[tuple[str, str]] = []

    def add(id_type: str, value: str | None) -> None:
        if value is not None and (id_type, value) not in found:
            found.append((id_type, value))

    add(USER_ID, _id(message.get("userId")))
    add(ANONYMOUS_ID, _id(message.get("anonymousId")))
    if kind != "group":  # a group call's traits are the account's, not the user's
        add(EMAIL, _email(own_traits.get("email")))
        add(EMAIL, _email(ctx_traits.get("email")))
    phone: Phone | None = None
    ext = context.get("externalIds")
    for item in ext if isinstance(ext, list) else []:
        if not isinstance(item, dict) or item.get("collection", "users") != "users":
            continue
        t = item.get("type")
        if not isinstance(t, str) or not t.strip() or len(t) > MAX_TYPE:
            continue
        t = t.strip().lower()  # Segment: "externalIDs must be lower-case"
        if t == EMAIL:
            add(EMAIL, _email(item.get("id")))
        elif t == PHONE:
            p = normalize_phone(item.get("id"), region)
            if p is not None and len(p.value) <= MAX_VALUE:
                add(PHONE, p.value)
                phone = phone or p
        else:
            add(t, _id(item.get("id")))
    if kind != "group":
        for source in (own_traits, ctx_traits):
            p = normalize_phone(source.get("phone"), region)
            if p is not None and len(p.value) <= MAX_VALUE:
                add(PHONE, p.value)
                phone = phone or p
    found.sort(key=lambda i: priority(i[0]))  # stable: values of one type keep their order
    traits = {**ctx_traits, **own_traits} if kind == "identify" else {}
    ts = message.get("timestamp") or message.get("receivedAt") or ""
    name: Any = None
    if kind == "track":
        name = message.get("event")
    elif kind in ("page", "screen"):
        name = message.get("name")
    elif kind == "group":
        name = _id(message.get("groupId"))
    return Identity(
        ids=found,
        previous_id=_id(message.get("previousId")) if kind == "alias" else None,
        traits=traits,
        phone=phone,
        timestamp=ts if isinstance(ts, str) else "",
        name=name[:MAX_VALUE] if isinstance(name, str) else None,
    )


def opted_out(traits: dict[str, Any], stop_recorded: bool) -> bool:
    """A profile is opted out of texts by an inbound STOP, or a trait ``sms_opt_out`` or
    ``unsubscribed`` that is true (boolean true, or the text "true")."""
    if stop_recorded:
        return True
    for key in ("sms_opt_out", "unsubscribed"):
        v = traits.get(key)
        if v is True or (isinstance(v, str) and v.strip().lower() == "true"):
            return True
    return False
