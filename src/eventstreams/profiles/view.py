"""What delivery code may know about a profile (the SMS destination reads it), and the seam it
reads through; the profiles domain implements it, tests may pass a faithful in-memory double."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ProfileView:
    """A resolved profile (after merges: always the surviving one)."""

    id: str  # the profile's id (``prf_…``), stable until it is merged into another
    traits: dict[str, Any] = field(default_factory=dict)  # latest-wins by message timestamp
    #: the phone to text: E.164 when it parsed; else the value as given
    phone: str | None = None
    phone_valid: bool = False  # ``phone`` is a valid E.164 number
    opted_out: bool = False  # a trait, or an inbound STOP recorded through the bridge
    user_id: str | None = None
    anonymous_ids: tuple[str, ...] = ()


class ProfileLookup(Protocol):
    async def for_message(self, account_sid: str, message: dict[str, Any]) -> ProfileView | None:
        """The profile a (stored, accepted) tracking message resolved into: by its ``userId``, then
        ``anonymousId``, then its external ids; ``None`` when there is none."""

    async def set_opted_out(self, account_sid: str, phone: str, opted_out: bool) -> int:
        """Record an inbound STOP (``True``) or START (``False``) from ``phone`` (any format;
        normalised as profiles are) on every profile holding it; the number of profiles changed."""
