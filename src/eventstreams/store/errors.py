"""Store-level failures the domain turns into Twilio error codes.

Driver errors never leave the store as themselves: each dialect translates a
unique violation into ``Conflict`` (so a race between two requests surfaces as
Twilio's 409, not a 500) and retries serialization failures and deadlocks.
"""

from __future__ import annotations

# A translated unique violation: the message may reach a client, so it names no table or constraint
# (the driver's error stays as ``__cause__`` for logs).
ALREADY_EXISTS = "it already exists (a concurrent request may have written it first)"


class StoreError(Exception):
    pass


class LimitReached(StoreError):
    pass


class Conflict(StoreError):
    """A uniqueness or in-use rule refused the write; message says which."""


class NotFound(StoreError):
    """A row the write refers to is gone (a foreign key found nothing: deleted by a racing request)."""


REFERENCE_GONE = "a resource this one refers to no longer exists"
