"""The catalogue's in-memory side without a server: one validation pass per event, bounded caches,
and the registration checks of custom schemas (property-based over nesting and references)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstreams.catalog import runtime, schemas
from eventstreams.catalog.runtime import Catalog, CompiledSchema
from eventstreams.store.records import EventTypeRow, SchemaVersionRow

DOC = {"type": "object", "properties": {"n": {"type": "integer"}}}


class OnePassValidator:
    """A validator that counts passes; ``is_valid`` and ``iter_errors`` would be a second one."""

    def __init__(self) -> None:
        self.inner = schemas.compile_custom(DOC)
        self.passes = 0

    def validate(self, data: Any) -> None:
        self.passes += 1
        self.inner.validate(data)

    def is_valid(self, data: Any) -> bool:
        self.passes += 1
        return bool(self.inner.is_valid(data))

    def iter_errors(self, data: Any) -> Any:
        self.passes += 1
        return self.inner.iter_errors(data)


@pytest.mark.parametrize("data", [{"n": 1}, {"n": "x"}])
def test_first_error_runs_the_match_once(data: dict[str, Any]) -> None:
    v = OnePassValidator()
    problem = CompiledSchema("S", 1, DOC, v, custom=True).first_error(data)
    assert v.passes == 1
    assert (problem is None) == (data["n"] == 1)
    if problem is not None:
        assert problem.startswith("data/n: ")


class FakeCatalogue:
    """The two reads the catalogue makes, over generated types and versions."""

    def __init__(self) -> None:
        self.reads = 0

    async def get_type(self, owner: str, type_: str) -> EventTypeRow:
        self.reads += 1
        return EventTypeRow(type_, "S." + type_, owner, "d", "available", None, False, "t", "t")

    async def get_version(self, owner: str, schema_id: str, version: int | None) -> SchemaVersionRow:
        self.reads += 1
        return SchemaVersionRow(schema_id, version or 1, owner, json.dumps(DOC), "t")


class FakeStore:
    def __init__(self) -> None:
        self.catalogue = FakeCatalogue()

    @property
    def reads(self) -> int:
        return self.catalogue.reads


def test_catalogue_caches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "MAX_CACHED_TYPES", 20)
    monkeypatch.setattr(runtime, "MAX_CACHED_SCHEMAS", 10)
    store = FakeStore()
    cat = Catalog(store)  # type: ignore[arg-type]

    async def fill() -> None:
        for i in range(200):
            assert await cat.event_type("AC1", f"t{i}") is not None
            assert await cat.latest_version("AC1", f"S{i}") == 1
            assert await cat.schema("AC1", f"S{i}", 1) is not None

    asyncio.run(fill())
    assert len(cat._types) <= 20 and len(cat._latest) <= 20 and len(cat._visible) <= 20
    assert len(cat._schemas) <= 10
    # recent entries are still served from memory
    before = store.reads
    asyncio.run(cat.schema("AC1", "S199", 1))
    assert store.reads == before


def test_a_chunks_projections_survive_tiny_catalogue_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatcher keeps no projection cache of its own (it was a second, shared LRU that another
    worker could evict between lookup and use): a chunk gets every projection it needs, whatever the
    catalogue's bounded caches evict meanwhile."""
    from eventstreams.delivery.dispatcher import Dispatcher, DispatcherConfig
    from eventstreams.store.records import LeasedDelivery

    monkeypatch.setattr(runtime, "MAX_CACHED_SCHEMAS", 1)
    monkeypatch.setattr(runtime, "MAX_CACHED_TYPES", 1)
    store = FakeStore()
    d = Dispatcher(store, None, Catalog(store), DispatcherConfig())  # type: ignore[arg-type]
    batch = [LeasedDelivery(i, "DG1", "AC1", i, 0, 0, f"E{i}", f"t{i % 3}", 1, "{}", "l") for i in range(9)]
    versions = {"t0": 2, "t1": 2, "t2": 2}
    got = asyncio.run(d.projections("AC1", versions, batch))
    assert sorted(got) == [("t0", 2), ("t1", 2), ("t2", 2)]
    assert all(compiled.version == 2 for compiled, _ in got.values())


def test_custom_schemas_are_compiled_with_the_safe_options() -> None:
    with pytest.raises(schemas.SchemaRejected, match="compiled"):
        schemas.compile_custom({"pattern": r"(a)\1"})
    # Twilio's own schemas keep the default engine
    assert schemas.compile_builtin({"pattern": r"(a)\1"}).is_valid("aa")


_refs = st.one_of(
    st.sampled_from(
        [
            "http://127.0.0.1/x",
            "https://example.com/s.json",
            "file:///etc/passwd",
            "x.json",
            "//host/a",
            "urn:x",
            "/abs",
        ]
    ),
    st.text(min_size=1, max_size=20).filter(lambda s: not s.startswith("#")),
)


@settings(max_examples=200, deadline=None)
@given(ref=_refs, keyword=st.sampled_from(["$ref", "$dynamicRef", "$recursiveRef"]), depth=st.integers(0, 10))
def test_any_reference_outside_the_document_is_refused(ref: str, keyword: str, depth: int) -> None:
    doc: dict[str, Any] = {keyword: ref}
    for _ in range(depth):
        doc = {"type": "object", "properties": {"a": doc}}
    with pytest.raises(schemas.SchemaRejected, match="outside the schema"):
        schemas.check_custom(doc)


@settings(max_examples=50, deadline=None)
@given(depth=st.integers(1, 200))
def test_depth_is_capped_without_recursion(depth: int) -> None:
    doc: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        doc = {"items": doc}
    if depth + 1 > schemas.MAX_DEPTH:
        with pytest.raises(schemas.SchemaRejected, match="nested deeper"):
            schemas.check_custom(doc)
    else:
        schemas.check_custom(doc)
        schemas.compile_custom(doc)
