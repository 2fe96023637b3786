"""Sink senders: one per sink, chosen by ``sink_type`` (see :func:`create_sender`)."""

from __future__ import annotations

from .base import SinkContext, SinkSender

__all__ = ["UnsupportedSink", "create_sender"]


class UnsupportedSink(ValueError):
    """No sender exists (yet) for this ``sink_type``."""

    def __init__(self, sink_type: str) -> None:
        super().__init__(f"sink type {sink_type!r} is not supported for delivery")
        self.sink_type = sink_type


def create_sender(ctx: SinkContext) -> SinkSender:
    """Build the sender for ``ctx.sink_type``.

    Raises :class:`UnsupportedSink` for types without a sender, and
    ``ValueError`` for an invalid configuration.
    """
    if ctx.sink_type == "webhook":
        # Imported here so that importing eventstreams.sinks (e.g. for the
        # destination checks in the API) does not load aiohttp.
        from .webhook import WebhookSender

        return WebhookSender(ctx)
    if ctx.sink_type == "kinesis":
        from .kinesis import KinesisSender

        return KinesisSender(ctx)
    if ctx.sink_type == "segment":
        from .segment import SegmentSender

        return SegmentSender(ctx)
    raise UnsupportedSink(ctx.sink_type)
