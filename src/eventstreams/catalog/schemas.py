"""Compiling JSON Schemas safely.

Custom schemas come from tenants, so registration refuses what could reach
outside the document or make validation slow, and compilation resolves
nothing outside the document:

* every ``$ref``/``$dynamicRef``/``$recursiveRef`` is a fragment (``#...``) of
  the same document; ``$id`` only at the root; ``$schema`` only a known draft's
  metaschema; the retriever refuses every URI (defence in depth);
* ``pattern``/``patternProperties`` compile with the linear-time regex engine
  (no backreferences or lookaround, which need backtracking) and a small size
  limit;
* size, nesting depth and the number of patterns are capped, so compilation and
  validation are bounded; the data of an event of a custom type has at most
  ``MAX_OBJECT_PROPERTIES`` properties per object.

jsonschema-rs holds the GIL while it compiles and validates (measured), so a
worker thread would not free the event loop: the work is bounded instead.
Built-in (Twilio) schemas are trusted and keep the default fast path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import orjson
from jsonschema import SchemaError
from jsonschema.validators import validator_for as py_validator_for

MAX_SCHEMA_BYTES = 64 * 1024
MAX_DEPTH = 64
MAX_PATTERNS = 64
MAX_OBJECT_PROPERTIES = 1000
REGEX_SIZE_LIMIT = 1 << 20  # compiled bytes per pattern: keeps compiling each one to milliseconds

#: The metaschemas a custom schema may declare with ``$schema`` (the drafts jsonschema-rs knows).
DIALECTS = frozenset(
    uri + tail
    for uri in (
        "http://json-schema.org/draft-04/schema",
        "http://json-schema.org/draft-06/schema",
        "http://json-schema.org/draft-07/schema",
        "https://json-schema.org/draft/2019-09/schema",
        "https://json-schema.org/draft/2020-12/schema",
    )
    for tail in ("", "#")
)
_REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})  # values here are data, not schemas


class SchemaRejected(ValueError):
    """A custom schema that may not be registered (the message names the problem)."""


def _refuse(uri: str) -> Any:
    raise SchemaRejected(f"external reference {uri} is not allowed")


def _walk(doc: Any) -> Iterator[tuple[Any, int, bool, bool]]:
    """(node, depth, is the root, inside a data keyword) for every node, without recursion."""
    stack: list[tuple[Any, int, bool]] = [(doc, 1, False)]
    while stack:
        node, depth, in_data = stack.pop()
        yield node, depth, depth == 1, in_data
        if isinstance(node, dict):
            stack.extend((v, depth + 1, in_data or k in _DATA_KEYWORDS) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, depth + 1, in_data) for v in node)


def check_custom(doc: Any) -> None:
    """Refuse a custom schema that could fetch anything or make validation slow."""
    if not isinstance(doc, dict):
        raise SchemaRejected("Schema must be a JSON object (a JSON Schema document)")
    patterns = 0
    for node, depth, root, in_data in _walk(doc):
        if depth > MAX_DEPTH and isinstance(node, dict | list):  # levels of nesting: scalars add none
            raise SchemaRejected(f"Schema is nested deeper than {MAX_DEPTH} levels")
        if not isinstance(node, dict) or in_data:
            continue
        for kw in _REF_KEYWORDS:
            ref = node.get(kw)
            if isinstance(ref, str) and not ref.startswith("#"):
                raise SchemaRejected(
                    f"{kw} {ref[:100]!r} points outside the schema: only references within the document"
                    " ('#/...') are allowed"
                )
        sub_id = node.get("$id")
        if isinstance(sub_id, str) and not root and not sub_id.startswith("#"):  # "#name": an anchor (draft 6/7)
            raise SchemaRejected("$id is only allowed at the root of a schema (it would change the base URI)")
        dialect = node.get("$schema")
        if isinstance(dialect, str) and dialect not in DIALECTS:
            raise SchemaRejected(
                f"$schema {dialect[:100]!r} is not a known draft (use draft-04, -06, -07, 2019-09 or 2020-12)"
            )
        if isinstance(node.get("pattern"), str):
            patterns += 1
        if isinstance(node.get("patternProperties"), dict):
            patterns += len(node["patternProperties"])
        if patterns > MAX_PATTERNS:
            raise SchemaRejected(f"Schema has more than {MAX_PATTERNS} patterns")
    size = len(orjson.dumps(doc))
    if size > MAX_SCHEMA_BYTES:
        raise SchemaRejected(f"Schema is larger than {MAX_SCHEMA_BYTES} bytes ({size})")
    try:
        py_validator_for(doc).check_schema(doc)  # clear messages; reads only the metaschemas it ships
    except SchemaError as exc:
        raise SchemaRejected(f"Schema is not a valid JSON Schema: {exc.message}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def compile_custom(doc: dict[str, Any]) -> Any:
    """A validator for a tenant's schema (already passed ``check_custom``); refuses what it cannot compile."""
    try:
        return jsonschema_rs.validator_for(
            doc,
            retriever=_refuse,
            pattern_options=jsonschema_rs.RegexOptions(size_limit=REGEX_SIZE_LIMIT, dfa_size_limit=REGEX_SIZE_LIMIT),
        )
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        # e.g. a pattern using lookaround or a backreference ('... is not a "regex"'), an unresolvable #ref
        raise SchemaRejected(f"Schema could not be compiled: {_first_line(exc)}") from None


def compile_builtin(doc: dict[str, Any]) -> Any:
    return jsonschema_rs.validator_for(doc, retriever=_refuse)


def too_wide(data: Any, limit: int = MAX_OBJECT_PROPERTIES) -> bool:
    """Whether some object in ``data`` has more than ``limit`` properties."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if len(node) > limit:
                return True
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
    return False
