"""How the CLI reaches a running eventstreams: profiles (``eventstreams login``), the environment that
overrides them, and one HTTP client (auth, timeouts, Twilio-shaped errors, paging) every command uses.

Exit codes (docs/cli.md): 0 ok, 1 an API or usage error, 2 busy or a conflict (409, 429, a sync already
running), 3 authentication (no credentials, 401, 403), 4 the server cannot be reached."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import httpx

OK, API_ERROR, BUSY, AUTH, UNREACHABLE = 0, 1, 2, 3, 4
DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_ACT_AS = "X-Eventstreams-Account"  # api/context.ACT_AS_HEADER (not imported: the CLI stays light)


class CliError(click.ClickException):
    """An error with the exit code scripts rely on and a line saying what to do."""

    def __init__(self, message: str, exit_code: int = API_ERROR, hint: str | None = None) -> None:
        super().__init__(message + (f"\n  → {hint}" if hint else ""))
        self.exit_code = exit_code  # type: ignore[misc]  # per instance: click declares it on the class


@dataclass(frozen=True)
class Credentials:
    url: str
    account_sid: str
    auth_token: str | None = None
    api_key: str | None = None
    api_secret: str | None = None

    def basic(self) -> tuple[str, str]:
        if self.api_key and self.api_secret:
            return self.api_key, self.api_secret
        if self.auth_token:
            return self.account_sid, self.auth_token
        raise CliError("no credentials: neither an auth token nor an API key and secret", AUTH,
                       "run `eventstreams login` or set EVENTSTREAMS_AUTH_TOKEN")  # fmt: skip


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "eventstreams" / "config.json"


def load_config() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        return {"active": None, "profiles": {}}
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}", API_ERROR,
                       "fix or delete it, then `eventstreams login`") from None
    doc.setdefault("profiles", {})
    doc.setdefault("active", None)
    return doc


def save_profile(name: str, creds: Credentials, activate: bool = True) -> Path:
    """Write the profile; the directory is 0700 and the file 0600 (it holds secrets), set before any byte
    is written so no other user can ever read it."""
    doc = load_config()
    doc["profiles"][name] = {k: v for k, v in asdict(creds).items() if v is not None}
    if activate or not doc.get("active"):
        doc["active"] = name
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def resolve(profile: str | None) -> Credentials:
    """The profile named (``--profile``, EVENTSTREAMS_PROFILE) or the active one, each field overridden by
    EVENTSTREAMS_URL / _ACCOUNT_SID / _AUTH_TOKEN / _API_KEY / _API_SECRET."""
    doc = load_config()
    asked = profile or os.environ.get("EVENTSTREAMS_PROFILE")
    if asked and asked not in doc["profiles"]:
        raise CliError(f"no profile named {asked!r} in {config_path()}", AUTH,
                       f"run `eventstreams login --profile {asked}`")  # fmt: skip
    stored: dict[str, Any] = doc["profiles"].get(asked or doc.get("active") or "", {})
    env = os.environ.get
    url = env("EVENTSTREAMS_URL") or stored.get("url") or DEFAULT_URL
    account = env("EVENTSTREAMS_ACCOUNT_SID") or stored.get("account_sid")
    key, secret = env("EVENTSTREAMS_API_KEY"), env("EVENTSTREAMS_API_SECRET")
    token = env("EVENTSTREAMS_AUTH_TOKEN")
    if not (key or token):  # a credential from the environment replaces the stored one whole
        token, key, secret = stored.get("auth_token"), stored.get("api_key"), stored.get("api_secret")
    if not account:
        raise CliError("no account: not logged in", AUTH,
                       "run `eventstreams login` (or set EVENTSTREAMS_URL, EVENTSTREAMS_ACCOUNT_SID and "
                       "EVENTSTREAMS_AUTH_TOKEN)")  # fmt: skip
    return Credentials(url.rstrip("/"), account, token, key, secret)


def _hint(status: int, code: int | None) -> str | None:
    if status in (401, 403):
        return "check the credentials: `eventstreams login` again, or EVENTSTREAMS_AUTH_TOKEN / EVENTSTREAMS_API_KEY"
    if status == 404:
        return "check the SID or name (the `list` command shows what exists in this account)"
    if status == 409:
        return "it exists already or is busy; fetch it, or retry once the other operation ends"
    if status == 429:
        return "too many requests or a limit reached: wait and retry"
    if status >= 500:
        return "the server failed; its log says why"
    return None


class Client:
    def __init__(self, creds: Credentials, act_as: str | None = None) -> None:
        self.creds = creds
        headers = {"User-Agent": "eventstreams-cli", "Accept": "application/json"}
        if act_as and act_as != creds.account_sid:
            headers[_ACT_AS] = act_as  # a parent's credentials acting on its subaccount
        self.http = httpx.Client(base_url=creds.url, auth=creds.basic(), timeout=TIMEOUT, headers=headers)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def request(self, method: str, path: str, *, data: Any = None, params: Any = None, content: bytes | None = None,
                content_type: str | None = None, ok: tuple[int, ...] = ()) -> Any:  # fmt: skip
        """One call; the JSON answer (None for 204), or a CliError shaped from Twilio's error body."""
        headers = {"Content-Type": content_type} if content_type else None
        try:
            r = self.http.request(method, path, data=data, params=params, content=content, headers=headers)
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach {self.creds.url}: {exc}", UNREACHABLE,
                           "is `eventstreams serve` running there? check the profile's URL or EVENTSTREAMS_URL",
                           ) from None
        if r.status_code == 204:
            return None
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.is_success or r.status_code in ok:
            return body
        raise error_of(r.status_code, body, r.text)

    def paginate(self, path: str, key: str, params: dict[str, Any] | None = None, limit: int | None = None
                 ) -> Iterator[dict[str, Any]]:  # fmt: skip
        """Every item of a Twilio-paged list, following meta.next_page_url (or next_page_uri)."""
        url: str | None = path
        q: dict[str, Any] | None = {"PageSize": min(limit or 1000, 1000), **(params or {})}
        n = 0
        while url:
            page = self.request("GET", url, params=q)
            for item in page.get(key, []):
                yield item
                n += 1
                if limit is not None and n >= limit:
                    return
            meta = page.get("meta") or {}
            url = _same_server(meta.get("next_page_url") or meta.get("next_page_uri") or page.get("next_page_uri"))
            q = None  # the next page's URL carries the query


def _same_server(url: str | None) -> str | None:
    """The path and query of a next-page URL: the server builds it from its own idea of its address
    (EVENTSTREAMS_BASE_URL), which may not be the one we reach it at; the credentials go only where the
    profile says, never to a host named in a response."""
    if not url:
        return None
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def error_of(status: int, body: Any, text: str) -> CliError:
    code = more = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):  # Segment's shape (Profiles)
        message = str(body["error"].get("message"))
    elif isinstance(body, dict) and "message" in body:
        message, code, more = str(body["message"]), body.get("code"), body.get("more_info")
    else:
        message = text.strip()[:300] or f"HTTP {status}"
    detail = f"{message} (HTTP {status}" + (f", code {code}" if code else "") + (f", {more}" if more else "") + ")"
    exit_code = AUTH if status in (401, 403) else BUSY if status in (409, 429) else API_ERROR
    return CliError(detail, exit_code, _hint(status, code if isinstance(code, int) else None))


def client(act_as: str | None = None) -> Client:
    ctx = click.get_current_context(silent=True)
    profile = ctx.find_root().params.get("profile") if ctx else None
    return Client(resolve(profile), act_as)
