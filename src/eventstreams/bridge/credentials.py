"""The bridge's one piece of state: per account, the Twilio account whose
callbacks it accepts and that account's auth token (sealed at rest)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import clock
from ..crypto import Box
from ..errors import bad_request, not_found
from ..ids import normalize_sid
from ..store.base import Store
from ..store.records import AccountRow

MAX_TOKEN_LENGTH = 256


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    account_sid: str
    twilio_account_sid: str
    date_created: str
    date_updated: str


class BridgeCredentials:
    def __init__(self, store: Store, box: Box) -> None:
        self.store = store
        self.box = box

    async def put(self, account_sid: str, raw_sid: str | None, token: str | None) -> tuple[BridgeConfig, bool]:
        """Create or replace; returns the stored configuration and whether it was created."""
        if raw_sid is None or token is None:
            raise bad_request("TwilioAccountSid and TwilioAuthToken are required")
        twilio_sid = normalize_sid("AC", raw_sid)
        if twilio_sid is None:
            raise bad_request("TwilioAccountSid must be AC followed by 32 hex digits")
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii() or not token.isprintable():
            raise bad_request(f"TwilioAuthToken must be 1..{MAX_TOKEN_LENGTH} printable ASCII characters")
        created = await self.store.bridge.put(
            account_sid, twilio_sid, self.box.seal(token), clock.iso(clock.now())
        )
        config = await self.get(account_sid)
        assert config is not None
        return config, created

    async def get(self, account_sid: str) -> BridgeConfig | None:
        row = await self.store.bridge.get(account_sid)
        if row is None:
            return None
        return BridgeConfig(account_sid, row["twilio_account_sid"], row["date_created"], row["date_updated"])

    async def callback_target(self, raw_sid: str) -> tuple[AccountRow, str, str] | None:
        """(account, Twilio account SID, Twilio auth token) when ``raw_sid`` names an active account
        with the bridge configured; ``None`` otherwise (the caller answers all those alike)."""
        sid = normalize_sid("AC", raw_sid)
        account = await self.store.accounts.get(sid) if sid else None
        if account is None or account.status != "active":
            return None
        row = await self.store.bridge.get(account.sid)
        if row is None:
            return None
        return account, row["twilio_account_sid"], self.box.open(row["token_sealed"])

    async def delete(self, account_sid: str) -> None:
        if not await self.store.bridge.delete(account_sid):
            raise not_found("No bridge credentials are configured for this account")
