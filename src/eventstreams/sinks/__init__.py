"""Sinks: one module per sink type, listed once in :mod:`.registry` (see docs/sinks.md)."""

from __future__ import annotations

from .registry import UnsupportedSink, create_sender

__all__ = ["UnsupportedSink", "create_sender"]
