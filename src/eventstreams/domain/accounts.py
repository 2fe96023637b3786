"""Accounts, subaccounts, API keys and authentication."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from .. import clock
from ..crypto import Box, hash_secret, verify_secret
from ..errors import AUTH_FAILED, FORBIDDEN, TwilioError, bad_request, limit_reached, not_found
from ..ids import new_sid, new_token, normalize_sid
from ..store.base import Store
from ..store.errors import LimitReached
from ..store.records import AccountRow, ApiKeyRow, Page, PageQuery

ACCOUNT_STATUSES = ("active", "suspended", "closed")
# Per-account limits (docs/api.md); Twilio's default subaccount limit is 1,000.
MAX_SUBACCOUNTS = 1000
MAX_API_KEYS = 100


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling (``caller``) and whose resources they act on (``account``)."""

    caller: AccountRow
    account: AccountRow
    key_sid: str | None = None

    @property
    def catalog_owner(self) -> str:
        """Operator-registered types belong to the top-level account; its subaccounts read and use them."""
        return self.account.parent_sid or self.account.sid

    def require_catalog_writer(self) -> None:
        """Only the owning (top-level) account's own credentials (its token or one of its keys) change its
        catalogue: a subaccount's change would alter what its parent and siblings publish against."""
        if self.caller.sid != self.catalog_owner:
            raise TwilioError(
                FORBIDDEN,
                f"Only the account that owns the catalogue ({self.catalog_owner}) can register event types and"
                " schemas; a subaccount can read and use them",
                403,
            )


def _unauthorized() -> TwilioError:
    return TwilioError(AUTH_FAILED, "Authenticate", 401)


class Accounts:
    def __init__(self, store: Store, box: Box) -> None:
        self.store = store
        self.box = box

    async def create(
        self, friendly_name: str, parent_sid: str | None = None, sid: str | None = None, token: str | None = None
    ) -> tuple[AccountRow, str]:
        token = token or new_token()
        row = self._new_row(friendly_name, parent_sid, sid, token)
        try:
            await self.store.accounts.create(row, MAX_SUBACCOUNTS if parent_sid is not None else None)
        except LimitReached:
            raise limit_reached(f"Account reached the max number of subaccounts ({MAX_SUBACCOUNTS})") from None
        return row, token

    def _new_row(self, friendly_name: str, parent_sid: str | None, sid: str | None, token: str) -> AccountRow:
        now = clock.iso(clock.now())
        return AccountRow(
            sid=sid or new_sid("AC"),
            parent_sid=parent_sid,
            friendly_name=friendly_name,
            status="active",
            token_hash=hash_secret(token),
            token_sealed=self.box.seal(token),
            date_created=now,
            date_updated=now,
        )

    async def ensure_first(self, sid: str | None, token: str | None) -> tuple[AccountRow, str] | None:
        """Create the first account on start. Returns (row, token) only when
        this call created it with generated credentials (to print once)."""
        if sid:
            canon = normalize_sid("AC", sid)
            if canon is None or not token:
                raise ValueError("EVENTSTREAMS_ACCOUNT_SID must be AC + 32 hex and needs EVENTSTREAMS_AUTH_TOKEN")
            if not await self.store.accounts.create_first(self._new_row("Main account", None, canon, token), False):
                existing = await self.store.accounts.get(canon)
                if existing is not None and not verify_secret(token, existing.token_hash):
                    # The environment is the source of truth for the first account's token.
                    await self._set_token(existing, token)
            return None
        if await self.store.accounts.count() > 0:
            return None
        token = new_token()
        row = self._new_row("Main account", None, None, token)
        if await self.store.accounts.create_first(row, True):
            return row, token
        return None

    async def _set_token(self, row: AccountRow, token: str) -> None:
        await self.store.accounts.set_token(row.sid, hash_secret(token), self.box.seal(token))

    def token_of(self, row: AccountRow) -> str:
        return self.box.open(row.token_sealed)

    async def authenticate(self, authorization: str | None, on_behalf_of: str | None = None) -> Principal:
        """HTTP Basic as Twilio: AccountSid:AuthToken or SKxxx:secret.

        A parent's credentials act on a subaccount when the username is the
        subaccount SID with the parent's token as password, or when the
        ``X-Eventstreams-Account`` header names the subaccount.
        """
        if not authorization or not authorization[:6].lower() == "basic ":
            raise _unauthorized()
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized() from None
        user, sep, password = decoded.partition(":")
        if not sep or not password:
            raise _unauthorized()
        key_sid: str | None = None
        if user[:2].upper() == "SK":
            ksid = normalize_sid("SK", user)
            key = await self.store.accounts.get_key(ksid) if ksid else None
            if key is None or not verify_secret(password, key.secret_hash):
                raise _unauthorized()
            caller = await self.store.accounts.get(key.account_sid)
            key_sid = key.sid
            target = caller
        else:
            sid = normalize_sid("AC", user)
            target = await self.store.accounts.get(sid) if sid else None
            if target is None:
                raise _unauthorized()
            caller = target
            if not verify_secret(password, target.token_hash):
                parent = await self.store.accounts.get(target.parent_sid) if target.parent_sid else None
                if parent is None or not verify_secret(password, parent.token_hash):
                    raise _unauthorized()
                caller = parent
        if caller is None or target is None or caller.status != "active":
            raise _unauthorized()
        if on_behalf_of:
            sub_sid = normalize_sid("AC", on_behalf_of)
            sub = await self.store.accounts.get(sub_sid) if sub_sid else None
            if sub is None or (sub.sid != caller.sid and sub.parent_sid != caller.sid):
                raise TwilioError(AUTH_FAILED, "Authenticate: not a subaccount of the caller", 401)
            target = sub
        if target.status != "active":
            raise TwilioError(AUTH_FAILED, f"Account {target.sid} is {target.status}", 401)
        return Principal(caller=caller, account=target, key_sid=key_sid)

    # -- 2010-04-01 Accounts resource
    @staticmethod
    def require_account_credentials(p: Principal) -> None:
        """Accounts and Keys need the account's own token: our API keys are Twilio's Standard keys,
        which may not read the auth token, mint keys or manage subaccounts."""
        if p.key_sid is not None:
            raise TwilioError(
                AUTH_FAILED,
                "Authenticate: API keys cannot access the Accounts or Keys resources; use the account SID and"
                " auth token",
                401,
            )

    async def principal_of(self, sid: str) -> Principal:
        """The account acting as itself (operator tools: the CLI holds the database already)."""
        canon = normalize_sid("AC", sid)
        row = await self.store.accounts.get(canon) if canon else None
        if row is None:
            raise not_found(f"Account {sid} was not found")
        return Principal(row, row)

    async def visible(self, p: Principal, sid: str) -> AccountRow:
        canon = normalize_sid("AC", sid)
        row = await self.store.accounts.get(canon) if canon else None
        if row is None or (row.sid != p.caller.sid and row.parent_sid != p.caller.sid):
            raise not_found(f"The requested resource /2010-04-01/Accounts/{sid}.json was not found")
        return row

    async def create_sub(self, p: Principal, friendly_name: str | None) -> tuple[AccountRow, str]:
        if p.caller.parent_sid is not None:
            raise TwilioError(FORBIDDEN, "Subaccounts cannot create subaccounts", 403)
        name = friendly_name or f"SubAccount Created at {clock.rfc2822(clock.iso(clock.now()))}"
        if len(name) > 64:
            raise bad_request("FriendlyName must be at most 64 characters")
        return await self.create(name, parent_sid=p.caller.sid)

    async def update(self, p: Principal, sid: str, friendly_name: str | None, status: str | None) -> AccountRow:
        row = await self.visible(p, sid)
        if status is not None:
            if status not in ACCOUNT_STATUSES:
                raise bad_request(f"Status must be one of {', '.join(ACCOUNT_STATUSES)}")
            if row.sid == p.caller.sid:
                raise TwilioError(FORBIDDEN, "An account cannot change its own status", 403)
            if row.status == "closed" and status != "closed":
                raise bad_request("A closed account cannot be reopened")
        if friendly_name is not None and len(friendly_name) > 64:
            raise bad_request("FriendlyName must be at most 64 characters")
        await self.store.accounts.update(row.sid, friendly_name, status, clock.iso(clock.now()))
        updated = await self.store.accounts.get(row.sid)
        assert updated is not None
        return updated

    async def list(self, p: Principal, friendly_name: str | None, status: str | None, q: PageQuery) -> Page:
        return await self.store.accounts.list(p.caller.sid, friendly_name, status, q)

    # -- API keys
    async def create_key(self, account: AccountRow, friendly_name: str | None) -> tuple[ApiKeyRow, str]:
        now = clock.iso(clock.now())
        secret = new_token()
        row = ApiKeyRow(
            sid=new_sid("SK"),
            account_sid=account.sid,
            friendly_name=friendly_name or "",
            secret_hash=hash_secret(secret),
            date_created=now,
            date_updated=now,
        )
        try:
            await self.store.accounts.create_key(row, MAX_API_KEYS)
        except LimitReached:
            raise limit_reached(f"Account reached the max number of API keys ({MAX_API_KEYS})") from None
        return row, secret

    async def list_keys(self, account: AccountRow, q: PageQuery) -> Page:
        return await self.store.accounts.list_keys(account.sid, q)

    async def update_key(self, key: ApiKeyRow, friendly_name: str) -> ApiKeyRow:
        await self.store.accounts.update_key(key.sid, friendly_name, clock.iso(clock.now()))
        updated = await self.store.accounts.get_key(key.sid)
        if updated is None:
            raise not_found("Key was deleted")
        return updated

    async def delete_key(self, key: ApiKeyRow) -> None:
        await self.store.accounts.delete_key(key.sid)

    async def key(self, account: AccountRow, sid: str) -> ApiKeyRow:
        canon = normalize_sid("SK", sid)
        row = await self.store.accounts.get_key(canon) if canon else None
        if row is None or row.account_sid != account.sid:
            raise not_found(f"The requested resource Keys/{sid}.json was not found")
        return row
