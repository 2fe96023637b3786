"""Twilio callback bridge: real Twilio Messaging status callbacks, incoming
message webhooks and Voice call status callbacks, signature-checked with the
account's Twilio auth token and published as the canonical Event Streams
events (see docs/bridge.md)."""

from __future__ import annotations

from .mapping import CallbackError, call_status_event, inbound_message_event, message_status_event

__all__ = ["CallbackError", "call_status_event", "inbound_message_event", "message_status_event"]
