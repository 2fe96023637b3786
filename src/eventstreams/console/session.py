"""The console's session cookie, CSRF tokens and sign-in rate limit.

The cookie holds who signed in (caller SID, API key SID), whom they act as, a CSRF token and a
fingerprint of the credential's stored hash, all MAC'd with the runtime's ``Box`` (so every node
sharing EVENTSTREAMS_SECRET_KEY accepts it). The credential itself is never in the cookie; each
request reloads the accounts, so a rotated token, a deleted key or a suspended account ends the
session at once.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass

import orjson

from ..crypto import Box
from ..domain.accounts import Principal
from ..store.base import Store

COOKIE = "es_console"
SIGNIN_COOKIE = "es_signin"  # the double-submit token of the sign-in form, before a session exists
MAX_AGE_S = 12 * 3600


@dataclass(frozen=True)
class Session:
    caller_sid: str
    key_sid: str | None
    account_sid: str
    fingerprint: str
    csrf: str
    issued: int

    def acting_as(self, account_sid: str) -> Session:
        return Session(self.caller_sid, self.key_sid, account_sid, self.fingerprint, self.csrf, self.issued)


def fingerprint(box: Box, credential_hash: str) -> str:
    return box.mac("console-session\x00" + credential_hash)


def new_session(box: Box, p: Principal, credential_hash: str) -> Session:
    return Session(p.caller.sid, p.key_sid, p.account.sid, fingerprint(box, credential_hash),
                   secrets.token_urlsafe(24), int(time.time()))  # fmt: skip


def encode(box: Box, s: Session) -> str:
    body = base64.urlsafe_b64encode(
        orjson.dumps([s.caller_sid, s.key_sid, s.account_sid, s.fingerprint, s.csrf, s.issued])
    ).decode()
    return f"{body}.{box.mac('console-cookie' + chr(0) + body)}"


def decode(box: Box, value: str | None) -> Session | None:
    if not value or "." not in value:
        return None
    body, _, mac = value.rpartition(".")
    if not hmac.compare_digest(mac, box.mac("console-cookie" + chr(0) + body)):
        return None
    try:
        c, k, a, f, x, t = orjson.loads(base64.urlsafe_b64decode(body.encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(t, int) or time.time() - t > MAX_AGE_S:
        return None
    return Session(str(c), k if isinstance(k, str) else None, str(a), str(f), str(x), t)


async def principal(store: Store, box: Box, s: Session) -> Principal | None:
    """The session's principal, or ``None`` when its credential or accounts no longer allow it."""
    caller = await store.accounts.get(s.caller_sid)
    if caller is None or caller.status != "active":
        return None
    if s.key_sid is not None:
        key = await store.accounts.get_key(s.key_sid)
        if key is None or key.account_sid != caller.sid:
            return None
        stored = key.secret_hash
    else:
        stored = caller.token_hash
    if not hmac.compare_digest(s.fingerprint, fingerprint(box, stored)):
        return None
    account = caller
    if s.account_sid != caller.sid:
        sub = await store.accounts.get(s.account_sid)
        if sub is None or sub.parent_sid != caller.sid or sub.status != "active":
            return None
        account = sub
    return Principal(caller=caller, account=account, key_sid=s.key_sid)


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


class SignInLimiter:
    """At most ``limit`` failed sign-ins per client address per ``window_s`` (in this process)."""

    def __init__(self, limit: int = 10, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, who: str, now: float) -> deque[float]:
        q = self._failures.setdefault(who, deque())
        while q and now - q[0] > self.window_s:
            q.popleft()
        return q

    def blocked(self, who: str) -> bool:
        now = time.monotonic()
        q = self._recent(who, now)
        if not q:
            self._failures.pop(who, None)  # keeps the map as small as the set of recent offenders
        return len(q) >= self.limit

    def succeeded(self, who: str) -> None:
        """Take back the attempt :meth:`failed` reserved before checking the credentials."""
        q = self._failures.get(who)
        if q:
            q.pop()

    def failed(self, who: str) -> None:
        now = time.monotonic()
        if len(self._failures) > 10_000:  # many addresses: forget those whose failures are all old
            for key in [k for k, q in self._failures.items() if not q or now - q[-1] > self.window_s]:
                del self._failures[key]
        self._recent(who, now).append(now)
