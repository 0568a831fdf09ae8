"""The typed meshConfig of each line (tests/meshconfig_lines.py): its type spec (generator/specs/meshconfig for the
base line, generator/lines/1.31/specs/meshconfig for 1.31) expanded into JSON schema and checked against that Istio
minor's MeshConfig fields (tests/data/istio-<minor>-meshconfig/fields.tsv), its generated values.schema.json against
the line's valid and bad cases, and the loader's reports on bad specs."""

from __future__ import annotations

import json
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
from tests import REPO as ROOT
from tests.conftest import data_table
from tests.meshconfig_lines import LINES, MeshConfigLine, by_minor, line_params
from tests.unit.trees import GOOD_CHART, GOOD_TEMPLATE, make_tree, problems_of

SPECS = ROOT / "generator" / "specs"


@pytest.fixture(scope="module", params=line_params())
def line(request: pytest.FixtureRequest) -> MeshConfigLine:
    line: MeshConfigLine = request.param
    return line


@pytest.fixture(scope="module")
def schema(line: MeshConfigLine) -> dict[str, Any]:
    """The JSON schema of the line's MeshConfig type, from its type spec."""
    return meshconfig.load_value_types(line.specs / "meshconfig", line.specs / "crds")["MeshConfig"]


def values_schema(line: MeshConfigLine) -> dict[str, Any]:
    """The line's generated istiod values.schema.json (what Helm checks users' values with)."""
    loaded: dict[str, Any] = json.loads((line.chart / "values.schema.json").read_text())
    return loaded


def _kind(node: Mapping[str, Any]) -> str:
    kinds = [node["type"]] if isinstance(node["type"], str) else [t for t in node["type"] if t != "null"]
    if "enum" in node:
        values = [v for v in node["enum"] if v is not None]
        names = [v for v in values if isinstance(v, str)]
        numbers = [v for v in values if isinstance(v, int)]
        return "enum(" + ", ".join(f"{name}={number}" for name, number in zip(names, numbers, strict=True)) + ")"
    if kinds == ["string"] and node.get("pattern") == meshconfig.DURATION_PATTERN:
        return "duration"
    if kinds == ["object"] and "properties" not in node and "additionalProperties" not in node:
        return "struct"  # any JSON object (google.protobuf.Struct), not a message of no fields
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


def test_every_meshconfig_field_of_the_lines_istio_has_its_type_and_no_other_field_is_accepted(
    line: MeshConfigLine, schema: dict[str, Any]
) -> None:
    expected = {(row["path"], row["type"]) for row in data_table(f"istio-{line.minor}-meshconfig/fields.tsv")}
    ours = set(flatten(schema))
    assert len(expected) > 250
    assert sorted(expected - ours) == [], "missing or typed differently"
    assert sorted(ours - expected) == [], f"not in Istio {line.minor}'s MeshConfig"


def test_the_fields_tables_differ_where_istio_changed_mesh_config() -> None:
    """1.31's table is not 1.12's under another name: fields came (meshMTLS) and went (thriftConfig)."""
    old, new = ({row["path"] for row in data_table(f"istio-{m.minor}-meshconfig/fields.tsv")} for m in LINES)
    assert {"thriftConfig", "defaultConfig.parentShutdownDuration"} <= old - new
    assert {"meshMTLS", "defaultConfig.proxyHeaders", "extensionProviders[].opentelemetry"} <= new - old


def test_messages_are_closed_and_maps_and_free_form_fields_stay_open(schema: dict[str, Any]) -> None:
    default_config = schema["properties"]["defaultConfig"]
    assert schema["additionalProperties"] is False
    assert default_config["additionalProperties"] is False
    assert default_config["properties"]["proxyMetadata"]["additionalProperties"] == {"type": "string"}


def test_a_struct_field_takes_any_json_object() -> None:
    """google.protobuf.Struct (1.31's access log labels): any object, nested values of any type; not a list."""
    specs = by_minor("1.31").specs
    schema = meshconfig.load_value_types(specs / "meshconfig", specs / "crds")["MeshConfig"]
    validator = jsonschema.Draft7Validator(schema)
    labels = {"a": "%START_TIME%", "b": {"c": [1, True, None]}, "d": 2.5}
    log = {"name": "log", "envoyFileAccessLog": {"path": "/dev/stdout", "logFormat": {"labels": labels}}}
    assert validator.is_valid({"extensionProviders": [log]})
    log["envoyFileAccessLog"]["logFormat"] = {"labels": ["a"]}
    assert not validator.is_valid({"extensionProviders": [log]})


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


def test_valid_and_bad_cases_of_the_test_data_agree_with_the_lines_values_schema(line: MeshConfigLine) -> None:
    validator = jsonschema.Draft7Validator(values_schema(line))
    refused = {
        name: [e.message for e in validator.iter_errors({"meshConfig": v})]
        for name, v in line.valid.items()
        if not validator.is_valid({"meshConfig": v})
    }
    assert refused == {}
    assert [case["name"] for case in line.bad if validator.is_valid({"meshConfig": case["meshConfig"]})] == []
    assert len(line.valid) >= 10
    assert {case["istio"] for case in line.bad} == {"refused", "ignored", "taken"}


def test_every_profile_mesh_config_of_the_1_31_line_passes_its_values_schema() -> None:
    """Profiles, compatibility versions and platforms are laid under the values by a template, after Helm checked
    them: what each sets under meshConfig must be what the schema would accept from a user."""
    line = by_minor("1.31")
    validator = jsonschema.Draft7Validator(values_schema(line))
    settings = yaml.safe_load((line.chart / "files" / "profiles.yaml").read_text())
    checked = {}
    for section, entries in settings.items():
        for name, values in entries.items():
            if "meshConfig" in values:
                checked[f"{section}.{name}"] = [
                    e.message for e in validator.iter_errors({"meshConfig": values["meshConfig"]})
                ]
    assert {"profiles.ambient", "profiles.demo", "profiles.preview"} <= set(checked)
    assert {name: errors for name, errors in checked.items() if errors} == {}


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


# A value each line's istiod declares inside the typed meshConfig, and how its own description starts.
DECLARED = {"1.12": ("trustDomain", "SPIFFE trust domain"), "1.31": ("enablePrometheusMerge", "Merge the application")}


def test_the_istiod_schema_types_mesh_config_and_keeps_its_declared_keys(line: MeshConfigLine) -> None:
    model = spec.load(line.layout)
    values = render.values_schema(model.chart("istiod"), model.value_types)["properties"]["meshConfig"]
    key, description = DECLARED[line.minor]
    assert values["additionalProperties"] is False
    assert values["properties"][key]["description"].startswith(description)
    assert values["properties"]["accessLogFile"] == {"type": ["string", "null"]}
    assert "defaultConfig" in values["properties"]
    assert values["description"].startswith("Mesh configuration")


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


def test_a_template_may_read_a_field_of_a_typed_group_without_declaring_it(tmp_path: Path) -> None:
    """The type declares its fields (the 1.31 istiod reads meshConfig.rootNamespace); a misspelt one is still named."""
    chart = GOOD_CHART + "  mesh.trustDomain: {type: string, default: x, doc: Trust.}\n"
    chart += "groups:\n  mesh: {doc: Mesh., type: MeshConfig}\n"
    template = GOOD_TEMPLATE + "  a: {{ .Values.mesh.trustDomain }}\n  b: {{ .Values.mesh.rootNamespace }}\n"
    layout = make_tree(tmp_path, chart, template + "  c: {{ .Values.mesh.rootNamespaec }}\n")
    for part in ("meshconfig", "crds"):
        shutil.copytree(SPECS / part, layout.specs / part)
    assert problems_of(layout) == [
        "generator/specs/gateway.yaml:values.mesh.rootNamespaec: a template reads this value but the spec does not "
        "declare it"
    ]
