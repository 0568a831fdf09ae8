"""Typed values: compact type specs (generator/specs/meshconfig) -> JSON schemas for values.schema.json.

Istio 1.12 took any `meshConfig` and only istiod, at runtime, turned it into a MeshConfig: a wrong type made
istiod fail, a misspelt field was silently dropped. Here MeshConfig's fields and types, written in the compact
format of generator/specs/crds (and reusing its shared types), become a draft-07 JSON schema, so `helm install`
and `helm template` refuse such values and name the key.

The schema accepts what Istio's loader (protobuf JSON, reached through YAML) accepts for a known field:
integers also as decimal strings, enums as names or numbers, null as "unset", several fields of a oneof. It
refuses unknown fields, which Istio ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from meshcharts import crds
from meshcharts.crds import Array, Enum, Map, Object, Ref, Scalar, TypeExpr
from meshcharts.errors import SpecError

# google.protobuf.Duration's JSON form: Go's time.ParseDuration syntax, e.g. 10s, 1.5m, 1h30m, 0.
DURATION_PATTERN = r"^[-+]?(0|(([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$"
_INTEGER_TEXT = r"^[-+]?[0-9]+$"
_NUMBER_TEXT = r"^([-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|NaN|-?Infinity)$"
_FILE_KEYS = ("apiVersion", "kind", "root", "types")


def _scalar(name: str) -> dict[str, Any]:
    if name in ("integer", "int32", "int64"):
        return {"type": ["integer", "string"], "pattern": _INTEGER_TEXT}
    if name in ("number", "double"):
        return {"type": ["number", "string"], "pattern": _NUMBER_TEXT}
    if name == "object":
        return {"type": "object"}
    if name in ("timestamp", "bytes"):
        return {"type": "string"}
    if name == "intOrString":
        return {"type": ["integer", "string"]}
    return {"type": name}


def _with_null(node: dict[str, Any]) -> dict[str, Any]:
    kinds = node.get("type")
    if isinstance(kinds, str):
        node["type"] = [kinds, "null"]
    elif isinstance(kinds, list) and "null" not in kinds:
        node["type"] = [*kinds, "null"]
    if "enum" in node and None not in node["enum"]:
        node["enum"] = [*node["enum"], None]
    return node


def json_schema(expr: TypeExpr, types: Mapping[str, TypeExpr]) -> dict[str, Any]:
    """The JSON schema of `expr`: closed objects, every field nullable, scalars as protobuf JSON reads them."""
    node: dict[str, Any]
    match expr:
        case Scalar(name=name):
            node = _scalar(name)
        case Enum(values=values, numbers=numbers):
            node = {"type": ["string", "integer"], "enum": [*values, *numbers]}
        case Array(item=item):
            node = {"type": "array", "items": json_schema(item, types)}
        case Map(value=value):
            node = {"type": "object", "additionalProperties": json_schema(value, types)}
        case Ref(name="Duration"):
            node = {"type": "string", "pattern": DURATION_PATTERN}
        case Ref(name=name):
            node = json_schema(types[name], types)
        case Object(fields=fields, one_of=one_of):
            node = {
                "type": "object",
                "additionalProperties": False,
                "properties": {name: _with_null(json_schema(sub, types)) for name, sub in fields},
            }
            if one_of:
                # Documented, not enforced: Istio's loader takes several fields of a oneof and keeps one.
                groups = "; set one of ".join(", ".join(group) for group in one_of)
                node["description"] = f"Set one of {groups}; Istio uses only one."
    if expr.doc:
        node["description"] = expr.doc + (f" {node['description']}" if "description" in node else "")
    return node


def load_value_types(types_dir: Path, crds_dir: Path) -> dict[str, dict[str, Any]]:
    """The JSON schema of each file's `root` type under `types_dir`, by type name; SpecError lists every problem.

    A file's types may use the shared types of `crds_dir`/_*.yaml; unused or unknown types are problems.
    """
    problems = crds.Problems()
    base = types_dir.parent
    shared_files: list[crds.SpecFile] = []
    for path in sorted(crds_dir.glob("_*.yaml")):
        where = str(path.relative_to(base)) if path.is_relative_to(base) else str(path)
        data = crds.read_spec(path, where, problems)
        if data is not None:
            file = crds.SpecFile(where=where, stem=path.stem, data=data)
            crds.parse_types_block(file, problems)
            shared_files.append(file)
    shared = {name: expr for file in shared_files for name, expr in file.types.items()}
    schemas: dict[str, dict[str, Any]] = {}
    for path in sorted(types_dir.glob("*.yaml")):
        where = str(path.relative_to(base)) if path.is_relative_to(base) else str(path)
        data = crds.read_spec(path, where, problems)
        if data is None:
            continue
        crds.check_header(data, where, "ValuesType", problems)
        crds.check_keys(data, where, _FILE_KEYS, problems)
        file = crds.SpecFile(where=where, stem=path.stem, data=data)
        crds.parse_types_block(file, problems)
        for name in file.types:
            if name in shared:
                problems.add(f"{where}:types.{name}", "shadows the shared type of that name in ../crds; rename one")
        root = data.get("root")
        if not isinstance(root, str) or root not in file.types:
            problems.add(f"{where}:root", f"must name one of this file's types (found {root!r})")
            continue
        scope = {**shared, **file.types}
        used = {root}
        pending = [file.types[root]]
        while pending:
            for ref in crds.refs(pending.pop()):
                if ref.name not in scope:
                    problems.add(ref.where, f"unknown type {ref.name!r}")
                elif ref.name not in used:
                    used.add(ref.name)
                    pending.append(scope[ref.name])
        for name in file.types:
            if name not in used:
                problems.add(f"{where}:types.{name}", f"declared but not reachable from {root}")
        crds.find_cycles({n: (f"{where}:types.{n}", e) for n, e in file.types.items()}, problems)
        if not problems.items:
            schemas[root] = json_schema(file.types[root], scope)
    if problems.items:
        raise SpecError(problems.items)
    return schemas
