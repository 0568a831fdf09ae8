"""The Istio 1.13 release line (lines/1.13/, generated from generator/lines/1.13/line.yaml over the
1.12 specs) against Istio 1.13.0's facts in tests/data: every values key accepted with its default,
and the default object set under the same names, with the same deliberate differences as the 1.12 line."""

from __future__ import annotations

import csv
import json
from typing import Any

import pytest
import yaml

from tests.conftest import data_table
from tests.render.conftest import REPO, Helm, kinds
from tests.render.values_read import cases_1_13, merge

LINE = REPO / "lines" / "1.13"
VALUES = "istio-1.13-values.tsv"
OBJECTS = "istio-1.13-default-objects.tsv"
RELEASES = {"base": "istio-base", "istiod": "istiod", "gateway": "istio-ingressgateway"}
# Like the 1.12 line, istiod leaves out the telemetry filters Istio shipped for the two older proxy
# minors (1.13.0 shipped 1.11 and 1.12 copies beside its own) ...
LEFT_OUT = {
    ("istiod", "EnvoyFilter", f"{prefix}stats-filter-{minor}") for prefix in ("", "tcp-") for minor in ("1.11", "1.12")
}
# ...and adds the per-revision validator 1.12 and 1.13 meant to render; base renders its CRDs as templates.
ADDED = {("istiod", "ValidatingWebhookConfiguration", "istio-validator-istio-system")}
CRD_COUNT = 15  # Istio 1.13.0's, ProxyConfig the new one


def rows(name: str, chart: str) -> list[dict[str, str]]:
    return [row for row in data_table(name) if row["chart"] == chart]


def render(helm: Helm, chart: str, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return helm.template(str(LINE / chart), values, release=RELEASES[chart])


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys as nested values; annotation keys (with dots of their own) stay whole under podAnnotations."""
    values: dict[str, Any] = {}
    for key, value in flat.items():
        if key.startswith("podAnnotations."):
            values.setdefault("podAnnotations", {})[key[len("podAnnotations.") :]] = value
            continue
        node = values
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return values


def test_the_line_is_istio_1_13_0() -> None:
    for chart in RELEASES:
        meta = yaml.safe_load((LINE / chart / "Chart.yaml").read_text())
        assert (meta["version"], meta["appVersion"]) == ("1.13.0", "1.13.0"), chart


@pytest.mark.parametrize("chart", list(RELEASES))
def test_default_render_is_the_istio_1_13_object_set(helm: Helm, chart: str) -> None:
    reference = {(r["kind"], r["name"]) for r in rows(OBJECTS, chart)}
    left_out = {(k, n) for c, k, n in LEFT_OUT if c == chart}
    added = {(k, n) for c, k, n in ADDED if c == chart}
    assert reference >= left_out
    objects = render(helm, chart)
    got = kinds(objects)
    if chart == "base":
        crds = {("CustomResourceDefinition", row["crd"]) for row in data_table("istio-1.13-crds.tsv")}
        assert len(crds) == CRD_COUNT
        added |= crds
    assert got == (reference - left_out) | added
    print(f"\n1.13 {chart}: {len(reference - left_out)} of Istio 1.13.0's {len(reference)} default objects, same names")
    namespaces = {(r["kind"], r["name"]): r["namespace"] for r in rows(OBJECTS, chart)}
    for obj in objects:
        key = (obj["kind"], obj["metadata"]["name"])
        if key in namespaces:
            assert obj["metadata"].get("namespace", "") == namespaces[key], key


@pytest.mark.parametrize("chart", list(RELEASES))
def test_every_istio_1_13_key_set_to_its_default_is_accepted(helm: Helm, chart: str) -> None:
    table = rows(VALUES, chart)
    assert len(table) == {"base": 10, "istiod": 126, "gateway": 35}[chart]
    values = nested({r["key"]: json.loads(r["default(json)"]) for r in table})
    # Under Istio 1.13.0's own defaults the chart renders Istio's object set (base: enableCRDTemplates
    # false means no CRD templates, as it did in 1.13), with the line's deliberate differences.
    reference = {(r["kind"], r["name"]) for r in rows(OBJECTS, chart)}
    left_out = {(k, n) for c, k, n in LEFT_OUT if c == chart}
    added = {(k, n) for c, k, n in ADDED if c == chart}
    assert kinds(render(helm, chart, values)) == (reference - left_out) | added
    print(f"\n1.13 {chart}: {len(table)} of {len(table)} Istio 1.13.0 values keys accepted")


@pytest.mark.parametrize("chart", list(RELEASES))
def test_values_yaml_declares_every_istio_1_13_key(chart: str) -> None:
    values = yaml.safe_load((LINE / chart / "values.yaml").read_text())
    missing = []
    for row in rows(VALUES, chart):
        node: Any = values
        key = row["key"]
        annotation = key.startswith("podAnnotations.")
        parts = ["podAnnotations", key[len("podAnnotations.") :]] if annotation else key.split(".")
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                missing.append(key)
                break
            node = node[part]
    assert missing == []


def test_telemetry_filters_are_named_for_the_line(helm: Helm) -> None:
    names = {n for k, n in kinds(render(helm, "istiod")) if k == "EnvoyFilter"}
    assert names == {"stats-filter-1.13", "tcp-stats-filter-1.13"}


def test_mcs_api_group_follows_pilot_env(helm: Helm) -> None:
    objects = render(helm, "istiod", {"pilot": {"env": {"MCS_API_GROUP": "mcs.example.io"}}})
    groups = {
        g for o in objects if o["kind"] == "ClusterRole" for rule in o["rules"] for g in rule.get("apiGroups", [])
    }
    assert "mcs.example.io" in groups and "multicluster.x-k8s.io" not in groups


def test_the_1_12_line_keeps_the_fixed_mcs_group(helm: Helm) -> None:
    objects = helm.template("istiod", {"pilot": {"env": {"MCS_API_GROUP": "mcs.example.io"}}}, release="istiod")
    text = json.dumps([o for o in objects if o["kind"] == "ClusterRole"])
    assert "mcs.example.io" not in text and "multicluster.x-k8s.io" in text


def test_line_charts_lint_strict(helm: Helm) -> None:
    for chart in RELEASES:
        proc = helm.run("lint", "--strict", str(LINE / chart))
        assert "0 chart(s) failed" in proc.stdout + proc.stderr, chart


def _values_read() -> list[dict[str, str]]:
    lines = [
        line
        for line in (REPO / "tests" / "data" / "istio-1.13-values-read.tsv").read_text().splitlines()
        if not line.startswith("#")
    ]
    return list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))


CASES_1_13 = cases_1_13()


def test_every_value_1_13_read_without_declaring_has_a_case() -> None:
    assert {(row["chart"], row["key"]) for row in _values_read()} == set(CASES_1_13)


@pytest.mark.parametrize(("chart", "key"), sorted(CASES_1_13), ids=[f"{c}-{k}" for c, k in sorted(CASES_1_13)])
def test_a_value_1_13_read_undeclared_is_accepted_with_its_1_13_effect(helm: Helm, chart: str, key: str) -> None:
    """The 1.12 line's cases, reused: each value's effect is asserted, not only that the render succeeds."""
    case = CASES_1_13[(chart, key)]
    base = dict(case.extra or {})
    default = render(helm, chart, base)
    objects = render(helm, chart, merge(base, key, case.value))
    case.check(objects, default)


@pytest.mark.parametrize(
    ("enabled", "name"), [(None, "istiod-remote"), (True, "istiod-remote"), (False, "istiod")], ids=str
)
def test_pilot_enabled_names_the_remote_control_plane_as_istio_1_13(
    helm: Helm, enabled: bool | None, name: str
) -> None:
    values: dict[str, Any] = {"global": {"remotePilotAddress": "10.1.2.3"}}
    if enabled is not None:
        values["pilot"] = {"enabled": enabled}
    base = render(helm, "base", values)
    assert {o["metadata"]["name"] for o in base if o["kind"] in ("Service", "Endpoints")} == {name}
    istiod = render(helm, "istiod", values)
    mesh = next(o for o in istiod if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "istio")
    assert f"discoveryAddress: {name}.istio-system.svc:15012" in mesh["data"]["mesh"]
