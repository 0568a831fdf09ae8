"""Constraints in the type specs (generator/specs/crds/README.md, "Constraints"): ranges, patterns, required
fields, list types, CEL rules, a typed status and the scalars it needs. How each renders, what the loader refuses
(every problem located as file:key), and which examples it refuses. The slow test runs the rendered CRD and
objects through the API server's own validation (ci/crdcheck)."""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcharts.crds import APIType, examples, load_api_types, render_all, render_crd, validate, version_schema
from meshcharts.crds.cel import evaluate
from meshcharts.crds.model import Object, Scalar
from meshcharts.errors import SpecError
from meshcharts.meshconfig import json_schema
from tests import REPO as ROOT
from tests.unit.crdcheck import check

SHARED = """\
apiVersion: meshcharts/v1alpha1
kind: APITypes
types:
  PortNumber: integer(1..65535)
  Labels:
    $type: "{string: string(..63)}(..64)"
    $rules:
      - {rule: "self.all(k, k.size() > 0)", message: label names are not empty}
  IstioStatus:
    $keepUnknown: true
    conditions:
      - type: string
        status: string
        lastTransitionTime: timestamp
        observedGeneration: intOrString
    observedGeneration: intOrString
"""

GADGET = """\
apiVersion: meshcharts/v1alpha1
kind: APIType
crd:
  group: example.meshcharts.dev
  kind: Gadget
  plural: gadgets
  scope: Namespaced
  statusSubresource: true
  keep: false
  specRequired: true
  description: A kind with every constraint.
versions:
  - {name: v1alpha1, served: true, storage: true}
types:
  Port:
    $required: [name, number]
    name: string(1..63)
    number: PortNumber
    targetPort: PortNumber?
spec:
  $required: [host]
  $oneOf: [[simple, hash], [ringSize, maglev]]
  $rules:
    - {rule: "!has(self.maglev) || has(self.hash)", message: maglev needs a hash}
  host:
    $type: string(1..253)
    $pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$'
    $doc: The host.
  simple: string
  hash: string
  ringSize: int64(1..)
  maglev: boolean
  weight: double(0..100)
  selector: Labels
  ports:
    $type: "[Port](..16)"
    $listType: map
    $listMapKeys: [name]
    $rules:
      - {rule: "self.all(p, self.exists_one(q, q.number == p.number))", message: port numbers differ}
  adminPort:
    $type: PortNumber
    $doc: A port the admin interface listens on.
    $rules:
      - {rule: "self != 15000", message: 15000 is taken by the proxy}
  hosts: {$type: "[string](1..)", $listType: set}
  url:
    $type: string(..2048)
    $rules:
      - {rule: "isURL(self) && url(self).getScheme() in ['http', 'https']", message: an http or https URL}
  digest: bytes
  extra: object(..8)
status: IstioStatus
example:
  metadata: {name: g}
  spec:
    host: reviews.default.svc
    hash: x-user
    maglev: true
    weight: 12.5
    selector: {app: reviews}
    ports: [{name: http, number: 80}, {name: grpc, number: 8080, targetPort: 9080}]
    adminPort: 9901
    hosts: [a.example.com, b.example.com]
    url: https://example.com/filter.wasm
    digest: aGVsbG8=
"""


def write_tree(tmp_path: Path, shared: str = SHARED, gadget: str = GADGET) -> Path:
    crds = tmp_path / "crds"
    crds.mkdir()
    (crds / "_types.yaml").write_text(textwrap.dedent(shared), encoding="utf-8")
    (crds / "gadget.yaml").write_text(textwrap.dedent(gadget), encoding="utf-8")
    return crds


def problems_of(crds: Path) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as caught:
        load_api_types(crds)
    return [(p.where, p.message) for p in caught.value.problems]


def _broken(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


@pytest.fixture
def gadget(tmp_path: Path) -> APIType:
    (api,) = load_api_types(write_tree(tmp_path))
    return api


def test_each_constraint_renders_where_it_is_written(gadget: APIType) -> None:
    schema = version_schema(gadget)
    assert schema["required"] == ["spec"]
    spec = schema["properties"]["spec"]
    fields = spec["properties"]
    assert spec["required"] == ["host"]
    assert spec["x-kubernetes-validations"] == [
        {"rule": "!has(self.maglev) || has(self.hash)", "message": "maglev needs a hash"}
    ]
    assert fields["host"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 253,
        "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        "description": "The host.",
    }
    assert fields["ringSize"] == {"type": "integer", "format": "int64", "minimum": 1}
    assert fields["weight"] == {"type": "number", "format": "double", "minimum": 0, "maximum": 100}
    assert fields["selector"] == {
        "type": "object",
        "additionalProperties": {"type": "string", "maxLength": 63},
        "maxProperties": 64,
        "x-kubernetes-validations": [{"rule": "self.all(k, k.size() > 0)", "message": "label names are not empty"}],
    }
    ports = fields["ports"]
    assert (ports["maxItems"], ports["x-kubernetes-list-type"], ports["x-kubernetes-list-map-keys"]) == (
        16,
        "map",
        ["name"],
    )
    assert ports["x-kubernetes-validations"][0]["message"] == "port numbers differ"
    assert ports["items"]["required"] == ["name", "number"]
    assert ports["items"]["properties"]["name"] == {"type": "string", "minLength": 1, "maxLength": 63}
    assert fields["hosts"] == {
        "type": "array",
        "items": {"type": "string"},
        "minItems": 1,
        "x-kubernetes-list-type": "set",
    }
    assert fields["url"]["maxLength"] == 2048 and len(fields["url"]["x-kubernetes-validations"]) == 1
    assert fields["digest"] == {"type": "string", "format": "byte"}
    assert fields["extra"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "maxProperties": 8}


def test_two_oneof_groups_each_allow_at_most_one(gadget: APIType) -> None:
    spec = version_schema(gadget)["properties"]["spec"]
    assert "oneOf" not in spec
    first, second = spec["allOf"]
    assert first["oneOf"][1:] == [{"required": ["simple"]}, {"required": ["hash"]}]
    assert second["oneOf"][0] == {"not": {"anyOf": [{"required": ["ringSize"]}, {"required": ["maglev"]}]}}


def test_a_named_type_carries_its_constraints_to_every_use(gadget: APIType) -> None:
    fields = version_schema(gadget)["properties"]["spec"]["properties"]
    port = fields["ports"]["items"]["properties"]
    assert port["number"] == {"type": "integer", "minimum": 1, "maximum": 65535}
    assert port["targetPort"] == {"type": "integer", "minimum": 1, "maximum": 65535, "nullable": True}
    # A use may describe it and add rules of its own.
    assert fields["adminPort"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 65535,
        "description": "A port the admin interface listens on.",
        "x-kubernetes-validations": [{"rule": "self != 15000", "message": "15000 is taken by the proxy"}],
    }


def test_a_typed_status_keeps_unknown_fields_and_has_timestamps_and_int_or_string(gadget: APIType) -> None:
    status = version_schema(gadget)["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    condition = status["properties"]["conditions"]["items"]["properties"]
    assert condition["lastTransitionTime"] == {"type": "string", "format": "date-time"}
    int_or_string = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert condition["observedGeneration"] == int_or_string
    assert status["properties"]["observedGeneration"] == int_or_string
    ok = {
        "observedGeneration": 3,
        "other": {"kept": True},
        "conditions": [{"lastTransitionTime": "2024-05-01T12:00:00Z"}],
    }
    assert validate(status, ok, "status") == []
    bad = {"observedGeneration": 1.5, "conditions": [{"lastTransitionTime": "yesterday", "typo": 1}]}
    assert validate(status, bad, "status") == [
        "status.observedGeneration: must be an integer or a string, not float",
        "status.conditions[0].lastTransitionTime: 'yesterday' is not an RFC 3339 date and time, e.g. "
        "2024-05-01T12:00:00Z",
        "status.conditions[0].typo: unknown field",
    ]


NEW_KEYWORDS = {
    "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems", "minProperties",
    "maxProperties", "required", "allOf", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-validations", "x-kubernetes-int-or-string",
}  # fmt: skip


def _keywords(schema: Mapping[str, Any]) -> Iterator[str]:
    """The keywords a schema uses, at every level (not its field names)."""
    yield from schema
    for key, sub in schema.items():
        subschemas = sub.values() if key == "properties" else sub if isinstance(sub, list) else [sub]
        for item in subschemas:
            if isinstance(item, dict):
                yield from _keywords(item)


def test_the_base_specs_use_none_of_the_new_keywords_so_their_crds_are_unchanged() -> None:
    crds = render_all(ROOT / "generator" / "specs" / "crds")
    used = {key for crd in crds for version in crd["spec"]["versions"] for key in _keywords(version["schema"])}
    # `required` appears only inside the oneOf of Istio 1.12's oneofs.
    assert used & NEW_KEYWORDS == {"required"}
    for crd in crds:
        assert "required" not in crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


# Each case breaks the valid tree in one way: (file, old text, new text, where, message).
CASES: dict[str, tuple[str, str, str, str, str]] = {
    "range with the low end above the high end": (
        "gadget", "ringSize: int64(1..)", "ringSize: int64(9..1)",
        "crds/gadget.yaml:spec.ringSize", "bad range (9..1): the low end is above the high end",
    ),
    "range that is not a number": (
        "gadget", "ringSize: int64(1..)", "ringSize: int64(one..)",
        "crds/gadget.yaml:spec.ringSize", "'one' is not a number",
    ),
    "range with neither end": (
        "gadget", "ringSize: int64(1..)", "ringSize: int64(..)",
        "crds/gadget.yaml:spec.ringSize", "write (low..high), (low..) or (..high)",
    ),
    "range on a boolean": (
        "gadget", "maglev: boolean", "maglev: boolean(0..1)",
        "crds/gadget.yaml:spec.maglev", "a range applies to numbers, strings, lists and maps, not to boolean",
    ),
    "range on an enum": (
        "gadget", "simple: string", "simple: enum(A, B)(..3)",
        "crds/gadget.yaml:spec.simple", "not to enum; an enum lists its values",
    ),
    "fractional bound of an integer": (
        "gadget", "ringSize: int64(1..)", "ringSize: int64(1.5..)",
        "crds/gadget.yaml:spec.ringSize", "1.5 is not a whole number",
    ),
    "negative length": (
        "gadget", "$type: string(1..253)", "$type: string(-1..253)",
        "crds/gadget.yaml:spec.host", "a range on string bounds the length, which cannot be -1",
    ),
    "range added to a named type that has one": (
        "gadget", "number: PortNumber\n", "number: PortNumber(1..80)\n",
        "crds/gadget.yaml:types.Port.number", "PortNumber already has a range",
    ),
    "a $minimum key: bounds are written in the type": (
        "gadget", "weight: double(0..100)", "weight: {$type: double, $minimum: 0}",
        "crds/gadget.yaml:spec.weight.$minimum", "unknown key; beside $type are allowed $doc, $rules, $pattern",
    ),
    "pattern on a number": (
        "gadget", "weight: double(0..100)", "weight: {$type: 'double(0..100)', $pattern: '^1'}",
        "crds/gadget.yaml:spec.weight.$pattern", "a pattern applies to strings, not to a value of kind number",
    ),
    "pattern that RE2 refuses": (
        "gadget", "$pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$'", "$pattern: '^(?=a)'",
        "crds/gadget.yaml:spec.host.$pattern", "not a valid RE2 regular expression",
    ),
    "required field the object lacks": (
        "gadget", "$required: [host]", "$required: [host, hots]",
        "crds/gadget.yaml:spec.$required", "'hots' is not a field of this object",
    ),
    "required fields of a string": (
        "gadget", "$type: string(..2048)", "$type: string(..2048)\n    $required: [scheme]",
        "crds/gadget.yaml:spec.url.$required", "required fields apply to objects with fields, not to string",
    ),
    "required field added where a named type is used": (
        "gadget", "selector: Labels", "selector: {$type: Labels, $required: [app]}",
        "crds/gadget.yaml:spec.selector.$required", "required fields apply to objects with fields, not to map",
    ),
    "list of type map without keys": (
        "gadget", "    $listMapKeys: [name]\n", "",
        "crds/gadget.yaml:spec.ports.$listType", "a list of type map needs $listMapKeys",
    ),
    "list map key that items may leave out": (
        "gadget", "$listMapKeys: [name]", "$listMapKeys: [targetPort]",
        "crds/gadget.yaml:spec.ports.$listMapKeys", "'targetPort' must be in the items' $required",
    ),
    "list map key that is not a field": (
        "gadget", "$listMapKeys: [name]", "$listMapKeys: [nome]",
        "crds/gadget.yaml:spec.ports.$listMapKeys", "'nome' is not a field of the list's items",
    ),
    "set of objects": (
        "gadget", "  digest: bytes", '  digest: bytes\n  things: {$type: "[Port]", $listType: set}',
        "crds/gadget.yaml:spec.things.$listType", "a set holds scalars (strings, numbers, ...), not object",
    ),
    "unknown list type": (
        "gadget", "$listType: set}", "$listType: bag}",
        "crds/gadget.yaml:spec.hosts.$listType", "must be one of atomic, set, map (found 'bag')",
    ),
    "list type on a map": (
        "gadget", "selector: Labels", "selector: {$type: Labels, $listType: set}",
        "crds/gadget.yaml:spec.selector.$listType", "a list type applies to lists, not to a value of kind map",
    ),
    "oneOf group naming a field twice": (
        "gadget", "[[simple, hash], [ringSize, maglev]]", "[[simple, hash], [hash, maglev]]",
        "crds/gadget.yaml:spec.$oneOf", "'hash' listed twice",
    ),
    "oneOf mixing names and groups": (
        "gadget", "[[simple, hash], [ringSize, maglev]]", "[simple, [hash]]",
        "crds/gadget.yaml:spec.$oneOf", "must be a non-empty list of field names, or of such lists",
    ),
    "keepUnknown that is not a boolean": (
        "_types", "$keepUnknown: true", "$keepUnknown: yes please",
        "crds/_types.yaml:types.IstioStatus.$keepUnknown", "must be true or false",
    ),
    "specRequired that is not a boolean": (
        "gadget", "specRequired: true", "specRequired: sometimes",
        "crds/gadget.yaml:crd.specRequired", "must be true or false",
    ),
    "rule without a message": (
        "gadget", ", message: an http or https URL}", "}",
        "crds/gadget.yaml:spec.url.$rules[0].message", "required: non-empty text",
    ),
    "rule with a key of its own": (
        "gadget", "message: an http or https URL}", "message: an http or https URL, reason: FieldValueInvalid}",
        "crds/gadget.yaml:spec.url.$rules[0].reason", "unknown key; a rule has rule, message",
    ),
    "rules that are not a list": (
        "gadget", "    $rules:\n      - {rule: \"self != 15000\", message: 15000 is taken by the proxy}",
        "    $rules: {rule: \"self != 15000\"}",
        "crds/gadget.yaml:spec.adminPort.$rules", "must be a non-empty list of {rule: CEL expression, message: text}",
    ),
    "rule that is not CEL": (
        "gadget", 'rule: "self != 15000"', 'rule: "self !="',
        "crds/gadget.yaml:spec.adminPort.$rules[0].rule", "not a valid CEL expression",
    ),
    "rule calling an unknown function": (
        "gadget", 'rule: "self != 15000"', 'rule: "self.isPrime()"',
        "crds/gadget.yaml:spec.adminPort.$rules[0].rule", "isPrime() is neither a CEL function nor one of",
    ),
    "rule naming a field the object lacks": (
        "gadget", 'has(self.hash)"', 'has(self.hsah)"',
        "crds/gadget.yaml:spec.$rules[0].rule", "self.hsah: no field 'hsah' here; did you mean 'hash'?",
    ),
    "rule selecting a field of a string": (
        "gadget", "isURL(self) && url(self).getScheme()", "self.scheme == 'http' && url(self).getScheme()",
        "crds/gadget.yaml:spec.url.$rules[0].rule", "self.scheme: a value of kind string has no fields",
    ),
    "transition rule": (
        "gadget", 'rule: "self != 15000"', 'rule: "self == oldSelf"',
        "crds/gadget.yaml:spec.adminPort.$rules[0].rule", "transition rules (oldSelf) are not supported",
    ),
    "rule iterating twice over an unbounded list": (
        "gadget", '$type: "[Port](..16)"', '$type: "[Port]"',
        "crds/gadget.yaml:spec.ports.$rules[0].rule", "exists_one() inside all() reads self, which has no maximum size",
    ),
    "rule reading unbounded strings inside a list": (
        "gadget", "  hosts: {$type: \"[string](1..)\", $listType: set}",
        "  hosts:\n    - {$type: string, $rules: [{rule: \"!self.contains('*')\", message: no wildcards}]}",
        "crds/gadget.yaml:spec.hosts[].$rules[0].rule",
        "contains() reads self, which has no maximum size, and the rule is inside a list or map",
    ),
    "rule of a named type iterating over it where a use leaves it unbounded": (
        "_types", '$type: "{string: string(..63)}(..64)"', '$type: "{string: string(..63)}"',
        "crds/_types.yaml:types.Labels.$rules[0].rule", "all() reads self, which has no maximum size",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_constraint_mistake_is_reported_with_file_and_key(tmp_path: Path, case: str) -> None:
    file, old, new, where, message = CASES[case]
    shared = _broken(SHARED, old, new) if file == "_types" else SHARED
    gadget = _broken(GADGET, old, new) if file == "gadget" else GADGET
    if case.startswith("rule of a named type"):  # the same type, inside a list: iteration needs a bound there
        gadget = _broken(gadget, "  selector: Labels", "  selector: Labels\n  selectors: [Labels]")
    found = problems_of(write_tree(tmp_path, shared, gadget))
    assert any(w == where and message in m for w, m in found), found


def test_rules_that_only_compare_values_need_no_bounds_anywhere(tmp_path: Path) -> None:
    """As the API server: a rule reading no unbounded size is cheap, even inside unbounded lists and maps; one
    iteration over an unbounded list at the top is too."""
    gadget = _broken(
        GADGET,
        "  digest: bytes",
        "  digest: bytes\n"
        "  groups: [[{$type: integer, $rules: [{rule: 'self % 2 == 0', message: even}]}]]\n"
        "  names: {$type: '[string]', $rules: [{rule: 'self.all(n, n.size() > 0)', message: not empty}]}",
    )
    (api,) = load_api_types(write_tree(tmp_path, gadget=gadget))
    assert version_schema(api)["properties"]["spec"]["properties"]["groups"]["items"]["items"][
        "x-kubernetes-validations"
    ] == [{"rule": "self % 2 == 0", "message": "even"}]


def _with_spec(changes: Mapping[str, Any], drop: tuple[str, ...] = ()) -> str:
    data = yaml.safe_load(GADGET)
    spec = data["example"]["spec"]
    for name in drop:
        del spec[name]
    spec.update(copy.deepcopy(dict(changes)))
    return yaml.safe_dump(data, sort_keys=False)


# Each case changes the example's spec in one way: (changes, fields to drop, the message).
EXAMPLES: dict[str, tuple[dict[str, Any], tuple[str, ...], str]] = {
    "above a maximum": ({"weight": 101}, (), "spec.weight: 101 is above the maximum, 100"),
    "below a minimum": ({"ringSize": 0}, ("maglev",), "spec.ringSize: 0 is below the minimum, 1"),
    "too long": ({"host": "a" * 254}, (), "spec.host: 254 characters, more than the maximum 253"),
    "too short": ({"host": ""}, (), "spec.host: 0 characters, fewer than the minimum 1"),
    "not matching the pattern": ({"host": "Reviews"}, (), "spec.host: 'Reviews' does not match the pattern"),
    "missing a required field": ({}, ("host",), "spec.host: required"),
    "missing a required field of an item": ({"ports": [{"name": "http"}]}, (), "spec.ports[0].number: required"),
    "a bound of a named type": (
        {"ports": [{"name": "http", "number": 70000}]},
        (),
        "spec.ports[0].number: 70000 is above the maximum, 65535",
    ),
    "too many items": (
        {"ports": [{"name": f"p{i}", "number": 1000 + i} for i in range(17)]},
        (),
        "spec.ports: 17 items, more than the maximum 16",
    ),
    "too few items": ({"hosts": []}, (), "spec.hosts: 0 items, fewer than the minimum 1"),
    "too many entries": (
        {"extra": {f"k{i}": i for i in range(9)}},
        (),
        "spec.extra: 9 entries, more than the maximum 8",
    ),
    "twice in a set": ({"hosts": ["a", "a"]}, (), "spec.hosts[1]: the same item as spec.hosts[0]"),
    "twice the key of a map list": (
        {"ports": [{"name": "http", "number": 80}, {"name": "http", "number": 81}]},
        (),
        "spec.ports[1]: the same key name as spec.ports[0]",
    ),
    "not base64": ({"digest": "not base64!"}, (), "spec.digest: 'not base64!' is not base64-encoded bytes"),
    "two of a oneOf group": ({"simple": "ROUND_ROBIN"}, (), "spec: at most one of hash, simple may be set"),
    "a rule of the object": ({}, ("hash",), "spec: maglev needs a hash"),
    "a rule of a list": (
        {"ports": [{"name": "a", "number": 80}, {"name": "b", "number": 80}]},
        (),
        "spec.ports: port numbers differ",
    ),
    "a rule of a named map type": ({"selector": {"": "x"}}, (), "spec.selector: label names are not empty"),
    "a rule added where a named type is used": (
        {"adminPort": 15000},
        (),
        "spec.adminPort: 15000 is taken by the proxy",
    ),
    "a rule with Kubernetes' url functions": ({"url": "ftp://example.com/f"}, (), "spec.url: an http or https URL"),
}


@pytest.mark.parametrize("case", sorted(EXAMPLES))
def test_an_example_breaking_a_constraint_is_refused(tmp_path: Path, case: str) -> None:
    changes, drop, message = EXAMPLES[case]
    found = problems_of(write_tree(tmp_path, gadget=_with_spec(changes, drop)))
    assert any(w == "crds/gadget.yaml:example" and m.startswith(message) for w, m in found), found


def test_rules_run_only_where_everything_below_them_is_valid(tmp_path: Path) -> None:
    found = problems_of(write_tree(tmp_path, gadget=_with_spec({"ports": [{"name": "http", "number": "eighty"}]})))
    assert [m for _, m in found] == ["spec.ports[0].number: must be of type integer, not str"]


# (rule, schema of self, value, whether it holds): Kubernetes' extensions as implemented for examples.
STRING = {"type": "string"}
MAP = {"type": "object", "additionalProperties": STRING}
OBJECT = {"type": "object", "properties": {"a": {"type": "integer"}, "b": STRING}}
FUNCTIONS = [
    ("self.substring(7, 8) == '/'", STRING, "unix:///var/run/x.sock", True),
    ("self.lowerAscii() == 'istio'", STRING, "IsTiO", True),
    ("self.split('.').size() == 3", STRING, "a.b.c", True),
    ("self.indexOf('b') == 1 && self.lastIndexOf('a') == 2", STRING, "aba", True),
    ("self.trim() == 'x' && self.replace('x', 'y') == ' y '", STRING, " x ", True),
    ("url(self).getHost() == 'a.com:8080' && url(self).getPort() == '8080'", STRING, "http://a.com:8080", True),
    ("url(self).getHostname() == 'a.com' && url(self).getEscapedPath() == '/a'", STRING, "https://a.com/a", True),
    ("isURL(self)", STRING, "not a url", False),
    ("self.find('[0-9]+') == '42'", STRING, "abc42def", True),
    ("self >= 0.5", {"type": "number"}, 1, True),
    ("self.all(k, k.startsWith('x'))", MAP, {"xa": "1", "xb": "2"}, True),
    ("duration(self) >= duration('1ms')", STRING, "100us", False),
    ("self.a == 1 && !has(self.b)", OBJECT, {"a": 1}, True),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "schema", "value", "holds"), FUNCTIONS)
def test_rules_are_evaluated_as_the_api_server_would(
    rule: str, schema: dict[str, Any], value: Any, holds: bool
) -> None:
    messages = evaluate([{"rule": rule, "message": "failed"}], schema, value, "x")
    assert messages == ([] if holds else [f"x: failed (rule {rule!r} is false)"])


def test_a_rule_that_cannot_be_evaluated_is_reported() -> None:
    (message,) = evaluate([{"rule": "self.substring(5, 9) == 'x'", "message": "m"}], STRING, "ab", "x")
    assert message.startswith("x: rule \"self.substring(5, 9) == 'x'\" could not be evaluated: ")


def test_values_types_read_the_new_scalars_and_oneof_groups() -> None:
    expr = Object(
        fields=(("at", Scalar(name="timestamp")), ("gen", Scalar(name="intOrString")), ("a", Scalar(name="string"))),
        one_of=(("at", "gen"), ("a",)),
    )
    schema = json_schema(expr, {})
    assert schema["properties"]["at"]["type"] == ["string", "null"]
    assert schema["properties"]["gen"]["type"] == ["integer", "string", "null"]
    assert schema["description"] == "Set one of at, gen; set one of a; Istio uses only one."


@pytest.mark.slow
def test_api_server_accepts_the_crd_and_refuses_what_the_loader_refuses(tmp_path: Path, crdcheck: Path) -> None:
    (api,) = load_api_types(write_tree(tmp_path))
    good = examples(api)
    bad = copy.deepcopy(good)
    bad["spec"].update(weight=101, host="Reviews", ports=[{"name": "http", "number": 70000}])
    without_spec = {key: value for key, value in good.items() if key != "spec"}
    report = check(crdcheck, [render_crd(api)], [good, bad, without_spec])
    assert report["crds"] == {api.name: []}
    accepted, refused, no_spec = report["objects"]
    assert accepted["errors"] == [] and accepted["pruned"] == []
    errors = "\n".join(refused["errors"])
    for field in ("spec.weight", "spec.host", "spec.ports[0].number"):
        assert field in errors, errors
    assert any("spec: Required value" in e for e in no_spec["errors"]), no_spec
