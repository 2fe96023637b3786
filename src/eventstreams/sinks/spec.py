"""How a sink type describes itself: declarative configuration fields plus a few hooks.

One :class:`SinkType` per type, declared in the type's own module (``webhook.py``,
``kinesis.py``, ``segment.py``) and listed once in :mod:`.registry`. From the
field list come the API's validation (Twilio error 91000 naming the field), the
OpenAPI schema of ``sink_configuration``, and the redaction of secret fields in
responses; the hooks add what a declaration cannot say (cross-field rules, the
sender, where a sink sends and with which HTTP method).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from ..errors import SINK_CREATE_FAILED, TwilioError
from ..netpolicy import url_problem
from .base import SinkContext, SinkSender

__all__ = ["MASK", "ConfigOptions", "Field", "SinkType", "fail"]

FieldType = Literal["string", "url", "boolean", "integer", "array", "object"]
#: what a secret value (or a URL's password) is replaced with in responses
MASK = "****"
MAX_TEXT = 2048
_JSON_TYPES = {
    "string": "string",
    "url": "string",
    "boolean": "boolean",
    "integer": "integer",
    "array": "array",
    "object": "object",
}


@dataclass(frozen=True, slots=True)
class ConfigOptions:
    """Operator settings that change what a sink configuration may hold."""

    allow_private: bool = False  # EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS
    allow_sink_endpoint_url: bool = False  # EVENTSTREAMS_ALLOW_SINK_ENDPOINT_URL


@dataclass(frozen=True, slots=True)
class Field:
    """One key of ``sink_configuration``.

    ``secret``: masked in every API response (a ``url`` field masks only the
    password of its userinfo, ``https://user:****@host``). ``array``/``object``:
    only the JSON type (and for an array ``minimum``/``maximum`` as item counts)
    is checked here; the type's ``check`` hook validates the contents, and
    ``items`` (an array's item schema) or ``properties`` (an object's) document
    them in OpenAPI. ``extension``: an
    eventstreams key, not Twilio's. ``operator_gate``: the :class:`ConfigOptions`
    attribute that must be true for the key to be accepted at all.
    """

    key: str
    type: FieldType
    description: str
    required: bool = False
    default: Any = None
    secret: bool = False
    extension: bool = False
    #: accept the strings "true"/"false" too (form-encoded clients send them), stored as booleans
    text_bool: bool = False
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    pattern_hint: str = ""
    operator_gate: str | None = None
    gate_setting: str = ""
    #: JSON Schema of an ``array`` field's items, or of an ``object`` field's properties (OpenAPI only)
    items: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None

    def schema(self) -> dict[str, Any]:
        """This field's OpenAPI (JSON Schema) fragment."""
        out: dict[str, Any] = {"type": _JSON_TYPES[self.type], "description": self.description}
        if self.type == "url":
            out["format"] = "uri"
        if self.type in ("string", "url"):
            out["minLength"] = 1
            out["maxLength"] = MAX_TEXT
        if self.pattern is not None:
            out["pattern"] = self.pattern
        if self.type == "array":
            if self.items is not None:
                out["items"] = self.items
            if self.minimum is not None:
                out["minItems"] = self.minimum
            if self.maximum is not None:
                out["maxItems"] = self.maximum
        else:
            if self.type == "object" and self.properties is not None:
                out["properties"] = self.properties
            if self.minimum is not None:
                out["minimum"] = self.minimum
            if self.maximum is not None:
                out["maximum"] = self.maximum
        if self.default is not None:
            out["default"] = self.default
        if self.secret:
            out["x-eventstreams-secret"] = True  # masked in responses
        if self.extension:
            out["x-eventstreams-extension"] = True
        return out


def fail(message: str) -> TwilioError:
    """Twilio's 91000 "Sink could not be created" with ``message``."""
    return TwilioError(SINK_CREATE_FAILED, f"Sink could not be created: {message}", 400)


@dataclass(frozen=True)
class SinkType:
    """A sink type: its configuration fields and hooks (see the module doc).

    ``check(cfg, options)`` runs after the field checks and may normalise ``cfg``
    in place (raise :func:`fail` for a bad value). ``destination(cfg, defaults)``
    says where the sink sends, credentials removed (alerts and error reports;
    ``defaults`` holds operator settings such as ``segment_endpoint``).
    """

    name: str
    description: str
    fields: tuple[Field, ...]
    sender: Callable[[SinkContext], SinkSender]
    destination: Callable[[Mapping[str, Any], Mapping[str, Any]], str]
    request_method: Callable[[Mapping[str, Any]], str] = lambda cfg: "POST"
    check: Callable[[dict[str, Any], ConfigOptions], None] | None = None
    _by_key: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {f.key: f for f in self.fields})

    # -- validation ----------------------------------------------------------------------------

    def validate(self, raw: Any, options: ConfigOptions) -> dict[str, Any]:
        """The normalised configuration, or :class:`TwilioError` 91000 naming the field."""
        if not isinstance(raw, dict) or not raw:
            raise fail("sink_configuration must be a non-empty JSON object")
        unknown = sorted(set(raw) - set(self._by_key))
        if unknown:
            raise fail(f"unknown sink_configuration field(s) for {self.name}: {', '.join(unknown)}")
        cfg = dict(raw)
        for f in self.fields:
            if f.key in cfg:
                cfg[f.key] = self._value(f, cfg[f.key], options)
            elif f.required:
                raise fail(f"sink_configuration.{f.key} is required for {self.name} sinks")
        if self.check is not None:
            self.check(cfg, options)
        return cfg

    def _value(self, f: Field, value: Any, options: ConfigOptions) -> Any:
        name = f"sink_configuration.{f.key}"
        if f.operator_gate is not None and not getattr(options, f.operator_gate):
            raise fail(f"{name} is not allowed on this server (the operator enables it with {f.gate_setting}=true)")
        if f.type == "boolean":
            if f.text_bool and isinstance(value, str) and value.lower() in ("true", "false"):
                value = value.lower() == "true"
            if not isinstance(value, bool):
                raise fail(f"{name} must be a boolean")
            return value
        if f.type == "integer":
            low, high = f.minimum, f.maximum
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or (low is not None and value < low)
                or (high is not None and value > high)
            ):
                raise fail(f"{name} must be an integer from {low} to {high}")
            return value
        if f.type == "array":
            low, high = f.minimum, f.maximum
            if not isinstance(value, list):
                raise fail(f"{name} must be a JSON array")
            if (low is not None and len(value) < low) or (high is not None and len(value) > high):
                raise fail(f"{name} must hold from {low} to {high} items")
            return value  # the items: the type's check hook
        if f.type == "object":
            if not isinstance(value, dict):
                raise fail(f"{name} must be a JSON object")
            return value
        if value is None or value == "":
            raise fail(f"{name} is required for {self.name} sinks")
        if not isinstance(value, str):
            raise fail(f"{name} must be a string")
        if len(value) > MAX_TEXT:
            raise fail(f"{name} is too long (max {MAX_TEXT} characters)")
        # fullmatch: with re.match a pattern's "$" also matches before a trailing newline
        if f.pattern is not None and not re.fullmatch(f.pattern, value):
            raise fail(f"{name} must be {f.pattern_hint}")
        if f.type == "url":
            problem = url_problem(value, options.allow_private)
            if problem is not None:
                hint = " (set EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS=true to allow)" if "public" in problem else ""
                raise fail(f"{name} {problem}{hint}")
        return value

    # -- views ---------------------------------------------------------------------------------

    def redact(self, cfg: Mapping[str, Any]) -> dict[str, Any]:
        """``cfg`` as shown in API responses: secret fields masked."""
        out = dict(cfg)
        for f in self.fields:
            value = out.get(f.key)
            if not f.secret or value is None:
                continue
            out[f.key] = mask_url_password(value) if f.type == "url" and isinstance(value, str) else MASK
        return out

    def schema(self) -> dict[str, Any]:
        """The OpenAPI schema of this type's ``sink_configuration``."""
        return {
            "type": "object",
            "title": f"{self.name} sink configuration",
            "description": self.description,
            "properties": {f.key: f.schema() for f in self.fields},
            "required": [f.key for f in self.fields if f.required],
            "additionalProperties": False,
        }


def mask_url_password(url: str) -> str:
    """``url`` with the password of its userinfo replaced by :data:`MASK` (the user name stays)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostport}"))
