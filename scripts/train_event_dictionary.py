"""Train the zstd dictionary that event payloads are stored with (store/packing.py).

    .venv/bin/python scripts/train_event_dictionary.py

Samples are the catalogue's own example events (every type, latest schema version) in the envelope the
publish path stores, with their SIDs, ids and times varied by a seeded generator, so that the dictionary
holds what every stored event repeats (the envelope's keys, each schema's keys, Twilio's URLs) and none
of any tenant's data. Deterministic: the same catalogue gives the same file. A new dictionary gets a new
id (DICT_ID below, and store/packing.py's table of ids); rows packed with an older one stay readable as
long as its file is kept.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import orjson
import zstandard

from eventstreams.catalog import builtin_examples, builtin_types, schema_url

DICT_ID = 0x45530001  # "ES" + 1: outside zstd's reserved range (below 32768)
SIZE = 16 * 1024
OUT = Path(__file__).resolve().parents[1] / "src/eventstreams/store/data/events-1.zdict"
SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")


def vary(value: object, rng: random.Random) -> object:
    if isinstance(value, dict):
        return {k: vary(v, rng) for k, v in value.items()}
    if isinstance(value, list):
        return [vary(v, rng) for v in value]
    if isinstance(value, str) and SID.match(value):
        return f"{value[:2]}{rng.getrandbits(128):032x}"
    return value


def samples(rng: random.Random, per_type: int = 24) -> list[bytes]:
    examples = builtin_examples()
    out = []
    for t in builtin_types():
        versions = examples.get(t.schema_id)
        if not versions:
            continue
        version = max(versions)
        for _ in range(per_type):
            event = {
                "specversion": "1.0",
                "type": t.type,
                "source": f"/2010-04-01/Accounts/AC{rng.getrandbits(128):032x}",
                "id": f"EZ{rng.getrandbits(128):032x}",
                "time": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
                        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z",
                "datacontenttype": "application/json",
                "dataschema": schema_url("http://127.0.0.1:8080", True, t.schema_id, version),
                "data": vary(versions[version], rng),
            }  # fmt: skip
            out.append(orjson.dumps(event))
    return out


def main() -> int:
    data = samples(random.Random(13))
    trained = zstandard.train_dictionary(SIZE, data, dict_id=DICT_ID, level=3, threads=0)
    OUT.write_bytes(trained.as_bytes())
    print(f"{OUT}: {len(trained.as_bytes())} bytes from {len(data)} samples, id {trained.dict_id():#x}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
