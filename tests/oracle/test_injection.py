"""Every workload, injected by Istio's own injector with this chart's ConfigMaps, equals Istio 1.12's pod.

Each (variant, workload) compares the parsed injected object with what Istio 1.12.0's own istiod chart
produced through the same istioctl. A difference passes only where deviations.yaml names exactly that
field and both values, and the README's "Deviations from Istio 1.12" table explains it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import REPO
from tests.oracle import cases
from tests.oracle.conftest import CHART, Injected
from tests.oracle.injection import inject, load_deviations, render_injector, unexplained, unneeded

VARIANTS = cases.variants()
WORKLOADS = cases.workloads()
DEVIATIONS = load_deviations(cases.DEVIATIONS)
CASES = [pytest.param(v, w, id=f"{v.name}-{w}") for v in VARIANTS for w in WORKLOADS]


def test_the_oracle_covers_at_least_40_workloads_under_4_variants_each_with_its_1_12_pod() -> None:
    assert len(WORKLOADS) >= 40 and len(VARIANTS) >= 4
    missing = [f"{v.name}/{w}" for v in VARIANTS for w in WORKLOADS if not cases.expected_path(v.name, w).is_file()]
    assert not missing, f"no Istio 1.12 expectation for {missing}"
    stale = sorted(
        str(path.relative_to(cases.DATA))
        for path in (cases.DATA / "expected").glob("*/*.yaml")
        if path.parent.name not in {v.name for v in VARIANTS} or path.stem not in WORKLOADS
    )
    assert not stale, f"expectations for no variant or workload: {stale}"


def _read_by_templates(pattern: str) -> set[str]:
    found: set[str] = set()
    for template in (CHART / "files").glob("*.yaml"):
        found |= set(re.findall(pattern, template.read_text()))
    return found


def _keys_under(doc: Any, field: str) -> set[str]:
    """Keys of every mapping named `field` anywhere in `doc` (a pod template's labels or annotations)."""
    if isinstance(doc, dict):
        keys = set(doc[field]) if isinstance(doc.get(field), dict) else set()
        return keys.union(*(_keys_under(value, field) for value in doc.values()))
    if isinstance(doc, list):
        return set().union(*(_keys_under(item, field) for item in doc))
    return set()


def _paths(values: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, value in values.items():
        paths.add(prefix + key)
        if isinstance(value, dict):
            paths |= _paths(value, f"{prefix}{key}.")
    return paths


def test_workloads_and_variants_reach_every_annotation_label_and_value_the_templates_read() -> None:
    """A template that starts reading something new needs a workload or variant that sets it."""
    annotations = _read_by_templates(
        r"(?:annotation \.ObjectMeta|index \.ObjectMeta\.Annotations|isset \.ObjectMeta\.Annotations) `([^`]+)`"
    )
    labels = _read_by_templates(r"index \.ObjectMeta\.Labels `([^`]+)`")
    values = _read_by_templates(r"\.Values\.([A-Za-z_][\w.]*)")
    assert annotations and labels and values
    set_annotations = set().union(*(_keys_under(w, "annotations") for w in WORKLOADS.values()))
    set_labels = set().union(*(_keys_under(w, "labels") for w in WORKLOADS.values()))
    set_values = set().union(*(_paths(v.chart_values()) for v in VARIANTS))
    assert sorted(annotations - set_annotations) == [], "annotations no workload sets"
    assert sorted(labels - set_labels) == [], "labels no workload sets"
    assert sorted(values - set_values) == [], "values no variant sets"


@pytest.mark.parametrize(("variant", "workload"), CASES)
def test_injected_pod_equals_istio_1_12(
    injected_by_chart: Callable[[cases.Variant], Injected], variant: cases.Variant, workload: str
) -> None:
    ours = injected_by_chart(variant).get(workload)
    assert ours is not None, f"istioctl kube-inject returned no object named {workload}"
    left, _ = unexplained(
        cases.expected(variant.name, workload), ours, DEVIATIONS, variant=variant.name, workload=workload
    )
    assert not left, f"{variant.name}/{workload} differs from Istio 1.12's injection:\n" + "\n".join(
        f"  {d}" for d in left
    )


def test_every_documented_deviation_is_needed_and_in_the_readme(
    injected_by_chart: Callable[[cases.Variant], Injected],
) -> None:
    """A deviation no difference needs is an over-broad exception: it must go, as must an undocumented one."""
    used: set[str] = set()
    for variant in VARIANTS:
        injected = injected_by_chart(variant)
        for workload in WORKLOADS:
            if workload in injected:
                _, accepted = unexplained(
                    cases.expected(variant.name, workload),
                    injected[workload],
                    DEVIATIONS,
                    variant=variant.name,
                    workload=workload,
                )
                used |= accepted
    assert not unneeded(DEVIATIONS, used), f"deviation entries no difference needs: {unneeded(DEVIATIONS, used)}"
    names = {d.name for d in DEVIATIONS}
    table = _readme_deviation_names()
    assert names <= table, f"deviations missing from the README table: {sorted(names - table)}"
    assert table <= names, f"README deviations with no entry in {cases.DEVIATIONS.name}: {sorted(table - names)}"


def _readme_deviation_names() -> set[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Deviations from Istio 1.12", 1)
    assert len(section) == 2, "README.md has no '## Deviations from Istio 1.12' section"
    body = section[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", body, flags=re.MULTILINE))


CHANGES = [
    pytest.param(
        "sidecar",
        "timeoutSeconds: 3",
        "timeoutSeconds: 4",
        "reviews",
        "spec.template.spec.containers[istio-proxy].readinessProbe.timeoutSeconds: Istio 1.12 3, this chart 4",
        id="sidecar",
    ),
    pytest.param(
        "gateway",
        "- router",
        "- sidecar",
        "egress",
        'spec.template.spec.containers[istio-proxy].args[1]: Istio 1.12 "router", this chart "sidecar"',
        id="gateway",
    ),
    pytest.param(
        "grpc-agent",
        'name: DISABLE_ENVOY\n      value: "true"',
        'name: DISABLE_ENVOY\n      value: "false"',
        "proxyless",
        'spec.template.spec.containers[istio-proxy].env[DISABLE_ENVOY].value: Istio 1.12 "true", this chart "false"',
        id="grpc-agent",
    ),
    pytest.param(
        "grpc-simple",
        'value: "99"',
        'value: "98"',
        "bootstrap",
        "spec.template.spec.containers[client].env[GRPC_GO_LOG_VERBOSITY_LEVEL].value:"
        ' Istio 1.12 "99", this chart "98"',
        id="grpc-simple",
    ),
]


@pytest.mark.parametrize(("template", "old", "new", "workload", "message"), CHANGES)
def test_a_changed_injection_template_fails_the_oracle_naming_the_field(
    helm_binary: Path,
    istioctl: Path,
    tmp_path: Path,
    template: str,
    old: str,
    new: str,
    workload: str,
    message: str,
) -> None:
    """The oracle can fail: one changed value in any of the four templates is reported at its field."""
    chart = tmp_path / "istiod"
    shutil.copytree(CHART, chart)
    path = chart / "files" / f"{template}.yaml"
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name} no longer holds {old!r} once"
    path.write_text(text.replace(old, new))
    variant = VARIANTS[0]
    injector = render_injector(helm_binary, chart, variant.chart_values())
    injected = inject(istioctl, injector, yaml.safe_dump(WORKLOADS[workload]))
    left, _ = unexplained(
        cases.expected(variant.name, workload), injected[workload], DEVIATIONS, variant=variant.name, workload=workload
    )
    assert [str(d) for d in left] == [message]


CI_VALUES = sorted((REPO / "ci" / "values" / "istiod").glob("*.yaml"))


@pytest.mark.parametrize("values_file", CI_VALUES, ids=[path.stem for path in CI_VALUES])
def test_each_ci_values_case_gives_a_mesh_config_istios_own_loader_accepts(
    helm_binary: Path, istioctl: Path, values_file: Path
) -> None:
    """kube-inject loads --meshConfigFile with Istio's mesh-config loader and validator, as istiod does."""
    values = yaml.safe_load(values_file.read_text()) or {}
    injector = render_injector(helm_binary, CHART, values)
    injected = inject(istioctl, injector, yaml.safe_dump(WORKLOADS["reviews"]))
    assert [c["name"] for c in injected["reviews"]["spec"]["template"]["spec"]["containers"]] == [
        "reviews",
        "istio-proxy",
    ]
