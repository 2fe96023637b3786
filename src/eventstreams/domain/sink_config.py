"""Per-type checks of ``SinkConfiguration`` (Twilio error 91000 names the field)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from ..errors import SINK_CREATE_FAILED, TwilioError

SINK_TYPES = ("kinesis", "webhook", "segment")

_KINESIS_ARN = re.compile(r"^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):(\d{12}):stream/[A-Za-z0-9_.-]{1,128}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")

# Keys each type accepts: Twilio's own, then eventstreams extensions (documented in docs/sinks.md).
_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "webhook": ({"destination", "method", "batch_events"}, {"batch_max_events", "standard_webhooks"}),
    "kinesis": ({"arn", "role_arn", "external_id"}, {"endpoint_url", "partition_key", "data_as_string"}),
    "segment": ({"write_key"}, {"endpoint"}),
}


def _fail(message: str) -> TwilioError:
    return TwilioError(SINK_CREATE_FAILED, f"Sink could not be created: {message}", 400)


def _nonempty_str(cfg: dict[str, Any], key: str, sink_type: str) -> str:
    value = cfg.get(key)
    if value is None or value == "":
        raise _fail(f"sink_configuration.{key} is required for {sink_type} sinks")
    if not isinstance(value, str):
        raise _fail(f"sink_configuration.{key} must be a string")
    if len(value) > 2048:
        raise _fail(f"sink_configuration.{key} is too long (max 2048 characters)")
    return value


def _http_url(value: str, key: str) -> str:
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        raise _fail(f"sink_configuration.{key} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise _fail(f"sink_configuration.{key} must be an http or https URL")
    if not parts.hostname:
        raise _fail(f"sink_configuration.{key} has no host")
    if any(c.isspace() for c in value):
        raise _fail(f"sink_configuration.{key} must not contain whitespace")
    return value


def literal_private_host(url: str) -> bool:
    """True when the URL names a loopback/private/link-local host literally.

    Hostnames are checked again at delivery time, after DNS resolution.
    """
    host = (urlsplit(url).hostname or "").lower()
    if host in {"localhost", "localhost.localdomain"} or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not ip.is_global


def validate(sink_type: str, raw: Any, allow_private: bool = False) -> dict[str, Any]:
    """Return the normalised configuration or raise TwilioError 91000."""
    if sink_type not in SINK_TYPES:
        raise _fail(f"sink_type must be one of {', '.join(SINK_TYPES)} (got {sink_type!r})")
    if not isinstance(raw, dict) or not raw:
        raise _fail("sink_configuration must be a non-empty JSON object")
    known, extensions = _KEYS[sink_type]
    unknown = sorted(set(raw) - known - extensions)
    if unknown:
        raise _fail(f"unknown sink_configuration field(s) for {sink_type}: {', '.join(unknown)}")
    cfg = dict(raw)
    if sink_type == "webhook":
        dest = _http_url(_nonempty_str(cfg, "destination", sink_type), "destination")
        if not allow_private and literal_private_host(dest):
            raise _fail(
                "sink_configuration.destination points at a private, loopback or link-local address"
                " (set EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS=true to allow)"
            )
        method = _nonempty_str(cfg, "method", sink_type).upper()
        if method not in ("POST", "GET"):
            raise _fail("sink_configuration.method must be POST or GET")
        cfg["method"] = method
        batch = cfg.get("batch_events", False)
        if isinstance(batch, str) and batch.lower() in ("true", "false"):
            batch = batch.lower() == "true"
        if not isinstance(batch, bool):
            raise _fail("sink_configuration.batch_events must be a boolean")
        cfg["batch_events"] = batch
        if "batch_max_events" in cfg:
            n = cfg["batch_max_events"]
            if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 1000:
                raise _fail("sink_configuration.batch_max_events must be an integer from 1 to 1000")
        if "standard_webhooks" in cfg and not isinstance(cfg["standard_webhooks"], bool):
            raise _fail("sink_configuration.standard_webhooks must be a boolean")
    elif sink_type == "kinesis":
        arn = _nonempty_str(cfg, "arn", sink_type)
        if not _KINESIS_ARN.match(arn):
            raise _fail(
                "sink_configuration.arn must be a Kinesis stream ARN (arn:aws:kinesis:<region>:<account>:stream/<name>)"
            )
        role = _nonempty_str(cfg, "role_arn", sink_type)
        if not _ROLE_ARN.match(role):
            raise _fail("sink_configuration.role_arn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        _nonempty_str(cfg, "external_id", sink_type)
        if "endpoint_url" in cfg:
            _http_url(_nonempty_str(cfg, "endpoint_url", sink_type), "endpoint_url")
        if "partition_key" in cfg:
            _nonempty_str(cfg, "partition_key", sink_type)
        if "data_as_string" in cfg and not isinstance(cfg["data_as_string"], bool):
            raise _fail("sink_configuration.data_as_string must be a boolean")
    else:
        _nonempty_str(cfg, "write_key", sink_type)
        if "endpoint" in cfg:
            _http_url(_nonempty_str(cfg, "endpoint", sink_type), "endpoint")
    return cfg
