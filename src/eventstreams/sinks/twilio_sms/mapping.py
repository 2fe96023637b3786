"""Mappings of the twilio-sms sink (pure): which tracking messages send a text, with which body, to whom.

A mapping is ``{"event": "Trial Expired", "conditions": [...], "body": "<Liquid>", "to": "<Liquid>"}``.
The message's ``event`` must equal ``event`` exactly and every condition must hold; the first mapping
that matches wins (one text per message and recipient). A condition is ``{"path": "properties.plan",
"op": "eq", "value": "pro"}`` with ``op`` one of :data:`OPS`: ``eq``/``neq`` (JSON equality), ``in``
(``value`` a list), ``gt``/``lt`` (numbers with numbers, strings with strings), ``exists`` (``value``
true or omitted: present and not null; false: absent or null). ``path`` is dotted, into the template
context (:func:`template_context`): ``properties.*``, ``traits.*``, ``context.*``, ``event``, ``userId``,
``anonymousId``, ``timestamp``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import phonenumbers
from liquid import BoundTemplate

from ...profiles.view import ProfileView
from .template import TemplateError, compile_template

__all__ = [
    "MAX_CONDITIONS",
    "MAX_MAPPINGS",
    "OPS",
    "Condition",
    "SmsMapping",
    "choose",
    "normalize_e164",
    "parse_mappings",
    "recipient_candidates",
    "template_context",
]

MAX_MAPPINGS = 50
MAX_CONDITIONS = 20
MAX_EVENT_NAME = 200
OPS = ("eq", "neq", "exists", "in", "gt", "lt")
_MAPPING_KEYS = {"event", "conditions", "body", "to"}
_CONDITION_KEYS = {"path", "op", "value"}
_ROOTS = {"properties", "traits", "context", "event", "userId", "anonymousId", "timestamp"}
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Condition:
    path: tuple[str, ...]
    op: str
    value: Any = None

    def holds(self, ctx: Mapping[str, Any]) -> bool:
        found = value_at(ctx, self.path)
        present = found is not _MISSING and found is not None
        if self.op == "exists":
            return present == (self.value is None or self.value is True)
        if not present:
            return self.op == "neq"
        if self.op == "eq":
            return _same(found, self.value)
        if self.op == "neq":
            return not _same(found, self.value)
        if self.op == "in":
            return any(_same(found, v) for v in self.value)
        if isinstance(found, bool) or isinstance(self.value, bool):
            return False
        if isinstance(found, int | float) and isinstance(self.value, int | float):
            return found > self.value if self.op == "gt" else found < self.value
        if isinstance(found, str) and isinstance(self.value, str):
            return found > self.value if self.op == "gt" else found < self.value
        return False


def _same(a: Any, b: Any) -> bool:
    # JSON equality: true is not 1
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


@dataclass(frozen=True, slots=True)
class SmsMapping:
    event: str
    conditions: tuple[Condition, ...]
    body: BoundTemplate
    to: BoundTemplate | None

    def matches(self, event: Any, ctx: Mapping[str, Any]) -> bool:
        return event == self.event and all(c.holds(ctx) for c in self.conditions)


def value_at(doc: Any, path: Sequence[str]) -> Any:
    for part in path:
        if not isinstance(doc, Mapping) or part not in doc:
            return _MISSING
        doc = doc[part]
    return doc


def _condition(raw: Any, where: str) -> Condition:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be an object with path, op and value")
    unknown = sorted(set(raw) - _CONDITION_KEYS)
    if unknown:
        raise ValueError(f"{where} has unknown key(s): {', '.join(unknown)}")
    path, op, value = raw.get("path"), raw.get("op"), raw.get("value")
    if not isinstance(path, str) or not path or len(path) > 200:
        raise ValueError(f"{where}.path must be a dotted path such as properties.plan")
    parts = tuple(path.split("."))
    if parts[0] not in _ROOTS or any(not p for p in parts):
        raise ValueError(f"{where}.path must start with one of {', '.join(sorted(_ROOTS))}")
    if op not in OPS:
        raise ValueError(f"{where}.op must be one of {', '.join(OPS)}")
    if op == "exists" and value is not None and not isinstance(value, bool):
        raise ValueError(f"{where}.value must be true, false or omitted for exists")
    if op == "in" and not isinstance(value, list):
        raise ValueError(f"{where}.value must be a list for in")
    if op in ("gt", "lt") and (isinstance(value, bool) or not isinstance(value, int | float | str)):
        raise ValueError(f"{where}.value must be a number or a string for {op}")
    if op in ("eq", "neq") and "value" not in raw:
        raise ValueError(f"{where}.value is required for {op}")
    return Condition(parts, op, value)


def _template(raw: Any, where: str, required: bool) -> BoundTemplate | None:
    if raw is None and not required:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"{where} must be a non-empty Liquid template")
    try:
        return compile_template(raw)
    except TemplateError as exc:
        raise ValueError(f"{where}: {exc}") from None


def parse_mappings(raw: Any) -> list[SmsMapping]:
    """The compiled mappings, or ``ValueError`` naming the first problem (``mappings[i].field``)."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_MAPPINGS:
        raise ValueError(f"mappings must be a JSON array of 1 to {MAX_MAPPINGS} mappings")
    out: list[SmsMapping] = []
    for i, item in enumerate(raw):
        where = f"mappings[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be an object with event and body")
        unknown = sorted(set(item) - _MAPPING_KEYS)
        if unknown:
            raise ValueError(f"{where} has unknown key(s): {', '.join(unknown)}")
        event = item.get("event")
        if not isinstance(event, str) or not event or len(event) > MAX_EVENT_NAME:
            raise ValueError(f"{where}.event must be a track event name of 1 to {MAX_EVENT_NAME} characters")
        conditions = item.get("conditions", [])
        if not isinstance(conditions, list) or len(conditions) > MAX_CONDITIONS:
            raise ValueError(f"{where}.conditions must be a list of at most {MAX_CONDITIONS} conditions")
        parsed = tuple(_condition(c, f"{where}.conditions[{j}]") for j, c in enumerate(conditions))
        body = _template(item.get("body"), f"{where}.body", required=True)
        assert body is not None
        out.append(SmsMapping(event, parsed, body, _template(item.get("to"), f"{where}.to", required=False)))
    return out


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def template_context(message: Mapping[str, Any], profile: ProfileView | None) -> dict[str, Any]:
    """What templates and conditions see. ``traits``: the message's ``context.traits`` overlaid with the
    profile's traits (the profile is the newer, merged truth when there is one)."""
    context = _dict(message.get("context"))
    traits = {**_dict(context.get("traits")), **(profile.traits if profile is not None else {})}
    return {
        "properties": _dict(message.get("properties")),
        "traits": traits,
        "context": context,
        "event": message.get("event"),
        "userId": message.get("userId"),
        "anonymousId": message.get("anonymousId"),
        "timestamp": message.get("timestamp"),
    }


def choose(mappings: Sequence[SmsMapping], message: Mapping[str, Any], ctx: Mapping[str, Any]) -> SmsMapping | None:
    """The first mapping the message matches."""
    event = message.get("event")
    return next((m for m in mappings if m.matches(event, ctx)), None)


def recipient_candidates(message: Mapping[str, Any], profile: ProfileView | None) -> list[tuple[str, Any]]:
    """(where, value) in the default order: the profile's phone, ``properties.phone``,
    ``context.traits.phone``; the first present one is the recipient."""
    context = _dict(message.get("context"))
    return [
        ("the profile's phone", profile.phone if profile is not None else None),
        ("properties.phone", _dict(message.get("properties")).get("phone")),
        ("context.traits.phone", _dict(context.get("traits")).get("phone")),
    ]


def normalize_e164(value: str, region: str) -> str | None:
    """``value`` as a valid E.164 number (national formats read in ``region``), or ``None``."""
    text = value.strip()
    if not text or len(text) > 64:
        return None
    for prefix in ("sms:", "tel:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
