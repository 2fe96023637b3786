"""Twilio SMS sink (``twilio-sms``): a tracking message (an Event Streams event whose ``data`` is the
stored Segment message, e.g. ``com.segment.tracking.track``) → a text through Twilio's
``POST /2010-04-01/Accounts/{Sid}/Messages.json`` (docs/segment.md, "SMS destination").

Modules: :mod:`.template` (Liquid, bounded), :mod:`.mapping` (mappings, conditions, recipient, pure),
:mod:`.sender` (checks, the ledger claim, the request). Status callbacks come back through the bridge
(``/bridge/{AccountSid}/sms/{SinkSid}/status``, bridge/sms.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..spec import ConfigOptions, Field, SinkType, fail
from .mapping import MAX_CONDITIONS, MAX_MAPPINGS, OPS, parse_mappings
from .sender import DEFAULT_BASE_URL, MAX_BODY, TwilioSmsSender, callback_path, not_sent
from .template import MAX_TEMPLATE_BYTES

__all__ = ["DEFAULT_BASE_URL", "MAX_BODY", "SINK_TYPE", "TwilioSmsSender", "callback_path", "not_sent"]

_E164 = r"\+[1-9][0-9]{1,14}"


def _check(cfg: dict[str, Any], options: ConfigOptions) -> None:
    token, key, secret = cfg.get("auth_token"), cfg.get("api_key_sid"), cfg.get("api_key_secret")
    if token is not None and (key is not None or secret is not None):
        raise fail("sink_configuration: give auth_token, or api_key_sid with api_key_secret, not both")
    if token is None and (key is None or secret is None):
        raise fail("sink_configuration.auth_token (or api_key_sid with api_key_secret) is required for twilio-sms")
    if (cfg.get("from") is None) == (cfg.get("messaging_service_sid") is None):
        raise fail("sink_configuration: give exactly one of from and messaging_service_sid")
    for sid_key in ("account_sid", "api_key_sid", "messaging_service_sid"):
        if isinstance(cfg.get(sid_key), str):  # Twilio's SIDs: two letters and 32 lower-case hex digits
            cfg[sid_key] = cfg[sid_key][:2] + cfg[sid_key][2:].lower()
    cfg.setdefault("base_url", DEFAULT_BASE_URL)
    cfg.setdefault("truncate", False)
    cfg.setdefault("per_profile_per_hour", 5)
    cfg.setdefault("default_region", "US")
    try:
        parse_mappings(cfg.get("mappings"))
    except ValueError as exc:
        raise fail(f"sink_configuration.{exc}") from None


def _destination(cfg: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    base = str(cfg.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
    return f"{base}/2010-04-01/Accounts/{cfg.get('account_sid')}/Messages.json"


_CONDITION_SCHEMA = {
    "type": "object",
    "required": ["path", "op"],
    "additionalProperties": False,
    "properties": {
        "path": {"type": "string", "description": "properties.*, traits.*, context.*, event, userId, ..."},
        "op": {"type": "string", "enum": list(OPS)},
        "value": {"description": "compared with the value at path (a list for in)"},
    },
}
_MAPPING_SCHEMA = {
    "type": "object",
    "required": ["event", "body"],
    "additionalProperties": False,
    "properties": {
        "event": {"type": "string", "minLength": 1, "maxLength": 200, "description": "the track event name"},
        "conditions": {"type": "array", "maxItems": MAX_CONDITIONS, "items": _CONDITION_SCHEMA},
        "body": {"type": "string", "minLength": 1, "description": f"Liquid, at most {MAX_TEMPLATE_BYTES} bytes"},
        "to": {"type": "string", "minLength": 1, "description": "Liquid for the recipient (default: the profile)"},
    },
}

SINK_TYPE = SinkType(
    name="twilio-sms",
    description="Texts through Twilio's Messages API when a tracking event matches a mapping (the Segment side).",
    fields=(
        Field("account_sid", "string", "The Twilio Account SID (AC...).", required=True,
              pattern=r"AC[0-9a-fA-F]{32}", pattern_hint="AC followed by 32 hex digits"),
        Field("auth_token", "string", "The Twilio auth token; masked in responses.", secret=True),
        Field("api_key_sid", "string", "A Twilio API key SID (SK...), instead of the auth token.",
              pattern=r"SK[0-9a-fA-F]{32}", pattern_hint="SK followed by 32 hex digits"),
        Field("api_key_secret", "string", "The API key's secret; masked in responses.", secret=True),
        Field("from", "string", "The sender number (E.164).", pattern=_E164, pattern_hint="an E.164 number"),
        Field("messaging_service_sid", "string", "A Messaging Service SID (MG...), instead of from.",
              pattern=r"MG[0-9a-fA-F]{32}", pattern_hint="MG followed by 32 hex digits"),
        Field("base_url", "url", "Twilio's API base URL (a sandbox in development).", default=DEFAULT_BASE_URL),
        Field("status_callback_base_url", "url",
              "This server's public base URL for Twilio's StatusCallback (default: EVENTSTREAMS_BASE_URL)."),
        Field("default_region", "string", "Region for phones in national format (ISO 3166 alpha-2).",
              default="US", pattern=r"[A-Z]{2}", pattern_hint="two upper-case letters"),
        Field("per_profile_per_hour", "integer", "Most texts per profile per hour (0: no limit).",
              default=5, minimum=0, maximum=1000),
        Field("max_per_second", "integer", "Most texts per second from this sink (default: no cap).",
              minimum=1, maximum=1000),
        Field("truncate", "boolean", f"Cut bodies over {MAX_BODY} characters instead of not sending them.",
              default=False, text_bool=True),
        Field("mappings", "array", "Which track events send a text, and the Liquid body (docs/segment.md).",
              required=True, minimum=1, maximum=MAX_MAPPINGS, items=_MAPPING_SCHEMA),
    ),
    sender=TwilioSmsSender,
    destination=_destination,
    check=_check,
)  # fmt: skip
