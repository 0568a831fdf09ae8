"""The typed meshConfig: generator/specs/meshconfig expanded into JSON schema, checked against Istio 1.12's
MeshConfig fields (tests/data/istio-1.12-meshconfig/fields.tsv) and for the loader's reports on bad specs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from meshcharts import meshconfig, render, spec
from meshcharts.crds import Enum, ExprParser
from meshcharts.errors import SpecError
from meshcharts.paths import Layout
from tests import REPO as ROOT
from tests.conftest import data_table
from tests.unit.trees import GOOD_CHART, make_tree, problems_of

SPECS = ROOT / "generator" / "specs"
DATA = ROOT / "tests" / "data" / "istio-1.12-meshconfig"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return meshconfig.load_value_types(SPECS / "meshconfig", SPECS / "crds")["MeshConfig"]


def _kind(node: Mapping[str, Any]) -> str:
    kinds = [node["type"]] if isinstance(node["type"], str) else [t for t in node["type"] if t != "null"]
    if "enum" in node:
        values = [v for v in node["enum"] if v is not None]
        names = [v for v in values if isinstance(v, str)]
        numbers = [v for v in values if isinstance(v, int)]
        return "enum(" + ", ".join(f"{name}={number}" for name, number in zip(names, numbers, strict=True)) + ")"
    if kinds == ["string"] and node.get("pattern") == meshconfig.DURATION_PATTERN:
        return "duration"
    return str(kinds[0])


def flatten(node: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, str]]:
    """(path, type) per field in the table's notation: `x[]` an array item, `x{}` a map value."""
    for name, sub in node.get("properties", {}).items():
        yield from _field(sub, f"{path}.{name}" if path else name)


def _field(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
    kind = _kind(node)
    if kind == "array":
        yield from _field(node["items"], path + "[]")
    elif kind == "object" and isinstance(node.get("additionalProperties"), dict):
        yield from _field(node["additionalProperties"], path + "{}")
    else:
        yield path, kind
        if kind == "object":
            yield from flatten(node, path)


def test_every_meshconfig_field_of_istio_1_12_has_its_type_and_no_other_field_is_accepted(
    schema: dict[str, Any],
) -> None:
    expected = {(row["path"], row["type"]) for row in data_table("istio-1.12-meshconfig/fields.tsv")}
    ours = set(flatten(schema))
    assert len(expected) > 250
    assert sorted(expected - ours) == [], "missing or typed differently"
    assert sorted(ours - expected) == [], "not in Istio 1.12's MeshConfig"


def test_messages_are_closed_and_maps_and_free_form_fields_stay_open(schema: dict[str, Any]) -> None:
    default_config = schema["properties"]["defaultConfig"]
    assert schema["additionalProperties"] is False
    assert default_config["additionalProperties"] is False
    assert default_config["properties"]["proxyMetadata"]["additionalProperties"] == {"type": "string"}


def test_protobuf_json_forms_are_accepted_and_other_forms_refused(schema: dict[str, Any]) -> None:
    def ok(value: dict[str, Any]) -> bool:
        return jsonschema.Draft7Validator(schema).is_valid(value)

    assert ok({"proxyListenPort": "15001", "accessLogEncoding": 1, "enableAutoMtls": None})
    assert ok({"defaultConfig": {"controlPlaneAuthPolicy": 1000, "drainDuration": "1h30m", "concurrency": "2"}})
    assert ok({"defaultConfig": {"tracing": {"sampling": "2.5"}}})
    assert not ok({"proxyListenPort": "port"})
    assert not ok({"defaultConfig": {"controlPlaneAuthPolicy": 2}})
    assert not ok({"defaultConfig": {"drainDuration": "45"}})
    assert not ok({"defaultConfig": {"proxyMetadata": {"A": 1}}})


def test_valid_and_bad_cases_of_the_test_data_agree_with_the_schema(schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(schema)
    valid = yaml.safe_load((DATA / "valid.yaml").read_text())
    bad = yaml.safe_load((DATA / "bad.yaml").read_text())
    assert {
        name: [e.message for e in validator.iter_errors(v)] for name, v in valid.items() if not validator.is_valid(v)
    } == {}
    assert [case["name"] for case in bad if validator.is_valid(case["meshConfig"])] == []


def test_enum_numbers_count_from_zero_and_follow_an_explicit_number() -> None:
    expr = ExprParser("enum(A, B=1000, C)", "x").parse()
    assert isinstance(expr, Enum)
    assert (expr.values, expr.numbers) == (("A", "B", "C"), (0, 1000, 1001))


def _write(tmp_path: Path, text: str) -> tuple[Path, Path]:
    types_dir, crds_dir = tmp_path / "meshconfig", tmp_path / "crds"
    types_dir.mkdir()
    crds_dir.mkdir()
    (crds_dir / "_types.yaml").write_text(
        "apiVersion: meshcharts/v1alpha1\nkind: APITypes\ntypes:\n  Duration: string\n  Shared: {a: string}\n"
    )
    (types_dir / "mesh.yaml").write_text(text)
    return types_dir, crds_dir


def test_spec_problems_are_reported_all_at_once_with_file_and_key(tmp_path: Path) -> None:
    types_dir, crds_dir = _write(
        tmp_path,
        "apiVersion: meshcharts/v1alpha1\nkind: ValuesType\nroot: Mesh\nextra: 1\ntypes:\n"
        "  Mesh: {a: Missing, b: Duration, c: Shared}\n  Unused: {x: string}\n  Shared: {y: string}\n"
        "  Bad: enum(A, A)\n",
    )
    with pytest.raises(SpecError) as caught:
        meshconfig.load_value_types(types_dir, crds_dir)
    found = {(p.where, p.message.split(";")[0].split(" (")[0]) for p in caught.value.problems}
    assert ("meshconfig/mesh.yaml:extra", "unknown key") in found
    assert ("meshconfig/mesh.yaml:types.Mesh.a", "unknown type 'Missing'") in found
    assert ("meshconfig/mesh.yaml:types.Unused", "declared but not reachable from Mesh") in found
    assert ("meshconfig/mesh.yaml:types.Shared", "shadows the shared type of that name in ../crds") in found
    assert any(where == "meshconfig/mesh.yaml:types.Bad" and "listed twice" in msg for where, msg in found)


def test_a_root_that_names_no_type_is_refused(tmp_path: Path) -> None:
    types_dir, crds_dir = _write(
        tmp_path, "apiVersion: meshcharts/v1alpha1\nkind: ValuesType\nroot: Nope\ntypes:\n  Mesh: {a: string}\n"
    )
    with pytest.raises(SpecError, match=r"meshconfig/mesh.yaml:root: must name one of this file's types"):
        meshconfig.load_value_types(types_dir, crds_dir)


def test_a_group_names_a_known_type_and_is_not_also_open(tmp_path: Path) -> None:
    broken = "  broken: {type: nonsense, default: 1, doc: Broken.}\n"
    chart = GOOD_CHART + broken + "groups:\n  service: {doc: The Service., type: Nope}\n"
    found = problems_of(make_tree(tmp_path, chart))
    assert any("gateway.yaml:groups.service.type: unknown type 'Nope'" in p for p in found)
    assert any("values.broken" in p for p in found), found  # reported in the same run
    chart = GOOD_CHART + "groups:\n  service: {doc: The Service., open: true, type: MeshConfig}\n"
    found = problems_of(make_tree(tmp_path / "open", chart))
    assert any("groups.service.type: must be a type name, and a typed group cannot also be open" in p for p in found)


def test_the_istiod_schema_types_mesh_config_and_keeps_its_declared_keys(layout: Layout) -> None:
    model = spec.load(layout)
    values = render.values_schema(model.chart("istiod"), model.value_types)["properties"]["meshConfig"]
    assert values["additionalProperties"] is False
    assert values["properties"]["trustDomain"]["description"].startswith("SPIFFE trust domain")
    assert values["properties"]["accessLogFile"] == {"type": ["string", "null"]}
    assert "defaultConfig" in values["properties"]


def test_a_declared_value_inside_a_typed_group_must_be_a_field_of_its_type(tmp_path: Path) -> None:
    layout = make_tree(
        tmp_path,
        GOOD_CHART + "  mesh.trustDomian: {type: string, default: x, doc: Typo.}\n"
        "groups:\n  mesh: {doc: Mesh., type: MeshConfig}\n",
    )
    for part in ("meshconfig", "crds"):
        shutil.copytree(SPECS / part, layout.specs / part)
    found = problems_of(layout)
    assert any("gateway.yaml:values.mesh.trustDomian: 'trustDomian' is not a field of MeshConfig" in p for p in found)
