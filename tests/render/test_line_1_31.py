"""The Istio 1.31 line (lines/1.31/, generated from generator/lines/1.31's own specs and templates) against
Istio 1.31.0-rc.0's facts in tests/data: every values key users set, accepted at its default; values.yaml
declaring each; and the default object set under the same names and namespaces, with the line's deliberate
differences listed here."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.conftest import data_table
from tests.render.conftest import REPO, Helm, kinds

LINE = REPO / "lines" / "1.31"
VALUES = "istio-1.31-values.tsv"
OBJECTS = "istio-1.31-default-objects.tsv"
RELEASES = {"base": "istio-base", "istiod": "istiod", "gateway": "istio-ingressgateway"}
KEYS = {"base": 11, "istiod": 141, "gateway": 70}
CHARTS = list(RELEASES)
# What the line renders differently from Istio 1.31.0-rc.0 on purpose, by (chart, kind, name): README's
# deviations table says why. Empty: none so far.
LEFT_OUT: set[tuple[str, str, str]] = set()
ADDED: set[tuple[str, str, str]] = set()


def rows(name: str, chart: str) -> list[dict[str, str]]:
    return [row for row in data_table(name) if row["chart"] == chart]


def render(helm: Helm, chart: str, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return helm.template(str(LINE / chart), values, release=RELEASES[chart])


def path(key: str) -> list[str]:
    """A facts key as the mappings it names; an annotation or label key (with a `/`) is one entry of its map
    (`podAnnotations.prometheus.io/port` -> podAnnotations, prometheus.io/port)."""
    if "/" in key:
        head, entry = key.split(".", 1)
        return [head, entry]
    return key.split(".")


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys as nested values (a facts key names a path of mappings)."""
    values: dict[str, Any] = {}
    for key, value in flat.items():
        node = values
        *parents, leaf = path(key)
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return values


def expected_objects(chart: str) -> set[tuple[str, str]]:
    reference = {(r["kind"], r["name"]) for r in rows(OBJECTS, chart)}
    left_out = {(k, n) for c, k, n in LEFT_OUT if c == chart}
    added = {(k, n) for c, k, n in ADDED if c == chart}
    assert reference >= left_out
    return (reference - left_out) | added


def test_the_line_has_its_charts_and_is_istio_1_31_0_rc_0() -> None:
    for chart in CHARTS:
        assert (LINE / chart / "Chart.yaml").is_file(), f"lines/1.31 has no {chart} chart"
        meta = yaml.safe_load((LINE / chart / "Chart.yaml").read_text())
        assert (meta["version"], meta["appVersion"]) == ("1.31.0-rc.0", "1.31.0-rc.0"), chart
        assert meta["kubeVersion"] == ">=1.32.0-0", chart


@pytest.mark.parametrize("chart", CHARTS)
def test_default_render_is_the_istio_1_31_object_set(helm: Helm, chart: str) -> None:
    objects = render(helm, chart)
    assert kinds(objects) == expected_objects(chart)
    namespaces = {(r["kind"], r["name"]): r["namespace"] for r in rows(OBJECTS, chart)}
    for obj in objects:
        key = (obj["kind"], obj["metadata"]["name"])
        if key in namespaces:
            assert obj["metadata"].get("namespace", "") == namespaces[key], key
    print(f"\n1.31 {chart}: {len(expected_objects(chart))} of Istio 1.31.0-rc.0's default objects, same names")


@pytest.mark.parametrize("chart", CHARTS)
def test_every_istio_1_31_key_set_to_its_default_is_accepted(helm: Helm, chart: str) -> None:
    table = rows(VALUES, chart)
    assert len(table) == KEYS[chart]
    values = nested({r["key"]: json.loads(r["default(json)"]) for r in table})
    assert kinds(render(helm, chart, values)) == expected_objects(chart)
    print(f"\n1.31 {chart}: {len(table)} of {len(table)} Istio 1.31.0-rc.0 values keys accepted")


@pytest.mark.parametrize("chart", CHARTS)
def test_values_yaml_declares_every_istio_1_31_key(chart: str) -> None:
    values = yaml.safe_load((LINE / chart / "values.yaml").read_text())
    missing = []
    for row in rows(VALUES, chart):
        node: Any = values
        for part in path(row["key"]):
            if not isinstance(node, dict) or part not in node:
                missing.append(row["key"])
                break
            node = node[part]
    assert missing == []


def test_the_base_chart_renders_the_1_31_crds_from_the_lines_own_types(helm: Helm) -> None:
    crds = {o["metadata"]["name"] for o in render(helm, "base") if o["kind"] == "CustomResourceDefinition"}
    assert crds == {row["crd"] for row in data_table("istio-1.31-crds.tsv")}


def test_line_charts_lint_strict(helm: Helm) -> None:
    for chart in CHARTS:
        proc = helm.run("lint", "--strict", str(LINE / chart))
        assert "0 chart(s) failed" in proc.stdout + proc.stderr, chart
