"""Process logging: JSON lines for machines, a plain line for people, secrets never written.

``configure()`` is called once by the CLI entry (cli/main.py). ``EVENTSTREAMS_LOG_FORMAT``: ``json``,
``text``, or ``auto`` (JSON unless stderr is a terminal); ``EVENTSTREAMS_LOG_LEVEL``. Context travels as
``extra=`` (``event_id``, ``sink_sid``, ``account_sid`` on delivery lines) and becomes JSON keys (or
``key=value`` after a text line). :class:`RedactSecrets` sits on the handler, so it sees every record,
the libraries' too: values under secret-looking keys, ``Authorization`` values and passwords in URLs are
replaced before anything is formatted.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any

import orjson

REDACTED = "[redacted]"
# keys whose values are secrets wherever they appear (extra=..., key=value text, JSON-ish text)
_SECRET_KEY = re.compile(
    r"(auth_?token|authorization|password|passwd|secret|write_?key|api_?key|access_?key|private_?key|"
    r"signing_?key|token|credential|cookie|session)",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s/:@]*:)[^\s/@]+@", re.IGNORECASE)
_AUTH_VALUE = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=:-]+", re.IGNORECASE)
# an Authorization header's whole value, whatever its scheme (Digest, SSWS, AWS4-HMAC-SHA256 …): to the line's end
_AUTH_HEADER = re.compile(r"(\bauthorization[\"']?\s*[:=]\s*)[^\r\n]+", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"""(["']?[A-Za-z_-]*(?:auth_?token|authorization|password|passwd|secret|write_?key|api_?key|access_?key|"""
    r"""token|signature|\bsig\b|\bkey\b)[A-Za-z_-]*["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;&}]+)""",
    re.IGNORECASE,
)
# what every LogRecord has; anything else on a record came from extra=
# (color_message: uvicorn's copy of its message with terminal colour codes, noise in a JSON line)
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName",
                                                                            "color_message"}


def redact_text(text: str) -> str:
    """``text`` with URL passwords, Authorization values and ``secret=value`` pairs masked."""
    text = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)
    text = _AUTH_HEADER.sub(rf"\g<1>{REDACTED}", text)
    text = _AUTH_VALUE.sub(rf"\g<1> {REDACTED}", text)
    return _KEY_VALUE.sub(rf"\g<1>{REDACTED}", text)


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key) and value is not None and not key.endswith("_sid"):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(key, v) for v in value]
    return value


class RedactSecrets(logging.Filter):
    """Masks secrets in a record's message, its extras and its traceback (a handler filter: it runs for
    records propagated from every logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  (bad format arguments: log what there is, never raise into the caller)
            message = f"{record.msg} {record.args!r}"
        record.msg = redact_text(message)
        record.args = None
        for key in extras(record):
            setattr(record, key, _redact_value(key, getattr(record, key)))
        if record.exc_info:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def extras(record: logging.LogRecord) -> list[str]:
    return [k for k in vars(record) if k not in _STANDARD and not k.startswith("_")]


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the extras, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in extras(record):
            doc[key] = getattr(record, key)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exception"] = record.exc_text
        return orjson.dumps(doc, default=str).decode()


class TextFormatter(logging.Formatter):
    """The usual line, then the extras as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        pairs = " ".join(f"{k}={getattr(record, k)}" for k in extras(record))
        return f"{line} {pairs}" if pairs else line


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, so configure() replaces it rather than adding a second."""


def configure(
    fmt: str | None = None, level: str | None = None, stream: IO[str] | None = None
) -> logging.Handler | None:
    """Install the one root handler (replacing one installed before); ``fmt``/``level`` default to the
    settings (EVENTSTREAMS_LOG_FORMAT, EVENTSTREAMS_LOG_LEVEL, or the config file). Without ``stream``, a
    root logger someone else configured (a host application, pytest) is left alone, as basicConfig did."""
    root = logging.getLogger()
    if stream is None and any(not isinstance(h, _Handler) for h in root.handlers):
        return None
    if fmt is None or level is None:
        from .config import ConfigError, Settings

        try:
            settings = Settings.from_env()
        except ConfigError:  # reported when the command reads its settings; log with the defaults meanwhile
            settings = Settings()
        fmt, level = fmt or settings.log_format, level or settings.log_level
    out = stream if stream is not None else sys.stderr
    fmt = fmt.lower()
    if fmt not in {"json", "text"}:
        fmt = "text" if out.isatty() else "json"
    handler = _Handler(out)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactSecrets())
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    known = level.upper() in logging.getLevelNamesMapping()
    root.setLevel(level.upper() if known else logging.INFO)
    if not known:  # a typo in a setting must not stop every command
        logging.getLogger("eventstreams").warning("EVENTSTREAMS_LOG_LEVEL %r is not a level: using INFO", level[:20])
    return handler
