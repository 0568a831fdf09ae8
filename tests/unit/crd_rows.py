"""The CRD field rows of a generated tree and Istio's reference tables, flattened so two can be compared."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.data.tools.crd_fields_tsv import flatten

FREE_FORM_ONLY = {"istiooperators.install.istio.io"}  # absent from the fields table: spec is free-form


Row = tuple[str, str, str]  # path, type, constraints


def generated_rows(crds: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str, str], tuple[str, str]]:
    rows = {}
    for name, crd in crds.items():
        for version in crd["spec"]["versions"]:
            root = version["schema"]["openAPIV3Schema"]
            top = root["properties"]
            needed = set(root.get("required") or [])
            for field in sorted(top):
                for path, type_, constraints in flatten(top[field], field, field in needed):
                    rows[(name, version["name"], path)] = (type_, constraints)
    return rows


def differences(
    expected: Mapping[tuple[str, str, str], tuple[str, str]],
    actual: Mapping[tuple[str, str, str], tuple[str, str]],
) -> list[str]:
    lines = []
    for key in sorted(expected.keys() | actual.keys()):
        where = " ".join(key)
        if key not in actual:
            lines.append(f"missing   {where}: {' '.join(expected[key])}")
        elif key not in expected:
            lines.append(f"extra     {where}: {' '.join(actual[key])}")
        elif expected[key] != actual[key]:
            lines.append(f"differs   {where}: reference {expected[key]}, generated {actual[key]}")
    return lines


def crd_facts(crd: Mapping[str, Any], keep: bool) -> dict[str, str]:
    """A rendered CRD in the notation of istio-1.12-crds.tsv."""
    spec = crd["spec"]
    names = spec["names"]
    versions = spec["versions"]
    columns = versions[0].get("additionalPrinterColumns", [])
    subresources = {key for version in versions for key in version.get("subresources", {})}
    return {
        "crd": crd["metadata"]["name"],
        "group": spec["group"],
        "kind": names["kind"],
        "plural": names["plural"],
        "scope": spec["scope"],
        "versions(served,storage*)": ",".join(
            v["name"] + ("*" if v["storage"] else "") for v in versions if v["served"]
        ),
        "shortNames": ",".join(names.get("shortNames", [])),
        "categories": ",".join(names.get("categories", [])),
        "printerColumns(first version)": ";".join(f"{c['name']}:{c['type']}:{c['jsonPath']}" for c in columns),
        "subresources": ",".join(sorted(subresources)),
        "resource-policy keep": "yes" if keep else "no",
    }
