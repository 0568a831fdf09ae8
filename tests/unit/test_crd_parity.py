"""The generated CRDs against Istio 1.12's, as tabulated in tests/data (facts, not Istio's YAML).

Rows are compared whole and every difference is listed, so one run shows all the drift at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from meshcharts.crds import load_api_types, render_crd
from tests.conftest import data_table

ROOT = Path(__file__).resolve().parents[2]
CRDS_DIR = ROOT / "generator" / "specs" / "crds"
FREE_FORM_ONLY = {"istiooperators.install.istio.io"}  # absent from the fields table: spec is free-form

Row = tuple[str, str, str]  # path, type, constraints


@pytest.fixture(scope="module")
def crds() -> dict[str, dict[str, Any]]:
    return {api.name: render_crd(api) for api in load_api_types(CRDS_DIR)}


def flatten(node: Mapping[str, Any], path: str) -> Iterator[Row]:
    """One row per schema node, in the reference table's notation: `x[]` array items, `x{}` map values."""
    constraints = []
    if "enum" in node:
        constraints.append("enum=" + "|".join(node["enum"]))
    if "format" in node:
        constraints.append(f"format={node['format']}")
    if node.get("nullable"):
        constraints.append("nullable")
    if node.get("x-kubernetes-preserve-unknown-fields"):
        constraints.append("preserve-unknown-fields")
    if "oneOf" in node or "anyOf" in node:
        constraints.append("oneOf/anyOf")
    yield path, node.get("type", "<no type>"), ";".join(constraints)
    for name, sub in node.get("properties", {}).items():
        yield from flatten(sub, f"{path}.{name}")
    if "items" in node:
        yield from flatten(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from flatten(node["additionalProperties"], f"{path}{{}}")


def generated_rows(crds: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str, str], tuple[str, str]]:
    rows = {}
    for name, crd in crds.items():
        for version in crd["spec"]["versions"]:
            top = version["schema"]["openAPIV3Schema"]["properties"]
            for field in sorted(top):
                for path, type_, constraints in flatten(top[field], field):
                    rows[(name, version["name"], path)] = (type_, constraints)
    return rows


def _differences(
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


def test_every_field_path_type_enum_and_format_matches_istio_1_12(crds: dict[str, dict[str, Any]]) -> None:
    reference = {
        (row["crd"], row["version"], row["path"]): (row["type"], row["constraints"])
        for row in data_table("istio-1.12-crd-fields.tsv")
    }
    assert len(reference) == 1352
    generated = {key: value for key, value in generated_rows(crds).items() if key[0] not in FREE_FORM_ONLY}
    differences = _differences(reference, generated)
    assert not differences, f"{len(differences)} difference(s) from the reference:\n" + "\n".join(differences)


def test_istiooperator_spec_and_status_are_free_form(crds: dict[str, dict[str, Any]]) -> None:
    rows = {key: value for key, value in generated_rows(crds).items() if key[0] in FREE_FORM_ONLY}
    assert rows == {
        ("istiooperators.install.istio.io", "v1alpha1", "spec"): ("object", "preserve-unknown-fields"),
        ("istiooperators.install.istio.io", "v1alpha1", "status"): ("object", "preserve-unknown-fields"),
    }


def _crd_facts(crd: Mapping[str, Any], keep: bool) -> dict[str, str]:
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


def test_names_scope_versions_columns_subresources_and_keep_match_istio_1_12() -> None:
    reference = {row["crd"]: row for row in data_table("istio-1.12-crds.tsv")}
    apis = load_api_types(CRDS_DIR)
    generated = {api.name: _crd_facts(render_crd(api), api.keep) for api in apis}
    differences = [f"missing CRD {name}" for name in sorted(reference.keys() - generated.keys())]
    differences += [f"extra CRD {name}" for name in sorted(generated.keys() - reference.keys())]
    for name in sorted(reference.keys() & generated.keys()):
        for column, value in reference[name].items():
            if generated[name][column] != value:
                differences.append(f"{name} {column}: reference {value!r}, generated {generated[name][column]!r}")
    assert len(reference) == 14
    assert not differences, f"{len(differences)} difference(s):\n" + "\n".join(differences)


def test_every_version_serves_the_same_schema_with_its_own_columns(crds: dict[str, dict[str, Any]]) -> None:
    for name, crd in crds.items():
        schemas = [v["schema"] for v in crd["spec"]["versions"]]
        assert all(schema == schemas[0] for schema in schemas), name
