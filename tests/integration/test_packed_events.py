"""Events packed at rest (store/packing.py) on both backends: a published event is stored as a zstd frame
with the catalogue's dictionary and comes back byte for byte to the dispatcher, the console and the events
warehouse; a log that holds plain rows (written before packing, or with it off) and packed ones reads as one."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard

from eventstreams.catalog import builtin_examples
from eventstreams.runtime import Runtime, build_runtime
from eventstreams.store.packing import CURRENT, Bodies, Packer, body, unpack, unpack_bytes
from tests.conftest import make_settings
from tests.unit.conftest import new_principal

TYPE = "com.twilio.messaging.message.delivered"


def _raw(i: int) -> dict[str, Any]:
    examples = builtin_examples()["Messaging.MessageStatus"]
    data = dict(examples[max(examples)])
    data["body"] = f"Your order {i} is on its way: track it at https://example.com/t/{i:08d}"
    return {"specversion": "1.0", "type": TYPE, "source": "/test", "id": f"EVpacked{i:04d}",
            "time": "2026-12-03T10:00:00.000Z", "data": data}  # fmt: skip


async def _sink(rt: Runtime, account: Any) -> str:
    cfg = json.dumps({"destination": "http://127.0.0.1:9/x", "method": "POST", "batch_events": False})
    sink = await rt.control.create_sink(account, "packed", "webhook", cfg)
    await rt.control.create_subscription(account, "s", sink.row.sid, [json.dumps({"type": TYPE})])
    return sink.row.sid


async def _rows(rt: Runtime, account_sid: str) -> list[dict[str, Any]]:
    return await rt.store.db.run(
        lambda tx: tx.all("SELECT id, payload, packed FROM events WHERE account_sid = :a ORDER BY seq", a=account_sid)
    )


def _body(d: Any) -> bytes:
    return body(d.payload, d.packed)


async def test_a_published_event_is_packed_and_read_back_byte_for_byte(rt: Runtime) -> None:
    a = await new_principal(rt)
    sink = await _sink(rt, a)
    result = await rt.publisher.publish(a.account.sid, a.catalog_owner, [_raw(i) for i in range(3)])
    assert result.accepted == ["EVpacked0000", "EVpacked0001", "EVpacked0002"]

    rows = await _rows(rt, a.account.sid)
    for row in rows:
        assert row["payload"] == "" and row["packed"] is not None
        packed = bytes(row["packed"])
        assert zstandard.get_frame_parameters(packed).dict_id == CURRENT
        stored = unpack_bytes(packed)
        # exactly what was sent plus what publishing adds, and at most half its size at rest
        event = orjson.loads(stored)
        i = int(row["id"].removeprefix("EVpacked"))
        assert event["dataschema"].startswith("https://events-schemas.twilio.com/Messaging.MessageStatus/")
        assert event == {**_raw(i), "datacontenttype": "application/json", "dataschema": event["dataschema"]}
        assert len(packed) * 2 < len(stored)

    leased = await rt.store.deliveries.lease(sink, 2_000, 10, "w:1", 60_000)
    assert [d.event_id for d in leased] == ["EVpacked0000", "EVpacked0001", "EVpacked0002"]
    assert [_body(d) for d in leased] == [unpack_bytes(bytes(r["packed"])) for r in rows]

    # the console's reads and the events warehouse's see the JSON, whatever the row holds
    one = await rt.store.delivery_log.event(a.account.sid, "EVpacked0001")
    assert one is not None and "packed" not in one and orjson.loads(one["payload"])["id"] == "EVpacked0001"
    recent = await rt.store.delivery_log.recent_events(a.account.sid, 0, 10)
    assert [orjson.loads(r["payload"])["id"] for r in recent] == ["EVpacked0000", "EVpacked0001", "EVpacked0002"]
    later = await rt.store.events_warehouse.events_after(a.account.sid, 0, 1 << 62, 10)
    assert [orjson.loads(r["payload"])["id"] for r in later] == ["EVpacked0000", "EVpacked0001", "EVpacked0002"]


async def test_plain_and_packed_rows_read_as_one_log(database: str, tmp_path: Path) -> None:
    """A database written with packing off (or before it existed) keeps its rows as they are; turned on,
    new rows are packed, and a sink's cursor reads both kinds in order."""
    plain = await build_runtime(make_settings(database, tmp_path, delivery=False, pack_events=False))
    try:
        a = await new_principal(plain)
        sink = await _sink(plain, a)
        await plain.publisher.publish(a.account.sid, a.catalog_owner, [_raw(0), _raw(1)])
    finally:
        await plain.close()
    packed = await build_runtime(make_settings(database, tmp_path, delivery=False, pack_events=True))
    try:
        await packed.publisher.publish(a.account.sid, a.catalog_owner, [_raw(2), _raw(3)])
        rows = await _rows(packed, a.account.sid)
        assert [r["packed"] is None for r in rows] == [True, True, False, False]
        assert [orjson.loads(r["payload"])["id"] for r in rows[:2]] == ["EVpacked0000", "EVpacked0001"]
        leased = await packed.store.deliveries.lease(sink, 2_000, 10, "w:1", 60_000)
        assert [orjson.loads(_body(d))["id"] for d in leased] == [f"EVpacked{i:04d}" for i in range(4)]
        assert [_body(d) for d in leased] == [unpack(r["payload"], r["packed"]).encode() for r in rows]
        recent = await packed.store.delivery_log.recent_events(a.account.sid, 0, 10)
        assert [orjson.loads(r["payload"])["id"] for r in recent] == [f"EVpacked{i:04d}" for i in range(4)]
    finally:
        await packed.close()


def test_a_frame_names_its_dictionary_and_an_unknown_one_is_refused() -> None:
    doc = orjson.dumps(_raw(7))
    event = Packer(True).event("EVpacked0007", TYPE, 1, "2026-12-03T10:00:00.000Z", doc)
    assert event.payload == "" and event.packed is not None and unpack_bytes(event.packed) == doc
    off = Packer(False).event("EVpacked0007", TYPE, 1, "2026-12-03T10:00:00.000Z", doc)
    assert off.packed is None and off.payload == doc.decode()
    # a frame packed without a dictionary reads too; one naming a dictionary this build lacks is an error
    assert unpack("", zstandard.ZstdCompressor().compress(doc)) == doc.decode()
    foreign = zstandard.ZstdCompressor(dict_data=zstandard.train_dictionary(4096, [doc + b"%d" % i for i in range(200)],
                                                                            dict_id=0x45539999)).compress(doc)  # fmt: skip
    with pytest.raises(ValueError, match="unknown dictionary"):
        unpack("", foreign)


def test_bodies_unpack_an_event_once_and_hold_at_most_their_budget() -> None:
    doc = orjson.dumps(_raw(1))
    packed = Packer(True).event("EVpacked0001", TYPE, 1, "2026-12-03T10:00:00.000Z", doc).packed
    assert packed is not None
    bodies = Bodies(max_bytes=len(doc) * 16)
    first = bodies.get(1, "", packed)
    assert first == doc and bodies.get(1, "", packed) is first  # the second sink gets the same bytes
    assert bodies.get(2, '{"plain":true}', None) == b'{"plain":true}'
    for seq in range(3, 40):  # past the budget the oldest go first
        bodies.get(seq, "", packed)
    assert bodies.get(1, "", packed) is not first and bodies.get(1, "", packed) == doc
    held = bodies._held
    assert bodies._bytes == sum(map(len, held.values())) <= len(doc) * 16 and 39 in held and 3 not in held
    huge = b'{"x":"' + b"y" * (len(doc) * 2) + b'"}'  # over a sixteenth of the budget: returned, not held
    assert bodies.get(99, huge.decode(), None) == huge and 99 not in held


def test_packing_from_many_threads_and_packers_at_once() -> None:
    """The tracking API packs inside its transaction, on PostgreSQL's pool threads; compress releases the
    GIL, so a compressor shared between threads would corrupt frames or crash the process."""
    docs = [orjson.dumps(_raw(i)) for i in range(40)]
    shared = Packer(True)

    def work(k: int) -> list[bool]:
        mine = Packer(True)  # built while the others compress: the dictionary's tables are built once
        out = []
        for n in range(300):
            doc = docs[(k + n) % len(docs)]
            packer = shared if n % 2 else mine
            packed = packer.event("EVpacked", TYPE, 1, "2026-12-03T10:00:00.000Z", doc).packed
            out.append(packed is not None and unpack_bytes(packed) == doc)
        return out

    with ThreadPoolExecutor(6) as pool:
        results = [ok for oks in pool.map(work, range(12)) for ok in oks]
    assert len(results) == 12 * 300 and all(results)
