"""HTTP plumbing shared by the handlers: strict form parsing, JSON
responses, Twilio paging (PageSize/Page/PageToken and the meta block)."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..errors import BAD_PAGINATION, TOO_LARGE, TwilioError, bad_request
from ..store.records import Page, PageQuery

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
PAGING = frozenset({"PageSize", "Page", "PageToken"})
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(err: TwilioError) -> JSON:
    return JSON(err.body(), status_code=err.status)


def _pairs(raw: bytes, where: str) -> list[tuple[str, str]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"The {where} is not valid UTF-8 (byte {exc.start})") from None
    bad = _BAD_ESCAPE.search(text)
    if bad is not None:
        snippet = text[bad.start() : bad.start() + 3]
        raise bad_request(f"The {where} has invalid percent-encoding {snippet!r} at offset {bad.start()}")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=1000)
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request(f"The {where} is not valid form encoding: {exc}") from None
    for k, v in pairs:
        if "\x00" in k or "\x00" in v:
            raise bad_request(f"Parameter {k!r} contains a NUL character")
    return pairs


@dataclass
class Params:
    """Parsed parameters; ``allowed`` names are checked on construction."""

    pairs: list[tuple[str, str]]

    def check(self, allowed: Iterable[str], repeatable: Iterable[str] = ()) -> Params:
        allowed_set, rep = set(allowed), set(repeatable)
        seen: set[str] = set()
        for k, _ in self.pairs:
            if k not in allowed_set:
                hint = f" (expected one of {', '.join(sorted(allowed_set))})" if allowed_set else ""
                raise bad_request(f"Unknown parameter {k!r}{hint}")
            if k in seen and k not in rep:
                raise bad_request(f"Parameter {k} was given more than once")
            seen.add(k)
        return self

    def get(self, name: str) -> str | None:
        for k, v in self.pairs:
            if k == name:
                return v
        return None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.pairs)

    def bool(self, name: str) -> bool | None:
        v = self.get(name)
        if v is None:
            return None
        if v.lower() in ("true", "false"):
            return v.lower() == "true"
        raise bad_request(f"Parameter {name} must be true or false (got {v[:40]!r})")

    def int(self, name: str, lo: int | None = None, hi: int | None = None) -> int | None:
        v = self.get(name)
        if v is None:
            return None
        try:
            n = int(v, 10)
        except ValueError:
            raise bad_request(f"Parameter {name} must be an integer (got {v[:40]!r})") from None
        if (lo is not None and n < lo) or (hi is not None and n > hi):
            raise bad_request(f"Parameter {name} is out of range ({lo}..{hi})")
        return n


def query(request: Request, allowed: Iterable[str] = ()) -> Params:
    raw = request.scope.get("query_string", b"")
    return Params(_pairs(raw, "query string")).check(allowed)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TwilioError(TOO_LARGE, f"Request body is larger than {limit} bytes", 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TwilioError(TOO_LARGE, f"Request body is larger than {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def form(
    request: Request, allowed: Iterable[str], repeatable: Iterable[str] = (), limit: int = 1_048_576
) -> Params:
    """Twilio request bodies are application/x-www-form-urlencoded only."""
    query(request, ())  # parameters belong in the body on POST
    body = await read_body(request, limit)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and ctype not in ("application/x-www-form-urlencoded", ""):
        raise bad_request(f"Request body must be application/x-www-form-urlencoded (got {ctype or 'no content type'})")
    return Params(_pairs(body, "request body")).check(allowed, repeatable)


# -- paging


#: A MAC over a PageToken's text and the list it belongs to (``Box.mac``), for lists whose tokens must
#: be opaque: a token not minted for that list is then refused, not merely a malformed one.
Signer = Callable[[str], str]


def _enc(direction: str, key: Sequence[Any], signer: Signer | None = None, scope: str = "") -> str:
    raw = orjson.dumps([direction, *key])
    token = "P" + direction.upper() + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f"{token}.{signer(scope + token)}" if signer else token


def _dec(token: str) -> tuple[str, tuple[Any, ...]]:
    err = TwilioError(BAD_PAGINATION, "Incorrect values for pagination: invalid PageToken", 400)
    if len(token) < 3 or token[0] != "P" or token[1] not in "AB" or len(token) > 2048:
        raise err
    try:
        body = token[2:]
        data = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        raise err from None
    if not isinstance(data, list) or len(data) < 2 or data[0] != token[1].lower():
        raise err
    for x in data[1:]:
        # what a database column can compare against: no NUL in text, integers within BIGINT
        if isinstance(x, str) and "\x00" not in x and len(x) <= 256:
            continue
        if type(x) is int and -(2**63) <= x < 2**63:
            continue
        raise err
    return data[0], tuple(data[1:])


@dataclass
class Paging:
    size: int
    page: int
    token: str | None
    q: PageQuery


#: Shapes of the keyset keys inside a PageToken, per list (what its sort key is made of).
TIME_SID: tuple[type, ...] = (str, str)
TEXT: tuple[type, ...] = (str,)
NUMBER: tuple[type, ...] = (int,)
NUMBER_SID: tuple[type, ...] = (int, str)


def paging(
    params: Params, shape: tuple[type, ...], bad_token: int = BAD_PAGINATION, signer: Signer | None = None,
    scope: str = "",
) -> Paging:
    """Page parameters; a PageToken must carry a key of this list's ``shape`` (a token minted by another
    list, or forged, is a 400 with ``bad_token``'s code, never a query with unbound or mistyped keys).
    With ``signer``, the token must also carry the MAC minted for ``scope`` (the list's path)."""
    def _int(name: str, lo: int, hi: int | None) -> int | None:
        v = params.get(name)
        if v is None:
            return None
        try:
            n = int(v, 10)
        except ValueError:
            raise TwilioError(
                BAD_PAGINATION, f"Incorrect values for pagination: {name} must be an integer", 400
            ) from None
        if n < lo or (hi is not None and n > hi):
            rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise TwilioError(BAD_PAGINATION, f"Incorrect values for pagination: {name} must be {rng}", 400)
        return n

    # Twilio clamps a PageSize above its maximum (twilio-python sends list(limit=2000) as PageSize=2000)
    size = min(_int("PageSize", 1, None) or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    page = _int("Page", 0, 1_000_000) or 0
    token = params.get("PageToken")
    q = PageQuery(size=size)
    if token:
        message = "Invalid PageToken"
        if bad_token == BAD_PAGINATION:
            message = "Incorrect values for pagination: invalid PageToken"
        try:
            if signer is not None:
                text, _, mac = token.rpartition(".")
                if not text or not hmac.compare_digest(mac.encode(), signer(scope + text).encode()):
                    raise TwilioError(bad_token, message, 400)
                token_text = text
            else:
                token_text = token
            direction, key = _dec(token_text)
        except TwilioError:
            raise TwilioError(bad_token, message, 400) from None
        if len(key) != len(shape) or not all(type(v) is t for v, t in zip(key, shape, strict=True)):
            raise TwilioError(bad_token, message, 400)
        if direction == "a":
            q.after = key
        else:
            q.before = key
    else:
        q.offset = page * size
    return Paging(size, page, token or None, q)


def _links(
    filters: list[tuple[str, str]],
    pg: Paging,
    page: Page,
    sort_key: Callable[[Any], Sequence[Any]],
    prefix: str,
    signer: Signer | None = None,
    scope: str = "",
) -> tuple[Callable[[int, str | None], str], str | None, str | None]:
    """The page-URL builder and the previous/next URLs (None at either end)."""

    def url(page_no: int, token: str | None) -> str:
        qs = [*filters, ("PageSize", str(pg.size)), ("Page", str(page_no))]
        if token:
            qs.append(("PageToken", token))
        return f"{prefix}?{urlencode(qs)}"

    backwards = pg.q.before is not None
    items = page.items
    has_next = bool(items) and (backwards or page.has_more)
    has_prev = bool(items) and ((backwards and page.has_more) or (not backwards and pg.page > 0))
    prev = url(max(pg.page - 1, 0), _enc("b", sort_key(items[0]), signer, scope)) if has_prev else None
    nxt = url(pg.page + 1, _enc("a", sort_key(items[-1]), signer, scope)) if has_next else None
    return url, prev, nxt


def page_meta(
    base: str,
    path: str,
    filters: list[tuple[str, str]],
    pg: Paging,
    page: Page,
    key: str,
    sort_key: Callable[[Any], Sequence[Any]],
) -> dict[str, Any]:
    url, prev, nxt = _links(filters, pg, page, sort_key, f"{base}{path}")
    return {
        "page": pg.page,
        "page_size": pg.size,
        "first_page_url": url(0, None),
        "previous_page_url": prev,
        "url": url(pg.page, pg.token),
        "next_page_url": nxt,
        "key": key,
    }


def legacy_meta(
    path: str,
    filters: list[tuple[str, str]],
    pg: Paging,
    page: Page,
    key: str,
    sort_key: Callable[[Any], Sequence[Any]],
    signer: Signer | None = None,
) -> dict[str, Any]:
    """The 2010-04-01 envelope: relative ``*_uri`` fields, start and end (tokens signed for ``path``
    with ``signer`` when given)."""
    uri, prev, nxt = _links(filters, pg, page, sort_key, path, signer, path)
    start = pg.page * pg.size
    return {
        "first_page_uri": uri(0, None),
        "end": start + max(len(page.items) - 1, 0),
        "previous_page_uri": prev,
        "uri": uri(pg.page, pg.token),
        "page_size": pg.size,
        "start": start,
        "next_page_uri": nxt,
        "page": pg.page,
        key: [],
    }
