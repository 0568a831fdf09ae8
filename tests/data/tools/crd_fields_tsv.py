"""Tabulate the schema field paths of CustomResourceDefinitions as
`crd<TAB>version<TAB>path<TAB>type<TAB>constraints`.

Usage: python crd_fields_tsv.py CRD_YAML [CRD_YAML ...] > crd-fields.tsv

Reads CRD manifests (another project's, kept outside this repository) and writes facts: one row per
schema node below each version's top-level properties, `x[]` for array items and `x{}` for map
values; constraints are enum=a|b, format=F, nullable, preserve-unknown-fields, oneOf/anyOf. A CRD whose
spec is free-form (IstioOperator) has nothing to tabulate and is left out.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

FREE_FORM = {"istiooperators.install.istio.io"}


def flatten(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, str, str]]:
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
    yield path, node.get("type", "<no type>"), ";".join(constraints)
    for name, sub in (node.get("properties") or {}).items():
        yield from flatten(sub, f"{path}.{name}")
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
                top = version["schema"]["openAPIV3Schema"].get("properties") or {}
                for field in sorted(top):
                    for path, type_, constraints in flatten(top[field], field):
                        print(f"{name}\t{version['name']}\t{path}\t{type_}\t{constraints}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
