"""Regenerates src/eventstreams/api/twilio_api_v2010_sandbox.json from Twilio's OpenAPI
(twilio-oai spec/json/twilio_api_v2010.json, or the subset in ../shared/specs): only the
operations the sandbox routes (sandbox/api.py), and the component schemas they reference.
Everything kept is Twilio's text, unchanged; the Accounts paths belong to the accounts surface.

    python scripts/trim_twilio_v2010.py SOURCE.json > src/eventstreams/api/twilio_api_v2010_sandbox.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

BASE = "/2010-04-01/Accounts/{AccountSid}"
KEEP = {
    f"{BASE}/Messages.json": ("get", "post"),
    f"{BASE}/Messages/{{Sid}}.json": ("get", "post", "delete"),
    f"{BASE}/Calls.json": ("get", "post"),
    f"{BASE}/Calls/{{Sid}}.json": ("get", "delete"),
    f"{BASE}/Conferences.json": ("get",),
    f"{BASE}/Conferences/{{Sid}}.json": ("get",),
    f"{BASE}/Transcriptions.json": ("get",),
    f"{BASE}/Transcriptions/{{Sid}}.json": ("get", "delete"),
    f"{BASE}/Addresses.json": ("get", "post"),
    f"{BASE}/Addresses/{{Sid}}.json": ("get", "delete"),
}
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node))
    return set()


def trim(doc: dict[str, Any]) -> dict[str, Any]:
    paths = {}
    for path, methods in KEEP.items():
        item = doc["paths"][path]
        # the path-level servers entry pins api.twilio.com; the served document names this server
        paths[path] = {k: v for k, v in item.items() if (k not in METHODS or k in methods) and k != "servers"}
    schemas = doc["components"]["schemas"]
    keep: set[str] = set()
    todo = refs(paths)
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo |= refs(schemas[name])
    return {
        "openapi": doc["openapi"],
        "info": doc["info"],
        "x-trimmed": "Twilio's twilio_api_v2010.json, only what the eventstreams sandbox serves "
        "(scripts/trim_twilio_v2010.py)",
        "paths": paths,
        "components": {"schemas": {k: schemas[k] for k in sorted(keep)}},
    }


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        json.dump(trim(json.load(f)), sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
