"""The 1.13 line's CRDs (generator/specs/crds with generator/lines/1.13's `crds` changes) against Istio
1.13.0's, as tabulated in tests/data: every field path, type and constraint, and every CRD's names,
versions, columns and keep policy. Also: a line's CRD changes are checked, and never remove a field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshcharts import spec
from meshcharts.crds import APIType, LinePatch, load_api_types, render_crd
from meshcharts.errors import SpecError
from meshcharts.paths import Layout
from tests import REPO as ROOT
from tests.conftest import data_table
from tests.unit.crd_rows import FREE_FORM_ONLY, crd_facts, differences, generated_rows

CRDS_DIR = ROOT / "generator" / "specs" / "crds"


@pytest.fixture(scope="module")
def apis() -> list[APIType]:
    return load_api_types(CRDS_DIR, spec.line_crd_patch(Layout(ROOT, "1.13")))


def test_every_field_path_type_enum_and_format_matches_istio_1_13(apis: list[APIType]) -> None:
    reference = {
        (row["crd"], row["version"], row["path"]): (row["type"], row["constraints"])
        for row in data_table("istio-1.13-crd-fields.tsv")
    }
    assert len(reference) == 1437
    crds = {api.name: render_crd(api) for api in apis}
    generated = {key: value for key, value in generated_rows(crds).items() if key[0] not in FREE_FORM_ONLY}
    drift = differences(reference, generated)
    assert not drift, f"{len(drift)} difference(s) from the reference:\n" + "\n".join(drift)
    print(f"\n1.13 CRD fields: {len(reference)} of {len(reference)} Istio 1.13.0 field paths match")


def test_names_versions_columns_and_keep_match_istio_1_13(apis: list[APIType]) -> None:
    reference = {row["crd"]: row for row in data_table("istio-1.13-crds.tsv")}
    generated = {api.name: crd_facts(render_crd(api), api.keep) for api in apis}
    assert sorted(generated) == sorted(reference)
    differences = [
        f"{name} {column}: reference {value!r}, generated {generated[name][column]!r}"
        for name in sorted(reference)
        for column, value in reference[name].items()
        if generated[name][column] != value
    ]
    assert len(reference) == 15
    assert not differences, "\n".join(differences)


def test_the_base_line_is_untouched_by_the_patch() -> None:
    names = {api.name for api in load_api_types(CRDS_DIR)}
    assert "proxyconfigs.networking.istio.io" not in names and len(names) == 14


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sidecar": {"egress[].hosts": "string"}}, "already a field of the base spec"),
        ({"sidecar": {"nowhere[].tls": "string"}}, "'nowhere[]' is not an inline object field"),
        ({"nokind": {"x": "string"}}, "'nokind' is not an API kind file"),
    ],
)
def test_a_bad_line_patch_is_refused_naming_the_field(fields: dict[str, Any], message: str) -> None:
    patch = LinePatch("generator/lines/9.9/line.yaml:crds", fields=fields)
    with pytest.raises(SpecError) as err:
        load_api_types(CRDS_DIR, patch)
    assert message in str(err.value)
    assert "generator/lines/9.9/line.yaml:crds" in str(err.value)


def test_a_line_cannot_replace_a_base_kind_to_drop_a_field(tmp_path: Path) -> None:
    """A removed field would be the way to lose stored data: a line's own kind file may not shadow a base one."""
    copy = tmp_path / "wasmplugin.yaml"
    text = (CRDS_DIR / "wasmplugin.yaml").read_text()
    assert "  sha256: string\n" in text
    copy.write_text(text.replace("  sha256: string\n", ""))
    with pytest.raises(SpecError) as err:
        load_api_types(CRDS_DIR, LinePatch("generator/lines/9.9/line.yaml:crds", files=(copy,)))
    assert "wasmplugin.yaml is also in" in str(err.value)
