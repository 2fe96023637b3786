"""Event payloads at rest: zstd frames with a dictionary trained on the catalogue's events.

A stored event keeps its JSON in ``events.packed`` (``payload`` then holds '') or, written with packing
off or before it existed, in ``events.payload`` (``packed`` NULL); readers take either (:func:`unpack`).
Per event, not per batch: a sink's cursor, a replay and the console read single events.

Why a dictionary: a ~800-byte event compresses 1.6 times by itself, 4 times with the keys, URLs and envelope every
event repeats already in the dictionary (docs/benchmarks.md, "Issue 13, fourth session"). The dictionary
(``data/events-<n>.zdict``, scripts/train_event_dictionary.py) holds only the catalogue's examples; each
frame names its dictionary's id, so a new dictionary is added here beside the old one, never instead.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import zstandard

from .records import NewEvent

LEVEL = 1  # with the dictionary: 188 bytes in 6.1 µs for a 923-byte event; level 3 184 in 7.4, -1 248 in 6.0
CURRENT = 0x45530001
DICTIONARIES = {CURRENT: "events-1.zdict"}  # every id ever written stays here: old rows name it


class UnreadableEvent(ValueError):
    """A stored frame this build cannot read (a dictionary it lacks, or damage)."""


def _raw_dictionary(dict_id: int) -> bytes:
    name = DICTIONARIES.get(dict_id)
    if name is None:
        raise UnreadableEvent(f"an event was packed with an unknown dictionary ({dict_id:#x})")
    return resources.files("eventstreams.store").joinpath("data", name).read_bytes()


@cache
def dictionary(dict_id: int) -> zstandard.ZstdCompressionDict:
    """The dictionary for reading (decompressors)."""
    return zstandard.ZstdCompressionDict(_raw_dictionary(dict_id), dict_type=zstandard.DICT_TYPE_FULLDICT)


@cache
def _compression_dictionary() -> zstandard.ZstdCompressionDict:
    """The current dictionary with its compression tables built once, here only: precomputing again frees
    the tables that compressors made before still point at. Compressors share it read-only."""
    d = zstandard.ZstdCompressionDict(_raw_dictionary(CURRENT), dict_type=zstandard.DICT_TYPE_FULLDICT)
    d.precompute_compress(level=LEVEL)
    return d


class _PerThread(threading.local):
    """zstd contexts are not safe across threads (compress and decompress release the GIL), and both
    packing (the tracking API packs inside its transaction: PostgreSQL's pool threads) and reading run on
    several threads."""

    def __init__(self) -> None:
        self.decompressors: dict[int, zstandard.ZstdDecompressor] = {}
        self.compressor: zstandard.ZstdCompressor | None = None


_local = _PerThread()


def unpack_bytes(packed: bytes) -> bytes:
    try:
        dict_id = zstandard.get_frame_parameters(packed).dict_id
        d = _local.decompressors.get(dict_id)
        if d is None:
            d = zstandard.ZstdDecompressor(dict_data=dictionary(dict_id) if dict_id else None)
            _local.decompressors[dict_id] = d
        return d.decompress(packed)
    except zstandard.ZstdError as exc:
        raise UnreadableEvent(f"a stored event's frame cannot be read: {exc}") from None


def body(payload: str, packed: bytes | None) -> bytes:
    """The event's JSON as bytes (what a sink sends) from a row's ``payload`` and ``packed`` columns."""
    return payload.encode() if packed is None else unpack_bytes(packed)


def unpack(payload: str, packed: bytes | memoryview | None) -> str:
    """The event's JSON from a row's ``payload`` and ``packed`` columns."""
    if packed is None:
        return payload
    return unpack_bytes(bytes(packed)).decode()


def unpacked(row: Mapping[str, Any]) -> dict[str, Any]:
    """An ``events`` row with its JSON in ``payload`` however it was stored (and no ``packed``)."""
    out = dict(row)
    out["payload"] = unpack(out["payload"], out.pop("packed"))
    return out


class Bodies:
    """Stored events' bytes by log seq, newest kept: when many sinks read one event (fan-out) it is
    unpacked once per process, not once per sink (a seq is never reused and an event never changes)."""

    def __init__(self, max_bytes: int = 16 << 20) -> None:
        self.max_bytes = max_bytes
        self._held: OrderedDict[int, bytes] = OrderedDict()
        self._bytes = 0

    def get(self, seq: int, payload: str, packed: bytes | None) -> bytes:
        held = self._held.get(seq)
        if held is None:
            held = body(payload, packed)
            if len(held) <= self.max_bytes // 16:
                while self._bytes + len(held) > self.max_bytes:  # the oldest first
                    # OrderedDict: a plain dict's next(iter()) walks the holes its pops left at the front
                    # (measured: a fifth of the delivery process's samples once the budget was full)
                    self._bytes -= len(self._held.popitem(last=False)[1])
                self._held[seq] = held
                self._bytes += len(held)
        return held


class Packer:
    """Builds :class:`NewEvent` rows, packed or not (``EVENTSTREAMS_PACK_EVENTS``). Safe from any thread:
    each thread compresses with a context of its own, all sharing the dictionary's tables."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        if enabled:
            _compression_dictionary()  # a missing dictionary file fails at start, not at the first publish

    def event(self, id: str, type_: str, schema_version: int | None, time: str, payload: bytes) -> NewEvent:
        if not self.enabled:
            return NewEvent(id, type_, schema_version, time, payload.decode())
        c = _local.compressor
        if c is None:
            c = _local.compressor = zstandard.ZstdCompressor(dict_data=_compression_dictionary(), write_checksum=False)
        return NewEvent(id, type_, schema_version, time, "", c.compress(payload))


__all__ = ["CURRENT", "Bodies", "Packer", "UnreadableEvent", "body", "dictionary", "unpack", "unpack_bytes", "unpacked"]
