"""The sink registry: the one list of sink types, and the questions everything asks it.

Adding a sink type = a module declaring its :class:`~.spec.SinkType` (fields,
hooks, sender) + one line in :data:`_BUILTIN` + its tests. The API's
validation, the OpenAPI document, response redaction, the dispatcher's sender
and destination text and alerts' ``request_method`` all come from here.

Test-only types (the ``stub`` sink of :mod:`.stub`, throwaway types) are added
with :func:`registered`, for the duration of a ``with`` block; they are never in
the list a running server starts with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from . import kinesis, segment, twilio_sms, webhook
from .base import SinkContext, SinkSender
from .spec import ConfigOptions, SinkType, fail

__all__ = [
    "UnsupportedSink",
    "create_sender",
    "destination_of",
    "get",
    "names",
    "redact",
    "registered",
    "request_method",
    "schemas",
    "validate",
]

# The order is the one error messages and the OpenAPI enum list.
_BUILTIN: tuple[SinkType, ...] = (kinesis.SINK_TYPE, webhook.SINK_TYPE, segment.SINK_TYPE, twilio_sms.SINK_TYPE)
_TYPES: dict[str, SinkType] = {t.name: t for t in _BUILTIN}


class UnsupportedSink(ValueError):
    """No sender exists for this ``sink_type`` (e.g. a stored sink of a type since removed)."""

    def __init__(self, sink_type: str) -> None:
        super().__init__(f"sink type {sink_type!r} is not supported for delivery")
        self.sink_type = sink_type


def get(sink_type: str) -> SinkType | None:
    return _TYPES.get(sink_type)


def names() -> list[str]:
    """The registered type names, in registration order."""
    return list(_TYPES)


@contextlib.contextmanager
def registered(*types: SinkType) -> Iterator[None]:
    """Register ``types`` for the ``with`` block (tests: the stub sink, throwaway types)."""
    previous = dict(_TYPES)
    for t in types:
        _TYPES[t.name] = t
    try:
        yield
    finally:
        _TYPES.clear()
        _TYPES.update(previous)


def validate(sink_type: str, raw: Any, options: ConfigOptions) -> dict[str, Any]:
    """The normalised configuration of a new sink, or Twilio's 91000 naming the problem."""
    spec = _TYPES.get(sink_type)
    if spec is None:
        raise fail(f"sink_type must be one of {', '.join(names())} (got {sink_type!r})")
    return spec.validate(raw, options)


def create_sender(ctx: SinkContext) -> SinkSender:
    """The sender for ``ctx.sink_type``; :class:`UnsupportedSink` for an unknown type,
    ``ValueError`` for an unusable configuration."""
    spec = _TYPES.get(ctx.sink_type)
    if spec is None:
        raise UnsupportedSink(ctx.sink_type)
    return spec.sender(ctx)


def destination_of(sink_type: str, configuration: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    """Where a sink sends, for error reports and alerts (credentials removed)."""
    spec = _TYPES.get(sink_type)
    return sink_type if spec is None else spec.destination(configuration, defaults)


def request_method(sink_type: str, configuration: Mapping[str, Any]) -> str:
    """The HTTP method deliveries to a sink use (an alert's ``request_method``)."""
    spec = _TYPES.get(sink_type)
    return "POST" if spec is None else spec.request_method(configuration)


def redact(sink_type: str, configuration: Mapping[str, Any]) -> dict[str, Any]:
    """``configuration`` as API responses show it: every secret field masked. An unknown
    type shows nothing (it cannot say which of its fields are secret)."""
    spec = _TYPES.get(sink_type)
    return {} if spec is None else spec.redact(configuration)


def schemas() -> dict[str, dict[str, Any]]:
    """OpenAPI schema of each type's ``sink_configuration``, by type name."""
    return {t.name: t.schema() for t in _TYPES.values()}
