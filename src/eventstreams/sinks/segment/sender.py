"""The Segment sender: batched track calls over the shared HTTP client policy (see the package doc)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from yarl import URL

from ...netpolicy import AsyncResolver
from ...outcome import Outcome, classify_http
from ..base import OutgoingEvent, Pacer, SinkContext, SinkSender
from ..http import USER_AGENT, HttpClient, outcome_for_exception, read_excerpt
from .mapping import (
    BODY_HEAD,
    BODY_TAIL,
    DEFAULT_ENDPOINT,
    MAX_EVENT_BYTES,
    SchemaLookup,
    batch_url,
    builtin_schema_lookup,
    dumps,
    find_phone,
    identity_fields,
    loads,
    no_identity,
    not_sent,
    parse_dataschema,
    sent_at,
    split_batches,
    track_call,
)

# -- the sender --------------------------------------------------------------------------------


class SegmentSender(SinkSender):
    """Delivers events to a ``segment`` sink as batched ``track`` calls (see the module doc).

    Configuration keys: ``write_key`` (string) and optional ``endpoint`` (base
    URL). Invalid configuration raises ``ValueError``. ``schema_lookup``
    overrides ``ctx.extra["schema_lookup"]``; ``resolver`` replaces system DNS
    for connect-time lookups (tests).
    """

    def __init__(
        self,
        ctx: SinkContext,
        *,
        schema_lookup: SchemaLookup | None = None,
        resolver: AsyncResolver | None = None,
    ) -> None:
        config = ctx.configuration
        write_key = config.get("write_key")
        if not isinstance(write_key, str) or not write_key:
            raise ValueError("segment sink configuration needs a 'write_key'")
        endpoint = config.get("endpoint") or ctx.extra.get("segment_endpoint") or DEFAULT_ENDPOINT
        if not isinstance(endpoint, str):
            raise ValueError(f"segment sink endpoint must be a string, not {endpoint!r}")
        self._http = HttpClient(
            allow_private=ctx.allow_private, timeout=ctx.timeout, max_in_flight=ctx.max_in_flight, resolver=resolver
        )
        lookup = schema_lookup or ctx.extra.get("schema_lookup") or builtin_schema_lookup
        if not callable(lookup):
            raise ValueError("schema_lookup must be an async callable")

        self._ctx = ctx
        self.url = batch_url(endpoint)
        self._authorization = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode("ascii")
        self._lookup: SchemaLookup = lookup
        self._identity: dict[tuple[str, int], tuple[tuple[str, ...], ...]] = {}
        self._slots = asyncio.Semaphore(ctx.max_in_flight)

    # -- public API ------------------------------------------------------------------------

    async def send(self, events: Sequence[OutgoingEvent], pacer: Pacer) -> list[Outcome]:
        """Deliver ``events``; one outcome per event, in order. Never raises for delivery failures."""
        if not events:
            return []
        outcomes: list[Outcome | None] = [None] * len(events)
        parsed: list[dict[str, Any] | None] = []
        for i, event in enumerate(events):
            try:
                doc = loads(event.payload)
            except (ValueError, RecursionError) as exc:
                doc = None
                outcomes[i] = not_sent(f"event payload is not valid JSON ({type(exc).__name__})")
            if doc is not None and not isinstance(doc, dict):
                doc, outcomes[i] = None, not_sent("event payload is not a JSON object")
            parsed.append(doc)

        failed_lookups = await self._load_schemas(parsed)
        items: list[tuple[int, bytes]] = []
        for i, (event, doc) in enumerate(zip(events, parsed, strict=True)):
            if doc is None:
                continue
            try:
                call = self._track(event, doc, failed_lookups)
                if isinstance(call, Outcome):
                    outcomes[i] = call
                    continue
                body = dumps(call)
            except Exception as exc:  # noqa: BLE001 - e.g. RecursionError on deeply nested data; never raise
                outcomes[i] = Outcome.internal(f"cannot build track call: {type(exc).__name__}: {exc}")
                continue
            if len(body) > MAX_EVENT_BYTES:
                outcomes[i] = not_sent(
                    f"the Segment track call is {len(body)} bytes; Segment accepts at most {MAX_EVENT_BYTES}"
                    " bytes per event"
                )
                continue
            items.append((i, body))

        groups = [[items[j] for j in batch] for batch in split_batches([len(body) for _, body in items])]
        results = await asyncio.gather(*(self._deliver([body for _, body in group], pacer) for group in groups))
        for group, outcome in zip(groups, results, strict=True):
            for i, _ in group:
                outcomes[i] = outcome
        return [outcome if outcome is not None else Outcome.internal("no outcome") for outcome in outcomes]

    async def close(self) -> None:
        """Close the connection pool (a later ``send`` opens a new one)."""
        await self._http.close()

    # -- mapping ---------------------------------------------------------------------------

    async def _load_schemas(self, parsed: Sequence[dict[str, Any] | None]) -> dict[tuple[str, int], str]:
        """Fill the identity cache for every schema version in ``parsed``; return failed lookups."""
        wanted: set[tuple[str, int]] = set()
        for doc in parsed:
            if doc is None:
                continue
            schema = doc.get("dataschema")
            key = parse_dataschema(schema) if isinstance(schema, str) else None
            if key is not None and key not in self._identity:
                wanted.add(key)
        failed: dict[tuple[str, int], str] = {}
        for key in sorted(wanted):
            try:
                document = await self._lookup(*key)
            except Exception as exc:  # noqa: BLE001 - a store hiccup: retry the events, do not raise
                failed[key] = f"{type(exc).__name__}: {exc}"
                continue
            if document is None:
                failed[key] = ""  # unknown schema version: not cached, may be registered later
                continue
            self._identity[key] = identity_fields(document)
        return failed

    def _track(
        self, event: OutgoingEvent, doc: dict[str, Any], failed_lookups: Mapping[tuple[str, int], str]
    ) -> dict[str, Any] | Outcome:
        raw_type = doc.get("type")
        event_type = raw_type if isinstance(raw_type, str) and raw_type else event.type
        data = doc.get("data")
        schema = doc.get("dataschema")
        if not isinstance(schema, str) or not schema:
            return no_identity(event_type, "the event has no dataschema to find its identityType field")
        key = parse_dataschema(schema)
        if key is None:
            return no_identity(event_type, f"dataschema {schema!r} does not end in /<SchemaId>/<version>")
        if key in failed_lookups:
            error = failed_lookups[key]
            if error:
                return Outcome.internal(f"schema lookup for {key[0]} v{key[1]} failed: {error}")
            return no_identity(event_type, f"schema {key[0]} version {key[1]} is unknown")
        fields = self._identity[key]
        if not fields:
            return no_identity(event_type, f"schema {key[0]} v{key[1]} has no identityType: phone field")
        if not isinstance(data, dict):
            return no_identity(event_type, "the event has no data object")
        phone, problems = find_phone(data, fields)
        if phone is None:
            return no_identity(event_type, "; ".join(problems))
        return track_call(doc, event_type, str(doc.get("id") or event.id), phone)

    # -- HTTP --------------------------------------------------------------------------------

    async def _deliver(self, calls: list[bytes], pacer: Pacer) -> Outcome:
        async with self._slots:
            await pacer.wait(len(calls))
            outcome = await self._attempt(calls)
            pacer.observe(outcome)
        return outcome

    async def _attempt(self, calls: list[bytes]) -> Outcome:
        body = b"".join((BODY_HEAD, b",".join(calls), BODY_TAIL, sent_at().encode("ascii"), b'"}'))
        headers = {
            "Authorization": self._authorization,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            async with self._http.request("POST", URL(self.url), data=body, headers=headers) as resp:
                excerpt = await read_excerpt(resp)
                outcome = classify_http(resp.status, resp.headers, excerpt)
                reset = resp.headers.get("X-RateLimit-Reset")
                if resp.status == 429 and outcome.retry_after is None and reset and reset.strip().isdigit():
                    outcome = dataclasses.replace(outcome, retry_after=reset.strip())
                return outcome
        except Exception as exc:  # noqa: BLE001 - send() must not raise for one bad request
            return outcome_for_exception(exc, self._ctx.timeout, "segment endpoint")
