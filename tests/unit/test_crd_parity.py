"""The generated CRDs against Istio 1.12's, as tabulated in tests/data (facts, not Istio's YAML).

Rows are compared whole and every difference is listed, so one run shows all the drift at once.
"""

from __future__ import annotations

from typing import Any

import pytest

from meshcharts.crds import load_api_types, render_crd
from tests import REPO as ROOT
from tests.conftest import data_table
from tests.unit.crd_rows import FREE_FORM_ONLY, crd_facts, differences, generated_rows

CRDS_DIR = ROOT / "generator" / "specs" / "crds"


@pytest.fixture(scope="module")
def crds() -> dict[str, dict[str, Any]]:
    return {api.name: render_crd(api) for api in load_api_types(CRDS_DIR)}


def test_every_field_path_type_enum_and_format_matches_istio_1_12(crds: dict[str, dict[str, Any]]) -> None:
    reference = {
        (row["crd"], row["version"], row["path"]): (row["type"], row["constraints"])
        for row in data_table("istio-1.12-crd-fields.tsv")
    }
    assert len(reference) == 1352
    generated = {key: value for key, value in generated_rows(crds).items() if key[0] not in FREE_FORM_ONLY}
    drift = differences(reference, generated)
    assert not drift, f"{len(drift)} difference(s) from the reference:\n" + "\n".join(drift)


def test_istiooperator_spec_and_status_are_free_form(crds: dict[str, dict[str, Any]]) -> None:
    rows = {key: value for key, value in generated_rows(crds).items() if key[0] in FREE_FORM_ONLY}
    assert rows == {
        ("istiooperators.install.istio.io", "v1alpha1", "spec"): ("object", "preserve-unknown-fields"),
        ("istiooperators.install.istio.io", "v1alpha1", "status"): ("object", "preserve-unknown-fields"),
    }


def test_names_scope_versions_columns_subresources_and_keep_match_istio_1_12() -> None:
    reference = {row["crd"]: row for row in data_table("istio-1.12-crds.tsv")}
    apis = load_api_types(CRDS_DIR)
    generated = {api.name: crd_facts(render_crd(api), api.keep) for api in apis}
    found = [f"missing CRD {name}" for name in sorted(reference.keys() - generated.keys())]
    found += [f"extra CRD {name}" for name in sorted(generated.keys() - reference.keys())]
    for name in sorted(reference.keys() & generated.keys()):
        for column, value in reference[name].items():
            if generated[name][column] != value:
                found.append(f"{name} {column}: reference {value!r}, generated {generated[name][column]!r}")
    assert len(reference) == 14
    assert not found, f"{len(found)} difference(s):\n" + "\n".join(found)


def test_every_version_serves_the_same_schema_with_its_own_columns(crds: dict[str, dict[str, Any]]) -> None:
    for name, crd in crds.items():
        schemas = [v["schema"] for v in crd["spec"]["versions"]]
        assert all(schema == schemas[0] for schema in schemas), name
