"""Type specs: what the loader rejects (all at once, as file:key), and what the expansion guarantees.

The last tests run the generated CRDs and objects through the API server's own validation code
(ci/crdcheck links k8s.io/apiextensions-apiserver): CRD validation with the structural-schema rules, then
pruning and schema validation of objects, as kube-apiserver does on create, without needing a cluster.
"""

from __future__ import annotations

import copy
import json
import shutil
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcharts.crds import (
    APIType,
    examples,
    load_api_types,
    render_all,
    render_crd,
    validate,
    version_schema,
)
from meshcharts.errors import SpecError
from tests import REPO as ROOT
from tests.unit.crdcheck import check

CRDS_DIR = ROOT / "generator" / "specs" / "crds"

SHARED = """\
apiVersion: meshcharts/v1alpha1
kind: APITypes
types:
  Selector:
    matchLabels: {string: string}
  Match:
    $oneOf: [exact, prefix]
    exact: string
    prefix: string
"""

WIDGET = """\
apiVersion: meshcharts/v1alpha1
kind: APIType
crd:
  group: example.meshcharts.dev
  kind: Widget
  plural: widgets
  scope: Namespaced
  shortNames: [wd]
  categories: [examples]
  printerColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
  statusSubresource: true
  keep: true
  description: A test kind.
versions:
  - {name: v1alpha1, served: true, storage: true}
  - {name: v1beta1}
types:
  Mode: enum(FAST, SLOW)
spec:
  selector: Selector
  size: int32
  ratio: double?
  mode: Mode
  names: [string]
  matches: {string: Match}
  extra: object
example:
  metadata: {name: w}
  spec: {size: 3, mode: FAST, matches: {a: {exact: x}}}
"""


def write_tree(tmp_path: Path, files: Mapping[str, str]) -> Path:
    crds = tmp_path / "crds"
    crds.mkdir()
    for name, text in files.items():
        (crds / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return crds


def problems_of(crds: Path) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as caught:
        load_api_types(crds)
    return [(p.where, p.message) for p in caught.value.problems]


def test_a_valid_minimal_tree_loads_and_expands(tmp_path: Path) -> None:
    crds = write_tree(tmp_path, {"_types.yaml": SHARED, "widget.yaml": WIDGET})
    (api,) = load_api_types(crds)
    assert (api.name, api.singular, api.list_kind, api.storage_version) == (
        "widgets.example.meshcharts.dev",
        "widget",
        "WidgetList",
        "v1alpha1",
    )
    spec = version_schema(api)["properties"]["spec"]["properties"]
    assert spec["size"] == {"type": "integer", "format": "int32"}
    assert spec["ratio"] == {"type": "number", "format": "double", "nullable": True}
    assert spec["mode"] == {"type": "string", "enum": ["FAST", "SLOW"]}
    assert spec["names"] == {"type": "array", "items": {"type": "string"}}
    assert spec["extra"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    match = spec["matches"]["additionalProperties"]
    assert match["oneOf"] == [
        {"not": {"anyOf": [{"required": ["exact"]}, {"required": ["prefix"]}]}},
        {"required": ["exact"]},
        {"required": ["prefix"]},
    ]
    crd = render_crd(api)
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1alpha1", "v1beta1"]
    assert all(v["subresources"] == {"status": {}} for v in crd["spec"]["versions"])
    assert crd["spec"]["versions"][1]["additionalPrinterColumns"] == [
        {"jsonPath": ".spec.size", "name": "Size", "type": "integer"}
    ]
    assert examples(api)["apiVersion"] == "example.meshcharts.dev/v1alpha1"


def test_a_version_may_list_its_own_printer_columns(tmp_path: Path) -> None:
    widget = _broken(WIDGET, "  - {name: v1beta1}", "  - {name: v1beta1, printerColumns: []}")
    crds = write_tree(tmp_path, {"_types.yaml": SHARED, "widget.yaml": widget})
    alpha, beta = render_crd(load_api_types(crds)[0])["spec"]["versions"]
    assert [c["name"] for c in alpha["additionalPrinterColumns"]] == ["Size"]
    assert "additionalPrinterColumns" not in beta


def _broken(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


# Each case breaks the valid tree in one way; the problem must name the file and key.
CASES = {
    "unknown top-level key": (
        _broken(WIDGET, "versions:", "verisons: []\nversions:"),
        "crds/widget.yaml:verisons",
        "unknown key; did you mean 'versions'?",
    ),
    "unknown crd key": (
        _broken(WIDGET, "  keep: true", "  keep: true\n  kepp: true"),
        "crds/widget.yaml:crd.kepp",
        "unknown key",
    ),
    "unknown type name": (
        _broken(WIDGET, "size: int32", "size: Int32"),
        "crds/widget.yaml:spec.size",
        "unknown type 'Int32'",
    ),
    "misspelt scalar": (
        _broken(WIDGET, "names: [string]", "names: [strng]"),
        "crds/widget.yaml:spec.names[]",
        "unknown type 'strng'",
    ),
    "enum without parentheses": (
        _broken(WIDGET, "Mode: enum(FAST, SLOW)", "Mode: enum FAST SLOW"),
        "crds/widget.yaml:types.Mode",
        "bad enum syntax",
    ),
    "enum missing ')'": (
        _broken(WIDGET, "Mode: enum(FAST, SLOW)", "Mode: enum(ON, OFF"),
        "crds/widget.yaml:types.Mode",
        "bad enum syntax: missing ')'",
    ),
    "empty enum": (
        _broken(WIDGET, "Mode: enum(FAST, SLOW)", "Mode: enum()"),
        "crds/widget.yaml:types.Mode",
        "lists no values",
    ),
    "enum value twice": (
        _broken(WIDGET, "Mode: enum(FAST, SLOW)", "Mode: enum(FAST, SLOW, FAST)"),
        "crds/widget.yaml:types.Mode",
        "FAST listed twice",
    ),
    "enum inside unquoted brackets": (
        _broken(WIDGET, "names: [string]", "names: [enum(A, B)]"),
        "crds/widget.yaml:spec.names",
        "an array type names one item type",
    ),
    "oneOf naming a missing field": (
        _broken(WIDGET, "  extra: object", "  extra: object\n  pick: {$oneOf: [a, c], a: string, b: string}"),
        "crds/widget.yaml:spec.pick.$oneOf",
        "'c' is not a field of this object",
    ),
    "unknown $ key": (
        _broken(WIDGET, "  extra: object", "  extra: object\n  pick: {$oneof: [a], a: string}"),
        "crds/widget.yaml:spec.pick.$oneof",
        "unknown key",
    ),
    "cycle between local types": (
        _broken(WIDGET, "  Mode: enum(FAST, SLOW)", "  Mode: enum(FAST, SLOW)\n  A: {b: B}\n  B: {a: [A]}").replace(
            "  extra: object", "  extra: object\n  a: A"
        ),
        "crds/widget.yaml:types.A",
        "cycle between types: A -> B -> A",
    ),
    "unused local type": (
        _broken(WIDGET, "  Mode: enum(FAST, SLOW)", "  Mode: enum(FAST, SLOW)\n  Spare: string"),
        "crds/widget.yaml:types.Spare",
        "declared but never used",
    ),
    "local type shadowing a shared one": (
        _broken(
            WIDGET,
            "  Mode: enum(FAST, SLOW)",
            "  Mode: enum(FAST, SLOW)\n  Selector: {labels: {string: string}}",
        ),
        "crds/widget.yaml:types.Selector",
        "shadows the shared type",
    ),
    "two storage versions": (
        _broken(WIDGET, "{name: v1beta1}", "{name: v1beta1, storage: true}"),
        "crds/widget.yaml:versions",
        "exactly one version must have storage: true (found 2)",
    ),
    "bad version name": (
        _broken(WIDGET, "{name: v1beta1}", "{name: beta1}"),
        "crds/widget.yaml:versions[1].name",
        "does not match",
    ),
    "keep not a boolean": (
        _broken(WIDGET, "keep: true", "keep: yes please"),
        "crds/widget.yaml:crd.keep",
        "must be true or false",
    ),
    "bad printer column": (
        _broken(WIDGET, "type: integer, jsonPath: .spec.size", "type: int, jsonPath: spec.size"),
        "crds/widget.yaml:crd.printerColumns[0].jsonPath",
        "must start with '.'",
    ),
    "file named after another kind": (
        WIDGET,
        "crds/gadget.yaml",
        "must be named widget.yaml",
    ),
    "example outside an enum": (
        _broken(WIDGET, "mode: FAST,", "mode: MAYBE,"),
        "crds/widget.yaml:example",
        "spec.mode: 'MAYBE' is not one of FAST, SLOW",
    ),
    "example with an unknown field": (
        _broken(WIDGET, "spec: {size: 3,", "spec: {sise: 3,"),
        "crds/widget.yaml:example",
        "spec.sise: unknown field",
    ),
    "example setting two oneOf fields": (
        _broken(WIDGET, "{a: {exact: x}}", "{a: {exact: x, prefix: y}}"),
        "crds/widget.yaml:example",
        "spec.matches.a: at most one of exact, prefix may be set",
    ),
    "duplicate YAML key": (
        _broken(WIDGET, "  ratio: double?", "  ratio: double?\n  ratio: number"),
        "crds/widget.yaml",
        "duplicate key 'ratio'",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_spec_mistake_is_reported_with_file_and_key(tmp_path: Path, case: str) -> None:
    text, where, message = CASES[case]
    name = where.split(":")[0].removeprefix("crds/")
    crds = write_tree(tmp_path, {"_types.yaml": SHARED, name: text})
    found = problems_of(crds)
    assert any(w == where and message in m for w, m in found), found


def test_every_problem_across_files_is_reported_in_one_error(tmp_path: Path) -> None:
    shared = SHARED + "  Loop: {next: Loop}\n  Unused: string\n"
    widget = _broken(WIDGET, "size: int32", "size: Int32")
    widget = _broken(widget, "Mode: enum(FAST, SLOW)", "Mode: enum(ON, OFF")
    widget = _broken(widget, "  extra: object", "  extra: object\n  loop: Loop")
    gadget = _broken(WIDGET, "kind: Widget", "kind: Gadget").replace("plural: widgets", "plural: gadgets")
    gadget = _broken(gadget, "versions:", "colour: blue\nversions:")
    gadget = _broken(gadget, "mode: FAST,", "mode: MAYBE,")
    crds = write_tree(tmp_path, {"_types.yaml": shared, "widget.yaml": widget, "gadget.yaml": gadget})
    found = problems_of(crds)
    expected = [
        ("crds/widget.yaml:spec.size", "unknown type 'Int32'"),
        ("crds/widget.yaml:types.Mode", "bad enum syntax"),
        ("crds/_types.yaml:types.Loop", "cycle between types: Loop -> Loop"),
        ("crds/_types.yaml:types.Unused", "declared but used by no API type"),
        ("crds/gadget.yaml:colour", "unknown key"),
        ("crds/gadget.yaml:example", "spec.mode: 'MAYBE' is not one of FAST, SLOW"),
    ]
    missing = [(w, m) for w, m in expected if not any(fw == w and m in fm for fw, fm in found)]
    assert not missing, f"not reported: {missing}\nreported: {found}"
    # A broken declaration is reported once, not again at every use of its name.
    assert not [w for w, _ in found if w == "crds/widget.yaml:spec.mode"], found


def test_spec_error_message_lists_every_problem(tmp_path: Path) -> None:
    widget = _broken(WIDGET, "size: int32", "size: Int32")
    widget = _broken(widget, "keep: true", "keep: 1")
    crds = write_tree(tmp_path, {"_types.yaml": SHARED, "widget.yaml": widget})
    with pytest.raises(SpecError) as caught:
        load_api_types(crds)
    text = str(caught.value)
    assert "crds/widget.yaml:spec.size: unknown type 'Int32'" in text
    assert "crds/widget.yaml:crd.keep: must be true or false" in text


def test_rendering_is_deterministic_and_independent_of_file_order(tmp_path: Path) -> None:
    first = render_all(CRDS_DIR)
    copy_dir = tmp_path / "crds"
    copy_dir.mkdir()
    for path in sorted(CRDS_DIR.glob("*.yaml"), reverse=True):  # a different creation order
        shutil.copy(path, copy_dir / path.name)
    second = render_all(copy_dir)
    assert yaml.safe_dump_all(first, sort_keys=False) == yaml.safe_dump_all(second, sort_keys=False)
    assert [crd["metadata"]["name"] for crd in first] == sorted(crd["metadata"]["name"] for crd in first)
    for crd in first:
        for keys in _key_orders(crd):
            assert keys == sorted(keys)


def _key_orders(value: Any) -> Iterator[list[str]]:
    if isinstance(value, dict):
        yield list(value)
        for item in value.values():
            yield from _key_orders(item)
    elif isinstance(value, list):
        for item in value:
            yield from _key_orders(item)


VALUE_VALIDATIONS = ("oneOf", "anyOf", "allOf", "not")
FORBIDDEN_IN_VALUE_VALIDATION = {
    "type", "description", "default", "nullable", "additionalProperties", "items", "properties",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "x-kubernetes-embedded-resource",
}  # fmt: skip


# The one value validation with types that structural schemas allow, beside x-kubernetes-int-or-string.
INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def structural_violations(node: Mapping[str, Any], path: str) -> Iterator[str]:
    """Kubernetes' structural-schema rules that our generator could break."""
    if "type" not in node and not (
        node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-int-or-string")
    ):
        yield f"{path}: no type"
    if node.get("nullable") and "type" not in node:
        yield f"{path}: nullable without a type"
    if "properties" in node and "additionalProperties" in node:
        yield f"{path}: both properties and additionalProperties"
    if node.get("type") == "array" and not isinstance(node.get("items"), dict):
        yield f"{path}: array without a single items schema"
    if node.get("type") not in (None, "object") and ("properties" in node or "additionalProperties" in node):
        yield f"{path}: fields on a non-object"
    for keyword in VALUE_VALIDATIONS:
        if keyword in node and not (node.get("x-kubernetes-int-or-string") and node[keyword] == INT_OR_STRING):
            yield from _value_validation_violations(node[keyword], f"{path}.{keyword}")
    for name, sub in node.get("properties", {}).items():
        yield from structural_violations(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from structural_violations(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from structural_violations(node["additionalProperties"], f"{path}{{}}")


def _value_validation_violations(value: Any, path: str) -> Iterator[str]:
    for sub in value if isinstance(value, list) else [value]:
        for key in sorted(FORBIDDEN_IN_VALUE_VALIDATION & set(sub)):
            yield f"{path}: {key} is not allowed inside a value validation"
        for keyword in VALUE_VALIDATIONS:
            if keyword in sub:
                yield from _value_validation_violations(sub[keyword], f"{path}.{keyword}")


def test_every_generated_schema_is_structural() -> None:
    violations: list[str] = []
    for crd in render_all(CRDS_DIR):
        for version in crd["spec"]["versions"]:
            where = f"{crd['metadata']['name']}/{version['name']}"
            violations += structural_violations(version["schema"]["openAPIV3Schema"], where)
    assert not violations, "\n".join(violations)


def test_structural_check_catches_an_untyped_node() -> None:
    bad = {"type": "object", "properties": {"a": {"description": "no type"}, "b": {"nullable": True}}}
    assert list(structural_violations(bad, "x")) == [
        "x.a: no type",
        "x.b: no type",
        "x.b: nullable without a type",
    ]


def test_structural_check_allows_int_or_string_and_nothing_like_it() -> None:
    good = {"x-kubernetes-int-or-string": True, "anyOf": INT_OR_STRING}
    assert list(structural_violations(good, "x")) == []
    bad = {"type": "object", "anyOf": INT_OR_STRING}
    assert list(structural_violations(bad, "x")) == [
        "x.anyOf: type is not allowed inside a value validation",
        "x.anyOf: type is not allowed inside a value validation",
    ]


def _examples_by_kind() -> dict[str, dict[str, Any]]:
    return {api.kind: examples(api) for api in load_api_types(CRDS_DIR)}


def test_every_kind_has_an_example_its_schema_accepts() -> None:
    apis = load_api_types(CRDS_DIR)
    assert len(apis) == 14
    for api in apis:
        example = examples(api)
        assert example["kind"] == api.kind
        assert example["apiVersion"] in {f"{api.group}/{v.name}" for v in api.versions if v.served}
        assert validate(version_schema(api)["properties"]["spec"], example["spec"], "spec") == []


def test_examples_cover_wasmplugin_telemetry_logging_and_failover_priority() -> None:
    by_kind = _examples_by_kind()
    assert by_kind["WasmPlugin"]["spec"]["url"]
    telemetry = by_kind["Telemetry"]["spec"]
    assert telemetry["metrics"] and telemetry["accessLogging"]
    locality = by_kind["DestinationRule"]["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"]
    assert locality["failoverPriority"]


# (kind, dotted path inside spec to set, value, the field the message must name)
INVALID: dict[str, tuple[str, str, Any, str]] = {
    "string where an integer goes": (
        "DestinationRule",
        "trafficPolicy.connectionPool.tcp.maxConnections",
        "ten",
        "spec.trafficPolicy.connectionPool.tcp.maxConnections",
    ),
    "value outside an enum": (
        "DestinationRule",
        "trafficPolicy.loadBalancer.simple",
        "FASTEST",
        "spec.trafficPolicy.loadBalancer.simple",
    ),
    "unknown field": ("WasmPlugin", "urll", "oci://x", "spec.urll"),
    "null in a non-nullable field": ("WasmPlugin", "url", None, "spec.url"),
    "int32 overflow": ("EnvoyFilter", "priority", 2**31, "spec.priority"),
    "object where an array goes": ("Telemetry", "metrics", {"providers": []}, "spec.metrics"),
    "two of a oneOf": (
        "VirtualService",
        "http",
        [{"match": [{"uri": {"exact": "/", "prefix": "/a"}}]}],
        "spec.http[0].match[0].uri",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_validate_rejects_invalid_objects_naming_the_field(case: str) -> None:
    kind, dotted, value, field = INVALID[case]
    api = next(a for a in load_api_types(CRDS_DIR) if a.kind == kind)
    spec = copy.deepcopy(examples(api)["spec"])
    *parents, last = dotted.split(".")
    node = spec
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = value
    messages = validate(version_schema(api)["properties"]["spec"], spec, "spec")
    assert any(m.startswith(field + ":") for m in messages), messages


def test_nullable_fields_accept_null() -> None:
    api = next(a for a in load_api_types(CRDS_DIR) if a.kind == "WasmPlugin")
    assert validate(version_schema(api)["properties"]["spec"], {"priority": None}, "spec") == []


@pytest.fixture(scope="module")
def apis() -> dict[str, APIType]:
    return {api.kind: api for api in load_api_types(CRDS_DIR)}


@pytest.mark.slow
def test_api_server_accepts_every_crd_and_every_example_in_every_served_version(
    crdcheck: Path, apis: dict[str, APIType]
) -> None:
    objects = []
    for api in apis.values():
        for version in api.versions:
            if version.served:
                example = examples(api)
                objects.append({**example, "apiVersion": f"{api.group}/{version.name}"})
    report = check(crdcheck, [render_crd(api) for api in apis.values()], objects)
    assert report["crds"] == {api.name: [] for api in apis.values()}
    rejected = [o for o in report["objects"] if o["errors"] or o["pruned"]]
    assert not rejected, json.dumps(rejected, indent=2)
    assert len(report["objects"]) == 20


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(INVALID))
def test_api_server_rejects_what_validate_rejects_naming_the_field(
    crdcheck: Path, apis: dict[str, APIType], case: str
) -> None:
    kind, dotted, value, field = INVALID[case]
    api = apis[kind]
    obj = copy.deepcopy(examples(api))
    *parents, last = dotted.split(".")
    node = obj["spec"]
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = value
    (result,) = check(crdcheck, [render_crd(api)], [obj])["objects"]
    # Unknown fields are pruned, and rejected when the client asks for strict field validation
    # (kubectl's default); everything else is a validation error.
    findings = result["errors"] + [f"unknown field {path}" for path in result["pruned"]]
    assert any(field.removeprefix("spec.").split("[")[0] in finding for finding in findings), findings
