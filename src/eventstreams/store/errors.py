"""Store-level failures the domain turns into Twilio error codes.

Driver errors never leave the store as themselves: each dialect translates a
unique violation into ``Conflict`` (so a race between two requests surfaces as
Twilio's 409, not a 500) and retries serialization failures and deadlocks.
"""

from __future__ import annotations


class StoreError(Exception):
    pass


class LimitReached(StoreError):
    pass


class Conflict(StoreError):
    """A uniqueness or in-use rule refused the write; message says which."""


class NotFound(StoreError):
    pass
