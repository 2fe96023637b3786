"""Store-level failures the domain turns into Twilio error codes."""

from __future__ import annotations


class StoreError(Exception):
    pass


class LimitReached(StoreError):
    pass


class Conflict(StoreError):
    """A uniqueness or in-use rule refused the write; message says which."""


class NotFound(StoreError):
    pass
