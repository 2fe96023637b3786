"""Profiles (domain): resolves every accepted tracking message into one profile per person, inside
the tracking ingest's transaction, and reads profiles for the Profiles API, the CLI and delivery
(``ProfileLookup``). Rules: profiles/identity.py; storage: store/repos/profiles.py; docs/segment.md.

Resolution follows Segment's flat matching: find the profiles holding any identifier of the message;
none → a new profile; one → add to it; several → merge them into the one the highest-priority
identifier found. When the result would hold more values of a type than its limit, the lowest-priority
identifier of the message is dropped (the merge or attachment it would have caused is refused and
recorded) and matching runs again, as Segment's priority rule does."""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .. import clock
from ..ids import new_sid
from ..store.base import Store
from ..store.db import Row, Tx
from ..store.records import Page, PageQuery
from ..store.repos.profiles import ProfileRow, Writes
from ..store.repos.profiles import Profiles as ProfilesRepo
from . import identity as rules
from .view import ProfileView


class BadIdentifier(ValueError):
    """An ``id_type:value`` that names no identifier."""


class BadCursor(ValueError):
    """A paging cursor this service did not hand out."""


@dataclass(slots=True)
class _State:
    """A profile while one resolution runs."""

    id: str
    traits: dict[str, Any]
    times: dict[str, str]
    phone: str | None
    phone_valid: bool
    opted_out: bool
    date_created: str
    new: bool
    merged_into: str | None = None
    dirty: bool = False


@dataclass(slots=True)
class _Run:
    """One resolution's view of the account: identifiers → profile, and (read only when a message
    needs them) profiles and per-type identifier counts."""

    tx: Tx
    repo: ProfilesRepo
    account_sid: str
    now: str
    owner: dict[tuple[str, str], str] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)  # merged loser -> winner (this run)
    states: dict[str, _State] = field(default_factory=dict)
    base: dict[str, Counter[str]] = field(default_factory=dict)  # counts as stored before this run
    delta: dict[str, Counter[str]] = field(default_factory=dict)  # what this run added
    writes: Writes = field(default_factory=Writes)

    def load_states(self, pids: Iterable[str]) -> None:
        missing = sorted({p for p in pids if p not in self.states})
        for pid, row in self.repo.profiles_tx(self.tx, self.account_sid, missing).items():
            self.states[pid] = _state(row)

    def load_counts(self, pids: Iterable[str]) -> None:
        missing = sorted({p for p in pids if p not in self.base})
        self.base.update(self.repo.counts_tx(self.tx, self.account_sid, missing))

    def state(self, pid: str) -> _State:
        if pid not in self.states:
            self.load_states([pid])
        return self.states[pid]

    def count(self, pid: str) -> Counter[str]:
        if pid not in self.base:
            self.load_counts([pid])
        return self.base[pid] + self.delta.get(pid, Counter())

    def root(self, pid: str) -> str:
        while pid in self.parent:
            pid = self.parent[pid]
        return pid

    def holder(self, ident: tuple[str, str]) -> str | None:
        pid = self.owner.get(ident)
        return None if pid is None else self.root(pid)


def parse_identifier(text: str) -> tuple[str, str]:
    """``user_id:42`` → (``user_id``, ``42``); emails are looked up lowercased, as they are stored."""
    id_type, sep, value = text.partition(":")
    id_type = id_type.strip().lower()
    if not sep or not id_type or not value or len(value) > rules.MAX_VALUE or len(id_type) > rules.MAX_TYPE:
        raise BadIdentifier(f"{text[:120]!r} is not an identifier: use <id_type>:<value>, e.g. user_id:42")
    if id_type == rules.EMAIL:
        value = value.strip().lower()
    return id_type, value


def encode_cursor(key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


#: The keyset key each list's cursor carries (its sort columns' types): a cursor must match the list it
#: pages, or the database would compare a column against a value of another type (a 500 on PostgreSQL).
TRAITS_KEY: tuple[type, ...] = (str,)  # trait name
EXTERNAL_IDS_KEY: tuple[type, ...] = (str, str, str)  # date_first_seen, id_type, value
EVENTS_KEY: tuple[type, ...] = (int,)  # seq
LINKS_KEY: tuple[type, ...] = (str, str)  # date_created, id
_MAX_KEY_TEXT = 2000


def decode_cursor(text: str, shape: tuple[type, ...]) -> tuple[Any, ...]:
    """The key inside a cursor of this ``shape``; BadCursor for anything else (another list's cursor,
    wrong types, text a column cannot hold, integers beyond BIGINT)."""
    try:
        key = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadCursor("The cursor is not one this API returned") from None
    if not isinstance(key, list) or len(key) != len(shape):
        raise BadCursor("The cursor is not one this API returned")
    for k, kind in zip(key, shape, strict=True):
        if kind is int and type(k) is int and -(2**63) <= k < 2**63:  # type(): a bool is not a seq
            continue
        if kind is str and type(k) is str and "\x00" not in k and len(k) <= _MAX_KEY_TEXT:
            continue
        raise BadCursor("The cursor is not one this API returned")
    return tuple(key)


class Profiles:
    """The profiles domain; ``runtime.profiles``. Also the ``ProfileLookup`` delivery code reads."""

    def __init__(self, store: Store, region: str, limits: rules.Limits) -> None:
        self.store = store
        self.repo = store.profiles
        self.region = region
        self.limits = limits

    # -- resolution (inside the ingest transaction) ---------------------------------------------

    def resolve_tx(self, tx: Tx, account_sid: str, messages: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Resolve accepted, newly stored tracking messages ``(seq, message)`` into profiles, in ``tx``
        (the transaction that stored them): create, attach, merge, record refusals, merge traits, and
        record each message as a profile event. Reads once and writes once per kind of statement."""
        if not messages:
            return
        run = _Run(tx, self.repo, account_sid, clock.iso_ms(clock.now()))
        found = [(seq, m, rules.identity(m, self.region)) for seq, m in messages]
        values = {v for _, _, ident in found for _, v in ident.ids}
        values |= {ident.previous_id for _, _, ident in found if ident.previous_id is not None}
        if not values:
            return
        self.repo.lock_tx(tx, account_sid)
        for r in self.repo.identifiers_tx(tx, account_sid, sorted(values)):
            run.owner[(r["id_type"], r["value"])] = r["profile_id"]
        # Read in bulk only what the messages will need: a track for a known user needs neither its
        # profile nor its counts (what this pass misses, e.g. after a merge in this run, loads lazily).
        states: set[str] = set()
        counts: set[str] = set()
        for _, _, ident in found:
            ids = list(ident.ids)
            if ident.previous_id is not None:
                ids += [(rules.USER_ID, ident.previous_id), (rules.ANONYMOUS_ID, ident.previous_id)]
            matched = {run.owner[i] for i in ids if i in run.owner}
            if len(matched) > 1 or (matched and any(i not in run.owner for i in ident.ids)):
                counts |= matched
            if len(matched) > 1 or ident.traits or ident.phone is not None:
                states |= matched
        run.load_states(states)
        run.load_counts(counts)
        for seq, m, ident in found:
            self._resolve_one(run, seq, m, ident)
        self._flush(run)
        self.repo.write_tx(tx, account_sid, run.writes)

    def _resolve_one(self, run: _Run, seq: int, m: dict[str, Any], ident: rules.Identity) -> None:
        ids = list(ident.ids)
        if ident.previous_id is not None:  # alias: previousId is a known user_id, else an anonymous_id
            prev = (rules.USER_ID, ident.previous_id)
            if run.holder(prev) is None:
                prev = (rules.ANONYMOUS_ID, ident.previous_id)
            if prev not in ids:
                ids.append(prev)
                ids.sort(key=lambda i: rules.priority(i[0]))
        if not ids:
            return
        mid = str(m.get("messageId", ""))
        refused: list[tuple[tuple[str, str], str | None, str]] = []
        while True:
            matched: list[str] = []
            new: list[tuple[str, str]] = []
            for i in ids:
                h = run.holder(i)
                if h is None:
                    new.append(i)
                elif h not in matched:
                    matched.append(h)
            over = self._over(run, matched, new)
            if over is None or len(ids) == 1:
                break
            dropped = ids.pop()  # the lowest priority: Segment demotes it and matches again
            refused.append((dropped, run.holder(dropped), f"{over} limit {self.limits(over)} exceeded"))
        target = matched[0] if matched else self._create(run)
        for loser in matched[1:]:
            proof = next(i for i in ids if run.holder(i) == loser)
            self._merge(run, target, loser, proof, mid)
        for i in new:
            run.owner[i] = target
            run.delta.setdefault(target, Counter())[i[0]] += 1
            run.writes.identifiers.append({"account_sid": run.account_sid, "value": i[1], "id_type": i[0],
                                           "profile_id": target, "first_message_id": mid,
                                           "date_first_seen": run.now})  # fmt: skip
        for (t, v), holder, reason in refused:
            run.writes.merge_records.append(_merge_record(run, target, holder, t, v, "refused", reason, mid))
        ts = ident.timestamp
        if ident.traits:
            state = run.state(target)
            for k, v in ident.traits.items():
                if ts >= state.times.get(k, ""):
                    state.traits[k] = v
                    state.times[k] = ts
            state.dirty = True
        phone = ident.phone
        if phone is not None and (rules.PHONE, phone.value) in ids:
            state = run.state(target)
            if ts >= state.times.get("$phone", ""):
                state.phone, state.phone_valid, state.times["$phone"] = phone.value, phone.valid, ts
                state.dirty = True
        kind = m.get("type")
        run.writes.events.append({"account_sid": run.account_sid, "seq": seq, "profile_id": target, "message_id": mid,
                                  "type": kind if isinstance(kind, str) else "", "name": ident.name,
                                  "timestamp": ts})  # fmt: skip

    def _over(self, run: _Run, matched: list[str], new: list[tuple[str, str]]) -> str | None:
        """The first identifier type (by priority) the combined profile would hold too many of."""
        if not new and len(matched) <= 1:
            return None  # nothing attached, nothing merged: the profile stays as it is
        total: Counter[str] = Counter(t for t, _ in new)
        for pid in matched:
            total.update(run.count(pid))
        for t in sorted(total, key=rules.priority):
            if total[t] > self.limits(t):
                return t
        return None

    def _create(self, run: _Run) -> str:
        pid = "prf_" + new_sid("")
        run.states[pid] = _State(pid, {}, {}, None, False, False, run.now, new=True, dirty=True)
        run.base[pid] = Counter()
        return pid

    def _merge(self, run: _Run, winner: str, loser: str, proof: tuple[str, str], mid: str) -> None:
        w, lo = run.state(winner), run.state(loser)
        for k, v in lo.traits.items():  # latest wins, by the timestamp of the message that set each trait
            t = lo.times.get(k, "")
            if t > w.times.get(k, ""):
                w.traits[k], w.times[k] = v, t
        if lo.times.get("$phone", "") > w.times.get("$phone", "") or w.phone is None:
            if lo.phone is not None:
                w.phone, w.phone_valid, w.times["$phone"] = lo.phone, lo.phone_valid, lo.times.get("$phone", "")
        w.opted_out = w.opted_out or lo.opted_out  # a recorded STOP is never lost by a merge
        w.dirty = lo.dirty = True
        lo.merged_into = winner
        run.parent[loser] = winner
        run.delta.setdefault(winner, Counter()).update(run.count(loser))
        run.writes.merges.append((winner, loser))
        run.writes.merge_records.append(_merge_record(run, winner, loser, proof[0], proof[1], "merged", None, mid))

    def _flush(self, run: _Run) -> None:
        for s in run.states.values():
            if not s.dirty:
                continue
            merged = run.root(s.id) if s.merged_into is not None else None
            row = {"account_sid": run.account_sid, "id": s.id, "merged_into": merged,
                   "traits": orjson.dumps(s.traits).decode(), "trait_times": orjson.dumps(s.times).decode(),
                   "phone": s.phone, "phone_valid": s.phone_valid, "opted_out": s.opted_out,
                   "date_updated": run.now}  # fmt: skip
            if s.new:
                run.writes.new_profiles.append({**row, "date_created": s.date_created})
            else:
                run.writes.updated_profiles.append(row)
        # rows written in this run name the survivor
        for r in run.writes.identifiers:
            r["profile_id"] = run.root(r["profile_id"])
        for r in run.writes.events:
            r["profile_id"] = run.root(r["profile_id"])
        for r in run.writes.merge_records:
            r["winner"] = run.root(r["winner"])

    # -- reads (API, CLI) -----------------------------------------------------------------------

    async def find(self, account_sid: str, identifier: str) -> ProfileRow | None:
        """The surviving profile holding ``id_type:value`` (BadIdentifier when malformed)."""
        id_type, value = parse_identifier(identifier)
        if id_type == rules.PHONE:
            p = rules.normalize_phone(value, self.region)
            value = p.value if p is not None else value
        return await self.repo.find(account_sid, id_type, value)

    async def external_ids(self, account_sid: str, profile_id: str, types: Sequence[str] | None, limit: int,
                           cursor: str | None) -> tuple[list[Row], str | None]:  # fmt: skip
        q = PageQuery(size=limit, after=decode_cursor(cursor, EXTERNAL_IDS_KEY) if cursor else None)
        page = await self.repo.identifiers(account_sid, profile_id, types, q)
        return page.items, _next(page, lambda r: (r["date_first_seen"], r["id_type"], r["value"]))

    async def events(self, account_sid: str, profile_id: str, limit: int, cursor: str | None,
                     ascending: bool = False) -> tuple[list[Row], str | None]:  # fmt: skip
        q = PageQuery(size=limit, after=decode_cursor(cursor, EVENTS_KEY) if cursor else None)
        page = await self.repo.events(account_sid, profile_id, q, newest_first=not ascending)
        return page.items, _next(page, lambda r: (r["seq"],))

    async def merges(self, account_sid: str, profile_id: str, limit: int,
                     cursor: str | None) -> tuple[list[Row], str | None]:  # fmt: skip
        q = PageQuery(size=limit, after=decode_cursor(cursor, LINKS_KEY) if cursor else None)
        page = await self.repo.merges(account_sid, profile_id, q)
        return page.items, _next(page, lambda r: (r["date_created"], r["id"]))

    async def groups(self, account_sid: str, profile_id: str, limit: int) -> list[Row]:
        return await self.repo.groups(account_sid, profile_id, limit)

    def traits(self, profile: ProfileRow) -> dict[str, Any]:
        out: dict[str, Any] = orjson.loads(profile.traits)
        return out

    def view(self, profile: ProfileRow, user_id: str | None = None,
             anonymous_ids: tuple[str, ...] = ()) -> ProfileView:  # fmt: skip
        traits = self.traits(profile)
        return ProfileView(id=profile.id, traits=traits, phone=profile.phone, phone_valid=profile.phone_valid,
                           opted_out=rules.opted_out(traits, profile.opted_out), user_id=user_id,
                           anonymous_ids=anonymous_ids)  # fmt: skip

    # -- ProfileLookup (delivery code) ----------------------------------------------------------

    async def for_message(self, account_sid: str, message: dict[str, Any]) -> ProfileView | None:
        ident = rules.identity(message, self.region)
        profile: ProfileRow | None = None
        order = {rules.USER_ID: 0, rules.ANONYMOUS_ID: 1}
        for id_type, value in sorted(ident.ids, key=lambda i: order.get(i[0], 2)):  # userId, anonymousId, the rest
            profile = await self.repo.find(account_sid, id_type, value)
            if profile is not None:
                break
        if profile is None:
            return None
        ids, _ = await self.external_ids(account_sid, profile.id, [rules.USER_ID, rules.ANONYMOUS_ID], 100, None)
        user = next((r["value"] for r in ids if r["id_type"] == rules.USER_ID), None)
        anon = tuple(r["value"] for r in ids if r["id_type"] == rules.ANONYMOUS_ID)
        return self.view(profile, user, anon)

    async def set_opted_out(self, account_sid: str, phone: str, opted_out: bool) -> int:
        p = rules.normalize_phone(phone, self.region)
        if p is None:
            return 0
        return await self.repo.set_opted_out(account_sid, p.value, opted_out, clock.iso_ms(clock.now()))


def _state(row: ProfileRow) -> _State:
    return _State(row.id, orjson.loads(row.traits), orjson.loads(row.trait_times), row.phone, row.phone_valid,
                  row.opted_out, row.date_created, new=False, merged_into=row.merged_into)  # fmt: skip


def _merge_record(run: _Run, winner: str, loser: str | None, id_type: str, value: str, status: str,
                  reason: str | None, mid: str) -> dict[str, Any]:  # fmt: skip
    return {"account_sid": run.account_sid, "id": "pmg_" + new_sid(""), "winner": winner, "loser": loser,
            "id_type": id_type, "id_value": value, "status": status, "reason": reason, "message_id": mid,
            "date_created": run.now}  # fmt: skip


def _next(page: Page, key: Any) -> str | None:
    return encode_cursor(key(page.items[-1])) if page.has_more and page.items else None
