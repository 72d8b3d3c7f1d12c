"""Copy a `codex app-server generate-json-schema` output tree, dropping documentation prose.

Usage: python tests/schema/strip_descriptions.py SRC_DIR DEST_DIR

Only the `description` *keyword* of a schema object is dropped. A property that is itself named
`description` (a key of a `properties` map, e.g. Model.description) is part of the wire contract and
is kept. The walk knows which JSON Schema keywords hold sub-schemas and which hold data, and refuses
keywords it does not know, so that a future generator cannot make it strip something silently.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# Keywords whose value is a map of name -> sub-schema: the names are data and are never stripped.
_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "definitions", "$defs", "dependencies"}
)
# Keywords whose value is a sub-schema or a list of sub-schemas.
_SCHEMA_VALUES = frozenset(
    {
        "items",
        "additionalItems",
        "additionalProperties",
        "contains",
        "propertyNames",
        "not",
        "if",
        "then",
        "else",
        "allOf",
        "anyOf",
        "oneOf",
    }
)
# Keywords whose value is copied verbatim (instance data, or scalars).
_DATA = frozenset(
    {
        "$schema",
        "$id",
        "$ref",
        "$comment",
        "title",
        "type",
        "enum",
        "const",
        "default",
        "examples",
        "format",
        "required",
        "readOnly",
        "writeOnly",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "contentEncoding",
        "contentMediaType",
    }
)
_KEYWORDS = _SCHEMA_MAPS | _SCHEMA_VALUES | _DATA | {"description"}


def strip_schema(schema: Any, where: str = "#") -> Any:
    """Return a copy of `schema` without `description` annotations."""
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, dict):
        raise ValueError(f"{where}: expected a schema, got {type(schema).__name__}")
    out: dict[str, Any] = {}
    for key, value in schema.items():
        here = f"{where}/{key}"
        if key == "description":
            if not isinstance(value, str):
                raise ValueError(f"{here}: non-string description keyword")
            continue
        if key in _SCHEMA_MAPS:
            out[key] = _strip_map(value, here, allow_namespaces=key == "definitions")
        elif key in _SCHEMA_VALUES:
            if isinstance(value, list):
                out[key] = [strip_schema(v, f"{here}/{i}") for i, v in enumerate(value)]
            else:
                out[key] = strip_schema(value, here)
        elif key in _DATA:
            out[key] = value
        else:
            raise ValueError(f"{here}: unknown keyword; teach strip_descriptions.py about it")
    return out


def _strip_map(mapping: Any, where: str, *, allow_namespaces: bool) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        raise ValueError(f"{where}: expected an object")
    out: dict[str, Any] = {}
    for name, sub in mapping.items():
        here = f"{where}/{name}"
        # The bundle nests the v2 types under definitions/v2: a namespace, not a schema.
        if allow_namespaces and isinstance(sub, dict) and sub and not (set(sub) & _KEYWORDS):
            out[name] = _strip_map(sub, here, allow_namespaces=True)
        else:
            out[name] = strip_schema(sub, here)
    return out


def dump(schema: Any) -> str:
    # indent=1 keeps the files diffable after a regeneration while staying compact.
    return json.dumps(schema, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, dest = Path(argv[1]), Path(argv[2])
    files = sorted(p for p in src.rglob("*.json") if p.is_file())
    if not files:
        print(f"no .json files under {src}", file=sys.stderr)
        return 1
    for path in files:
        rel = path.relative_to(src)
        stripped = strip_schema(json.loads(path.read_text(encoding="utf-8")), f"{rel}#")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dump(stripped), encoding="utf-8")
    print(f"wrote {len(files)} schema files to {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
