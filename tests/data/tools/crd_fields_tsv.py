"""Tabulate the schema field paths of CustomResourceDefinitions as
`crd<TAB>version<TAB>path<TAB>type<TAB>constraints`.

Usage: python crd_fields_tsv.py CRD_YAML [CRD_YAML ...] > crd-fields.tsv

Reads CRD manifests (another project's, kept outside this repository) and writes facts: one row per
schema node below each version's top-level properties, `x[]` for array items and `x{}` for map
values; constraints are enum=a|b, format=F, nullable, preserve-unknown-fields, oneOf/anyOf, then, only
where the schema has them (Istio 1.12's and 1.13's have none, so their tables are unchanged): required
(the field is in its parent's `required` list), minimum=N, maximum=N, exclusiveMinimum=N,
exclusiveMaximum=N, minLength=N, maxLength=N, pattern=REGEX, minItems=N, maxItems=N, minProperties=N,
maxProperties=N, list-type=T, list-map-keys=a|b, allOf, int-or-string, and validations=N, the number
of x-kubernetes-validations (CEL) rules at that path (their rules and messages are not copied). A CRD
whose spec is free-form (IstioOperator) has nothing to tabulate and is left out.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

FREE_FORM = {"istiooperators.install.istio.io"}
# Numeric keywords, written as keyword=N in this order (bounds, then the pattern, then sizes).
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength")
SIZES = ("minItems", "maxItems", "minProperties", "maxProperties")


def validation_keywords(node: Mapping[str, Any], required: bool) -> list[str]:
    """The keywords of newer schemas (none occur in Istio 1.12's or 1.13's CRDs), as facts."""
    out = ["required"] if required else []
    out.extend(f"{key}={json.dumps(node[key])}" for key in BOUNDS if key in node)
    if "pattern" in node:
        out.append(f"pattern={node['pattern']}")
    out.extend(f"{key}={json.dumps(node[key])}" for key in SIZES if key in node)
    if "x-kubernetes-list-type" in node:
        out.append(f"list-type={node['x-kubernetes-list-type']}")
    if "x-kubernetes-list-map-keys" in node:
        out.append("list-map-keys=" + "|".join(node["x-kubernetes-list-map-keys"]))
    if "allOf" in node:
        out.append("allOf")
    if node.get("x-kubernetes-int-or-string"):
        out.append("int-or-string")
    if node.get("x-kubernetes-validations"):
        out.append(f"validations={len(node['x-kubernetes-validations'])}")
    return out


def flatten(node: Mapping[str, Any], path: str, required: bool = False) -> Iterator[tuple[str, str, str]]:
    constraints = []
    if "enum" in node:
        constraints.append("enum=" + "|".join(str(e) for e in node["enum"]))
    if "format" in node:
        constraints.append(f"format={node['format']}")
    if node.get("nullable"):
        constraints.append("nullable")
    if node.get("x-kubernetes-preserve-unknown-fields"):
        constraints.append("preserve-unknown-fields")
    if "oneOf" in node or "anyOf" in node:
        constraints.append("oneOf/anyOf")
    constraints.extend(validation_keywords(node, required))
    yield path, node.get("type", "<no type>"), ";".join(constraints)
    needed = set(node.get("required") or [])
    for name, sub in (node.get("properties") or {}).items():
        yield from flatten(sub, f"{path}.{name}", name in needed)
    if isinstance(node.get("items"), dict):
        yield from flatten(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from flatten(node["additionalProperties"], f"{path}{{}}")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    print("crd\tversion\tpath\ttype\tconstraints")
    for arg in argv:
        for doc in yaml.safe_load_all(Path(arg).read_text(encoding="utf-8")):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            name = doc["metadata"]["name"]
            if name in FREE_FORM:
                continue
            for version in doc["spec"]["versions"]:
                root = version["schema"]["openAPIV3Schema"]
                top = root.get("properties") or {}
                needed = set(root.get("required") or [])
                for field in sorted(top):
                    for path, type_, constraints in flatten(top[field], field, field in needed):
                        print(f"{name}\t{version['name']}\t{path}\t{type_}\t{constraints}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
